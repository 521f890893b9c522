"""What is new for the acting user: their feed (updates, activity, in-app notifications) merged with
the notifications queued for them, newest first — the read side of "what's new?".

`notifications.notify()` writes each message twice (a feed item for the in-app feed and a
notification for delivery), so a notification is listed only when its feed copy is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from crm_backend.models.feeds import FeedItem, FeedType
from crm_backend.models.notifications import Notification
from crm_backend.services import records
from crm_backend.store import UnitOfWork

MAX_READ = 200  # items read from each source: a chat answer shows a handful
SAME_MESSAGE = timedelta(minutes=1)  # a feed copy is written in the same transaction as its notification


@dataclass(frozen=True)
class NewsItem:
    """One entry of the user's news, from the feed or from their notifications."""

    source: str  # "feed" or "notification"
    kind: str  # a feed item's type (Update, Activity, Notification) or a notification's kind (reminder, signal, …)
    title: str
    body: str | None
    at: datetime  # aware, UTC
    is_read: bool
    important: bool
    entity_type: str | None
    entity_id: int | None


@dataclass(frozen=True)
class News:
    items: list[NewsItem]  # newest first, at most `limit`
    total: int  # how many there are in all (at most 2 × MAX_READ are counted)
    unread: int  # feed items among them the user has not read


def _feed_item(f: FeedItem) -> NewsItem:
    body = f.data.get("body") if isinstance(f.data, dict) else None
    kind = f.data.get("kind") if f.type is FeedType.NOTIFICATION and isinstance(f.data, dict) else None
    return NewsItem(
        source="feed",
        kind=str(kind or f.type.value),
        title=f.title,
        body=str(body) if body else None,
        at=f.created_at,
        is_read=f.is_read,
        important=f.is_important,
        entity_type=f.entity_type.value if f.entity_type else None,
        entity_id=f.entity_id,
    )


def _notification(n: Notification) -> NewsItem:
    return NewsItem(
        source="notification",
        kind=n.kind,
        title=n.title,
        body=n.body,
        at=n.created_at,
        is_read=False,
        important=False,
        entity_type=n.entity_type.value if n.entity_type else None,
        entity_id=n.entity_id,
    )


def _has_feed_copy(n: NewsItem, feed: list[NewsItem]) -> bool:
    return any(
        f.title == n.title
        and f.entity_type == n.entity_type
        and f.entity_id == n.entity_id
        and abs(f.at - n.at) <= SAME_MESSAGE
        for f in feed
    )


def latest(uow: UnitOfWork, *, since: datetime | None = None, limit: int = 8) -> News:
    """The newest `limit` entries of the acting user's feed and notifications (since `since`)."""
    actor = uow.require_actor()
    feed_stmt = records.scoped(records.resource("feeds"), actor)
    note_stmt = select(Notification).where(Notification.user_id == actor.user_id)
    if since is not None:
        feed_stmt = feed_stmt.where(FeedItem.created_at >= since)
        note_stmt = note_stmt.where(Notification.created_at >= since)
    feed_rows: list[FeedItem] = list(
        uow.session.scalars(feed_stmt.order_by(FeedItem.created_at.desc(), FeedItem.id.desc()).limit(MAX_READ))
    )
    note_rows = uow.session.scalars(
        note_stmt.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(MAX_READ)
    )
    feed = [_feed_item(f) for f in feed_rows]
    copies = [item for item, row in zip(feed, feed_rows, strict=True) if row.type is FeedType.NOTIFICATION]
    notes = [n for n in map(_notification, note_rows) if not _has_feed_copy(n, copies)]
    merged = sorted(feed + notes, key=lambda item: item.at, reverse=True)
    return News(merged[:limit], len(merged), sum(1 for f in feed if not f.is_read))
