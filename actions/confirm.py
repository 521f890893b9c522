"""Confirm, then write — and undo.

A write skill never writes directly. It builds a `Pending` change (what to do, on which record
versions, and the sentence that reads it back), and `ask()` sends the read-back with Yes/No
buttons and keeps the change in the `pending_write` slot. "yes" runs `ActionConfirm`, which hands
the change to the registered `Writer` of its kind inside one transaction whose audit rows share a
change set; "no" drops it. If a record moved on since the read-back (its version changed), the
writer's `refresh` reads it again and the user is asked again instead of overwriting.

`ActionUndo` reverts the user's last confirmed write (within the undo window) from the audit log.
The slot is set only by these actions (custom mapping), and the writers call the same services
with the same permission checks as the API, so a forged slot can do nothing the user could not.
"""

from __future__ import annotations

import datetime as dt
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from rasa_sdk.events import ActiveLoop, SlotSet
from sqlalchemy import select

from actions import runtime
from actions.base import PENDING_SLOT, Ask, CrmAction, Turn
from actions.replies import ActionResult, Reply
from crm_backend.errors import Conflict
from crm_backend.models.audit import AuditLog
from crm_backend.services import undo
from crm_backend.store import UnitOfWork

PENDING = PENDING_SLOT
PENDING_TTL_SECONDS = 15 * 60  # a read-back older than this is not applied by a "yes"
YES_NO = [("Yes", "/affirm"), ("No", "/deny")]


@dataclass
class Pending:
    """A change waiting for the user's yes: `kind` names its Writer, `args` are JSON-safe."""

    kind: str
    args: dict[str, Any]
    summary: str  # the read-back, a question without its question mark ("Move 'X' to Negotiation")
    buttons: list[tuple[str, str]] = field(default_factory=list)  # extra choices besides Yes/No
    note: str = ""  # said before the read-back when it is asked again ("That slot has just been taken.")
    at: float = field(default_factory=time.time)  # when it was read back (a late "yes" must not apply it)
    heard: str | None = None  # the spoken request's transcript, when it was asked for by voice

    def as_slot(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_slot(cls, value: object) -> Pending | None:
        if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
            return None
        args = value.get("args")
        return cls(
            value["kind"],
            args if isinstance(args, dict) else {},
            str(value.get("summary") or ""),
            [tuple(b) for b in value.get("buttons") or [] if isinstance(b, list | tuple) and len(b) == 2],
            str(value.get("note") or ""),
            float(value.get("at") or 0.0),
            str(value["heard"]) if isinstance(value.get("heard"), str) else None,
        )


class Writer(ABC):
    """How one kind of confirmed change is applied."""

    kind: ClassVar[str]

    @abstractmethod
    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        """Make the change (raise Conflict when a record's version moved on); return what was done."""

    def refresh(self, uow: UnitOfWork, args: dict[str, Any]) -> Pending | None:
        """The change re-read against the records as they are now (None: it cannot be re-asked)."""
        return None


WRITERS: dict[str, Writer] = {}


def writer(cls: type[Writer]) -> type[Writer]:
    """Class decorator: register a writer under its `kind`."""
    WRITERS[cls.kind] = cls()
    return cls


def ask(pending: Pending, events: list[Any] | None = None, prefix: str = "") -> ActionResult:
    """Read the change back and wait for yes or no."""
    text = f"{prefix}{pending.summary}?"
    return ActionResult(
        [Reply(text, [*YES_NO, *pending.buttons])], [*(events or []), SlotSet(PENDING, pending.as_slot())]
    )


def forget() -> list[Any]:
    return [SlotSet(PENDING, None)]


class WriteAction(CrmAction):
    """A write skill: `read_back` works out the change and returns `ask(Pending(...))` (or raises
    Ask). When the request ends in a question or an error instead, any earlier read-back is dropped,
    so a later "yes" can never apply a change the user has since moved on from."""

    @abstractmethod
    def read_back(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        """Build the read-back of the change this turn asks for."""

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        try:
            return self.read_back(uow, turn)
        except Ask as question:
            question.result.events.extend(forget())
            raise

    def events_after_error(self) -> list[dict[str, Any]]:
        return forget()


class ActionConfirm(CrmAction):
    """'yes': apply the pending change, remember it for undo, say what was done."""

    def name(self) -> str:
        return "action_confirm"

    def prepare_unit_of_work(self, uow: UnitOfWork, turn: Turn) -> None:
        undo.begin_change(uow)
        pending = Pending.from_slot(turn.slot(PENDING))
        heard = [h for h in (pending.heard if pending else None, turn.claims.heard) if h]
        uow.transcript = " → ".join(heard) or None

    def events_after_error(self) -> list[dict[str, Any]]:
        return forget()

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        pending = Pending.from_slot(turn.slot(PENDING))
        if pending is None:
            return ActionResult([Reply("There's nothing waiting for a yes right now. What would you like to do?")])
        if time.time() - pending.at > PENDING_TTL_SECONDS:
            return ActionResult(
                [Reply("That was a while ago, so I didn't apply it. Tell me again what to change.")], forget()
            )
        handler = WRITERS.get(pending.kind)
        if handler is None:
            return ActionResult([Reply("I can't apply that change any more; nothing was changed.")], forget())
        try:
            with uow.session.begin_nested():
                done = handler.apply(uow, pending.args)
        except Conflict:
            again = handler.refresh(uow, pending.args)
            if again is None:
                return ActionResult(
                    [Reply("That record was changed by someone else since I read it back, so I changed nothing.")],
                    forget(),
                )
            note = again.note or "That record changed since I read it back; here it is as it is now."
            return ask(again, prefix=f"{note} ")
        undo.record_change(uow, turn.conversation_id, done)
        undoable = uow.session.scalar(select(AuditLog.id).where(AuditLog.change_set == uow.change_set).limit(1))
        hint = " Say “undo” if that wasn't right." if undoable is not None else ""
        return ActionResult([Reply(f"{done}{hint}")], forget())


class ActionDeny(CrmAction):
    """'no': drop the pending change (nothing is written)."""

    def name(self) -> str:
        return "action_deny"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        if Pending.from_slot(turn.slot(PENDING)) is None:
            return ActionResult([Reply("OK. What would you like to do next?")])
        return ActionResult([Reply("OK, I didn't change anything.")], forget())


class ActionStop(CrmAction):
    """'stop'/'cancel': leave any form and drop the pending change, writing nothing."""

    def name(self) -> str:
        return "action_stop"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        had_something = Pending.from_slot(turn.slot(PENDING)) is not None or bool(turn.slot("requested_slot"))
        text = "OK, stopped. Nothing was saved." if had_something else "OK. Nothing is in progress."
        return ActionResult([Reply(text)], [*forget(), SlotSet("requested_slot", None), ActiveLoop(None)])


def _describe(reverted: list[undo.Reverted]) -> str:
    removed = [r for r in reverted if r.action == "removed"]
    restored = [r for r in reverted if r.action == "restored"]
    parts = []
    if removed:
        parts.append(f"removed {len(removed)} new record{'s' if len(removed) != 1 else ''}")
    if restored:
        fields = sorted({f.replace("_", " ") for r in restored for f in r.fields})
        parts.append(f"put back the previous {', '.join(fields[:6])}")
    return " and ".join(parts)


class ActionUndo(CrmAction):
    """'undo that': revert the user's last confirmed assistant write within the undo window."""

    def name(self) -> str:
        return "action_undo"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        window = dt.timedelta(minutes=runtime.current().undo_window_minutes)
        change = undo.last_change(uow, window)
        if change is None:
            minutes = runtime.current().undo_window_minutes
            return ActionResult([Reply(f"There's no change of yours from the last {minutes} minutes to undo.")])
        summary = change.summary.removesuffix(".")
        reverted = undo.undo_change(uow, change)
        if not reverted:
            return ActionResult([Reply(f"Your last change can't be undone: {summary}. It only recomputed data.")])
        how = _describe(reverted)
        return ActionResult([Reply(f"Undone: {summary}" + (f" (I {how})." if how else "."))], forget())
