"""REST operations of the macro engine: run a macro on a record (or dry-run it) and read its run log."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from crm_backend.api.http import authenticate, json_response, read_object, record_id, whole_number
from crm_backend.api.operations import operation, query_param
from crm_backend.api.routes import run
from crm_backend.macros import engine
from crm_backend.models.automation import Macro
from crm_backend.services import records
from crm_backend.services.validation import validated
from crm_backend.store import UnitOfWork


class RunRequest(BaseModel):
    """Which record to run the macro on (a record of the macro's entity type)."""

    model_config = ConfigDict(extra="forbid")

    entity_id: int


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _macro(uow: UnitOfWork, macro_id: int) -> Macro:
    found: Macro = records.get_record(uow, records.resource("macros"), macro_id)
    return found


@operation(
    "POST",
    "/macros/{id:\\d+}/run",
    tag="macros",
    summary="Run a macro on one record (all or nothing); dry_run=true shows what would change",
    body=RunRequest,
    params=(query_param("dry_run", {"type": "boolean"}, "do everything, then roll back; nothing is written"),),
)
async def run_macro(request: web.Request) -> web.Response:
    macro_id = record_id(request)
    dry_run = _flag(request, "dry_run")
    await authenticate(request)
    body = validated(RunRequest, await read_object(request))

    def work(uow: UnitOfWork) -> dict[str, Any]:
        return engine.run_macro(uow, _macro(uow, macro_id), body.entity_id, dry_run=dry_run).as_dict()

    return json_response(await run(request, work))


@operation(
    "GET",
    "/macros/{id:\\d+}/runs",
    tag="macros",
    summary="A macro's run log, newest first: status, steps, changes and errors",
    params=(
        query_param("limit", {"type": "integer", "minimum": 1, "maximum": records.MAX_LIMIT}, "page size (default 50)"),
        query_param("offset", {"type": "integer", "minimum": 0}, "runs to skip"),
    ),
)
async def macro_runs(request: web.Request) -> web.Response:
    macro_id = record_id(request)
    limit = whole_number(request.query.get("limit", "50"), "limit")
    offset = whole_number(request.query.get("offset", "0"), "offset")

    def work(uow: UnitOfWork) -> dict[str, Any]:
        items, total = engine.runs(uow, _macro(uow, macro_id), limit=limit, offset=offset)
        return {"items": [engine.run_as_dict(r) for r in items], "total": total, "limit": limit, "offset": offset}

    return json_response(await run(request, work, read_only=True))
