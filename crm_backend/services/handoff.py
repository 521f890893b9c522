"""The human handoff: a conversation moves from the bot to a person and back, through a service-desk
ticket that carries everything the bot saw.

States (persisted on the conversation, so a restart of any process keeps them):

    bot ──escalate──▶ waiting ──take──▶ agent ──hand_back──▶ bot
     ▲                  │  └──callback / cancel──▶ bot        │
     │                  └───────────take────────────┐         └──resolve──▶ closed ──next message──▶ bot
     └──────────────────────────────────────────────┘

While a conversation is `waiting` or `agent` the gateway records the user's turns and sends nothing to the
bot. Each transition checks the state it starts from, so two agents taking one ticket, or a hand-back of
a conversation nobody owns, is a `Conflict` and changes nothing. Agents (and managers, admins) work
tickets; a ticket's visibility is the service desk's (`Visibility.TICKETS`).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from crm_backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_backend.models.accounts import Account
from crm_backend.models.activities import Activity, ActivityType, Priority
from crm_backend.models.base import utcnow
from crm_backend.models.channels import ConversationTurn
from crm_backend.models.conversations import Conversation, HandoffState
from crm_backend.models.deals import Deal, DealStage
from crm_backend.models.leads import Lead
from crm_backend.models.service_desk import Ticket, TicketStatus
from crm_backend.models.users import Role, User
from crm_backend.services import conversations
from crm_backend.services.prospects import HOT_SCORE
from crm_backend.services.scopes import Visibility, visible
from crm_backend.store import UnitOfWork

WORKING_ROLES = frozenset({Role.AGENT, Role.MANAGER, Role.ADMIN})
# How soon an agent must answer, by priority.
SLA_MINUTES = {Priority.URGENT: 15, Priority.HIGH: 30, Priority.MEDIUM: 60, Priority.LOW: 240}
VALUABLE_ACCOUNT = Decimal("100000")  # open pipeline at or above this makes an escalation high priority
REASONS = frozenset({"requested", "sentiment", "fallback", "value", "agent_pickup"})
TRANSCRIPT_TURNS = 200


@dataclass(frozen=True, slots=True)
class Escalated:
    """What the user is told: the ticket, its priority and how long the wait should be."""

    ticket_id: int
    priority: Priority
    sla_due_at: dt.datetime
    wait_minutes: int
    created: bool  # False when the conversation was already with (or waiting for) a person


@dataclass(frozen=True, slots=True)
class Handed:
    """The outcome of an agent's move: the conversation (to reach the user) and the ticket."""

    conversation_id: str
    ticket_id: int
    state: HandoffState
    address: dict[str, Any]
    channel: str


def conversation(uow: UnitOfWork, conversation_id: str) -> Conversation:
    found = uow.session.get(Conversation, conversation_id)
    if found is None:
        raise NotFound("No such conversation.")
    return found


def state_of(uow: UnitOfWork, conversation_id: str) -> HandoffState:
    found = uow.session.get(Conversation, conversation_id)
    return found.handoff_state if found is not None else HandoffState.BOT


def remember_address(uow: UnitOfWork, conversation_id: str, address: dict[str, Any]) -> None:
    """Where the user was last seen (the channel adapter's delivery address), for an agent's replies."""
    found = uow.session.get(Conversation, conversation_id)
    if found is not None and address and found.address != address:
        found.address = dict(address)


def count_turn_signals(uow: UnitOfWork, conversation_id: str, *, fallback: bool, negative: bool) -> tuple[int, int]:
    """Update the streaks the escalation rules read: assistant fallbacks and negative user turns in a row."""
    found = conversation(uow, conversation_id)
    found.fallback_streak = found.fallback_streak + 1 if fallback else 0
    found.negative_streak = found.negative_streak + 1 if negative else 0
    return found.fallback_streak, found.negative_streak


def _transcript(uow: UnitOfWork, conversation_id: str) -> list[dict[str, Any]]:
    turns = conversations.recent_turns(uow, conversation_id, TRANSCRIPT_TURNS)
    return [
        {
            "speaker": t.speaker,
            "text": t.text,
            "at": t.at.isoformat(),
            **({"sentiment": t.sentiment_label, "score": t.sentiment_score} if t.sentiment_label else {}),
        }
        for t in turns
    ]


def _open_pipeline(uow: UnitOfWork, account_id: int | None) -> Decimal:
    if account_id is None:
        return Decimal(0)
    closed = (DealStage.CLOSED_WON, DealStage.CLOSED_LOST)
    total = uow.session.scalar(
        select(func.coalesce(func.sum(Deal.amount), 0)).where(
            Deal.account_id == account_id, Deal.stage.not_in(closed), Deal.deleted_at.is_(None)
        )
    )
    return Decimal(str(total or 0))


def valuable_account(uow: UnitOfWork, account_id: int | None) -> bool:
    return _open_pipeline(uow, account_id) >= VALUABLE_ACCOUNT


def priority_for(trend: Sequence[float], pipeline: Decimal, hot_lead: bool) -> Priority:
    """Priority from the user's mood and what is at stake: a furious customer or a big account first."""
    recent = list(trend[-3:])
    mood = statistics.fmean(recent) if recent else 0.0
    if mood <= -0.6 and (pipeline >= VALUABLE_ACCOUNT or hot_lead):
        return Priority.URGENT
    if mood <= -0.6 or pipeline >= VALUABLE_ACCOUNT or hot_lead:
        return Priority.HIGH
    if mood <= -0.2:
        return Priority.MEDIUM
    return Priority.LOW if recent and mood > 0.2 else Priority.MEDIUM


def _ticket_owner(uow: UnitOfWork, found: Conversation) -> int:
    """Who a ticket belongs to: the CRM user talking, else the prospect's lead owner, else the first admin."""
    if found.user_id is not None:
        return found.user_id
    if found.lead_id is not None:
        lead = uow.session.get(Lead, found.lead_id)
        if lead is not None:
            return lead.owner_id
    admin = uow.session.scalar(
        select(User.id).where(User.role == Role.ADMIN, User.is_active.is_(True)).order_by(User.id).limit(1)
    )
    if admin is None:
        raise Conflict("There is no administrator to own service-desk tickets.")
    return int(admin)


def _who(uow: UnitOfWork, found: Conversation) -> str:
    if found.user_id is not None:
        user = uow.session.get(User, found.user_id)
        return user.full_name if user is not None else "a user"
    if found.lead_id is not None:
        lead = uow.session.get(Lead, found.lead_id)
        if lead is not None and (lead.first_name or lead.last_name or lead.company):
            return " ".join(p for p in (lead.first_name, lead.last_name) if p) or str(lead.company)
    return "a website visitor"


def waiting_ahead(uow: UnitOfWork) -> int:
    return int(
        uow.session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.handoff_state == HandoffState.WAITING)
        )
        or 0
    )


def escalate(
    uow: UnitOfWork,
    conversation_id: str,
    reason: str,
    *,
    bant: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Escalated:
    """Hand the conversation to people: a ticket with the transcript, the sentiment trend, the BANT snapshot
    and the linked records; the conversation waits for an agent. Asking again while waiting changes nothing."""
    if reason not in REASONS:
        raise ValidationFailed({"reason": f"one of {', '.join(sorted(REASONS))}"})
    now = now or utcnow()
    found = conversation(uow, conversation_id)
    if found.handoff_state in (HandoffState.WAITING, HandoffState.AGENT) and found.ticket_id is not None:
        ticket = uow.session.get(Ticket, found.ticket_id)
        if ticket is not None:
            wait = max(0, int(((ticket.sla_due_at or now) - now).total_seconds() // 60))
            return Escalated(ticket.id, ticket.priority, ticket.sla_due_at or now, wait, created=False)
    trend = conversations.sentiment_scores(uow, conversation_id)
    lead = uow.session.get(Lead, found.lead_id) if found.lead_id is not None else None
    hot = lead is not None and (lead.score or 0) >= HOT_SCORE
    priority = priority_for(trend, _open_pipeline(uow, found.account_id), hot)
    sla_due_at = now + dt.timedelta(minutes=SLA_MINUTES[priority])
    transcript = _transcript(uow, conversation_id)
    last_user = next((t["text"] for t in reversed(transcript) if t["speaker"] == "user"), "")
    ticket = Ticket(
        subject=f"Chat with {_who(uow, found)}: {reason.replace('_', ' ')}"[:300],
        description=last_user[:10000] or None,
        account_id=found.account_id,
        contact_id=found.contact_id,
        lead_id=found.lead_id,
        channel=found.channel,
        priority=priority,
        status=TicketStatus.NEW,
        sla_due_at=sla_due_at,
        conversation_id=conversation_id,
        transcript=transcript,
        sentiment_label=found.sentiment_label,
        sentiment_score=found.sentiment_score,
        sentiment_trend=[round(s, 3) for s in trend],
        bant=dict(bant or _lead_bant(lead)),
        escalation_reason=reason,
        owner_id=_ticket_owner(uow, found),
    )
    uow.session.add(ticket)
    uow.session.flush()
    found.handoff_state = HandoffState.WAITING
    found.ticket_id = ticket.id
    found.agent_id = None
    found.fallback_streak = found.negative_streak = 0
    return Escalated(ticket.id, priority, sla_due_at, SLA_MINUTES[priority], created=True)


def _lead_bant(lead: Lead | None) -> dict[str, Any]:
    """The qualification the conversation's lead holds (the agent sees what the prospect already said)."""
    if lead is None:
        return {}
    return {
        "budget": str(lead.budget) if lead.budget is not None else None,
        "has_authority": lead.has_authority,
        "need": lead.need,
        "timeline": lead.timeline,
        "lead_score": lead.score,
    }


def _working(uow: UnitOfWork) -> int:
    actor = uow.require_actor()
    if actor.role not in WORKING_ROLES:
        raise PermissionDenied("Only service-desk agents, managers and admins work handoffs.")
    return actor.user_id


def _ticket(uow: UnitOfWork, ticket_id: int) -> Ticket:
    actor = uow.require_actor()
    ticket = uow.session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, visible(Ticket, Visibility.TICKETS, actor))
    )
    if ticket is None or ticket.conversation_id is None:
        raise NotFound("No such handoff ticket.")
    return ticket


def _handed(found: Conversation, ticket: Ticket) -> Handed:
    return Handed(found.id, ticket.id, found.handoff_state, dict(found.address or {}), found.channel)


def take(uow: UnitOfWork, ticket_id: int) -> Handed:
    """An agent takes the conversation (from the queue, or straight from the bot: an agent pickup)."""
    agent = _working(uow)
    ticket = _ticket(uow, ticket_id)
    found = conversation(uow, str(ticket.conversation_id))
    if found.handoff_state is HandoffState.AGENT:
        if found.agent_id == agent:
            return _handed(found, ticket)
        raise Conflict("Another agent has already taken this conversation.")
    if found.handoff_state is not HandoffState.WAITING or found.ticket_id != ticket.id:
        raise Conflict("This conversation is not waiting for an agent.")
    found.handoff_state = HandoffState.AGENT
    found.agent_id = agent
    ticket.assignee_id = agent
    ticket.status = TicketStatus.OPEN
    return _handed(found, ticket)


def pick_up(uow: UnitOfWork, conversation_id: str, now: dt.datetime | None = None) -> Handed:
    """An agent joins a conversation the bot is having (seen live in the console): escalate and take."""
    _working(uow)
    escalated = escalate(uow, conversation_id, "agent_pickup", now=now)
    return take(uow, escalated.ticket_id)


def _owned(uow: UnitOfWork, ticket_id: int) -> tuple[Ticket, Conversation]:
    agent = _working(uow)
    ticket = _ticket(uow, ticket_id)
    found = conversation(uow, str(ticket.conversation_id))
    if found.handoff_state is not HandoffState.AGENT or found.ticket_id != ticket.id:
        raise Conflict("Take the conversation before answering or handing it back.")
    if found.agent_id != agent:
        raise Conflict("Another agent owns this conversation.")
    return ticket, found


def agent_said(agent: str, text: str) -> str:
    """An agent's message as the user reads it, live and in the history: "sam: How can I help?"."""
    return f"{agent}: {text.strip()}"


def agent_reply(uow: UnitOfWork, ticket_id: int, text: str, now: dt.datetime | None = None) -> Handed:
    """The agent's message, recorded as a turn of the conversation (the gateway delivers it)."""
    text = (text or "").strip()
    if not text:
        raise ValidationFailed({"text": "write a reply"})
    if len(text) > 4000:
        raise ValidationFailed({"text": "at most 4,000 characters"})
    ticket, found = _owned(uow, ticket_id)
    agent = uow.require_actor()
    uow.session.add(
        ConversationTurn(conversation_id=found.id, speaker="agent", text=text, data={"agent": agent.username})
    )
    if ticket.first_agent_reply_at is None:
        ticket.first_agent_reply_at = now or utcnow()
    found.last_message_at = now or utcnow()
    return _handed(found, ticket)


def hand_back(uow: UnitOfWork, ticket_id: int, note: str = "") -> Handed:
    """The agent gives the conversation back to the bot (the ticket stays open as Pending)."""
    ticket, found = _owned(uow, ticket_id)
    ticket.handback_note = note.strip()[:2000] or None
    ticket.status = TicketStatus.PENDING
    found.handoff_state = HandoffState.BOT
    found.agent_id = None
    return _handed(found, ticket)


def resolve(uow: UnitOfWork, ticket_id: int, now: dt.datetime | None = None) -> Handed:
    """The agent closes the ticket; the user is asked for a rating, then talks to the bot again."""
    agent = _working(uow)
    ticket = _ticket(uow, ticket_id)
    found = conversation(uow, str(ticket.conversation_id))
    if found.ticket_id == ticket.id and found.handoff_state is HandoffState.AGENT and found.agent_id != agent:
        raise Conflict("Another agent owns this conversation.")
    if ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        raise Conflict("This ticket is already resolved.")
    ticket.status = TicketStatus.RESOLVED
    ticket.resolved_at = now or utcnow()
    ticket.assignee_id = ticket.assignee_id or agent
    if found.ticket_id == ticket.id:
        found.handoff_state = HandoffState.CLOSED
        found.agent_id = None
    return _handed(found, ticket)


def rate(uow: UnitOfWork, conversation_id: str, score: int) -> int:
    """The user's 1-5 rating of the resolved ticket; the conversation goes back to the bot."""
    if not 1 <= score <= 5:
        raise ValidationFailed({"csat": "a number from 1 to 5"})
    found = conversation(uow, conversation_id)
    if found.handoff_state is not HandoffState.CLOSED or found.ticket_id is None:
        raise Conflict("There is no resolved conversation to rate.")
    ticket = uow.session.get(Ticket, found.ticket_id)
    if ticket is None:
        raise NotFound("No such ticket.")
    ticket.csat = score
    found.handoff_state = HandoffState.BOT
    return ticket.id


def back_to_bot(uow: UnitOfWork, conversation_id: str) -> None:
    """A closed conversation's next message (not a rating) goes to the bot again."""
    found = conversation(uow, conversation_id)
    if found.handoff_state is HandoffState.CLOSED:
        found.handoff_state = HandoffState.BOT


def overdue(uow: UnitOfWork, now: dt.datetime | None = None) -> list[Handed]:
    """Waiting conversations whose ticket is past its SLA and whose user was not told yet."""
    now = now or utcnow()
    rows = uow.session.execute(
        select(Conversation, Ticket)
        .join(Ticket, Ticket.id == Conversation.ticket_id)
        .where(
            Conversation.handoff_state == HandoffState.WAITING,
            Ticket.sla_due_at.is_not(None),
            Ticket.sla_due_at < now,
        )
    ).all()
    out = []
    for found, ticket in rows:
        if (found.address or {}).get("sla_told") == ticket.id:
            continue
        found.address = {**(found.address or {}), "sla_told": ticket.id}
        out.append(_handed(found, ticket))
    return out


def request_callback(uow: UnitOfWork, conversation_id: str, contact: str = "", now: dt.datetime | None = None) -> int:
    """No agent in time and the user wants a call back: a task for the ticket's owner; back to the bot."""
    found = conversation(uow, conversation_id)
    if found.handoff_state is not HandoffState.WAITING or found.ticket_id is None:
        raise Conflict("This conversation is not waiting for an agent.")
    ticket = uow.session.get(Ticket, found.ticket_id)
    if ticket is None:
        raise NotFound("No such ticket.")
    now = now or utcnow()
    task = Activity(
        type=ActivityType.TASK,
        subject=f"Call back: {ticket.subject}"[:300],
        description=(
            f"Ticket #{ticket.id}. " + (f"Reach them at {contact}. " if contact else "") + (ticket.description or "")
        )[:10000],
        priority=ticket.priority,
        due_at=now + dt.timedelta(hours=4),
        owner_id=ticket.owner_id,
        account_id=ticket.account_id,
        contact_id=ticket.contact_id,
        lead_id=ticket.lead_id,
    )
    uow.session.add(task)
    ticket.status = TicketStatus.PENDING
    found.handoff_state = HandoffState.BOT
    uow.session.flush()
    return task.id


def queue(uow: UnitOfWork, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Open handoff tickets the agent may see: waiting first by SLA, then those being worked."""
    actor = uow.require_actor()
    _working(uow)
    now = now or utcnow()
    rows = uow.session.execute(
        select(Ticket, Conversation)
        .join(Conversation, Conversation.id == Ticket.conversation_id)
        .where(
            visible(Ticket, Visibility.TICKETS, actor),
            Ticket.status.in_((TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)),
            Conversation.ticket_id == Ticket.id,
        )
        .order_by(Ticket.sla_due_at)
    ).all()
    out = []
    for ticket, found in rows:
        due = ticket.sla_due_at
        out.append(
            {
                "ticket_id": ticket.id,
                "subject": ticket.subject,
                "priority": ticket.priority.value,
                "status": ticket.status.value,
                "state": found.handoff_state.value,
                "channel": found.channel,
                "conversation_id": found.id,
                "assignee_id": ticket.assignee_id,
                "sla_due_at": due.isoformat() if due else None,
                "sla_seconds_left": int((due - now).total_seconds()) if due else None,
                "sentiment": found.sentiment_label,
                "sentiment_score": found.sentiment_score,
                "reason": ticket.escalation_reason,
            }
        )
    state_order = {HandoffState.WAITING.value: 0, HandoffState.AGENT.value: 1}
    out.sort(key=lambda r: (state_order.get(str(r["state"]), 2), r["sla_seconds_left"] or 0))
    return out


def customer_view(uow: UnitOfWork, ticket_id: int) -> dict[str, Any]:
    """The ticket with the conversation so far and the customer's records beside it (what the agent may see)."""
    actor = uow.require_actor()
    _working(uow)
    ticket = _ticket(uow, ticket_id)
    found = conversation(uow, str(ticket.conversation_id))
    records: dict[str, Any] = {}
    if ticket.account_id is not None:
        account = uow.session.scalar(
            select(Account).where(Account.id == ticket.account_id, visible(Account, Visibility.OWNED, actor))
        )
        if account is not None:
            records["account"] = {
                "id": account.id,
                "name": account.name,
                "pipeline": str(_open_pipeline(uow, account.id)),
            }
    if ticket.lead_id is not None:
        lead = uow.session.scalar(select(Lead).where(Lead.id == ticket.lead_id, visible(Lead, Visibility.OWNED, actor)))
        if lead is not None:
            records["lead"] = {
                "id": lead.id,
                "name": " ".join(p for p in (lead.first_name, lead.last_name) if p),
                "company": lead.company,
                "email": lead.email,
                "score": lead.score,
            }
    turns = [
        {"speaker": t.speaker, "text": t.text, "at": t.at.isoformat(), "sentiment": t.sentiment_label}
        for t in uow.session.scalars(
            select(ConversationTurn).where(ConversationTurn.conversation_id == found.id).order_by(ConversationTurn.id)
        )
    ]
    return {
        "ticket": {
            "id": ticket.id,
            "subject": ticket.subject,
            "priority": ticket.priority.value,
            "status": ticket.status.value,
            "reason": ticket.escalation_reason,
            "sla_due_at": ticket.sla_due_at.isoformat() if ticket.sla_due_at else None,
            "sentiment_trend": list(ticket.sentiment_trend or []),
            "bant": dict(ticket.bant or {}),
            "csat": ticket.csat,
            "assignee_id": ticket.assignee_id,
        },
        "conversation": {"id": found.id, "channel": found.channel, "state": found.handoff_state.value},
        "turns": turns,
        "records": records,
    }


def set_agent_thread(uow: UnitOfWork, ticket_id: int, thread: str) -> None:
    """Remember where the ticket was announced (the support channel's thread), so replies there find it."""
    ticket = uow.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("No such ticket.")
    ticket.agent_thread = thread[:100]


def ticket_for_thread(uow: UnitOfWork, thread: str) -> int | None:
    """The open handoff ticket announced in this support-channel thread, if any."""
    found = uow.session.scalar(
        select(Ticket.id).where(
            Ticket.agent_thread == thread,
            Ticket.status.in_((TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)),
        )
    )
    return int(found) if found is not None else None


def announcement(uow: UnitOfWork, ticket_id: int) -> dict[str, Any]:
    """What agents are told about a new handoff (no CRM record contents beyond the ticket itself)."""
    ticket = uow.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("No such ticket.")
    last = next((t["text"] for t in reversed(ticket.transcript or []) if t.get("speaker") == "user"), "")
    return {
        "ticket_id": ticket.id,
        "subject": ticket.subject,
        "priority": ticket.priority.value,
        "sla_due_at": ticket.sla_due_at.isoformat() if ticket.sla_due_at else None,
        "channel": ticket.channel,
        "last_message": last[:500],
        "sentiment": ticket.sentiment_label,
    }
