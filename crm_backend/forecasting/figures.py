"""A forecast figure: an expected amount with an interval, and the sums it is built from.

Deal-by-deal methods (weighted pipeline, AI) treat each deal as a Bernoulli trial: it brings its
amount `a` with probability `p`, else nothing. Deals are independent, so the expected total is
Σ a·p and its variance Σ a²·p(1−p); sums of groups (a territory and its children) simply add. The
interval is the normal approximation at `CONFIDENCE` percent, clipped at zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import NormalDist
from typing import Any

CONFIDENCE = 80  # percent: the level of every interval a forecast states
Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 200)  # 1.2816 for 80 %


def money(value: float) -> Decimal:
    return Decimal(repr(round(value, 2))).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


@dataclass
class Estimate:
    """Σ a·p (`mean`), Σ a²·p(1−p) (`variance`) and the number of deals, in the forecast currency."""

    mean: float = 0.0
    variance: float = 0.0
    count: int = 0

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(self.mean + other.mean, self.variance + other.variance, self.count + other.count)


@dataclass
class Figure:
    """One method's forecast for one group."""

    amount: float
    lower: float | None
    upper: float | None
    deal_count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_estimate(cls, estimate: Estimate) -> Figure:
        half = Z * math.sqrt(max(estimate.variance, 0.0))
        return cls(estimate.mean, max(estimate.mean - half, 0.0), estimate.mean + half, estimate.count)

    def as_dict(self, actual: float | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "amount": str(money(self.amount)),
            "lower": None if self.lower is None else str(money(self.lower)),
            "upper": None if self.upper is None else str(money(self.upper)),
        }
        if self.deal_count is not None:
            out["deal_count"] = self.deal_count
        if actual is not None:
            variance = money(actual) - money(self.amount)
            out["variance"] = str(variance)
            out["variance_percent"] = (
                str((variance / money(self.amount) * 100).quantize(Decimal("0.1"))) if money(self.amount) else None
            )
        if self.details:
            out["details"] = self.details
        return out
