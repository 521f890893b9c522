"""Score records: rules (see `rules`) blended with the trained model (see `model`), written as
`EntityScore` rows with their explanation; a lead's score is mirrored into `Lead.score`.

    score = round(RULE_WEIGHT × rule score + MODEL_WEIGHT × 100 × model probability)

when a current model exists for the entity type (leads and deals), else the rule score alone.

`Lead.score` is derived data, so it is written without bumping the lead's version: a user editing
a lead must not get a conflict because the scorer ran in between. Changes to `entity_scores` are
ordinary tracked changes (origin "scoring"), so macros and signals can react to a new grade.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from crm_backend import events, facts
from crm_backend.models.automation import EntityScore, EntityType
from crm_backend.models.base import Base, utcnow
from crm_backend.models.leads import Lead
from crm_backend.scoring import model as scoring_model
from crm_backend.scoring.rules import RuleBook, clamp, rule_book
from crm_backend.store import Store, UnitOfWork

RULE_WEIGHT = 0.5
MODEL_WEIGHT = 0.5
BATCH = 1000
LEADS = cast(Table, Lead.__table__)


def models_dir(uow: UnitOfWork) -> Path | None:
    """Where the trained models live: the store's `models_dir` (set by the processes that serve)."""
    store = uow.store
    return getattr(store, "models_dir", None) if store is not None else None


def score_records(
    uow: UnitOfWork,
    entity_type: EntityType | str,
    objs: Sequence[Base],
    *,
    book: RuleBook | None = None,
    now: dt.datetime | None = None,
) -> dict[int, EntityScore]:
    """Score `objs` (all of `entity_type`, already flushed) and upsert their `EntityScore` rows."""
    etype = EntityType(entity_type)
    if not objs:
        return {}
    now = now or dt.datetime.now(dt.UTC)
    book = book or rule_book(uow, etype)
    predictor = scoring_model.current(models_dir(uow), etype)
    if not configured(book, predictor):
        return {}  # nothing scores this entity type: leave imported or hand-set scores alone
    record_facts = facts.facts_for(uow, etype, objs)
    probabilities = predictor.predict(uow, objs, record_facts) if predictor is not None else {}
    session = uow.session
    ids = list(record_facts)
    existing = {
        s.entity_id: s
        for s in session.scalars(
            select(EntityScore).where(EntityScore.entity_type == etype, EntityScore.entity_id.in_(ids))
        )
    }
    out: dict[int, EntityScore] = {}
    lead_scores: list[dict[str, int]] = []
    with events.origin(session, "scoring"):
        for rid, record in record_facts.items():
            rule_score, fired = book.score(record, now)
            probability = probabilities.get(rid)
            explanation: dict[str, Any] = {
                "rules": fired,
                "model": None,
                "blend": {"rule_weight": 1.0, "model_weight": 0.0},
            }
            total = rule_score
            if predictor is not None and probability is not None:
                total = clamp(RULE_WEIGHT * rule_score + MODEL_WEIGHT * 100 * probability)
                explanation["model"] = {
                    "version": predictor.version,
                    "probability": round(probability, 4),
                    "auc": predictor.metrics.get("roc_auc"),
                }
                explanation["blend"] = {"rule_weight": RULE_WEIGHT, "model_weight": MODEL_WEIGHT}
            if book.broken:
                explanation["skipped_rules"] = list(book.broken)
            row = existing.get(rid)
            if row is None:
                row = EntityScore(entity_type=etype, entity_id=rid, previous_score=None)
                session.add(row)
            elif row.score != total:
                row.previous_score = row.score
            row.score = total
            row.grade = book.grade(total)
            row.rule_score = rule_score
            row.model_probability = probability
            row.model_version = predictor.version if predictor is not None and probability is not None else None
            row.rule_set_id = book.rule_set_id
            row.explanation = explanation
            row.computed_at = utcnow()
            out[rid] = row
            if etype is EntityType.LEAD and record.get("score") != total:
                lead_scores.append({"lead_id": rid, "new_score": total})
        if lead_scores:
            _mirror_lead_scores(uow, lead_scores, {int(o.id): o for o in objs})  # type: ignore[attr-defined]
    return out


def configured(book: RuleBook, predictor: scoring_model.Predictor | None) -> bool:
    """Whether anything scores the entity type: an active rule (even a broken one) or a model."""
    return bool(book.rules or book.broken) or predictor is not None


def scores_type(uow: UnitOfWork, entity_type: EntityType | str) -> bool:
    """Whether an active rule or a trained model scores `entity_type` now (else a recompute does nothing)."""
    etype = EntityType(entity_type)
    return configured(rule_book(uow, etype), scoring_model.current(models_dir(uow), etype))


def stored_score(uow: UnitOfWork, entity_type: EntityType | str, entity_id: int) -> EntityScore | None:
    """The record's current score row (None when it was never scored); the caller checks visibility."""
    return uow.session.scalar(
        select(EntityScore).where(
            EntityScore.entity_type == EntityType(entity_type), EntityScore.entity_id == entity_id
        )
    )


def clear_scores(uow: UnitOfWork, entity_type: EntityType | str) -> int:
    """Forget the scores of an entity type nothing scores any more (its last rule went)."""
    rows = list(uow.session.scalars(select(EntityScore).where(EntityScore.entity_type == EntityType(entity_type))))
    with events.origin(uow.session, "scoring"):
        for row in rows:
            uow.session.delete(row)
    return len(rows)


def _mirror_lead_scores(uow: UnitOfWork, rows: list[dict[str, int]], objs: dict[int, Base]) -> None:
    stmt = update(LEADS).where(LEADS.c.id == bindparam("lead_id")).values(score=bindparam("new_score"))
    uow.session.execute(stmt, rows)
    for row in rows:  # keep the loaded objects in step without marking them changed
        obj = objs.get(row["lead_id"])
        if obj is not None:
            set_committed_value(obj, "score", row["new_score"])


def score_ids(
    uow: UnitOfWork, entity_type: EntityType | str, ids: Sequence[int], *, book: RuleBook | None = None
) -> int:
    """Score the (not deleted) records with these ids, in batches; return how many were scored."""
    etype = EntityType(entity_type)
    model: Any = facts.MODELS[etype]
    book = book or rule_book(uow, etype)
    if not configured(book, scoring_model.current(models_dir(uow), etype)):
        return 0  # cheap way out: nothing scores this entity type
    done = 0
    for i in range(0, len(ids), BATCH):
        chunk = list(ids[i : i + BATCH])
        stmt = select(model).where(model.id.in_(chunk))
        if hasattr(model, "deleted_at"):
            stmt = stmt.where(model.deleted_at.is_(None))
        objs = list(uow.session.scalars(stmt))
        score_records(uow, etype, objs, book=book)
        done += len(objs)
    return done


def all_ids(uow: UnitOfWork, entity_type: EntityType | str) -> list[int]:
    model: Any = facts.MODELS[EntityType(entity_type)]
    stmt = select(model.id).order_by(model.id)
    if hasattr(model, "deleted_at"):
        stmt = stmt.where(model.deleted_at.is_(None))
    return list(uow.session.scalars(stmt))


def score_all(store: Store, entity_type: EntityType | str, *, batch: int = BATCH) -> Iterator[int]:
    """Re-score every record of `entity_type`, one transaction per batch; yields the running count."""
    etype = EntityType(entity_type)
    with store.unit_of_work(None, "cli", read_only=True) as uow:
        ids = all_ids(uow, etype)
    done = 0
    for i in range(0, len(ids), batch):
        with store.unit_of_work(None, "cli") as uow:
            done += score_ids(uow, etype, ids[i : i + batch])
        yield done


def score_count(uow: UnitOfWork, entity_type: EntityType | str) -> int:
    stmt = select(func.count(EntityScore.id)).where(EntityScore.entity_type == EntityType(entity_type))
    return int(uow.session.scalar(stmt) or 0)
