"""REST routes: one collection per resource (list, get, create, patch, delete) and the seeds'
operations (convert and qualify a lead, move a deal's stage, an account's hierarchy and 360°
summary, currency conversion, calendar conflicts)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from crm_backend import events, transfer
from crm_backend.api import operations
from crm_backend.api.http import (
    STORE,
    ApiError,
    authenticate,
    in_unit_of_work,
    json_response,
    query_datetime,
    read_object,
    record_id,
    whole_number,
)
from crm_backend.api.operations import operation, query_param
from crm_backend.services import accounts, calendar, currencies, deals, leads, records
from crm_backend.services.records import ListQuery, Resource
from crm_backend.store import UnitOfWork

PREFIX = "/api/v1"
RESERVED = {"limit", "offset", "q", "sort", "format", "allow_duplicate", "partial"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def expected_version(request: web.Request) -> int | None:
    """The version the client's change is based on: `If-Match: "3"` or `?version=3`."""
    raw = request.headers.get("If-Match") or request.query.get("version")
    if raw is None or raw.strip() == "*":
        return None
    return whole_number(raw.strip().removeprefix("W/").strip('"'), "If-Match / version")


def list_query(request: web.Request) -> ListQuery:
    q = request.query
    return ListQuery(
        filters={k: v for k, v in q.items() if k not in RESERVED},
        q=q.get("q") or None,
        sort=q.get("sort") or None,
        limit=whole_number(q.get("limit", "50"), "limit"),
        offset=whole_number(q.get("offset", "0"), "offset"),
    )


def _etag(data: dict[str, Any]) -> dict[str, str]:
    return {"ETag": f'"{data["version"]}"'} if "version" in data else {}


async def run(request: web.Request, work: Callable[[UnitOfWork], Any], *, read_only: bool = False) -> Any:
    actor = await authenticate(request)
    return await in_unit_of_work(request.app[STORE], actor, work, read_only=read_only)


def settled(uow: UnitOfWork, res: Resource, obj: Any) -> dict[str, Any]:
    """The record as the engines leave it (its score, macro changes), not as the request wrote it."""
    events.settle(uow)
    return records.serialize(res, obj)


def collection_handlers(res: Resource) -> dict[str, Handler]:
    async def list_(request: web.Request) -> web.Response:
        query = list_query(request)

        def work(uow: UnitOfWork) -> dict[str, Any]:
            page = records.list_records(uow, res, query)
            return {
                "items": [records.serialize(res, o) for o in page.items],
                "total": page.total,
                "limit": query.limit,
                "offset": query.offset,
            }

        return json_response(await run(request, work, read_only=True))

    async def get(request: web.Request) -> web.Response:
        rid = record_id(request)
        data = await run(request, lambda uow: records.serialize(res, records.get_record(uow, res, rid)), read_only=True)
        return json_response(data, headers=_etag(data))

    async def create(request: web.Request) -> web.Response:
        await authenticate(request)
        body = await read_object(request)
        allow_duplicate = request.query.get("allow_duplicate", "").lower() in ("1", "true", "yes")
        data = await run(
            request,
            lambda uow: settled(uow, res, records.create_record(uow, res, body, allow_duplicate=allow_duplicate)),
        )
        headers = {"Location": f"{PREFIX}/{res.name}/{data['id']}", **_etag(data)}
        return json_response(data, status=201, headers=headers)

    async def patch(request: web.Request) -> web.Response:
        rid, version = record_id(request), expected_version(request)
        await authenticate(request)
        body = await read_object(request)
        data = await run(request, lambda uow: settled(uow, res, records.update_record(uow, res, rid, body, version)))
        return json_response(data, headers=_etag(data))

    async def delete(request: web.Request) -> web.Response:
        rid, version = record_id(request), expected_version(request)
        await run(request, lambda uow: records.delete_record(uow, res, rid, version))
        return web.Response(status=204)

    return {"list": list_, "get": get, "create": create, "patch": patch, "delete": delete}


# --- the seeds' operations -------------------------------------------------------------------------
@operation(
    "POST",
    "/leads/{id:\\d+}/convert",
    tag="leads",
    summary="Convert a lead into an account, contact and deal",
    body=leads.Conversion,
    status=201,
)
async def convert_lead(request: web.Request) -> web.Response:
    rid = record_id(request)
    await authenticate(request)
    body = await read_object(request)
    return json_response(await run(request, lambda uow: leads.convert(uow, rid, body)), status=201)


@operation(
    "POST",
    "/leads/{id:\\d+}/qualify",
    tag="leads",
    summary="Record BANT answers (Qualified when all four are known)",
    body=leads.Qualification,
)
async def qualify_lead(request: web.Request) -> web.Response:
    rid = record_id(request)
    await authenticate(request)
    body = await read_object(request)
    res = records.resource("leads")
    return json_response(await run(request, lambda uow: settled(uow, res, leads.qualify(uow, rid, body))))


@operation(
    "POST",
    "/deals/{id:\\d+}/stage",
    tag="deals",
    summary="Move a deal to a stage (probability follows unless given)",
    body=deals.StageChange,
)
async def deal_stage(request: web.Request) -> web.Response:
    rid = record_id(request)
    await authenticate(request)
    body = await read_object(request)
    if "version" not in body and (version := expected_version(request)) is not None:
        body["version"] = version
    res = records.resource("deals")
    return json_response(await run(request, lambda uow: settled(uow, res, deals.change_stage(uow, rid, body))))


@operation(
    "GET", "/accounts/{id:\\d+}/hierarchy", tag="accounts", summary="The account with its ancestors and descendants"
)
async def account_hierarchy(request: web.Request) -> web.Response:
    rid = record_id(request)
    return json_response(await run(request, lambda uow: accounts.hierarchy(uow, rid), read_only=True))


@operation(
    "GET",
    "/accounts/{id:\\d+}/summary",
    tag="accounts",
    summary="The 360° view: contacts, open deals, activities, tickets",
)
async def account_summary(request: web.Request) -> web.Response:
    rid = record_id(request)
    return json_response(await run(request, lambda uow: accounts.summary(uow, rid), read_only=True))


@operation(
    "POST",
    "/currencies/convert",
    tag="currencies",
    summary="Convert an amount through the base currency",
    body=currencies.ConversionRequest,
)
async def convert_currency(request: web.Request) -> web.Response:
    await authenticate(request)
    body = await read_object(request)
    return json_response(await run(request, lambda uow: currencies.convert(uow, body), read_only=True))


@operation(
    "GET",
    "/calendar-bookings/conflicts",
    tag="calendar-bookings",
    summary="Bookings overlapping a time window",
    params=(
        query_param("start", {"type": "string", "format": "date-time"}, "window start", required=True),
        query_param("end", {"type": "string", "format": "date-time"}, "window end", required=True),
        query_param("user_id", {"type": "integer"}, "whose calendar (default: yours)"),
    ),
)
async def booking_conflicts(request: web.Request) -> web.Response:
    actor = await authenticate(request)
    start, end = query_datetime(request, "start"), query_datetime(request, "end")
    user_id = whole_number(request.query.get("user_id", str(actor.user_id)), "user_id")
    res = records.resource("calendar-bookings")

    def work(uow: UnitOfWork) -> dict[str, Any]:
        if user_id != actor.user_id:
            records.get_record(uow, records.resource("users"), user_id)  # must exist
        found = calendar.conflicts(uow, user_id, start, end)
        visible_ids = {
            b.id
            for b in uow.session.scalars(records.scoped(res, actor).where(res.id_column.in_([b.id for b in found])))
        }
        items = [
            records.serialize(res, b)
            if b.id in visible_ids
            else {"id": None, "title": "Busy", "start_at": b.start_at.isoformat(), "end_at": b.end_at.isoformat()}
            for b in found
        ]
        return {"items": items, "total": len(items)}

    return json_response(await run(request, work, read_only=True))


async def import_records(request: web.Request) -> web.Response:
    """`POST /{entity}/import?format=csv|json&partial=true`: the file is the request body."""
    entity = request.match_info["entity"]
    actor = await authenticate(request)
    fmt = request.query.get("format") or ("json" if request.content_type == "application/json" else "csv")
    partial = request.query.get("partial", "").lower() in ("1", "true", "yes")
    mapping = {k.removeprefix("map."): v for k, v in request.query.items() if k.startswith("map.")}
    raw = await request.read()

    def work() -> dict[str, Any]:
        text = io.StringIO(raw.decode("utf-8", errors="strict"), newline="")
        rows = transfer.read_json(text) if fmt == "json" else transfer.read_csv(text, entity, mapping)
        report = transfer.import_rows(request.app[STORE], actor, entity, rows, partial=partial)
        return report.as_dict()

    try:
        report = await asyncio.to_thread(work)
    except UnicodeDecodeError as exc:
        raise ApiError(
            422, "validation_failed", "The file is not UTF-8 text.", fields={"file": f"not UTF-8 at byte {exc.start}"}
        ) from exc
    return json_response(report, status=200 if report["committed"] else 422)


async def export_records(request: web.Request) -> web.StreamResponse:
    """`GET /{entity}/export?format=csv|json` (plus any list filters): what the caller may see."""
    entity = request.match_info["entity"]
    actor = await authenticate(request)
    fmt = request.query.get("format", "csv")
    filters = {k: v for k, v in request.query.items() if k not in RESERVED}

    def work() -> str:
        out = io.StringIO(newline="")
        transfer.export_rows(request.app[STORE], actor, entity, out, fmt, filters)
        return out.getvalue()

    body = await asyncio.to_thread(work)
    content_type = "application/json" if fmt == "json" else "text/csv"
    return web.Response(
        text=body,
        content_type=content_type,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{entity}.{fmt}"'},
    )


def add_routes(app: web.Application) -> None:
    """Every CRM route under /api/v1, in an order where fixed paths win over `{id}`."""
    import crm_backend.resources  # noqa: F401 - fills the registry

    r = app.router
    for op in operations.load():
        r.add_route(op.method, PREFIX + op.path, op.handler)
    importable = "|".join(transfer.IMPORTABLE)
    r.add_post(PREFIX + "/{entity:" + importable + "}/import", import_records)
    r.add_get(PREFIX + "/{entity:" + importable + "}/export", export_records)
    for res in records.REGISTRY.values():
        h = collection_handlers(res)
        base = f"{PREFIX}/{res.name}"
        r.add_get(base, h["list"])
        r.add_get(base + "/{id:\\d+}", h["get"])
        if res.writable:
            r.add_post(base, h["create"])
            r.add_patch(base + "/{id:\\d+}", h["patch"])
            r.add_delete(base + "/{id:\\d+}", h["delete"])
