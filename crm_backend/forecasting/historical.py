"""Historical forecasting: the series of closed-won revenue per period, projected forward by
seasonal naive (the same period a year earlier) or exponential smoothing, whichever had the lower
error when replayed over the series' own recent past.

Exponential smoothing is statsmodels' `ExponentialSmoothing`: Holt-Winters (additive trend and
season) once the series holds three full years, Holt (additive trend) from four
periods, simple exponential smoothing from two, and the single observation itself below that
(a documented fallback: too little history to fit anything).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import extract, func

from crm_backend.forecasting.figures import Figure, Z
from crm_backend.forecasting.periods import Period, PeriodType, containing
from crm_backend.forecasting.scope import GroupBy, Key, Rates, Scope, TerritoryTree, day_start, keyed
from crm_backend.models.deals import Deal, DealStage
from crm_backend.store import UnitOfWork

SEASONAL_NAIVE = "seasonal_naive"
EXPONENTIAL_SMOOTHING = "exponential_smoothing"
SELECTION_WINDOW = 4  # recent periods replayed to choose between the two
# Holt-Winters estimates a season of initial states besides level, trend and three smoothing
# weights: below three years of history it over-fits (and costs ~5× a Holt fit), so Holt it is.
SEASONAL_FIT_SEASONS = 3
Forecaster = Callable[[Sequence[float], int, int], float | None]
Monthly = dict[tuple[int, int], float]  # (year, month) -> revenue


def seasonal_naive(series: Sequence[float], season: int, horizon: int) -> float | None:
    """The value one season before the target (`horizon` periods after the last one); None when
    the series is shorter than a season."""
    n = len(series)
    if n < season or horizon < 1:
        return None
    return series[n - 1 + horizon - season * ((horizon - 1) // season + 1)]


def exponential_smoothing(series: Sequence[float], season: int, horizon: int) -> float | None:
    n = len(series)
    if n == 0 or horizon < 1:
        return None
    if n == 1:
        return series[0]
    import numpy as np
    from statsmodels.tsa.holtwinters import ExponentialSmoothing  # type: ignore[import-untyped]  # slow to import: only when used

    options: dict[str, Any] = {"initialization_method": "known", "initial_level": series[0]}
    if season > 1 and n >= SEASONAL_FIT_SEASONS * season:
        options = {"initialization_method": "estimated", "trend": "add", "seasonal": "add", "seasonal_periods": season}
    elif n >= 4:
        # Starting from the first level and step (rather than estimating them too) fits ~4× faster,
        # which is what keeps a forecast by 50 territories (5 fits each) interactive.
        options.update(trend="add", initial_trend=series[1] - series[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short or flat series
        try:
            fit = ExponentialSmoothing([float(v) for v in series], **options).fit(use_brute=False)
            value = float(fit.forecast(horizon)[-1])
        except (ValueError, np.linalg.LinAlgError):
            return series[-1]
    return max(value, 0.0) if math.isfinite(value) else series[-1]


METHODS: dict[str, Forecaster] = {SEASONAL_NAIVE: seasonal_naive, EXPONENTIAL_SMOOTHING: exponential_smoothing}


def ape(forecast: float, actual: float) -> float | None:
    """Absolute percentage error; undefined when nothing actually closed."""
    return abs(forecast - actual) / actual * 100 if actual > 0 else None


@dataclass
class Replay:
    """One method replayed over the last periods of a series: its errors there."""

    errors: list[float]  # forecast − actual
    apes: list[float]

    @property
    def mape(self) -> float | None:
        return sum(self.apes) / len(self.apes) if self.apes else None


def replay(method: Forecaster, series: Sequence[float], season: int, horizon: int, window: int) -> Replay:
    result = Replay([], [])
    for target in range(max(len(series) - window, 1), len(series)):
        known = series[: target - horizon + 1]
        if not known:
            continue
        forecast = method(known, season, horizon)
        if forecast is None:
            continue
        result.errors.append(forecast - series[target])
        error = ape(forecast, series[target])
        if error is not None:
            result.apes.append(error)
    return result


def project(series: Sequence[float], season: int, horizon: int) -> Figure | None:
    """The better of the two methods on this series, with an interval from its replay errors."""
    replays = {name: replay(m, series, season, horizon, SELECTION_WINDOW) for name, m in METHODS.items()}
    forecasts = {name: m(series, season, horizon) for name, m in METHODS.items()}
    candidates = [name for name, value in forecasts.items() if value is not None]
    if not candidates:
        return None

    def rank(name: str) -> tuple[float, int]:
        mape = replays[name].mape
        return (mape if mape is not None else math.inf, 0 if name == EXPONENTIAL_SMOOTHING else 1)

    chosen = min(candidates, key=rank)
    value = forecasts[chosen] or 0.0  # never None: chosen among the methods that answered
    errors = replays[chosen].errors
    if len(errors) >= 2:
        spread, basis = math.sqrt(sum(e * e for e in errors) / len(errors)), "backtest residuals (RMSE)"
    elif len(series) >= 2:
        mean = sum(series) / len(series)
        spread = math.sqrt(sum((v - mean) ** 2 for v in series) / (len(series) - 1))
        basis = "standard deviation of the series (too short to backtest)"
    else:
        spread, basis = 0.0, "none: a single period of history"
    details = {
        "model": chosen,
        "history_periods": len(series),
        "backtest_mape": {name: _rounded(r.mape) for name, r in replays.items()},
        "interval_from": basis,
    }
    half = Z * spread
    return Figure(value, max(value - half, 0.0), value + half, None, details)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def monthly_revenue(
    uow: UnitOfWork,
    scope: Scope,
    by: GroupBy | None,
    rates: Rates,
    tree: TerritoryTree,
    missing: set[str],
    before: date,
    since: date | None = None,
) -> dict[Key, Monthly]:
    """Closed-won revenue per group and calendar month (UTC), closed before `before` (and on or
    after `since`)."""
    year, month = extract("year", Deal.closed_at), extract("month", Deal.closed_at)
    stmt = keyed(
        scope.deals(uow, tree).where(
            Deal.stage == DealStage.CLOSED_WON, Deal.closed_at.is_not(None), Deal.closed_at < day_start(before)
        ),
        by,
        (Deal.currency, year, month, func.sum(Deal.amount)),
        (Deal.currency, year, month),
    )
    if since is not None:
        stmt = stmt.where(Deal.closed_at >= day_start(since))
    out: dict[Key, Monthly] = defaultdict(lambda: defaultdict(float))
    for key, code, y, m, total in uow.session.execute(stmt):
        factor = rates.factors.get(code.upper())
        if factor is None:
            missing.add(code.upper())
            continue
        out[key][(int(y), int(m))] += float(total or 0) * factor
    return {k: dict(v) for k, v in out.items()}


def actuals(
    uow: UnitOfWork,
    scope: Scope,
    period: Period,
    by: GroupBy | None,
    rates: Rates,
    tree: TerritoryTree,
    missing: set[str],
) -> dict[Key, float]:
    """Closed-won revenue inside the period, per group (before any roll-up)."""
    found = monthly_revenue(uow, scope, by, rates, tree, missing, period.next().start, period.start)
    return {key: sum(monthly.values()) for key, monthly in found.items()}


def add_monthly(a: Monthly, b: Monthly) -> Monthly:
    total = dict(a)
    for month, value in b.items():
        total[month] = total.get(month, 0.0) + value
    return total


def period_series(monthly: Monthly, type_: PeriodType, first: Period, upto: Period) -> list[float]:
    """Revenue per period from `first` up to (not including) `upto`, zero where nothing closed."""
    sums: dict[Period, float] = defaultdict(float)
    for (y, m), value in monthly.items():
        sums[containing(date(y, m, 1), type_)] += value
    series, current = [], first
    while current < upto:
        series.append(sums.get(current, 0.0))
        current = current.next()
    return series


def first_period(monthly_by_key: dict[Key, Monthly], type_: PeriodType) -> Period | None:
    months = [ym for monthly in monthly_by_key.values() for ym in monthly]
    return containing(date(*min(months), 1), type_) if months else None


def historical(
    uow: UnitOfWork,
    scope: Scope,
    period: Period,
    by: GroupBy | None,
    rates: Rates,
    tree: TerritoryTree,
    missing: set[str],
    *,
    today: date,
) -> dict[Key, Monthly]:
    """The monthly history each group's projection starts from: everything that closed before
    the earlier of the period's start and the current period's start (only complete periods)."""
    cutoff = min(period.start, containing(today, period.type).start)
    return monthly_revenue(uow, scope, by, rates, tree, missing, cutoff)


def forecast_from(monthly: Monthly, period: Period, first: Period, today: date) -> Figure | None:
    last_complete = min(period, containing(today, period.type))
    series = period_series(monthly, period.type, first, last_complete)
    horizon = 1
    current = last_complete
    while current < period:
        current = current.next()
        horizon += 1
    return project(series, period.type.per_year, horizon) if series else None
