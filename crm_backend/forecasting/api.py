"""REST operations of the forecasting engine: the forecast, storing a snapshot, the backtest."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from crm_backend.api.http import ApiError, authenticate, json_response, read_object
from crm_backend.api.operations import operation, query_param
from crm_backend.api.routes import run
from crm_backend.forecasting import backtest, service
from crm_backend.services.validation import validated
from crm_backend.store import UnitOfWork

TAG = "forecasts"
PERIOD = query_param("period", {"type": "string", "example": "2026-Q3"}, "2026-Q3, 2026-07 or 2026 (default: now)")
METHOD = query_param("method", {"type": "string", "enum": ["weighted", "historical", "ai", "all"]}, "default: all")
BY = query_param("by", {"type": "string", "enum": ["owner", "team", "territory"]}, "split the figure")
TERRITORY = query_param("territory_id", {"type": "integer"}, "only this territory and its descendants")
OWNER = query_param("owner_id", {"type": "integer"}, "only this owner's deals")
CURRENCY = query_param("currency", {"type": "string", "pattern": "^[A-Za-z]{3}$"}, "default: the base currency")


class SnapshotRequest(BaseModel):
    """Which forecast to compute and store."""

    model_config = ConfigDict(extra="forbid")

    period: str | None = Field(default=None, max_length=10, examples=["2026-Q3"])
    method: str | None = Field(default=None, pattern="^(weighted|historical|ai|all)$")
    by: str | None = Field(default=None, pattern="^(owner|team|territory)$")
    territory_id: int | None = None
    owner_id: int | None = None
    currency: str | None = Field(default=None, pattern="^[A-Za-z]{3}$")


def _int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number.") from None


def _options(request: web.Request) -> dict[str, Any]:
    q = request.query
    return {
        "method": q.get("method") or None,
        "by": q.get("by") or None,
        "territory_id": _int(request, "territory_id"),
        "owner_id": _int(request, "owner_id"),
        "currency": q.get("currency") or None,
    }


@operation(
    "GET",
    "/forecasts",
    tag=TAG,
    summary="Forecast a period by weighted pipeline, history and AI, with intervals, manual figures and actuals",
    params=(PERIOD, METHOD, BY, TERRITORY, OWNER, CURRENCY),
)
async def get_forecast(request: web.Request) -> web.Response:
    await authenticate(request)
    period, options = request.query.get("period") or None, _options(request)
    return json_response(await run(request, lambda uow: service.forecast(uow, period, **options), read_only=True))


@operation(
    "POST",
    "/forecasts/snapshot",
    tag=TAG,
    summary="Compute a forecast and store it as sales / territory forecast records",
    body=SnapshotRequest,
    status=201,
)
async def post_snapshot(request: web.Request) -> web.Response:
    await authenticate(request)
    body = validated(SnapshotRequest, await read_object(request))

    def work(uow: UnitOfWork) -> dict[str, Any]:
        return service.snapshot(uow, **body.model_dump())

    return json_response(await run(request, work), status=201)


@operation(
    "GET",
    "/forecasts/backtest",
    tag=TAG,
    summary="Replay past periods and report each method's MAPE",
    params=(
        query_param("periods", {"type": "integer", "minimum": 1, "maximum": backtest.MAX_PERIODS}, "default 8"),
        query_param("period_type", {"type": "string", "enum": ["month", "quarter", "year"]}, "default quarter"),
        TERRITORY,
        OWNER,
        CURRENCY,
    ),
)
async def get_backtest(request: web.Request) -> web.Response:
    await authenticate(request)
    periods = _int(request, "periods") or 8
    kind = request.query.get("period_type") or "quarter"
    options = {k: v for k, v in _options(request).items() if k not in ("method", "by")}

    def work(uow: UnitOfWork) -> dict[str, Any]:
        return backtest.run(uow, periods=periods, period_type=kind, **options)

    return json_response(await run(request, work, read_only=True))
