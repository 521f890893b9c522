"""Logging activities, tasks and reminders, recurring activities and meetings by conversation: read
back first, written on yes (with the audit trail and undo), nothing on no, other reps' records never
touched — end to end through the actions with a real database."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from actions.activities import (
    ActionBookMeeting,
    ActionCreateRecurring,
    ActionCreateTask,
    ActionLogActivity,
    parse_duration,
    parse_recurrence,
    span_text,
    split_description,
    task_subject,
)
from actions.confirm import PENDING, ActionConfirm, ActionDeny, ActionUndo
from actions.parsing import extract_amount_and_when
from actions.replies import moment
from crm_backend.models import (
    Account,
    Activity,
    AuditLog,
    CalendarBooking,
    Contact,
    RecurringActivity,
    Reminder,
    User,
)
from crm_backend.models.activities import ActivityStatus, ActivityType, RecurrencePattern, ReminderStatus
from crm_backend.services import records
from tests.unit.actions.conftest import Crm, entity

SPACY = "SpacyEntityExtractor"
LOG_DANA = "log a call with Dana at Nimbus, she wants a proposal by Friday"
LOG_DANA_ENTITIES = [
    entity("activity_type", "Call", "call"),
    entity("record", "Dana", "Dana"),
    entity("record", "Nimbus", "Nimbus"),
]


# --- helpers ------------------------------------------------------------------------------------------
def set_timezone(crm: Crm, username: str, zone: str) -> None:
    with crm.store.unit_of_work() as uow:
        user = uow.session.scalars(select(User).where(User.username == username)).one()
        user.timezone = zone


def one(crm: Crm, model: Any, **where: Any) -> Any:
    with crm.store.unit_of_work() as uow:
        stmt = select(model).filter_by(**where)
        return uow.session.scalars(stmt).one()


def count(crm: Crm, model: Any, **where: Any) -> int:
    with crm.store.unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model).filter_by(**where)) or 0)


def audit_of(crm: Crm, table: str, entity_id: int) -> AuditLog:
    with crm.store.unit_of_work() as uow:
        row: AuditLog = uow.session.scalars(
            select(AuditLog).where(AuditLog.entity_type == table, AuditLog.entity_id == entity_id)
        ).first()
        return row


def record_id(crm: Crm, model: Any, **where: Any) -> int:
    return int(one(crm, model, **where).id)


def next_weekday(now: dt.datetime, zone: ZoneInfo, weekday: int, *, next_week: bool = False) -> dt.date:
    """The parsing module's rule: 'Friday' is the next one after today; 'next Tuesday' is in next week."""
    today = now.astimezone(zone).date()
    if next_week:
        return today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=7 + weekday)
    return today + dt.timedelta(days=(weekday - today.weekday()) % 7 or 7)


def local(day: dt.date, hour: int, zone: ZoneInfo, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)


def book(crm: Crm, username: str, title: str, start: dt.datetime, minutes: int) -> None:
    with crm.store.unit_of_work(crm.actor(username)) as uow:
        records.create_record(
            uow,
            records.resource("calendar-bookings"),
            {"title": title, "start_at": start, "end_at": start + dt.timedelta(minutes=minutes)},
        )


# --- logging what happened ----------------------------------------------------------------------------
async def test_a_logged_call_is_read_back_and_written_verbatim_only_on_yes(crm: Crm) -> None:
    chat = crm.chat("alice")
    before = count(crm, Activity)
    await chat.say(ActionLogActivity(), LOG_DANA, "log_activity", LOG_DANA_ENTITIES)
    assert chat.text == "Log a call on Nimbus Labs with Dana Smith: “she wants a proposal by Friday”?"
    assert [b["payload"] for b in chat.buttons] == ["/affirm", "/deny"]
    assert count(crm, Activity) == before  # nothing before the yes

    await chat.say(ActionConfirm(), "yes", "affirm")
    assert chat.text.startswith("Logged a call on Nimbus Labs with Dana Smith.")
    logged = one(crm, Activity, description="she wants a proposal by Friday")
    assert logged.type is ActivityType.CALL and logged.subject == "Call with Dana Smith"
    assert logged.status is ActivityStatus.COMPLETED and logged.completed_at is not None
    assert logged.contact_id == record_id(crm, Contact, first_name="Dana")
    assert logged.account_id == record_id(crm, Account, name="Nimbus Labs")
    assert logged.owner_id == crm.actor("alice").user_id
    audit = audit_of(crm, "activities", logged.id)
    assert audit.action == "create" and audit.channel == "api" and audit.user_id == crm.actor("alice").user_id
    assert audit.change_set and chat.slots[PENDING] is None


async def test_undo_removes_the_logged_activity(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionLogActivity(), LOG_DANA, "log_activity", LOG_DANA_ENTITIES)
    await chat.say(ActionConfirm(), "yes", "affirm")
    await chat.say(ActionUndo(), "undo that", "undo")
    assert "Undone: Logged a call on Nimbus Labs with Dana Smith" in chat.text
    assert one(crm, Activity, description="she wants a proposal by Friday").deleted_at is not None


async def test_no_logs_nothing(crm: Crm) -> None:
    chat = crm.chat("alice")
    before = count(crm, Activity)
    await chat.say(ActionLogActivity(), LOG_DANA, "log_activity", LOG_DANA_ENTITIES)
    await chat.say(ActionDeny(), "no", "deny")
    assert "didn't change anything" in chat.text
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "nothing waiting" in chat.text and count(crm, Activity) == before


async def test_alice_cannot_log_on_bobs_globex(crm: Crm) -> None:
    chat = crm.chat("alice")
    before = count(crm, Activity)
    await chat.say(
        ActionLogActivity(),
        "log a call with Globex, they want a demo",
        "log_activity",
        [entity("activity_type", "Call", "call"), entity("record", "Globex")],
    )
    assert "can't find" in chat.text and "Globex" in chat.text
    assert "Lena" not in chat.text and "Data warehouse" not in chat.text
    assert chat.slots.get(PENDING) is None
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert count(crm, Activity) == before


async def test_the_type_comes_from_the_words_and_a_bare_company_is_the_account(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionLogActivity(), "I just met with Raj, went well", "log_activity", [entity("record", "Raj")])
    assert chat.text == "Log a meeting on Acme Corporation with Raj Patel: “went well”?"
    # "Acme" names the account Acme Corporation and its deals equally well: the account wins.
    await chat.say(
        ActionLogActivity(), "add a note to Acme: budget approved", "log_activity", [entity("record", "Acme")]
    )
    assert chat.text == "Log a note on Acme Corporation: “budget approved”?"
    await chat.say(ActionConfirm(), "yes", "affirm")
    note = one(crm, Activity, description="budget approved")
    assert note.type is ActivityType.NOTE and note.subject == "Note on Acme Corporation"
    assert note.account_id == record_id(crm, Account, name="Acme Corporation") and note.deal_id is None


async def test_without_a_name_the_record_in_focus_is_used_else_it_asks(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionLogActivity(), "add a note: budget approved", "log_activity")
    assert "Which account, contact or deal" in chat.text and chat.slots.get(PENDING) is None
    await chat.say(
        ActionLogActivity(), "add a note to Acme: budget approved", "log_activity", [entity("record", "Acme")]
    )
    await chat.say(ActionDeny(), "no", "deny")
    await chat.say(ActionLogActivity(), "also log a call, Raj says the fleet grows to 60 trucks", "log_activity")
    assert chat.text == "Log a call on Acme Corporation: “Raj says the fleet grows to 60 trucks”?"


# --- tasks and reminders ------------------------------------------------------------------------------
async def test_a_reminder_is_due_in_the_users_zone_and_stored_in_utc(crm: Crm) -> None:
    set_timezone(crm, "alice", "America/New_York")
    zone = ZoneInfo("America/New_York")
    now = dt.datetime.now(dt.UTC)
    due = local(now.astimezone(zone).date() + dt.timedelta(days=1), 10, zone)
    chat = crm.chat("alice")
    await chat.say(
        ActionCreateTask(), "remind me to call Acme tomorrow at 10", "create_task", [entity("record", "Acme")]
    )
    assert chat.text == f"Add the task “Call Acme” on Acme Corporation, due {moment(due, zone)}, and remind you then?"
    assert count(crm, Activity, subject="Call Acme") == 0 and count(crm, Reminder) == 0

    await chat.say(ActionConfirm(), "yes", "affirm")
    assert chat.text.startswith(f"Added the task “Call Acme” on Acme Corporation, due {moment(due, zone)}")
    task = one(crm, Activity, subject="Call Acme")
    assert task.type is ActivityType.TASK and task.status is ActivityStatus.NOT_STARTED
    assert task.due_at == due.astimezone(dt.UTC) and task.due_at.hour != 10  # 10:00 New York, not UTC
    assert task.account_id == record_id(crm, Account, name="Acme Corporation")
    reminder = one(crm, Reminder, activity_id=task.id)
    assert reminder.remind_at == due.astimezone(dt.UTC) and reminder.status is ReminderStatus.PENDING
    assert reminder.message == "Call Acme" and reminder.owner_id == crm.actor("alice").user_id
    audit = audit_of(crm, "reminders", reminder.id)
    assert audit.channel == "api" and audit.user_id == crm.actor("alice").user_id

    await chat.say(ActionUndo(), "undo", "undo")
    assert "removed 2 new records" in chat.text
    assert count(crm, Reminder) == 0 and one(crm, Activity, subject="Call Acme").deleted_at is not None


async def test_a_reminder_on_a_day_without_a_time_goes_off_at_nine_local(crm: Crm) -> None:
    set_timezone(crm, "alice", "Asia/Tokyo")
    zone = ZoneInfo("Asia/Tokyo")
    due = local(next_weekday(dt.datetime.now(dt.UTC), zone, 4), 9, zone)
    chat = crm.chat("alice")
    await chat.say(ActionCreateTask(), "set a reminder for Friday: send the 50k quote to Raj", "create_task")
    assert chat.text == f"Add the task “Send the 50k quote to Raj”, due {moment(due, zone)}, and remind you then?"
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert one(crm, Reminder, message="Send the 50k quote to Raj").remind_at == due.astimezone(dt.UTC)


async def test_a_reminder_needs_a_time_a_task_does_not(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionCreateTask(), "remind me to call Raj", "create_task", [entity("record", "Raj")])
    assert "When should I remind you?" in chat.text and chat.slots.get(PENDING) is None
    await chat.say(ActionCreateTask(), "todo: chase the Acme contract", "create_task", [entity("record", "Acme")])
    assert chat.text == "Add the task “Chase the Acme contract” on Acme Corporation with no due date?"
    await chat.say(ActionConfirm(), "yes", "affirm")
    task = one(crm, Activity, subject="Chase the Acme contract")
    assert task.due_at is None and count(crm, Reminder) == 0


async def test_a_task_never_links_another_reps_record(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(
        ActionCreateTask(),
        "add a task to send Globex the pricing by Friday",
        "create_task",
        [entity("record", "Globex")],
    )
    assert "I can't find “Globex” among your records" in chat.text and "Lena" not in chat.text
    await chat.say(ActionConfirm(), "yes", "affirm")
    task = one(crm, Activity, subject="Send Globex the pricing")
    assert task.contact_id is None and task.account_id is None


# --- recurring activities -----------------------------------------------------------------------------
async def test_every_monday_at_9_shows_the_next_three_and_is_written_on_yes(crm: Crm) -> None:
    set_timezone(crm, "alice", "Europe/Berlin")
    zone = ZoneInfo("Europe/Berlin")
    now = dt.datetime.now(dt.UTC)
    first = next_weekday(now, zone, 0)
    if now.astimezone(zone).weekday() == 0 and now < local(now.astimezone(zone).date(), 9, zone):
        first = now.astimezone(zone).date()
    mondays = [local(first + dt.timedelta(weeks=n), 9, zone) for n in range(3)]
    chat = crm.chat("alice")
    await chat.say(ActionCreateRecurring(), "every Monday at 9 pipeline review", "create_recurring")
    expected = "; ".join(moment(m, zone) for m in mondays)
    assert chat.text == f"Set up “Pipeline review” (task) every Monday at 09:00 — the next ones: {expected}?"
    assert count(crm, RecurringActivity) == 0

    await chat.say(ActionConfirm(), "yes", "affirm")
    assert chat.text.startswith("Set up “Pipeline review” every Monday at 09:00.")
    series = one(crm, RecurringActivity, subject="Pipeline review")
    assert series.pattern is RecurrencePattern.WEEKLY and series.interval == 1 and series.weekdays == ["MO"]
    assert series.timezone == "Europe/Berlin" and series.rrule == "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO"
    assert series.starts_at.astimezone(zone).time() == dt.time(9)
    assert series.next_occurrence_at is not None and series.owner_id == crm.actor("alice").user_id
    audit = audit_of(crm, "recurring_activities", series.id)
    assert audit.channel == "api" and audit.user_id == crm.actor("alice").user_id

    await chat.say(ActionUndo(), "undo", "undo")
    assert "Undone" in chat.text and count(crm, RecurringActivity) == 0


async def test_a_recurring_reminder_links_the_contact_and_repeats_with_the_series(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionCreateRecurring(), "set up a recurring task: send report", "create_recurring")
    assert "How often should it repeat?" in chat.text and chat.slots.get(PENDING) is None
    await chat.say(
        ActionCreateRecurring(),
        "each Friday at 4 remind me to update forecasts with Dana",
        "create_recurring",
        [entity("record", "Dana")],
    )
    assert chat.text.startswith(
        "Set up “Update forecasts with Dana” (task) on Nimbus Labs (Dana Smith) every Friday at 16:00, "
        "with a reminder each time — the next ones: "
    )
    await chat.say(ActionConfirm(), "yes", "affirm")
    series = one(crm, RecurringActivity, subject="Update forecasts with Dana")
    assert series.contact_id == record_id(crm, Contact, first_name="Dana") and series.weekdays == ["FR"]
    reminder = one(crm, Reminder, message="Update forecasts with Dana")
    assert reminder.recurrence == series.rrule and reminder.remind_at == series.next_occurrence_at
    assert reminder.remind_at.weekday() == 4 and reminder.remind_at.hour == 16  # alice is on UTC


# --- booking meetings ---------------------------------------------------------------------------------
async def test_a_meeting_with_a_contact_and_a_colleague_is_booked_on_yes(crm: Crm) -> None:
    set_timezone(crm, "alice", "Europe/Berlin")
    zone = ZoneInfo("Europe/Berlin")
    start = local(next_weekday(dt.datetime.now(dt.UTC), zone, 1, next_week=True), 15, zone)
    chat = crm.chat("alice")
    await chat.say(
        ActionBookMeeting(),
        "book a meeting with Dana Smith and Bob next Tuesday 3pm for an hour",
        "book_meeting",
        [entity("record", "Dana Smith"), entity("PERSON", "Bob", extractor=SPACY)],
    )
    slot = span_text(start, start + dt.timedelta(hours=1), zone)
    assert chat.text == f"Book “Meeting with Dana Smith and Bob Chen” on {slot}?"
    assert count(crm, CalendarBooking) == 0

    await chat.say(ActionConfirm(), "yes", "affirm")
    assert chat.text.startswith(f"Booked “Meeting with Dana Smith and Bob Chen” on {slot}.")
    booking = one(crm, CalendarBooking)
    assert booking.start_at == start.astimezone(dt.UTC) and booking.end_at == (start + dt.timedelta(hours=1))
    assert booking.owner_id == crm.actor("alice").user_id and booking.timezone == "Europe/Berlin"
    dana = record_id(crm, Contact, first_name="Dana")
    assert booking.contact_id == dana and booking.account_id == record_id(crm, Account, name="Nimbus Labs")
    assert {(a.contact_id, a.user_id) for a in booking.attendees} == {(dana, None), (None, crm.actor("bob").user_id)}
    audit = audit_of(crm, "calendar_bookings", booking.id)
    assert audit.channel == "api" and audit.user_id == crm.actor("alice").user_id

    await chat.say(ActionUndo(), "undo", "undo")
    assert "Undone: Booked" in chat.text and count(crm, CalendarBooking) == 0


async def test_a_clash_offers_the_next_free_slots_and_a_slot_taken_meanwhile_is_offered_again(crm: Crm) -> None:
    zone = ZoneInfo("UTC")
    tuesday = next_weekday(dt.datetime.now(dt.UTC), zone, 1, next_week=True)
    book(crm, "alice", "Globex workshop", local(tuesday, 15, zone), 60)
    chat = crm.chat("alice")
    await chat.say(
        ActionBookMeeting(),
        "book a meeting with Dana Smith next Tuesday 3pm",
        "book_meeting",
        [entity("record", "Dana Smith")],
    )
    workshop = span_text(local(tuesday, 15, zone), local(tuesday, 16, zone), zone)
    at_four = span_text(local(tuesday, 16, zone), local(tuesday, 16, zone, 30), zone)
    first, more = chat.replies[0]["text"], chat.replies[1]["text"]
    assert (
        first == f"You're busy then (Globex workshop, {workshop}). Book “Meeting with Dana Smith” on {at_four} instead?"
    )
    wednesday = tuesday + dt.timedelta(days=1)
    assert more.splitlines()[:3] == [
        "Other free times:",
        f"1. {span_text(local(tuesday, 16, zone, 30), local(tuesday, 17, zone), zone)}",
        f"2. {span_text(local(wednesday, 9, zone), local(wednesday, 9, zone, 30), zone)}",
    ]

    book(crm, "alice", "Nimbus prep", local(tuesday, 16, zone), 30)  # taken before the yes
    await chat.say(ActionConfirm(), "yes", "affirm")
    half_four = span_text(local(tuesday, 16, zone, 30), local(tuesday, 17, zone), zone)
    assert f"That slot has just been taken. Book “Meeting with Dana Smith” on {half_four} instead?" in chat.text
    assert count(crm, CalendarBooking, title="Meeting with Dana Smith") == 0
    await chat.say(ActionConfirm(), "yes", "affirm")
    booked = one(crm, CalendarBooking, title="Meeting with Dana Smith")
    assert booked.start_at == local(tuesday, 16, zone, 30)


async def test_a_colleagues_clash_says_busy_without_their_meeting_and_other_reps_records_are_not_found(
    crm: Crm,
) -> None:
    zone = ZoneInfo("UTC")
    tuesday = next_weekday(dt.datetime.now(dt.UTC), zone, 1, next_week=True)
    book(crm, "bob", "Umbrella pricing war room", local(tuesday, 15, zone), 60)
    chat = crm.chat("alice")
    await chat.say(
        ActionBookMeeting(),
        "set up a 45 minute call with Raj and Bob next Tuesday at 3pm",
        "book_meeting",
        [entity("record", "Raj"), entity("PERSON", "Bob", extractor=SPACY)],
    )
    assert chat.replies[0]["text"].startswith("Bob Chen is busy then. Book “Call with Raj Patel and Bob Chen” on ")
    assert "Umbrella" not in chat.text
    await chat.say(
        ActionBookMeeting(),
        "book a meeting with Globex tomorrow at 10",
        "book_meeting",
        [entity("record", "Globex")],
    )
    assert "can't find" in chat.text and "Lena" not in chat.text and chat.slots.get(PENDING) is None
    await chat.say(ActionConfirm(), "yes", "affirm")  # the earlier read-back went with the new request
    assert "nothing waiting" in chat.text and count(crm, CalendarBooking) == 1


async def test_without_a_time_the_next_free_slots_are_offered(crm: Crm) -> None:
    chat = crm.chat("alice")
    now = dt.datetime.now(dt.UTC)
    zone = ZoneInfo("UTC")
    thursday = next_weekday(now, zone, 3)
    await chat.say(ActionBookMeeting(), "book a demo with Raj on Thursday", "book_meeting", [entity("record", "Raj")])
    nine = span_text(local(thursday, 9, zone), local(thursday, 9, zone, 30), zone)
    assert chat.replies[0]["text"] == f"Book “Demo with Raj Patel” on {nine}?"
    await chat.say(ActionDeny(), "no", "deny")
    await chat.say(ActionBookMeeting(), "find a slot with Raj", "book_meeting", [entity("record", "Raj")])
    assert chat.replies[0]["text"].startswith("Book “Meeting with Raj Patel” on ")
    assert [line[:3] for line in chat.replies[1]["text"].splitlines()[1:3]] == ["1. ", "2. "]
    await chat.say(ActionConfirm(), "yes", "affirm")
    booked = one(crm, CalendarBooking, title="Meeting with Raj Patel")
    assert booked.start_at > now and booked.start_at.weekday() < 5 and 9 <= booked.start_at.hour < 17
    assert booked.end_at - booked.start_at == dt.timedelta(minutes=30)


# --- the parsing underneath ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "header_end", "description"),
    [
        (LOG_DANA, 30, "she wants a proposal by Friday"),
        ("add a note to Acme: budget approved", 18, "budget approved"),
        ("log a call at 10:30 with Dana saying they need 12,000 seats", 29, "they need 12,000 seats"),
        ("called raj - he is out until monday", 10, "he is out until monday"),
        ("note that Acme approved the budget", 4, "Acme approved the budget"),
        ("record an email to Globex", 25, "record an email to Globex"),  # nothing after a separator: all of it
        (
            "log a call with dana at nimbus she wants a proposal",
            51,
            "log a call with dana at nimbus she wants a proposal",
        ),
    ],
)
def test_the_free_text_is_what_follows_the_first_separator(text: str, header_end: int, description: str) -> None:
    assert split_description(text) == (header_end, description)


def test_a_separator_inside_a_record_name_does_not_split() -> None:
    text = "log a call on Acme - Fleet telematics, they signed"
    assert split_description(text, [(14, 37)]) == (37, "they signed")


@pytest.mark.parametrize(
    ("text", "subject"),
    [
        ("remind me to call Acme tomorrow at 10", "call Acme"),
        ("add a task to send the proposal by Friday", "send the proposal"),
        ("set a reminder for Monday 9am: follow up with Lena", "follow up with Lena"),
        ("todo: chase Hooli contract", "chase Hooli contract"),
        ("remind me tomorrow to send the 50k quote", "send the 50k quote"),  # amounts stay
        ("okay so remind me about the Acme renewal on friday", "the Acme renewal"),
        ("Due diligence call prep tomorrow", "Due diligence call prep"),
    ],
)
def test_a_tasks_subject_is_the_request_without_its_date_and_lead_in(text: str, subject: str) -> None:
    found = extract_amount_and_when(text, now=dt.datetime(2026, 11, 25, 14, tzinfo=dt.UTC), tz="UTC")
    assert task_subject(text, found.when_spans) == subject


@pytest.mark.parametrize(
    ("text", "pattern", "interval", "weekdays", "month_days", "described"),
    [
        ("every Monday at 9 pipeline review", "Weekly", 1, ["MO"], [], "every Monday"),
        ("set up a weekly call with Dana on Thursdays", "Weekly", 1, ["TH"], [], "every Thursday"),
        ("every Mon and Thu at 10 call round", "Weekly", 1, ["MO", "TH"], [], "every Monday and Thursday"),
        ("every weekday at 8:30 check the inbox", "Weekly", 1, ["MO", "TU", "WE", "TH", "FR"], [], "every weekday"),
        ("every other Tuesday sync", "Weekly", 2, ["TU"], [], "every 2 weeks on Tuesday"),
        ("every 2 weeks team retro", "Weekly", 2, [], [], "every 2 weeks"),
        ("daily standup at 9:15", "Daily", 1, [], [], "every day"),
        ("every 3 days water the plants", "Daily", 3, [], [], "every 3 days"),
        ("recurring task every first of the month: send report", "Monthly", 1, [], [1], "on the 1st of every month"),
        ("on the 15th of each month invoice review", "Monthly", 1, [], [15], "on the 15th of every month"),
        ("every last day of the month close the books", "Monthly", 1, [], [-1], "on the last day of every month"),
        ("quarterly business review with Acme", "Monthly", 3, [], [], "every 3 months"),
        ("every year renew the licence", "Yearly", 1, [], [], "every year"),
    ],
)
def test_recurrence_phrases(
    text: str, pattern: str, interval: int, weekdays: list[str], month_days: list[int], described: str
) -> None:
    found = parse_recurrence(text)
    assert found is not None
    assert (found.pattern.value, found.interval, found.weekdays, found.month_days) == (
        pattern,
        interval,
        weekdays,
        month_days,
    )
    assert found.describe() == described


@pytest.mark.parametrize("text", ["call Acme tomorrow", "every time they call", "on Monday review the deck"])
def test_no_recurrence_without_a_repetition(text: str) -> None:
    assert parse_recurrence(text) is None


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("book a meeting with Dana for an hour", 60),
        ("45 minutes with Raj", 45),
        ("set up a 30 minute call", 30),
        ("half an hour with Bob", 30),
        ("a 1.5 hours workshop", 90),
        ("90m demo", 90),
        ("meeting in 45 minutes", None),  # when, not how long
        ("tomorrow at 3pm", None),
    ],
)
def test_meeting_length(text: str, minutes: int | None) -> None:
    found = parse_duration(text)
    assert (found[0] if found else None) == minutes
