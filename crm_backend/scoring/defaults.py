"""Starter scoring rules and rule sets for leads and deals, for the demo and new installations.

They follow the effects the generated history was built with (`history`), so the rules and the
model agree on direction; each condition is validated like one saved through the API.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_backend import conditions, facts
from crm_backend.models.automation import EntityType, ScoringRule, ScoringRuleSet, ScoringRuleSetMember
from crm_backend.store import UnitOfWork

LEAD_RULES: tuple[tuple[str, dict[str, Any], int, float], ...] = (
    ("Warm source", {"field": "source", "op": "in", "value": ["Referral", "Partner", "Trade Show"]}, 25, 1.0),
    ("Cold call", {"field": "source", "op": "eq", "value": "Cold Call"}, -10, 1.0),
    ("Target industry", {"field": "industry", "op": "in", "value": ["Software", "Finance", "Healthcare"]}, 15, 1.0),
    ("Mid-size or larger", {"field": "employees", "op": "gte", "value": 200}, 10, 1.0),
    ("BANT mostly known", {"field": "bant_known", "op": "gte", "value": 3}, 20, 1.5),
    ("Engaged", {"field": "activity_count", "op": "gte", "value": 3}, 15, 1.0),
    ("Recently active", {"field": "last_activity_at", "op": "days_since", "value": {"lt": 14}}, 10, 1.0),
    ("Positive conversations", {"field": "conversation_sentiment", "op": "gt", "value": 0.3}, 10, 1.0),
    ("Gone quiet", {"field": "last_activity_at", "op": "days_since", "value": {"gt": 60}}, -15, 1.0),
    (
        # A prospect who qualified themselves in the website chat: budget stated and they decide.
        "Buyer qualified in chat",
        {
            "all": [
                {"field": "source", "op": "in", "value": ["Website", "Chat"]},
                {"field": "has_authority", "op": "eq", "value": True},
                {"field": "budget", "op": "gte", "value": 10000},
            ]
        },
        20,
        1.0,
    ),
)
DEAL_RULES: tuple[tuple[str, dict[str, Any], int, float], ...] = (
    ("Existing customer business", {"field": "type", "op": "in", "value": ["Renewal", "Upsell"]}, 30, 1.0),
    ("Late stage", {"field": "stage", "op": "in", "value": ["Proposal", "Negotiation"]}, 25, 1.0),
    ("Active deal", {"field": "activity_count", "op": "gte", "value": 4}, 20, 1.0),
    ("Contested", {"field": "competitors", "op": "exists", "value": True}, -10, 1.0),
    ("Target industry", {"field": "account.industry", "op": "in", "value": ["Software", "Finance"]}, 15, 1.0),
    ("Stalled", {"field": "stage_changed_at", "op": "days_since", "value": {"gt": 45}}, -15, 1.0),
)
DEFAULTS = {EntityType.LEAD: LEAD_RULES, EntityType.DEAL: DEAL_RULES}


def install_default_rules(uow: UnitOfWork, owner_id: int) -> dict[str, int]:
    """Create the starter rules and a default rule set per entity type that has no default yet."""
    created: dict[str, int] = {}
    for etype, specs in DEFAULTS.items():
        exists = uow.session.scalar(
            select(ScoringRuleSet.id).where(ScoringRuleSet.entity_type == etype, ScoringRuleSet.is_default.is_(True))
        )
        if exists is not None:
            continue
        names = facts.fields(etype, uow)
        rule_set = ScoringRuleSet(
            name=f"Default {etype.value} scoring",
            entity_type=etype,
            thresholds={"hot": 70, "warm": 40},
            is_default=True,
            owner_id=owner_id,
        )
        for name, condition, points, weight in specs:
            conditions.validate(condition, names)
            rule = ScoringRule(name=name, entity_type=etype, conditions=condition, points=points, owner_id=owner_id)
            uow.session.add(rule)
            uow.session.flush()
            rule_set.members.append(ScoringRuleSetMember(rule_id=rule.id, weight=weight))
        uow.session.add(rule_set)
        created[etype.value] = len(specs)
    uow.session.flush()
    return created
