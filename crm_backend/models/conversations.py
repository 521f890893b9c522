"""Assistant conversations: who owns each one and on which channel it runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import Base, TimestampMixin, UtcDateTime, utcnow


class Conversation(TimestampMixin, Base):
    """A dialogue with the assistant; its id is the Rasa sender id, unique across channels."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    last_message_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
