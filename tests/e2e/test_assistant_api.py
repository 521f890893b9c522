"""The assistant through its front door: gateway → Rasa → action server → CRM, all real processes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from assistant.gateway import create_app
from assistant.stack import free_port, http_ok
from crm_backend.services.auth import IDENTITY_KEY
from crm_backend.store import Store
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e

ALICE_OPEN = ("Acme - Fleet telematics", "Nimbus Labs - Platform renewal", "Initech - Analytics add-on")
BOB_OPEN = ("Globex - Data warehouse", "Umbrella - Patient portal")
NOT_OPEN_OR_NOT_ALICES = ("Acme - Pilot", *BOB_OPEN, "Globex - Legacy migration", "Stark", "Wayne", "Hooli")


def is_greeting(text: str) -> bool:
    """Either variation of utter_greet."""
    return text.startswith(("Hi!", "Hello!")) and "help" in text


def all_text(reply: dict[str, Any]) -> str:
    return "\n".join(r["text"] for r in reply["replies"])


async def post(running: Running, body: bytes | str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            running.messages_url,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=aiohttp.ClientTimeout(total=60),
        ) as resp,
    ):
        return resp.status, await resp.json()


async def rasa_user_events(running: Running, conversation_id: str) -> list[dict[str, Any]]:
    url = f"{running.settings.rasa_url}/conversations/{conversation_id}/tracker"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, params={"token": running.settings.rasa_api_token()}) as resp,
    ):
        assert resp.status == 200
        tracker = await resp.json()
    return [e for e in tracker.get("events", []) if e.get("event") == "user"]


async def test_rep_asking_for_open_deals_gets_exactly_their_own(running: Running) -> None:
    reply = await running.say("alice", "show my open deals")
    text = all_text(reply)
    assert text.startswith("You have 3 open deals")
    for name in ALICE_OPEN:
        assert name in text
    for name in NOT_OPEN_OR_NOT_ALICES:
        assert name not in text
    assert reply["conversation_id"]


async def test_another_rep_gets_their_own_deals_not_alices(running: Running) -> None:
    text = all_text(await running.say("bob", "show my open deals"))
    assert all(name in text for name in BOB_OPEN)
    assert not any(name in text for name in ALICE_OPEN)


@pytest.mark.parametrize(
    "phrasing",
    [
        "what's in my pipeline?",
        "pull up my open opps pls",
        "um can u list my deals",
        "shwo me my opne deals",
        "I need to check my pipeline before the call",
    ],
)
async def test_paraphrases_reach_the_same_skill(running: Running, phrasing: str) -> None:
    text = all_text(await running.say("alice", phrasing))
    assert all(name in text for name in ALICE_OPEN), text


async def test_conversation_continues_with_its_id(running: Running) -> None:
    first = await running.say("alice", "hello")
    second = await running.say("alice", "show me my deals", conversation_id=first["conversation_id"])
    assert second["conversation_id"] == first["conversation_id"]
    assert len(await rasa_user_events(running, first["conversation_id"])) == 2


async def test_greet_help_goodbye_and_fallback(running: Running) -> None:
    assert is_greeting(all_text(await running.say("carlos", "hey there")))
    help_reply = await running.say("carlos", "what can you do?")
    assert "my open deals" in all_text(help_reply) and "undo that" in all_text(help_reply)
    offered = {(b["title"], b["payload"]) for b in help_reply["replies"][0]["buttons"]}
    assert ("My open deals", "/list_open_deals") in offered
    assert all(b["key"] for b in help_reply["replies"][0]["buttons"])
    farewell = all_text(await running.say("carlos", "ok bye"))
    assert farewell.startswith(("Bye", "See you"))
    assert "outside what I can do" in all_text(await running.say("carlos", "what's the weather in Lisbon tomorrow"))
    # Gibberish is declined (out of scope, or below the confidence threshold): never a guess —
    # at most a question offering the likeliest requests as buttons.
    declined = await running.say("carlos", "zxqv blorp fnargh")
    text = all_text(declined)
    assert "outside what I can do" in text or "not sure I got that" in text or "didn't get that" in text
    assert "open deals (" not in text


async def test_bad_token_is_401_and_nothing_reaches_rasa(running: Running) -> None:
    cid = f"probe-{uuid.uuid4().hex}"
    status, body = await post(
        running,
        f'{{"text": "show my open deals", "conversation_id": "{cid}"}}',
        {"Authorization": "Bearer crm_not-a-real-token"},
    )
    assert status == 401
    assert body["error"]["code"] == "invalid_token"
    assert await rasa_user_events(running, cid) == []


async def test_missing_token_is_401(running: Running) -> None:
    status, body = await post(running, '{"text": "hi"}', {})
    assert (status, body["error"]["code"]) == (401, "missing_token")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "malformed_json"),
        ("[1, 2]", 400, "invalid_body"),
        ('{"txt": "hi"}', 400, "invalid_body"),
        ('{"text": "   "}', 400, "invalid_body"),
        ('{"text": 5}', 400, "invalid_body"),
        ('{"text": "hi", "conversation_id": "has spaces"}', 400, "invalid_body"),
        ('{"text": "' + "a" * 2001 + '"}', 413, "text_too_long"),
        ('{"text": "' + "a" * 70000 + '"}', 413, "payload_too_large"),
    ],
)
async def test_bad_bodies_get_clear_json_errors(running: Running, body: str, status: int, code: str) -> None:
    got_status, got = await post(running, body, running.headers("alice"))
    assert (got_status, got["error"]["code"]) == (status, code)
    assert "Traceback" not in got["error"]["message"]


async def test_another_users_conversation_is_not_found(running: Running) -> None:
    cid = (await running.say("alice", "hi"))["conversation_id"]
    status, body = await post(
        running, f'{{"text": "show my open deals", "conversation_id": "{cid}"}}', running.headers("bob")
    )
    assert (status, body["error"]["code"]) == (404, "conversation_not_found")


async def test_message_sent_straight_to_rasa_with_forged_identity_gets_no_data(running: Running) -> None:
    cid = f"forged-{uuid.uuid4().hex}"
    forged = {
        IDENTITY_KEY: {
            "claims": {"user_id": 1, "role": "admin", "channel": "api", "conversation_id": cid, "iat": 0},
            "sig": "00" * 32,
        }
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{running.settings.rasa_url}/webhooks/rest/webhook",
            json={"sender": cid, "message": "show my open deals", "metadata": forged},
        ) as resp,
    ):
        messages = await resp.json()
    text = " ".join(m.get("text", "") for m in messages)
    assert "can't tell who you are" in text
    assert not any(name in text for name in ALICE_OPEN + BOB_OPEN)


async def test_readyz_reports_every_component(running: Running) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{running.settings.gateway_url}/readyz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ready"
    assert set(body["components"]) == {"rasa", "action_server", "database"}
    assert all(c["ok"] for c in body["components"].values())


async def test_action_server_down_gives_503_and_the_gateway_stays_healthy(running: Running) -> None:
    running.stack.stop_component("actions")
    try:
        status, body = await post(running, '{"text": "show my open deals"}', running.headers("alice"))
        assert status == 503, body
        assert body["error"]["code"] == "actions_unavailable"
        assert "action server is down" in body["error"]["message"]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{running.settings.gateway_url}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"{running.settings.gateway_url}/readyz") as resp:
                ready = await resp.json()
                assert resp.status == 503
                assert ready["components"]["action_server"]["ok"] is False
                assert ready["components"]["rasa"]["ok"] is True
        # A turn that needs no action still works while the action server is away.
        assert is_greeting(all_text(await running.say("alice", "hello")))
    finally:
        running.stack.launch("actions")
        running.stack.wait_ready(["actions"])
    assert "Acme - Fleet telematics" in all_text(await running.say("alice", "show my open deals"))


async def test_rasa_unreachable_gives_503_with_a_plain_message(running: Running) -> None:
    """A second gateway (the real app, in-process) whose Rasa port has nothing listening."""
    settings = running.settings.model_copy(update={"rasa_port": free_port()})
    store = Store.from_url(settings.effective_database_url)
    server = TestServer(create_app(settings, store), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                server.make_url("/api/v1/assistant/messages"), json={"text": "hi"}, headers=running.headers("alice")
            ) as resp:
                assert resp.status == 503
                body = await resp.json()
            assert body["error"]["code"] == "assistant_unavailable"
            assert "dialogue engine is not available" in body["error"]["message"]
            async with http.get(server.make_url("/healthz")) as resp:
                assert resp.status == 200
    finally:
        await server.close()


async def test_ten_concurrent_conversations_each_get_their_own_answer(running: Running) -> None:
    users = ["alice", "bob"] * 5
    replies = await asyncio.gather(*(running.say(u, "show my open deals") for u in users))
    for user, reply in zip(users, replies, strict=True):
        expected = ALICE_OPEN if user == "alice" else BOB_OPEN
        assert all(name in all_text(reply) for name in expected)
    assert len({r["conversation_id"] for r in replies}) == 10


def test_gateway_port_serves_health_without_auth(running: Running) -> None:
    assert http_ok(f"{running.settings.gateway_url}/healthz")
