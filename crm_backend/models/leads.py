"""Leads: prospective customers from capture to qualification and conversion."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

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


class LeadSource(enum.StrEnum):
    WEBSITE = "Website"
    REFERRAL = "Referral"
    COLD_CALL = "Cold Call"
    SOCIAL_MEDIA = "Social Media"
    EMAIL_CAMPAIGN = "Email Campaign"
    TRADE_SHOW = "Trade Show"
    PARTNER = "Partner"
    CHAT = "Chat"
    OTHER = "Other"


class LeadStatus(enum.StrEnum):
    NEW = "New"
    CONTACTED = "Contacted"
    QUALIFIED = "Qualified"
    CONVERTED = "Converted"
    LOST = "Lost"


class Lead(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, SoftDeleteMixin, Base):
    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 100", name="score_range"),
        # Visibility + status filter and its count, answered from the index alone.
        Index("ix_leads_owner_status", "owner_id", "status", "deleted_at", "shared_with_team"),
        # "Newest leads in a status" pages without sorting the whole status.
        Index("ix_leads_status_created", "status", "created_at"),
    )

    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    company: Mapped[str | None] = mapped_column(String(200), index=True)
    title: Mapped[str | None] = mapped_column(String(150))
    industry: Mapped[str | None] = mapped_column(String(100))
    employees: Mapped[int | None] = mapped_column(Integer)
    country: Mapped[str | None] = mapped_column(String(2))
    source: Mapped[LeadSource] = mapped_column(enum_column(LeadSource), default=LeadSource.OTHER)
    status: Mapped[LeadStatus] = mapped_column(enum_column(LeadStatus), default=LeadStatus.NEW)
    score: Mapped[int] = mapped_column(Integer, default=0)
    # BANT qualification
    budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    has_authority: Mapped[bool | None] = mapped_column(Boolean)
    need: Mapped[str | None] = mapped_column(String(1000))
    timeline: Mapped[str | None] = mapped_column(String(100))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    dedup_key: Mapped[str | None] = mapped_column(String(300), index=True)
    # Normalised copies for indexed duplicate checks (see crm_backend.services.matching).
    email_key: Mapped[str | None] = mapped_column(String(254), index=True)
    phone_key: Mapped[str | None] = mapped_column(String(20), index=True)
    company_key: Mapped[str | None] = mapped_column(String(200), index=True)
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(String(2000))
    converted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    converted_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    converted_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    # The deal a conversion created points back here through deals.lead_id.
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
