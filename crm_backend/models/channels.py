"""What the messaging channels need to remember: one-time link codes, platform events already
handled, buttons the gateway offered, rooms whose members share a team's records, and the turns
of every conversation (shown again after a reload; read by later analytics)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import Base, IdMixin, UtcDateTime, utcnow


class LinkCode(IdMixin, Base):
    """A one-time code that links a chat identity to `user_id`; only its digest is stored."""

    __tablename__ = "link_codes"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ChannelEvent(IdMixin, Base):
    """A platform event (Slack event id, Telegram update id) already taken: retries are dropped."""

    __tablename__ = "channel_events"
    __table_args__ = (UniqueConstraint("channel", "event_id", name="channel_event"),)

    channel: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)


class OfferedButton(IdMixin, Base):
    """A button the gateway showed in a conversation. A click names its opaque `key`; only the
    newest set offered in the conversation is honoured (an older "Yes" cannot confirm a later
    read-back)."""

    __tablename__ = "offered_buttons"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(24), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(String(1000))
    offered_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class TeamRoom(IdMixin, Base):
    """A shared channel an admin marked as one team's room: its members may all see that team's
    records, so replies there are posted for everyone instead of privately."""

    __tablename__ = "team_rooms"
    __table_args__ = (UniqueConstraint("channel", "workspace_id", "room_id", name="team_room"),)

    channel: Mapped[str] = mapped_column(String(20))
    workspace_id: Mapped[str] = mapped_column(String(100), default="")
    room_id: Mapped[str] = mapped_column(String(100))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ConversationTurn(IdMixin, Base):
    """One message in a conversation, said by the user or the assistant (or, later, an agent)."""

    __tablename__ = "conversation_turns"
    __table_args__ = (Index("ix_conversation_turns_conversation", "conversation_id", "id"),)

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    speaker: Mapped[str] = mapped_column(String(10))  # user, bot, agent
    text: Mapped[str] = mapped_column(Text, default="")
    # Buttons offered with a bot turn ({"title", "key"}), or what a user turn clicked.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # A user turn's sentiment: negative / neutral / positive, and P(positive) - P(negative) in [-1, 1].
    sentiment_label: Mapped[str | None] = mapped_column(String(10))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
