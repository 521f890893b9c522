"""The backtest replays closed periods with what was known at their start and scores each method."""

from __future__ import annotations

from datetime import date

import pytest

from crm_backend.errors import ValidationFailed
from crm_backend.forecasting import backtest
from crm_backend.models.deals import DealStage
from tests.conftest import Demo
from tests.unit.engines.forecasting import world

AMOUNTS = ("1000", "2000", "3000", "4000")  # every year, quarter by quarter: seasonal naive is exact


def _history(demo: Demo) -> None:
    """2029: won deals imported as history. 2030: each quarter, a Proposal deal (50 %) created three
    weeks before the quarter, expected mid-quarter, and won mid-quarter (a real stage change)."""
    for quarter, amount in enumerate(AMOUNTS):
        day = date(2029, 3 * quarter + 2, 15)
        world.deal(demo, "bob", amount, day, stage=DealStage.CLOSED_WON, created=date(2028, 12, 1), closed=day)
    for quarter, amount in enumerate(AMOUNTS):
        start = date(2030, 3 * quarter + 1, 1)
        mid = date(2030, 3 * quarter + 2, 15)
        deal_id = world.deal(demo, "bob", amount, mid, created=date.fromordinal(start.toordinal() - 21))
        world.close(demo, deal_id, mid)


def test_backtest_finds_the_clearly_better_method_and_by_how_much(demo: Demo) -> None:
    _history(demo)
    with demo.store.unit_of_work(demo.actor("bob"), read_only=True) as uow:
        result = backtest.run(uow, periods=4, period_type="quarter", today=date(2031, 1, 15))
    assert [p["period"] for p in result["periods"]] == ["2030-Q1", "2030-Q2", "2030-Q3", "2030-Q4"]
    assert [p["actual"] for p in result["periods"]] == ["1000.00", "2000.00", "3000.00", "4000.00"]
    # As of each quarter's start the deal was at Proposal (rebuilt from the audit trail), not won.
    assert [p["forecasts"]["weighted"] for p in result["periods"]] == ["500.00", "1000.00", "1500.00", "2000.00"]
    assert [p["forecasts"]["seasonal_naive"] for p in result["periods"]] == ["1000.00", "2000.00", "3000.00", "4000.00"]
    assert result["mape"]["weighted"] == 50.0
    assert result["mape"]["seasonal_naive"] == 0.0
    comparison = result["comparison"]
    assert comparison["best"] == "seasonal_naive"
    assert comparison["lead_points"] > 0
    assert "seasonal_naive has been the most accurate" in comparison["sentence"]


def test_backtest_sees_only_the_users_deals(demo: Demo) -> None:
    _history(demo)
    with demo.store.unit_of_work(demo.actor("carlos"), read_only=True) as uow:
        result = backtest.run(uow, periods=4, today=date(2031, 1, 15))
    assert {p["actual"] for p in result["periods"]} == {"0.00"}
    assert result["comparison"] is None and result["periods_scored"] == 0


@pytest.mark.parametrize(("options", "field"), [({"periods": 0}, "periods"), ({"period_type": "week"}, "period_type")])
def test_backtest_refuses_bad_options(demo: Demo, options: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as err, demo.store.unit_of_work(demo.actor("bob"), read_only=True) as uow:
        backtest.run(uow, **options)  # type: ignore[arg-type]
    assert field in err.value.fields


def test_comparison_states_the_lead_or_the_tie() -> None:
    lead = backtest.comparison({"weighted": 30.0, "ai": 20.0, "seasonal_naive": None})
    assert lead is not None
    assert (lead["best"], lead["runner_up"], lead["lead_points"], lead["lead_relative_percent"]) == (
        "ai",
        "weighted",
        10.0,
        33.3,
    )
    assert (
        lead["sentence"] == "ai has been the most accurate: MAPE 20.0% against 30.0% for weighted (10.0 points better)."
    )
    tie = backtest.comparison({"weighted": 13.52, "ai": 13.52})
    assert tie is not None and tie["sentence"] == "ai and weighted have been equally accurate: MAPE 13.5%."
    assert backtest.comparison({"weighted": None}) is None
