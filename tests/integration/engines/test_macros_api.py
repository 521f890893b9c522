"""The macro operations over real HTTP: save (validated), run, dry run, failed run, permissions, run log."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Api

PREFIX = "/api/v1"


async def deal_named(api: Api, name: str, username: str = "alice") -> dict[str, Any]:
    page = await api.ok("GET", f"{PREFIX}/deals?limit=100", username)
    return next(d for d in page["items"] if d["name"] == name)


async def create_macro(api: Api, username: str = "alice", **values: Any) -> dict[str, Any]:
    body = {"name": "Push to proposal", "entity_type": "deal", **values}
    created: dict[str, Any] = await api.ok("POST", f"{PREFIX}/macros", username, status=201, json=body)
    return created


ACTIONS = [
    {"type": "set_field", "field": "stage", "value": "Proposal"},
    {"type": "create_activity", "subject": "Send proposal for {name}", "due_in_days": 1},
]


async def test_saving_a_bad_macro_is_a_422_naming_the_bad_action(api: Api) -> None:
    resp = await api.call(
        "POST",
        f"{PREFIX}/macros",
        json={
            "name": "bad",
            "entity_type": "deal",
            "actions": [*ACTIONS, {"type": "set_field", "field": "probability", "value": 150}],
        },
    )
    body = await resp.json()
    assert resp.status == 422, body
    assert "actions[2].value" in body["error"]["fields"]
    page = await api.ok("GET", f"{PREFIX}/macros")
    assert page["total"] == 0


async def test_dry_run_then_real_run_then_run_log(api: Api) -> None:
    deal = await deal_named(api, "Acme - Fleet telematics")
    macro = await create_macro(api, actions=ACTIONS)
    dry = await api.ok("POST", f"{PREFIX}/macros/{macro['id']}/run?dry_run=true", json={"entity_id": deal["id"]})
    assert dry["status"] == "dry_run" and dry["dry_run"] is True
    assert {"record": f"deal:{deal['id']}", "field": "stage", "before": "Negotiation", "after": "Proposal"} in dry[
        "changes"
    ]
    unchanged = await api.ok("GET", f"{PREFIX}/deals/{deal['id']}")
    assert unchanged["stage"] == "Negotiation" and unchanged["version"] == deal["version"]
    assert (await api.ok("GET", f"{PREFIX}/activities"))["total"] == 0

    real = await api.ok("POST", f"{PREFIX}/macros/{macro['id']}/run", json={"entity_id": deal["id"]})
    assert real["status"] == "succeeded", real
    changed = await api.ok("GET", f"{PREFIX}/deals/{deal['id']}")
    assert changed["stage"] == "Proposal"
    activities = await api.ok("GET", f"{PREFIX}/activities?deal_id={deal['id']}")
    assert [a["subject"] for a in activities["items"]] == ["Send proposal for Acme - Fleet telematics"]

    log = await api.ok("GET", f"{PREFIX}/macros/{macro['id']}/runs")
    assert [r["status"] for r in log["items"]] == ["succeeded", "dry_run"] and log["total"] == 2
    assert log["items"][0]["id"] == real["run_id"]
    page = await api.ok("GET", f"{PREFIX}/macros/{macro['id']}/runs?limit=1&offset=1")
    assert [r["status"] for r in page["items"]] == ["dry_run"]
    saved = await api.ok("GET", f"{PREFIX}/macros/{macro['id']}")
    assert (saved["execution_count"], saved["last_status"]) == (1, "succeeded")


async def test_failed_run_leaves_nothing_behind(api: Api) -> None:
    deal = await deal_named(api, "Acme - Fleet telematics")
    macro = await create_macro(api, actions=[*ACTIONS, {"type": "assign_owner", "strategy": "territory"}])
    result = await api.ok("POST", f"{PREFIX}/macros/{macro['id']}/run", json={"entity_id": deal["id"]})
    assert result["status"] == "failed" and result["failed_step"] == 2
    assert "no territory" in result["error"]
    after = await api.ok("GET", f"{PREFIX}/deals/{deal['id']}")
    assert after["stage"] == "Negotiation" and after["version"] == deal["version"]
    assert (await api.ok("GET", f"{PREFIX}/activities"))["total"] == 0
    log = await api.ok("GET", f"{PREFIX}/macros/{macro['id']}/runs")
    assert [r["status"] for r in log["items"]] == ["failed"]


async def test_rep_cannot_run_a_macro_on_a_record_they_cannot_see(api: Api) -> None:
    bobs = await deal_named(api, "Globex - Data warehouse", "bob")
    macro = await create_macro(api, actions=ACTIONS)
    resp = await api.call("POST", f"{PREFIX}/macros/{macro['id']}/run", json={"entity_id": bobs["id"]})
    assert resp.status == 404, await resp.json()
    assert (await api.ok("GET", f"{PREFIX}/deals/{bobs['id']}", "bob"))["stage"] == "Prospecting"
    # nor run (or read the log of) a macro they cannot see
    resp = await api.call("POST", f"{PREFIX}/macros/{macro['id']}/run", "carlos", json={"entity_id": bobs["id"]})
    assert resp.status == 404
    resp = await api.call("GET", f"{PREFIX}/macros/{macro['id']}/runs", "carlos")
    assert resp.status == 404
    assert (await api.ok("GET", f"{PREFIX}/macros/{macro['id']}/runs"))["total"] == 0


async def test_run_needs_an_entity_id(api: Api) -> None:
    macro = await create_macro(api, actions=ACTIONS)
    resp = await api.call("POST", f"{PREFIX}/macros/{macro['id']}/run", json={"record": 1})
    body = await resp.json()
    assert resp.status == 422 and "entity_id" in body["error"]["fields"]
