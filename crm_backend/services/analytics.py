"""How the assistant is doing, per channel and per intent, over a period: how many conversations it handled
on its own (containment) or handed to a person, how often it did not understand, the users' mood,
qualification and conversion of prospects, how fast agents answered, SLA breaches and ratings.

Computed from the recorded turns (each user turn keeps its intent, whether it was understood, and its
sentiment) and the handoff tickets. For managers, agents and admins: it describes every conversation.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from crm_backend.errors import PermissionDenied, ValidationFailed
from crm_backend.models.base import utcnow
from crm_backend.models.channels import ConversationTurn
from crm_backend.models.conversations import Conversation
from crm_backend.models.leads import Lead, LeadStatus
from crm_backend.models.service_desk import Ticket
from crm_backend.models.users import Role
from crm_backend.store import UnitOfWork

READERS = frozenset({Role.MANAGER, Role.AGENT, Role.ADMIN})
MAX_DAYS = 366


@dataclass
class _Tally:
    conversations: set[str] = field(default_factory=set)
    handed_off: set[str] = field(default_factory=set)
    user_turns: int = 0
    not_understood: int = 0
    sentiments: list[float] = field(default_factory=list)
    prospects: set[str] = field(default_factory=set)
    qualified: set[str] = field(default_factory=set)
    converted: set[str] = field(default_factory=set)
    first_replies: list[float] = field(default_factory=list)
    tickets: int = 0
    sla_breaches: int = 0
    ratings: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        n = len(self.conversations)
        handed = len(self.handed_off & self.conversations) if self.conversations else len(self.handed_off)
        return {
            "conversations": n,
            "handed_off": handed,
            "containment_rate": _rate(n - handed, n),
            "handoff_rate": _rate(handed, n),
            "user_turns": self.user_turns,
            "fallback_rate": _rate(self.not_understood, self.user_turns),
            "average_sentiment": round(statistics.fmean(self.sentiments), 3) if self.sentiments else None,
            "prospects": len(self.prospects),
            "qualification_rate": _rate(len(self.qualified), len(self.prospects)),
            "lead_conversion_rate": _rate(len(self.converted), len(self.qualified)),
            "tickets": self.tickets,
            "first_agent_reply_seconds": round(statistics.fmean(self.first_replies), 1) if self.first_replies else None,
            "sla_breaches": self.sla_breaches,
            "csat": round(statistics.fmean(self.ratings), 2) if self.ratings else None,
            "csat_responses": len(self.ratings),
        }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def period(start: dt.date | None, end: dt.date | None, today: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end] as UTC datetimes; the last 30 days by default; at most a year."""
    today = today or utcnow().date()
    end = end or today
    start = start or end - dt.timedelta(days=29)
    if start > end:
        raise ValidationFailed({"start": "must not be after end"})
    if (end - start).days > MAX_DAYS:
        raise ValidationFailed({"start": f"a period of at most {MAX_DAYS} days"})
    begin = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    return begin, dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


def assistant_report(
    uow: UnitOfWork, start: dt.date | None = None, end: dt.date | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The report for the period: `total`, `by_channel` and `by_intent` (see the module docstring)."""
    actor = uow.require_actor()
    if actor.role not in READERS:
        raise PermissionDenied("The assistant's analytics are for managers, agents and admins.")
    begin, finish = period(start, end)
    now = now or utcnow()
    total = _Tally()
    by_channel: defaultdict[str, _Tally] = defaultdict(_Tally)
    by_intent: defaultdict[str, _Tally] = defaultdict(_Tally)

    channels: dict[str, str] = {
        cid: ch for cid, ch in uow.session.execute(select(Conversation.id, Conversation.channel))
    }
    turns = uow.session.execute(
        select(ConversationTurn.conversation_id, ConversationTurn.data, ConversationTurn.sentiment_score).where(
            ConversationTurn.speaker == "user", ConversationTurn.at >= begin, ConversationTurn.at < finish
        )
    ).all()
    for conversation_id, data, score in turns:
        channel = channels.get(conversation_id, "unknown")
        intent = str((data or {}).get("intent") or "unknown")
        missed = bool((data or {}).get("fallback"))
        for tally in (total, by_channel[channel], by_intent[intent]):
            tally.conversations.add(conversation_id)
            tally.user_turns += 1
            tally.not_understood += missed
            if score is not None:
                tally.sentiments.append(float(score))

    active = set(total.conversations)
    prospects = uow.session.execute(
        select(Conversation.id, Conversation.channel, Conversation.lead_id, Lead.status)
        .outerjoin(Lead, Lead.id == Conversation.lead_id)
        .where(Conversation.user_id.is_(None), Conversation.id.in_(active) if active else Conversation.id.is_(None))
    ).all()
    for conversation_id, channel, lead_id, status in prospects:
        for tally in (total, by_channel[channel]):
            tally.prospects.add(conversation_id)
            if lead_id is not None:
                tally.qualified.add(conversation_id)
                if status is LeadStatus.CONVERTED:
                    tally.converted.add(conversation_id)

    tickets = uow.session.scalars(
        select(Ticket).where(
            Ticket.conversation_id.is_not(None), Ticket.created_at >= begin, Ticket.created_at < finish
        )
    ).all()
    for ticket in tickets:
        conversation_id = str(ticket.conversation_id)
        channel = channels.get(conversation_id, ticket.channel)
        answered = ticket.first_agent_reply_at
        late = ticket.sla_due_at is not None and (answered or now) > ticket.sla_due_at
        for tally in (total, by_channel[channel]):
            tally.handed_off.add(conversation_id)
            tally.tickets += 1
            tally.sla_breaches += late
            if answered is not None:
                tally.first_replies.append((answered - ticket.created_at).total_seconds())
            if ticket.csat is not None:
                tally.ratings.append(ticket.csat)
    return {
        "start": begin.date().isoformat(),
        "end": (finish - dt.timedelta(days=1)).date().isoformat(),
        "total": total.as_json(),
        "by_channel": {name: tally.as_json() for name, tally in sorted(by_channel.items())},
        "by_intent": {
            name: {
                "user_turns": tally.user_turns,
                "conversations": len(tally.conversations),
                "fallback_rate": _rate(tally.not_understood, tally.user_turns),
                "average_sentiment": round(statistics.fmean(tally.sentiments), 3) if tally.sentiments else None,
            }
            for name, tally in sorted(by_intent.items(), key=lambda kv: -kv[1].user_turns)
        },
    }
