"""The API's signal, health and segment operations (the signal and feed lists are the `sales-signals`
and `feeds` collections)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from crm_backend.api.http import STORE, authenticate, json_response, read_object, record_id
from crm_backend.api.operations import operation
from crm_backend.api.routes import run
from crm_backend.errors import PermissionDenied
from crm_backend.models.base import utcnow
from crm_backend.models.users import Role
from crm_backend.services import records
from crm_backend.services.validation import validated
from crm_backend.signals import health, segments, sweep
from crm_backend.store import Actor, UnitOfWork

TAG = "signals"
MANAGERS = (Role.MANAGER, Role.ADMIN)


class SegmentRequest(BaseModel):
    """Recompute the segments; `k` fixes their number, otherwise it is chosen by silhouette (2–6)."""

    model_config = ConfigDict(extra="forbid")
    k: int | None = Field(default=None, ge=2, le=10)


def _require_manager(actor: Actor) -> None:
    if actor.role not in MANAGERS:
        raise PermissionDenied("Only managers and admins may do this.")


def account_health(uow: UnitOfWork, account_id: int) -> dict[str, Any]:
    """The account's health as stored; computed on the spot (not stored) if it never was."""
    account = records.get_record(uow, records.resource("accounts"), account_id)  # NotFound unless visible
    explanation = account.health_explanation or {}
    out: dict[str, Any] = {"account_id": account.id, "name": account.name, "segment": account.segment}
    if account.health_score is not None and "drivers" in explanation:
        return {
            **out,
            "health_score": account.health_score,
            "churn_risk": account.churn_risk,
            "drivers": explanation["drivers"],
            "computed_at": explanation.get("computed_at"),
            "stored": True,
        }
    now = utcnow()
    fresh = health.assess(health.features_for(uow, [account], now)[account.id], now)
    return {
        **out,
        "health_score": fresh.score,
        "churn_risk": fresh.churn_risk,
        "drivers": fresh.drivers,
        "computed_at": fresh.computed_at.isoformat(),
        "stored": False,
    }


async def _body(request: web.Request) -> dict[str, Any]:
    return await read_object(request) if request.can_read_body else {}


@operation(
    "GET",
    "/accounts/{id:\\d+}/health",
    tag=TAG,
    summary="An account's health score, churn risk and what drives them",
)
async def get_health(request: web.Request) -> web.Response:
    rid = record_id(request)
    return json_response(await run(request, lambda uow: account_health(uow, rid), read_only=True))


@operation("POST", "/accounts/health/recompute", tag=TAG, summary="Recompute every account's health (managers)")
async def recompute_health(request: web.Request) -> web.Response:
    _require_manager(await authenticate(request))
    now = utcnow()
    return json_response({"updated": await run(request, lambda uow: health.recompute_all(uow, now))})


@operation(
    "POST",
    "/accounts/segments/recompute",
    tag=TAG,
    summary="Segment the accounts with k-means (managers)",
    body=SegmentRequest,
)
async def recompute_segments(request: web.Request) -> web.Response:
    _require_manager(await authenticate(request))
    body = validated(SegmentRequest, await _body(request))
    now = utcnow()
    result = await run(request, lambda uow: segments.segment(uow, now, body.k))
    return json_response(result.as_dict())


@operation("GET", "/accounts/segments", tag=TAG, summary="The account segments with sizes and descriptions")
async def list_segments(request: web.Request) -> web.Response:
    items = await run(request, segments.list_segments, read_only=True)
    return json_response({"items": items})


@operation("POST", "/sales-signals/sweep", tag=TAG, summary="Run the signal sweep now (managers)")
async def run_sweep(request: web.Request) -> web.Response:
    _require_manager(await authenticate(request))
    store = request.app[STORE]
    now = utcnow()

    result = await asyncio.to_thread(sweep.sweep, store, now, sweep.SETTINGS)
    return json_response({"signals": result.signals, "accounts": result.accounts})
