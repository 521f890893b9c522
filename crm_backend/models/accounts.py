"""Accounts: the companies and organisations the CRM sells to, with their hierarchy."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
from crm_backend.models.users import User


class AccountType(enum.StrEnum):
    CUSTOMER = "Customer"
    PROSPECT = "Prospect"
    PARTNER = "Partner"
    COMPETITOR = "Competitor"


class Account(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, SoftDeleteMixin, Base):
    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("health_score >= 0 AND health_score <= 100", name="health_score_range"),)

    name: Mapped[str] = mapped_column(String(200), index=True)
    type: Mapped[AccountType] = mapped_column(enum_column(AccountType), default=AccountType.PROSPECT)
    industry: Mapped[str | None] = mapped_column(String(100))
    annual_revenue: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    employees: Mapped[int | None] = mapped_column(Integer)
    website: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(40))
    country: Mapped[str | None] = mapped_column(String(2))
    state: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    health_score: Mapped[int | None] = mapped_column(Integer)
    churn_risk: Mapped[float | None] = mapped_column(Float)  # 0..1
    health_explanation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    health_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    segment: Mapped[str | None] = mapped_column(String(60))
    description: Mapped[str | None] = mapped_column(String(2000))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    owner: Mapped[User] = relationship(foreign_keys="Account.owner_id")
