"""Automation records: macros (conditions → ordered actions) and scoring rules and rule sets."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_backend.models.base import Base, IdMixin, OwnedMixin, TimestampMixin, UtcDateTime, VersionMixin, enum_column


class EntityType(enum.StrEnum):
    LEAD = "lead"
    DEAL = "deal"
    CONTACT = "contact"
    ACCOUNT = "account"


class Macro(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    __tablename__ = "macros"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    entity_type: Mapped[EntityType] = mapped_column(enum_column(EntityType, 16))
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    execution_count: Mapped[int] = mapped_column(Integer, default=0)
    last_executed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ScoringRule(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    __tablename__ = "scoring_rules"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    entity_type: Mapped[EntityType] = mapped_column(enum_column(EntityType, 16))
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    points: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class ScoringRuleSet(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    """The seeds' "multiple scoring rules": weighted rules with named grade thresholds."""

    __tablename__ = "scoring_rule_sets"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    entity_type: Mapped[EntityType] = mapped_column(enum_column(EntityType, 16))
    thresholds: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # e.g. {"hot": 70, "warm": 40}
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    members: Mapped[list[ScoringRuleSetMember]] = relationship(
        cascade="all, delete-orphan", order_by="ScoringRuleSetMember.id", lazy="selectin"
    )


class ScoringRuleSetMember(IdMixin, Base):
    __tablename__ = "scoring_rule_set_members"
    __table_args__ = (UniqueConstraint("rule_set_id", "rule_id", name="set_rule"),)

    rule_set_id: Mapped[int] = mapped_column(ForeignKey("scoring_rule_sets.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("scoring_rules.id", ondelete="CASCADE"), index=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
