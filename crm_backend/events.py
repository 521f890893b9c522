"""Change events: what a unit of work created, changed and deleted, handed to the engines before it
commits, so that scores, macros and signals follow every write in the same transaction.

The session records each flushed change (`Change`); `settle(uow)` (called by `Store.unit_of_work`
just before commit) passes the batch to every handler in `HANDLERS`, flushes what they wrote, and
repeats with the changes *they* caused until nothing new happens. Each change carries its `origin`,
the chain of engine steps that caused it ("macro:3", "scoring"), so a handler can ignore its own
writes and the macro engine can stop A → B → A loops.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from crm_backend.models.automation import EntityType
from crm_backend.models.base import Base

if TYPE_CHECKING:
    from crm_backend.store import UnitOfWork


PENDING = "crm_changes"
ORIGIN = "crm_origin"
MAX_ROUNDS = 12
NOT_TRACKED = {"audit_log", "macro_runs", "notifications", "scheduler_leases", "rescore_requests"}
BOOKKEEPING = {"updated_at", "version"}
TABLE_ENTITY = {
    "leads": EntityType.LEAD,
    "deals": EntityType.DEAL,
    "contacts": EntityType.CONTACT,
    "accounts": EntityType.ACCOUNT,
}

# Engines that react to changes, in order: "module:function", each `(uow, changes) -> None`.
HANDLERS: tuple[str, ...] = (
    "crm_backend.macros.triggers:on_changes",
    "crm_backend.scoring.events:on_changes",
    "crm_backend.signals.events:on_changes",
)
Handler = Callable[["UnitOfWork", list["Change"]], None]


@dataclass(frozen=True)
class Change:
    """One flushed change of one row."""

    table: str  # e.g. "leads"
    entity_id: Any
    action: str  # create | update | delete
    fields: dict[str, tuple[Any, Any]]  # name -> (before, after); create: (None, value)
    obj: Base = field(repr=False)
    origin: tuple[str, ...] = ()  # the engine steps that caused it, outermost first

    @property
    def entity_type(self) -> EntityType | None:
        return TABLE_ENTITY.get(self.table)

    def changed(self, *names: str) -> bool:
        return any(n in self.fields for n in names)


def column_changes(obj: Base) -> dict[str, tuple[Any, Any]]:
    """The columns of a flushed update whose value really changed: name -> (before, after).
    Read in `after_flush`, where attribute history still describes the flush (the audit uses it too)."""
    state = inspect(obj)
    out: dict[str, tuple[Any, Any]] = {}
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if hist.has_changes():
            before = hist.deleted[0] if hist.deleted else None
            after = hist.added[0] if hist.added else None
            if before != after:
                out[attr.key] = (before, after)
    return out


def _fields(obj: Base, action: str) -> dict[str, tuple[Any, Any]]:
    if action == "create":
        return {
            c.key: (None, getattr(obj, c.key)) for c in inspect(obj).mapper.column_attrs if c.key not in BOOKKEEPING
        }
    if action == "update":
        return {k: v for k, v in column_changes(obj).items() if k not in BOOKKEEPING}
    return {}


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    origin: tuple[str, ...] = tuple(session.info.get(ORIGIN, ()))
    pending: list[Change] = session.info.setdefault(PENDING, [])
    for action, objects in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            if not isinstance(obj, Base) or obj.__tablename__ in NOT_TRACKED:
                continue
            if action == "update" and not session.is_modified(obj, include_collections=False):
                continue
            fields = _fields(obj, action)
            if action == "update" and not fields:
                continue
            pending.append(Change(obj.__tablename__, getattr(obj, "id", None), action, fields, obj, origin))


def install(session_class: type[Session] = Session) -> None:
    """Attach the change listener (idempotent)."""
    if not event.contains(session_class, "after_flush", _after_flush):
        event.listen(session_class, "after_flush", _after_flush)


@contextmanager
def origin(session: Session, step: str) -> Iterator[None]:
    """Tag every change flushed inside the block as caused by `step` (nested steps form a chain)."""
    session.flush()  # what came before belongs to the outer origin
    chain: tuple[str, ...] = tuple(session.info.get(ORIGIN, ()))
    session.info[ORIGIN] = (*chain, step)
    try:
        yield
        session.flush()
    finally:
        session.info[ORIGIN] = chain


_resolved: list[Handler] | None = None


def handlers() -> list[Handler]:
    global _resolved
    if _resolved is None:
        found: list[Handler] = []
        for spec in HANDLERS:
            module_name, _, name = spec.partition(":")
            found.append(getattr(importlib.import_module(module_name), name))
        _resolved = found
    return _resolved


def settle(uow: UnitOfWork) -> None:
    """Run the engines over this unit of work's changes until they cause no more (called before commit)."""
    session = uow.session
    for _ in range(MAX_ROUNDS):
        session.flush()
        batch: list[Change] = session.info.pop(PENDING, [])
        if not batch:
            return
        for handler in handlers():
            handler(uow, batch)
    raise RuntimeError(f"changes kept causing changes after {MAX_ROUNDS} rounds; giving up")


def drop_caused_by(session: Session, step: str) -> None:
    """Forget the changes `step` caused (its savepoint was rolled back, so they never happened)."""
    pending: list[Change] = session.info.get(PENDING, [])
    session.info[PENDING] = [c for c in pending if step not in c.origin]


def discard(session: Session) -> None:
    """Forget recorded changes (after a rollback, or when a unit of work only reads)."""
    session.info.pop(PENDING, None)
    session.info.pop(ORIGIN, None)
