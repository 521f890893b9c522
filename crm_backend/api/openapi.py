"""The OpenAPI 3.1 document, generated from the same registry and schemas the server validates with,
so what it publishes is what the server accepts. Served at GET /api/v1/openapi.json."""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from crm_backend import transfer
from crm_backend.api import operations
from crm_backend.api.http import json_response
from crm_backend.services import records
from crm_backend.services.records import Resource

REF = "#/components/schemas/{model}"
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "candidates": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
OBJECT = {"type": "object"}


def _ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {
        400: "Malformed request",
        401: "Missing or invalid token",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict (stale version or duplicate)",
        413: "Too large",
        422: "Validation failed",
    }
    return {str(s): _json(_ref("Error"), words[s]) for s in statuses}


def _param(name: str, schema: dict[str, Any], description: str, where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema, "description": description}


ID = _param("id", {"type": "integer"}, "record id", "path")
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": 'the version the change is based on, e.g. "3" (409 if stale)',
}


def _collection_paths(res: Resource) -> dict[str, Any]:
    read, create, update = res.read_schema.__name__, res.create_schema.__name__, res.update_schema.__name__
    page = {
        "type": "object",
        "required": ["items", "total"],
        "properties": {
            "items": {"type": "array", "items": _ref(read)},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    }
    params = [
        _param("limit", {"type": "integer", "minimum": 1, "maximum": records.MAX_LIMIT, "default": 50}, "page size"),
        _param("offset", {"type": "integer", "minimum": 0, "default": 0}, "rows to skip"),
        _param("sort", {"type": "string", "enum": [*res.sort, *[f"-{s}" for s in res.sort]]}, "sort field"),
    ]
    if res.search:
        params.append(_param("q", {"type": "string"}, f"text search over {', '.join(res.search)}"))
    for f in res.filters:
        params.append(_param(f, {"type": "string"}, f"filter on {f} (also {f}__gte, __lte, __in, __ne)"))
    tag = [res.name]
    collection: dict[str, Any] = {
        "get": {
            "tags": tag,
            "summary": f"List {res.name}",
            "parameters": params,
            "responses": {"200": _json(page, "a page"), **_errors(401, 422)},
        }
    }
    item: dict[str, Any] = {
        "parameters": [ID],
        "get": {
            "tags": tag,
            "summary": f"Get a {res.noun}",
            "responses": {"200": _json(_ref(read), res.noun), **_errors(401, 404)},
        },
    }
    if res.writable:
        collection["post"] = {
            "tags": tag,
            "summary": f"Create a {res.noun}",
            "parameters": [_param("allow_duplicate", {"type": "boolean"}, "create even if it looks like a twin")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(create)}}},
            "responses": {"201": _json(_ref(read), "created"), **_errors(400, 401, 403, 409, 413, 422)},
        }
        item["patch"] = {
            "tags": tag,
            "summary": f"Change a {res.noun}",
            "parameters": [IF_MATCH],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(update)}}},
            "responses": {"200": _json(_ref(read), "changed"), **_errors(400, 401, 403, 404, 409, 422)},
        }
        item["delete"] = {
            "tags": tag,
            "summary": f"Delete a {res.noun}",
            "parameters": [IF_MATCH],
            "responses": {"204": {"description": "deleted"}, **_errors(401, 403, 404, 409)},
        }
    return {f"/api/v1/{res.name}": collection, f"/api/v1/{res.name}/{{id}}": item}


def _operation(tag: str, summary: str, body: type[BaseModel] | None, ok: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": [tag],
        "summary": summary,
        "responses": {ok: _json(OBJECT, "result"), **_errors(400, 401, 403, 404, 409, 422)},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return op


def _allows_null(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "null":
        return True
    return any(_allows_null(s) for s in schema.get("anyOf", []) if isinstance(s, dict))


def _drop_null_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """A field that may be left out but never sent as null has no default to publish."""
    props = schema.get("properties", {})
    for prop in props.values():
        if isinstance(prop, dict) and "default" in prop and prop["default"] is None and not _allows_null(prop):
            del prop["default"]
    return schema


@cache
def document() -> dict[str, Any]:
    import crm_backend.resources  # noqa: F401 - fills the registry

    resources = list(records.REGISTRY.values())
    ops = operations.load()
    models: list[type[BaseModel]] = list(dict.fromkeys(op.body for op in ops if op.body is not None))
    for res in resources:
        models += [res.create_schema, res.update_schema, res.read_schema]
    _, defs = models_json_schema(
        [(m, "validation" if not m.__name__.endswith("Read") else "serialization") for m in models], ref_template=REF
    )
    schemas = {name: _drop_null_defaults(schema) for name, schema in defs.get("$defs", {}).items()}
    schemas["Error"] = ERROR
    paths: dict[str, Any] = {}
    for res in resources:
        paths.update(_collection_paths(res))
    for op in ops:
        spec = _operation(op.tag, op.summary, op.body, str(op.status))
        spec["responses"][str(op.status)] = {
            "description": "result",
            "content": {op.content_type: {"schema": op.response}},
        }
        if op.params:
            spec["parameters"] = list(op.params)
        item = paths.setdefault(f"/api/v1{op.openapi_path}", {})
        if op.path_params:
            item["parameters"] = [
                _param(name, schema, "record id" if name == "id" else name.replace("_", " "), "path")
                for name, schema in op.path_params.items()
            ]
        item[op.method.lower()] = spec
    for entity in transfer.IMPORTABLE:
        report = {"type": "object", "required": ["entity", "total", "created", "rejected", "duplicates", "committed"]}
        paths[f"/api/v1/{entity}/import"] = {
            "post": {
                "tags": [entity],
                "summary": f"Import {entity} from CSV or JSON (all-or-nothing unless partial=true)",
                "parameters": [
                    _param("format", {"type": "string", "enum": ["csv", "json"]}, "file format"),
                    _param("partial", {"type": "boolean"}, "write the good rows even if some are rejected"),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/csv": {"schema": {"type": "string"}},
                        "application/json": {"schema": {"type": "array"}},
                    },
                },
                "responses": {
                    "200": _json(report, "imported"),
                    "422": _json(report, "nothing written: see the report"),
                    **_errors(400, 401, 403, 413),
                },
            }
        }
        paths[f"/api/v1/{entity}/export"] = {
            "get": {
                "tags": [entity],
                "summary": f"Export the {entity} you may see",
                "parameters": [_param("format", {"type": "string", "enum": ["csv", "json"]}, "file format")],
                "responses": {
                    "200": {
                        "description": "the file",
                        "content": {
                            "text/csv": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"type": "array"}},
                        },
                    },
                    **_errors(401, 422),
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "crm-assistant CRM API",
            "version": "1",
            "description": "Every collection: list (filters, q, sort, limit/offset), get, create, patch "
            "(If-Match), delete. Errors: {error: {code, message, fields?}}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


async def openapi_json(_request: web.Request) -> web.Response:
    return json_response(document())


def add_openapi_route(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi_json)
