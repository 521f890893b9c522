"""The handoff's HTTP doors inside the real gateway app (create_app over a real database; Rasa is not
needed): the agents' REST API moves a conversation through its states and pushes the agent's words to the
user's open widget; the console's sign-in (token form with CSRF, one-time links used once), its session
cookie and CSRF header; the analytics endpoint; who may do what."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from assistant.console import CSRF_HEADER, SESSION_COOKIE, ConsoleAuth
from assistant.dialogue import Dialogue
from assistant.gateway import create_app
from assistant.settings import Settings
from assistant.stack import free_port
from crm_backend.models.conversations import HandoffState
from crm_backend.services import conversations, handoff
from tests.conftest import Demo


@contextlib.asynccontextmanager
async def serving(demo: Demo, tmp_path: Path) -> AsyncIterator[tuple[str, Settings]]:
    settings = Settings(
        CRM_VAR_DIR=tmp_path,
        ASSISTANT_SECRET="unit-secret",
        SCHEDULER_ENABLED=False,
        RASA_PORT=free_port(),
        ACTION_SERVER_PORT=free_port(),
        VOICE_ENGINE="whisper",
        WHISPER_MODEL_PATH=tmp_path / "no-model",  # voice unavailable: not under test here
    )
    app = create_app(settings, demo.store)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", settings
    finally:
        await runner.cleanup()


@pytest.fixture
async def gateway(demo: Demo, tmp_path: Path) -> AsyncIterator[tuple[str, Settings]]:
    async with serving(demo, tmp_path) as running:
        yield running


def waiting_widget_conversation(demo: Demo, session: str) -> tuple[str, int]:
    """A visitor's widget conversation that asked for a person (as the Dialogue records it)."""
    with demo.store.unit_of_work(channel="web") as uow:
        conversation_id = conversations.claim_visitor_conversation(uow, f"web-{session}", session, "web")
        handoff.remember_address(uow, conversation_id, {"session": session})
        conversations.record_turn(uow, conversation_id, "user", "can I talk to a human", sentiment=("neutral", 0.0))
        ticket = handoff.escalate(uow, conversation_id, "requested").ticket_id
    return conversation_id, ticket


def browser() -> aiohttp.ClientSession:
    """A client that keeps cookies for 127.0.0.1, as a browser does."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def call(url: str, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.request(method, url + path, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_the_rest_api_takes_replies_hands_back_and_resolves(demo: Demo, gateway: tuple[str, Settings]) -> None:
    url, _ = gateway
    conversation_id, ticket = waiting_widget_conversation(demo, "s-unit-1")
    sam = demo.tokens["sam"]
    status, queue = await call(url, "GET", "/api/v1/handoffs", sam)
    assert status == 200 and [r["ticket_id"] for r in queue["items"]] == [ticket]
    assert (await call(url, "POST", f"/api/v1/handoffs/{ticket}/reply", sam, {"text": "hi"}))[0] == 409
    status, taken = await call(url, "POST", f"/api/v1/handoffs/{ticket}/take", sam)
    assert status == 200 and taken["state"] == "agent"
    assert (await call(url, "POST", f"/api/v1/handoffs/{ticket}/take", demo.tokens["admin"]))[0] == 409
    assert (await call(url, "POST", f"/api/v1/handoffs/{ticket}/reply", sam, {"text": "  "}))[0] == 422
    assert (await call(url, "POST", f"/api/v1/handoffs/{ticket}/reply", sam, {"text": "Hello, Sam here"}))[0] == 200
    status, view = await call(url, "GET", f"/api/v1/handoffs/{ticket}", sam)
    assert [t["speaker"] for t in view["turns"]][-1] == "agent" and view["turns"][-1]["text"] == "Hello, Sam here"
    status, back = await call(url, "POST", f"/api/v1/handoffs/{ticket}/hand-back", sam, {"note": "done"})
    assert status == 200 and back["state"] == "bot"
    status, resolved = await call(url, "POST", f"/api/v1/handoffs/{ticket}/resolve", sam)
    assert status == 200 and resolved["state"] == "closed"
    with demo.store.unit_of_work(read_only=True) as uow:
        assert handoff.state_of(uow, conversation_id) is HandoffState.CLOSED


async def test_an_agents_reply_reaches_the_users_open_widget(demo: Demo, gateway: tuple[str, Settings]) -> None:
    url, settings = gateway
    async with browser() as http, http.ws_connect(f"{url}/widget/ws", headers={"Origin": url}) as ws:
        session = http.cookie_jar.filter_cookies(URL(url))  # the widget's signed session cookie
        assert session
        await ws.send_json({"type": "history"})
        assert (await ws.receive_json(timeout=10))["type"] == "history"
        from channels.web import SessionSigner

        signer = SessionSigner("unit-secret")
        cookie = next(iter(session.values())).value
        visitor = signer.resolve(cookie)
        _conversation_id, ticket = waiting_widget_conversation(demo, visitor.id)
        sam = demo.tokens["sam"]
        await call(url, "POST", f"/api/v1/handoffs/{ticket}/take", sam)
        joined = await ws.receive_json(timeout=10)
        assert joined["type"] == "replies" and joined["push"] and "joined" in joined["replies"][0]["text"]
        await call(url, "POST", f"/api/v1/handoffs/{ticket}/reply", sam, {"text": "How can I help?"})
        reply = await ws.receive_json(timeout=10)
        assert reply["replies"][0]["text"] == "sam: How can I help?"
        # After a reload the widget's history still says who wrote the agent's turn.
        dialogue = Dialogue(settings, demo.store, None, None)  # type: ignore[arg-type] # history reads the store only
        turns = await dialogue.history(_conversation_id)
        assert turns[-1]["speaker"] == "agent" and turns[-1]["text"] == "sam: How can I help?"


async def test_reps_get_403_and_strangers_401(demo: Demo, gateway: tuple[str, Settings]) -> None:
    url, _ = gateway
    assert (await call(url, "GET", "/api/v1/handoffs", demo.tokens["alice"]))[0] == 403
    assert (await call(url, "GET", "/api/v1/handoffs", None))[0] == 401
    assert (await call(url, "GET", "/api/v1/analytics/assistant", demo.tokens["alice"]))[0] == 403
    status, report = await call(url, "GET", "/api/v1/analytics/assistant?start=2026-11-01", demo.tokens["maria"])
    assert status == 200 and report["start"] == "2026-11-01" and "by_channel" in report
    assert (await call(url, "GET", "/api/v1/analytics/assistant?start=yesterday", demo.tokens["maria"]))[0] == 422


async def test_console_sign_in_needs_the_forms_csrf_token_and_links_work_once(
    demo: Demo, gateway: tuple[str, Settings]
) -> None:
    url, settings = gateway
    async with browser() as http:
        async with http.get(f"{url}/console") as resp:
            page = await resp.text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        async with http.post(f"{url}/console/login", data={"token": demo.tokens["sam"], "csrf": "wrong"}) as resp:
            assert resp.status == 403
            csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())  # every form has a fresh token
        assert csrf is not None
        async with http.post(f"{url}/console/login", data={"token": "crm_not-a-token", "csrf": csrf.group(1)}) as resp:
            assert resp.status == 401
            csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert csrf is not None
        async with http.post(
            f"{url}/console/login", data={"token": demo.tokens["sam"], "csrf": csrf.group(1)}, allow_redirects=False
        ) as resp:
            assert resp.status == 303 and SESSION_COOKIE in resp.cookies
            assert "httponly" in str(resp.cookies[SESSION_COOKIE]).lower()
        async with http.get(f"{url}/console") as resp:
            page = await resp.text()
        token = re.search(r'data-csrf="([^"]+)"', page)
        assert token is not None
        async with http.get(f"{url}/console/api/handoffs") as resp:
            assert resp.status == 200
        async with http.post(f"{url}/console/api/handoffs/1/take") as resp:
            assert resp.status == 403  # no CSRF header
        async with http.post(f"{url}/console/api/handoffs/99999/take", headers={CSRF_HEADER: token.group(1)}) as resp:
            assert resp.status == 404
    # One-time links: a rep's is refused; an agent's works once.
    auth = ConsoleAuth(settings)
    link = f"{url}/console/login?code=" + auth.login_link_code(demo.actor("sam").user_id)
    rep_link = f"{url}/console/login?code=" + auth.login_link_code(demo.actor("alice").user_id)
    async with browser() as http:
        async with http.get(rep_link, allow_redirects=False) as resp:
            assert resp.status == 403
        async with http.get(link, allow_redirects=False) as resp:
            assert resp.status == 303
        async with http.get(link, allow_redirects=False) as resp:
            assert resp.status == 401
        async with http.get(f"{url}/console/login?code=forged", allow_redirects=False) as resp:
            assert resp.status == 401


async def test_the_console_sees_a_new_handoff_live(demo: Demo, gateway: tuple[str, Settings]) -> None:
    url, settings = gateway
    link = f"{url}/console/login?code=" + ConsoleAuth(settings).login_link_code(demo.actor("sam").user_id)
    async with browser() as http:
        async with http.get(link) as resp:
            assert resp.status == 200
        async with http.ws_connect(f"{url}/console/ws") as live:
            _conversation, ticket = waiting_widget_conversation(demo, "s-live")
            await call(url, "POST", f"/api/v1/handoffs/{ticket}/take", demo.tokens["sam"])
            events = [json.loads((await live.receive(timeout=10)).data) for _ in range(2)]
    assert {e["type"] for e in events} <= {"turn", "queue"} and any(e["type"] == "queue" for e in events)


async def test_a_user_waiting_past_the_sla_is_told_once_and_offered_a_callback(demo: Demo, tmp_path: Path) -> None:
    import datetime as dt

    from sqlalchemy import select

    from assistant.console import tell_overdue
    from assistant.handoff import SLA_MISSED
    from crm_backend.models.channels import ConversationTurn

    conversation_id, _ticket = waiting_widget_conversation(demo, "s-late")
    app = create_app(Settings(CRM_VAR_DIR=tmp_path, ASSISTANT_SECRET="unit-secret"), demo.store)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)
    assert await tell_overdue(app, now=dt.datetime.now(dt.UTC)) == 0  # not late yet
    assert await tell_overdue(app, now=later) == 1
    assert await tell_overdue(app, now=later) == 0  # told once
    with demo.store.unit_of_work(read_only=True) as uow:
        said = uow.session.scalars(
            select(ConversationTurn.text).where(ConversationTurn.conversation_id == conversation_id)
        ).all()
    assert said.count(SLA_MISSED) == 1
