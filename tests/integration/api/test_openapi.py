"""The published OpenAPI document matches what the server really accepts and returns: it is a valid
OpenAPI 3.1 document, and real requests and responses of every collection validate against it."""

from __future__ import annotations

import functools
import itertools
import json
from typing import Any

import pytest
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate

import crm_backend.resources  # noqa: F401 - fills the registry before parametrisation
from crm_backend.api.openapi import document
from crm_backend.services.records import REGISTRY
from tests.integration.api.samples import SAMPLES
from tests.integration.conftest import Api

counter = itertools.count(1000)


@functools.cache
def published() -> OpenAPI:
    """The document the server publishes, parsed once per run (parsing takes seconds)."""
    return OpenAPI.from_dict(document())


async def spec(api: Api) -> OpenAPI:
    served = await api.ok("GET", "/api/v1/openapi.json")
    assert served == json.loads(json.dumps(document(), default=str))
    return published()


async def exchange(
    api: Api,
    openapi: OpenAPI,
    method: str,
    path: str,
    body: Any = None,
    user: str = "admin",
    status: int | None = None,
    request_valid: bool = True,
    **query: str,
) -> Any:
    """Send a real request, check both the request and the response against the document."""
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    url = path + (f"?{qs}" if qs else "")
    data = json.dumps(body) if body is not None else None
    resp = await api.call(method, url, username=user, data=data, headers={"Content-Type": "application/json"})
    raw = await resp.read()
    if status is not None:
        assert resp.status == status, (method, url, resp.status, raw[:500])
    request = MockRequest(
        "http://127.0.0.1",
        method.lower(),
        path,
        args=dict(query),
        data=data,
        headers={"Authorization": "Bearer x"},
        content_type="application/json",
    )
    if request_valid:
        openapi.validate_request(request)
    else:  # the document rejects what the server rejected
        with pytest.raises(OpenAPIError):
            openapi.validate_request(request)
    response = MockResponse(
        raw, status_code=resp.status, content_type=resp.headers.get("Content-Type", "application/json").split(";")[0]
    )
    openapi.validate_response(request, response)
    return json.loads(raw) if raw else None


async def test_document_describes_every_collection(api: Api) -> None:
    document = await api.ok("GET", "/api/v1/openapi.json")
    validate(document)
    for name in REGISTRY:
        assert f"/api/v1/{name}" in document["paths"]
    assert "/api/v1/leads/{id}/convert" in document["paths"]


@pytest.mark.parametrize("collection", sorted(SAMPLES))
async def test_real_traffic_matches_the_document(api: Api, collection: str) -> None:
    openapi = await spec(api)
    account = await exchange(api, openapi, "POST", "/api/v1/accounts", {"name": "Spec Co"}, status=201)
    territory = await exchange(api, openapi, "POST", "/api/v1/territories", {"name": "Spec land"}, status=201)
    refs = {"account": account["id"], "territory": territory["id"]}
    body = SAMPLES[collection](refs, next(counter))
    created = await exchange(api, openapi, "POST", f"/api/v1/{collection}", body, status=201, allow_duplicate="true")
    item = f"/api/v1/{collection}/{created['id']}"
    await exchange(api, openapi, "GET", item, status=200)
    await exchange(api, openapi, "GET", f"/api/v1/{collection}", status=200, limit="5")
    await exchange(api, openapi, "PATCH", item, {}, status=200)
    await exchange(api, openapi, "POST", f"/api/v1/{collection}", {"no_such_field": 1}, status=422, request_valid=False)
    await exchange(api, openapi, "GET", f"/api/v1/{collection}/999999", status=404)
    await exchange(api, openapi, "DELETE", item, status=204)


async def test_operations_match_the_document(api: Api) -> None:
    openapi = await spec(api)
    lead = await exchange(
        api,
        openapi,
        "POST",
        "/api/v1/leads",
        {"last_name": "Spec", "company": "Spec Inc", "email": "spec@example.com"},
        status=201,
    )
    await exchange(api, openapi, "POST", f"/api/v1/leads/{lead['id']}/qualify", {"budget": "100"}, status=200)
    converted = await exchange(api, openapi, "POST", f"/api/v1/leads/{lead['id']}/convert", {}, status=201)
    await exchange(
        api, openapi, "POST", f"/api/v1/deals/{converted['deal_id']}/stage", {"stage": "Proposal"}, status=200
    )
    await exchange(api, openapi, "GET", f"/api/v1/accounts/{converted['account_id']}/summary", status=200)
    await exchange(api, openapi, "GET", f"/api/v1/accounts/{converted['account_id']}/hierarchy", status=200)
    await exchange(
        api,
        openapi,
        "GET",
        "/api/v1/calendar-bookings/conflicts",
        status=200,
        start="2027-01-01T00:00:00Z",
        end="2027-01-02T00:00:00Z",
    )
