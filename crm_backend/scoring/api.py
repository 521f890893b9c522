"""Scoring over HTTP: a record's score with its explanation, a recompute, and the current models."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from crm_backend.api.http import ApiError, json_response, record_id
from crm_backend.api.operations import operation
from crm_backend.api.routes import run
from crm_backend.models.automation import EntityScore, EntityType
from crm_backend.scoring import engine, model
from crm_backend.services import records
from crm_backend.store import UnitOfWork

TYPES = "lead|deal|contact|account"
COLLECTION = {t: f"{t.value}s" for t in EntityType}
SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "entity_type": {"type": "string"},
        "entity_id": {"type": "integer"},
        "score": {"type": "integer"},
        "grade": {"type": ["string", "null"]},
        "rule_score": {"type": "integer"},
        "model_probability": {"type": ["number", "null"]},
        "model_version": {"type": ["string", "null"]},
        "previous_score": {"type": ["integer", "null"]},
        "explanation": {"type": "object"},
        "computed_at": {"type": "string", "format": "date-time"},
    },
}


def _entity_type(request: web.Request) -> EntityType:
    return EntityType(request.match_info["entity_type"])


def _visible(uow: UnitOfWork, etype: EntityType, rid: int) -> None:
    records.get_record(uow, records.resource(COLLECTION[etype]), rid)  # NotFound (404) unless visible


def as_json(row: EntityScore) -> dict[str, Any]:
    return {
        "entity_type": row.entity_type.value,
        "entity_id": row.entity_id,
        "score": row.score,
        "grade": row.grade,
        "rule_score": row.rule_score,
        "model_probability": row.model_probability,
        "model_version": row.model_version,
        "rule_set_id": row.rule_set_id,
        "previous_score": row.previous_score,
        "explanation": row.explanation,
        "computed_at": row.computed_at.isoformat(),
    }


@operation(
    "GET",
    f"/scores/{{entity_type:{TYPES}}}/{{id:\\d+}}",
    tag="scoring",
    summary="A lead's, deal's, contact's or account's score with the rules and model behind it",
    response=SCORE_SCHEMA,
)
async def get_score(request: web.Request) -> web.Response:
    etype, rid = _entity_type(request), record_id(request)

    def work(uow: UnitOfWork) -> dict[str, Any] | None:
        _visible(uow, etype, rid)
        row = uow.session.scalar(
            select(EntityScore).where(EntityScore.entity_type == etype, EntityScore.entity_id == rid)
        )
        return as_json(row) if row is not None else None

    found = await run(request, work, read_only=True)
    if found is None:
        raise ApiError(404, "not_scored", f"The {etype.value} has no score yet; POST .../recompute to score it.")
    return json_response(found)


@operation(
    "POST",
    f"/scores/{{entity_type:{TYPES}}}/{{id:\\d+}}/recompute",
    tag="scoring",
    summary="Score a record again now (rules and model) and return the new score",
    response=SCORE_SCHEMA,
)
async def recompute_score(request: web.Request) -> web.Response:
    etype, rid = _entity_type(request), record_id(request)

    def work(uow: UnitOfWork) -> dict[str, Any] | None:
        obj = records.get_record(uow, records.resource(COLLECTION[etype]), rid)
        row = engine.score_records(uow, etype, [obj]).get(rid)
        return as_json(row) if row is not None else None

    found = await run(request, work)
    if found is None:
        raise ApiError(409, "not_configured", f"No active scoring rule or trained model scores {etype.value}s yet.")
    return json_response(found)


@operation("GET", "/scoring-models", tag="scoring", summary="The current trained scoring model per entity type")
async def scoring_models(request: web.Request) -> web.Response:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        uow.require_actor()
        folder = engine.models_dir(uow)
        items = []
        for etype in model.TRAINABLE:
            entry = model.registry(folder, etype)
            items.append(
                {
                    "entity_type": etype.value,
                    "version": entry["version"] if entry else None,
                    "trained_at": entry.get("trained_at") if entry else None,
                    "metrics": entry["metrics"] if entry else None,
                    "blend": {"rule_weight": engine.RULE_WEIGHT, "model_weight": engine.MODEL_WEIGHT}
                    if entry
                    else {"rule_weight": 1.0, "model_weight": 0.0},
                }
            )
        return {"items": items}

    return json_response(await run(request, work, read_only=True))
