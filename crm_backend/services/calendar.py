"""Calendar bookings (attendees, conflicts, free slots, iCalendar export) and recurring activities
(RFC 5545 rules, expanded in the series' own time zone so 09:00 stays 09:00 across DST)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
from dateutil.rrule import rrule, rruleset, rrulestr
from pydantic import BaseModel, ConfigDict, EmailStr
from sqlalchemy import and_, delete, or_, select, update

from crm_backend.errors import ValidationFailed
from crm_backend.models.activities import (
    Activity,
    ActivityStatus,
    BookingAttendee,
    BookingStatus,
    CalendarBooking,
    RecurrencePattern,
    RecurringActivity,
    Reminder,
)
from crm_backend.models.contacts import Contact
from crm_backend.models.users import User
from crm_backend.store import UnitOfWork

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class AttendeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int | None = None
    contact_id: int | None = None
    email: EmailStr | None = None
    required: bool = True


def prepare_booking(uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
    attendees = values.pop("attendees", None)
    if attendees is not None:
        rows = []
        for i, a in enumerate(attendees):
            item = a if isinstance(a, AttendeeIn) else AttendeeIn.model_validate(a)
            if sum(x is not None for x in (item.user_id, item.contact_id, item.email)) != 1:
                raise ValidationFailed({f"attendees.{i}": "give exactly one of user_id, contact_id, email"})
            rows.append(
                BookingAttendee(
                    user_id=item.user_id, contact_id=item.contact_id, email=item.email, required=item.required
                )
            )
        values["attendees"] = rows
    return values


def check_booking_times(uow: UnitOfWork, booking: CalendarBooking, values: dict[str, Any]) -> None:
    if booking.end_at <= booking.start_at:
        raise ValidationFailed({"end_at": "must be after start_at"})


def check_booking_update(uow: UnitOfWork, booking: CalendarBooking, changes: dict[str, tuple[Any, Any]]) -> None:
    start = changes["start_at"][1] if "start_at" in changes else booking.start_at
    end = changes["end_at"][1] if "end_at" in changes else booking.end_at
    if end <= start:
        raise ValidationFailed({"end_at": "must be after start_at"})


def conflicts(uow: UnitOfWork, user_id: int, start: dt.datetime, end: dt.datetime) -> list[CalendarBooking]:
    """Live bookings overlapping [start, end) that `user_id` organises or attends.

    Intervals are half-open, so back-to-back meetings (one ends at 10:00, the next starts at 10:00)
    do not conflict.
    """
    if end <= start:
        raise ValidationFailed({"end": "must be after start"})
    attending = select(BookingAttendee.booking_id).where(BookingAttendee.user_id == user_id)
    stmt = (
        select(CalendarBooking)
        .where(
            or_(CalendarBooking.owner_id == user_id, CalendarBooking.id.in_(attending)),
            CalendarBooking.status.not_in([BookingStatus.CANCELLED, BookingStatus.COMPLETED]),
            and_(CalendarBooking.start_at < end, CalendarBooking.end_at > start),
        )
        .order_by(CalendarBooking.start_at)
    )
    return list(uow.session.scalars(stmt))


def build_rrule(values: dict[str, Any]) -> str:
    """An RFC 5545 RRULE from the pattern, interval, weekdays, month days and end condition."""
    pattern = RecurrencePattern(values["pattern"])
    parts = [f"FREQ={pattern.value.upper()}", f"INTERVAL={int(values.get('interval') or 1)}"]
    weekdays = [w.upper() for w in values.get("weekdays") or []]
    if bad := [w for w in weekdays if w not in WEEKDAYS]:
        raise ValidationFailed({"weekdays": f"use two-letter days {', '.join(WEEKDAYS)} (got {bad})"})
    if weekdays:
        parts.append("BYDAY=" + ",".join(weekdays))
    month_days = values.get("month_days") or []
    if bad_days := [d for d in month_days if not (1 <= abs(int(d)) <= 31)]:
        raise ValidationFailed({"month_days": f"days of the month are 1..31 or -31..-1 (got {bad_days})"})
    if month_days:
        parts.append("BYMONTHDAY=" + ",".join(str(int(d)) for d in month_days))
    if values.get("until") and values.get("count"):
        raise ValidationFailed({"count": "give either until or count, not both"})
    if values.get("until"):
        parts.append("UNTIL=" + values["until"].astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
    if values.get("count"):
        parts.append(f"COUNT={int(values['count'])}")
    return "RRULE:" + ";".join(parts)


def check_reminder_recurrence(uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
    """A reminder's `recurrence` must be a valid RFC 5545 rule ("RRULE:FREQ=DAILY;COUNT=3")."""
    rule = values.get("recurrence")
    if rule:
        try:
            rrulestr(rule, dtstart=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        except (ValueError, TypeError) as exc:
            raise ValidationFailed({"recurrence": f"not an RFC 5545 rule: {exc}"}) from exc
    return values


def zone(name: str | None, field: str = "timezone") -> ZoneInfo:
    """The IANA time zone `name` ("Europe/Berlin"), or a 422 naming `field`."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" names a folder
        raise ValidationFailed({field: f"not a known time zone: {name!r}"}) from exc


def parse_rule(rule: str, starts_at: dt.datetime, tz: str = "UTC") -> rrule | rruleset:
    """`rule` anchored at `starts_at` as wall-clock time in `tz`: the occurrences keep their local time
    of day across DST changes (the offset moves, 09:00 stays 09:00)."""
    return rrulestr(rule, dtstart=starts_at.astimezone(zone(tz)))


def occurrences_between(
    rule: str, starts_at: dt.datetime, tz: str, start: dt.datetime, end: dt.datetime
) -> list[dt.datetime]:
    """Occurrences in [start, end], in UTC."""
    local = zone(tz)
    found = parse_rule(rule, starts_at, tz).between(start.astimezone(local), end.astimezone(local), inc=True)
    return [d.astimezone(dt.UTC) for d in found]


def next_occurrence(rule: str, starts_at: dt.datetime, after: dt.datetime, tz: str = "UTC") -> dt.datetime | None:
    """The first occurrence at or after `after`, in UTC (None once the series has ended)."""
    result = parse_rule(rule, starts_at, tz).after(after.astimezone(zone(tz)), inc=True)
    return result.astimezone(dt.UTC) if isinstance(result, dt.datetime) else None


RECURRENCE_FIELDS = ("pattern", "interval", "weekdays", "month_days", "until", "count", "starts_at", "timezone")
# Fields copied onto each generated occurrence: changing them regenerates the future ones too.
OCCURRENCE_FIELDS = ("subject", "activity_type", "lead_id", "account_id", "contact_id", "deal_id", "owner_id")
DEFAULT_HORIZON = dt.timedelta(days=30)


def recurring_before_create(uow: UnitOfWork, obj: Any, values: dict[str, Any]) -> None:
    zone(obj.timezone)
    source = {f: getattr(obj, f) for f in RECURRENCE_FIELDS}
    obj.rrule = build_rrule(source)
    obj.next_occurrence_at = next_occurrence(obj.rrule, obj.starts_at, obj.starts_at, obj.timezone)


def recurring_before_update(uow: UnitOfWork, obj: Any, changes: dict[str, tuple[Any, Any]]) -> None:
    """Editing a series changes its future only: generated occurrences still ahead and not completed
    or cancelled are replaced; past, completed and cancelled ones stay as they were."""
    touched = changes.keys() & {*RECURRENCE_FIELDS, *OCCURRENCE_FIELDS, "is_active"}
    if not touched:
        return
    if "timezone" in changes:
        zone(changes["timezone"][1])
    for key, (_before, after) in changes.items():
        setattr(obj, key, after)
    obj.rrule = build_rrule({f: getattr(obj, f) for f in RECURRENCE_FIELDS})
    now = dt.datetime.now(dt.UTC)
    obj.next_occurrence_at = next_occurrence(obj.rrule, obj.starts_at, max(now, obj.starts_at), obj.timezone)
    drop_future_occurrences(uow, obj.id, now)
    if obj.is_active:
        expand_series(uow, obj, now, DEFAULT_HORIZON, backfill=False)


def drop_future_occurrences(uow: UnitOfWork, series_id: int, now: dt.datetime) -> int:
    """Delete the series' generated occurrences that start after `now` and are not completed or
    cancelled (reminders pointing at them are detached, not lost)."""
    doomed = select(Activity.id).where(
        Activity.recurring_activity_id == series_id,
        Activity.start_at > now,
        Activity.status.not_in([ActivityStatus.COMPLETED, ActivityStatus.CANCELLED]),
    )
    ids = list(uow.session.scalars(doomed))
    if not ids:
        return 0
    uow.session.execute(update(Reminder).where(Reminder.activity_id.in_(ids)).values(activity_id=None))
    uow.session.execute(delete(Activity).where(Activity.id.in_(ids)), execution_options={"synchronize_session": False})
    for obj in list(uow.session.identity_map.values()):
        if isinstance(obj, Activity) and obj.id in ids:
            uow.session.expunge(obj)
    return len(ids)


def expand_series(
    uow: UnitOfWork, series: RecurringActivity, now: dt.datetime, horizon: dt.timedelta, *, backfill: bool = True
) -> int:
    """Create the series' occurrences up to `now + horizon` that do not exist yet (the unique
    (series, start) pair makes this safe to repeat); keep `next_occurrence_at` current.

    A new series starts from now (no history is invented for a start date in the past); with
    `backfill`, occurrences missed since the last generated one (the scheduler was down longer than
    the horizon) are created too.
    """
    if series.starts_at is None or not series.rrule:
        return 0
    start = max(now, series.starts_at)
    if backfill:
        last = uow.session.scalar(
            select(Activity.start_at)
            .where(Activity.recurring_activity_id == series.id)
            .order_by(Activity.start_at.desc())
            .limit(1)
        )
        if last is not None and last < start:
            start = last
    wanted = occurrences_between(series.rrule, series.starts_at, series.timezone, start, now + horizon)
    existing = set(
        uow.session.scalars(
            select(Activity.start_at).where(
                Activity.recurring_activity_id == series.id,
                Activity.start_at >= start,
                Activity.start_at <= now + horizon,
            )
        )
    )
    fresh = [when for when in wanted if when not in existing]
    uow.session.add_all(
        Activity(
            type=series.activity_type,
            subject=series.subject,
            start_at=when,
            due_at=when,
            owner_id=series.owner_id,
            territory_id=series.territory_id,
            lead_id=series.lead_id,
            account_id=series.account_id,
            contact_id=series.contact_id,
            deal_id=series.deal_id,
            recurring_activity_id=series.id,
        )
        for when in fresh
    )
    series.occurrences_created = (series.occurrences_created or 0) + len(fresh)
    series.next_occurrence_at = next_occurrence(series.rrule, series.starts_at, now, series.timezone)
    return len(fresh)


# --- free slots --------------------------------------------------------------------------------------
Interval = tuple[dt.datetime, dt.datetime]


def busy_intervals(uow: UnitOfWork, user_id: int, start: dt.datetime, end: dt.datetime) -> list[Interval]:
    return [(b.start_at, b.end_at) for b in conflicts(uow, user_id, start, end)]


def _in_working_hours(slot: Interval, tz: ZoneInfo, hours: tuple[int, int]) -> bool:
    begin, end = slot[0].astimezone(tz), slot[1].astimezone(tz)
    if begin.weekday() >= 5 or begin.date() != (end - dt.timedelta(microseconds=1)).date():
        return False
    opens = begin.replace(hour=hours[0], minute=0, second=0, microsecond=0)
    closes = opens.replace(hour=0) + dt.timedelta(hours=hours[1])  # wall-clock arithmetic: 17:00 local
    return opens <= begin and end <= closes


def free_slots(
    uow: UnitOfWork,
    user_ids: Sequence[int],
    duration: dt.timedelta,
    window_start: dt.datetime,
    window_end: dt.datetime,
    *,
    working_hours: tuple[int, int] = (9, 17),
    step: dt.timedelta = dt.timedelta(minutes=15),
    limit: int = 50,
) -> list[Interval]:
    """Start times (every `step`, from the first step boundary in the window) where all `user_ids`
    are free for `duration`, on weekdays within `working_hours` of each user's own time zone."""
    errors: dict[str, str] = {}
    if window_end <= window_start:
        errors["end"] = "must be after start"
    if duration <= dt.timedelta(0) or duration > dt.timedelta(hours=24):
        errors["duration"] = "must be between 1 minute and 24 hours"
    if not (0 <= working_hours[0] < working_hours[1] <= 24):
        errors["working_hours"] = "opening hour must be before closing hour, within 0..24"
    if not user_ids:
        errors["user_ids"] = "give at least one user"
    if window_end - window_start > dt.timedelta(days=62):
        errors["end"] = "search at most 62 days at a time"
    if errors:
        raise ValidationFailed(errors)
    zones: dict[int, ZoneInfo] = {}
    for uid in user_ids:
        user = uow.session.get(User, uid)
        if user is None:
            raise ValidationFailed({"user_ids": f"no user {uid}"})
        zones[uid] = zone(user.timezone)
    busy = sorted(iv for uid in user_ids for iv in busy_intervals(uow, uid, window_start, window_end))
    step_s = int(step.total_seconds())
    epoch = int(window_start.timestamp())
    cursor = dt.datetime.fromtimestamp(-(-epoch // step_s) * step_s, dt.UTC)
    found: list[Interval] = []
    while cursor + duration <= window_end and len(found) < limit:
        slot = (cursor, cursor + duration)
        if all(_in_working_hours(slot, tz, working_hours) for tz in zones.values()) and not any(
            b_start < slot[1] and b_end > slot[0] for b_start, b_end in busy
        ):
            found.append(slot)
        cursor += step
    return found


# --- iCalendar -----------------------------------------------------------------------------------------
PRODID = "-//crm-assistant//calendar//EN"
ICS_STATUS = {
    BookingStatus.SCHEDULED: "TENTATIVE",
    BookingStatus.CONFIRMED: "CONFIRMED",
    BookingStatus.CANCELLED: "CANCELLED",
    BookingStatus.COMPLETED: "CONFIRMED",
}
PARTSTAT = {"accepted": "ACCEPTED", "declined": "DECLINED", "tentative": "TENTATIVE"}


def _calendar(name: str | None = None) -> icalendar.Calendar:
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if name:
        cal.add("x-wr-calname", name)
    return cal


def _event(uow: UnitOfWork, booking: CalendarBooking) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", f"booking-{booking.id}@crm-assistant")
    event.add("dtstamp", booking.updated_at or dt.datetime.now(dt.UTC))
    event.add("dtstart", booking.start_at.astimezone(dt.UTC))
    event.add("dtend", booking.end_at.astimezone(dt.UTC))
    event.add("summary", booking.title)
    event.add("sequence", max(0, (booking.version or 1) - 1))
    event.add("status", ICS_STATUS[booking.status])
    if booking.description:
        event.add("description", booking.description)
    if booking.location or booking.meeting_url:
        event.add("location", booking.location or booking.meeting_url)
    if booking.meeting_url:
        event.add("url", booking.meeting_url)
    organiser = uow.session.get(User, booking.owner_id)
    if organiser is not None:
        event.add(
            "organizer", icalendar.vCalAddress(f"mailto:{organiser.email}"), parameters={"CN": organiser.full_name}
        )
    for attendee in booking.attendees:
        email, name = attendee.email, None
        if attendee.user_id is not None and (user := uow.session.get(User, attendee.user_id)) is not None:
            email, name = user.email, user.full_name
        elif attendee.contact_id is not None and (contact := uow.session.get(Contact, attendee.contact_id)) is not None:
            email, name = contact.email, f"{contact.first_name} {contact.last_name}".strip()
        if not email:
            continue
        params = {
            "ROLE": "REQ-PARTICIPANT" if attendee.required else "OPT-PARTICIPANT",
            "PARTSTAT": PARTSTAT.get((attendee.response or "").lower(), "NEEDS-ACTION"),
        }
        if name:
            params["CN"] = name
        event.add("attendee", icalendar.vCalAddress(f"mailto:{email}"), parameters=params)
    return event


def booking_ics(uow: UnitOfWork, booking: CalendarBooking) -> bytes:
    """One booking as an RFC 5545 calendar (to import or attach to an invitation)."""
    cal = _calendar()
    cal.add_component(_event(uow, booking))
    return bytes(cal.to_ical())


def user_bookings(uow: UnitOfWork, user_id: int, start: dt.datetime, end: dt.datetime) -> list[CalendarBooking]:
    """Every booking (cancelled ones too, so subscribed calendars drop them) that `user_id` organises
    or attends and that overlaps [start, end)."""
    attending = select(BookingAttendee.booking_id).where(BookingAttendee.user_id == user_id)
    stmt = (
        select(CalendarBooking)
        .where(
            or_(CalendarBooking.owner_id == user_id, CalendarBooking.id.in_(attending)),
            CalendarBooking.start_at < end,
            CalendarBooking.end_at > start,
        )
        .order_by(CalendarBooking.start_at)
    )
    return list(uow.session.scalars(stmt))


def user_feed_ics(uow: UnitOfWork, user_id: int, start: dt.datetime, end: dt.datetime) -> bytes:
    """The user's calendar as one subscribable feed."""
    user = uow.session.get(User, user_id)
    cal = _calendar(f"CRM - {user.full_name}" if user is not None else "CRM")
    for booking in user_bookings(uow, user_id, start, end):
        cal.add_component(_event(uow, booking))
    return bytes(cal.to_ical())
