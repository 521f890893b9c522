"""Scoring with rules and rule sets: points, weights, clamping, grades, explanations, bad rules."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from crm_backend.errors import ValidationFailed
from crm_backend.models.automation import EntityType, ScoringRule
from crm_backend.models.leads import Lead
from crm_backend.scoring import engine, jobs
from tests.conftest import Demo
from tests.unit.engines.scoring.conftest import create, score_of
from tests.unit.engines.scoring.conftest import update as patch

REFERRAL = {"field": "source", "op": "eq", "value": "Referral"}
BIG = {"field": "employees", "op": "gte", "value": 500}


def lead(demo: Demo, **values: object) -> int:
    return create(demo, "leads", {"last_name": "Doe", "company": "Initech", **values}, user="alice")


def rule(demo: Demo, name: str, conditions: dict[str, object], points: int, entity_type: str = "lead") -> int:
    return create(
        demo, "scoring-rules", {"name": name, "entity_type": entity_type, "conditions": conditions, "points": points}
    )


def lead_score_column(demo: Demo, rid: int) -> int:
    with demo.store.unit_of_work(None, "system", read_only=True) as uow:
        return int(uow.session.scalar(select(Lead.score).where(Lead.id == rid)) or 0)


def test_all_active_rules_score_with_weight_one_and_explain_what_fired(demo: Demo) -> None:
    r1 = rule(demo, "Referral", REFERRAL, 30)
    rule(demo, "Big company", BIG, 25)
    rid = lead(demo, source="Referral", employees=100)
    row = score_of(demo.store, "lead", rid)
    assert row is not None and row.score == 30 and row.rule_score == 30 and row.grade == "cold"
    fired = row.explanation["rules"]
    assert [(f["rule_id"], f["name"], f["points"], f["weight"]) for f in fired] == [(r1, "Referral", 30, 1.0)]
    assert fired[0]["reasons"] and "source eq 'Referral': yes" in fired[0]["reasons"][0]
    assert row.explanation["model"] is None and row.explanation["blend"] == {"rule_weight": 1.0, "model_weight": 0.0}
    assert lead_score_column(demo, rid) == 30


def test_default_rule_set_weights_points_uses_its_thresholds_and_ignores_other_rules(demo: Demo) -> None:
    r1 = rule(demo, "Referral", REFERRAL, 30)
    r2 = rule(demo, "Big company", BIG, 20)
    rule(demo, "Not in the set", {}, 50)
    create(
        demo,
        "multiple-scoring-rules",
        {
            "name": "Enterprise",
            "entity_type": "lead",
            "thresholds": {"A": 80, "B": 50},
            "is_default": True,
            "rules": [{"rule_id": r1, "weight": 2}, {"rule_id": r2, "weight": 1.5}],
        },
    )
    rid = lead(demo, source="Referral", employees=900)
    row = score_of(demo.store, "lead", rid)
    assert row is not None
    assert row.score == 90  # 30 × 2 + 20 × 1.5
    assert row.grade == "A"
    assert {f["rule_id"]: f["points"] for f in row.explanation["rules"]} == {r1: 60, r2: 30}
    other = lead(demo, source="Website", employees=900)
    row = score_of(demo.store, "lead", other)
    assert row is not None and row.score == 30 and row.grade == "cold"  # below every threshold


def test_score_is_clamped_to_0_and_100(demo: Demo) -> None:
    rule(demo, "Huge", REFERRAL, 100)
    rule(demo, "Also huge", BIG, 100)
    rule(demo, "Penalty", {"field": "source", "op": "eq", "value": "Cold Call"}, -100)
    high = lead(demo, source="Referral", employees=1000)
    low = lead(demo, source="Cold Call")
    assert score_of(demo.store, "lead", high).score == 100  # type: ignore[union-attr]
    assert score_of(demo.store, "lead", low).score == 0  # type: ignore[union-attr]


def test_malformed_rule_is_rejected_on_save_naming_the_bad_part(demo: Demo) -> None:
    bad = {"all": [REFERRAL, {"field": "employees", "op": "equals", "value": 3}]}
    with pytest.raises(ValidationFailed) as info:
        rule(demo, "Bad", bad, 10)
    assert "conditions.all[1].op" in info.value.fields
    with pytest.raises(ValidationFailed) as info:
        rule(demo, "Unknown field", {"field": "emploees", "op": "gt", "value": 3}, 10)
    assert "did you mean 'employees'" in info.value.fields["conditions.field"]
    with demo.store.unit_of_work(None, "system", read_only=True) as uow:
        assert uow.session.scalar(select(ScoringRule.id)) is None


def test_a_broken_stored_rule_is_skipped_and_reported_not_raised(demo: Demo) -> None:
    good = rule(demo, "Referral", REFERRAL, 30)
    broken = rule(demo, "Soon broken", BIG, 10)
    with demo.store.engine.begin() as conn:  # written around the API, as an old version might have
        conn.execute(update(ScoringRule.__table__).where(ScoringRule.id == broken).values(conditions={"op": "??"}))
    rid = lead(demo, source="Referral")
    row = score_of(demo.store, "lead", rid)
    assert row is not None and row.score == 30
    assert [f["rule_id"] for f in row.explanation["rules"]] == [good]
    assert row.explanation["skipped_rules"][0]["rule_id"] == broken


def test_rule_set_validation_names_the_bad_part(demo: Demo) -> None:
    deal_rule = rule(demo, "Deal rule", {"field": "amount", "op": "gt", "value": 5}, 10, entity_type="deal")
    base = {"name": "S", "entity_type": "lead", "thresholds": {"hot": 70}}
    with pytest.raises(ValidationFailed) as info:
        create(demo, "multiple-scoring-rules", {**base, "rules": [{"rule_id": deal_rule, "weight": 1}]})
    assert "deals, not leads" in info.value.fields["rules[0].rule_id"]
    with pytest.raises(ValidationFailed) as info:
        create(demo, "multiple-scoring-rules", {**base, "rules": [{"rule_id": 9999, "weight": 1}]})
    assert "rules[0].rule_id" in info.value.fields
    with pytest.raises(ValidationFailed) as info:
        create(demo, "multiple-scoring-rules", {**base, "thresholds": {"hot": 170}})
    assert "thresholds.hot" in info.value.fields
    create(demo, "multiple-scoring-rules", {**base, "is_default": True})
    with pytest.raises(ValidationFailed) as info:
        create(demo, "multiple-scoring-rules", {**base, "name": "Second", "is_default": True})
    assert "already the default" in info.value.fields["is_default"]


def test_changing_a_rule_rescores_its_entity_type(demo: Demo) -> None:
    rid = rule(demo, "Referral", REFERRAL, 30)
    leads = [lead(demo, source="Referral") for _ in range(3)]
    assert {score_of(demo.store, "lead", i).score for i in leads} == {30}  # type: ignore[union-attr]
    patch(demo, "scoring-rules", rid, {"points": 45})
    rows = [score_of(demo.store, "lead", i) for i in leads]
    assert {r.score for r in rows} == {45}  # type: ignore[union-attr]
    assert {r.previous_score for r in rows} == {30}  # type: ignore[union-attr]
    assert {lead_score_column(demo, i) for i in leads} == {45}


def test_a_rule_change_on_a_large_table_is_left_to_the_scheduler(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "INLINE_LIMIT", 2)  # "large" = more than two leads, here
    rid = rule(demo, "Referral", REFERRAL, 30)
    leads = [lead(demo, source="Referral") for _ in range(3)]
    patch(demo, "scoring-rules", rid, {"points": 45})  # commits at once, scores unchanged yet
    assert {score_of(demo.store, "lead", i).score for i in leads} == {30}  # type: ignore[union-attr]
    with demo.store.unit_of_work(None, "system", read_only=True) as uow:
        assert [r.entity_type for r in jobs.pending(uow)] == [EntityType.LEAD]
    assert jobs.run(demo.store, dt.datetime.now(dt.UTC)) == 3  # the scheduler's job
    assert {score_of(demo.store, "lead", i).score for i in leads} == {45}  # type: ignore[union-attr]
    with demo.store.unit_of_work(None, "system", read_only=True) as uow:
        assert jobs.pending(uow) == []
    assert jobs.run(demo.store, dt.datetime.now(dt.UTC)) == 0


def test_changing_rule_set_members_rescores_and_keeps_member_rows(demo: Demo) -> None:
    r1 = rule(demo, "Referral", REFERRAL, 30)
    r2 = rule(demo, "Big", BIG, 20)
    set_id = create(
        demo,
        "multiple-scoring-rules",
        {"name": "S", "entity_type": "lead", "is_default": True, "rules": [{"rule_id": r1, "weight": 1}]},
    )
    rid = lead(demo, source="Referral", employees=800)
    assert score_of(demo.store, "lead", rid).score == 30  # type: ignore[union-attr]
    patch(
        demo, "multiple-scoring-rules", set_id, {"rules": [{"rule_id": r1, "weight": 2}, {"rule_id": r2, "weight": 1}]}
    )
    assert score_of(demo.store, "lead", rid).score == 80  # type: ignore[union-attr]


def test_updating_a_lead_rescores_it_and_keeps_its_version(demo: Demo) -> None:
    rule(demo, "Referral", REFERRAL, 30)
    rid = lead(demo, source="Website")
    assert score_of(demo.store, "lead", rid).score == 0  # type: ignore[union-attr]
    patch(demo, "leads", rid, {"source": "Referral"}, user="alice")
    row = score_of(demo.store, "lead", rid)
    assert row is not None and row.score == 30 and row.previous_score == 0
    with demo.store.unit_of_work(None, "system", read_only=True) as uow:
        assert uow.session.scalar(select(Lead.version).where(Lead.id == rid)) == 2  # the edit, not the scorer
    assert lead_score_column(demo, rid) == 30


def test_an_activity_on_a_lead_rescores_it(demo: Demo) -> None:
    rule(demo, "Engaged", {"field": "activity_count", "op": "gte", "value": 1}, 15)
    rid = lead(demo)
    assert score_of(demo.store, "lead", rid).score == 0  # type: ignore[union-attr]
    create(demo, "activities", {"type": "Call", "subject": "Intro", "lead_id": rid}, user="alice")
    assert score_of(demo.store, "lead", rid).score == 15  # type: ignore[union-attr]


def test_deals_contacts_and_accounts_are_scored_by_their_rules(demo: Demo) -> None:
    rule(demo, "Big deal", {"field": "amount", "op": "gte", "value": 100000}, 40, entity_type="deal")
    rule(demo, "Software account", {"field": "industry", "op": "eq", "value": "Software"}, 25, entity_type="account")
    with demo.store.unit_of_work(None, "system", read_only=True) as uow:
        deal_ids = engine.all_ids(uow, EntityType.DEAL)
    scored = {i: score_of(demo.store, "deal", i) for i in deal_ids}
    assert all(r is not None for r in scored.values())
    assert {r.score for r in scored.values() if r is not None} == {0, 40}
    contact = create(demo, "contacts", {"first_name": "Ann", "last_name": "Lee"}, user="alice")
    assert score_of(demo.store, "contact", contact) is None  # no contact rules, no model: not scored
    rule(demo, "Named", {"field": "last_name", "op": "exists"}, 10, entity_type="contact")
    assert score_of(demo.store, "contact", contact).score == 10  # type: ignore[union-attr]


def test_without_rules_or_model_imported_scores_stay_and_last_rule_removal_clears_scores(demo: Demo) -> None:
    rid = lead(demo, source="Referral", score=55)
    assert score_of(demo.store, "lead", rid) is None and lead_score_column(demo, rid) == 55
    only = rule(demo, "Referral", REFERRAL, 30)
    assert score_of(demo.store, "lead", rid).score == 30 and lead_score_column(demo, rid) == 30  # type: ignore[union-attr]
    with demo.store.unit_of_work(demo.actor("admin")) as uow:
        from crm_backend.services import records

        records.delete_record(uow, records.resource("scoring-rules"), only, None)
    assert score_of(demo.store, "lead", rid) is None
