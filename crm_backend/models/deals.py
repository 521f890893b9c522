"""Deals (opportunities) and the pipeline stages they move through."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_backend.models.accounts import Account
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


class DealStage(enum.StrEnum):
    PROSPECTING = "Prospecting"
    QUALIFICATION = "Qualification"
    PROPOSAL = "Proposal"
    NEGOTIATION = "Negotiation"
    CLOSED_WON = "Closed Won"
    CLOSED_LOST = "Closed Lost"

    @property
    def is_open(self) -> bool:
        return self not in CLOSED_STAGES


CLOSED_STAGES = frozenset({DealStage.CLOSED_WON, DealStage.CLOSED_LOST})

# The probability a stage implies, unless a user overrides it.
STAGE_PROBABILITY: dict[DealStage, int] = {
    DealStage.PROSPECTING: 10,
    DealStage.QUALIFICATION: 25,
    DealStage.PROPOSAL: 50,
    DealStage.NEGOTIATION: 75,
    DealStage.CLOSED_WON: 100,
    DealStage.CLOSED_LOST: 0,
}


class DealType(enum.StrEnum):
    NEW_BUSINESS = "New Business"
    UPSELL = "Upsell"
    CROSS_SELL = "Cross-sell"
    RENEWAL = "Renewal"


class Deal(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, SoftDeleteMixin, Base):
    __tablename__ = "deals"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("probability >= 0 AND probability <= 100", name="probability_range"),
        Index("ix_deals_owner_stage", "owner_id", "stage"),
    )

    name: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    stage: Mapped[DealStage] = mapped_column(enum_column(DealStage), default=DealStage.PROSPECTING)
    type: Mapped[DealType] = mapped_column(enum_column(DealType), default=DealType.NEW_BUSINESS)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    probability: Mapped[int] = mapped_column(Integer, default=10)
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    stage_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # when it entered `stage`
    competitors: Mapped[list[str]] = mapped_column(JSON, default=list)
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(String(2000))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    account: Mapped[Account] = relationship()
    owner: Mapped[User] = relationship(foreign_keys="Deal.owner_id")
