"""The knowledge base over HTTP: `/api/v1/knowledge-articles` (who writes, who reads drafts, validation,
versions) and `/api/v1/knowledge-articles/search` with the real MiniLM embedder."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from sqlalchemy import select

from assistant.embeddings import shared_embedder
from crm_backend.api.app import build_app
from crm_backend.api.openapi import document
from crm_backend.models import AuditLog
from crm_backend.services import auth, users
from tests.conftest import Demo
from tests.integration.conftest import Api

BASE = "/api/v1/knowledge-articles"
TRIAL = {
    "title": "Free trial",
    "body": "You can try Northwind Analytics free for 14 days before you pay anything. No credit card is needed.",
    "tags": ["trial"],
    "published": True,
}
MOBILE = {
    "title": "Mobile app",
    "body": "The Northwind app for iPhone and Android shows your dashboards on your phone.",
    "tags": ["mobile"],
    "published": True,
}


def add_agent(api: Api, username: str = "kit") -> None:
    with api.demo.store.unit_of_work() as uow:
        user = users.create_user(
            uow, {"username": username, "full_name": "Kit Agent", "email": f"{username}@example.com", "role": "agent"}
        )
        api.demo.tokens[username] = auth.issue_token(uow, user.id, "test")


@pytest.fixture
async def kb_api(demo: Demo) -> AsyncIterator[Api]:
    """The CRM API with the real embedder, as the gateway composes it."""
    client = TestClient(TestServer(build_app(demo.store, embedder=shared_embedder()), host="127.0.0.1"))
    await client.start_server()
    try:
        api = Api(client, demo)
        add_agent(api)
        yield api
    finally:
        await client.close()


async def search(api: Api, q: str, username: str = "alice", **params: str) -> list[dict[str, Any]]:
    body = await api.ok("GET", BASE + "/search", username=username, params={"q": q, **params})
    assert body["query"] == q
    return list(body["items"])


async def test_an_agent_writes_articles_and_a_rep_may_not(api: Api) -> None:
    add_agent(api)
    resp = await api.call("POST", BASE, username="kit", json=TRIAL)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert resp.headers["Location"] == f"{BASE}/{created['id']}" and resp.headers["ETag"] == '"1"'
    assert {k: created[k] for k in TRIAL} == TRIAL and created["version"] == 1
    item = f"{BASE}/{created['id']}"
    for method, path, body in (("POST", BASE, MOBILE), ("PATCH", item, {"title": "Mine"}), ("DELETE", item, None)):
        resp = await api.call(method, path, username="alice", json=body)
        assert resp.status == 403, (method, resp.status)
        assert (await resp.json())["error"]["code"] == "permission_denied"
    await api.ok("POST", BASE, username="maria", json=MOBILE, status=201)  # managers write too
    changed = await api.ok(
        "PATCH", item, username="kit", json={"title": "Free 14-day trial"}, headers={"If-Match": '"1"'}
    )
    assert (changed["title"], changed["version"]) == ("Free 14-day trial", 2)
    with api.demo.store.unit_of_work() as uow:  # audited like every write, with who and where
        rows = uow.session.scalars(
            select(AuditLog).where(AuditLog.entity_type == "knowledge_articles", AuditLog.entity_id == created["id"])
        ).all()
    assert [(r.action, r.channel) for r in rows] == [("create", "api"), ("update", "api")]


async def test_an_invalid_article_is_422_naming_each_field_and_nothing_is_written(api: Api) -> None:
    add_agent(api)
    bad = {"title": "", "body": "x" * 20_001, "tags": ["t" * 41], "published": "maybe"}
    resp = await api.call("POST", BASE, username="kit", json=bad)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "validation_failed"
    assert {"title", "body", "tags.0", "published"} <= set(error["fields"])
    assert (await api.call("POST", BASE, username="kit", json={"title": "No body"})).status == 422
    assert (await api.call("POST", BASE, username="kit", data=b"not json")).status == 400
    assert (await api.ok("GET", BASE, username="admin"))["total"] == 0


async def test_readers_see_published_articles_and_writers_see_drafts(api: Api) -> None:
    add_agent(api)
    published = (await api.ok("POST", BASE, username="kit", json=TRIAL, status=201))["id"]
    draft = (await api.ok("POST", BASE, username="kit", json={**MOBILE, "published": False}, status=201))["id"]
    page = await api.ok("GET", BASE, username="carlos")
    assert ([i["id"] for i in page["items"]], page["total"]) == ([published], 1)
    assert (await api.ok("GET", BASE + "?published=false", username="carlos"))["total"] == 0
    assert (await api.call("GET", f"{BASE}/{draft}", username="carlos")).status == 404
    await api.ok("GET", f"{BASE}/{published}", username="carlos")
    assert {i["id"] for i in (await api.ok("GET", BASE, username="kit"))["items"]} == {published, draft}
    assert (await api.ok("GET", BASE + "?q=iphone", username="kit"))["total"] == 1  # plain text search too


async def test_a_stale_version_is_409_and_a_deleted_article_is_gone(api: Api) -> None:
    add_agent(api)
    item = f"{BASE}/{(await api.ok('POST', BASE, username='kit', json=TRIAL, status=201))['id']}"
    await api.ok("PATCH", item, username="kit", json={"body": "Two weeks free."}, headers={"If-Match": '"1"'})
    resp = await api.call("PATCH", item, username="kit", json={"body": "Three weeks."}, headers={"If-Match": '"1"'})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "conflict"
    await api.ok("DELETE", item, username="kit", status=204, headers={"If-Match": '"2"'})
    assert (await api.call("GET", item, username="kit")).status == 404


async def test_search_without_an_embedder_is_503_with_a_sentence(api: Api) -> None:
    resp = await api.call("GET", BASE + "/search?q=trial")
    assert resp.status == 503
    error = (await resp.json())["error"]
    assert error["code"] == "search_unavailable" and error["message"].endswith(".")


async def test_search_finds_the_article_that_answers_and_follows_edits(kb_api: Api) -> None:
    trial = (await kb_api.ok("POST", BASE, username="kit", json=TRIAL, status=201))["id"]
    await kb_api.ok("POST", BASE, username="kit", json=MOBILE, status=201)
    [hit, *_] = await search(kb_api, "can i try it before paying")
    assert (hit["article_id"], hit["title"], hit["tags"]) == (trial, "Free trial", ["trial"])
    assert hit["snippet"] in TRIAL["body"] and hit["score"] >= 0.3
    assert await search(kb_api, "can you write me a poem") == []
    assert (await search(kb_api, "is there an iphone app"))[0]["title"] == "Mobile app"
    new_body = "Invoices are emailed every month; admins download past invoices as PDF in Settings > Billing."
    await kb_api.ok("PATCH", f"{BASE}/{trial}", username="kit", json={"title": "Invoices", "body": new_body})
    assert trial not in [h["article_id"] for h in await search(kb_api, "can i try it before paying")]
    assert (await search(kb_api, "where can i download old invoices"))[0]["article_id"] == trial


async def test_search_hides_drafts_from_readers_and_shows_them_to_writers_who_ask(kb_api: Api) -> None:
    draft = (await kb_api.ok("POST", BASE, username="kit", json={**TRIAL, "published": False}, status=201))["id"]
    assert await search(kb_api, "can i try it before paying") == []
    assert await search(kb_api, "can i try it before paying", username="kit") == []
    drafts = await search(kb_api, "can i try it before paying", username="kit", include_unpublished="true")
    assert [h["article_id"] for h in drafts] == [draft]
    resp = await kb_api.call("GET", BASE + "/search", params={"q": "trial", "include_unpublished": "true"})
    assert resp.status == 403


async def test_search_checks_its_parameters_and_the_caller(kb_api: Api) -> None:
    for params, status, field in (
        ({}, 422, "q"),
        ({"q": "trial", "limit": "0"}, 422, "limit"),
        ({"q": "trial", "min_score": "2"}, 422, "min_score"),
        ({"q": "trial", "limit": "three"}, 400, None),
        ({"q": "trial", "min_score": "high"}, 400, None),
    ):
        resp = await kb_api.call("GET", BASE + "/search", params=params)
        body = await resp.json()
        assert resp.status == status, (params, body)
        if field:
            assert field in body["error"]["fields"], (params, body)
    assert (await kb_api.call("GET", BASE + "/search?q=trial", username=None)).status == 401


@functools.cache
def published() -> OpenAPI:
    return OpenAPI.from_dict(document())


async def test_real_traffic_matches_the_published_document(kb_api: Api) -> None:
    spec = await kb_api.ok("GET", "/api/v1/openapi.json")
    assert {BASE, BASE + "/{id}", BASE + "/search"} <= set(spec["paths"])
    openapi = published()

    async def exchange(method: str, path: str, body: Any = None, **query: str) -> Any:
        data = json.dumps(body) if body is not None else None
        resp = await kb_api.call(method, path, username="kit", params=query, data=data)
        raw = await resp.read()
        assert resp.status < 300, (method, path, raw[:300])
        request = MockRequest(
            "http://127.0.0.1",
            method.lower(),
            path,
            args=query,
            data=data,
            headers={"Authorization": "Bearer x"},
            content_type="application/json",
        )
        openapi.validate_request(request)
        openapi.validate_response(request, MockResponse(raw, status_code=resp.status, content_type="application/json"))
        return json.loads(raw)

    created = await exchange("POST", BASE, TRIAL)
    item = f"{BASE}/{created['id']}"
    await exchange("GET", item)
    await exchange("GET", BASE, limit="5", sort="-title")
    await exchange("PATCH", item, {"tags": ["trial", "pricing"]})
    await exchange("GET", BASE + "/search", q="can i try it before paying", limit="2")
