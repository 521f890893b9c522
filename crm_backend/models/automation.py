"""Automation records: macros (conditions → ordered actions) and scoring rules and rule sets."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_backend.models.base import (
    Base,
    IdMixin,
    OwnedMixin,
    TimestampMixin,
    UtcDateTime,
    VersionMixin,
    enum_column,
    utcnow,
)


class EntityType(enum.StrEnum):
    LEAD = "lead"
    DEAL = "deal"
    CONTACT = "contact"
    ACCOUNT = "account"


class MacroTrigger(enum.StrEnum):
    MANUAL = "manual"  # run by hand, from the API or by the assistant
    ON_CREATE = "on_create"
    ON_UPDATE = "on_update"  # of any of `trigger_fields` (all fields when empty)
    ON_STAGE_CHANGE = "on_stage_change"  # deals only
    SCHEDULE = "schedule"  # `schedule` is an RFC 5545 RRULE; runs over every matching record


class Macro(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    __tablename__ = "macros"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    entity_type: Mapped[EntityType] = mapped_column(enum_column(EntityType, 16))
    trigger: Mapped[MacroTrigger] = mapped_column(enum_column(MacroTrigger, 20), default=MacroTrigger.MANUAL)
    trigger_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    schedule: Mapped[str | None] = mapped_column(String(500))
    next_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. round-robin cursors
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    execution_count: Mapped[int] = mapped_column(Integer, default=0)
    last_executed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_status: Mapped[str | None] = mapped_column(String(20))


class MacroRunStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # conditions did not hold
    DRY_RUN = "dry_run"


class MacroRun(IdMixin, Base):
    """The log of one macro run: what ran, what changed, what failed."""

    __tablename__ = "macro_runs"

    macro_id: Mapped[int] = mapped_column(ForeignKey("macros.id", ondelete="CASCADE"), index=True)
    entity_type: Mapped[EntityType] = mapped_column(enum_column(EntityType, 16))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    trigger: Mapped[MacroTrigger] = mapped_column(enum_column(MacroTrigger, 20))
    status: Mapped[MacroRunStatus] = mapped_column(enum_column(MacroRunStatus, 20))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20), default="api")
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # one entry per action
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(String(1000))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


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
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)  # the set that scores its entity type
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


class EntityScore(IdMixin, Base):
    """The current score of one lead, deal, contact or account, with its explanation.

    `explanation` = {"rules": [{"rule_id", "name", "points", "weight"}], "model": {...} | None,
    "blend": {...}}: a score never comes without the reasons for it.
    """

    __tablename__ = "entity_scores"
    __table_args__ = (
        UniqueConstraint("entity_type", "entity_id", name="entity"),
        CheckConstraint("score >= 0 AND score <= 100", name="score_range"),
    )

    entity_type: Mapped[EntityType] = mapped_column(enum_column(EntityType, 16))
    entity_id: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str | None] = mapped_column(String(32))
    rule_score: Mapped[int] = mapped_column(Integer, default=0)
    model_probability: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(64))
    rule_set_id: Mapped[int | None] = mapped_column(ForeignKey("scoring_rule_sets.id", ondelete="SET NULL"))
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    previous_score: Mapped[int | None] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RescoreRequest(Base):
    """"Re-score every record of this entity type": left by a rule change on a large table and done
    by the scheduler in batches, so the change itself commits at once."""

    __tablename__ = "rescore_requests"

    entity_type: Mapped[EntityType] = mapped_column(enum_column(EntityType, 16), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
