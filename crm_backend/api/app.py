"""The CRM REST application: error middleware, the store, and every /api/v1 route."""

from __future__ import annotations

from aiohttp import web

from crm_backend.api.http import MAX_BODY_BYTES, STORE, errors_as_json
from crm_backend.api.knowledge import EMBEDDER
from crm_backend.api.openapi import add_openapi_route
from crm_backend.api.routes import add_routes
from crm_backend.services.knowledge import Embedder
from crm_backend.store import Store


def build_app(store: Store, *, embedder: Embedder | None = None) -> web.Application:
    """An aiohttp app serving the CRM API over `store`; the gateway adds the assistant to it.
    `embedder` powers knowledge-base search (without one, search answers 503)."""
    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY_BYTES)
    app[STORE] = store
    if embedder is not None:
        app[EMBEDDER] = embedder
    add_openapi_route(app)
    add_routes(app)
    return app
