"""Users of the CRM, their teams, linked channel identities, and the API tokens they authenticate with."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_backend.models.base import Base, IdMixin, TimestampMixin, UtcDateTime, enum_column


class Role(enum.StrEnum):
    """What a user may see: a rep their own (and team-shared) records, a manager their team's and
    territories', an agent the service desk, an admin all."""

    REP = "rep"
    MANAGER = "manager"
    AGENT = "agent"
    ADMIN = "admin"


class Team(IdMixin, TimestampMixin, Base):
    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str | None] = mapped_column(String(500))


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[Role] = mapped_column(enum_column(Role, 16))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id"), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A voice message from this user is answered with a voice note too (besides the text).
    voice_replies: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    team: Mapped[Team | None] = relationship()


class ChannelIdentity(IdMixin, TimestampMixin, Base):
    """A user's identity on a messaging platform (Slack user + workspace, Telegram user)."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", "workspace_id", name="channel_external"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    workspace_id: Mapped[str] = mapped_column(String(100), default="")


class ApiToken(IdMixin, TimestampMixin, Base):
    """A bearer token; only its SHA-256 digest is stored, never the token itself."""

    __tablename__ = "api_tokens"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    user: Mapped[User] = relationship()
