"""The real product for end-to-end tests: action server, Rasa server (trained model) and gateway
as subprocesses on free localhost ports, over a fresh SQLite database with the demo data.

Started once per test session (Rasa takes ~25 s to load) and shared by every e2e test.
The model is the one `crm-assistant train` keeps in models/ (trained here if missing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from assistant.cli import ensure_demo_data
from assistant.settings import Settings
from assistant.stack import Stack, free_port
from assistant.training import ensure_model


@dataclass
class Running:
    settings: Settings
    stack: Stack
    tokens: dict[str, str]

    @property
    def messages_url(self) -> str:
        return f"{self.settings.gateway_url}/api/v1/assistant/messages"

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def say(self, username: str, text: str, conversation_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
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
def e2e_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    var_dir: Path = tmp_path_factory.mktemp("e2e-var")
    return Settings(
        CRM_VAR_DIR=var_dir,
        DATABASE_URL=f"sqlite:///{var_dir / 'crm.sqlite3'}",
        RASA_PORT=free_port(),
        ACTION_SERVER_PORT=free_port(),
        GATEWAY_PORT=free_port(),
        ASSISTANT_SECRET="e2e-" + var_dir.name,
    )


@pytest.fixture(scope="session")
def running(e2e_settings: Settings) -> Iterator[Running]:
    model, _ = ensure_model(e2e_settings)
    tokens = ensure_demo_data(e2e_settings)
    stack = Stack(e2e_settings, model)
    stack.start()
    try:
        yield Running(e2e_settings, stack, tokens)
    finally:
        stack.stop()
