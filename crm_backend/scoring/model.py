"""The trained part of scoring: a gradient-boosting classifier learned from the CRM's own history.

Leads: converted (1) vs lost (0). Deals: won (1) vs lost (0). Features are engineered from the same
facts the rules see (`crm_backend.facts`) plus the response time (hours from creation to the first
activity): source, industry, company size, BANT completeness, activity counts and recency,
conversation sentiment; for deals the type, amount, account size and industry, competitors.

The held-out split is by time (the newest quarter of the labelled records by creation date), not
random, because the model will score records newer than anything it learned from. Each training
writes `<dir>/<entity>/<version>.joblib` and `<version>.json` (its metrics); `current.json` names
the model the engine uses. A new model replaces the current one only if its held-out ROC-AUC is at
least as good (unless forced). With too little history, training says so and nothing changes:
scoring then uses the rules alone. Model files are our own pickles (joblib): only load files this
command wrote.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped,unused-ignore]
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped,unused-ignore]
from sklearn.feature_extraction import DictVectorizer  # type: ignore[import-untyped,unused-ignore]
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score  # type: ignore[import-untyped,unused-ignore]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import func, select
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,unused-ignore]

from crm_backend import facts
from crm_backend.models.activities import Activity
from crm_backend.models.automation import EntityType
from crm_backend.models.base import Base
from crm_backend.models.deals import Deal, DealStage
from crm_backend.models.leads import Lead, LeadStatus
from crm_backend.store import UnitOfWork

TRAINABLE = (EntityType.LEAD, EntityType.DEAL)
MIN_ROWS = 200  # labelled records needed to train at all
MIN_PER_CLASS = 30  # of each outcome
TEST_SHARE = 0.25  # the newest quarter is held out
BATCH = 1000
THREADS = 1  # OpenMP threads for fitting and predicting
Features = dict[str, float | str]


class NotEnoughHistory(Exception):
    """Too few labelled records to learn anything trustworthy; only rules score."""


@dataclass
class Dataset:
    ids: list[int]
    features: list[Features]
    labels: list[int]
    created: list[dt.datetime]


@dataclass
class TrainingResult:
    entity_type: EntityType
    version: str
    metrics: dict[str, Any]
    promoted: bool
    reason: str
    path: Path | None = None
    previous: dict[str, Any] | None = field(default=None)


# --- features ---------------------------------------------------------------------------------------
def _num(value: Any) -> float:
    if value is None or isinstance(value, str):
        return math.nan
    return float(value)


def _log(value: Any) -> float:
    v = _num(value)
    return math.log1p(v) if not math.isnan(v) and v >= 0 else math.nan


def _days(later: Any, earlier: Any) -> float:
    if later is None or earlier is None:
        return math.nan
    return (_aware(later) - _aware(earlier)).total_seconds() / 86400


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _first_activity(uow: UnitOfWork, etype: EntityType, ids: Sequence[int]) -> dict[int, dt.datetime]:
    link = facts.ACTIVITY_LINK[etype]
    first = func.min(func.coalesce(Activity.start_at, Activity.completed_at, Activity.created_at))
    out: dict[int, dt.datetime] = {}
    for i in range(0, len(ids), facts.BATCH):
        stmt = (
            select(link, first).where(link.in_(ids[i : i + facts.BATCH]), Activity.deleted_at.is_(None)).group_by(link)
        )
        for rid, when in uow.session.execute(stmt):
            if isinstance(when, str):  # SQLite returns aggregates of date-times as text
                when = dt.datetime.fromisoformat(when)
            out[rid] = _aware(when)
    return out


def features(uow: UnitOfWork, etype: EntityType, record_facts: dict[int, dict[str, Any]]) -> dict[int, Features]:
    """The model's inputs for each record, from its facts (one extra grouped query)."""
    first = _first_activity(uow, etype, list(record_facts))
    out: dict[int, Features] = {}
    for rid, f in record_facts.items():
        common: Features = {
            "activity_count": float(f.get("activity_count") or 0),
            "activity_span_days": _days(f.get("last_activity_at"), f.get("created_at")),
            "response_hours": _days(first.get(rid), f.get("created_at")) * 24,
        }
        if etype is EntityType.LEAD:
            authority = f.get("has_authority")
            out[rid] = {
                **common,
                "source": str(f.get("source") or "Other"),
                "industry": str(f.get("industry") or "unknown"),
                "log_employees": _log(f.get("employees")),
                "bant_known": float(f.get("bant_known") or 0),
                "log_budget": _log(f.get("budget")),
                "has_authority": math.nan if authority is None else float(bool(authority)),
                "sentiment": _num(f.get("conversation_sentiment")),
            }
        else:
            out[rid] = {
                **common,
                "type": str(f.get("type") or "unknown"),
                "industry": str(f.get("account.industry") or "unknown"),
                "log_amount": _log(f.get("amount")),
                "log_employees": _log(f.get("account.employees")),
                "competitors": float(len(f.get("competitors") or [])),
            }
    return out


# --- data --------------------------------------------------------------------------------------------
def _labelled(etype: EntityType) -> tuple[Any, Any]:
    if etype is EntityType.LEAD:
        return Lead, Lead.status.in_([LeadStatus.CONVERTED, LeadStatus.LOST])
    if etype is EntityType.DEAL:
        return Deal, Deal.stage.in_([DealStage.CLOSED_WON, DealStage.CLOSED_LOST])
    raise ValueError(f"no model is trained for {etype.value}s (only leads and deals)")


def _label(etype: EntityType, obj: Any) -> int:
    return (
        int(obj.status is LeadStatus.CONVERTED) if etype is EntityType.LEAD else int(obj.stage is DealStage.CLOSED_WON)
    )


def load_dataset(uow: UnitOfWork, entity_type: EntityType | str) -> Dataset:
    """Every labelled record of `entity_type` with its features, oldest first (detaches what it
    loaded, so run it in a unit of work of its own)."""
    etype = EntityType(entity_type)
    model, where = _labelled(etype)
    ids = list(uow.session.scalars(select(model.id).where(where, model.deleted_at.is_(None)).order_by(model.id)))
    data = Dataset([], [], [], [])
    for i in range(0, len(ids), BATCH):
        objs = list(uow.session.scalars(select(model).where(model.id.in_(ids[i : i + BATCH]))))
        feats = features(uow, etype, facts.facts_for(uow, etype, objs))
        for obj in objs:
            data.ids.append(obj.id)
            data.features.append(feats[obj.id])
            data.labels.append(_label(etype, obj))
            data.created.append(_aware(obj.created_at))
        uow.session.expunge_all()  # keep memory flat on large histories
    order = sorted(range(len(data.ids)), key=lambda k: (data.created[k], data.ids[k]))
    return Dataset(
        [data.ids[k] for k in order],
        [data.features[k] for k in order],
        [data.labels[k] for k in order],
        [data.created[k] for k in order],
    )


def shuffled(data: Dataset, seed: int = 0) -> Dataset:
    """The same records with their outcomes permuted: what a model with no real signal sees."""
    labels = list(data.labels)
    random.Random(seed).shuffle(labels)  # noqa: S311 - a control experiment, not a secret
    return Dataset(list(data.ids), list(data.features), labels, list(data.created))


def time_split(data: Dataset, test_share: float = TEST_SHARE) -> tuple[Dataset, Dataset, dt.datetime]:
    """Oldest records to train, newest to test (data is sorted by creation); the cut-off date."""
    cut = int(len(data.ids) * (1 - test_share))

    def part(s: slice) -> Dataset:
        return Dataset(data.ids[s], data.features[s], data.labels[s], data.created[s])

    return part(slice(0, cut)), part(slice(cut, None)), data.created[cut]


def _check_enough(etype: EntityType, train: Dataset, test: Dataset) -> None:
    total = len(train.labels) + len(test.labels)
    pos = sum(train.labels) + sum(test.labels)
    if total < MIN_ROWS or min(pos, total - pos) < MIN_PER_CLASS:
        raise NotEnoughHistory(
            f"only {total} closed {etype.value}s ({pos} won/converted); the model needs at least {MIN_ROWS}, "
            f"with {MIN_PER_CLASS} of each outcome — scoring uses the rules alone"
        )
    for name, part in (("training", train), ("held-out", test)):
        if len(set(part.labels)) < 2:
            raise NotEnoughHistory(f"the {name} period has only one outcome; scoring uses the rules alone")


# --- training ----------------------------------------------------------------------------------------
def pipeline(seed: int = 0) -> Pipeline:
    return Pipeline(
        [
            ("vectorize", DictVectorizer(sparse=False)),
            (
                "classify",
                HistGradientBoostingClassifier(
                    max_iter=100,
                    learning_rate=0.05,
                    max_depth=3,
                    min_samples_leaf=40,
                    l2_regularization=1.0,
                    random_state=seed,
                ),
            ),
        ]
    )


def evaluate(fitted: Pipeline, test: Dataset) -> dict[str, float]:
    with threadpool_limits(limits=THREADS):
        probabilities = fitted.predict_proba(test.features)[:, 1]
    predicted = (probabilities >= 0.5).astype(int)
    y = np.array(test.labels)
    return {
        "roc_auc": round(float(roc_auc_score(y, probabilities)), 4),
        "precision": round(float(precision_score(y, predicted, zero_division=0)), 4),
        "recall": round(float(recall_score(y, predicted, zero_division=0)), 4),
        "f1": round(float(f1_score(y, predicted, zero_division=0)), 4),
    }


def train(
    data: Dataset, entity_type: EntityType | str, models_dir: Path, *, force: bool = False, seed: int = 0
) -> TrainingResult:
    """Fit on the older records, measure on the newer, save a versioned file; promote it to current
    only when it is at least as good as the current model (or `force`)."""
    etype = EntityType(entity_type)
    train_part, test_part, cutoff = time_split(data)
    _check_enough(etype, train_part, test_part)
    started = time.perf_counter()
    with threadpool_limits(limits=THREADS):  # a CRM host's cores serve requests too
        fitted = pipeline(seed).fit(train_part.features, train_part.labels)
    seconds = time.perf_counter() - started
    metrics: dict[str, Any] = {
        **evaluate(fitted, test_part),
        "train_rows": len(train_part.labels),
        "test_rows": len(test_part.labels),
        "positive_rate": round(sum(data.labels) / len(data.labels), 4),
        "split": f"time: trained on records created before {cutoff.date().isoformat()}, tested on the rest",
        "train_seconds": round(seconds, 3),
    }
    now = dt.datetime.now(dt.UTC)
    version = f"{etype.value}-{now:%Y%m%dT%H%M%S%f}"
    folder = models_dir / etype.value
    folder.mkdir(parents=True, exist_ok=True)
    current = registry(models_dir, etype)
    previous_auc = current["metrics"].get("roc_auc") if current else None
    if previous_auc is not None and metrics["roc_auc"] < previous_auc and not force:
        return TrainingResult(
            etype,
            version,
            metrics,
            False,
            f"kept {current['version']} (held-out ROC-AUC {previous_auc}) over the new model ({metrics['roc_auc']})"
            if current
            else "",
            previous=current,
        )
    path = folder / f"{version}.joblib"
    joblib.dump(fitted, path)
    entry = {"version": version, "file": path.name, "trained_at": now.isoformat(), "metrics": metrics}
    (folder / f"{version}.json").write_text(json.dumps(entry, indent=2))
    tmp = folder / "current.json.tmp"
    tmp.write_text(json.dumps(entry, indent=2))
    tmp.replace(folder / "current.json")  # atomic: the engine never reads half a registry
    reason = "first model" if current is None else f"replaces {current['version']} (ROC-AUC {previous_auc})"
    return TrainingResult(etype, version, metrics, True, reason + (" (forced)" if force else ""), path, current)


def train_from_database(
    uow: UnitOfWork, entity_type: EntityType | str, models_dir: Path, *, force: bool = False
) -> TrainingResult:
    return train(load_dataset(uow, entity_type), entity_type, models_dir, force=force)


# --- the current model -------------------------------------------------------------------------------
def registry(models_dir: Path | None, entity_type: EntityType | str) -> dict[str, Any] | None:
    """The current model's entry (version, file, metrics), or None."""
    if models_dir is None:
        return None
    path = models_dir / EntityType(entity_type).value / "current.json"
    try:
        entry: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return entry


@dataclass
class Predictor:
    entity_type: EntityType
    version: str
    metrics: dict[str, Any]
    fitted: Pipeline

    def predict(
        self, uow: UnitOfWork, objs: Sequence[Base], record_facts: dict[int, dict[str, Any]]
    ) -> dict[int, float]:
        """The probability of a good outcome for each record."""
        feats = features(uow, self.entity_type, record_facts)
        ids = list(feats)
        if not ids:
            return {}
        with threadpool_limits(limits=THREADS):
            probabilities = self.fitted.predict_proba([feats[i] for i in ids])[:, 1]
        return {rid: float(p) for rid, p in zip(ids, probabilities, strict=True)}


_CACHE: dict[Path, tuple[float, Predictor]] = {}


def current(models_dir: Path | None, entity_type: EntityType | str) -> Predictor | None:
    """The current model of `entity_type`, loaded once per file change; None when there is none."""
    etype = EntityType(entity_type)
    if models_dir is None or etype not in TRAINABLE:
        return None
    path = models_dir / etype.value / "current.json"
    try:
        stamp = path.stat().st_mtime
    except OSError:
        return None
    cached = _CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    entry = registry(models_dir, etype)
    if entry is None:
        return None
    try:
        fitted = joblib.load(path.parent / entry["file"])
    except (OSError, KeyError, ValueError):
        return None
    predictor = Predictor(etype, str(entry["version"]), dict(entry.get("metrics") or {}), fitted)
    _CACHE[path] = (stamp, predictor)
    return predictor


def deal_win_probabilities(uow: UnitOfWork, deals: Sequence[Deal]) -> dict[int, float | None]:
    """Each deal's chance to be won by the current deal model (None for all when there is none)."""
    from crm_backend.scoring.engine import models_dir

    predictor = current(models_dir(uow), EntityType.DEAL)
    if predictor is None or not deals:
        return {d.id: None for d in deals}
    found = predictor.predict(uow, deals, facts.facts_for(uow, EntityType.DEAL, deals))
    return {d.id: found.get(d.id) for d in deals}
