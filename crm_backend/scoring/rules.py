"""Scoring rules and rule sets: which rules score an entity type, their weighted points, the grade.

An entity type is scored by its active default rule set, or — when it has none — by all its active
rules with weight 1. The rule score is the sum of points × weight of the rules that hold, clamped to
0..100; the grade is the highest threshold the score reaches (default hot ≥ 70, warm ≥ 40, else
cold). A stored rule that is malformed (written around the API) is skipped and reported, never
raised: scoring must not stop because of one bad rule.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from crm_backend import conditions, facts
from crm_backend.errors import ValidationFailed
from crm_backend.models.automation import EntityType, ScoringRule, ScoringRuleSet
from crm_backend.store import UnitOfWork

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: dict[str, int] = {"hot": 70, "warm": 40}
LOWEST_GRADE = "cold"
MAX_GRADES = 10


@dataclass(frozen=True)
class WeightedRule:
    rule_id: int
    name: str
    conditions: dict[str, Any]
    points: int
    weight: float


@dataclass(frozen=True)
class RuleBook:
    """Everything needed to score one entity type by rules, read once per batch."""

    entity_type: EntityType
    rules: tuple[WeightedRule, ...]
    thresholds: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    rule_set_id: int | None = None
    broken: tuple[dict[str, Any], ...] = ()  # rules skipped because they are malformed

    def score(self, record: Mapping[str, Any], now: dt.datetime) -> tuple[int, list[dict[str, Any]]]:
        """The clamped 0..100 rule score of one record's facts, with the rules that fired."""
        total = 0.0
        fired: list[dict[str, Any]] = []
        for rule in self.rules:
            try:
                if not conditions.evaluate(rule.conditions, record, now=now):
                    continue
                reasons = conditions.check(rule.conditions, record, now=now).reasons
            except Exception:
                log.exception("scoring rule %s could not be evaluated", rule.rule_id)
                continue
            points = rule.points * rule.weight
            total += points
            fired.append(
                {
                    "rule_id": rule.rule_id,
                    "name": rule.name,
                    "points": round(points, 2),
                    "weight": rule.weight,
                    "reasons": reasons,
                }
            )
        return clamp(total), fired

    def grade(self, score: int) -> str:
        for name, floor in sorted(self.thresholds.items(), key=lambda kv: -kv[1]):
            if score >= floor:
                return name
        return LOWEST_GRADE


def clamp(value: float) -> int:
    return max(0, min(100, round(value)))


def _usable(rule: ScoringRule) -> str | None:
    """Why a stored rule cannot be used, or None."""
    try:
        conditions.validate(rule.conditions)
    except ValidationFailed as exc:
        return "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
    return None


def rule_book(uow: UnitOfWork, entity_type: EntityType | str) -> RuleBook:
    """The rules that score `entity_type` now: its default rule set's, or all its active rules."""
    etype = EntityType(entity_type)
    session = uow.session
    rule_set = session.scalar(
        select(ScoringRuleSet)
        .where(
            ScoringRuleSet.entity_type == etype,
            ScoringRuleSet.is_default.is_(True),
            ScoringRuleSet.is_active.is_(True),
        )
        .order_by(ScoringRuleSet.id)
        .limit(1)
    )
    if rule_set is not None:
        weights = {m.rule_id: m.weight for m in rule_set.members}
        stmt = select(ScoringRule).where(ScoringRule.id.in_(list(weights)))
    else:
        weights = {}
        stmt = select(ScoringRule).where(ScoringRule.entity_type == etype)
    rules: list[WeightedRule] = []
    broken: list[dict[str, Any]] = []
    for rule in session.scalars(stmt.where(ScoringRule.is_active.is_(True)).order_by(ScoringRule.id)):
        problem = _usable(rule)
        if problem is not None:
            broken.append({"rule_id": rule.id, "name": rule.name, "error": problem})
            continue
        rules.append(
            WeightedRule(rule.id, rule.name, dict(rule.conditions or {}), rule.points, weights.get(rule.id, 1.0))
        )
    thresholds = dict(rule_set.thresholds) if rule_set is not None and rule_set.thresholds else DEFAULT_THRESHOLDS
    return RuleBook(etype, tuple(rules), dict(thresholds), rule_set.id if rule_set else None, tuple(broken))


# --- validation on save (resource hooks) ------------------------------------------------------------------
def validate_rule_conditions(uow: UnitOfWork, entity_type: EntityType | str, value: Any) -> None:
    """Reject a malformed condition, naming the bad part ("conditions.all[1].op: ...")."""
    conditions.validate(value, facts.fields(entity_type, uow))


def before_rule_create(uow: UnitOfWork, obj: ScoringRule, values: dict[str, Any]) -> None:
    validate_rule_conditions(uow, obj.entity_type, obj.conditions or {})


def before_rule_update(uow: UnitOfWork, obj: ScoringRule, changes: dict[str, tuple[Any, Any]]) -> None:
    if "conditions" in changes or "entity_type" in changes:
        entity_type = changes.get("entity_type", (None, obj.entity_type))[1]
        validate_rule_conditions(uow, entity_type, changes.get("conditions", (None, obj.conditions))[1] or {})
        if "entity_type" in changes and _in_sets_of_other_type(uow, obj.id, EntityType(entity_type)):
            raise ValidationFailed({"entity_type": "the rule belongs to rule sets of its current entity type"})


def _in_sets_of_other_type(uow: UnitOfWork, rule_id: int, entity_type: EntityType) -> bool:
    from crm_backend.models.automation import ScoringRuleSetMember

    stmt = (
        select(ScoringRuleSet.id)
        .join(ScoringRuleSetMember, ScoringRuleSetMember.rule_set_id == ScoringRuleSet.id)
        .where(ScoringRuleSetMember.rule_id == rule_id, ScoringRuleSet.entity_type != entity_type)
        .limit(1)
    )
    return uow.session.scalar(stmt) is not None


def validate_thresholds(value: Any) -> None:
    """Grades are names with whole-number floors within 0..100, e.g. {"hot": 70, "warm": 40}."""
    if not isinstance(value, dict):
        raise ValidationFailed({"thresholds": 'give grades and their lowest scores, e.g. {"hot": 70, "warm": 40}'})
    if len(value) > MAX_GRADES:
        raise ValidationFailed({"thresholds": f"at most {MAX_GRADES} grades"})
    for name, floor in value.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 32:
            raise ValidationFailed({"thresholds": f"grade names are text of 1-32 characters (got {name!r})"})
        if isinstance(floor, bool) or not isinstance(floor, int) or not 0 <= floor <= 100:
            raise ValidationFailed({f"thresholds.{name}": "must be a whole number from 0 to 100"})
    floors = list(value.values())
    if len(set(floors)) != len(floors):
        raise ValidationFailed({"thresholds": "two grades share the same lowest score"})


def _check_rule_set(
    uow: UnitOfWork, set_id: int | None, members: list[Any], entity_type: EntityType, is_default: bool
) -> None:
    rule_ids = [m.rule_id for m in members]
    if len(set(rule_ids)) != len(rule_ids):
        raise ValidationFailed({"rules": "a rule appears twice in the set"})
    found = {r.id: r for r in uow.session.scalars(select(ScoringRule).where(ScoringRule.id.in_(rule_ids)))}
    for i, rid in enumerate(rule_ids):
        rule = found.get(rid)
        if rule is None:
            raise ValidationFailed({f"rules[{i}].rule_id": f"no scoring rule with id {rid}"})
        if rule.entity_type != entity_type:
            raise ValidationFailed(
                {f"rules[{i}].rule_id": f"rule {rid} scores {rule.entity_type.value}s, not {entity_type.value}s"}
            )
    if is_default:
        other = uow.session.scalar(
            select(ScoringRuleSet.id).where(
                ScoringRuleSet.entity_type == entity_type,
                ScoringRuleSet.is_default.is_(True),
                ScoringRuleSet.id != (set_id or 0),
            )
        )
        if other is not None:
            raise ValidationFailed(
                {"is_default": f"rule set {other} is already the default for {entity_type.value}s; unset it first"}
            )


def before_rule_set_create(uow: UnitOfWork, obj: ScoringRuleSet, values: dict[str, Any]) -> None:
    validate_thresholds(obj.thresholds if obj.thresholds is not None else {})
    _check_rule_set(uow, None, list(obj.members), EntityType(obj.entity_type), bool(obj.is_default))


def before_rule_set_update(uow: UnitOfWork, obj: ScoringRuleSet, changes: dict[str, tuple[Any, Any]]) -> None:
    """Validate the set as it will be; keep existing member rows for rules that stay (re-inserting
    them would clash with the (set, rule) unique key before the old rows are deleted)."""
    entity_type = EntityType(changes.get("entity_type", (None, obj.entity_type))[1])
    is_default = bool(changes.get("is_default", (None, obj.is_default))[1])
    if "thresholds" in changes:
        validate_thresholds(changes["thresholds"][1] or {})
    members = list(changes.get("members", (None, obj.members))[1])
    _check_rule_set(uow, obj.id, members, entity_type, is_default)
    if "members" in changes:
        current = {m.rule_id: m for m in obj.members}
        merged = []
        for member in members:
            kept = current.get(member.rule_id)
            if kept is not None:
                kept.weight = member.weight
                merged.append(kept)
            else:
                merged.append(member)
        changes["members"] = (changes["members"][0], merged)
