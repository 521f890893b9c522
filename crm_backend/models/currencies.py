"""Currencies and their exchange rates to the one base currency."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import Base, IdMixin, TimestampMixin, UtcDateTime, VersionMixin, utcnow


class Currency(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "currencies"
    __table_args__ = (CheckConstraint("rate_to_base > 0", name="rate_positive"),)

    code: Mapped[str] = mapped_column(String(3), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    symbol: Mapped[str] = mapped_column(String(8))
    # How many units of the base currency one unit of this currency is worth.
    rate_to_base: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    is_base: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    rate_updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
