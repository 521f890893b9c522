"""The audit trail: every write, who made it, through which channel, and what changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import Base, IdMixin, UtcDateTime, utcnow


class AuditLog(IdMixin, Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"),)

    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(10))  # create, update, delete
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # field -> [before, after]
    # The rows one confirmed assistant write produced share this key (what undo reverts together).
    change_set: Mapped[str | None] = mapped_column(String(32), index=True)
    # For a write asked for by voice: what the recogniser heard (the request, then the spoken yes).
    transcript: Mapped[str | None] = mapped_column(Text)
