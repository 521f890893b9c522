"""Backtesting: replay the last N closed periods, forecasting each as of its first day with only
what was known then, and compare with the closed-won revenue that came in. MAPE per method says
which method has been most accurate here, and by how much.

What "known then" means per method:
- weighted pipeline and AI: deals created before the period started and still open then, with the
  stage, probability and expected close date they had at that moment, rebuilt from the audit trail
  (the `before` value of each field's first change after the start; the current value when it
  never changed since). A deal whose trail says it was already closed although it closed later
  (history imported without a trail) cannot be rebuilt: it counts at 50 % and is reported as
  `unreconstructed`.
- AI: the trained win model cannot be replayed (it learned from these very outcomes), so the
  replay uses the rebuilt probability with the close-date model learned from deals won before the
  start; the result says so.
- seasonal naive and exponential smoothing: the closed-won series up to the period's start.
Amounts are converted at today's rates (past rates are not kept).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import or_, select

from crm_backend.errors import ValidationFailed
from crm_backend.forecasting import ai, historical
from crm_backend.forecasting.figures import Estimate, money
from crm_backend.forecasting.periods import Period, PeriodType, closed_before, parse_type
from crm_backend.forecasting.scope import Rates, Scope, TerritoryTree, day_start, load_rates
from crm_backend.models.audit import AuditLog
from crm_backend.models.deals import CLOSED_STAGES, STAGE_PROBABILITY, Deal, DealStage
from crm_backend.store import UnitOfWork

MAX_PERIODS = 36
TIE_POINTS = 0.05  # MAPE points below which two methods are called equally accurate
UNKNOWN_OPEN_PROBABILITY = STAGE_PROBABILITY[DealStage.PROPOSAL]
REPLAYED = ("stage", "probability", "expected_close_date")
METHOD_NAMES = ("weighted", "ai", historical.SEASONAL_NAIVE, historical.EXPONENTIAL_SMOOTHING)


@dataclass
class AsOf:
    """A deal as it stood when a period started."""

    currency: str
    amount: float
    probability: float  # 0–1
    expected: date | None


def _changes_after(uow: UnitOfWork, ids: list[int], start: date) -> dict[int, dict[str, Any]]:
    """Per deal, each replayed field's value before its first change on or after `start`."""
    before: dict[int, dict[str, Any]] = defaultdict(dict)
    for chunk in (ids[i : i + 900] for i in range(0, len(ids), 900)):
        rows = uow.session.execute(
            select(AuditLog.entity_id, AuditLog.changes)
            .where(
                AuditLog.entity_type == Deal.__tablename__,
                AuditLog.action == "update",
                AuditLog.at >= day_start(start),
                AuditLog.entity_id.in_(chunk),
            )
            .order_by(AuditLog.at, AuditLog.id)
        )
        for entity_id, changes in rows:
            for name in REPLAYED:
                if name in changes and name not in before[entity_id]:
                    before[entity_id][name] = changes[name][0]
    return before


def deals_as_of(uow: UnitOfWork, scope: Scope, tree: TerritoryTree, start: date) -> tuple[list[AsOf], int]:
    """Deals open when `start` began, as they stood then; and how many could not be rebuilt."""
    moment = day_start(start)
    stmt = scope.deals(uow, tree).where(
        Deal.created_at < moment, or_(Deal.closed_at.is_(None), Deal.closed_at >= moment)
    )
    rows = uow.session.execute(
        stmt.with_only_columns(
            Deal.id, Deal.currency, Deal.amount, Deal.stage, Deal.probability, Deal.expected_close_date
        )
    ).all()
    history = _changes_after(uow, [r[0] for r in rows], start)
    out, unreconstructed = [], 0
    for deal_id, currency, amount, stage, probability, expected in rows:
        then = history.get(deal_id, {})
        stage_then = DealStage(then.get("stage", stage))
        p = float(then.get("probability", probability)) / 100
        if stage_then in CLOSED_STAGES:
            p, unreconstructed = UNKNOWN_OPEN_PROBABILITY / 100, unreconstructed + 1
        raw_expected = then.get("expected_close_date", expected)
        expected_then = date.fromisoformat(raw_expected) if isinstance(raw_expected, str) else raw_expected
        out.append(AsOf(currency, float(amount), p, expected_then))
    return out, unreconstructed


def _sum(deals: Iterable[AsOf], rates: Rates, missing: set[str], chance: Any) -> float:
    total = Estimate()
    for deal in deals:
        factor = rates.factors.get(deal.currency.upper())
        if factor is None:
            missing.add(deal.currency.upper())
            continue
        if deal.expected is None:
            continue
        p = chance(deal)
        total += Estimate(deal.amount * factor * p, 0.0, 1)
    return total.mean


def mape(forecasts: list[float | None], actuals: list[float]) -> float | None:
    """Mean APE over the periods the method could forecast and where something closed."""
    pairs = [(f, a) for f, a in zip(forecasts, actuals, strict=True) if f is not None]
    errors = [e for f, a in pairs if (e := historical.ape(f, a)) is not None]
    return sum(errors) / len(errors) if errors else None


def run(
    uow: UnitOfWork,
    *,
    periods: int = 8,
    period_type: str | PeriodType = PeriodType.QUARTER,
    owner_id: int | None = None,
    territory_id: int | None = None,
    currency: str | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Replay the last `periods` closed periods; MAPE per method and the most accurate one."""
    if not 1 <= periods <= MAX_PERIODS:
        raise ValidationFailed({"periods": f"between 1 and {MAX_PERIODS}"})
    kind = period_type if isinstance(period_type, PeriodType) else parse_type(period_type)
    today = today or date.today()  # noqa: DTZ011 - periods are calendar days
    tree = TerritoryTree.load(uow)
    scope = Scope(uow.actor, owner_id, territory_id)
    scope.deals(uow, tree)  # validates the territory
    rates, missing = load_rates(uow, currency), set[str]()
    replayed = closed_before(today, kind, periods)
    monthly = historical.monthly_revenue(uow, scope, None, rates, tree, missing, replayed[-1].next().start).get(
        None, {}
    )
    first = historical.first_period({None: monthly}, kind)
    rows: list[dict[str, Any]] = []
    unreconstructed = 0
    for period in replayed:
        rows.append(_replay(uow, scope, tree, rates, missing, period, monthly, first))
        unreconstructed += rows[-1].pop("unreconstructed")
    actuals = [float(r["actual"]) for r in rows]
    scores = {
        name: mape([None if r["forecasts"][name] is None else float(r["forecasts"][name]) for r in rows], actuals)
        for name in METHOD_NAMES
    }
    return {
        "period_type": kind.value,
        "currency": rates.target,
        "periods": rows,
        "mape": {name: None if v is None else round(v, 2) for name, v in scores.items()},
        "periods_scored": sum(1 for a in actuals if a > 0),
        "comparison": comparison(scores),
        "notes": {
            "ai": "replayed with the probability deals had then (the win model cannot be replayed) "
            "and the close-date model learned from deals won before each period",
            "weighted": "stage, probability and expected close date rebuilt from the audit trail",
            "rates": "amounts at today's exchange rates",
            **({"unreconstructed_deals": unreconstructed} if unreconstructed else {}),
            **({"unconverted_currencies": sorted(missing)} if missing else {}),
        },
    }


def _replay(
    uow: UnitOfWork,
    scope: Scope,
    tree: TerritoryTree,
    rates: Rates,
    missing: set[str],
    period: Period,
    monthly: historical.Monthly,
    first: Period | None,
) -> dict[str, Any]:
    deals, unreconstructed = deals_as_of(uow, scope, tree, period.start)
    close_model = ai.close_date_model(uow, scope, tree, before=period.start)

    def in_period(deal: AsOf) -> float:
        return deal.probability if deal.expected is not None and period.contains(deal.expected) else 0.0

    def ai_chance(deal: AsOf) -> float:
        return deal.probability * close_model.inside(deal.expected, period) if deal.expected else 0.0

    forecasts: dict[str, float | None] = {
        "weighted": _sum(deals, rates, missing, in_period),
        "ai": _sum(deals, rates, missing, ai_chance),
    }
    known = {ym: v for ym, v in monthly.items() if date(ym[0], ym[1], 1) < period.start}
    series = historical.period_series(known, period.type, first, period) if first and first < period else []
    for name, method in historical.METHODS.items():
        forecasts[name] = method(series, period.type.per_year, 1) if series else None
    actual = sum(v for ym, v in monthly.items() if period.contains(date(ym[0], ym[1], 1)))
    return {
        "period": period.label,
        "actual": str(money(actual)),
        "forecasts": {k: None if v is None else str(money(v)) for k, v in forecasts.items()},
        "unreconstructed": unreconstructed,
    }


def comparison(scores: dict[str, float | None]) -> dict[str, Any] | None:
    """The most accurate method and its lead over the runner-up, in MAPE points and relative."""
    ranked = sorted(((v, k) for k, v in scores.items() if v is not None))
    if not ranked:
        return None
    best_mape, best = ranked[0]
    out: dict[str, Any] = {"best": best, "best_mape": round(best_mape, 2), "ranking": [k for _, k in ranked]}
    if len(ranked) > 1:
        runner_mape, runner = ranked[1]
        out.update(
            runner_up=runner,
            runner_up_mape=round(runner_mape, 2),
            lead_points=round(runner_mape - best_mape, 2),
            lead_relative_percent=round((runner_mape - best_mape) / runner_mape * 100, 1) if runner_mape else None,
        )
        if runner_mape - best_mape < TIE_POINTS:
            out["sentence"] = f"{best} and {runner} have been equally accurate: MAPE {best_mape:.1f}%."
        else:
            out["sentence"] = (
                f"{best} has been the most accurate: MAPE {best_mape:.1f}% against {runner_mape:.1f}% for "
                f"{runner} ({runner_mape - best_mape:.1f} points better)."
            )
    else:
        out["sentence"] = f"{best} is the only method that could be scored: MAPE {best_mape:.1f}%."
    return out
