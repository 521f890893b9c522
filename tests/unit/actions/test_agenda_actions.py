"""The rep's agenda ("what's on today") and news ("what's new"), through the actions with a real
database: windows in the user's own time zone, filters, other reps' items never shown, empty days."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from actions.agenda import ActionMyDay, ActionWhatsNew, ago, moment, numbered, short_day, window_for
from crm_backend.models import Account, Notification, User
from crm_backend.notifications import notify
from crm_backend.services import auth, records, users
from crm_backend.store import UnitOfWork
from tests.unit.actions.conftest import Crm, entity

AUCKLAND = ZoneInfo("Pacific/Auckland")  # UTC+13 in summer: local mornings are the previous UTC day


@contextmanager
def acting(crm: Crm, username: str) -> Iterator[UnitOfWork]:
    with crm.store.unit_of_work() as uow:
        uow.actor = auth.load_actor(uow, users.get_user_by_username(uow, username).id)
        yield uow


def create(uow: UnitOfWork, collection: str, data: dict[str, Any]) -> Any:
    return records.create_record(uow, records.resource(collection), data, allow_duplicate=True)


def set_zone(crm: Crm, username: str, zone: ZoneInfo) -> None:
    with crm.store.unit_of_work() as uow:
        users.get_user_by_username(uow, username).timezone = zone.key


def local(day: date, hour: int, minute: int = 0, zone: ZoneInfo = AUCKLAND) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def account_id(uow: UnitOfWork, name: str) -> int:
    found: Account = records.list_records(uow, records.resource("accounts"), records.ListQuery(q=name)).items[0]
    return found.id


def user_id(uow: UnitOfWork, username: str) -> int:
    user: User = users.get_user_by_username(uow, username)
    return user.id


def auckland_day(crm: Crm) -> date:
    """Alice's today in Auckland, with her day filled: items at local times, one of them before
    midnight UTC, plus other reps' items and things that must not show."""
    set_zone(crm, "alice", AUCKLAND)
    today = datetime.now(UTC).astimezone(AUCKLAND).date()
    tomorrow = today + timedelta(days=1)
    with acting(crm, "alice") as uow:
        acme, alice = account_id(uow, "Acme"), user_id(uow, "alice")
        create(
            uow,
            "activities",
            {
                "type": "Meeting",
                "subject": "Quarterly review with Raj",
                "account_id": acme,
                "start_at": local(today, 15),
                "end_at": local(today, 16),
            },
        )
        # 00:30 in Auckland is 11:30 the day before in UTC: only the user's zone puts it on today.
        create(uow, "activities", {"type": "Task", "subject": "Prepare Initech pricing", "due_at": local(today, 0, 30)})
        create(uow, "activities", {"type": "Call", "subject": "Ring Wayne early", "due_at": local(tomorrow, 0, 30)})
        create(
            uow,
            "activities",
            {"type": "Task", "subject": "Already done today", "status": "Completed", "due_at": local(today, 10)},
        )
        create(
            uow,
            "calendar-bookings",
            {
                "title": "Nimbus platform demo",
                "type": "Demo",
                "start_at": local(today, 11),
                "end_at": local(today, 11, 30),
                "attendees": [{"user_id": alice}],
            },
        )
        create(
            uow,
            "calendar-bookings",
            {
                "title": "Cancelled sync",
                "status": "Cancelled",
                "start_at": local(today, 12),
                "end_at": local(today, 13),
            },
        )
        create(uow, "reminders", {"message": "Chase the Hooli contract", "remind_at": local(today, 9)})
        create(uow, "reminders", {"message": "Old sent reminder", "remind_at": local(today, 8), "status": "Sent"})
        create(uow, "reminders", {"message": "Renewal pack for Acme", "remind_at": local(today + timedelta(days=3), 9)})
    with acting(crm, "bob") as uow:
        create(uow, "activities", {"type": "Call", "subject": "Bob's private call", "due_at": local(today, 14)})
        create(uow, "reminders", {"message": "Bob's reminder", "remind_at": local(today, 9)})
        create(
            uow,
            "calendar-bookings",
            {
                "title": "Globex steering group",
                "start_at": local(today, 13),
                "end_at": local(today, 14),
                "attendees": [{"user_id": user_id(uow, "alice")}],  # alice is invited: hers too
            },
        )
        create(
            uow,
            "calendar-bookings",
            {"title": "Bob's own workshop", "start_at": local(today, 17), "end_at": local(today, 18)},
        )
    return today


async def test_my_day_lists_today_in_the_users_time_zone_in_time_order(crm: Crm) -> None:
    today = auckland_day(crm)
    chat = crm.chat("alice")
    await chat.say(ActionMyDay(), "what's on today", "my_day")
    text = chat.text
    assert text.startswith(f"Your agenda today ({short_day(today)}):")
    lines = text.splitlines()

    def at(fragment: str) -> int:
        return next(i for i, line in enumerate(lines) if fragment in line)

    assert "due 00:30 Task: Prepare Initech pricing" in text
    assert "11:00–11:30 Demo: Nimbus platform demo" in text
    assert "13:00–14:00 Meeting: Globex steering group" in text
    assert "15:00–16:00 Meeting: Quarterly review with Raj (Acme Corporation)" in text
    assert at("Prepare Initech") < at("Nimbus platform demo") < at("Globex steering") < at("Quarterly review")
    assert lines[at("Reminders:") + 1] == "1. 09:00 Chase the Hooli contract"
    assert "Overdue (1):" in text
    assert lines[at("Overdue") + 1].startswith("1. Task: Send the Nimbus proposal (Nimbus Labs) — urgent, due ")
    for absent in (
        "Ring Wayne early",  # tomorrow in Auckland
        "Already done today",
        "Cancelled sync",
        "Old sent reminder",
        "Renewal pack",  # a later day
        "Bob's",  # another rep's call, reminder and booking
    ):
        assert absent not in text


async def test_named_days_and_ranges_change_the_window(crm: Crm) -> None:
    today = auckland_day(crm)
    chat = crm.chat("alice")

    await chat.say(ActionMyDay(), "anything due tomorrow", "my_day")
    assert chat.text.startswith(f"Your agenda tomorrow ({short_day(today + timedelta(days=1))}):")
    assert "due 00:30 Call: Ring Wayne early" in chat.text
    assert "Quarterly review" not in chat.text and "Overdue" not in chat.text  # overdue belongs to today

    await chat.say(ActionMyDay(), "what do I have this week", "my_day")
    monday = today - timedelta(days=today.weekday())
    assert chat.text.startswith(f"Your agenda for {short_day(monday)} – {short_day(monday + timedelta(days=6))}:")
    # Over several days each time carries its day.
    assert f"{short_day(today)} 15:00–16:00 Meeting: Quarterly review with Raj" in chat.text
    assert "Overdue (1):" in chat.text

    next_monday = monday + timedelta(days=7)
    with acting(crm, "alice") as uow:
        create(
            uow, "activities", {"type": "Meeting", "subject": "Kick-off at Initech", "start_at": local(next_monday, 10)}
        )
    await chat.say(ActionMyDay(), "what's on next monday", "my_day")
    assert chat.text.startswith(f"Your agenda {short_day(next_monday)}:")
    assert "\n1. 10:00 Meeting: Kick-off at Initech" in chat.text
    assert "Quarterly review" not in chat.text


async def test_overdue_and_activity_type_filters(crm: Crm) -> None:
    auckland_day(crm)
    chat = crm.chat("alice")

    await chat.say(ActionMyDay(), "overdue tasks", "my_day", [entity("activity_type", "Task", "tasks")])
    assert chat.text.startswith("You have 1 overdue item:\n1. Task: Send the Nimbus proposal")
    assert "Quarterly review" not in chat.text and "Reminders" not in chat.text

    # "upcoming" starts now, so today's meetings may be over already: one two days ahead always shows.
    with acting(crm, "alice") as uow:
        later = datetime.now(UTC).astimezone(AUCKLAND).date() + timedelta(days=2)
        create(uow, "activities", {"type": "Meeting", "subject": "Roadmap session", "start_at": local(later, 10)})
    await chat.say(ActionMyDay(), "upcoming meetings", "my_day", [entity("activity_type", "Meeting", "meetings")])
    assert chat.text.startswith("Your meetings for the next 7 days:")
    assert "Roadmap session" in chat.text
    for absent in ("Task:", "Call:", "Reminders", "Chase the Hooli", "Bob's own workshop"):
        assert absent not in chat.text

    await chat.say(ActionMyDay(), "my calls today", "my_day", [entity("activity_type", "Call", "calls")])
    assert "Nimbus platform demo" not in chat.text and "Prepare Initech" not in chat.text


async def test_reminders_are_the_users_pending_ones(crm: Crm) -> None:
    today = auckland_day(crm)
    chat = crm.chat("alice")
    await chat.say(ActionMyDay(), "my reminders", "my_day")
    assert chat.text.splitlines() == [
        "Your pending reminders:",
        f"1. {short_day(today)} 09:00 Chase the Hooli contract",
        f"2. {short_day(today + timedelta(days=3))} 09:00 Renewal pack for Acme",
    ]

    carlos = crm.chat("carlos")
    await carlos.say(ActionMyDay(), "any reminders?", "my_day")
    assert carlos.text == "You have no pending reminders."


async def test_an_empty_day_is_said_kindly(crm: Crm) -> None:
    chat = crm.chat("carlos")  # no open activities, bookings or reminders in the demo
    await chat.say(ActionMyDay(), "what's on today", "my_day")
    today = datetime.now(UTC).date()
    assert chat.text == (
        f"Nothing on your agenda today ({short_day(today)}), and nothing overdue. Enjoy the breathing room!"
    )
    await chat.say(ActionMyDay(), "am I behind on anything? overdue stuff", "my_day")
    assert chat.text == "Nothing overdue — you're all caught up."
    await chat.say(ActionMyDay(), "meetings tomorrow?", "my_day", [entity("activity_type", "Meeting", "meetings")])
    assert chat.text == f"No meetings on your agenda tomorrow ({short_day(today + timedelta(days=1))})."


# --------------------------------------------------------------------------- what's new


def age(uow: UnitOfWork, title: str, delta: timedelta) -> None:
    """Backdate the feed item (and notification) called `title`."""
    when = datetime.now(UTC) - delta
    for row in records.list_records(uow, records.resource("feeds"), records.ListQuery(q=title)).items:
        row.created_at = when
    for note in uow.session.query(Notification).filter(Notification.title == title):
        note.created_at = when


async def test_whats_new_is_the_users_own_feed_newest_first(crm: Crm) -> None:
    with acting(crm, "alice") as uow:
        alice, bob = user_id(uow, "alice"), user_id(uow, "bob")
        notify(uow, alice, "signal", "Hot lead: Tom Baker", "Score rose to 82", important=True)
        create(uow, "feeds", {"type": "Update", "title": "Nimbus Labs - Platform renewal moved to Proposal"})
        for n in range(9):
            create(uow, "feeds", {"type": "Activity", "title": f"Old update {n}"})
        uow.session.flush()
        age(uow, "Hot lead: Tom Baker", timedelta(hours=2, minutes=5))
        age(uow, "Nimbus Labs - Platform renewal moved to Proposal", timedelta(minutes=5))
        for n in range(9):
            age(uow, f"Old update {n}", timedelta(days=3, hours=n))
        notify(uow, bob, "signal", "Bob's hot lead", "not for alice")

    chat = crm.chat("alice")
    await chat.say(ActionWhatsNew(), "what's new", "whats_new")
    lines = chat.text.splitlines()
    assert lines[0] == "What's new (11 unread):"
    assert lines[1] == "1. Nimbus Labs - Platform renewal moved to Proposal — 5 min ago"
    assert lines[2] == "2. Hot lead: Tom Baker: Score rose to 82 (important) — 2 h ago"
    assert lines[3] == "3. Old update 0 — 3 days ago"
    assert len([line for line in lines if line[0].isdigit()]) == 8
    assert lines[-1] == "…and 3 older."
    assert chat.text.count("Hot lead: Tom Baker") == 1  # the feed copy and its notification are one entry
    assert "Bob" not in chat.text

    await chat.say(ActionWhatsNew(), "anything new since yesterday?", "whats_new")
    assert "Old update" not in chat.text and "Hot lead: Tom Baker" in chat.text


async def test_nothing_new_is_said(crm: Crm) -> None:
    with acting(crm, "bob") as uow:
        notify(uow, user_id(uow, "bob"), "signal", "Bob's news", "only for bob")
    chat = crm.chat("carlos")
    await chat.say(ActionWhatsNew(), "what did I miss", "whats_new")
    assert chat.text == "Nothing new. You're up to date."
    await chat.say(ActionWhatsNew(), "any notifications since yesterday", "whats_new")
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    assert chat.text == f"Nothing new since {short_day(yesterday)}. You're up to date."


# --------------------------------------------------------------------------- wording, without a database

BERLIN = ZoneInfo("Europe/Berlin")
THURSDAY = datetime(2026, 11, 26, 14, 30, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("text", "label", "start", "end"),
    [
        (
            "what's on today",
            "today (Thu 26 Nov)",
            datetime(2026, 11, 26, tzinfo=BERLIN),
            datetime(2026, 11, 27, tzinfo=BERLIN),
        ),
        ("my day", "today (Thu 26 Nov)", datetime(2026, 11, 26, tzinfo=BERLIN), datetime(2026, 11, 27, tzinfo=BERLIN)),
        (
            "anything due tomorrow",
            "tomorrow (Fri 27 Nov)",
            datetime(2026, 11, 27, tzinfo=BERLIN),
            datetime(2026, 11, 28, tzinfo=BERLIN),
        ),
        (
            "my week",
            "Mon 23 Nov – Sun 29 Nov",
            datetime(2026, 11, 23, tzinfo=BERLIN),
            datetime(2026, 11, 30, tzinfo=BERLIN),
        ),
        (
            "next week",
            "Mon 30 Nov – Sun 6 Dec",
            datetime(2026, 11, 30, tzinfo=BERLIN),
            datetime(2026, 12, 7, tzinfo=BERLIN),
        ),
        ("next monday", "Mon 30 Nov", datetime(2026, 11, 30, tzinfo=BERLIN), datetime(2026, 12, 1, tzinfo=BERLIN)),
        (
            "the weekend",
            "Sat 28 Nov – Sun 29 Nov",
            datetime(2026, 11, 28, tzinfo=BERLIN),
            datetime(2026, 11, 30, tzinfo=BERLIN),
        ),
        ("upcoming meetings", "the next 7 days", THURSDAY, THURSDAY + timedelta(days=7)),
    ],
)
def test_the_window_asked_about(text: str, label: str, start: datetime, end: datetime) -> None:
    window = window_for(text, THURSDAY, BERLIN)
    assert (window.label, window.start, window.end) == (label, start, end)


def test_times_and_ages_in_the_users_zone() -> None:
    at = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 15:00 in Berlin
    assert moment(at, BERLIN, date(2026, 12, 1)) == "15:00"
    assert moment(at, BERLIN) == "Tue 1 Dec 15:00"
    assert moment(datetime(2027, 1, 4, 8, tzinfo=UTC), BERLIN, date(2026, 12, 1)) == "Mon 4 Jan 2027 09:00"
    now = THURSDAY
    assert ago(now - timedelta(seconds=20), now, BERLIN) == "just now"
    assert ago(now - timedelta(minutes=7), now, BERLIN) == "7 min ago"
    assert ago(now - timedelta(hours=2, minutes=50), now, BERLIN) == "2 h ago"
    assert ago(now - timedelta(hours=26), now, BERLIN) == "yesterday"
    assert ago(now - timedelta(days=3), now, BERLIN) == "3 days ago"
    assert ago(now - timedelta(days=30), now, BERLIN) == "on 27 Oct"
    assert ago(now - timedelta(days=400), now, BERLIN) == "on 22 Oct 2025"


def test_long_lists_are_cut_and_counted() -> None:
    assert numbered(["a", "b"]) == ["1. a", "2. b"]
    lines = numbered([str(n) for n in range(11)])
    assert lines[-2:] == ["8. 7", "…and 3 more."] and len(lines) == 9
