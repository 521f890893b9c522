"""The signal, health and segment operations over real HTTP, with their permissions."""

from __future__ import annotations

from sqlalchemy import select

from crm_backend.models.accounts import Account
from tests.integration.conftest import Api


def _account_id(api: Api, name: str) -> int:
    with api.demo.store.unit_of_work() as uow:
        return int(uow.session.scalars(select(Account.id).where(Account.name == name)).one())


async def test_rep_reads_own_account_health_but_not_another_teams(api: Api) -> None:
    acme, stark = _account_id(api, "Acme Corporation"), _account_id(api, "Stark Logistics")  # alice's, carlos's
    body = await api.ok("GET", f"/api/v1/accounts/{acme}/health", "alice")
    assert body["stored"] is False and body["health_score"] == 55
    assert {d["factor"] for d in body["drivers"]} == {
        "revenue_trend",
        "activity_recency",
        "open_tickets",
        "sentiment",
        "open_pipeline",
    }
    denied = await api.call("GET", f"/api/v1/accounts/{stark}/health", "alice")
    assert denied.status == 404
    assert (await api.call("GET", f"/api/v1/accounts/{acme}/health", None)).status == 401


async def test_only_managers_recompute_health_and_then_it_is_stored(api: Api) -> None:
    assert (await api.call("POST", "/api/v1/accounts/health/recompute", "alice")).status == 403
    assert await api.ok("POST", "/api/v1/accounts/health/recompute", "maria") == {"updated": 8}
    acme = _account_id(api, "Acme Corporation")
    body = await api.ok("GET", f"/api/v1/accounts/{acme}/health", "alice")
    assert body["stored"] is True and body["churn_risk"] == 0.378
    listed = await api.ok("GET", f"/api/v1/accounts/{acme}", "alice")
    assert listed["health_score"] == 55


async def test_sweep_is_for_managers(api: Api) -> None:
    assert (await api.call("POST", "/api/v1/sales-signals/sweep", "bob")).status == 403
    body = await api.ok("POST", "/api/v1/sales-signals/sweep", "admin")
    assert body == {"signals": 0, "accounts": 8}  # demo deals are fresh; every account gets its health
    assert await api.ok("POST", "/api/v1/sales-signals/sweep", "admin") == {"signals": 0, "accounts": 0}


async def test_segments_recompute_validates_k_and_lists_visible_sizes(api: Api) -> None:
    bad = await api.call("POST", "/api/v1/accounts/segments/recompute", "admin", json={"k": 1})
    assert bad.status == 422 and "k" in (await bad.json())["error"]["fields"]
    assert (await api.call("POST", "/api/v1/accounts/segments/recompute", "carlos", json={})).status == 403
    too_few = await api.ok("POST", "/api/v1/accounts/segments/recompute", "admin", json={"k": 3})
    assert too_few["segmented"] is False and "too few" in too_few["reason"]
    done = await api.ok("POST", "/api/v1/accounts/segments/recompute", "admin", json={"k": 2})
    assert done["segmented"] is True and sum(s["size"] for s in done["segments"]) == 8
    mine = await api.ok("GET", "/api/v1/accounts/segments", "alice")
    assert sum(s["size"] for s in mine["items"]) == 3  # Acme, Nimbus, Initech
    assert all(s["description"] and s["name"] for s in mine["items"])
    everyone = await api.ok("GET", "/api/v1/accounts/segments", "admin")
    assert sum(s["size"] for s in everyone["items"]) == 8
