"""Outbound notifications to CRM users (due reminders, signals, escalations, macro messages) and the
leases that let exactly one process run the scheduler."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.automation import EntityType
from crm_backend.models.base import Base, IdMixin, TimestampMixin, UtcDateTime, VersionMixin, enum_column, utcnow


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its first or next attempt (`next_attempt_at`)
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry


class Notification(IdMixin, TimestampMixin, VersionMixin, Base):
    """One message for one user, delivered to their preferred linked channel (the in-app feed always).

    `dedupe_key` makes sending idempotent: the same reminder occurrence or signal is never queued
    twice, whatever restarts or retries happen.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # reminder, signal, escalation, macro, ...
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(String(4000))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    entity_type: Mapped[EntityType | None] = mapped_column(enum_column(EntityType, 16))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(20))  # where it went (in_app, slack, telegram, web)
    status: Mapped[DeliveryStatus] = mapped_column(enum_column(DeliveryStatus, 16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)


class SchedulerLease(Base):
    """A named lease held by one process until `expires_at`; renewed while it lives."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
