"""The API's operations beyond plain collections ("convert this lead", "run this macro", "forecast
Q3"): each is declared once, with its route, request model and summary, and both the router and the
OpenAPI document are built from these declarations.

Engines declare theirs in their own `api` module (listed in `MODULES`) with `@operation(...)`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Modules whose import declares operations (besides crm_backend.api.routes itself).
MODULES: tuple[str, ...] = (
    "crm_backend.scoring.api",
    "crm_backend.macros.api",
    "crm_backend.forecasting.api",
    "crm_backend.scheduler.api",
    "crm_backend.signals.api",
    "crm_backend.api.identities",
    "crm_backend.api.knowledge",
)


@dataclass(frozen=True)
class Operation:
    method: str  # GET, POST, ...
    path: str  # under /api/v1, aiohttp syntax: "/macros/{id:\\d+}/run"
    handler: Handler
    tag: str
    summary: str
    body: type[BaseModel] | None = None  # the JSON request model, if any
    params: tuple[dict[str, Any], ...] = ()  # OpenAPI query parameters
    status: int = 200  # the success status
    response: dict[str, Any] = field(default_factory=lambda: {"type": "object"})  # success JSON schema
    content_type: str = "application/json"  # of the success response

    @property
    def openapi_path(self) -> str:
        return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", self.path)

    @property
    def path_params(self) -> dict[str, dict[str, Any]]:
        """Each path parameter's JSON schema: `{id:\\d+}` an integer, `{kind:a|b}` one of the words."""
        out: dict[str, dict[str, Any]] = {}
        for name, pattern in re.findall(r"\{(\w+)(?::([^}]*))?\}", self.path):
            if pattern in ("\\d+", ""):
                out[name] = {"type": "integer"} if pattern else {"type": "string"}
            elif re.fullmatch(r"[\w-]+(\|[\w-]+)*", pattern):
                out[name] = {"type": "string", "enum": pattern.split("|")}
            else:
                out[name] = {"type": "string", "pattern": f"^{pattern}$"}
        return out


OPERATIONS: list[Operation] = []


def operation(method: str, path: str, *, tag: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
    """Declare the decorated handler as `method path` (see `Operation` for the options)."""

    def register(handler: Handler) -> Handler:
        key = (method.upper(), path)
        if any((o.method, o.path) == key for o in OPERATIONS):
            raise ValueError(f"operation {method} {path} is declared twice")
        OPERATIONS.append(Operation(method.upper(), path, handler, tag, summary, **options))
        return handler

    return register


def query_param(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def load() -> list[Operation]:
    """Every declared operation, fixed paths before parameterised ones."""
    import crm_backend.api.routes  # noqa: F401 - declares the seeds' operations

    for module in MODULES:
        importlib.import_module(module)
    return sorted(OPERATIONS, key=lambda o: ("{" in o.path, o.path))
