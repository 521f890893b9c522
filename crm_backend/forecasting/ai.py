"""AI forecast: Σ amount × P(win) × P(close inside the period) over open deals.

P(win) comes from the trained deal model (`crm_backend.scoring.model.deal_win_probabilities`);
where there is no model, or it gives no answer for a deal, the deal's stage probability stands in
and the figure's details say how many deals that was. P(close inside the period) comes from a
close-date model: the empirical distribution of slip (closed_at − expected_close_date, in days)
over the won deals the user can see. With fewer than `MIN_SLIPS` of them, slip is taken as zero
(deals close on their expected date), and the details say so.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from crm_backend.forecasting.figures import Estimate
from crm_backend.forecasting.periods import Period
from crm_backend.forecasting.scope import GroupBy, Key, Rates, Scope, TerritoryTree, day_start
from crm_backend.models.deals import CLOSED_STAGES, Deal, DealStage
from crm_backend.models.users import User
from crm_backend.store import UnitOfWork

MIN_SLIPS = 5


@dataclass(frozen=True)
class CloseDateModel:
    """Sorted slips in days; `fallback` when there was too little history to use them."""

    slips: tuple[int, ...]
    fallback: bool

    @classmethod
    def learn(cls, slips: Sequence[int]) -> CloseDateModel:
        if len(slips) < MIN_SLIPS:
            return cls((0,), True)
        return cls(tuple(sorted(slips)), False)

    def at_most(self, days: int) -> float:
        """P(slip ≤ days)."""
        return bisect.bisect_right(self.slips, days) / len(self.slips)

    def inside(self, expected: date, period: Period) -> float:
        """P(a deal expected on `expected` closes between the period's first and last day)."""
        return self.at_most((period.end - expected).days) - self.at_most((period.start - expected).days - 1)

    def window(self, period: Period) -> tuple[date, date]:
        """Expected dates that can land in the period at all."""
        return period.start - timedelta(days=self.slips[-1]), period.end - timedelta(days=self.slips[0])

    def describe(self) -> dict[str, Any]:
        if self.fallback:
            return {"close_date_model": f"fewer than {MIN_SLIPS} won deals with an expected date: slip taken as 0"}
        middle = self.slips[len(self.slips) // 2]
        return {"close_date_model": "empirical slip", "slip_samples": len(self.slips), "median_slip_days": middle}


def close_date_model(uow: UnitOfWork, scope: Scope, tree: TerritoryTree, before: date | None = None) -> CloseDateModel:
    """Learn slips from won deals (closed before `before`, when replaying the past)."""
    stmt = scope.deals(uow, tree).where(
        Deal.stage == DealStage.CLOSED_WON, Deal.closed_at.is_not(None), Deal.expected_close_date.is_not(None)
    )
    if before is not None:
        stmt = stmt.where(Deal.closed_at < day_start(before))
    rows = uow.session.execute(stmt.with_only_columns(Deal.closed_at, Deal.expected_close_date))
    return CloseDateModel.learn([(closed.date() - expected).days for closed, expected in rows if closed and expected])


PROBE = 20  # deals scored first, to learn whether a model answers at all
CHUNK = 2_000


def win_probabilities(uow: UnitOfWork, ids: Sequence[int]) -> tuple[dict[int, float | None], str | None]:
    """The deal model's P(win) per deal id, or (empty, why) when there is no model to ask.

    The model reads whole Deal objects; loading a hundred thousand of them costs seconds, so a
    small probe first learns whether a model answers at all."""
    try:
        from crm_backend.scoring.model import deal_win_probabilities
    except ImportError as exc:
        return {}, f"scoring model unavailable ({exc.name})"

    def score(chunk: Sequence[int]) -> dict[int, float | None]:
        deals = list(uow.session.scalars(select(Deal).where(Deal.id.in_(chunk))))
        return deal_win_probabilities(uow, deals)

    found = score(ids[:PROBE])
    if all(v is None for v in found.values()):
        return {}, "no trained deal model"
    for index in range(PROBE, len(ids), CHUNK):
        found.update(score(ids[index : index + CHUNK]))
    return found, None


def ai(
    uow: UnitOfWork,
    scope: Scope,
    period: Period,
    by: GroupBy | None,
    rates: Rates,
    tree: TerritoryTree,
    missing: set[str],
) -> tuple[dict[Key, Estimate], dict[str, Any]]:
    model = close_date_model(uow, scope, tree)
    earliest, latest = model.window(period)
    stmt = scope.deals(uow, tree).where(
        Deal.stage.not_in(CLOSED_STAGES),
        Deal.expected_close_date >= earliest,
        Deal.expected_close_date <= latest,
    )
    if by is GroupBy.TEAM:
        stmt = stmt.join(User, User.id == Deal.owner_id)
    key_column = {GroupBy.OWNER: Deal.owner_id, GroupBy.TERRITORY: Deal.territory_id, GroupBy.TEAM: User.team_id}
    rows = uow.session.execute(
        stmt.with_only_columns(
            Deal.id,
            key_column[by] if by else Deal.id,
            Deal.currency,
            Deal.amount,
            Deal.probability,
            Deal.expected_close_date,
        )
    ).all()
    wins, why = win_probabilities(uow, [r[0] for r in rows])
    out: dict[Key, Estimate] = defaultdict(Estimate)
    from_stage = 0
    for deal_id, key, currency, amount, probability, expected in rows:
        factor = rates.factors.get(currency.upper())
        if factor is None:
            missing.add(currency.upper())
            continue
        if expected is None:  # excluded by the query; keeps the type checker informed
            continue
        win = wins.get(deal_id)
        if win is None:
            win, from_stage = probability / 100, from_stage + 1
        p = win * model.inside(expected, period)
        if p <= 0:
            continue
        a = float(amount) * factor
        out[key if by else None] += Estimate(a * p, a * a * p * (1 - p), 1)
    details: dict[str, Any] = {**model.describe(), "win_probability": "deal model"}
    if from_stage:
        details["win_probability"] = "stage probability" + (
            f" ({why})" if why else " for deals the model did not score"
        )
        details["deals_at_stage_probability"] = from_stage
    return dict(out), details
