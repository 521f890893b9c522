"""Customer segmentation: k-means over standardised account features, each segment named by what sets
its centre apart ("large, high-revenue, active" / "small, at-risk").

Features: annual revenue, employees, won amount, open pipeline and activity count (log-scaled: they
are heavy-tailed, and one giant account would otherwise be a segment of its own) and health score.
A missing value takes the median of the others. k is given, or chosen by the silhouette score among
2..6; fewer than 3 x k accounts are not segmented (the reason is returned). The clustering is
deterministic (fixed `random_state`), so the same data gives the same segments.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.cluster import KMeans  # type: ignore[import-untyped]
from sklearn.metrics import silhouette_score  # type: ignore[import-untyped]
from sqlalchemy import func, select
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from crm_backend import events
from crm_backend.facts import facts_for
from crm_backend.models.accounts import Account
from crm_backend.services import records
from crm_backend.store import UnitOfWork

FEATURES = ("annual_revenue", "employees", "won_amount", "open_pipeline", "activity_count", "health_score")
LOGGED = {"annual_revenue", "employees", "won_amount", "open_pipeline", "activity_count"}
# The word for a centre well above (z >= NOTABLE) and well below (z <= -NOTABLE) the average.
WORDS: dict[str, tuple[str, str]] = {
    "annual_revenue": ("high-revenue", "low-revenue"),
    "employees": ("large", "small"),
    "won_amount": ("high won value", "little won"),
    "open_pipeline": ("strong pipeline", "thin pipeline"),
    "activity_count": ("active", "quiet"),
    "health_score": ("healthy", "at-risk"),
}
NOTABLE = 0.5
MAX_WORDS = 3
K_RANGE = range(2, 7)
MIN_PER_CLUSTER = 3
RANDOM_STATE = 0
SILHOUETTE_SAMPLE = 2000
PAGE = 500
ORIGIN = "segments"


@dataclass(frozen=True)
class Segment:
    name: str
    size: int
    centroid_z: dict[str, float]  # the centre's z-score per feature: what distinguishes it


@dataclass(frozen=True)
class Segmentation:
    segmented: bool
    accounts: int
    k: int | None = None
    silhouette: float | None = None
    reason: str | None = None
    segments: list[Segment] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _value(feature: str, raw: Any) -> float | None:
    if raw is None:
        return None
    number = float(raw)
    return math.log1p(max(0.0, number)) if feature in LOGGED else number


def matrix(rows: list[dict[str, Any]]) -> np.ndarray[Any, Any]:
    """The standardised feature matrix (one row per account; missing values take the median)."""
    data = np.array(
        [[np.nan if (v := _value(f, row.get(f))) is None else v for f in FEATURES] for row in rows], dtype=float
    )
    for j in range(data.shape[1]):
        column = data[:, j]
        known = column[~np.isnan(column)]
        column[np.isnan(column)] = float(np.median(known)) if known.size else 0.0
    std = data.std(axis=0)
    std[std == 0] = 1.0
    return (data - data.mean(axis=0)) / std  # type: ignore[no-any-return]


def name_of(centre: np.ndarray[Any, Any]) -> str:
    """A segment's name: the words of its most distinctive features (|z| >= NOTABLE), strongest first."""
    notable = sorted(
        ((abs(float(z)), f, float(z)) for f, z in zip(FEATURES, centre, strict=True) if abs(z) >= NOTABLE),
        reverse=True,
    )[:MAX_WORDS]
    return ", ".join(WORDS[f][0 if z > 0 else 1] for _, f, z in notable) or "typical"


def _fit(x: np.ndarray[Any, Any], k: int) -> KMeans:
    # One thread: on a few thousand rows, OpenMP's start-up across every core costs more than the
    # work (13 s vs 1 s for 2,000 accounts on a shared 2-core machine), and a web worker should not
    # take every core anyway.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")  # duplicate points make fewer distinct clusters; the score says so
        return KMeans(n_clusters=k, random_state=RANDOM_STATE, n_init=10).fit(x)


def _score(x: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> float:
    if len(set(labels.tolist())) < 2:
        return -1.0
    sample = min(len(x), SILHOUETTE_SAMPLE)
    return float(silhouette_score(x, labels, sample_size=sample, random_state=RANDOM_STATE))


def cluster(rows: list[dict[str, Any]], k: int | None = None) -> tuple[Segmentation, list[str]]:
    """Segment `rows` (each a dict of FEATURES); returns the segmentation and each row's segment name."""
    n = len(rows)
    if k is not None and n < MIN_PER_CLUSTER * k:
        reason = f"{n} accounts are too few for {k} segments (need at least {MIN_PER_CLUSTER * k})"
        return Segmentation(False, n, k, reason=reason), []
    x = matrix(rows) if rows else np.zeros((0, len(FEATURES)))
    distinct = len({tuple(r) for r in np.round(x, 9).tolist()})
    candidates = [k] if k is not None else [c for c in K_RANGE if n >= MIN_PER_CLUSTER * c and c <= distinct]
    if not candidates or distinct < 2:
        reason = f"{n} accounts are too few to segment (need at least {MIN_PER_CLUSTER * K_RANGE[0]} that differ)"
        return Segmentation(False, n, k, reason=reason), []
    fits = [(_score(x, m.labels_), c, m) for c in candidates for m in [_fit(x, c)]]
    score, chosen, model = max(fits, key=lambda fit: (fit[0], -fit[1]))
    sizes = Counter(model.labels_.tolist())
    order = sorted(sizes, key=lambda label: (-sizes[label], label))
    names: dict[int, str] = {}
    segments: list[Segment] = []
    for label in order:
        centre = model.cluster_centers_[label]
        name = name_of(centre)
        taken = sum(1 for s in segments if s.name.split(" #")[0] == name)
        name = f"{name} #{taken + 1}" if taken else name
        names[label] = name[:60]
        z = {f: round(float(v), 3) for f, v in zip(FEATURES, centre, strict=True)}
        segments.append(Segment(names[label], sizes[label], z))
    result = Segmentation(True, n, chosen, round(score, 4), segments=segments)
    return result, [names[int(label)] for label in model.labels_]


def segment(uow: UnitOfWork, now: dt.datetime, k: int | None = None) -> Segmentation:
    """Segment every account and store each one's segment (and its centre's z-scores as explanation)."""
    accounts = list(uow.session.scalars(select(Account).where(Account.deleted_at.is_(None)).order_by(Account.id)))
    rows: list[dict[str, Any]] = []
    for start in range(0, len(accounts), PAGE):
        page = accounts[start : start + PAGE]
        facts = facts_for(uow, "account", page)
        rows += [
            {
                "annual_revenue": a.annual_revenue,
                "employees": a.employees,
                "won_amount": facts[a.id]["won_amount"],
                "open_pipeline": facts[a.id]["open_pipeline"],
                "activity_count": facts[a.id]["activity_count"],
                "health_score": a.health_score,
            }
            for a in page
        ]
    result, labels = cluster(rows, k)
    if not result.segmented:
        return result
    by_name = {s.name: s for s in result.segments}
    with events.origin(uow.session, ORIGIN):
        for account, name in zip(accounts, labels, strict=True):
            explanation = dict(account.health_explanation or {})
            explanation["segment"] = {
                "name": name,
                "k": result.k,
                "centroid_z": by_name[name].centroid_z,
                "computed_at": now.isoformat(),
            }
            account.segment = name
            account.health_explanation = explanation
    return result


def list_segments(uow: UnitOfWork) -> list[dict[str, Any]]:
    """The stored segments with how many of the actor's visible accounts are in each, and what sets it apart."""
    actor = uow.require_actor()
    visible = records.scoped(records.resource("accounts"), actor).where(Account.segment.is_not(None)).subquery()
    sizes = uow.session.execute(
        select(visible.c.segment, func.count()).group_by(visible.c.segment).order_by(func.count().desc())
    ).all()
    out: list[dict[str, Any]] = []
    for name, size in sizes:
        sample = uow.session.scalar(select(Account).where(Account.segment == name).limit(1))
        info = (sample.health_explanation or {}).get("segment", {}) if sample else {}
        z = info.get("centroid_z", {})
        out.append(
            {
                "name": name,
                "size": int(size),
                "description": describe(z),
                "centroid_z": z,
                "computed_at": info.get("computed_at"),
            }
        )
    return out


def describe(z: dict[str, float]) -> str:
    """A sentence a rep can read: how far from average the segment's centre is on each notable feature."""
    parts = [
        f"{f.replace('_', ' ')} {'above' if v > 0 else 'below'} average ({v:+.1f} sd)"
        for f, v in sorted(z.items(), key=lambda kv: -abs(kv[1]))
        if abs(v) >= NOTABLE
    ]
    return "; ".join(parts) if parts else "close to the average account on every feature"
