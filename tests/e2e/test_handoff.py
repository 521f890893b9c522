"""The human handoff end to end, through the real gateway, Rasa server and action server: a user asks for
a person, a ticket appears in the agents' queue, an agent (demo user `sam`, API token) takes it and
replies, the reply reaches the user on their own channel (the fake Telegram server), the bot stays
silent while the agent owns the conversation, the agent hands back and the bot answers again; after a
resolution the user's 1-5 rating is stored on the ticket."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from crm_backend.models.service_desk import Ticket
from crm_backend.store import Store
from tests.e2e.conftest import Running
from tests.e2e.test_slack_channel import SlackSide
from tests.e2e.test_telegram_channel import Chat, buttons_of, link, next_update_id, text_of
from tests.fakes.platforms import SUPPORT_CHANNEL
from tests.fakes.slack_api import message_event
from tests.fakes.telegram_api import callback_update

pytestmark = pytest.mark.e2e

CUSTOMER = 730_001  # a Telegram user id used only here
TURN_SECONDS = 90.0
QUIET_SECONDS = 3.0


@pytest.fixture(scope="module")
def store(running: Running) -> Any:
    s = Store.from_url(running.settings.effective_database_url)
    yield s
    s.dispose()


async def agent(running: Running, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """The REST API as the demo agent sam."""
    url = f"{running.settings.gateway_url}/api/v1/handoffs{path}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, url, json=body, headers=running.headers("sam"), timeout=aiohttp.ClientTimeout(total=60)
        ) as resp,
    ):
        return resp.status, await resp.json()


async def said(chat: Chat, chat_id: int, since: int, contains: str) -> str:
    call = await chat.wait(
        "sendMessage",
        since,
        lambda c: c.params.get("chat_id") == chat_id and contains in text_of(c),
        timeout=TURN_SECONDS,
    )
    return text_of(call)


async def test_ask_for_a_person_agent_replies_on_telegram_bot_stays_quiet_then_takes_over_again(
    chat: Chat, running: Running, store: Store
) -> None:
    await link(chat, running, CUSTOMER, running.new_user("customer"))
    since = await chat.say(CUSTOMER, "I want to talk to a real person please")
    escalated = await said(chat, CUSTOMER, since, "ticket #")
    ticket_id = int(escalated.split("ticket #")[1].split(")")[0])

    status, queue = await agent(running, "GET", "")
    assert status == 200, queue
    mine = [row for row in queue["items"] if row["ticket_id"] == ticket_id]
    assert mine and mine[0]["state"] == "waiting" and mine[0]["channel"] == "telegram"
    status, view = await agent(running, "GET", f"/{ticket_id}")
    assert status == 200 and any("real person" in t["text"] for t in view["turns"])

    # Another user's words cannot reach a ticket that nobody took: replying first is refused.
    status, refused = await agent(running, "POST", f"/{ticket_id}/reply", {"text": "too early"})
    assert status == 409, refused

    since = len(chat.fake.recorder)
    status, taken = await agent(running, "POST", f"/{ticket_id}/take")
    assert status == 200 and taken["state"] == "agent", taken
    assert "joined" in await said(chat, CUSTOMER, since, "joined")

    since = len(chat.fake.recorder)
    status, _ = await agent(running, "POST", f"/{ticket_id}/reply", {"text": "Hi! I'm Sam, how can I help?"})
    assert status == 200
    assert "I'm Sam" in await said(chat, CUSTOMER, since, "I'm Sam")

    # While the agent owns it the bot says nothing, whatever the user writes; the turn is recorded.
    since = await chat.say(CUSTOMER, "show my open deals")
    await asyncio.sleep(QUIET_SECONDS)
    assert not chat.sent(since, CUSTOMER)
    status, view = await agent(running, "GET", f"/{ticket_id}")
    assert any(t["speaker"] == "user" and t["text"] == "show my open deals" for t in view["turns"])

    since = len(chat.fake.recorder)
    status, back = await agent(running, "POST", f"/{ticket_id}/hand-back", {"note": "Sorted the invoice"})
    assert status == 200 and back["state"] == "bot"
    assert "back with the assistant" in await said(chat, CUSTOMER, since, "back with the assistant")
    since = await chat.say(CUSTOMER, "what can you do")
    assert await said(chat, CUSTOMER, since, "")  # the bot answers again

    # Resolve: the user is asked for a rating with 1-5 buttons; a click stores it on the ticket.
    status, _ = await agent(running, "POST", f"/{ticket_id}/resolve")
    assert status == 200
    survey = await chat.wait(
        "sendMessage",
        since,
        lambda c: c.params.get("chat_id") == CUSTOMER and "rate" in text_of(c),
        timeout=TURN_SECONDS,
    )
    five = next(b for b in buttons_of(survey) if b["text"] == "5")
    since = len(chat.fake.recorder)
    assert await chat.post(callback_update(next_update_id(), five["callback_data"], from_id=CUSTOMER)) == 200
    assert "Thank you for your rating" in await said(chat, CUSTOMER, since, "Thank you")
    with store.unit_of_work(read_only=True) as uow:
        ticket = uow.session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.csat == 5 and ticket.handback_note == "Sorted the invoice"


async def test_reps_cannot_see_or_work_the_queue(running: Running) -> None:
    url = f"{running.settings.gateway_url}/api/v1/handoffs"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=running.headers("alice")) as resp:
            assert resp.status == 403
        async with http.post(f"{url}/1/take", headers=running.headers("alice")) as resp:
            assert resp.status == 403
        async with http.get(url) as resp:
            assert resp.status == 401


async def test_agents_are_told_in_the_slack_support_channel_and_answer_in_its_thread(
    chat: Chat, running: Running
) -> None:
    customer = 730_002
    await link(chat, running, customer, running.new_user("slackcase"))
    slack = SlackSide(running)
    agent_user = await slack.link("sam")
    mark = slack.mark()
    since = await chat.say(customer, "get me a human agent please")
    escalated = await said(chat, customer, since, "ticket #")
    ticket_id = escalated.split("ticket #")[1].split(")")[0]
    announced = await slack.wait("chat.postMessage", mark, channel=SUPPORT_CHANNEL)
    assert f"#{ticket_id}" in announced.params["text"] and "get me a human" in announced.params["text"]
    thread = (await slack.wait("posted", mark, channel=SUPPORT_CHANNEL)).params["ts"]
    since = len(chat.fake.recorder)
    reply = message_event(
        agent_user, "Hello from the support channel!", SUPPORT_CHANNEL, channel_type="channel", thread_ts=thread
    )
    assert await slack.event(reply) == 200
    assert "Hello from the support channel" in await said(chat, customer, since, "Hello from the support channel")
    status, view = await agent(running, "GET", f"/{ticket_id}")
    assert status == 200 and view["conversation"]["state"] == "agent"  # the thread reply took it


async def sentiment_ready(running: Running) -> None:
    """The sentiment model loads in the background after the gateway starts."""
    deadline = asyncio.get_running_loop().time() + TURN_SECONDS * 2
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{running.settings.gateway_url}/readyz") as resp:
                state = (await resp.json())["details"]["sentiment"]
            if state.get("ok"):
                return
            assert state.get("detail") == "loading", state
            assert asyncio.get_running_loop().time() < deadline, "sentiment never became ready"
            await asyncio.sleep(1)


async def test_an_angry_customer_is_handed_to_a_person_and_every_turn_keeps_its_sentiment(
    running: Running, store: Store
) -> None:
    from sqlalchemy import select

    from crm_backend.models.channels import ConversationTurn

    await sentiment_ready(running)
    user = running.new_user("angry")
    first = await running.say(user, "thanks, that's great")
    conversation_id = first["conversation_id"]
    texts = []
    for text in (
        "this is terrible, nothing works and I've wasted my whole morning",
        "I'm really fed up, your product keeps failing us",
        "honestly the worst experience, I'm about to cancel",
    ):
        answer = await running.say(user, text, conversation_id)
        texts.append(" ".join(r["text"] for r in answer["replies"]))
        if "ticket #" in texts[-1]:
            break
    assert "ticket #" in texts[-1], texts  # escalated on the negative streak (or one furious turn)
    with store.unit_of_work(read_only=True) as uow:
        moods = uow.session.execute(
            select(ConversationTurn.sentiment_label, ConversationTurn.sentiment_score).where(
                ConversationTurn.conversation_id == conversation_id, ConversationTurn.speaker == "user"
            )
        ).all()
        ticket = uow.session.scalar(select(Ticket).where(Ticket.conversation_id == conversation_id))
        assert ticket is not None and ticket.escalation_reason == "sentiment" and ticket.sentiment_trend
    assert moods[0][0] == "positive" and all(label == "negative" for label, _ in moods[1:]), moods


async def test_an_agents_reply_reaches_a_slack_customer_in_their_direct_message(running: Running) -> None:
    slack = SlackSide(running)
    customer = await slack.link(running.new_user("slackdm"))
    dm = "D" + customer[1:]
    answer = await slack.dm(customer, dm, "can I speak to someone on your team please")
    assert "ticket #" in answer.params["text"], answer.params
    ticket_id = int(answer.params["text"].split("ticket #")[1].split(")")[0])
    status, _ = await agent(running, "POST", f"/{ticket_id}/take")
    assert status == 200
    mark = slack.mark()
    status, _ = await agent(running, "POST", f"/{ticket_id}/reply", {"text": "Hello from Sam on the support desk"})
    assert status == 200
    delivered = await slack.wait("chat.postMessage", mark, channel=dm)
    assert "Hello from Sam on the support desk" in delivered.params["text"]
    mark = slack.mark()
    status, _ = await agent(running, "POST", f"/{ticket_id}/hand-back", {"note": "done"})
    assert status == 200
    back = await asyncio.to_thread(
        slack.recorder.wait_for,
        "chat.postMessage",
        lambda c: c.params.get("channel") == dm and "back with the assistant" in str(c.params.get("text")),
        TURN_SECONDS,
        mark,
    )
    assert back is not None
