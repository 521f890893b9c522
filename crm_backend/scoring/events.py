"""Scores follow changes: a created or edited lead, deal, contact or account is re-scored in the
same transaction, and a changed scoring rule or rule set re-scores its whole entity type (in the same
transaction while it is small, by the scheduler when it is large: see `jobs`).

Changes the scorer made itself (origin "scoring") and changes that touch only score columns are
ignored, so scoring never feeds on its own writes.
"""

from __future__ import annotations

from collections import defaultdict

from crm_backend.events import Change
from crm_backend.models.automation import EntityType, ScoringRuleSet
from crm_backend.scoring import engine, jobs
from crm_backend.store import UnitOfWork

SCORE_COLUMNS = frozenset({"score", "health_score", "churn_risk", "health_explanation", "health_updated_at"})
RULE_TABLES = frozenset({"scoring_rules", "scoring_rule_sets", "scoring_rule_set_members"})


LINKS = (
    ("lead_id", EntityType.LEAD),
    ("deal_id", EntityType.DEAL),
    ("contact_id", EntityType.CONTACT),
    ("account_id", EntityType.ACCOUNT),
)
FACT_SOURCES = frozenset({"activities", "conversations"})  # related rows the facts count or average


def on_changes(uow: UnitOfWork, changes: list[Change]) -> None:
    records: dict[EntityType, set[int]] = defaultdict(set)
    rescore_types: set[EntityType] = set()
    for change in changes:
        if "scoring" in change.origin:
            continue
        if change.table in RULE_TABLES:
            rescore_types.update(_rule_entity_types(uow, change))
        elif change.table in FACT_SOURCES:
            for column, etype in LINKS:
                for value in (*change.fields.get(column, (None, None)), getattr(change.obj, column, None)):
                    if value is not None:
                        records[etype].add(int(value))
        elif (kind := change.entity_type) is not None and change.action != "delete":
            if change.action == "update" and not set(change.fields) - SCORE_COLUMNS:
                continue
            records[kind].add(int(change.entity_id))
    for etype in rescore_types:
        jobs.rescore_type(uow, etype)  # now when small; by the scheduler when large
        records.pop(etype, None)
    for etype, ids in records.items():
        engine.score_ids(uow, etype, sorted(ids))  # deleted records are skipped there


def _rule_entity_types(uow: UnitOfWork, change: Change) -> set[EntityType]:
    """The entity types a rule or rule set change may re-score (both, when it moved between types)."""
    found: set[EntityType] = set()
    if change.table == "scoring_rule_set_members":
        set_id = change.fields.get("rule_set_id", (None, None))[1] or getattr(change.obj, "rule_set_id", None)
        rule_set = uow.session.get(ScoringRuleSet, set_id) if set_id is not None else None
        if rule_set is not None:
            found.add(EntityType(rule_set.entity_type))
        return found
    before, after = change.fields.get("entity_type", (None, None))
    for value in (before, after, getattr(change.obj, "entity_type", None)):
        if value is not None:
            found.add(EntityType(value))
    return found
