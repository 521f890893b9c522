"""Calendar and notification operations: a booking's .ics, the caller's calendar feed, free-slot
search across attendees, and the caller's notifications with their delivery state."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from crm_backend.api.http import ApiError, authenticate, json_response, query_datetime, record_id, whole_number
from crm_backend.api.operations import operation, query_param
from crm_backend.api.routes import run
from crm_backend.errors import NotFound
from crm_backend.models.activities import BookingAttendee, CalendarBooking
from crm_backend.models.notifications import DeliveryStatus, Notification
from crm_backend.services import calendar, records
from crm_backend.store import UnitOfWork

ICS = "text/calendar"
FEED_PAST = dt.timedelta(days=90)
FEED_AHEAD = dt.timedelta(days=365)
MAX_SLOTS = 200


def _ics_response(body: bytes, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=ICS,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@operation(
    "GET",
    "/calendar-bookings/{id:\\d+}/ics",
    tag="calendar-bookings",
    summary="The booking as an iCalendar (.ics) file",
    content_type=ICS,
    response={"type": "string"},
)
async def booking_ics(request: web.Request) -> web.Response:
    rid = record_id(request)
    actor = await authenticate(request)
    res = records.resource("calendar-bookings")

    def work(uow: UnitOfWork) -> bytes:
        try:
            booking = records.get_record(uow, res, rid)
        except NotFound:
            # An attendee may fetch the invitation for a booking they cannot otherwise open.
            invited = uow.session.scalar(
                select(BookingAttendee.id).where(
                    BookingAttendee.booking_id == rid, BookingAttendee.user_id == actor.user_id
                )
            )
            booking = uow.session.get(CalendarBooking, rid) if invited else None
            if booking is None:
                raise
        return calendar.booking_ics(uow, booking)

    return _ics_response(await run(request, work, read_only=True), f"booking-{rid}.ics")


@operation(
    "GET",
    "/calendar/feed.ics",
    tag="calendar-bookings",
    summary="Your bookings (organised or attended) as an iCalendar feed",
    params=(
        query_param("start", {"type": "string", "format": "date-time"}, "from (default: 90 days ago)"),
        query_param("end", {"type": "string", "format": "date-time"}, "until (default: a year ahead)"),
    ),
    content_type=ICS,
    response={"type": "string"},
)
async def calendar_feed(request: web.Request) -> web.Response:
    actor = await authenticate(request)
    now = dt.datetime.now(dt.UTC)
    start = query_datetime(request, "start") if "start" in request.query else now - FEED_PAST
    end = query_datetime(request, "end") if "end" in request.query else now + FEED_AHEAD
    if end <= start:
        raise ApiError(400, "invalid_parameter", "end must be after start.")
    body = await run(request, lambda uow: calendar.user_feed_ics(uow, actor.user_id, start, end), read_only=True)
    return _ics_response(body, "crm-calendar.ics")


@operation(
    "GET",
    "/calendar/free-slots",
    tag="calendar-bookings",
    summary="Times when all the given users are free (weekdays, within working hours in each one's zone)",
    params=(
        query_param("user_ids", {"type": "string"}, "comma-separated user ids (default: you)"),
        query_param("duration", {"type": "integer", "minimum": 1}, "minutes", required=True),
        query_param("start", {"type": "string", "format": "date-time"}, "window start", required=True),
        query_param("end", {"type": "string", "format": "date-time"}, "window end", required=True),
        query_param("step", {"type": "integer", "minimum": 5}, "minutes between candidate starts (default 15)"),
        query_param(
            "limit", {"type": "integer", "minimum": 1}, f"at most this many slots (default 20, max {MAX_SLOTS})"
        ),
    ),
)
async def free_slots(request: web.Request) -> web.Response:
    actor = await authenticate(request)
    q = request.query
    raw_ids = [part.strip() for part in q.get("user_ids", str(actor.user_id)).split(",") if part.strip()]
    user_ids = [whole_number(part, "user_ids") for part in raw_ids]
    duration = whole_number(q.get("duration", ""), "duration")
    step = whole_number(q.get("step", "15"), "step")
    limit = min(whole_number(q.get("limit", "20"), "limit"), MAX_SLOTS)
    if step < 5 or limit < 1:
        raise ApiError(400, "invalid_parameter", "step is at least 5 minutes and limit at least 1.")
    start, end = query_datetime(request, "start"), query_datetime(request, "end")

    def work(uow: UnitOfWork) -> dict[str, Any]:
        slots = calendar.free_slots(
            uow,
            user_ids,
            dt.timedelta(minutes=duration),
            start,
            end,
            step=dt.timedelta(minutes=step),
            limit=limit,
        )
        items = [{"start_at": s.isoformat(), "end_at": e.isoformat()} for s, e in slots]
        return {"items": items, "total": len(items), "user_ids": user_ids, "duration": duration}

    return json_response(await run(request, work, read_only=True))


def _notification(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "title": n.title,
        "body": n.body,
        "data": n.data,
        "entity_type": n.entity_type.value if n.entity_type else None,
        "entity_id": n.entity_id,
        "channel": n.channel,
        "status": n.status.value,
        "attempts": n.attempts,
        "next_attempt_at": n.next_attempt_at.isoformat() if n.next_attempt_at else None,
        "sent_at": n.sent_at.isoformat() if n.sent_at else None,
        "last_error": n.last_error,
        "created_at": n.created_at.isoformat() if n.created_at else None,
    }


@operation(
    "GET",
    "/notifications",
    tag="notifications",
    summary="Your notifications, newest first, with their delivery state",
    params=(
        query_param("status", {"type": "string", "enum": [s.value for s in DeliveryStatus]}, "only this state"),
        query_param("kind", {"type": "string"}, "only this kind (reminder, signal, escalation, ...)"),
        query_param("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (default 50)"),
        query_param("offset", {"type": "integer", "minimum": 0}, "skip this many"),
    ),
)
async def list_notifications(request: web.Request) -> web.Response:
    actor = await authenticate(request)
    q = request.query
    status = q.get("status")
    if status is not None and status not in {s.value for s in DeliveryStatus}:
        raise ApiError(400, "invalid_parameter", "status is one of pending, sent, failed.")
    limit, offset = whole_number(q.get("limit", "50"), "limit"), whole_number(q.get("offset", "0"), "offset")
    if not (1 <= limit <= 200) or offset < 0:
        raise ApiError(400, "invalid_parameter", "limit is 1..200 and offset is not negative.")

    def work(uow: UnitOfWork) -> dict[str, Any]:
        stmt = select(Notification).where(Notification.user_id == actor.user_id)
        if status is not None:
            stmt = stmt.where(Notification.status == DeliveryStatus(status))
        if q.get("kind"):
            stmt = stmt.where(Notification.kind == q["kind"])
        total = uow.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        page = uow.session.scalars(stmt.order_by(Notification.id.desc()).limit(limit).offset(offset))
        return {"items": [_notification(n) for n in page], "total": total, "limit": limit, "offset": offset}

    return json_response(await run(request, work, read_only=True))
