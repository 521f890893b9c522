"""Calendar bookings (attendees, conflicts) and recurring activities (RFC 5545 rules)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dateutil.rrule import rrulestr
from pydantic import BaseModel, ConfigDict, EmailStr
from sqlalchemy import and_, or_, select

from crm_backend.errors import ValidationFailed
from crm_backend.models.activities import BookingAttendee, BookingStatus, CalendarBooking, RecurrencePattern
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
    """Live bookings overlapping [start, end) that `user_id` organises or attends."""
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


def next_occurrence(rule: str, starts_at: dt.datetime, after: dt.datetime) -> dt.datetime | None:
    parsed = rrulestr(rule, dtstart=starts_at)
    result = parsed.after(after, inc=True)
    return result if isinstance(result, dt.datetime) else None


RECURRENCE_FIELDS = ("pattern", "interval", "weekdays", "month_days", "until", "count", "starts_at")


def recurring_before_create(uow: UnitOfWork, obj: Any, values: dict[str, Any]) -> None:
    source = {f: getattr(obj, f) for f in RECURRENCE_FIELDS}
    obj.rrule = build_rrule(source)
    obj.next_occurrence_at = next_occurrence(obj.rrule, obj.starts_at, obj.starts_at)


def recurring_before_update(uow: UnitOfWork, obj: Any, changes: dict[str, tuple[Any, Any]]) -> None:
    if changes.keys() & set(RECURRENCE_FIELDS):
        source = {f: changes[f][1] if f in changes else getattr(obj, f) for f in RECURRENCE_FIELDS}
        obj.rrule = build_rrule(source)
        now = dt.datetime.now(dt.UTC)
        obj.next_occurrence_at = next_occurrence(obj.rrule, source["starts_at"], max(now, source["starts_at"]))
