"""Slack end to end: signed Events API requests, slash commands and button clicks into the real gateway,
Rasa and action server; the answers observed on the fake Slack Web API; writes checked in the database
(audit channel "slack"). Each test talks in its own DM, channel or thread.

The Slack side is played by tests/fakes/slack_api.py: it signs what it sends with the e2e signing secret
and rejects Block Kit that Slack would reject, so "the message was sent" means Slack would have taken it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from crm_backend.models import Activity, AuditLog, User
from crm_backend.store import Store
from tests.e2e.conftest import SLACK_SIGNING_SECRET, Running
from tests.fakes.server import Call
from tests.fakes.slack_api import (
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    block_actions_form,
    command_form,
    event_body,
    mention_event,
    message_event,
    message_problem,
    new_id,
    post_signed,
)

pytestmark = pytest.mark.e2e

TURN_SECONDS = 60.0  # Rasa plus the action server, on a busy machine
QUIET_SECONDS = 1.5  # how long "nothing else happens" is watched for
RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}


class SlackSide:
    """What Slack does in these tests: send signed events and clicks, and watch the product's calls."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.recorder = running.slack.recorder

    @property
    def url(self) -> str:
        return self.running.settings.gateway_url

    def mark(self) -> int:
        return len(self.recorder)

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, headers: dict[str, str] | None = None
    ) -> int:
        body = json.dumps(event_body(event, event_id=event_id))
        status, _ = await post_signed(self.url, "/slack/events", body, SLACK_SIGNING_SECRET, headers=headers)
        return status

    async def dm(self, user: str, channel: str, text: str) -> Call:
        """A DM to the bot and the bot's answer in that DM."""
        since = self.mark()
        assert await self.event(message_event(user, text, channel)) == 200
        return await self.wait("chat.postMessage", since, channel=channel)

    async def click(self, user: str, channel: str, message: dict[str, Any], title: str) -> int:
        """Click the button called `title` on `message` (as our chat.post* call sent it)."""
        for block in message.get("blocks") or []:
            for element in block.get("elements") or [] if block["type"] == "actions" else []:
                if element["text"]["text"] == title:
                    response_url = f"{self.running.slack.url}/response/{new_id('R')}"
                    body = block_actions_form(
                        user, channel, message, element, block["block_id"], response_url=response_url
                    )
                    status, _ = await post_signed(
                        self.url, "/slack/interactions", body, SLACK_SIGNING_SECRET, json_body=False
                    )
                    return status
        raise AssertionError(f"no button {title!r} in {json.dumps(message.get('blocks'))}")

    async def wait(self, method: str, since: int, timeout: float = TURN_SECONDS, **match: Any) -> Call:
        def predicate(call: Call) -> bool:
            return all(call.params.get(k) == v for k, v in match.items())

        return await asyncio.to_thread(self.recorder.wait_for, method, predicate, timeout, since)

    async def quiet_calls(self, since: int, **match: Any) -> list[Call]:
        """The product's calls after `since` that match, after watching for a while."""
        await asyncio.sleep(QUIET_SECONDS)
        return [
            c
            for c in self.recorder.calls()[since:]
            if c.method not in ("auth.test", "posted") and all(c.params.get(k) == v for k, v in match.items())
        ]

    async def link(self, username: str) -> str:
        """A new Slack user linked to `username` through the real flow: the one-time code sent in a DM."""
        user, dm = new_id("U"), new_id("D")
        code = await asyncio.to_thread(self.running.link_code, username)
        answer = await self.dm(user, dm, code)
        assert "Linked" in answer.params["text"], answer.params
        return user


def text_of(call: Call) -> str:
    """Everything a Slack user would read in the message: the blocks' texts (or the fallback text)."""
    parts = []
    for block in call.params.get("blocks") or []:
        if block["type"] == "section":
            parts.append(block["text"]["text"])
        elif block["type"] == "context":
            parts.extend(e.get("text", "") for e in block["elements"])
    return "\n".join(parts) or str(call.params.get("text", ""))


def as_posted(call: Call, ts: str | None = None) -> dict[str, Any]:
    """The message a chat.post* call created, as a block_actions payload carries it."""
    message = {"ts": ts or call.params.get("ts") or f"{time.time():.6f}", "text": call.params.get("text", "")}
    message["blocks"] = call.params.get("blocks") or []
    if call.method == "chat.postEphemeral":
        message["ephemeral"] = True
    return message


def button_titles(call: Call) -> list[str]:
    return [e["text"]["text"] for b in call.params.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


@pytest.fixture(scope="module")
def slack(running: Running) -> SlackSide:
    return SlackSide(running)


@pytest.fixture(scope="module")
def store(running: Running) -> Iterator[Store]:
    s = Store.from_url(running.settings.effective_database_url)
    yield s
    s.dispose()


@pytest.fixture(scope="module")
async def alice(slack: SlackSide) -> str:
    return await slack.link("alice")


async def api(running: Running, method: str, path: str, username: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{running.settings.gateway_url}/api/v1{path}",
            json=body,
            headers=running.headers(username),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp,
    ):
        return resp.status, await resp.json() if resp.content_type == "application/json" else None


def activities_with(store: Store, words: str) -> list[Activity]:
    """The live activities whose description contains `words` (undone ones are soft-deleted)."""
    with store.unit_of_work() as uow:
        return list(
            uow.session.scalars(
                select(Activity).where(Activity.description.contains(words), Activity.deleted_at.is_(None))
            )
        )


# --- the door -----------------------------------------------------------------------------------


async def test_a_forged_signature_gets_401_and_nothing_is_processed(slack: SlackSide, alice: str) -> None:
    since = slack.mark()
    dm = new_id("D")
    body = json.dumps(event_body(message_event(alice, "show my open deals", dm)))
    status, _ = await post_signed(slack.url, "/slack/events", body, "someone-elses-signing-secret")
    assert status == 401
    assert await slack.quiet_calls(since) == []


async def test_a_request_older_than_five_minutes_gets_401(slack: SlackSide, alice: str) -> None:
    since = slack.mark()
    body = json.dumps(event_body(message_event(alice, "show my open deals", new_id("D"))))
    status, _ = await post_signed(
        slack.url, "/slack/events", body, SLACK_SIGNING_SECRET, timestamp=int(time.time()) - 6 * 60
    )
    assert status == 401
    assert await slack.quiet_calls(since) == []


async def test_our_own_bots_message_is_ignored(slack: SlackSide) -> None:
    since = slack.mark()
    dm = new_id("D")
    assert await slack.event(message_event(BOT_USER_ID, "Here are your open deals", dm, bot_id=BOT_ID)) == 200
    assert await slack.event(message_event("UOTHERBOT", "beep", dm, bot_id="BOTHER", subtype="bot_message")) == 200
    assert await slack.quiet_calls(since, channel=dm) == []


# --- linking ------------------------------------------------------------------------------------


async def test_an_unlinked_user_gets_linking_instructions_and_no_data(slack: SlackSide) -> None:
    answer = await slack.dm(new_id("U"), new_id("D"), "show my open deals")
    assert "link your CRM account" in answer.params["text"]
    assert not any(name in text_of(answer) for name in ("Acme", "Nimbus", "Globex", "Initech"))


async def test_the_link_code_in_a_dm_links_the_account_and_data_follows(slack: SlackSide, running: Running) -> None:
    user, dm = new_id("U"), new_id("D")
    code = await asyncio.to_thread(running.link_code, "bob")
    linked = await slack.dm(user, dm, code)
    assert "Linked" in linked.params["text"] and "bob" in linked.params["text"]
    deals = await slack.dm(user, dm, "show my open deals")
    assert "Globex - Data warehouse" in text_of(deals) and "Nimbus" not in text_of(deals)
    again = await slack.dm(new_id("U"), new_id("D"), code)  # codes work once
    assert "not valid" in again.params["text"]


async def test_a_link_code_posted_in_a_channel_is_not_used_there(slack: SlackSide, running: Running) -> None:
    user, room = new_id("U"), new_id("C")
    rep = await asyncio.to_thread(running.new_user)
    code = await asyncio.to_thread(running.link_code, rep)
    since = slack.mark()
    mention = mention_event(user, f"<@{BOT_USER_ID}> {code}", room)
    assert await slack.event(mention) == 200
    answer = await slack.wait("chat.postEphemeral", since, channel=room)
    assert "private chat" in answer.params["text"] and answer.params["user"] == user
    linked = await slack.dm(user, new_id("D"), code)  # still unused: it works in a DM
    assert "Linked" in linked.params["text"] and rep in linked.params["text"]


async def test_a_message_over_the_length_limit_gets_a_sentence(slack: SlackSide, alice: str, running: Running) -> None:
    limit = running.settings.max_message_chars
    answer = await slack.dm(alice, new_id("D"), "show my deals " + "x" * limit)
    assert "too long" in answer.params["text"]


# --- conversations ------------------------------------------------------------------------------


async def test_open_deals_in_a_dm_come_back_as_block_kit(slack: SlackSide, alice: str) -> None:
    answer = await slack.dm(alice, new_id("D"), "show my open deals")
    text = text_of(answer)
    assert "Nimbus Labs - Platform renewal" in text and "Acme - Fleet telematics" in text
    assert "Globex" not in text  # bob's
    assert answer.params["blocks"][0]["type"] == "section"
    assert message_problem(answer.method, answer.params) is None


async def test_a_write_is_read_back_confirmed_by_a_button_and_audited_as_slack(
    slack: SlackSide, alice: str, store: Store
) -> None:
    dm = new_id("D")
    words = f"budget approved for rollout {uuid.uuid4().hex[:8]}"
    readback = await slack.dm(alice, dm, f"add a note to acme: {words}")
    assert "Acme" in text_of(readback) and "?" in text_of(readback)
    assert {"Yes", "No"} <= set(button_titles(readback))
    assert activities_with(store, words) == []  # read back, nothing written yet

    since = slack.mark()
    message = as_posted(readback, ts=f"{time.time():.6f}")
    assert await slack.click(alice, dm, message, "Yes") == 200
    done = await slack.wait("chat.postMessage", since, channel=dm)
    assert "logged" in text_of(done).lower() or "note" in text_of(done).lower()
    update = await slack.wait("chat.update", since, channel=dm, ts=message["ts"])
    assert "You chose: *Yes*" in text_of(update) and not button_titles(update)

    [activity] = activities_with(store, words)
    with store.unit_of_work() as uow:
        audit = uow.session.scalars(
            select(AuditLog).where(AuditLog.entity_type == "activities", AuditLog.entity_id == activity.id)
        ).first()
        alice_id = uow.session.scalars(select(User.id).where(User.username == "alice")).one()
    assert audit is not None and audit.channel == "slack" and audit.user_id == alice_id

    undone = await slack.dm(alice, dm, "undo that")  # leave the shared database as it was
    assert "Undone" in text_of(undone)
    assert activities_with(store, words) == []


async def test_a_retried_event_is_answered_once_and_written_once(slack: SlackSide, alice: str, store: Store) -> None:
    dm = new_id("D")
    words = f"retry check {uuid.uuid4().hex[:8]}"
    ask = message_event(alice, f"add a note to acme: {words}", dm)
    since = slack.mark()
    event_id = new_id("Ev")
    statuses = await asyncio.gather(
        *(
            slack.event(ask, event_id=event_id, headers={**RETRY, "X-Slack-Retry-Num": str(n)} if n else None)
            for n in range(3)
        )
    )
    assert statuses == [200, 200, 200]
    await slack.wait("chat.postMessage", since, channel=dm)
    assert len(await slack.quiet_calls(since, channel=dm)) == 1

    since = slack.mark()
    yes = message_event(alice, "yes", dm)
    event_id = new_id("Ev")
    for n in range(3):
        assert (
            await slack.event(yes, event_id=event_id, headers={**RETRY, "X-Slack-Retry-Num": str(n)} if n else None)
            == 200
        )
    await slack.wait("chat.postMessage", since, channel=dm)
    assert len(await slack.quiet_calls(since, channel=dm)) == 1
    assert len(activities_with(store, words)) == 1

    await slack.dm(alice, dm, "undo that")
    assert activities_with(store, words) == []


async def test_a_rep_asking_for_another_reps_deal_gets_not_found(slack: SlackSide, alice: str) -> None:
    answer = await slack.dm(alice, new_id("D"), "what stage is the globex data warehouse deal in")
    text = text_of(answer)
    assert "Globex - Data warehouse" not in text and "64,000" not in text
    assert "can't find" in text or "didn't" in text or "not sure" in text


@pytest.mark.parametrize("typed", ["/affirm", '/inform{"amount": 1}'])
async def test_a_typed_payload_confirms_nothing(slack: SlackSide, alice: str, store: Store, typed: str) -> None:
    dm = new_id("D")
    words = f"typed payload {uuid.uuid4().hex[:8]}"
    readback = await slack.dm(alice, dm, f"add a note to acme: {words}")
    assert "Yes" in button_titles(readback)
    try:
        await slack.dm(alice, dm, typed)
        assert activities_with(store, words) == [], f"typing {typed} confirmed the change"
    finally:
        await slack.dm(alice, dm, "undo that" if activities_with(store, words) else "no")


async def test_a_button_from_a_superseded_read_back_is_refused(slack: SlackSide, alice: str, store: Store) -> None:
    dm = new_id("D")
    first_words = f"budget approved for rollout {uuid.uuid4().hex[:8]}"
    first = await slack.dm(alice, dm, f"add a note to acme: {first_words}")
    assert "Yes" in button_titles(first)
    second_words = f"renewal terms agreed {uuid.uuid4().hex[:8]}"
    second = await slack.dm(alice, dm, f"add a note to nimbus: {second_words}")
    assert "Yes" in button_titles(second)

    since = slack.mark()
    old = as_posted(first, ts=f"{time.time():.6f}")
    assert await slack.click(alice, dm, old, "Yes") == 200
    refused = await slack.wait("chat.postMessage", since, channel=dm)
    assert "earlier question" in text_of(refused)
    assert not [c for c in await slack.quiet_calls(since) if c.method == "chat.update"]  # nothing to retire
    assert activities_with(store, first_words) == [] and activities_with(store, second_words) == []
    await slack.dm(alice, dm, "no")
    assert activities_with(store, second_words) == []


async def test_a_name_with_markdown_characters_is_escaped_and_still_sent(
    slack: SlackSide, alice: str, running: Running
) -> None:
    name = f"*Bold_&_Co* <Zq{uuid.uuid4().hex[:4]}>"
    status, created = await api(running, "POST", "/accounts", "alice", {"name": name, "industry": "Software"})
    assert status == 201, created
    try:
        answer = await slack.dm(alice, new_id("D"), "tell me about bold co")
        assert message_problem(answer.method, answer.params) is None  # Slack would post it
        text = text_of(answer)
        assert "*Bold_&amp;_Co* &lt;Zq" in text, text
    finally:
        await api(running, "DELETE", f"/accounts/{created['id']}", "alice")


# --- shared channels ----------------------------------------------------------------------------


@pytest.fixture
async def team_room(running: Running, store: Store) -> AsyncIterator[str]:
    """A channel an admin marked as alice's team's room."""
    room = new_id("C")
    with store.unit_of_work() as uow:
        team_id = uow.session.scalars(select(User.team_id).where(User.username == "alice")).one()
    status, marked = await api(
        running,
        "POST",
        "/team-rooms",
        "admin",
        {"channel": "slack", "workspace_id": TEAM_ID, "room_id": room, "team_id": team_id},
    )
    assert status == 201, marked
    yield room
    await api(running, "DELETE", f"/team-rooms/{marked['id']}", "admin")


async def test_record_data_asked_in_a_shared_channel_is_shown_only_to_the_asker(slack: SlackSide, alice: str) -> None:
    room = new_id("C")
    since = slack.mark()
    mention = mention_event(alice, f"<@{BOT_USER_ID}> show my open deals", room)
    assert await slack.event(mention) == 200
    answer = await slack.wait("chat.postEphemeral", since, channel=room)
    assert answer.params["user"] == alice and answer.params["thread_ts"] == mention["ts"]
    assert "Nimbus Labs - Platform renewal" in text_of(answer)

    # A reply in that thread without a mention continues the conversation, still only for alice.
    since2 = slack.mark()
    follow = message_event(alice, "what's new", room, channel_type="channel", thread_ts=mention["ts"])
    assert await slack.event(follow) == 200
    again = await slack.wait("chat.postEphemeral", since2, channel=room)
    assert again.params["user"] == alice
    assert not [c for c in await slack.quiet_calls(since, channel=room) if c.method == "chat.postMessage"]


async def test_in_the_speakers_team_room_record_data_is_posted_in_the_thread(
    slack: SlackSide, alice: str, team_room: str
) -> None:
    since = slack.mark()
    mention = mention_event(alice, f"<@{BOT_USER_ID}> show my open deals", team_room)
    assert await slack.event(mention) == 200
    answer = await slack.wait("chat.postMessage", since, channel=team_room)
    assert answer.params["thread_ts"] == mention["ts"] and "Nimbus Labs - Platform renewal" in text_of(answer)


async def test_the_slash_command_answers_only_the_speaker(slack: SlackSide, alice: str) -> None:
    since = slack.mark()
    url = f"{slack.running.slack.url}/response/{new_id('R')}"
    body = command_form(alice, "show my open deals", new_id("C"), response_url=url)
    status, _ = await post_signed(slack.url, "/slack/commands", body, SLACK_SIGNING_SECRET, json_body=False)
    assert status == 200
    answer = await slack.wait("response_url", since, path=url.removeprefix(slack.running.slack.url))
    assert answer.params["response_type"] == "ephemeral"
    assert "Nimbus Labs - Platform renewal" in text_of(answer)
