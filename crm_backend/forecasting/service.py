"""The forecast a user asks for: one period, one or all methods, optionally split by owner, team or
territory (a territory includes its descendants), in one currency, counting only the deals the
user may see; with the manual figures entered for the period beside the computed ones, and — once
the period is over — the actual closed-won revenue and each method's variance.

`snapshot` stores a computed forecast as SalesForecast / TerritoryForecast rows so that accuracy
can be tracked later (the collections show their variance once an actual is recorded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from crm_backend.errors import ValidationFailed
from crm_backend.forecasting import ai, historical, pipeline
from crm_backend.forecasting.figures import CONFIDENCE, Estimate, Figure, money
from crm_backend.forecasting.periods import Period, PeriodType, containing, parse
from crm_backend.forecasting.scope import (
    GroupBy,
    Key,
    Rates,
    Scope,
    TerritoryTree,
    labels,
    load_rates,
    parse_group_by,
    roll_up,
)
from crm_backend.models.forecasts import ForecastMethod, SalesForecast, TerritoryForecast
from crm_backend.models.users import User
from crm_backend.services import records
from crm_backend.store import UnitOfWork

WEIGHTED, HISTORICAL, AI = "weighted", "historical", "ai"
METHODS: dict[str, ForecastMethod] = {
    WEIGHTED: ForecastMethod.WEIGHTED,
    HISTORICAL: ForecastMethod.HISTORICAL,
    AI: ForecastMethod.AI,
}
DESCRIPTIONS = {
    WEIGHTED: "Σ amount × probability over open deals expected to close in the period",
    HISTORICAL: "closed-won revenue per period projected by seasonal naive or exponential smoothing "
    "(whichever replayed better)",
    AI: "Σ amount × P(win) × P(close in the period) over open deals",
}


def parse_methods(raw: str | None) -> list[str]:
    if raw is None or raw in ("", "all"):
        return list(METHODS)
    if raw.lower() not in METHODS:
        raise ValidationFailed({"method": "one of weighted, historical, ai, all"})
    return [raw.lower()]


@dataclass
class Context:
    """What every method of one forecast shares."""

    uow: UnitOfWork
    scope: Scope
    period: Period
    by: GroupBy | None
    rates: Rates
    tree: TerritoryTree
    today: date
    missing: set[str]


def _estimates(ctx: Context, raw: dict[Key, Estimate]) -> tuple[dict[Key, Figure], Figure]:
    total = sum(raw.values(), Estimate())
    rolled = roll_up(ctx.by, raw, ctx.tree, lambda a, b: a + b)
    return {k: Figure.from_estimate(v) for k, v in rolled.items()}, Figure.from_estimate(total)


def _weighted(ctx: Context) -> tuple[dict[Key, Figure], Figure, dict[str, Any]]:
    raw = pipeline.weighted(ctx.uow, ctx.scope, ctx.period, ctx.by, ctx.rates, ctx.tree, ctx.missing)
    return (*_estimates(ctx, raw), {"probability": "each deal's probability (its stage's unless overridden)"})


def _ai(ctx: Context) -> tuple[dict[Key, Figure], Figure, dict[str, Any]]:
    raw, details = ai.ai(ctx.uow, ctx.scope, ctx.period, ctx.by, ctx.rates, ctx.tree, ctx.missing)
    return (*_estimates(ctx, raw), details)


def _historical(ctx: Context) -> tuple[dict[Key, Figure], Figure, dict[str, Any]]:
    raw = historical.historical(
        ctx.uow, ctx.scope, ctx.period, ctx.by, ctx.rates, ctx.tree, ctx.missing, today=ctx.today
    )
    first = historical.first_period(raw, ctx.period.type)
    if first is None:
        empty = Figure(0.0, None, None, None, {"model": None, "history_periods": 0})
        return {}, empty, {"note": "no closed-won deals before the period: nothing to project"}
    total_monthly: historical.Monthly = {}
    for monthly in raw.values():
        total_monthly = historical.add_monthly(total_monthly, monthly)
    rolled = roll_up(ctx.by, raw, ctx.tree, historical.add_monthly)
    figures: dict[Key, Figure] = {}
    for key, monthly in rolled.items():
        figure = historical.forecast_from(monthly, ctx.period, first, ctx.today)
        if figure is not None:
            figures[key] = figure
    total = historical.forecast_from(total_monthly, ctx.period, first, ctx.today)
    if total is None:  # cannot happen: the series starts at `first`, so it is not empty
        total = Figure(0.0, None, None)
    return figures, total, {"history_from": first.label}


COMPUTE: dict[str, Callable[[Context], tuple[dict[Key, Figure], Figure, dict[str, Any]]]] = {
    WEIGHTED: _weighted,
    HISTORICAL: _historical,
    AI: _ai,
}


def _manual(ctx: Context) -> dict[Key, list[dict[str, Any]]]:
    """Manual forecasts entered for this period that the user may see, by the group they belong to."""
    out: dict[Key, list[dict[str, Any]]] = {}
    model: type[SalesForecast] | type[TerritoryForecast] = (
        TerritoryForecast if ctx.by is GroupBy.TERRITORY else SalesForecast
    )
    res = records.resource("territory-forecasts" if model is TerritoryForecast else "sales-forecasts")
    stmt = (records.scoped(res, ctx.scope.actor) if ctx.scope.actor else select(model)).where(
        model.method == ForecastMethod.MANUAL,
        model.period_start == ctx.period.start,
        model.period_type == ctx.period.type.stored,
    )
    if ctx.scope.owner_id is not None:
        stmt = stmt.where(model.owner_id == ctx.scope.owner_id)
    if ctx.scope.territory_id is not None:
        stmt = stmt.where(model.territory_id.in_(sorted(ctx.tree.subtree(ctx.scope.territory_id))))
    for row in ctx.uow.session.scalars(stmt.order_by(model.id)):
        factor = ctx.rates.factors.get(row.currency.upper())
        if factor is None:
            ctx.missing.add(row.currency.upper())
            continue
        key: Key = {
            GroupBy.OWNER: row.owner_id,
            GroupBy.TEAM: row.team_id,
            GroupBy.TERRITORY: row.territory_id,
            None: None,
        }[ctx.by]
        entry = {
            "id": row.id,
            "name": getattr(row, "name", None) or f"territory {row.territory_id}",
            "amount": str(money(float(row.forecast_amount) * factor)),
            "owner_id": row.owner_id,
        }
        out.setdefault(key, []).append(entry)
        if key is not None:
            out.setdefault(None, []).append(entry)
    return out


def _check_owner(uow: UnitOfWork, owner_id: int | None) -> None:
    if owner_id is not None and uow.session.get(User, owner_id) is None:
        raise ValidationFailed({"owner_id": f"no user with id {owner_id}"})


def forecast(
    uow: UnitOfWork,
    period: str | Period | None = None,
    *,
    method: str | None = None,
    by: str | GroupBy | None = None,
    territory_id: int | None = None,
    owner_id: int | None = None,
    currency: str | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """The forecast for `period` (default: the current quarter), as the acting user sees it."""
    today = today or date.today()  # noqa: DTZ011 - periods are calendar days
    the_period = period if isinstance(period, Period) else (parse(period) if period else None)
    the_period = the_period or containing(today, PeriodType.QUARTER)
    group_by = by if isinstance(by, GroupBy) or by is None else parse_group_by(by)
    methods = parse_methods(method)
    _check_owner(uow, owner_id)
    tree = TerritoryTree.load(uow)
    ctx = Context(
        uow,
        Scope(uow.actor, owner_id, territory_id),
        the_period,
        group_by,
        load_rates(uow, currency),
        tree,
        today,
        set(),
    )
    ctx.scope.deals(uow, tree)  # validates the territory before any work
    results = {name: COMPUTE[name](ctx) for name in methods}
    manual = _manual(ctx)
    closed = the_period.is_closed(today)
    actual_total: float | None = None
    actual: dict[Key, float] = {}
    if closed:
        raw = historical.actuals(uow, ctx.scope, the_period, group_by, ctx.rates, tree, ctx.missing)
        actual_total = sum(raw.values())
        actual = roll_up(group_by, raw, tree, lambda a, b: a + b)

    def row(key: Key, figures: dict[str, Figure | None], label: str, act: float | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": key,
            "label": label,
            "figures": {name: f.as_dict(act) for name, f in figures.items() if f is not None},
            "manual": manual.get(key, []),
            "actual": None if act is None else str(money(act)),
        }
        if group_by is GroupBy.TERRITORY and key is not None:
            out["parent_id"] = tree.parent.get(key)
        return out

    groups: list[dict[str, Any]] = []
    if group_by is not None:
        keys = {k for figures, _, _ in results.values() for k in figures} | set(actual)
        keys |= {k for k in manual if k is not None}
        names = labels(uow, group_by, keys, tree)
        for key in sorted(keys, key=lambda k: (k is None, names.get(k, ""), k or 0)):
            act = actual.get(key, 0.0) if closed else None
            groups.append(row(key, {n: r[0].get(key) for n, r in results.items()}, names.get(key, str(key)), act))
    total = row(None, {n: r[1] for n, r in results.items()}, "All", actual_total)
    total["manual"] = manual.get(None, [])
    return {
        "period": the_period.as_dict(),
        "closed": closed,
        "currency": ctx.rates.target,
        "confidence": CONFIDENCE,
        "by": group_by.value if group_by else None,
        "methods": methods,
        "total": total,
        "groups": groups,
        "details": {
            **{name: {"description": DESCRIPTIONS[name], **r[2]} for name, r in results.items()},
            **({"unconverted_currencies": sorted(ctx.missing)} if ctx.missing else {}),
        },
    }


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def snapshot(
    uow: UnitOfWork,
    period: str | Period | None = None,
    *,
    method: str | None = None,
    by: str | GroupBy | None = None,
    territory_id: int | None = None,
    owner_id: int | None = None,
    currency: str | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Compute the forecast and store it: one SalesForecast per method for the whole scope, and one
    row per group (TerritoryForecast by territory, SalesForecast by owner or team) under it."""
    uow.require_actor()
    result = forecast(
        uow, period, method=method, by=by, territory_id=territory_id, owner_id=owner_id, currency=currency, today=today
    )
    p = result["period"]
    by_value = result["by"]
    sales, territories = records.resource("sales-forecasts"), records.resource("territory-forecasts")
    stored: dict[str, Any] = {"sales_forecasts": [], "territory_forecasts": []}

    def values(group: dict[str, Any], name: str) -> dict[str, Any]:
        figure = group["figures"][name]
        return {
            "period_type": parse(p["label"]).type.stored,
            "period_start": p["start"],
            "period_end": p["end"],
            "method": METHODS[name],
            "forecast_amount": Decimal(figure["amount"]),
            "actual_amount": _decimal(group["actual"]),
            "currency": result["currency"],
            "confidence": result["confidence"],
            "lower_bound": _decimal(figure["lower"]),
            "upper_bound": _decimal(figure["upper"]),
            "details": {
                "by": by_value,
                "group": group["key"],
                "owner_filter": owner_id,
                "territory_filter": territory_id,
                **figure.get("details", {}),
                **result["details"].get(name, {}),
            },
        }

    for name in result["methods"]:
        if name not in result["total"]["figures"]:
            continue
        parent = records.create_record(
            uow, sales, {**values(result["total"], name), "name": f"{p['label']} {METHODS[name].value} forecast"}
        )
        stored["sales_forecasts"].append(parent.id)
        for group in result["groups"]:
            if name not in group["figures"] or group["key"] is None:
                continue
            figure = group["figures"][name]
            data = values(group, name)
            if by_value == GroupBy.TERRITORY.value:
                count = figure.get("deal_count")
                data.update(
                    territory_id=group["key"],
                    parent_forecast_id=parent.id,
                    deal_count=count,
                    average_deal_size=(Decimal(figure["amount"]) / count).quantize(Decimal("0.01")) if count else None,
                )
                stored["territory_forecasts"].append(records.create_record(uow, territories, data).id)
                continue
            if by_value == GroupBy.TEAM.value:
                data["team_id"] = group["key"]
            data["name"] = f"{p['label']} {METHODS[name].value} forecast: {group['label']}"
            stored["sales_forecasts"].append(records.create_record(uow, sales, data).id)
    return {"forecast": result, **stored}
