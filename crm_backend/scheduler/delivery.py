"""Delivering queued notifications to the user's preferred linked channel, with retries.

Every `notify()` already wrote the in-app feed item; this module pushes the message further (Slack DM,
Telegram chat, web push) through the registered `Deliverer`s. Each attempt is claimed in its own
transaction before sending (attempts + 1, `next_attempt_at` pushed past a claim timeout) and settled in
another after, so a crash mid-send never loses a message and never leaves it claimed forever: the claim
expires and the next tick retries it. A claim whose process died after the send but before the
settlement is the one case a channel may see twice; deliverers get the notification id to dedupe on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select

from crm_backend.models.activities import Reminder, ReminderStatus
from crm_backend.models.notifications import DeliveryStatus, Notification
from crm_backend.models.users import ChannelIdentity
from crm_backend.store import Store, UnitOfWork

log = logging.getLogger(__name__)

IN_APP = "in_app"
# Where a user would rather be told, most preferred first; in_app (the feed) is always there.
CHANNEL_PREFERENCE: tuple[str, ...] = ("slack", "telegram", "web", IN_APP)


@dataclass(frozen=True)
class NotificationView:
    """What a deliverer needs, detached from the session (deliveries run outside any transaction)."""

    id: int
    user_id: int
    kind: str
    title: str
    body: str | None
    data: dict[str, Any]
    entity_type: str | None
    entity_id: int | None
    channel: str
    address: str | None  # the user's id on `channel` (Slack user id, Telegram chat id); None for in_app
    workspace: str | None
    attempt: int


class Deliverer(Protocol):
    """Sends one notification on one channel; raises on failure; finishes within `timeout_seconds`."""

    channel: str
    timeout_seconds: float

    async def deliver(self, notification: NotificationView) -> None: ...


class InAppDeliverer:
    """The feed item was written with the notification, so in-app delivery is already done."""

    channel = IN_APP
    timeout_seconds = 1.0

    async def deliver(self, notification: NotificationView) -> None:
        return None


class Registry:
    """The deliverers this process can use, by channel. Channel adapters register theirs at start-up."""

    def __init__(self, deliverers: Iterable[Deliverer] = ()) -> None:
        self._by_channel: dict[str, Deliverer] = {}
        for d in deliverers:
            self.register(d)

    def register(self, deliverer: Deliverer) -> None:
        self._by_channel[deliverer.channel] = deliverer

    def unregister(self, channel: str) -> None:
        if channel == IN_APP:
            raise ValueError("the in-app channel is the fallback and cannot be removed")
        self._by_channel.pop(channel, None)

    def get(self, channel: str) -> Deliverer:
        return self._by_channel.get(channel) or self._by_channel[IN_APP]

    def channels(self) -> frozenset[str]:
        return frozenset(self._by_channel)


def default_registry() -> Registry:
    return Registry([InAppDeliverer()])


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: the n-th retry waits base * 2**(n-1), capped, times 0.5..1."""

    max_attempts: int = 5
    base: dt.timedelta = dt.timedelta(seconds=30)
    cap: dt.timedelta = dt.timedelta(hours=1)
    claim_timeout: dt.timedelta = dt.timedelta(minutes=2)  # a claimed attempt older than this is retried
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> dt.timedelta:
        full: dt.timedelta = min(self.cap, self.base * (1 << max(0, attempt - 1)))
        return full * (0.5 + self.rng.random() / 2)


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def add(self, other: DeliveryReport) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed


def choose_channel(identities: list[ChannelIdentity], available: frozenset[str]) -> ChannelIdentity | None:
    """The user's most preferred linked identity that this process can deliver to (None: in-app)."""
    usable = [i for i in identities if i.channel in available and i.channel != IN_APP]
    rank = {name: n for n, name in enumerate(CHANNEL_PREFERENCE)}
    usable.sort(key=lambda i: (rank.get(i.channel, len(rank)), i.id))
    return usable[0] if usable else None


def claim_due(
    store: Store, now: dt.datetime, policy: RetryPolicy, available: frozenset[str], limit: int = 500
) -> list[NotificationView]:
    """Claim up to `limit` due notifications in one transaction (PostgreSQL skips rows another
    scheduler has locked) and return what to send."""
    with store.unit_of_work(None, "system") as uow:
        stmt = (
            select(Notification)
            .where(Notification.status == DeliveryStatus.PENDING, Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        notes = list(uow.session.scalars(stmt))
        if not notes:
            return []
        user_ids = {n.user_id for n in notes}
        identities: dict[int, list[ChannelIdentity]] = {}
        for ident in uow.session.scalars(select(ChannelIdentity).where(ChannelIdentity.user_id.in_(user_ids))):
            identities.setdefault(ident.user_id, []).append(ident)
        views = []
        for note in notes:
            if note.attempts >= policy.max_attempts:  # its last claim expired unanswered
                _give_up(uow, note, note.last_error or "no confirmation from the channel")
                continue
            target = choose_channel(identities.get(note.user_id, []), available)
            note.attempts += 1
            note.next_attempt_at = now + policy.claim_timeout
            note.channel = target.channel if target else IN_APP
            views.append(
                NotificationView(
                    id=note.id,
                    user_id=note.user_id,
                    kind=note.kind,
                    title=note.title,
                    body=note.body,
                    data=dict(note.data or {}),
                    entity_type=note.entity_type.value if note.entity_type else None,
                    entity_id=note.entity_id,
                    channel=note.channel,
                    address=target.external_id if target else None,
                    workspace=target.workspace_id if target else None,
                    attempt=note.attempts,
                )
            )
        return views


@dataclass(frozen=True)
class Outcome:
    id: int
    error: str | None  # None: delivered
    at: dt.datetime


async def attempt(registry: Registry, view: NotificationView) -> Outcome:
    deliverer = registry.get(view.channel)
    try:
        await asyncio.wait_for(deliverer.deliver(view), timeout=deliverer.timeout_seconds)
    except TimeoutError:
        return Outcome(view.id, f"{view.channel}: no answer within {deliverer.timeout_seconds:g}s", _now())
    except Exception as exc:  # any channel error is retried; its text is kept for the operator
        log.warning("delivery of notification %s on %s failed: %s", view.id, view.channel, type(exc).__name__)
        return Outcome(view.id, f"{view.channel}: {type(exc).__name__}: {exc}"[:500], _now())
    return Outcome(view.id, None, _now())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _give_up(uow: UnitOfWork, note: Notification, error: str) -> None:
    note.status = DeliveryStatus.FAILED
    note.last_error = error[:500]
    note.next_attempt_at = None
    reminder_id = (note.data or {}).get("reminder_id")
    if note.kind == "reminder" and isinstance(reminder_id, int):
        reminder = uow.session.get(Reminder, reminder_id)
        if reminder is not None:
            reminder.last_error = note.last_error
            reminder.attempts = note.attempts
            if not reminder.recurrence:  # a recurring one has moved on to its next occurrence
                reminder.status = ReminderStatus.FAILED


def settle(store: Store, outcomes: list[Outcome], now: dt.datetime, policy: RetryPolicy) -> DeliveryReport:
    """Record each attempt's result: sent, retry later (backoff), or failed for good."""
    report = DeliveryReport()
    if not outcomes:
        return report
    by_id = {o.id: o for o in outcomes}
    with store.unit_of_work(None, "system") as uow:
        for note in uow.session.scalars(select(Notification).where(Notification.id.in_(by_id))):
            outcome = by_id[note.id]
            if note.status != DeliveryStatus.PENDING:
                continue
            if outcome.error is None:
                note.status = DeliveryStatus.SENT
                note.sent_at = outcome.at
                note.next_attempt_at = None
                note.last_error = None
                report.sent += 1
            elif note.attempts >= policy.max_attempts:
                _give_up(uow, note, outcome.error)
                report.failed += 1
            else:
                note.last_error = outcome.error
                note.next_attempt_at = now + policy.delay(note.attempts)
                report.retrying += 1
    return report


async def deliver_due(
    store: Store,
    now: dt.datetime,
    registry: Registry,
    policy: RetryPolicy,
    *,
    batch: int = 500,
    concurrency: int = 50,
    max_batches: int = 100,
) -> DeliveryReport:
    """Deliver what is due at `now`, batch after batch, until nothing due is left (or `max_batches`)."""
    total = DeliveryReport()
    gate = asyncio.Semaphore(concurrency)

    async def one(view: NotificationView) -> Outcome:
        async with gate:
            return await attempt(registry, view)

    for _ in range(max_batches):
        views = await asyncio.to_thread(claim_due, store, now, policy, registry.channels(), batch)
        if not views:
            break
        outcomes = await asyncio.gather(*(one(v) for v in views))
        report = await asyncio.to_thread(settle, store, list(outcomes), now, policy)
        report.claimed = len(views)
        total.add(report)
        if len(views) < batch:
            break
    return total
