"""Weighted pipeline: each open deal expected to close in the period counts its amount (in the
forecast currency) times its probability. The sums are computed by the database, grouped by the
forecast's key and the deal currency, so a million deals never leave it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func

from crm_backend.forecasting.figures import Estimate
from crm_backend.forecasting.periods import Period
from crm_backend.forecasting.scope import GroupBy, Key, Rates, Scope, TerritoryTree, keyed
from crm_backend.models.deals import CLOSED_STAGES, Deal
from crm_backend.store import UnitOfWork


def weighted(
    uow: UnitOfWork,
    scope: Scope,
    period: Period,
    by: GroupBy | None,
    rates: Rates,
    tree: TerritoryTree,
    missing: set[str],
) -> dict[Key, Estimate]:
    """Per group: Σ a·p, Σ a²·p(1−p) and the deal count (before any territory roll-up)."""
    p = Deal.probability / 100.0
    amount = Deal.amount * 1.0  # a float in both databases, so the squares cannot overflow NUMERIC(14,2)
    stmt = keyed(
        scope.deals(uow, tree).where(
            Deal.stage.not_in(CLOSED_STAGES),
            Deal.expected_close_date >= period.start,
            Deal.expected_close_date <= period.end,
        ),
        by,
        (Deal.currency, func.count(), func.sum(amount * p), func.sum(amount * amount * p * (1 - p))),
        (Deal.currency,),
    )
    return _converted(uow.session.execute(stmt).all(), rates, missing)


def _converted(rows: Sequence[Any], rates: Rates, missing: set[str]) -> dict[Key, Estimate]:
    out: dict[Key, Estimate] = defaultdict(Estimate)
    for key, code, count, mean, variance in rows:
        factor = rates.factors.get(code.upper())
        if factor is None:
            missing.add(code.upper())
            continue
        out[key] += Estimate(float(mean or 0) * factor, float(variance or 0) * factor * factor, int(count))
    return dict(out)
