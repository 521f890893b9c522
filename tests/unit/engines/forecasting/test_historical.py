"""The two time-series methods on hand-computed series, and the choice between them."""

from __future__ import annotations

import pytest

from crm_backend.forecasting import historical
from crm_backend.forecasting.historical import exponential_smoothing, project, seasonal_naive


def test_seasonal_naive_repeats_the_same_period_a_year_earlier() -> None:
    series = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]  # two years of quarters
    assert seasonal_naive(series, 4, 1) == 5.0  # next Q1 = last Q1
    assert seasonal_naive(series, 4, 2) == 6.0
    assert seasonal_naive(series, 4, 5) == 5.0  # five quarters ahead: still last year's Q1
    assert seasonal_naive(series, 1, 1) == 8.0  # yearly series: the naive forecast
    assert seasonal_naive(series[:3], 4, 1) is None  # shorter than a season


def test_exponential_smoothing_follows_a_linear_trend() -> None:
    series = [100.0 + 10 * i for i in range(12)]  # 100 … 210
    assert exponential_smoothing(series, 4, 1) == pytest.approx(220.0, rel=0.02)
    assert exponential_smoothing(series, 4, 3) == pytest.approx(240.0, rel=0.02)


def test_exponential_smoothing_falls_back_on_short_series() -> None:
    assert exponential_smoothing([], 4, 1) is None
    assert exponential_smoothing([500.0], 4, 1) == 500.0  # one observation: itself
    flat = exponential_smoothing([300.0, 300.0, 300.0], 4, 1)  # simple smoothing of a flat series
    assert flat == pytest.approx(300.0, rel=0.01)


def test_projection_picks_the_method_that_replayed_better() -> None:
    seasonal = [10.0, 20.0, 30.0, 40.0] * 3
    figure = project(seasonal, 4, 1)
    assert figure is not None
    assert figure.details["model"] == historical.SEASONAL_NAIVE
    assert figure.amount == 10.0
    assert figure.details["backtest_mape"][historical.SEASONAL_NAIVE] == 0.0
    assert figure.lower == figure.upper == 10.0  # no replay error: no spread

    trend = [100.0 + 10 * i for i in range(12)]
    figure = project(trend, 4, 1)
    assert figure is not None and figure.details["model"] == historical.EXPONENTIAL_SMOOTHING
    assert figure.lower is not None and figure.upper is not None and figure.lower <= figure.amount <= figure.upper
