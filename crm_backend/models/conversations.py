"""Assistant conversations: who owns each one and on which channel it runs."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import Base, IdMixin, TimestampMixin, UtcDateTime, enum_column, utcnow


class HandoffState(enum.StrEnum):
    """Who answers a conversation: the bot, nobody yet (an agent is asked for), an agent; `closed` after
    the agent resolved it (the next message goes to the bot again)."""

    BOT = "bot"
    WAITING = "waiting"
    AGENT = "agent"
    CLOSED = "closed"


class Conversation(TimestampMixin, Base):
    """A dialogue with the assistant; its id is the Rasa sender id, unique across channels."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    # The CRM user it belongs to; None for an anonymous website visitor (a prospect).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # An anonymous visitor's server-issued session id (the website widget).
    visitor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    last_message_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # Who the conversation is about or with (a prospect's lead, a customer's contact and account).
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    # Rolling sentiment of the user's turns: -1 (negative) .. 1 (positive).
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sentiment_label: Mapped[str | None] = mapped_column(String(10))
    # The human handoff: its state (persisted, so a restart of any process keeps it), the ticket that
    # carries it, the agent who owns it, and where the user can be reached with an agent's reply.
    handoff_state: Mapped[HandoffState] = mapped_column(
        enum_column(HandoffState, 10), default=HandoffState.BOT, server_default=HandoffState.BOT.value
    )
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    # Escalation triggers: assistant fallbacks and clearly negative user turns in a row.
    fallback_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    negative_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AssistantChange(IdMixin, Base):
    """One write the assistant made for a user after they said yes: what "undo that" reverts.

    Its audit rows share `change_set`; `undone_at` is set once it has been reverted.
    """

    __tablename__ = "assistant_changes"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(20))
    change_set: Mapped[str] = mapped_column(String(32), unique=True)
    summary: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    undone_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
