"""HTTP plumbing shared by every route: JSON in and out, the bearer token, and the one mapping of
domain errors to HTTP statuses. Errors are `{"error": {"code", "message", "fields"?}}`, never a
stack trace."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from crm_backend.errors import (
    AuthenticationFailed,
    Conflict,
    CrmError,
    Duplicate,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from crm_backend.services.auth import authenticate_token
from crm_backend.store import Actor, Store, UnitOfWork

log = logging.getLogger(__name__)

STORE = web.AppKey("store", Store)
ACTOR = web.RequestKey("crm_actor", Actor)
MAX_BODY_BYTES = 16 * 1024 * 1024  # the largest request any route accepts (document uploads, imports)
T = TypeVar("T")


class ApiError(Exception):
    """An error answer: HTTP status, a stable code and a sentence for people."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON with non-ASCII text (€, names) kept readable."""
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return json_response({"error": {"code": code, "message": message, **extra}}, status=status, headers=headers)


def as_api_error(error: CrmError) -> ApiError:
    """The one place a domain error becomes an HTTP answer."""
    if isinstance(error, ValidationFailed):
        return ApiError(422, "validation_failed", error.message, fields=error.fields)
    if isinstance(error, Duplicate):
        return ApiError(409, "duplicate", error.message, candidates=error.candidates)
    if isinstance(error, Conflict):
        return ApiError(409, "conflict", error.message)
    if isinstance(error, NotFound):
        return ApiError(404, "not_found", error.message)
    if isinstance(error, PermissionDenied):
        return ApiError(403, "permission_denied", error.message)
    if isinstance(error, AuthenticationFailed):
        return ApiError(401, "invalid_token", error.message)
    return ApiError(400, "bad_request", error.message)


@web.middleware
async def errors_as_json(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)
    except CrmError as exc:
        api = as_api_error(exc)
        return error_response(api.status, api.code, api.message, **api.extra)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "payload_too_large", "The request body is too large.")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side. Please try again.")


async def in_unit_of_work(
    store: Store, actor: Actor | None, work: Callable[[UnitOfWork], T], channel: str = "api", *, read_only: bool = False
) -> T:
    """Run blocking database work in a thread, inside one transaction (read-only ones never wait)."""

    def run() -> T:
        with store.unit_of_work(actor=actor, channel=channel, read_only=read_only) as uow:
            return work(uow)

    return await asyncio.to_thread(run)


async def authenticate(request: web.Request) -> Actor:
    """The CRM user behind the request's bearer token (cached on the request)."""
    if ACTOR in request:
        actor: Actor = request[ACTOR]
        return actor
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing_token", "Send your API token as 'Authorization: Bearer <token>'.")
    try:
        actor = await in_unit_of_work(request.app[STORE], None, lambda uow: authenticate_token(uow, token.strip()))
    except AuthenticationFailed as exc:
        raise ApiError(401, "invalid_token", exc.message) from exc
    request[ACTOR] = actor
    return actor


async def read_json(request: web.Request, max_bytes: int = MAX_BODY_BYTES) -> Any:
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "payload_too_large", f"The request body is larger than {max_bytes} bytes.")
    raw = await request.read()
    if len(raw) > max_bytes:
        raise ApiError(413, "payload_too_large", f"The request body is larger than {max_bytes} bytes.")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", "The request body is not valid JSON.") from exc


async def read_object(request: web.Request, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    body = await read_json(request, max_bytes)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "Send a JSON object.")
    return body


# --- request parameters --------------------------------------------------------------------------
def whole_number(value: str, name: str) -> int:
    """`value` as an int, or a 400 naming the parameter."""
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number.") from None


def query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    """An optional whole-number query parameter (`default` when absent or empty)."""
    raw = request.query.get(name)
    return default if raw is None or raw == "" else whole_number(raw, name)


def query_datetime(request: web.Request, name: str) -> dt.datetime:
    """A required ISO 8601 query parameter; a date-time without a zone is taken as UTC."""
    raw = request.query.get(name)
    if not raw:
        raise ApiError(400, "invalid_parameter", f"Give {name} as an ISO 8601 date-time.")
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} is not an ISO 8601 date-time.") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def record_id(request: web.Request) -> int:
    """The `{id}` of the route."""
    return whole_number(request.match_info["id"], "The id")
