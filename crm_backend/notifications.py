"""Telling a CRM user something: a due reminder, a hot lead, a stalled deal, an escalation.

`notify()` is the one way in. In the caller's transaction it writes a feed item (the in-app channel,
always there) and queues a `Notification` for delivery to the user's preferred linked channel; the
scheduler delivers queued notifications through the registered `Deliverer`s and retries failures
with backoff. A `dedupe_key` makes it idempotent: the same event notifies once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm_backend.models.automation import EntityType
from crm_backend.models.feeds import FeedItem, FeedType
from crm_backend.models.notifications import Notification
from crm_backend.models.users import User
from crm_backend.store import UnitOfWork

MAX_TITLE = 300
MAX_BODY = 4000


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
    if uow.session.get(User, user_id) is None:
        raise ValueError(f"no user {user_id} to notify")
    if dedupe_key is not None:
        uow.session.flush()
        taken = uow.session.scalar(select(Notification.id).where(Notification.dedupe_key == dedupe_key))
        if taken is not None:
            return Queued(None, None)
    etype = EntityType(entity_type) if entity_type is not None else None
    feed = FeedItem(
        owner_id=user_id,
        type=FeedType.NOTIFICATION,
        title=title[:MAX_TITLE],
        data={"kind": kind, "body": body, **(data or {})},
        entity_type=etype,
        entity_id=entity_id,
        is_important=important,
    )
    note = Notification(
        user_id=user_id,
        kind=kind,
        title=title[:MAX_TITLE],
        body=body[:MAX_BODY] if body else None,
        data=data or {},
        entity_type=etype,
        entity_id=entity_id,
        dedupe_key=dedupe_key,
    )
    if dedupe_key is None:
        uow.session.add_all([feed, note])
        return Queued(note, feed)
    try:
        with uow.session.begin_nested():  # a concurrent twin loses here, not the caller's transaction
            uow.session.add_all([feed, note])
    except IntegrityError:
        return Queued(None, None)
    return Queued(note, feed)
