"""Due reminders become notifications exactly once, across restarts, and reach the user's channel with
retries and backoff (a failing channel is a real deliverer registered for the test)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

import crm_backend.resources  # noqa: F401 - fills the collection registry
from crm_backend.models.activities import Reminder, ReminderStatus
from crm_backend.models.feeds import FeedItem
from crm_backend.models.notifications import DeliveryStatus, Notification
from crm_backend.models.users import ChannelIdentity, User
from crm_backend.scheduler import reminders
from crm_backend.scheduler.delivery import NotificationView, Registry, RetryPolicy, claim_due, default_registry
from crm_backend.scheduler.runner import SchedulerConfig, run_once
from crm_backend.services import records
from crm_backend.store import Store
from tests.conftest import Demo

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def make_reminder(demo: Demo, remind_at: dt.datetime, recurrence: str | None = None, user: str = "alice") -> int:
    with demo.store.unit_of_work(demo.actor(user)) as uow:
        values: dict[str, Any] = {"message": "Call Acme back", "remind_at": remind_at.isoformat()}
        if recurrence:
            values["recurrence"] = recurrence
        return int(records.create_record(uow, records.resource("reminders"), values).id)


def notifications(store: Store) -> list[Notification]:
    with store.unit_of_work() as uow:  # committed, so the rows stay loaded
        return list(uow.session.scalars(select(Notification).order_by(Notification.id)))


def reminder(store: Store, rid: int) -> Reminder:
    with store.unit_of_work() as uow:  # committed, so the rows stay loaded
        found = uow.session.get(Reminder, rid)
        assert found is not None
        return found


def feed_count(store: Store) -> int:
    with store.unit_of_work() as uow:  # committed, so the rows stay loaded
        return int(uow.session.scalar(select(func.count()).select_from(FeedItem)) or 0)


def link(demo: Demo, user: str, channel: str, external_id: str) -> None:
    with demo.store.unit_of_work() as uow:
        uow.session.add(ChannelIdentity(user_id=demo.actor(user).user_id, channel=channel, external_id=external_id))


def set_timezone(demo: Demo, user: str, tz: str) -> None:
    with demo.store.unit_of_work() as uow:
        found = uow.session.get(User, demo.actor(user).user_id)
        assert found is not None
        found.timezone = tz


class FlakyChannel:
    """A channel that fails its first `failures` sends (a Slack outage), recording every call."""

    timeout_seconds = 1.0

    def __init__(self, channel: str, failures: int, delay: float = 0.0) -> None:
        self.channel = channel
        self.failures = failures
        self.delay = delay
        self.calls: list[NotificationView] = []

    async def deliver(self, notification: NotificationView) -> None:
        self.calls.append(notification)
        if self.delay:
            await asyncio.sleep(self.delay)
        if len(self.calls) <= self.failures:
            raise ConnectionError("slack is down")


def registry_with(deliverer: FlakyChannel) -> Registry:
    registry = default_registry()
    registry.register(deliverer)
    return registry


async def test_due_reminder_is_delivered_to_the_feed_once_however_often_the_scheduler_runs(demo: Demo) -> None:
    rid = make_reminder(demo, NOW - dt.timedelta(minutes=1))
    later = make_reminder(demo, NOW + dt.timedelta(hours=1))
    feed_before = feed_count(demo.store)
    await run_once(demo.store, NOW)
    await run_once(demo.store, NOW + dt.timedelta(seconds=5))
    notes = notifications(demo.store)
    assert len(notes) == 1
    note = notes[0]
    assert (note.status, note.channel, note.attempts, note.kind) == (DeliveryStatus.SENT, "in_app", 1, "reminder")
    assert note.data["reminder_id"] == rid
    assert note.user_id == demo.actor("alice").user_id
    assert feed_count(demo.store) == feed_before + 1
    assert reminder(demo.store, rid).status == ReminderStatus.SENT
    assert reminder(demo.store, later).status == ReminderStatus.PENDING


async def test_a_sent_reminder_set_back_to_pending_by_hand_is_not_sent_twice_nor_blocks_others(demo: Demo) -> None:
    rid = make_reminder(demo, NOW - dt.timedelta(minutes=1))
    await run_once(demo.store, NOW)
    with demo.store.unit_of_work(demo.actor("alice")) as uow:
        records.update_record(uow, records.resource("reminders"), rid, {"status": "Pending"}, None)
    other = make_reminder(demo, NOW)
    report = await run_once(demo.store, NOW + dt.timedelta(seconds=5))
    assert report.errors == {}
    assert [n.data["reminder_id"] for n in notifications(demo.store)] == [rid, other]
    assert reminder(demo.store, rid).status == ReminderStatus.SENT
    assert reminder(demo.store, other).status == ReminderStatus.SENT


async def test_restart_between_firing_and_delivery_loses_nothing_and_sends_once(demo: Demo) -> None:
    rid = make_reminder(demo, NOW - dt.timedelta(minutes=1))
    assert reminders.fire_due(demo.store, NOW) == 1  # the process dies right after this transaction
    assert reminders.fire_due(demo.store, NOW) == 0  # a restart does not fire it again
    [note] = notifications(demo.store)
    assert note.status == DeliveryStatus.PENDING
    await run_once(demo.store, NOW + dt.timedelta(seconds=5))  # the restarted scheduler delivers it
    [note] = notifications(demo.store)
    assert note.status == DeliveryStatus.SENT
    assert reminder(demo.store, rid).status == ReminderStatus.SENT


async def test_a_claim_left_by_a_crashed_process_is_retried_after_its_timeout(demo: Demo) -> None:
    make_reminder(demo, NOW - dt.timedelta(minutes=1))
    reminders.fire_due(demo.store, NOW)
    policy = RetryPolicy()
    claimed = claim_due(demo.store, NOW, policy, frozenset({"in_app"}))  # then the process dies mid-send
    assert len(claimed) == 1
    channel = FlakyChannel("in_app", failures=0)
    report = await run_once(demo.store, NOW + dt.timedelta(seconds=10), registry=registry_with(channel))
    assert channel.calls == []  # still claimed: nobody sends it twice meanwhile
    assert report.results["delivery"]["claimed"] == 0
    await run_once(demo.store, NOW + policy.claim_timeout + dt.timedelta(seconds=1), registry=registry_with(channel))
    assert len(channel.calls) == 1
    [note] = notifications(demo.store)
    assert (note.status, note.attempts) == (DeliveryStatus.SENT, 2)


async def test_failed_send_is_retried_with_backoff_on_the_preferred_channel(demo: Demo) -> None:
    link(demo, "alice", "telegram", "555")
    link(demo, "alice", "slack", "U123")
    slack = FlakyChannel("slack", failures=1)
    registry = registry_with(slack)
    registry.register(FlakyChannel("telegram", failures=0))
    make_reminder(demo, NOW - dt.timedelta(minutes=1))
    await run_once(demo.store, NOW, registry=registry)
    [note] = notifications(demo.store)
    assert (note.status, note.channel, note.attempts) == (DeliveryStatus.PENDING, "slack", 1)
    assert note.last_error is not None and "ConnectionError" in note.last_error
    assert note.next_attempt_at is not None
    assert NOW + dt.timedelta(seconds=15) <= note.next_attempt_at <= NOW + dt.timedelta(seconds=30)
    assert slack.calls[0].address == "U123"
    await run_once(demo.store, NOW + dt.timedelta(seconds=14), registry=registry)
    assert len(slack.calls) == 1  # not yet due
    await run_once(demo.store, note.next_attempt_at, registry=registry)
    [note] = notifications(demo.store)
    assert (note.status, note.attempts, note.last_error) == (DeliveryStatus.SENT, 2, None)
    assert len(slack.calls) == 2


async def test_backoff_grows_and_delivery_fails_for_good_after_max_attempts(demo: Demo) -> None:
    link(demo, "alice", "slack", "U123")
    slack = FlakyChannel("slack", failures=99)
    config = SchedulerConfig(retry=RetryPolicy(max_attempts=3))
    rid = make_reminder(demo, NOW - dt.timedelta(minutes=1))
    waits = []
    at = NOW
    for _ in range(3):
        await run_once(demo.store, at, registry=registry_with(slack), config=config)
        [note] = notifications(demo.store)
        if note.next_attempt_at is not None:
            waits.append(note.next_attempt_at - at)
            at = note.next_attempt_at
    assert len(slack.calls) == 3
    assert waits[1] >= dt.timedelta(seconds=30) > waits[0] / 2  # 30 s then 60 s, each times 0.5..1
    assert (note.status, note.attempts, note.next_attempt_at) == (DeliveryStatus.FAILED, 3, None)
    failed = reminder(demo.store, rid)
    assert failed.status == ReminderStatus.FAILED
    assert failed.last_error is not None and "slack is down" in failed.last_error
    await run_once(demo.store, at + dt.timedelta(days=1), registry=registry_with(slack), config=config)
    assert len(slack.calls) == 3  # given up: no more sends


async def test_a_channel_that_never_answers_times_out_and_is_retried(demo: Demo) -> None:
    link(demo, "alice", "slack", "U123")
    slow = FlakyChannel("slack", failures=0, delay=0.5)
    slow.timeout_seconds = 0.05
    make_reminder(demo, NOW - dt.timedelta(minutes=1))
    await run_once(demo.store, NOW, registry=registry_with(slow))
    [note] = notifications(demo.store)
    assert note.status == DeliveryStatus.PENDING
    assert note.last_error == "slack: no answer within 0.05s"


async def test_unregistered_channel_falls_back_to_the_feed(demo: Demo) -> None:
    link(demo, "alice", "slack", "U123")  # linked, but this process has no Slack deliverer
    make_reminder(demo, NOW - dt.timedelta(minutes=1))
    await run_once(demo.store, NOW)
    [note] = notifications(demo.store)
    assert (note.status, note.channel) == (DeliveryStatus.SENT, "in_app")


@pytest.mark.parametrize(
    ("first", "expected_next"),
    [
        # 09:00 in Berlin before and after the October DST change: 07:00 UTC, then 08:00 UTC.
        (dt.datetime(2026, 10, 24, 7, 0, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, 8, 0, tzinfo=dt.UTC)),
        (dt.datetime(2026, 3, 28, 8, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 29, 7, 0, tzinfo=dt.UTC)),
    ],
)
async def test_recurring_reminder_moves_to_its_next_local_occurrence_and_counts_down(
    demo: Demo, first: dt.datetime, expected_next: dt.datetime
) -> None:
    set_timezone(demo, "alice", "Europe/Berlin")
    rid = make_reminder(demo, first, "RRULE:FREQ=DAILY;COUNT=2")
    await run_once(demo.store, first + dt.timedelta(seconds=1))
    moved = reminder(demo.store, rid)
    assert (moved.status, moved.remind_at, moved.recurrence) == (
        ReminderStatus.PENDING,
        expected_next,
        "RRULE:FREQ=DAILY;COUNT=1",
    )
    await run_once(demo.store, expected_next + dt.timedelta(seconds=1))
    done = reminder(demo.store, rid)
    assert done.status == ReminderStatus.SENT
    assert [n.data["remind_at"] for n in notifications(demo.store)] == [first.isoformat(), expected_next.isoformat()]


async def test_occurrences_missed_while_down_fire_once_not_in_a_burst(demo: Demo) -> None:
    rid = make_reminder(demo, NOW - dt.timedelta(days=5), "RRULE:FREQ=DAILY")
    await run_once(demo.store, NOW + dt.timedelta(minutes=1))
    assert len(notifications(demo.store)) == 1
    assert reminder(demo.store, rid).remind_at == NOW + dt.timedelta(days=1)


async def test_recurring_reminder_until_ends_the_series(demo: Demo) -> None:
    rid = make_reminder(demo, NOW, "RRULE:FREQ=WEEKLY;UNTIL=20261205T000000Z")
    await run_once(demo.store, NOW + dt.timedelta(seconds=1))
    assert reminder(demo.store, rid).status == ReminderStatus.SENT
