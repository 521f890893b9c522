"""The real CRM REST app (the gateway's) served over HTTP on 127.0.0.1, on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from crm_backend.api.app import build_app
from tests.conftest import Demo


@dataclass
class Api:
    client: TestClient[Any, Any]
    demo: Demo

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.demo.tokens[username]}"}

    async def call(self, method: str, path: str, username: str | None = "alice", **kwargs: Any) -> ClientResponse:
        headers = {**(self.auth(username) if username else {}), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, username: str = "alice", status: int = 200, **kwargs: Any) -> Any:
        resp = await self.call(method, path, username, **kwargs)
        body = await resp.json() if resp.status != 204 else None
        assert resp.status == status, (resp.status, body)
        return body


@pytest.fixture
async def api(demo: Demo) -> AsyncIterator[Api]:
    client = TestClient(TestServer(build_app(demo.store), host="127.0.0.1"))
    await client.start_server()
    try:
        yield Api(client, demo)
    finally:
        await client.close()
