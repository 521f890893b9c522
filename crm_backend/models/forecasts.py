"""Sales forecasts by period (and by territory), with actuals, variance and confidence."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import Base, IdMixin, OwnedMixin, TimestampMixin, VersionMixin, enum_column


class ForecastPeriod(enum.StrEnum):
    MONTHLY = "Monthly"
    QUARTERLY = "Quarterly"
    ANNUAL = "Annual"


class ForecastMethod(enum.StrEnum):
    WEIGHTED = "Weighted Pipeline"
    AI = "AI"
    HISTORICAL = "Historical"
    MANUAL = "Manual"


class ForecastColumns:
    period_type: Mapped[ForecastPeriod] = mapped_column(enum_column(ForecastPeriod))
    period_start: Mapped[date] = mapped_column(Date, index=True)
    period_end: Mapped[date] = mapped_column(Date)
    method: Mapped[ForecastMethod] = mapped_column(enum_column(ForecastMethod), default=ForecastMethod.MANUAL)
    forecast_amount: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    actual_amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    confidence: Mapped[int | None] = mapped_column(Integer)  # 0–100: the level of [lower, upper]
    lower_bound: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    upper_bound: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # method inputs, breakdown
    notes: Mapped[str | None] = mapped_column(String(2000))


class SalesForecast(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, ForecastColumns, Base):
    __tablename__ = "sales_forecasts"
    __table_args__ = (CheckConstraint("period_end >= period_start", name="period_order"),)

    name: Mapped[str] = mapped_column(String(200))


class TerritoryForecast(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, ForecastColumns, Base):
    """A forecast for one territory; `territory_id` (from OwnedMixin) is required here."""

    __tablename__ = "territory_forecasts"
    __table_args__ = (CheckConstraint("period_end >= period_start", name="period_order"),)

    account_count: Mapped[int | None] = mapped_column(Integer)
    deal_count: Mapped[int | None] = mapped_column(Integer)
    average_deal_size: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    parent_forecast_id: Mapped[int | None] = mapped_column(ForeignKey("sales_forecasts.id"))
