"""Forecasts over small hand-computed worlds (SQLite and PostgreSQL through the `store` fixture)."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from statistics import NormalDist
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_backend.errors import ValidationFailed
from crm_backend.forecasting import service
from crm_backend.models import SalesForecast, TerritoryForecast
from crm_backend.models.deals import DealStage
from crm_backend.services import records
from tests.conftest import Demo
from tests.unit.engines.forecasting import world

Z80 = NormalDist().inv_cdf(0.9)
TODAY = date(2031, 4, 15)  # inside 2031-Q2, far from the demo deals' dates


def _forecast(demo: Demo, user: str, period: str = "2031-Q2", **options: Any) -> dict[str, Any]:
    with demo.store.unit_of_work(demo.actor(user), read_only=True) as uow:
        return service.forecast(uow, period, today=TODAY, **options)


def _money(value: float) -> str:
    return str(Decimal(repr(round(value, 2))).quantize(Decimal("0.01")))


def test_weighted_pipeline_in_two_currencies_with_its_interval(demo: Demo) -> None:
    world.currencies(demo, EUR="1.10")
    world.deal(demo, "alice", "1000", date(2031, 5, 10), stage=DealStage.PROPOSAL)  # 1000 × 0.50
    world.deal(demo, "alice", "2000", date(2031, 6, 30), stage=DealStage.NEGOTIATION, currency="EUR")  # 2200 × 0.75
    world.deal(demo, "alice", "9999", date(2031, 7, 1))  # next quarter
    world.deal(demo, "alice", "5000", date(2031, 5, 1), stage=DealStage.CLOSED_WON)  # closed: not pipeline
    result = _forecast(demo, "admin", method="weighted", owner_id=demo.actor("alice").user_id)
    figure = result["total"]["figures"]["weighted"]
    mean = 1000 * 0.5 + 2200 * 0.75
    half = Z80 * math.sqrt(1000**2 * 0.25 + 2200**2 * 0.75 * 0.25)
    assert figure["amount"] == "2150.00" == _money(mean)
    assert (figure["lower"], figure["upper"]) == (_money(mean - half), _money(mean + half))
    assert figure["deal_count"] == 2
    assert result["currency"] == "USD" and result["confidence"] == 80
    in_eur = _forecast(demo, "admin", method="weighted", owner_id=demo.actor("alice").user_id, currency="EUR")
    assert in_eur["total"]["figures"]["weighted"]["amount"] == _money(mean / 1.1)


def test_a_currency_without_a_rate_is_reported_not_counted(demo: Demo) -> None:
    world.currencies(demo)
    world.deal(demo, "alice", "1000", date(2031, 5, 10))
    world.deal(demo, "alice", "1000", date(2031, 5, 10), currency="GBP")
    result = _forecast(demo, "alice", method="weighted")
    assert result["total"]["figures"]["weighted"]["amount"] == "500.00"
    assert result["details"]["unconverted_currencies"] == ["GBP"]


def test_unknown_currency_or_bad_input_is_a_validation_error(demo: Demo) -> None:
    with pytest.raises(ValidationFailed) as err:
        _forecast(demo, "alice", currency="XYZ")
    assert "currency" in err.value.fields
    for bad, field in (
        ({"by": "region"}, "by"),
        ({"method": "magic"}, "method"),
        ({"territory_id": 999}, "territory_id"),
    ):
        with pytest.raises(ValidationFailed) as err:
            _forecast(demo, "admin", **bad)
        assert field in err.value.fields


def test_territory_figures_roll_up_their_descendants(demo: Demo) -> None:
    parent = world.territory(demo, "Europe")
    north = world.territory(demo, "Nordics", parent)
    south = world.territory(demo, "Iberia", parent)
    world.deal(demo, "alice", "1000", date(2031, 5, 1), territory_id=north)  # 500
    world.deal(demo, "bob", "2000", date(2031, 5, 2), stage=DealStage.QUALIFICATION, territory_id=south)  # 500
    world.deal(demo, "carlos", "400", date(2031, 5, 3), territory_id=parent)  # 200
    world.deal(demo, "carlos", "800", date(2031, 5, 4))  # no territory: 400
    result = _forecast(demo, "admin", method="weighted", by="territory")
    amounts = {g["label"]: g["figures"]["weighted"]["amount"] for g in result["groups"]}
    assert amounts == {"Europe": "1200.00", "Iberia": "500.00", "Nordics": "500.00", "No territory": "400.00"}
    assert {g["label"]: g.get("parent_id") for g in result["groups"]}["Nordics"] == parent
    assert result["total"]["figures"]["weighted"]["amount"] == "1600.00"  # each deal once
    only_parent = _forecast(demo, "admin", method="weighted", territory_id=parent)
    assert only_parent["total"]["figures"]["weighted"]["amount"] == "1200.00"


def test_a_rep_counts_only_their_deals_a_manager_their_team(demo: Demo) -> None:
    world.deal(demo, "alice", "1000", date(2031, 5, 1))
    world.deal(demo, "bob", "3000", date(2031, 5, 1))
    world.deal(demo, "carlos", "5000", date(2031, 5, 1))  # team West
    rep = _forecast(demo, "alice", method="weighted")
    manager = _forecast(demo, "maria", method="weighted", by="owner")
    admin = _forecast(demo, "admin", method="weighted")
    assert rep["total"]["figures"]["weighted"]["amount"] == "500.00"
    assert manager["total"]["figures"]["weighted"]["amount"] == "2000.00"
    assert {g["label"] for g in manager["groups"]} == {"Alice Rivera", "Bob Chen"}
    assert admin["total"]["figures"]["weighted"]["amount"] == "4500.00"
    snooping = _forecast(demo, "alice", method="weighted", owner_id=demo.actor("carlos").user_id)
    assert snooping["total"]["figures"]["weighted"]["amount"] == "0.00"


def test_closed_period_shows_actual_variance_and_the_manual_figure(demo: Demo) -> None:
    won = world.deal(demo, "bob", "3000", date(2031, 2, 1), created=date(2030, 12, 1))
    world.close(demo, won, date(2031, 2, 10))
    world.deal(demo, "bob", "1000", date(2031, 3, 20))  # still open, slipped: 500 weighted
    with demo.store.unit_of_work(demo.actor("bob")) as uow:
        records.create_record(
            uow,
            records.resource("sales-forecasts"),
            {"name": "Bob's call", "period_type": "Quarterly", "period_start": "2031-01-01",
             "period_end": "2031-03-31", "method": "Manual", "forecast_amount": "2800"},
        )  # fmt: skip
    result = _forecast(demo, "bob", "2031-Q1", method="weighted")
    total = result["total"]
    assert result["closed"] is True
    assert total["actual"] == "3000.00"
    assert total["figures"]["weighted"]["amount"] == "500.00"
    assert total["figures"]["weighted"]["variance"] == "2500.00"
    assert total["figures"]["weighted"]["variance_percent"] == "500.0"
    assert [m["amount"] for m in total["manual"]] == ["2800.00"]
    assert _forecast(demo, "alice", "2031-Q1", method="weighted")["total"]["manual"] == []  # not hers to see
    open_period = _forecast(demo, "bob", "2031-Q2", method="weighted")
    assert open_period["closed"] is False and open_period["total"]["actual"] is None


def test_historical_projects_the_closed_won_series(demo: Demo) -> None:
    # Two years of quarters for bob, 1000/2000/3000/4000 each year: seasonal naive is exact.
    for year in (2029, 2030):
        for quarter, amount in enumerate(("1000", "2000", "3000", "4000")):
            day = date(year, 3 * quarter + 2, 15)
            world.close(demo, world.deal(demo, "bob", amount, day, created=date(year, 1, 2)), day)
    result = _forecast(demo, "bob", "2031-Q2", method="historical")
    figure = result["total"]["figures"]["historical"]
    assert figure["details"]["model"] == "seasonal_naive"
    assert figure["amount"] == "2000.00"  # 2030-Q2, two quarters ahead of the last complete one (2031-Q1 is 0)


def test_ai_uses_stage_probability_without_a_model_and_the_slip_history(demo: Demo) -> None:
    for month in range(1, 6):  # five won deals that each closed 30 days after their expected date
        expected = date(2030, month, 1)
        won = world.deal(demo, "alice", "100", expected, created=date(2029, 12, 1))
        world.close(demo, won, date.fromordinal(expected.toordinal() + 30))
    world.deal(demo, "alice", "1000", date(2031, 4, 20))  # slips to 20 May: inside Q2
    world.deal(demo, "alice", "2000", date(2031, 6, 15))  # slips to 15 July: outside
    result = _forecast(demo, "alice", method="all")
    ai = result["total"]["figures"]["ai"]
    assert ai["amount"] == "500.00" and ai["deal_count"] == 1
    assert result["total"]["figures"]["weighted"]["amount"] == "1500.00"
    details = result["details"]["ai"]
    assert details["win_probability"].startswith("stage probability")
    # the five above and the demo's won Acme pilot (closed today, expected 20 days ago)
    assert details["median_slip_days"] == 30 and details["slip_samples"] == 6


def test_snapshot_stores_the_forecast_and_its_territories(demo: Demo) -> None:
    parent = world.territory(demo, "Americas", managers=["maria"])
    child = world.territory(demo, "Canada", parent)
    world.deal(demo, "alice", "1000", date(2031, 5, 1), territory_id=child)
    with demo.store.unit_of_work(demo.actor("maria")) as uow:
        stored = service.snapshot(uow, "2031-Q2", method="weighted", by="territory", today=TODAY)
    assert len(stored["sales_forecasts"]) == 1 and len(stored["territory_forecasts"]) == 2
    with demo.store.unit_of_work() as uow:
        total = uow.session.get(SalesForecast, stored["sales_forecasts"][0])
        assert total is not None
        assert (total.method.value, total.forecast_amount, total.period_start) == (
            "Weighted Pipeline", Decimal("500.00"), date(2031, 4, 1))  # fmt: skip
        assert total.lower_bound is not None and total.upper_bound is not None and total.confidence == 80
        rows = uow.session.scalars(select(TerritoryForecast).order_by(TerritoryForecast.territory_id)).all()
        assert [(r.territory_id, r.forecast_amount, r.parent_forecast_id, r.deal_count) for r in rows] == [
            (parent, Decimal("500.00"), total.id, 1),
            (child, Decimal("500.00"), total.id, 1),
        ]
    with pytest.raises(ValidationFailed), demo.store.unit_of_work(demo.actor("maria")) as uow:
        service.snapshot(uow, "2031-Q9", method="weighted", today=TODAY)
    with demo.store.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(SalesForecast)) == 1


def test_by_team_sums_each_teams_owners(demo: Demo) -> None:
    world.deal(demo, "alice", "1000", date(2031, 5, 1))
    world.deal(demo, "bob", "3000", date(2031, 5, 1))
    world.deal(demo, "carlos", "5000", date(2031, 5, 1))
    result = _forecast(demo, "admin", method="all", by="team")
    weighted = {g["label"]: g["figures"]["weighted"]["amount"] for g in result["groups"]}
    ai = {g["label"]: g["figures"]["ai"]["amount"] for g in result["groups"]}
    assert weighted == ai == {"East": "2000.00", "West": "2500.00"}
