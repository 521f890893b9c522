"""Notifications (a due reminder, a hot lead, an escalation) reach the user's preferred linked channel
through the gateway's scheduler: Slack DM first, then Telegram, the in-app feed as the fallback, with
the delivery recorded and a failed send retried."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from assistant.settings import open_store
from crm_backend.models import Notification
from crm_backend.models.notifications import DeliveryStatus
from crm_backend.notifications import notify
from crm_backend.services import identities, users
from crm_backend.store import Store
from tests.e2e.conftest import Running
from tests.fakes.slack_api import control


@pytest.fixture(scope="module")
def store(running: Running) -> Iterator[Store]:
    s = open_store(running.settings)
    yield s
    s.dispose()


def link(store: Store, running: Running, username: str, channel: str, external_id: str, workspace: str = "") -> None:
    code = running.link_code(username)
    with store.unit_of_work(channel=channel) as uow:
        identities.redeem_link_code(uow, code, channel, external_id, workspace)


def queue(store: Store, username: str, title: str) -> int:
    with store.unit_of_work(channel="system") as uow:
        user = users.get_user_by_username(uow, username)
        queued = notify(uow, user.id, "reminder", title, "Call them about the renewal.", dedupe_key=title)
        assert queued.notification is not None
        return queued.notification.id


def settled(store: Store, notification_id: int, timeout: float = 60.0) -> Notification:
    """The notification once the scheduler has settled an attempt on it."""
    deadline = time.monotonic() + timeout
    while True:
        with store.unit_of_work(read_only=True) as uow:
            note = uow.session.get(Notification, notification_id)
            assert note is not None
            if note.status != DeliveryStatus.PENDING or (note.attempts and note.last_error):
                uow.session.expunge(note)
                return note
        assert time.monotonic() < deadline, "the scheduler did not deliver the notification"
        time.sleep(0.5)


def test_a_due_reminder_reaches_a_linked_rep_in_their_slack_dm(running: Running, store: Store) -> None:
    rep = running.new_user()
    link(store, running, rep, "slack", f"U{rep.upper()}", "T1")
    title = f"Reminder: call Nimbus {uuid.uuid4().hex[:6]}"
    since = len(running.slack.recorder)
    note = settled(store, queue(store, rep, title))
    assert note.status == DeliveryStatus.SENT and note.channel == "slack" and note.sent_at is not None
    call = running.slack.recorder.wait_for("chat.postMessage", lambda c: title in str(c.params), since=since)
    assert call.params["channel"] == f"U{rep.upper()}"


def test_telegram_is_used_when_it_is_the_only_linked_channel(running: Running, store: Store) -> None:
    rep = running.new_user()
    link(store, running, rep, "telegram", "777001")
    title = f"Hot lead: Tailspin {uuid.uuid4().hex[:6]}"
    since = len(running.telegram.recorder)
    note = settled(store, queue(store, rep, title))
    assert note.status == DeliveryStatus.SENT and note.channel == "telegram"
    call = running.telegram.recorder.wait_for("sendMessage", lambda c: title in str(c.params), since=since)
    assert str(call.params["chat_id"]) == "777001"


def test_a_user_without_a_linked_chat_gets_it_in_the_app_feed(running: Running, store: Store) -> None:
    note = settled(store, queue(store, running.new_user(), f"Escalation {uuid.uuid4().hex[:6]}"))
    assert note.status == DeliveryStatus.SENT and note.channel == "in_app"


def test_a_failed_slack_send_is_recorded_and_retried(running: Running, store: Store) -> None:
    rep = running.new_user()
    link(store, running, rep, "slack", f"U{rep.upper()}", "T1")
    asyncio.run(control(running.slack.url, "fail", method="chat.postMessage", error="ratelimited", times=1))
    title = f"Reminder: send the proposal {uuid.uuid4().hex[:6]}"
    note_id = queue(store, rep, title)
    first = settled(store, note_id)
    assert first.status == DeliveryStatus.PENDING and first.attempts == 1
    assert "ratelimited" in (first.last_error or "") and first.next_attempt_at is not None
    with store.unit_of_work(channel="system") as uow:  # don't wait out the backoff
        row = uow.session.scalars(select(Notification).where(Notification.id == note_id)).one()
        row.next_attempt_at = row.created_at
    deadline = time.monotonic() + 60
    while True:
        with store.unit_of_work(read_only=True) as uow:
            row = uow.session.get(Notification, note_id)
            assert row is not None
            if row.status == DeliveryStatus.SENT:
                assert row.attempts == 2 and row.channel == "slack"
                break
        assert time.monotonic() < deadline, "the retry did not happen"
        time.sleep(0.5)
