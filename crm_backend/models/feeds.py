"""Feeds (activity streams for each user) and sales signals (insights about records)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.automation import EntityType
from crm_backend.models.base import Base, IdMixin, OwnedMixin, TimestampMixin, UtcDateTime, VersionMixin, enum_column


class FeedType(enum.StrEnum):
    ACTIVITY = "Activity"
    UPDATE = "Update"
    NOTIFICATION = "Notification"


class FeedItem(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    """One entry in a user's feed; `owner_id` is the user it is for."""

    __tablename__ = "feed_items"

    type: Mapped[FeedType] = mapped_column(enum_column(FeedType))
    title: Mapped[str] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    entity_type: Mapped[EntityType | None] = mapped_column(enum_column(EntityType, 16))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)
    is_important: Mapped[bool] = mapped_column(Boolean, default=False)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SignalCategory(enum.StrEnum):
    POSITIVE = "Positive"
    NEGATIVE = "Negative"
    NEUTRAL = "Neutral"


class SalesSignal(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    __tablename__ = "sales_signals"

    entity_type: Mapped[EntityType] = mapped_column(enum_column(EntityType, 16))
    entity_id: Mapped[int] = mapped_column(Integer, index=True)
    category: Mapped[SignalCategory] = mapped_column(enum_column(SignalCategory))
    signal_type: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    confidence: Mapped[float] = mapped_column(Float, default=0.5)
    processed: Mapped[bool] = mapped_column(Boolean, default=False)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The same fact is signalled once: e.g. "deal_stalled:deal:5:Proposal".
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
