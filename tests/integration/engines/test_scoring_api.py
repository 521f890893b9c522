"""Scoring over real HTTP: rules validated on save, scores with explanations, visibility, models."""

from __future__ import annotations

from tests.integration.conftest import Api

P = "/api/v1"
REFERRAL = {"field": "source", "op": "eq", "value": "Referral"}


async def test_malformed_rule_is_422_naming_the_bad_part_and_nothing_is_saved(api: Api) -> None:
    bad = {"all": [REFERRAL, {"field": "employees", "op": "equals", "value": 3}]}
    resp = await api.call(
        "POST",
        f"{P}/scoring-rules",
        "admin",
        json={"name": "Bad", "entity_type": "lead", "conditions": bad, "points": 5},
    )
    body = await resp.json()
    assert resp.status == 422, body
    assert "unknown operator 'equals'" in body["error"]["fields"]["conditions.all[1].op"]
    listed = await api.ok("GET", f"{P}/scoring-rules", "admin")
    assert listed["total"] == 0
    rule = await api.ok(
        "POST",
        f"{P}/scoring-rules",
        "admin",
        status=201,
        json={"name": "Good", "entity_type": "lead", "conditions": REFERRAL, "points": 5},
    )
    resp = await api.call("PATCH", f"{P}/scoring-rules/{rule['id']}", "admin", json={"conditions": {"field": "nope"}})
    body = await resp.json()
    assert resp.status == 422 and "unknown field 'nope'" in body["error"]["fields"]["conditions.field"], body
    assert (await api.ok("GET", f"{P}/scoring-rules/{rule['id']}", "admin"))["conditions"] == REFERRAL


async def test_a_new_lead_is_scored_with_its_explanation_and_only_its_viewers_see_it(api: Api) -> None:
    rule = await api.ok(
        "POST",
        f"{P}/scoring-rules",
        "admin",
        status=201,
        json={"name": "Referral", "entity_type": "lead", "conditions": REFERRAL, "points": 45},
    )
    lead = await api.ok("POST", f"{P}/leads", status=201, json={"last_name": "Doe", "source": "Referral"})
    assert lead["score"] == 45  # the reply shows the record as the engines left it
    score = await api.ok("GET", f"{P}/scores/lead/{lead['id']}")
    assert score["score"] == 45 and score["grade"] == "warm" and score["rule_score"] == 45
    assert score["explanation"]["rules"][0]["rule_id"] == rule["id"]
    assert score["explanation"]["rules"][0]["points"] == 45
    assert (await api.ok("GET", f"{P}/leads/{lead['id']}"))["score"] == 45
    resp = await api.call("GET", f"{P}/scores/lead/{lead['id']}", "carlos")
    assert resp.status == 404
    resp = await api.call("POST", f"{P}/scores/lead/{lead['id']}/recompute", "carlos")
    assert resp.status == 404
    again = await api.ok("POST", f"{P}/scores/lead/{lead['id']}/recompute")
    assert again["score"] == 45 and again["previous_score"] is None


async def test_rule_change_over_http_rescores_leads(api: Api) -> None:
    rule = await api.ok(
        "POST",
        f"{P}/scoring-rules",
        "admin",
        status=201,
        json={"name": "Referral", "entity_type": "lead", "conditions": REFERRAL, "points": 30},
    )
    lead = await api.ok("POST", f"{P}/leads", status=201, json={"last_name": "Doe", "source": "Referral"})
    await api.ok("PATCH", f"{P}/scoring-rules/{rule['id']}", "admin", json={"points": 80})
    score = await api.ok("GET", f"{P}/scores/lead/{lead['id']}")
    assert score["score"] == 80 and score["grade"] == "hot" and score["previous_score"] == 30


async def test_rule_set_with_a_rule_of_another_entity_type_is_422(api: Api) -> None:
    deal_rule = await api.ok(
        "POST",
        f"{P}/scoring-rules",
        "admin",
        status=201,
        json={
            "name": "Big",
            "entity_type": "deal",
            "conditions": {"field": "amount", "op": "gt", "value": 1},
            "points": 5,
        },
    )
    resp = await api.call(
        "POST",
        f"{P}/multiple-scoring-rules",
        "admin",
        json={"name": "S", "entity_type": "lead", "rules": [{"rule_id": deal_rule["id"], "weight": 1}]},
    )
    body = await resp.json()
    assert resp.status == 422 and "rules[0].rule_id" in body["error"]["fields"], body


async def test_scoring_models_lists_both_trainable_types_without_a_model(api: Api) -> None:
    body = await api.ok("GET", f"{P}/scoring-models")
    assert [i["entity_type"] for i in body["items"]] == ["lead", "deal"]
    assert all(i["version"] is None and i["blend"]["model_weight"] == 0 for i in body["items"])
    resp = await api.call("GET", f"{P}/scoring-models", None)
    assert resp.status == 401
