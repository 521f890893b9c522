"""Undo for the assistant: a confirmed write is recorded as an AssistantChange, and its audit rows
(which share the change's `change_set`) say exactly what to put back.

Reverting runs as the same user through the same permission rules: created records are deleted
(soft-deleted where the model keeps history), updated fields get their previous values back. A
field someone changed again since is not overwritten: the whole undo stops with a Conflict and
nothing is reverted. Deletions are not undone here (the assistant never deletes).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Mapper

from crm_backend.audit import IGNORED_COLUMNS
from crm_backend.errors import Conflict, NotFound, PermissionDenied
from crm_backend.models.audit import AuditLog
from crm_backend.models.base import Base, utcnow
from crm_backend.models.conversations import AssistantChange
from crm_backend.services import calendar, records
from crm_backend.services.scopes import may_change
from crm_backend.store import UnitOfWork

DEFAULT_WINDOW = dt.timedelta(minutes=30)


def begin_change(uow: UnitOfWork) -> str:
    """Mark every audit row this unit of work writes from now on as one undoable change."""
    uow.change_set = uuid.uuid4().hex
    return uow.change_set


def record_change(uow: UnitOfWork, conversation_id: str, summary: str) -> AssistantChange:
    """Remember the confirmed write made in this unit of work, even one with nothing to put back
    (a recomputed score): "undo" must then say so, not revert an older change instead."""
    actor = uow.require_actor()
    if uow.change_set is None:
        raise RuntimeError("begin_change() was not called for this unit of work")
    uow.session.flush()
    change = AssistantChange(
        user_id=actor.user_id,
        conversation_id=conversation_id,
        channel=uow.channel,
        change_set=uow.change_set,
        summary=summary[:500],
    )
    uow.session.add(change)
    uow.session.flush()
    return change


def last_change(uow: UnitOfWork, window: dt.timedelta = DEFAULT_WINDOW) -> AssistantChange | None:
    """The acting user's newest assistant write that is not undone yet and not older than `window`."""
    actor = uow.require_actor()
    return uow.session.scalar(
        select(AssistantChange)
        .where(
            AssistantChange.user_id == actor.user_id,
            AssistantChange.undone_at.is_(None),
            AssistantChange.at >= utcnow() - window,
        )
        .order_by(AssistantChange.at.desc(), AssistantChange.id.desc())
        .limit(1)
    )


@dataclass(frozen=True, slots=True)
class Reverted:
    entity_type: str
    entity_id: int
    action: str  # "removed" (it was created) or "restored" (fields put back)
    fields: tuple[str, ...] = ()


def _model_for(table: str) -> type[Base] | None:
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        if getattr(cls, "__tablename__", None) == table:
            return cls
    return None


def _resource_for(table: str) -> records.Resource | None:
    """The REST collection of a table (None for join rows, attendees and the like)."""
    records.resource("leads")  # makes sure every collection is registered
    return records.BY_TABLE.get(table)


def _restore(mapper: Mapper[Any], key: str, value: Any) -> Any:
    """A value as the audit log stored it (jsonable) back into the column's Python type."""
    if value is None:
        return None
    column_type = mapper.columns[key].type
    kind: type = object
    for candidate in (column_type, getattr(column_type, "impl_instance", None)):  # TypeDecorators say object
        try:
            kind = candidate.python_type if candidate is not None else kind
        except NotImplementedError:
            continue
        if kind is not object:
            break
    if issubclass(kind, enum.Enum):
        return kind(value)
    if kind is Decimal:
        return Decimal(str(value))
    if kind is dt.datetime and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if kind is dt.date and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def _load(uow: UnitOfWork, table: str, entity_id: int) -> tuple[Any, records.Resource | None]:
    res = _resource_for(table)
    if res is not None:
        try:
            return records.get_record(uow, res, entity_id), res
        except NotFound:
            return None, res
    model = _model_for(table)
    return (uow.session.get(model, entity_id) if model is not None else None), None


def undo_change(uow: UnitOfWork, change: AssistantChange) -> list[Reverted]:
    """Revert `change` (newest audit row first) or raise and revert nothing. An empty result means
    the change had nothing to put back (it only recomputed derived data); it is marked done."""
    actor = uow.require_actor()
    if change.user_id != actor.user_id:
        raise NotFound("There is no change of yours to undo.")
    rows = uow.session.scalars(
        select(AuditLog).where(AuditLog.change_set == change.change_set).order_by(AuditLog.id.desc())
    ).all()
    if not any(row.entity_id is not None and row.action != "delete" for row in rows):
        change.undone_at = utcnow()  # nothing to put back (a recomputed score): it no longer stands in the way
        uow.session.flush()
        return []
    begin_change(uow)
    reverted: list[Reverted] = []
    for row in rows:
        if row.entity_id is None or row.action == "delete":
            continue
        obj, res = _load(uow, row.entity_type, row.entity_id)
        if obj is None:
            if row.action == "create":
                continue  # already gone
            raise Conflict(f"A {row.entity_type.rstrip('s')} this change touched no longer exists.")
        if res is not None and not may_change(res.visibility, actor, obj):
            if row.action == "create":
                continue  # shared or someone else's (a tag, a signal the engines raised): left in place
            raise PermissionDenied("You may no longer change a record this change touched.")
        if row.action == "create":
            if row.entity_type == "recurring_activities":
                # The scheduler may already have laid out occurrences of the new series.
                calendar.drop_future_occurrences(uow, row.entity_id, change.at - dt.timedelta(minutes=1))
            if res is not None and res.soft_delete:
                if getattr(obj, "deleted_at", None) is None:
                    obj.deleted_at = utcnow()
            else:
                uow.session.delete(obj)
            uow.session.flush()
            reverted.append(Reverted(row.entity_type, row.entity_id, "removed"))
            continue
        mapper = inspect(type(obj))
        fields = []
        for key, pair in (row.changes or {}).items():
            if key in IGNORED_COLUMNS or key not in mapper.columns or not isinstance(pair, list) or len(pair) != 2:
                continue
            before, after = pair
            if getattr(obj, key) != _restore(mapper, key, after):  # 60000 == 60000.00, same instant
                raise Conflict(
                    f"Someone changed {key.replace('_', ' ')} of that {row.entity_type.rstrip('s')} since, "
                    "so I left everything as it is."
                )
            setattr(obj, key, _restore(mapper, key, before))
            fields.append(key)
        uow.session.flush()
        if fields:
            reverted.append(Reverted(row.entity_type, row.entity_id, "restored", tuple(fields)))
    change.undone_at = utcnow()
    uow.session.flush()
    return reverted
