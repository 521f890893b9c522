"""Marketing campaigns that leads come from."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal

from sqlalchemy import Date, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import (
    Base,
    IdMixin,
    OwnedMixin,
    SoftDeleteMixin,
    TimestampMixin,
    VersionMixin,
    enum_column,
)


class CampaignType(enum.StrEnum):
    EMAIL = "Email"
    SOCIAL = "Social"
    EVENT = "Event"
    WEBINAR = "Webinar"
    ADVERTISING = "Advertising"
    OTHER = "Other"


class CampaignStatus(enum.StrEnum):
    PLANNED = "Planned"
    ACTIVE = "Active"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"


class Campaign(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, SoftDeleteMixin, Base):
    __tablename__ = "campaigns"

    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[CampaignType] = mapped_column(enum_column(CampaignType), default=CampaignType.OTHER)
    status: Mapped[CampaignStatus] = mapped_column(enum_column(CampaignStatus), default=CampaignStatus.PLANNED)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    actual_cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    expected_revenue: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    description: Mapped[str | None] = mapped_column(String(2000))
