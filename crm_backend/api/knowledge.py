"""The knowledge base over REST: the `knowledge-articles` collection (list, get, create, patch, delete,
shaped like every generic collection) and `GET /knowledge-articles/search?q=...` for the agent
console's search box. The rules live in `crm_backend.services.knowledge`; the collection is declared
here rather than in the registry because its read rule (drafts only for writers) is not one of the
registry's visibilities.

Search needs an embedder, which the process composing the app hands to `build_app` (the CRM never
loads a model itself); without one the search answers 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from crm_backend.api.http import STORE, ApiError, json_response, query_int, read_object, record_id
from crm_backend.api.operations import operation, query_param
from crm_backend.api.routes import PREFIX, expected_version, list_query, run
from crm_backend.errors import ValidationFailed
from crm_backend.services import knowledge
from crm_backend.services.knowledge import ArticleCreate, ArticleRead, ArticleUpdate, Embedder
from crm_backend.store import UnitOfWork

TAG = "knowledge-articles"
EMBEDDER: web.AppKey[Embedder] = web.AppKey("knowledge_embedder")
READ = ArticleRead.model_json_schema(mode="serialization")
PAGE = {
    "type": "object",
    "required": ["items", "total"],
    "properties": {
        "items": {"type": "array", "items": READ},
        "total": {"type": "integer"},
        "limit": {"type": "integer"},
        "offset": {"type": "integer"},
    },
}
HITS = {
    "type": "object",
    "required": ["query", "items", "min_score"],
    "properties": {
        "query": {"type": "string"},
        "min_score": {"type": "number"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["article_id", "title", "snippet", "score", "tags"],
                "properties": {
                    "article_id": {"type": "integer"},
                    "title": {"type": "string"},
                    "snippet": {"type": "string"},
                    "score": {"type": "number"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
LIST_PARAMS = (
    query_param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "page size"),
    query_param("offset", {"type": "integer", "minimum": 0, "default": 0}, "rows to skip"),
    query_param(
        "sort",
        {"type": "string", "enum": [*knowledge.ARTICLES.sort, *[f"-{s}" for s in knowledge.ARTICLES.sort]]},
        "sort field",
    ),
    query_param("q", {"type": "string"}, "text search over title and body (for meaning, use /search)"),
    query_param("published", {"type": "boolean"}, "drafts (false) are listed to agents, managers and admins only"),
)


def _headers(data: dict[str, Any]) -> dict[str, str]:
    return {"ETag": f'"{data["version"]}"'}


@operation("GET", "/knowledge-articles", tag=TAG, summary="List knowledge articles", params=LIST_PARAMS, response=PAGE)
async def list_articles(request: web.Request) -> web.Response:
    query = list_query(request)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        page = knowledge.list_articles(uow, query)
        items = [knowledge.serialize(a) for a in page.items]
        return {"items": items, "total": page.total, "limit": query.limit, "offset": query.offset}

    return json_response(await run(request, work, read_only=True))


@operation(
    "POST",
    "/knowledge-articles",
    tag=TAG,
    summary="Write a knowledge article (agents, managers, admins)",
    body=ArticleCreate,
    status=201,
    response=READ,
)
async def create_article(request: web.Request) -> web.Response:
    body = await read_object(request)
    data = await run(request, lambda uow: knowledge.serialize(knowledge.create_article(uow, body)))
    return json_response(
        data, status=201, headers={"Location": f"{PREFIX}/knowledge-articles/{data['id']}", **_headers(data)}
    )


@operation("GET", "/knowledge-articles/{id:\\d+}", tag=TAG, summary="Get a knowledge article", response=READ)
async def get_article(request: web.Request) -> web.Response:
    rid = record_id(request)
    data = await run(request, lambda uow: knowledge.serialize(knowledge.get_article(uow, rid)), read_only=True)
    return json_response(data, headers=_headers(data))


@operation(
    "PATCH",
    "/knowledge-articles/{id:\\d+}",
    tag=TAG,
    summary="Change a knowledge article (If-Match: its version)",
    body=ArticleUpdate,
    response=READ,
)
async def patch_article(request: web.Request) -> web.Response:
    rid, version = record_id(request), expected_version(request)
    body = await read_object(request)
    data = await run(request, lambda uow: knowledge.serialize(knowledge.update_article(uow, rid, body, version)))
    return json_response(data, headers=_headers(data))


@operation("DELETE", "/knowledge-articles/{id:\\d+}", tag=TAG, summary="Delete a knowledge article", status=204)
async def delete_article(request: web.Request) -> web.Response:
    rid, version = record_id(request), expected_version(request)
    await run(request, lambda uow: knowledge.delete_article(uow, rid, version))
    return web.Response(status=204)


@operation(
    "GET",
    "/knowledge-articles/search",
    tag=TAG,
    summary="Articles that answer a question, best first (semantic search; [] when none is close enough)",
    params=(
        query_param("q", {"type": "string", "minLength": 1}, "the question, in the asker's words", required=True),
        query_param("limit", {"type": "integer", "minimum": 1, "maximum": knowledge.MAX_LIMIT}, "at most this many"),
        query_param(
            "min_score",
            {"type": "number", "minimum": -1, "maximum": 1},
            f"the least cosine similarity (default {knowledge.DEFAULT_MIN_SCORE})",
        ),
        query_param("include_unpublished", {"type": "boolean"}, "drafts too (agents, managers, admins)"),
    ),
    response=HITS,
)
async def search_articles(request: web.Request) -> web.Response:
    embedder = request.app.get(EMBEDDER)
    if embedder is None:
        raise ApiError(
            503,
            "search_unavailable",
            "Knowledge search is not available: this server has no embedding model configured.",
        )
    q = request.query.get("q", "")
    limit = query_int(request, "limit")
    raw_score = request.query.get("min_score")
    try:
        min_score = knowledge.DEFAULT_MIN_SCORE if raw_score in (None, "") else float(raw_score)
    except ValueError:
        raise ApiError(400, "invalid_parameter", "min_score must be a number.") from None
    if not -1 <= min_score <= 1:
        raise ValidationFailed({"min_score": "must be between -1 and 1"})
    drafts = request.query.get("include_unpublished", "").lower() in ("1", "true", "yes")

    def work(uow: UnitOfWork) -> dict[str, Any]:
        hits = knowledge.search(
            uow,
            embedder,
            q,
            limit=3 if limit is None else limit,
            min_score=min_score,
            include_unpublished=drafts,
            refresh=False,
        )
        return {"query": q, "min_score": min_score, "items": [h.as_dict() for h in hits]}

    # Articles edited since the last search are embedded again first (the model runs outside any
    # transaction; the vectors are written in a short one); the search itself only reads.
    await asyncio.to_thread(knowledge.refresh_in, request.app[STORE], embedder)
    return json_response(await run(request, work, read_only=True))
