"""Calendar: conflicts for organisers and attendees (back-to-back is not a conflict), free-slot search
across users in their own time zones, and iCalendar export that parses back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import icalendar
import pytest

import crm_backend.resources  # noqa: F401 - fills the collection registry
from crm_backend.errors import ValidationFailed
from crm_backend.models.activities import CalendarBooking
from crm_backend.models.users import User
from crm_backend.services import calendar, records
from tests.conftest import Demo

MONDAY = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def at(hour: int, minute: int = 0, day: int = 0) -> dt.datetime:
    return MONDAY + dt.timedelta(days=day, hours=hour, minutes=minute)


def book(demo: Demo, organiser: str, start: dt.datetime, end: dt.datetime, *attendees: str, **extra: Any) -> int:
    body = {
        "title": extra.pop("title", "Acme demo"),
        "start_at": start.isoformat(),
        "end_at": end.isoformat(),
        "attendees": [{"user_id": demo.actor(a).user_id} for a in attendees] + extra.pop("others", []),
        **extra,
    }
    with demo.store.unit_of_work(demo.actor(organiser)) as uow:
        return int(records.create_record(uow, records.resource("calendar-bookings"), body).id)


def conflict_ids(demo: Demo, user: str, start: dt.datetime, end: dt.datetime) -> list[int]:
    with demo.store.unit_of_work(read_only=True) as uow:
        return [b.id for b in calendar.conflicts(uow, demo.actor(user).user_id, start, end)]


def slots(demo: Demo, users: list[str], minutes: int, start: dt.datetime, end: dt.datetime, **kw: Any) -> list[str]:
    with demo.store.unit_of_work(read_only=True) as uow:
        found = calendar.free_slots(
            uow, [demo.actor(u).user_id for u in users], dt.timedelta(minutes=minutes), start, end, **kw
        )
    return [f"{s:%a %H:%M}-{e:%H:%M}" for s, e in found]


def set_timezone(demo: Demo, user: str, tz: str) -> None:
    with demo.store.unit_of_work() as uow:
        found = uow.session.get(User, demo.actor(user).user_id)
        assert found is not None
        found.timezone = tz


def test_conflicts_cover_organiser_and_every_attendee(demo: Demo) -> None:
    bid = book(demo, "alice", at(9), at(10), "bob")
    assert conflict_ids(demo, "alice", at(9, 30), at(11)) == [bid]
    assert conflict_ids(demo, "bob", at(9, 30), at(11)) == [bid]
    assert conflict_ids(demo, "carlos", at(9, 30), at(11)) == []


def test_back_to_back_meetings_do_not_conflict(demo: Demo) -> None:
    book(demo, "alice", at(9), at(10), "bob")
    assert conflict_ids(demo, "bob", at(10), at(11)) == []
    assert conflict_ids(demo, "bob", at(8), at(9)) == []
    assert conflict_ids(demo, "bob", at(9, 59), at(11)) != []


def test_cancelled_bookings_do_not_conflict(demo: Demo) -> None:
    bid = book(demo, "alice", at(9), at(10))
    with demo.store.unit_of_work(demo.actor("alice")) as uow:
        records.update_record(uow, records.resource("calendar-bookings"), bid, {"status": "Cancelled"}, None)
    assert conflict_ids(demo, "alice", at(9), at(10)) == []


def test_free_slots_skip_every_attendees_meetings_and_keep_back_to_back_edges(demo: Demo) -> None:
    book(demo, "alice", at(9), at(10))
    book(demo, "carlos", at(10, 30), at(16), "bob")
    assert slots(demo, ["alice", "bob"], 30, at(8), at(18)) == [
        "Mon 10:00-10:30",  # right after alice's 09:00-10:00 and right before bob's 10:30
        "Mon 16:00-16:30",
        "Mon 16:15-16:45",
        "Mon 16:30-17:00",
    ]


def test_free_slots_respect_each_users_working_hours_and_weekends(demo: Demo) -> None:
    set_timezone(demo, "bob", "America/New_York")  # 09:00-17:00 there is 14:00-22:00 UTC in December
    found = slots(demo, ["alice", "bob"], 60, at(0), at(0, day=7), step=dt.timedelta(hours=1))
    assert found[:3] == ["Mon 14:00-15:00", "Mon 15:00-16:00", "Mon 16:00-17:00"]
    assert {s.split()[0] for s in found} == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    assert len(found) == 15


def test_free_slots_align_to_the_step_and_honour_the_limit(demo: Demo) -> None:
    assert slots(demo, ["alice"], 30, at(9, 7), at(12), limit=2) == ["Mon 09:15-09:45", "Mon 09:30-10:00"]


def test_free_slots_reject_bad_windows(demo: Demo) -> None:
    with pytest.raises(ValidationFailed) as bad:
        slots(demo, ["alice"], 0, at(10), at(9))
    assert set(bad.value.fields) == {"end", "duration"}
    with demo.store.unit_of_work(read_only=True) as uow, pytest.raises(ValidationFailed):
        calendar.free_slots(uow, [9999], dt.timedelta(minutes=30), at(9), at(10))


def test_booking_ics_parses_back_with_times_people_and_status(demo: Demo) -> None:
    bid = book(
        demo,
        "alice",
        at(9),
        at(10),
        "bob",
        title="Acme renewal",
        description="Pricing, then legal",
        meeting_url="https://meet.example/acme",
        others=[{"email": "dana@acme.example", "required": False}],
    )
    with demo.store.unit_of_work(read_only=True) as uow:
        booking = uow.session.get(CalendarBooking, bid)
        assert booking is not None
        raw = calendar.booking_ics(uow, booking)
    cal = icalendar.Calendar.from_ical(raw)
    [event] = cal.walk("VEVENT")
    assert str(event["summary"]) == "Acme renewal"
    assert event.decoded("dtstart") == at(9) and event.decoded("dtend") == at(10)
    assert str(event["uid"]) == f"booking-{bid}@crm-assistant"
    assert str(event["status"]) == "TENTATIVE"
    assert str(event["url"]) == "https://meet.example/acme"
    assert str(event["organizer"]).startswith("mailto:alice")
    people = {str(a): a.params["ROLE"] for a in event["attendee"]}
    assert people["mailto:dana@acme.example"] == "OPT-PARTICIPANT"
    assert any(k.startswith("mailto:bob") and v == "REQ-PARTICIPANT" for k, v in people.items())


def test_user_feed_lists_bookings_organised_and_attended_in_the_window(demo: Demo) -> None:
    mine = book(demo, "alice", at(9), at(10), title="Mine")
    invited = book(demo, "carlos", at(11), at(12), "alice", title="Carlos invites")
    book(demo, "carlos", at(13), at(14), title="Not alice's")
    book(demo, "alice", at(9, day=40), at(10, day=40), title="Too late")
    with demo.store.unit_of_work(read_only=True) as uow:
        raw = calendar.user_feed_ics(uow, demo.actor("alice").user_id, at(0), at(0, day=30))
    cal = icalendar.Calendar.from_ical(raw)
    assert [str(e["uid"]) for e in cal.walk("VEVENT")] == [
        f"booking-{mine}@crm-assistant",
        f"booking-{invited}@crm-assistant",
    ]
    assert str(cal["x-wr-calname"]) == "CRM - Alice Rivera"
