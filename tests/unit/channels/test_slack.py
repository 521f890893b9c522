"""The Slack channel: Block Kit rendering and the routing rules as pure functions, then the adapter
inside the real gateway app (create_app, a real Dialogue over a SQLite CRM, the official Slack clients
pointed at the fake Web API). Rasa is not running here, so these turns end at the Dialogue: linking,
refusals, duplicates and the "not available" sentence. Conversations through Rasa are in
tests/e2e/test_slack_channel.py."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from assistant.gateway import create_app
from assistant.messages import Button, Outcome, Reply
from assistant.settings import Settings
from assistant.stack import free_port
from channels import ChannelMisconfigured
from channels.slack import SLACK, SlackDeliverer, Target, audio_clip, is_person_speaking, mount, visibility
from channels.slack_blocks import (
    SECTION_LIMIT,
    ButtonOrigin,
    batches,
    chosen,
    escape,
    fallback_text,
    notification_blocks,
    plain_text,
    reply_blocks,
    split_text,
)
from crm_backend.scheduler.delivery import NotificationView
from crm_backend.services import identities
from tests.conftest import Demo
from tests.fakes.server import Call, FakeServer
from tests.fakes.slack_api import (
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    blocks_problem,
    command_form,
    control,
    event_body,
    mention_event,
    message_event,
    new_id,
    post_signed,
    slack_routes,
)

SECRET = "unit-slack-signing-secret"
QUIET_SECONDS = 0.6  # how long "nothing happens" is watched for


# --- rendering ----------------------------------------------------------------------------------


def test_names_with_slacks_control_characters_are_escaped() -> None:
    blocks = reply_blocks([Reply("Deal A&B <Co> for *Bold_&_Co*")], ButtonOrigin(""))
    assert blocks == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Deal A&amp;B &lt;Co&gt; for *Bold_&amp;_Co*"}}
    ]
    assert blocks_problem(blocks) is None
    assert escape("<@U1> & <!channel>") == "&lt;@U1&gt; &amp; &lt;!channel&gt;"  # no mention can be smuggled in


def test_slack_text_is_read_as_the_user_typed_it() -> None:
    raw = "<@UBOT> log a call with A&amp;B &lt;Co&gt; see <https://x.example/a|the doc> cc <@U2|dana> in <#C1|sales>"
    assert plain_text(raw, BOT_USER_ID) == "log a call with A&B <Co> see the doc cc @dana in #sales"
    assert plain_text("<@UBOT>", BOT_USER_ID) == ""
    assert plain_text("mail <mailto:a@b.example|a@b.example> <!here>") == "mail a@b.example @here"


def test_buttons_carry_the_server_issued_keys_not_payloads() -> None:
    reply = Reply("Move it?", (Button("Yes", "k-yes", "/affirm"), Button("No", "k-no", "/deny")))
    blocks = reply_blocks([reply], ButtonOrigin("1700.1"))
    actions = blocks[-1]
    assert actions["type"] == "actions" and actions["block_id"] == "crm:m:1700.1:1"
    assert [(e["action_id"], e["text"]["text"], e["value"]) for e in actions["elements"]] == [
        ("crm_button_1", "Yes", "k-yes"),
        ("crm_button_2", "No", "k-no"),
    ]
    assert "/affirm" not in json.dumps(blocks)


def test_action_ids_stay_unique_across_replies_and_big_button_sets_split() -> None:
    many = tuple(Button(f"Option {n}", f"k{n}") for n in range(30))
    blocks = reply_blocks([Reply("Pick one", many), Reply("Or", (Button("x" * 100, "kx"),))], ButtonOrigin("", True))
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [len(a["elements"]) for a in actions] == [25, 5, 1]
    assert [a["block_id"] for a in actions] == ["crm:c::1", "crm:c::2", "crm:c::3"]
    assert actions[-1]["elements"][0]["text"]["text"].endswith("…")
    assert len(actions[-1]["elements"][0]["text"]["text"]) == 75
    assert blocks_problem(blocks) is None


def test_rows_render_as_a_short_escaped_list() -> None:
    reply = Reply("Your open deals:", rows=(("Acme <Pilot>", "Negotiation", "$48,000"), ("B&Q", "", "$1")))
    blocks = reply_blocks([reply], ButtonOrigin(""))
    assert blocks[1]["text"]["text"] == "• Acme &lt;Pilot&gt; · Negotiation · $48,000\n• B&amp;Q · $1"


def test_long_text_is_split_within_slacks_limit_and_never_inside_an_entity() -> None:
    text = escape(("a" * 2997 + "&") * 3)
    pieces = split_text(text)
    assert all(len(p) <= SECTION_LIMIT for p in pieces)
    assert "".join(pieces) == text
    assert all(not p.endswith(("&", "&a", "&am", "&amp")) for p in pieces)
    lines = "\n".join(f"line {n}" for n in range(2000))
    blocks = reply_blocks([Reply(lines)], ButtonOrigin(""))
    assert blocks_problem(batches(blocks)[0]) is None
    assert "\n".join(b["text"]["text"] for b in blocks) == lines


def test_more_than_fifty_blocks_go_out_as_several_messages() -> None:
    blocks = reply_blocks([Reply(f"r{n}", (Button("b", f"k{n}"),)) for n in range(40)], ButtonOrigin(""))
    parts = batches(blocks)
    assert [len(p) for p in parts] == [50, 30] and all(blocks_problem(p) is None for p in parts)


def test_an_image_is_shown_and_the_fallback_text_is_escaped() -> None:
    blocks = reply_blocks([Reply("chart", image="https://img.example/c.png")], ButtonOrigin(""))
    assert blocks[1] == {"type": "image", "image_url": "https://img.example/c.png", "alt_text": "image"}
    assert fallback_text([Reply("A<B"), Reply("")]) == "A&lt;B"


def test_a_used_message_shows_the_choice_instead_of_its_buttons() -> None:
    origin = ButtonOrigin("1.2")
    blocks = reply_blocks(
        [Reply("Move it?", (Button("Yes", "a"), Button("No", "b"))), Reply("Or", (Button("X", "c"),))], origin
    )
    after = chosen(blocks, "Yes <now>")
    assert [b["type"] for b in after] == ["section", "context", "section"]
    assert after[1]["elements"][0]["text"] == "You chose: *Yes &lt;now&gt;*"
    assert blocks_problem(after) is None


def test_button_origin_survives_the_round_trip_through_slack() -> None:
    for origin in (ButtonOrigin(""), ButtonOrigin("1700000000.000100"), ButtonOrigin("1.2", command=True)):
        assert ButtonOrigin.parse(origin.block_id(3)) == origin
    assert ButtonOrigin.parse("someone-elses-block") is None
    assert ButtonOrigin.parse("crm:x:1:1") is None


def test_a_notification_shows_title_body_link_and_record() -> None:
    blocks = notification_blocks("Call <Acme>", "Due at 10:00", link="https://crm.example/d/1", reference="deals #4")
    assert blocks[0]["text"]["text"] == "*Call &lt;Acme&gt;*"
    assert blocks[2]["elements"][0]["text"] == "<https://crm.example/d/1|Open> · deals #4"
    assert blocks_problem(blocks) is None
    assert "javascript" not in json.dumps(notification_blocks("t", None, link="javascript:alert(1)"))


# --- where answers go ---------------------------------------------------------------------------

DM = Target("D1", "U1")
ROOM = Target("C1", "U1", "1.1", shared=True)
COMMAND = Target("C1", "U1", shared=True, command=True, response_url="https://hooks.example/r")


@pytest.mark.parametrize(
    ("outcome", "target", "expected"),
    [
        (Outcome("c", private=True), DM, "public"),
        (Outcome(None, status="link_required"), DM, "public"),
        (Outcome("c", private=True), ROOM, "ephemeral"),
        (Outcome("c", private=True, room_team_ok=True), ROOM, "public"),
        (Outcome("c", private=False), ROOM, "public"),
        (Outcome(None, status="link_required"), ROOM, "ephemeral"),
        (Outcome(None, status="link_required", room_team_ok=True), ROOM, "ephemeral"),
        (Outcome(None, status="linked"), ROOM, "ephemeral"),
        (Outcome("c", status="stale_button"), ROOM, "ephemeral"),
        (Outcome("c", private=False), COMMAND, "ephemeral"),
        (Outcome("c", private=True, room_team_ok=True), COMMAND, "public"),
        (Outcome("c", private=True), Target("D1", "U1", command=True), "ephemeral"),
    ],
)
def test_record_data_and_linking_never_go_public_in_a_shared_room(
    outcome: Outcome, target: Target, expected: str
) -> None:
    assert visibility(outcome, target) == expected


@pytest.mark.parametrize(
    ("event", "speaking"),
    [
        ({"user": "U1", "text": "hi"}, True),
        ({"user": "U1", "text": "hi", "subtype": "thread_broadcast"}, True),
        ({"user": BOT_USER_ID, "text": "my own answer"}, False),
        ({"user": "U9", "bot_id": "B9", "text": "another bot"}, False),
        ({"subtype": "bot_message", "bot_id": BOT_ID, "text": "legacy bot"}, False),
        ({"user": "U1", "subtype": "message_changed", "message": {"text": "edited"}}, False),
        ({"user": "U1", "subtype": "channel_join"}, False),
        ({"text": "no user"}, False),
    ],
)
def test_only_people_speaking_are_answered(event: dict[str, Any], speaking: bool) -> None:
    assert is_person_speaking(event, BOT_USER_ID) is speaking


# --- start-up -----------------------------------------------------------------------------------


def slack_settings(tmp_path: Path, api_url: str = "http://127.0.0.1:9/api/", **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "CRM_VAR_DIR": tmp_path,
        "SLACK_API_URL": api_url,
        "SLACK_BOT_TOKEN": "xoxb-unit",
        "SLACK_SIGNING_SECRET": SECRET,
        "ASSISTANT_SECRET": "unit-secret",
        "SCHEDULER_ENABLED": False,
        "RASA_PORT": free_port(),
        "ACTION_SERVER_PORT": free_port(),
        "CHANNEL_TIMEOUT_SECONDS": 5,
    }
    values.update(extra)
    return Settings(**values)


@pytest.mark.parametrize(
    ("change", "needs"),
    [
        ({"slack_signing_secret": None}, "SLACK_SIGNING_SECRET"),
        ({"slack_signing_secret": SecretStr("  ")}, "SLACK_SIGNING_SECRET"),
        ({"slack_bot_token": None}, "SLACK_BOT_TOKEN"),
        ({"slack_socket_mode": True}, "SLACK_APP_TOKEN"),
    ],
)
def test_the_channel_refuses_to_start_without_its_secrets(tmp_path: Path, change: dict[str, Any], needs: str) -> None:
    settings = slack_settings(tmp_path).model_copy(update=change)
    app = web.Application()
    with pytest.raises(ChannelMisconfigured, match=needs):
        mount(app, settings)
    assert not [r for r in app.router.routes() if r.resource and r.resource.canonical.startswith("/slack")]


# --- inside the gateway app ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeServer]:
    server = FakeServer(slack_routes).start()
    yield server
    server.stop()


@dataclass
class Gateway:
    url: str
    slack: FakeServer
    demo: Demo
    app: web.Application

    async def event(self, event: dict[str, Any], *, event_id: str | None = None, **kw: Any) -> tuple[int, str]:
        return await post_signed(
            self.url, "/slack/events", json.dumps(event_body(event, event_id=event_id)), SECRET, **kw
        )

    async def wait(self, method: str, since: int, timeout: float = 10.0, **match: Any) -> Call:
        def predicate(call: Call) -> bool:
            return all(call.params.get(k) == v for k, v in match.items())

        return await asyncio.to_thread(self.slack.recorder.wait_for, method, predicate, timeout, since)

    async def calls_after(self, since: int) -> list[Call]:
        """What the product sent to Slack after `since`, watched for a moment (auth.test aside)."""
        await asyncio.sleep(QUIET_SECONDS)
        return [c for c in self.slack.recorder.calls()[since:] if c.method not in ("auth.test", "posted")]

    def link(self, username: str, user: str) -> None:
        with self.demo.store.unit_of_work(self.demo.actor(username)) as uow:
            code = identities.issue_link_code(uow, dt.timedelta(minutes=5)).code
        with self.demo.store.unit_of_work(None, "slack") as uow:
            identities.redeem_link_code(uow, code, "slack", user, TEAM_ID)


@contextlib.asynccontextmanager
async def serving(demo: Demo, fake_slack: FakeServer, settings: Settings) -> AsyncIterator[Gateway]:
    """The real gateway app (create_app) on a free port, with the Slack channel on."""
    app = create_app(settings, demo.store)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Gateway(f"http://127.0.0.1:{port}", fake_slack, demo, app)
    finally:
        await runner.cleanup()


@pytest.fixture
async def gateway(demo: Demo, tmp_path: Path, fake_slack: FakeServer) -> AsyncIterator[Gateway]:
    settings = slack_settings(tmp_path, f"{fake_slack.url}/api/", DATABASE_URL=str(demo.store.engine.url))
    async with serving(demo, fake_slack, settings) as gateway:
        yield gateway


async def test_a_forged_signature_is_refused_and_nothing_is_processed(gateway: Gateway) -> None:
    since = len(gateway.slack.recorder)
    body = json.dumps(event_body(message_event(new_id("U"), "show my open deals", new_id("D"))))
    status, _ = await post_signed(gateway.url, "/slack/events", body, "not-the-signing-secret")
    assert status == 401
    headers = {"X-Slack-Signature": "v0=" + "0" * 64}
    status, _ = await post_signed(gateway.url, "/slack/commands", "text=hi", SECRET, json_body=False, headers=headers)
    assert status == 401
    assert gateway.slack.recorder.calls()[since:] == []


async def test_a_replayed_request_older_than_five_minutes_is_refused(gateway: Gateway) -> None:
    since = len(gateway.slack.recorder)
    status, _ = await gateway.event(
        message_event(new_id("U"), "show my open deals", new_id("D")), timestamp=int(time.time()) - 6 * 60
    )
    assert status == 401
    assert gateway.slack.recorder.calls()[since:] == []


async def test_the_events_url_answers_slacks_challenge(gateway: Gateway) -> None:
    body = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"})
    status, text = await post_signed(gateway.url, "/slack/events", body, SECRET)
    assert status == 200 and "c-123" in text


async def test_an_unlinked_user_gets_only_the_linking_instructions(gateway: Gateway) -> None:
    since = len(gateway.slack.recorder)
    dm = new_id("D")
    status, _ = await gateway.event(message_event(new_id("U"), "show my open deals", dm))
    assert status == 200
    call = await gateway.wait("chat.postMessage", since, channel=dm)
    assert "link your CRM account" in call.params["text"]
    assert not any(c.method == "chat.postMessage" and c is not call for c in await gateway.calls_after(since))


async def test_slack_gets_its_ack_before_the_answer_is_posted(gateway: Gateway) -> None:
    await control(gateway.slack.url, "delay", method="chat.postMessage", seconds=2.5)
    try:
        since = len(gateway.slack.recorder)
        dm = new_id("D")
        started = time.monotonic()
        status, _ = await gateway.event(message_event(new_id("U"), "hello", dm))
        acked = time.monotonic() - started
        assert status == 200 and acked < 2.0
        call = await gateway.wait("chat.postMessage", since, channel=dm)
        assert call.at - started >= 2.4  # the answer went out after the ack
    finally:
        await control(gateway.slack.url, "delay", method="chat.postMessage", seconds=0)


async def test_the_same_event_delivered_three_times_is_answered_once(gateway: Gateway) -> None:
    since = len(gateway.slack.recorder)
    dm, event_id = new_id("D"), new_id("Ev")
    event = message_event(new_id("U"), "hello", dm)
    results = await asyncio.gather(
        gateway.event(event, event_id=event_id),
        gateway.event(
            event, event_id=event_id, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        ),
        gateway.event(
            event, event_id=event_id, headers={"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"}
        ),
    )
    assert [status for status, _ in results] == [200, 200, 200]
    await gateway.wait("chat.postMessage", since, channel=dm)
    assert len([c for c in await gateway.calls_after(since) if c.params.get("channel") == dm]) == 1


async def test_bots_our_own_messages_and_edits_are_ignored(gateway: Gateway) -> None:
    since = len(gateway.slack.recorder)
    dm = new_id("D")
    for event in (
        message_event(BOT_USER_ID, "Here are your deals", dm, bot_id=BOT_ID),
        message_event("U9", "I am another bot", dm, bot_id="B9"),
        message_event(new_id("U"), "", dm, subtype="message_changed", message={"text": "show my open deals"}),
        message_event(new_id("U"), "", dm, subtype="message_deleted"),
    ):
        status, _ = await gateway.event(event)
        assert status == 200
    assert await gateway.calls_after(since) == []


async def test_a_link_code_in_a_dm_links_the_account(gateway: Gateway) -> None:
    with gateway.demo.store.unit_of_work(gateway.demo.actor("alice")) as uow:
        code = identities.issue_link_code(uow, dt.timedelta(minutes=5)).code
    since = len(gateway.slack.recorder)
    user, dm = new_id("U"), new_id("D")
    await gateway.event(message_event(user, f"here it is: {code}", dm))
    call = await gateway.wait("chat.postMessage", since, channel=dm)
    assert "Linked" in call.params["text"] and "alice" in call.params["text"]
    with gateway.demo.store.unit_of_work() as uow:
        actor = identities.actor_for_identity(uow, "slack", user, TEAM_ID)
    assert actor is not None and actor.username == "alice"


async def test_when_the_assistant_is_down_the_user_reads_a_plain_sentence(gateway: Gateway) -> None:
    user, dm = new_id("U"), new_id("D")
    gateway.link("alice", user)
    since = len(gateway.slack.recorder)
    await gateway.event(message_event(user, "show my open deals", dm))
    call = await gateway.wait("chat.postMessage", since, channel=dm)
    assert "not available right now" in call.params["text"]
    assert "Traceback" not in json.dumps(call.params) and "blocks" not in call.params


async def test_linking_instructions_in_a_shared_channel_are_shown_only_to_the_speaker(gateway: Gateway) -> None:
    since = len(gateway.slack.recorder)
    user, room = new_id("U"), new_id("C")
    await gateway.event(mention_event(user, f"<@{BOT_USER_ID}> show my open deals", room))
    call = await gateway.wait("chat.postEphemeral", since, channel=room)
    assert call.params["user"] == user and "link your CRM account" in call.params["text"]
    assert call.params["thread_ts"]  # in the mention's thread
    assert not [c for c in await gateway.calls_after(since) if c.method == "chat.postMessage"]


async def test_channel_chatter_and_unknown_threads_are_not_answered(gateway: Gateway) -> None:
    since = len(gateway.slack.recorder)
    room = new_id("C")
    await gateway.event(message_event(new_id("U"), "lunch?", room, channel_type="channel"))
    await gateway.event(message_event(new_id("U"), "yes", room, channel_type="channel", thread_ts="1.000001"))
    # A message with a mention comes as both message.channels and app_mention; only the mention answers.
    user = new_id("U")
    await gateway.event(message_event(user, f"<@{BOT_USER_ID}> hi", room, channel_type="channel"))
    assert await gateway.calls_after(since) == []


async def test_the_slash_command_answers_through_slacks_response_url(gateway: Gateway) -> None:
    since = len(gateway.slack.recorder)
    url = f"{gateway.slack.url}/response/{new_id('R')}"
    body = command_form(new_id("U"), "show my open deals", new_id("C"), response_url=url)
    status, _ = await post_signed(gateway.url, "/slack/commands", body, SECRET, json_body=False)
    assert status == 200
    call = await gateway.wait("response_url", since)
    assert call.params["response_type"] == "ephemeral" and "link your CRM account" in call.params["text"]


async def test_the_deliverer_is_registered_and_posts_to_the_users_dm(gateway: Gateway) -> None:
    from assistant.dialogue import DELIVERY

    deliverer = gateway.app[DELIVERY].get("slack")
    assert isinstance(deliverer, SlackDeliverer) and gateway.app[SLACK].client.session is not None
    note = NotificationView(
        7, 1, "reminder", "Call *Bold_&_Co*", "Due at 10:00", {}, "deals", 4, "slack", "U123", TEAM_ID, 1
    )
    since = len(gateway.slack.recorder)
    await deliverer.deliver(note)
    call = await gateway.wait("chat.postMessage", since, channel="U123")
    assert call.params["text"] == "Call *Bold_&amp;_Co*"
    assert call.params["metadata"]["event_payload"] == {"notification_id": 7}
    assert call.params["blocks"][-1]["elements"][0]["text"] == "deals #4"

    await control(gateway.slack.url, "fail", method="chat.postMessage", error="ratelimited")
    with pytest.raises(Exception, match="ratelimited"):
        await deliverer.deliver(note)  # the scheduler retries it with backoff


async def test_socket_mode_takes_events_over_the_websocket_and_acks_them(
    demo: Demo, tmp_path: Path, fake_slack: FakeServer
) -> None:
    """No public URL: the app opens Slack's websocket (apps.connections.open with the xapp- token)."""
    settings = slack_settings(
        tmp_path,
        f"{fake_slack.url}/api/",
        DATABASE_URL=str(demo.store.engine.url),
        SLACK_SOCKET_MODE=True,
        SLACK_APP_TOKEN="xapp-unit",
    )
    async with serving(demo, fake_slack, settings) as gateway:
        opened = await gateway.wait("apps.connections.open", 0)
        assert opened.headers["Authorization"] == "Bearer xapp-unit"
        since = len(fake_slack.recorder)
        dm, envelope_id = new_id("D"), new_id("env-")
        envelope = {
            "envelope_id": envelope_id,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
            "payload": event_body(message_event(new_id("U"), "show my open deals", dm)),
        }
        for _ in range(50):  # the websocket may still be opening
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{fake_slack.url}/_control/socket", json=envelope) as resp,
            ):
                if (await resp.json())["sockets"]:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the app never opened the Socket Mode websocket")
        ack = await gateway.wait("socket_ack", since)
        assert ack.params["envelope_id"] == envelope_id
        answer = await gateway.wait("chat.postMessage", since, channel=dm)
        assert "link your CRM account" in answer.params["text"]


def test_an_audio_clip_is_found_among_a_messages_files_and_other_files_are_not() -> None:
    clip = {"id": "F1", "mimetype": "audio/webm", "subtype": "slack_audio", "url_private_download": "u"}
    video_clip = {"id": "F2", "mimetype": "video/webm", "subtype": "slack_audio"}
    pdf = {"id": "F3", "mimetype": "application/pdf"}
    assert audio_clip({"files": [pdf, clip]}) == clip
    assert audio_clip({"files": [video_clip]}) == video_clip
    assert audio_clip({"files": [pdf, {"id": "F4", "mimetype": "video/mp4"}]}) is None
    assert audio_clip({"text": "hi"}) is None
