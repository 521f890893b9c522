"""The forecasting operations over real HTTP: forecast, snapshot, backtest, and their errors."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from crm_backend.models import SalesForecast
from crm_backend.models.deals import DealStage
from tests.integration.conftest import Api
from tests.unit.engines.forecasting import world

YEAR = date.today().year + 2  # noqa: DTZ011 - a period that is open whatever day the tests run
PERIOD = f"{YEAR}-Q2"


def _deals(api: Api) -> None:
    world.deal(api.demo, "alice", "1000", date(YEAR, 5, 1))  # 500
    world.deal(api.demo, "bob", "4000", date(YEAR, 6, 1), stage=DealStage.NEGOTIATION)  # 3000
    world.deal(api.demo, "carlos", "8000", date(YEAR, 6, 1))  # West: 4000


async def test_forecast_by_owner_as_a_manager(api: Api) -> None:
    _deals(api)
    body = await api.ok("GET", f"/api/v1/forecasts?period={PERIOD}&method=weighted&by=owner", "maria")
    assert body["period"] == {"label": PERIOD, "type": "quarter", "start": f"{YEAR}-04-01", "end": f"{YEAR}-06-30"}
    assert body["total"]["figures"]["weighted"]["amount"] == "3500.00"
    by_owner = {g["label"]: g["figures"]["weighted"]["amount"] for g in body["groups"]}
    assert by_owner == {"Alice Rivera": "500.00", "Bob Chen": "3000.00"}
    rep = await api.ok("GET", f"/api/v1/forecasts?period={PERIOD}&method=weighted", "alice")
    assert rep["total"]["figures"]["weighted"]["amount"] == "500.00"


async def test_all_methods_come_with_intervals_and_details(api: Api) -> None:
    _deals(api)
    body = await api.ok("GET", f"/api/v1/forecasts?period={PERIOD}", "admin")
    assert body["methods"] == ["weighted", "historical", "ai"]
    for name in ("weighted", "ai"):
        figure = body["total"]["figures"][name]
        assert float(figure["lower"]) <= float(figure["amount"]) <= float(figure["upper"])
    assert "stage probability" in body["details"]["ai"]["win_probability"]


async def test_bad_forecast_requests_are_refused(api: Api) -> None:
    resp = await api.call("GET", "/api/v1/forecasts?period=2026-Q7", "alice")
    assert resp.status == 422 and "period" in (await resp.json())["error"]["fields"]
    resp = await api.call("GET", "/api/v1/forecasts?by=planet", "alice")
    assert resp.status == 422 and "by" in (await resp.json())["error"]["fields"]
    resp = await api.call("GET", "/api/v1/forecasts?owner_id=abc", "alice")
    assert resp.status == 400
    resp = await api.call("GET", "/api/v1/forecasts", None)
    assert resp.status == 401


async def test_snapshot_stores_records_the_collections_show(api: Api) -> None:
    _deals(api)
    body = await api.ok(
        "POST", "/api/v1/forecasts/snapshot", "maria", status=201, json={"period": PERIOD, "method": "weighted"}
    )
    assert len(body["sales_forecasts"]) == 1
    listed = await api.ok("GET", "/api/v1/sales-forecasts?method=Weighted Pipeline", "maria")
    assert [(i["forecast_amount"], i["lower_bound"] is not None) for i in listed["items"]] == [("3500.00", True)]
    resp = await api.call("POST", "/api/v1/forecasts/snapshot", "maria", json={"period": PERIOD, "colour": "red"})
    assert resp.status == 422
    with api.demo.store.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(SalesForecast)) == 1


async def test_backtest_reports_mape_per_method(api: Api) -> None:
    body = await api.ok("GET", "/api/v1/forecasts/backtest?periods=4&period_type=month", "admin")
    assert body["period_type"] == "month" and len(body["periods"]) == 4
    assert set(body["mape"]) == {"weighted", "ai", "seasonal_naive", "exponential_smoothing"}
    resp = await api.call("GET", "/api/v1/forecasts/backtest?periods=99", "admin")
    assert resp.status == 422 and "periods" in (await resp.json())["error"]["fields"]
