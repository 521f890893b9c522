"""Firing due reminders: each becomes a notification (feed item + queued delivery) and, in the same
transaction, is marked Sent or, when it recurs, moved on to its next occurrence. A restart therefore
cannot fire a reminder twice (and the notification's dedupe key would refuse a second one anyway)."""

from __future__ import annotations

import datetime as dt
import logging
import re

from sqlalchemy import select

from crm_backend.errors import ValidationFailed
from crm_backend.models.activities import Reminder, ReminderStatus
from crm_backend.models.automation import EntityType
from crm_backend.models.users import User
from crm_backend.notifications import Message, notify_many
from crm_backend.services.calendar import parse_rule, zone
from crm_backend.store import Store

log = logging.getLogger(__name__)

COUNT = re.compile(r"COUNT=(\d+)", re.IGNORECASE)


def dedupe_key(reminder: Reminder) -> str:
    return f"reminder:{reminder.id}:{reminder.remind_at.astimezone(dt.UTC).isoformat()}"


def following(reminder: Reminder, now: dt.datetime, tz: str) -> tuple[dt.datetime | None, str]:
    """The reminder's next occurrence after `now` and the rule that remains.

    The rule is read from the current `remind_at`, in the owner's time zone (a daily 09:00 stays 09:00
    local across DST). Occurrences missed while the scheduler was down are skipped, not fired in a
    burst. COUNT counts the reminders still to come, so it goes down as they pass.
    """
    rule = reminder.recurrence or ""
    match = COUNT.search(rule)
    left = int(match.group(1)) if match else None
    upcoming = parse_rule(rule, reminder.remind_at, tz).xafter(reminder.remind_at.astimezone(zone(tz)))
    for passed, occurrence in enumerate(upcoming, start=1):
        if occurrence > now:
            if left is not None:
                rule = COUNT.sub(f"COUNT={left - passed}", rule)
            return occurrence.astimezone(dt.UTC), rule
    return None, rule


def _entity(reminder: Reminder) -> tuple[EntityType | None, int | None]:
    for etype, value in (
        (EntityType.DEAL, reminder.deal_id),
        (EntityType.LEAD, reminder.lead_id),
        (EntityType.CONTACT, reminder.contact_id),
        (EntityType.ACCOUNT, reminder.account_id),
    ):
        if value is not None:
            return etype, value
    return None, None


def fire(reminder: Reminder, now: dt.datetime, zones: dict[int, str]) -> Message:
    """The reminder's notification, and the reminder moved on (Sent, or to its next occurrence).

    The caller queues the message in the same transaction; its dedupe key (this occurrence) makes a
    second queueing (e.g. a reminder set back to Pending by hand) a no-op.
    """
    message = _message(reminder, now)
    reminder.sent_at = now
    reminder.last_error = None
    if reminder.recurrence:
        upcoming, rule = following(reminder, now, zones.get(reminder.owner_id, "UTC"))
        if upcoming is not None:
            reminder.remind_at = upcoming
            reminder.recurrence = rule
            return message
    reminder.status = ReminderStatus.SENT
    return message


def _message(reminder: Reminder, now: dt.datetime) -> Message:
    entity_type, entity_id = _entity(reminder)
    return Message(
        reminder.owner_id,
        "reminder",
        reminder.message[:300],
        reminder.message if len(reminder.message) > 300 else None,
        entity_type=entity_type,
        entity_id=entity_id,
        data={
            "reminder_id": reminder.id,
            "remind_at": reminder.remind_at.astimezone(dt.UTC).isoformat(),
            "activity_id": reminder.activity_id,
        },
        dedupe_key=dedupe_key(reminder),
        due_at=now,  # due at the tick that fired it, not a moment later
    )


def _known_zone(name: str | None) -> str:
    try:
        zone(name)
    except ValidationFailed:
        log.warning("unknown time zone %r on a user; their recurring reminders use UTC", name)
        return "UTC"
    return name or "UTC"


def fire_due(store: Store, now: dt.datetime, *, batch: int = 500, max_batches: int = 200) -> int:
    """Fire every reminder due at `now`, one transaction per batch; returns how many fired."""
    fired = 0
    for _ in range(max_batches):
        with store.unit_of_work(None, "system") as uow:
            due = list(
                uow.session.scalars(
                    select(Reminder)
                    .where(Reminder.status == ReminderStatus.PENDING, Reminder.remind_at <= now)
                    .order_by(Reminder.remind_at, Reminder.id)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            owners = {r.owner_id for r in due}
            zones = {
                uid: _known_zone(tz)
                for uid, tz in uow.session.execute(select(User.id, User.timezone).where(User.id.in_(owners)))
            }
            with uow.session.no_autoflush:  # one flush for the whole batch
                messages = [fire(reminder, now, zones) for reminder in due]
            notify_many(uow, messages)
        fired += len(due)
        if len(due) < batch:
            break
    return fired
