"""The sales signal detectors: one small function per kind of signal, each turning evidence into a
candidate a rep can act on (category, confidence 0..1, a plain title, the evidence, a dedupe key).

Detectors are pure: they read the objects and numbers they are given and return a `Candidate` or
None. Finding the evidence (events.py, sweep.py) and storing the signal once (store.py) live apart,
so each rule and its confidence formula can be read, and tested, on its own. The thresholds are in
`SignalSettings`; docs/engines/signals.md lists the defaults.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crm_backend.models.accounts import Account
from crm_backend.models.automation import EntityType
from crm_backend.models.contacts import Contact
from crm_backend.models.deals import Deal, DealStage
from crm_backend.models.feeds import SignalCategory

DEAL_STALLED = "deal_stalled"
AMOUNT_DECREASED = "amount_decreased"
CLOSE_DATE_SLIPPED = "close_date_slipped"
SCORE_JUMP = "score_jump"
NEGATIVE_SENTIMENT = "negative_sentiment"
TICKET_SPIKE = "ticket_spike"
CHAMPION_LEFT = "champion_left"


@dataclass(frozen=True)
class SignalSettings:
    """Thresholds of the detectors (one object, passed down; the defaults are documented)."""

    # Days without activity after which an open deal in a stage counts as stalled.
    stall_days: dict[DealStage, int] = field(
        default_factory=lambda: {
            DealStage.PROSPECTING: 30,
            DealStage.QUALIFICATION: 21,
            DealStage.PROPOSAL: 14,
            DealStage.NEGOTIATION: 10,
        }
    )
    score_jump_points: int = 20  # a rise of at least this many points is a jump
    hot_grades: frozenset[str] = frozenset({"hot"})  # crossing into one of these grades is a jump too
    sentiment_threshold: float = -0.3  # a conversation's sentiment below this is negative
    ticket_spike_count: int = 3  # this many tickets on one account ...
    ticket_spike_days: int = 7  # ... created within this many days
    health_max_age_days: int = 1  # the sweep recomputes health at least this often


DEFAULT_SETTINGS = SignalSettings()


@dataclass(frozen=True)
class Candidate:
    """A signal about to be emitted: `owner_id` is the rep whose feed it goes to."""

    signal_type: str
    category: SignalCategory
    confidence: float
    title: str
    entity_type: EntityType
    entity_id: int
    owner_id: int
    account_id: int | None
    data: dict[str, Any]
    dedupe_key: str


def _clamp(value: float) -> float:
    return round(max(0.0, min(1.0, value)), 3)


def _money(value: Decimal | float | None) -> str:
    return f"{float(value or 0):,.0f}"


def deal_stalled(
    deal: Deal, last_activity_at: dt.datetime | None, now: dt.datetime, settings: SignalSettings = DEFAULT_SETTINGS
) -> Candidate | None:
    """An open deal idle for N days (N per stage) since it entered its stage or since its last activity.

    Keyed by the stage and the day the idleness began, so each idle spell is signalled once, and a
    deal that wakes up and goes quiet again is signalled again.

    confidence = 0.5 + 0.5 * min(1, (idle_days - N) / N): 0.5 on the day it becomes stalled, 1.0
    at twice the allowance.
    """
    limit = settings.stall_days.get(deal.stage)
    if limit is None or deal.deleted_at is not None:
        return None
    entered = deal.stage_changed_at or deal.created_at
    since = max(entered, last_activity_at) if last_activity_at is not None else entered
    idle = (now - since).days
    if idle < limit:
        return None
    confidence = _clamp(0.5 + 0.5 * min(1.0, (idle - limit) / limit))
    stage = deal.stage.value
    return Candidate(
        signal_type=DEAL_STALLED,
        category=SignalCategory.NEGATIVE,
        confidence=confidence,
        title=f"{deal.name} stalled: {idle} days in {stage} without activity",
        entity_type=EntityType.DEAL,
        entity_id=deal.id,
        owner_id=deal.owner_id,
        account_id=deal.account_id,
        data={
            "stage": stage,
            "idle_days": idle,
            "allowed_days": limit,
            "stage_changed_at": entered.isoformat(),
            "idle_since": since.isoformat(),
            "last_activity_at": last_activity_at.isoformat() if last_activity_at else None,
        },
        dedupe_key=f"{DEAL_STALLED}:{deal.id}:{stage}:{since.date().isoformat()}",
    )


def amount_decreased(deal: Deal, before: Decimal | None, after: Decimal | None) -> Candidate | None:
    """An open deal's amount went down. confidence = min(1, 0.4 + drop / before)."""
    if before is None or after is None or after >= before or before <= 0 or not deal.stage.is_open:
        return None
    drop = float(before - after) / float(before)
    return Candidate(
        signal_type=AMOUNT_DECREASED,
        category=SignalCategory.NEGATIVE,
        confidence=_clamp(0.4 + drop),
        title=f"{deal.name}: amount cut from {_money(before)} to {_money(after)} {deal.currency} (-{drop:.0%})",
        entity_type=EntityType.DEAL,
        entity_id=deal.id,
        owner_id=deal.owner_id,
        account_id=deal.account_id,
        data={"before": float(before), "after": float(after), "drop": round(drop, 4), "currency": deal.currency},
        dedupe_key=f"{AMOUNT_DECREASED}:{deal.id}:{after}",
    )


def close_date_slipped(deal: Deal, before: dt.date | None, after: dt.date | None) -> Candidate | None:
    """The expected close date moved later. confidence = min(1, 0.4 + 0.6 * days_slipped / 90)."""
    if before is None or after is None or after <= before or not deal.stage.is_open:
        return None
    days = (after - before).days
    return Candidate(
        signal_type=CLOSE_DATE_SLIPPED,
        category=SignalCategory.NEGATIVE,
        confidence=_clamp(0.4 + 0.6 * days / 90),
        title=f"{deal.name}: close date slipped {days} days, from {before.isoformat()} to {after.isoformat()}",
        entity_type=EntityType.DEAL,
        entity_id=deal.id,
        owner_id=deal.owner_id,
        account_id=deal.account_id,
        data={"before": before.isoformat(), "after": after.isoformat(), "days": days},
        dedupe_key=f"{CLOSE_DATE_SLIPPED}:{deal.id}:{after.isoformat()}",
    )


@dataclass(frozen=True)
class ScoreChange:
    """What the scoring engine wrote about one record, with the record's name, owner and account."""

    entity_type: EntityType
    entity_id: int
    name: str
    owner_id: int
    account_id: int | None
    previous: int | None
    score: int
    grade_before: str | None
    grade_after: str | None
    computed_at: dt.datetime


def score_jump(change: ScoreChange, settings: SignalSettings = DEFAULT_SETTINGS) -> Candidate | None:
    """A score rose by `score_jump_points` or more, or crossed into a hot grade.

    confidence = min(1, rise / 40), at least 0.7 when the record became hot.
    """
    if change.previous is None:
        return None
    rise = change.score - change.previous
    hot = {g.lower() for g in settings.hot_grades}
    became_hot = (change.grade_after or "").lower() in hot and (change.grade_before or "").lower() not in hot
    if rise < settings.score_jump_points and not became_hot:
        return None
    confidence = _clamp(max(rise / 40, 0.7 if became_hot else 0.0))
    label = change.entity_type.value
    grade = f", now {change.grade_after}" if became_hot else ""
    return Candidate(
        signal_type=SCORE_JUMP,
        category=SignalCategory.POSITIVE,
        confidence=confidence,
        title=f"{change.name}: {label} score jumped {change.previous} → {change.score}{grade}",
        entity_type=change.entity_type,
        entity_id=change.entity_id,
        owner_id=change.owner_id,
        account_id=change.account_id,
        data={
            "previous_score": change.previous,
            "score": change.score,
            "rise": rise,
            "grade_before": change.grade_before,
            "grade_after": change.grade_after,
        },
        dedupe_key=(
            f"{SCORE_JUMP}:{label}:{change.entity_id}:{change.previous}:{change.score}:"
            f"{change.computed_at.date().isoformat()}"
        ),
    )


@dataclass(frozen=True)
class Subject:
    """The record a conversation or ticket is about, as a signal needs it."""

    entity_type: EntityType
    entity_id: int
    name: str
    owner_id: int
    account_id: int | None


def negative_sentiment(
    conversation_id: str,
    sentiment: float | None,
    when: dt.datetime,
    subject: Subject,
    settings: SignalSettings = DEFAULT_SETTINGS,
) -> Candidate | None:
    """A conversation's sentiment fell below the threshold. confidence = min(1, -sentiment)."""
    if sentiment is None or sentiment >= settings.sentiment_threshold:
        return None
    return Candidate(
        signal_type=NEGATIVE_SENTIMENT,
        category=SignalCategory.NEGATIVE,
        confidence=_clamp(-sentiment),
        title=f"{subject.name}: negative conversation sentiment ({sentiment:+.2f})",
        entity_type=subject.entity_type,
        entity_id=subject.entity_id,
        owner_id=subject.owner_id,
        account_id=subject.account_id,
        data={"conversation_id": conversation_id, "sentiment": sentiment, "threshold": settings.sentiment_threshold},
        dedupe_key=f"{NEGATIVE_SENTIMENT}:{conversation_id}:{when.date().isoformat()}",
    )


def ticket_spike(
    account: Account, ticket_ids: list[int], settings: SignalSettings = DEFAULT_SETTINGS
) -> Candidate | None:
    """`ticket_spike_count` or more tickets on one account within `ticket_spike_days` days.

    `ticket_ids` are the account's tickets created in the window, oldest first. The spike is keyed
    by the oldest of them, so later tickets of the same spike do not signal again.
    confidence = min(1, count / (2 * ticket_spike_count)).
    """
    count = len(ticket_ids)
    if count < settings.ticket_spike_count:
        return None
    return Candidate(
        signal_type=TICKET_SPIKE,
        category=SignalCategory.NEGATIVE,
        confidence=_clamp(count / (2 * settings.ticket_spike_count)),
        title=f"{account.name}: {count} support tickets in the last {settings.ticket_spike_days} days",
        entity_type=EntityType.ACCOUNT,
        entity_id=account.id,
        owner_id=account.owner_id,
        account_id=account.id,
        data={"ticket_ids": ticket_ids, "count": count, "window_days": settings.ticket_spike_days},
        dedupe_key=f"{TICKET_SPIKE}:{account.id}:{ticket_ids[0]}",
    )


def champion_left(contact: Contact, account: Account, *, moved_to: int | None) -> Candidate:
    """A champion at `account` was deleted or moved to another account (`moved_to`).

    confidence: 0.9 when moved (a strong sign they changed company), 0.6 when deleted (it may be a
    data clean-up).
    """
    name = f"{contact.first_name} {contact.last_name}".strip()
    how = "moved to another account" if moved_to is not None else "was removed"
    return Candidate(
        signal_type=CHAMPION_LEFT,
        category=SignalCategory.NEGATIVE,
        confidence=0.9 if moved_to is not None else 0.6,
        title=f"{account.name}: champion {name} {how}",
        entity_type=EntityType.ACCOUNT,
        entity_id=account.id,
        owner_id=account.owner_id,
        account_id=account.id,
        data={"contact_id": contact.id, "contact": name, "moved_to_account_id": moved_to},
        dedupe_key=f"{CHAMPION_LEFT}:{contact.id}:{account.id}",
    )
