"""Territories: geographic, industry or product areas with managers and a hierarchy."""

from __future__ import annotations

import enum

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_backend.models.base import Base, IdMixin, TimestampMixin, VersionMixin, enum_column
from crm_backend.models.users import User


class TerritoryType(enum.StrEnum):
    GEOGRAPHIC = "Geographic"
    INDUSTRY = "Industry"
    PRODUCT = "Product"


territory_managers = Table(
    "territory_managers",
    Base.metadata,
    Column("territory_id", ForeignKey("territories.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class Territory(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "territories"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    type: Mapped[TerritoryType] = mapped_column(enum_column(TerritoryType), default=TerritoryType.GEOGRAPHIC)
    country: Mapped[str | None] = mapped_column(String(2))
    state: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    postal_code_prefix: Mapped[str | None] = mapped_column(String(20))
    industry: Mapped[str | None] = mapped_column(String(100))
    product_line: Mapped[str | None] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id"), index=True)
    description: Mapped[str | None] = mapped_column(String(500))

    managers: Mapped[list[User]] = relationship(secondary=territory_managers)
