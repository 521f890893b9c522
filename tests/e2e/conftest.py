"""The real product for end-to-end tests: action server, Rasa server (trained model) and gateway
as subprocesses on free localhost ports, over a fresh SQLite database with the demo data, with the
Slack and Telegram channels switched on and pointed at local fake platform servers.

Started once per test session (Rasa takes ~25 s to load) and shared by every e2e test.
The model is the one `crm-assistant train` keeps in models/ (trained here if missing).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from assistant.cli import ensure_demo_data
from assistant.settings import Settings
from assistant.stack import Stack
from assistant.training import ensure_model
from tests.fakes.platforms import SLACK_SIGNING_SECRET, TELEGRAM_WEBHOOK_SECRET, stack_settings
from tests.fakes.server import FakeServer
from tests.fakes.slack_api import slack_routes
from tests.fakes.telegram_api import telegram_routes

__all__ = ["EMBEDDING_SITE", "SLACK_SIGNING_SECRET", "TELEGRAM_WEBHOOK_SECRET", "Running"]
EMBEDDING_SITE = "https://shop.example.test"  # a site allowed to embed the widget


@dataclass
class Running:
    settings: Settings
    stack: Stack
    tokens: dict[str, str]
    slack: FakeServer
    telegram: FakeServer

    @property
    def messages_url(self) -> str:
        return f"{self.settings.gateway_url}/api/v1/assistant/messages"

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def new_user(self, prefix: str = "rep") -> str:
        """A fresh rep with an API token, for tests whose outcome depends on which chat accounts a user has
        linked (the demo users are linked by other tests too)."""
        from assistant.settings import open_store
        from crm_backend.models.users import Role
        from crm_backend.services import auth, users

        username = f"{prefix}{uuid.uuid4().hex[:8]}"
        store = open_store(self.settings)
        try:
            with store.unit_of_work(channel="cli") as uow:
                user = users.create_user(
                    uow,
                    {
                        "username": username,
                        "full_name": username.title(),
                        "email": f"{username}@e2e.example.com",
                        "role": Role.REP,
                    },
                )
                self.tokens[username] = auth.issue_token(uow, user.id, "e2e")
        finally:
            store.dispose()
        return username

    def link_code(self, username: str) -> str:
        """A one-time code that links a chat account to `username` (through the REST API)."""
        import urllib.request

        request = urllib.request.Request(  # noqa: S310 - our own gateway on 127.0.0.1
            f"{self.settings.gateway_url}/api/v1/me/link-codes",
            data=b"{}",
            method="POST",
            headers={**self.headers(username), "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            return str(json.loads(resp.read())["code"])

    async def say(
        self, username: str, text: str | None = None, conversation_id: str | None = None, *, button: str | None = None
    ) -> dict[str, Any]:
        """One turn through the REST channel: `text`, or a click on the button whose `key` is `button`."""
        body: dict[str, Any] = {"text": text} if button is None else {"button": button}
        if conversation_id:
            body["conversation_id"] = conversation_id
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.messages_url, json=body, headers=self.headers(username), timeout=aiohttp.ClientTimeout(total=60)
            ) as resp,
        ):
            assert resp.status == 200, await resp.text()
            data: dict[str, Any] = await resp.json()
            return data


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[FakeServer]:
    server = FakeServer(slack_routes).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_telegram() -> Iterator[FakeServer]:
    server = FakeServer(telegram_routes).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def e2e_settings(
    tmp_path_factory: pytest.TempPathFactory, fake_slack: FakeServer, fake_telegram: FakeServer
) -> Settings:
    var_dir: Path = tmp_path_factory.mktemp("e2e-var")
    return stack_settings(var_dir, fake_slack, fake_telegram, WIDGET_ALLOWED_ORIGINS=EMBEDDING_SITE)


@pytest.fixture(scope="session")
def running(e2e_settings: Settings, fake_slack: FakeServer, fake_telegram: FakeServer) -> Iterator[Running]:
    model, _ = ensure_model(e2e_settings)
    tokens = ensure_demo_data(e2e_settings)
    stack = Stack(e2e_settings, model)
    stack.start()
    try:
        yield Running(e2e_settings, stack, tokens, fake_slack, fake_telegram)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def chat(running: Running) -> Any:
    """A Telegram user's side of the chat with the bot, through the fake Bot API (one per test module)."""
    from tests.e2e.test_telegram_channel import Chat

    return Chat(running)
