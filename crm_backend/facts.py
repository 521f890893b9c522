"""The facts of a record that conditions (scoring rules, macros, signals) may test.

For every lead, deal, contact and account: its own columns (enums as their words, money as
numbers), `custom.<name>` for each custom field, its `tags`, and related data read in a few
grouped queries for a whole batch of records at once (so scoring 100,000 leads is not 400,000
queries):

- all:      activity_count, open_task_count, last_activity_at, tags
- lead:     bant_known (0-4 of budget, authority, need, timeline), conversation_sentiment
- deal:     account.<column>, owner.username, owner.team_id
- contact:  account.<column>
- account:  contact_count, open_deal_count, open_pipeline, won_deal_count, won_amount,
            lost_deal_count, open_ticket_count, conversation_sentiment

`fields(entity_type)` lists every name with its kind (text, number, date, bool, list), for
validating conditions and documenting what can be asked.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Numeric, and_, func, select
from sqlalchemy.orm import InstrumentedAttribute

from crm_backend.models.accounts import Account
from crm_backend.models.activities import Activity, ActivityStatus, ActivityType
from crm_backend.models.annotations import CustomFieldDefinition, Tag, Tagging
from crm_backend.models.automation import EntityType
from crm_backend.models.base import Base
from crm_backend.models.contacts import Contact
from crm_backend.models.conversations import Conversation
from crm_backend.models.deals import CLOSED_STAGES, Deal, DealStage
from crm_backend.models.leads import Lead
from crm_backend.models.service_desk import Ticket, TicketStatus
from crm_backend.models.users import User
from crm_backend.store import UnitOfWork

MODELS: dict[EntityType, type[Base]] = {
    EntityType.LEAD: Lead,
    EntityType.DEAL: Deal,
    EntityType.CONTACT: Contact,
    EntityType.ACCOUNT: Account,
}
# Columns that are bookkeeping or derived keys, not facts anyone would test.
SKIPPED = {"version", "email_key", "phone_key", "company_key", "dedup_key", "custom_fields", "health_explanation"}
ACTIVITY_LINK: dict[EntityType, InstrumentedAttribute[Any]] = {
    EntityType.LEAD: Activity.lead_id,
    EntityType.DEAL: Activity.deal_id,
    EntityType.CONTACT: Activity.contact_id,
    EntityType.ACCOUNT: Activity.account_id,
}
OPEN_TICKETS = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)
BATCH = 500  # ids per IN (...) list


def _kind(column: Any) -> str:
    t = column.type
    if isinstance(t, Boolean):
        return "bool"
    if isinstance(t, Integer | Numeric | Float):
        return "number"
    if isinstance(t, Date) or isinstance(getattr(t, "impl", None), DateTime) or isinstance(t, DateTime):
        return "date"
    return "text"


def _columns(model: type[Base]) -> dict[str, str]:
    return {c.key: _kind(c) for c in model.__table__.columns if c.key not in SKIPPED}


RELATED: dict[EntityType, dict[str, str]] = {
    EntityType.LEAD: {"bant_known": "number", "conversation_sentiment": "number"},
    EntityType.DEAL: {
        **{f"account.{k}": v for k, v in _columns(Account).items()},
        "owner.username": "text",
        "owner.team_id": "number",
    },
    EntityType.CONTACT: {f"account.{k}": v for k, v in _columns(Account).items()},
    EntityType.ACCOUNT: {
        "contact_count": "number",
        "open_deal_count": "number",
        "open_pipeline": "number",
        "won_deal_count": "number",
        "won_amount": "number",
        "lost_deal_count": "number",
        "open_ticket_count": "number",
        "conversation_sentiment": "number",
    },
}
COMMON = {"activity_count": "number", "open_task_count": "number", "last_activity_at": "date", "tags": "list"}


def fields(entity_type: EntityType | str, uow: UnitOfWork | None = None) -> dict[str, str]:
    """Every fact name of `entity_type` with its kind; with `uow`, its custom fields too."""
    etype = EntityType(entity_type)
    out = {**_columns(MODELS[etype]), **COMMON, **RELATED[etype]}
    if uow is not None:
        defs = uow.session.scalars(
            select(CustomFieldDefinition).where(CustomFieldDefinition.entity_type.in_([etype.value, f"{etype.value}s"]))
        )
        kinds = {"number": "number", "date": "date", "boolean": "bool"}
        for d in defs:
            out[f"custom.{d.name}"] = kinds.get(d.field_type.value, "text")
    return out


def plain(value: Any) -> Any:
    """A column value as a condition sees it: enum words, numbers for money."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    return value


def own_facts(obj: Base) -> dict[str, Any]:
    out = {c.key: plain(getattr(obj, c.key)) for c in obj.__table__.columns if c.key not in SKIPPED}
    for name, value in (getattr(obj, "custom_fields", None) or {}).items():
        out[f"custom.{name}"] = value
    return out


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), BATCH):
        yield ids[i : i + BATCH]


def facts_for(uow: UnitOfWork, entity_type: EntityType | str, objs: Sequence[Base]) -> dict[int, dict[str, Any]]:
    """The facts of each of `objs` (all of `entity_type`), keyed by id."""
    etype = EntityType(entity_type)
    out: dict[int, dict[str, Any]] = {}
    for obj in objs:
        facts = own_facts(obj)
        facts.update({"activity_count": 0, "open_task_count": 0, "last_activity_at": None, "tags": []})
        out[int(obj.id)] = facts  # type: ignore[attr-defined]
    ids = list(out)
    if not ids:
        return out
    session = uow.session
    link = ACTIVITY_LINK[etype]
    for chunk in _chunks(ids):
        last = func.max(func.coalesce(Activity.completed_at, Activity.start_at, Activity.created_at))
        open_tasks = func.sum(
            func.cast(and_(Activity.type == ActivityType.TASK, Activity.status != ActivityStatus.COMPLETED), Integer)
        )
        stmt = (
            select(link, func.count(Activity.id), open_tasks, last)
            .where(link.in_(chunk), Activity.deleted_at.is_(None))
            .group_by(link)
        )
        for rid, count, tasks, when in session.execute(stmt):
            out[rid]["activity_count"] = int(count)
            out[rid]["open_task_count"] = int(tasks or 0)
            out[rid]["last_activity_at"] = _aware(when)
        tags = select(Tagging.entity_id, Tag.name).join(Tag, Tag.id == Tagging.tag_id)
        for rid, name in session.execute(
            tags.where(Tagging.entity_type == etype.value, Tagging.entity_id.in_(chunk)).order_by(Tag.name)
        ):
            out[rid]["tags"].append(name)
    _RELATED_LOADERS[etype](uow, out)
    return out


def facts_of(uow: UnitOfWork, entity_type: EntityType | str, obj: Base) -> dict[str, Any]:
    return facts_for(uow, entity_type, [obj])[int(obj.id)]  # type: ignore[attr-defined]


def _aware(value: Any) -> Any:
    if isinstance(value, str):  # SQLite returns aggregates of date-times as text
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _sentiment(uow: UnitOfWork, column: Any, ids: Sequence[int]) -> dict[int, float]:
    stmt = (
        select(column, func.avg(Conversation.sentiment_score))
        .where(column.in_(ids), Conversation.sentiment_score.is_not(None))
        .group_by(column)
    )
    return {rid: float(avg) for rid, avg in uow.session.execute(stmt) if avg is not None}


def _lead_related(uow: UnitOfWork, out: dict[int, dict[str, Any]]) -> None:
    for facts in out.values():
        known = [
            facts.get("budget") is not None,
            facts.get("has_authority") is not None,
            bool(facts.get("need")),
            bool(facts.get("timeline")),
        ]
        facts["bant_known"] = sum(known)
        facts["conversation_sentiment"] = None
    for chunk in _chunks(list(out)):
        for rid, avg in _sentiment(uow, Conversation.lead_id, chunk).items():
            out[rid]["conversation_sentiment"] = avg


def _account_columns(uow: UnitOfWork, out: dict[int, dict[str, Any]]) -> None:
    account_ids = sorted({f["account_id"] for f in out.values() if f.get("account_id")})
    accounts: dict[int, Account] = {}
    for chunk in _chunks(account_ids):
        accounts.update({a.id: a for a in uow.session.scalars(select(Account).where(Account.id.in_(chunk)))})
    names = _columns(Account)
    for facts in out.values():
        account = accounts.get(facts.get("account_id") or 0)
        for name in names:
            facts[f"account.{name}"] = plain(getattr(account, name)) if account is not None else None


def _deal_related(uow: UnitOfWork, out: dict[int, dict[str, Any]]) -> None:
    _account_columns(uow, out)
    owner_ids = sorted({f["owner_id"] for f in out.values()})
    owners = {u.id: u for u in uow.session.scalars(select(User).where(User.id.in_(owner_ids)))}
    for facts in out.values():
        owner = owners.get(facts["owner_id"])
        facts["owner.username"] = owner.username if owner else None
        facts["owner.team_id"] = owner.team_id if owner else None


def _account_related(uow: UnitOfWork, out: dict[int, dict[str, Any]]) -> None:
    for facts in out.values():
        for name in RELATED[EntityType.ACCOUNT]:
            facts[name] = 0
        facts["conversation_sentiment"] = None
    session = uow.session
    for chunk in _chunks(list(out)):
        contacts = (
            select(Contact.account_id, func.count(Contact.id))
            .where(Contact.account_id.in_(chunk), Contact.deleted_at.is_(None))
            .group_by(Contact.account_id)
        )
        for rid, n in session.execute(contacts):
            if rid is not None:
                out[rid]["contact_count"] = int(n)
        deals = (
            select(Deal.account_id, Deal.stage, func.count(Deal.id), func.sum(Deal.amount))
            .where(Deal.account_id.in_(chunk), Deal.deleted_at.is_(None))
            .group_by(Deal.account_id, Deal.stage)
        )
        for rid, stage, n, total in session.execute(deals):
            facts = out[rid]
            stage = DealStage(stage)
            if stage not in CLOSED_STAGES:
                facts["open_deal_count"] += int(n)
                facts["open_pipeline"] += float(total or 0)
            elif stage is DealStage.CLOSED_WON:
                facts["won_deal_count"] += int(n)
                facts["won_amount"] += float(total or 0)
            else:
                facts["lost_deal_count"] += int(n)
        tickets = (
            select(Ticket.account_id, func.count(Ticket.id))
            .where(Ticket.account_id.in_(chunk), Ticket.status.in_(OPEN_TICKETS), Ticket.deleted_at.is_(None))
            .group_by(Ticket.account_id)
        )
        for rid, n in session.execute(tickets):
            if rid is not None:
                out[rid]["open_ticket_count"] = int(n)
        for rid, avg in _sentiment(uow, Conversation.account_id, chunk).items():
            out[rid]["conversation_sentiment"] = avg


_RELATED_LOADERS = {
    EntityType.LEAD: _lead_related,
    EntityType.DEAL: _deal_related,
    EntityType.CONTACT: _account_columns,
    EntityType.ACCOUNT: _account_related,
}
