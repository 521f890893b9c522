"""The acting user's agenda: their open activities, calendar bookings and pending reminders in a time
window, and what is overdue — the read side of "what's on my day".

Only the user's own items count (a manager's agenda is not their team's), read through the same
permission scopes as every list, so nothing the user may not see can appear; bookings they attend
but do not organise are theirs too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_

from crm_backend.models.accounts import Account
from crm_backend.models.activities import Activity, ActivityStatus, BookingStatus, Reminder, ReminderStatus
from crm_backend.services import calendar, records
from crm_backend.store import UnitOfWork

MAX_ITEMS = 200  # per list: an agenda is read in a chat, not exported
DONE = (ActivityStatus.COMPLETED, ActivityStatus.CANCELLED)
NOT_HAPPENING = (BookingStatus.CANCELLED, BookingStatus.COMPLETED)


@dataclass(frozen=True)
class AgendaEntry:
    """One thing on the agenda, whichever table it comes from."""

    kind: str  # "activity", "booking" or "reminder"
    type: str  # Call, Meeting, Task, Email, Note; a booking's Meeting, Call, Demo, Presentation; Reminder
    title: str
    at: datetime  # when it starts, is due, or reminds (aware, UTC)
    end: datetime | None
    due: bool  # `at` is a deadline, not a start time
    priority: str | None
    account: str | None  # the account it is about, when the user may see it
    record_id: int


def _account_names(uow: UnitOfWork, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    stmt = records.scoped(records.resource("accounts"), uow.require_actor()).where(Account.id.in_(wanted))
    return {a.id: a.name for a in uow.session.scalars(stmt)}


def _own_open_activities(uow: UnitOfWork) -> Select[Any]:
    actor = uow.require_actor()
    return records.scoped(records.resource("activities"), actor).where(
        Activity.owner_id == actor.user_id, Activity.status.not_in(DONE)
    )


def _activity_entry(a: Activity, at: datetime, names: dict[int, str]) -> AgendaEntry:
    return AgendaEntry(
        kind="activity",
        type=a.type.value,
        title=a.subject,
        at=at,
        end=a.end_at if at == a.start_at else None,
        due=at != a.start_at,
        priority=a.priority.value,
        account=names.get(a.account_id) if a.account_id is not None else None,
        record_id=a.id,
    )


def _listed_at(a: Activity, start: datetime, end: datetime) -> datetime | None:
    """A meeting that starts in the window is listed at its start; a task or a call to make at its deadline."""
    if a.start_at is not None and start <= a.start_at < end:
        return a.start_at
    return a.due_at


def scheduled(uow: UnitOfWork, start: datetime, end: datetime) -> list[AgendaEntry]:
    """The user's open activities starting or due in [start, end) and their live bookings overlapping
    it, in time order. A booking and an activity with the same title and start are shown once."""
    actor = uow.require_actor()
    stmt = _own_open_activities(uow).where(
        or_(
            and_(Activity.start_at >= start, Activity.start_at < end),
            and_(Activity.due_at >= start, Activity.due_at < end),
        )
    )
    order = (func.coalesce(Activity.start_at, Activity.due_at), Activity.id)
    rows: list[Activity] = list(uow.session.scalars(stmt.order_by(*order).limit(MAX_ITEMS)))
    names = _account_names(uow, (a.account_id for a in rows))
    activities = [_activity_entry(a, at, names) for a in rows if (at := _listed_at(a, start, end)) is not None]
    bookings = [b for b in calendar.user_bookings(uow, actor.user_id, start, end) if b.status not in NOT_HAPPENING]
    names = _account_names(uow, (b.account_id for b in bookings))
    seen = {(e.at, e.title.casefold()) for e in activities}
    entries = activities + [
        AgendaEntry(
            kind="booking",
            type=b.type.value,
            title=b.title,
            at=b.start_at,
            end=b.end_at,
            due=False,
            priority=None,
            account=names.get(b.account_id) if b.account_id is not None else None,
            record_id=b.id,
        )
        for b in bookings[:MAX_ITEMS]
        if (b.start_at, b.title.casefold()) not in seen
    ]
    return sorted(entries, key=lambda e: (e.at, e.kind, e.record_id))


def overdue(uow: UnitOfWork, before: datetime) -> list[AgendaEntry]:
    """The user's activities due before `before` (the start of their today) that are still open,
    oldest deadline first."""
    stmt = _own_open_activities(uow).where(Activity.due_at < before)
    rows: list[Activity] = list(uow.session.scalars(stmt.order_by(Activity.due_at, Activity.id).limit(MAX_ITEMS)))
    names = _account_names(uow, (a.account_id for a in rows))
    return [_activity_entry(a, a.due_at, names) for a in rows if a.due_at is not None]


def pending_reminders(uow: UnitOfWork, start: datetime, end: datetime) -> list[AgendaEntry]:
    """The user's reminders not yet sent that fall in [start, end), in time order."""
    actor = uow.require_actor()
    stmt = (
        records.scoped(records.resource("reminders"), actor)
        .where(
            Reminder.owner_id == actor.user_id,
            Reminder.status == ReminderStatus.PENDING,
            Reminder.remind_at >= start,
            Reminder.remind_at < end,
        )
        .order_by(Reminder.remind_at, Reminder.id)
        .limit(MAX_ITEMS)
    )
    rows: list[Reminder] = list(uow.session.scalars(stmt))
    names = _account_names(uow, (r.account_id for r in rows))
    return [
        AgendaEntry(
            kind="reminder",
            type="Reminder",
            title=r.message,
            at=r.remind_at,
            end=None,
            due=False,
            priority=None,
            account=names.get(r.account_id) if r.account_id is not None else None,
            record_id=r.id,
        )
        for r in rows
    ]
