"""The service desk: tickets that carry escalations from the assistant to people."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.activities import Priority
from crm_backend.models.base import (
    Base,
    IdMixin,
    OwnedMixin,
    SoftDeleteMixin,
    TimestampMixin,
    UtcDateTime,
    VersionMixin,
    enum_column,
)


class TicketStatus(enum.StrEnum):
    NEW = "New"
    OPEN = "Open"
    PENDING = "Pending"
    RESOLVED = "Resolved"
    CLOSED = "Closed"


class Ticket(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, SoftDeleteMixin, Base):
    """`owner_id` is whoever opened it; `assignee_id` the agent working it."""

    __tablename__ = "tickets"

    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(String(10000))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20), default="api")
    priority: Mapped[Priority] = mapped_column(enum_column(Priority), default=Priority.MEDIUM)
    status: Mapped[TicketStatus] = mapped_column(enum_column(TicketStatus), default=TicketStatus.NEW)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    sla_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    conversation_id: Mapped[str | None] = mapped_column(String(80), index=True)
    transcript: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sentiment_label: Mapped[str | None] = mapped_column(String(10))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # An escalation from the assistant: why, the sentiment of each user turn, the qualification known
    # at the time, when an agent first answered, the agent's note on handing back, and the user's rating.
    escalation_reason: Mapped[str | None] = mapped_column(String(40))
    sentiment_trend: Mapped[list[float]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    bant: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    first_agent_reply_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    handback_note: Mapped[str | None] = mapped_column(String(2000))
    csat: Mapped[int | None] = mapped_column(Integer)
    # Where agents discuss it outside the console: the Slack support channel's thread ("C123:1700000000.1").
    agent_thread: Mapped[str | None] = mapped_column(String(100), index=True)
