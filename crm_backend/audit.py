"""The audit trail, written by the session itself: every flushed insert, update and delete of an
audited model adds an AuditLog row in the same transaction, naming the acting user and channel.

No service can forget it, and a rolled-back write leaves no audit row behind. Secret columns are
recorded as changed but never with their values.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session, UOWTransaction

from crm_backend.events import column_changes
from crm_backend.models.audit import AuditLog
from crm_backend.models.base import Base, utcnow

MASK = "***"
# Rows that are not audited: the log itself, per-message bookkeeping, derived scores (they keep
# previous_score), and the engines' own logs and queues (macro runs, notifications, scheduler leases).
NOT_AUDITED = {
    "assistant_changes",
    "audit_log",
    "channel_events",
    "conversation_turns",
    "conversations",
    "link_codes",
    "offered_buttons",
    "entity_scores",
    "macro_runs",
    "notifications",
    "scheduler_leases",
    "rescore_requests",
}
# Columns whose change alone is not worth a row (usage bookkeeping).
IGNORED_COLUMNS = {"updated_at", "version", "last_used_at", "last_message_at"}


def is_secret(column: str) -> bool:
    return column.endswith("_encrypted") or column == "token_hash"


def jsonable(value: Any) -> Any:
    """A value as a JSON log stores it (the audit trail, the macro run log): enum words, money as
    text, ISO dates and date-times, inside dicts and lists too."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _changes(obj: Base, action: str) -> dict[str, Any]:
    if action == "update":
        return {
            key: [MASK, MASK] if is_secret(key) else [jsonable(before), jsonable(after)]
            for key, (before, after) in column_changes(obj).items()
            if key not in IGNORED_COLUMNS
        }
    state = inspect(obj)
    out: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in IGNORED_COLUMNS or (action == "create" and key in {"created_at", "id"}):
            continue
        if action == "create":
            value = getattr(obj, key)
            if value is not None:
                out[key] = [None, MASK if is_secret(key) else jsonable(value)]
        else:  # delete
            hist = state.attrs[key].history
            value = hist.unchanged[0] if hist.unchanged else (hist.deleted[0] if hist.deleted else None)
            if value is not None:
                out[key] = [MASK if is_secret(key) else jsonable(value), None]
    return out


def _entity_id(obj: Base) -> int | None:
    value = getattr(obj, "id", None)  # assigned by the flush, even before the identity map knows it
    return value if isinstance(value, int) else None


def _pending_rows(session: Session) -> list[dict[str, Any]]:
    uow = session.info.get("uow")
    actor = getattr(uow, "actor", None)
    channel = getattr(uow, "channel", "system")
    change_set = getattr(uow, "change_set", None)
    transcript = getattr(uow, "transcript", None)
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for action, objects in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            if not isinstance(obj, Base) or obj.__tablename__ in NOT_AUDITED:
                continue
            if action == "update" and not session.is_modified(obj, include_collections=False):
                continue
            changes = _changes(obj, action)
            if action == "update" and not changes:
                continue
            rows.append(
                {
                    "obj": obj,
                    "at": now,
                    "user_id": actor.user_id if actor else None,
                    "channel": channel,
                    "action": action,
                    "entity_type": obj.__tablename__,
                    "changes": changes,
                    "change_set": change_set,
                    "transcript": transcript,
                }
            )
    return rows


def install(session_class: type[Session] = Session) -> None:
    """Attach the audit listener (idempotent)."""
    if not event.contains(session_class, "after_flush", _after_flush):
        event.listen(session_class, "after_flush", _after_flush)


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    # In after_flush the new/dirty/deleted sets and attribute history still describe this flush,
    # and new rows already have their ids and column defaults.
    rows = _pending_rows(session)
    if not rows:
        return
    for row in rows:
        row["entity_id"] = _entity_id(row.pop("obj"))
    session.connection().execute(insert(AuditLog), rows)
