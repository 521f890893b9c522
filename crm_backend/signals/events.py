"""The event-driven detectors: signals that follow a write in the same transaction (an amount cut, a
slipped close date, a score jump, an unhappy conversation, a ticket spike, a champion who left).

`on_changes` is listed in `crm_backend.events.HANDLERS`. It picks the few changes it cares about
by table first, so a batch with nothing for it costs one pass over the list, and it reads what it
needs for the whole batch in grouped queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from crm_backend.events import Change
from crm_backend.facts import MODELS
from crm_backend.models.accounts import Account
from crm_backend.models.automation import EntityScore, EntityType
from crm_backend.models.contacts import Contact, ContactRole
from crm_backend.models.conversations import Conversation
from crm_backend.models.deals import Deal
from crm_backend.models.leads import Lead
from crm_backend.models.service_desk import Ticket
from crm_backend.signals import detectors
from crm_backend.signals.detectors import DEFAULT_SETTINGS, Candidate, ScoreChange, SignalSettings, Subject
from crm_backend.signals.store import emit
from crm_backend.store import UnitOfWork

WATCHED = {"deals", "entity_scores", "conversations", "tickets", "contacts"}


def on_changes(uow: UnitOfWork, changes: list[Change], settings: SignalSettings = DEFAULT_SETTINGS) -> None:
    """Emit the signals this batch of changes implies (the events handler)."""
    mine = [c for c in changes if c.table in WATCHED]
    if not mine:
        return
    candidates: list[Candidate] = []
    candidates += _deal_changes([c for c in mine if c.table == "deals"])
    candidates += _score_changes(uow, [c for c in mine if c.table == "entity_scores"])
    candidates += _sentiment_changes(uow, [c for c in mine if c.table == "conversations"], settings)
    candidates += _ticket_changes(uow, [c for c in mine if c.table == "tickets"], settings)
    candidates += _contact_changes(uow, [c for c in mine if c.table == "contacts"])
    for candidate in candidates:
        emit(uow, candidate)


def _deal_changes(changes: Iterable[Change]) -> list[Candidate]:
    out: list[Candidate] = []
    for c in changes:
        if c.action != "update":
            continue
        deal = c.obj
        if not isinstance(deal, Deal):
            continue
        if "amount" in c.fields and (found := detectors.amount_decreased(deal, *c.fields["amount"])):
            out.append(found)
        if "expected_close_date" in c.fields and (
            found := detectors.close_date_slipped(deal, *c.fields["expected_close_date"])
        ):
            out.append(found)
    return out


def _name(obj: Any) -> str:
    if isinstance(obj, Deal | Account):
        return obj.name
    if isinstance(obj, Lead):
        person = f"{obj.first_name or ''} {obj.last_name}".strip()
        company = getattr(obj, "company", None)
        return f"{person} ({company})" if company else person
    if isinstance(obj, Contact):
        return f"{obj.first_name} {obj.last_name}".strip()
    return str(obj)


def _account_of(obj: Any) -> int | None:
    if isinstance(obj, Account):
        return obj.id
    return getattr(obj, "account_id", None)


def _load(uow: UnitOfWork, etype: EntityType, ids: Iterable[int]) -> dict[int, Any]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    model: Any = MODELS[etype]
    return {o.id: o for o in uow.session.scalars(select(model).where(model.id.in_(wanted)))}


def _score_changes(uow: UnitOfWork, changes: list[Change]) -> list[Candidate]:
    rises = [c for c in changes if c.changed("score") and isinstance(c.obj, EntityScore)]
    if not rises:
        return []
    records: dict[EntityType, dict[int, Any]] = {}
    for etype in {EntityType(c.obj.entity_type) for c in rises}:  # type: ignore[attr-defined]
        records[etype] = _load(uow, etype, (c.obj.entity_id for c in rises if c.obj.entity_type == etype))  # type: ignore[attr-defined]
    out: list[Candidate] = []
    for c in rises:
        score = c.obj
        if not isinstance(score, EntityScore):
            continue
        etype = EntityType(score.entity_type)
        record = records[etype].get(score.entity_id)
        if record is None or getattr(record, "deleted_at", None) is not None:
            continue
        before, _after = c.fields["score"]
        grade_before = c.fields["grade"][0] if "grade" in c.fields else score.grade
        change = ScoreChange(
            entity_type=etype,
            entity_id=score.entity_id,
            name=_name(record),
            owner_id=record.owner_id,
            account_id=_account_of(record),
            previous=before if c.action == "update" else score.previous_score,
            score=score.score,
            grade_before=grade_before if c.action == "update" else None,
            grade_after=score.grade,
            computed_at=score.computed_at,
        )
        if found := detectors.score_jump(change):
            out.append(found)
    return out


def _subjects(uow: UnitOfWork, conversations: list[Conversation]) -> dict[str, Subject]:
    """Whom each conversation is about: its account, else its contact, else its lead."""
    links = (
        (EntityType.ACCOUNT, "account_id"),
        (EntityType.CONTACT, "contact_id"),
        (EntityType.LEAD, "lead_id"),
    )
    loaded = {
        etype: _load(uow, etype, (getattr(c, attr) for c in conversations if getattr(c, attr) is not None))
        for etype, attr in links
    }
    out: dict[str, Subject] = {}
    for conv in conversations:
        for etype, attr in links:
            record = loaded[etype].get(getattr(conv, attr) or 0)
            if record is not None and record.deleted_at is None:
                out[conv.id] = Subject(etype, record.id, _name(record), record.owner_id, _account_of(record))
                break
    return out


def _sentiment_changes(uow: UnitOfWork, changes: list[Change], settings: SignalSettings) -> list[Candidate]:
    threshold = settings.sentiment_threshold
    dropped: list[Conversation] = []
    for c in changes:
        if "sentiment_score" not in c.fields:
            continue
        before, after = c.fields["sentiment_score"]
        dropped_now = after is not None and after < threshold and (before is None or before >= threshold)
        if dropped_now and isinstance(c.obj, Conversation):
            dropped.append(c.obj)
    if not dropped:
        return []
    subjects = _subjects(uow, dropped)
    out: list[Candidate] = []
    for conv in dropped:
        if (subject := subjects.get(conv.id)) is None:
            continue
        when = conv.last_message_at or conv.updated_at
        if found := detectors.negative_sentiment(conv.id, conv.sentiment_score, when, subject, settings):
            out.append(found)
    return out


def _ticket_changes(uow: UnitOfWork, changes: list[Change], settings: SignalSettings) -> list[Candidate]:
    latest: dict[int, dt.datetime] = {}
    for c in changes:
        ticket = c.obj
        if c.action == "create" and isinstance(ticket, Ticket) and ticket.account_id is not None:
            latest[ticket.account_id] = max(latest.get(ticket.account_id, ticket.created_at), ticket.created_at)
    if not latest:
        return []
    accounts = _load(uow, EntityType.ACCOUNT, latest)
    window = dt.timedelta(days=settings.ticket_spike_days)
    out: list[Candidate] = []
    for account_id, when in latest.items():
        account = accounts.get(account_id)
        if account is None or account.deleted_at is not None:
            continue
        ids = list(
            uow.session.scalars(
                select(Ticket.id)
                .where(
                    Ticket.account_id == account_id,
                    Ticket.deleted_at.is_(None),
                    Ticket.created_at > when - window,
                    Ticket.created_at <= when,
                )
                .order_by(Ticket.created_at, Ticket.id)
            )
        )
        if found := detectors.ticket_spike(account, ids, settings):
            out.append(found)
    return out


def _contact_changes(uow: UnitOfWork, changes: list[Change]) -> list[Candidate]:
    left: list[tuple[Contact, int, int | None]] = []  # (contact, account left, account moved to)
    for c in changes:
        contact = c.obj
        if c.action != "update" or not c.changed("deleted_at", "account_id") or not isinstance(contact, Contact):
            continue
        role = c.fields["role"][0] if "role" in c.fields else contact.role
        if role != ContactRole.CHAMPION:
            continue
        if "account_id" in c.fields:
            before, after = c.fields["account_id"]
            if before is not None and after != before:
                left.append((contact, before, after))
                continue
        deleted_before, deleted_after = c.fields.get("deleted_at", (None, None))
        if deleted_before is None and deleted_after is not None and contact.account_id is not None:
            left.append((contact, contact.account_id, None))
    if not left:
        return []
    accounts = _load(uow, EntityType.ACCOUNT, (a for _, a, _ in left))
    out: list[Candidate] = []
    for contact, account_id, moved_to in left:
        account = accounts.get(account_id)
        if account is not None and account.deleted_at is None:
            out.append(detectors.champion_left(contact, account, moved_to=moved_to))
    return out
