"""Social media integrations; their credentials are encrypted at rest and never returned."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import Base, IdMixin, OwnedMixin, TimestampMixin, UtcDateTime, VersionMixin, enum_column


class SocialPlatform(enum.StrEnum):
    LINKEDIN = "LinkedIn"
    TWITTER = "Twitter"
    FACEBOOK = "Facebook"
    INSTAGRAM = "Instagram"


class SocialIntegration(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    __tablename__ = "social_integrations"

    name: Mapped[str] = mapped_column(String(200))
    platform: Mapped[SocialPlatform] = mapped_column(enum_column(SocialPlatform))
    account_handle: Mapped[str | None] = mapped_column(String(200))
    api_key_encrypted: Mapped[str | None] = mapped_column(Text)
    api_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_frequency_minutes: Mapped[int] = mapped_column(Integer, default=60)
    last_sync_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
