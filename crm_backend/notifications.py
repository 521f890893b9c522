"""Telling a CRM user something: a due reminder, a hot lead, a stalled deal, an escalation.

`notify()` (one message) and `notify_many()` (a batch, in a few queries) are the one way in. In the
caller's transaction they write a feed item (the in-app channel, always there) and queue a
`Notification` for delivery to the user's preferred linked channel; the scheduler delivers queued
notifications through the registered `Deliverer`s and retries failures with backoff. A `dedupe_key`
makes it idempotent: the same event notifies once, even when two transactions race for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm_backend.models.automation import EntityType
from crm_backend.models.base import utcnow
from crm_backend.models.feeds import FeedItem, FeedType
from crm_backend.models.notifications import Notification
from crm_backend.models.users import User
from crm_backend.store import UnitOfWork

MAX_TITLE = 300
MAX_BODY = 4000
CHUNK = 500


@dataclass(frozen=True)
class Message:
    """One thing to tell one user."""

    user_id: int
    kind: str  # reminder, signal, escalation, macro, ...
    title: str
    body: str | None = None
    entity_type: EntityType | str | None = None
    entity_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str | None = None
    important: bool = False
    due_at: dt.datetime | None = None  # first delivery attempt (default: now)


@dataclass(frozen=True)
class Queued:
    notification: Notification | None  # None when `dedupe_key` was already used
    feed_item: FeedItem | None


def notify(
    uow: UnitOfWork,
    user_id: int,
    kind: str,
    title: str,
    body: str | None = None,
    *,
    entity_type: EntityType | str | None = None,
    entity_id: int | None = None,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    important: bool = False,
) -> Queued:
    """Post to `user_id`'s feed and queue delivery to their channel (once per `dedupe_key`)."""
    message = Message(user_id, kind, title, body, entity_type, entity_id, data or {}, dedupe_key, important)
    return notify_many(uow, [message])[0]


def notify_many(uow: UnitOfWork, messages: Sequence[Message]) -> list[Queued]:
    """`notify()` for a batch: one query for used keys and users, one savepoint for all the rows.

    Returns one `Queued` per message, in order; a message whose key was used (before, or earlier in
    this batch) queues nothing.
    """
    if not messages:
        return []
    session = uow.session
    _check_users(uow, {m.user_id for m in messages})
    taken = _taken_keys(uow, [m.dedupe_key for m in messages if m.dedupe_key])
    rows: list[tuple[Message, FeedItem, Notification] | None] = []
    for message in messages:
        if message.dedupe_key is not None:
            if message.dedupe_key in taken:
                rows.append(None)
                continue
            taken.add(message.dedupe_key)
        rows.append((message, *_rows(message)))
    fresh = [r for r in rows if r is not None]
    try:
        with session.begin_nested():  # a concurrent twin fails this savepoint, not the caller's transaction
            for _message, feed, note in fresh:
                session.add_all([feed, note])
    except IntegrityError:
        return [_one_by_one(uow, r[0]) if r is not None else Queued(None, None) for r in rows]
    return [Queued(r[2], r[1]) if r is not None else Queued(None, None) for r in rows]


def _one_by_one(uow: UnitOfWork, message: Message) -> Queued:
    feed, note = _rows(message)
    try:
        with uow.session.begin_nested():
            uow.session.add_all([feed, note])
    except IntegrityError:
        return Queued(None, None)
    return Queued(note, feed)


def _rows(message: Message) -> tuple[FeedItem, Notification]:
    etype = EntityType(message.entity_type) if message.entity_type is not None else None
    title = message.title[:MAX_TITLE]
    feed = FeedItem(
        owner_id=message.user_id,
        type=FeedType.NOTIFICATION,
        title=title,
        data={"kind": message.kind, "body": message.body, **message.data},
        entity_type=etype,
        entity_id=message.entity_id,
        is_important=message.important,
    )
    note = Notification(
        user_id=message.user_id,
        kind=message.kind,
        title=title,
        body=message.body[:MAX_BODY] if message.body else None,
        data=message.data,
        entity_type=etype,
        entity_id=message.entity_id,
        dedupe_key=message.dedupe_key,
        next_attempt_at=message.due_at or utcnow(),
    )
    return feed, note


def _check_users(uow: UnitOfWork, user_ids: set[int]) -> None:
    found: set[int] = set()
    ids = sorted(user_ids)
    for i in range(0, len(ids), CHUNK):
        found.update(uow.session.scalars(select(User.id).where(User.id.in_(ids[i : i + CHUNK]))))
    if missing := user_ids - found:
        raise ValueError(f"no user {sorted(missing)} to notify")


def _taken_keys(uow: UnitOfWork, keys: list[str]) -> set[str]:
    taken: set[str] = set()
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        taken.update(
            k
            for k in uow.session.scalars(select(Notification.dedupe_key).where(Notification.dedupe_key.in_(chunk)))
            if k
        )
    return taken
