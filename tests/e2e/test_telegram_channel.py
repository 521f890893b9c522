"""The Telegram channel end to end: updates posted to the real gateway's webhook (as Telegram would), the real
Rasa server and action server behind it, and every Bot API call the gateway makes observed on the fake
Telegram server (tests/fakes/telegram_api.py), which refuses HTML that Telegram could not parse.
Database effects of writes are read back from the CRM database."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from assistant.gateway import create_app
from assistant.stack import free_port
from channels.telegram import SECRET_HEADER, SENT_PRIVATELY, WEBHOOK_PATH
from crm_backend.models import AuditLog, Deal, DealStage
from crm_backend.store import Store
from tests.e2e.conftest import TELEGRAM_WEBHOOK_SECRET, Running
from tests.fakes.server import Call, FakeServer
from tests.fakes.telegram_api import callback_update, message_update, parse_html

pytestmark = pytest.mark.e2e

ALICE = 710_001  # Telegram user ids
BOB = 710_002
STRANGER = 710_003
CARLOS = 710_004
GROUP = -100_555_000_111
DEAL = "Initech - Analytics add-on"
ALICE_OPEN = ("Acme - Fleet telematics", "Nimbus Labs - Platform renewal", DEAL)
NASTY = "Under_score *Star* [Brackets] <Tag>"
TURN_SECONDS = 120.0  # a shared CI machine; a turn normally takes about a second

_update_ids = itertools.count(500_000)
_message_ids = itertools.count(10)


def next_update_id() -> int:
    return next(_update_ids)


class Chat:
    """Posts updates to a gateway's webhook and waits for the Bot API calls they cause on the fake."""

    def __init__(self, running: Running, gateway_url: str | None = None) -> None:
        self.running = running
        self.fake: FakeServer = running.telegram
        self.url = (gateway_url or running.settings.gateway_url) + WEBHOOK_PATH

    async def post(self, update: dict[str, Any], secret: str | None = TELEGRAM_WEBHOOK_SECRET) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as resp,
        ):
            return resp.status

    async def say(self, from_id: int, text: str, chat_id: int | None = None, **kwargs: Any) -> int:
        """Send a text message; returns the recorder position before it, to wait on what follows."""
        since = len(self.fake.recorder)
        update = message_update(
            next_update_id(), text, from_id=from_id, chat_id=chat_id, message_id=next(_message_ids), **kwargs
        )
        assert await self.post(update) == 200
        return since

    async def wait(
        self,
        method: str,
        since: int,
        predicate: Callable[[Call], bool] = lambda _c: True,
        timeout: float = TURN_SECONDS,
    ) -> Call:
        return await asyncio.to_thread(self.fake.recorder.wait_for, method, predicate, timeout, since)

    async def reply_to(self, chat_id: int, since: int, contains: str = "") -> Call:
        """The first sendMessage to `chat_id` after `since` (whose text contains `contains`)."""
        try:
            return await self.wait(
                "sendMessage", since, lambda c: c.params.get("chat_id") == chat_id and contains in text_of(c)
            )
        except TimeoutError:
            seen = [(c.params.get("chat_id"), c.params.get("text")) for c in self.sent(since)]
            raise AssertionError(f"no sendMessage to {chat_id} containing {contains!r}; sent: {seen}") from None

    def between(self, since: int, until: int, chat_id: int | None = None) -> list[Call]:
        """sendMessage calls made after `since` and before `until` (recorder positions)."""
        return [
            c
            for c in self.fake.recorder.calls()[since:until]
            if c.method == "sendMessage" and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def sent(self, since: int, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.fake.recorder.calls()[since:]
            if c.method == "sendMessage" and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]


def text_of(call: Call) -> str:
    """What the user sees; raises (like Telegram) if the HTML could not be parsed."""
    return parse_html(str(call.params.get("text", "")))


def buttons_of(call: Call) -> list[dict[str, Any]]:
    markup = call.params.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


@pytest.fixture(scope="module")
def store(running: Running) -> Any:
    s = Store.from_url(running.settings.effective_database_url)
    yield s
    s.dispose()


async def link(chat: Chat, running: Running, telegram_id: int, username: str) -> str:
    code = await asyncio.to_thread(running.link_code, username)
    since = await chat.say(telegram_id, f"/start {code}")
    return text_of(await chat.reply_to(telegram_id, since))


@pytest.fixture(scope="module")
async def alice(chat: Chat, running: Running) -> str:
    """Alice's Telegram account (ALICE) linked with `/start <code>`; the bot's answer."""
    return await link(chat, running, ALICE, "alice")


async def test_a_wrong_or_missing_secret_token_is_refused_and_nothing_is_processed(chat: Chat) -> None:
    since = len(chat.fake.recorder)
    assert await chat.post(message_update(next_update_id(), "/help", from_id=STRANGER), "not-the-secret") == 403
    assert await chat.post(message_update(next_update_id(), "/help", from_id=STRANGER), None) == 403
    await asyncio.sleep(2)
    # Nothing at all; only a due notification to some linked user could legitimately appear meanwhile.
    calls = chat.fake.recorder.calls()[since:]
    assert [c for c in calls if c.method != "sendMessage" or c.params.get("chat_id") == STRANGER] == []


async def test_an_unlinked_user_is_a_prospect_who_sees_no_records_and_learns_how_to_link(chat: Chat) -> None:
    since = await chat.say(STRANGER, "show my open deals")
    text = text_of(await chat.reply_to(STRANGER, since))
    assert "can't look up or change CRM records" in text
    assert "link" in text.lower() and "code" in text.lower()
    await chat.reply_to(STRANGER, since, "On our team?")  # the first exchange says how to link
    assert not any(name in text_of(c) for c in chat.sent(since) for name in ALICE_OPEN)


async def test_start_with_a_code_links_the_account_and_then_deals_are_shown(alice: str, chat: Chat) -> None:
    assert "Linked" in alice and "alice" in alice
    since = await chat.say(ALICE, "show my open deals")
    reply = await chat.reply_to(ALICE, since, "Acme - Fleet telematics")
    assert reply.params["parse_mode"] == "HTML"
    await asyncio.sleep(1)  # every piece of the answer has been sent by now
    shown = "\n".join(text_of(c) for c in chat.sent(since, ALICE))
    assert all(name in shown for name in ALICE_OPEN)
    assert "Globex" not in shown and "Umbrella" not in shown


def deal_stage(store: Store) -> DealStage:
    with store.unit_of_work() as uow:
        deal: Deal = uow.session.scalars(select(Deal).where(Deal.name == DEAL)).one()
        return deal.stage


def telegram_audit_rows(store: Store, deal_id: int) -> int:
    with store.unit_of_work() as uow:
        return int(
            uow.session.scalar(
                select(func.count())
                .select_from(AuditLog)
                .where(AuditLog.entity_type == "deals", AuditLog.entity_id == deal_id, AuditLog.channel == "telegram")
            )
            or 0
        )


async def test_a_write_confirmed_with_the_inline_keyboard_is_done_once_audited_and_the_keyboard_removed(
    alice: str, chat: Chat, store: Store
) -> None:
    assert deal_stage(store) is DealStage.QUALIFICATION
    with store.unit_of_work() as uow:
        deal_id = uow.session.scalars(select(Deal.id).where(Deal.name == DEAL)).one()
    audits_before = telegram_audit_rows(store, deal_id)

    since = await chat.say(ALICE, "move the initech deal to proposal")
    question = await chat.reply_to(ALICE, since, "to Proposal")
    yes = next(b for b in buttons_of(question) if b["text"].lower().startswith("yes"))
    assert len(yes["callback_data"].encode()) <= 64
    assert deal_stage(store) is DealStage.QUALIFICATION  # read back only

    # Telegram delivers the click three times (retries): one answer, one write, one audit row.
    click = callback_update(next_update_id(), yes["callback_data"], from_id=ALICE, message_id=4242)
    since = len(chat.fake.recorder)
    statuses = await asyncio.gather(*(chat.post(click) for _ in range(3)))
    assert statuses == [200, 200, 200]
    await chat.wait(
        "answerCallbackQuery", since, lambda c: c.params.get("callback_query_id") == f"cq{click['update_id']}"
    )
    removed = await chat.wait("editMessageReplyMarkup", since, lambda c: c.params.get("message_id") == 4242)
    assert removed.params["chat_id"] == ALICE and not (removed.params.get("reply_markup") or {}).get("inline_keyboard")
    await chat.reply_to(ALICE, since, "Moved")
    assert deal_stage(store) is DealStage.PROPOSAL
    with store.unit_of_work() as uow:
        row = uow.session.scalars(
            select(AuditLog)
            .where(AuditLog.entity_type == "deals", AuditLog.entity_id == deal_id)
            .order_by(AuditLog.id.desc())
        ).first()
        assert row is not None and row.channel == "telegram" and row.changes["stage"] == ["Qualification", "Proposal"]

    # The same button clicked again (a client that still shows it): answered, nothing done twice.
    since = len(chat.fake.recorder)
    again = callback_update(next_update_id(), yes["callback_data"], from_id=ALICE, message_id=4242)
    assert await chat.post(again) == 200
    await chat.wait(
        "answerCallbackQuery", since, lambda c: c.params["callback_query_id"] == again["callback_query"]["id"]
    )
    marker = await chat.say(ALICE, "/help")
    await chat.reply_to(ALICE, marker)
    assert [c for c in chat.sent(since, ALICE) if "Moved" in text_of(c)] == []
    assert telegram_audit_rows(store, deal_id) == audits_before + 1

    since = await chat.say(ALICE, "undo that")
    await chat.reply_to(ALICE, since, "Undone")
    assert deal_stage(store) is DealStage.QUALIFICATION


async def test_a_click_on_a_button_never_offered_gets_a_short_answer_and_nothing_else(alice: str, chat: Chat) -> None:
    since = len(chat.fake.recorder)
    click = callback_update(next_update_id(), "not-a-key-we-issued", from_id=ALICE, message_id=31)
    assert await chat.post(click) == 200
    answer = await chat.wait(
        "answerCallbackQuery", since, lambda c: c.params["callback_query_id"] == click["callback_query"]["id"]
    )
    assert "earlier question" in str(answer.params.get("text", ""))
    await chat.wait("editMessageReplyMarkup", since, lambda c: c.params.get("message_id") == 31)
    marker = await chat.say(ALICE, "/help")
    await chat.reply_to(ALICE, marker)
    assert [c for c in chat.between(since, marker) if "earlier question" in text_of(c)] == []  # a toast only


async def test_the_same_message_delivered_three_times_is_answered_once(alice: str, chat: Chat) -> None:
    update = message_update(next_update_id(), "what stage is the initech deal in", from_id=ALICE, message_id=99)
    since = len(chat.fake.recorder)
    assert await asyncio.gather(*(chat.post(update) for _ in range(3))) == [200, 200, 200]
    await chat.reply_to(ALICE, since, "Initech")
    marker = await chat.say(ALICE, "/help")  # answered after any repeat would have been
    await chat.reply_to(ALICE, marker)
    assert len([c for c in chat.between(since, marker, ALICE) if "Initech" in text_of(c)]) == 1


async def test_messages_from_bots_including_our_own_are_ignored(alice: str, chat: Chat) -> None:
    since = len(chat.fake.recorder)
    for bot_id in (999, 424_242):  # our own bot (getMe id), and another bot
        update = message_update(next_update_id(), "show my open deals", from_id=bot_id, chat_id=ALICE, is_bot=True)
        assert await chat.post(update) == 200
    marker = await chat.say(ALICE, "/help")
    await chat.reply_to(ALICE, marker)
    answered = [text_of(c) for c in chat.between(since, marker, ALICE)]
    assert not [t for t in answered if "code" in t or any(name in t for name in ALICE_OPEN)]


async def test_a_name_with_markup_characters_still_makes_a_valid_message(
    alice: str, chat: Chat, running: Running
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{running.settings.gateway_url}/api/v1/accounts",
            json={"name": NASTY, "industry": "Software"},
            headers=running.headers("alice"),
        ) as resp,
    ):
        assert resp.status == 201, await resp.text()
        account_id = (await resp.json())["id"]
    try:
        since = await chat.say(ALICE, "tell me about Under_score Star Brackets Tag")
        reply = await chat.reply_to(ALICE, since, NASTY)  # text_of parses the HTML as strictly as Telegram
        assert "&lt;Tag&gt;" in reply.params["text"]
    finally:
        async with (
            aiohttp.ClientSession() as http,
            http.delete(
                f"{running.settings.gateway_url}/api/v1/accounts/{account_id}", headers=running.headers("alice")
            ) as resp,
        ):
            assert resp.status == 204


async def test_record_data_asked_in_a_group_goes_to_the_private_chat(alice: str, chat: Chat) -> None:
    since = await chat.say(ALICE, "/crm show my open deals", chat_id=GROUP)
    note = await chat.reply_to(GROUP, since)
    assert text_of(note) == SENT_PRIVATELY
    private = await chat.reply_to(ALICE, since, "Acme - Fleet telematics")
    assert private.params["chat_id"] == ALICE
    await asyncio.sleep(1)
    in_group = "\n".join(text_of(c) for c in chat.sent(since, GROUP))
    assert not any(name in in_group for name in ALICE_OPEN)


async def test_group_chatter_is_not_read_but_a_mention_is(alice: str, chat: Chat) -> None:
    since = await chat.say(ALICE, "show my open deals", chat_id=GROUP)
    marker = await chat.say(ALICE, "@crm_test_bot what can you do?", chat_id=GROUP)
    await chat.reply_to(GROUP, marker)
    assert chat.between(since, marker, GROUP) == []  # nothing answered the un-addressed message
    assert not [c for c in chat.between(since, marker, ALICE) if "Acme" in text_of(c)]


async def test_a_group_member_who_never_started_the_bot_gets_a_note_and_no_data(chat: Chat, running: Running) -> None:
    linked = await link(chat, running, BOB, "bob")
    assert "Linked" in linked
    async with aiohttp.ClientSession() as http, http.post(f"{chat.fake.url}/_fake/never-started/{BOB}") as resp:
        assert resp.status == 200
    since = await chat.say(BOB, "/crm show my open deals", chat_id=GROUP)
    note = text_of(await chat.reply_to(GROUP, since))
    assert "private chat" in note and "@crm_test_bot" in note
    await asyncio.sleep(1)
    in_group = "\n".join(text_of(c) for c in chat.sent(since, GROUP))
    assert "Globex" not in in_group and "Umbrella" not in in_group


async def test_a_due_reminder_reaches_the_users_private_chat(chat: Chat, running: Running) -> None:
    """Telegram is this rep's only linked channel, so the scheduler delivers the reminder there."""
    rep = await asyncio.to_thread(running.new_user)
    assert "Linked" in await link(chat, running, CARLOS, rep)
    since = len(chat.fake.recorder)
    due = dt.datetime.now(dt.UTC).isoformat()
    message = f"Call {NASTY} back"
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{running.settings.gateway_url}/api/v1/reminders",
            json={"message": message, "remind_at": due},
            headers=running.headers(rep),
        ) as resp,
    ):
        assert resp.status == 201, await resp.text()
    delivered = await chat.reply_to(CARLOS, since, message)
    assert delivered.params["parse_mode"] == "HTML" and "&lt;Tag&gt;" in delivered.params["text"]


async def test_when_the_dialogue_engine_is_down_the_user_gets_a_plain_sentence(alice: str, running: Running) -> None:
    """A second gateway (the real app, in-process) whose Rasa port has nothing listening."""
    settings = running.settings.model_copy(update={"rasa_port": free_port(), "scheduler_enabled": False})
    store = Store.from_url(settings.effective_database_url)
    server = TestServer(create_app(settings, store), host="127.0.0.1")
    await server.start_server()
    try:
        down = Chat(running, str(server.make_url("")).rstrip("/"))
        since = await down.say(ALICE, "show my open deals")
        text = text_of(await down.reply_to(ALICE, since))
        assert "not available" in text and "Traceback" not in text
    finally:
        await server.close()


async def test_polling_mode_fetches_updates_and_answers(alice: str, running: Running) -> None:
    """Development mode: a gateway (in-process) that fetches updates with getUpdates instead of a webhook."""
    settings = running.settings.model_copy(
        update={"telegram_mode": "polling", "scheduler_enabled": False, "slack_bot_token": None}
    )
    store = Store.from_url(settings.effective_database_url)
    fake = running.telegram
    since = len(fake.recorder)
    server = TestServer(create_app(settings, store), host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        assert (await asyncio.to_thread(fake.recorder.wait_for, "deleteWebhook", since=since, timeout=10)).method
        update = message_update(next_update_id(), "what stage is the initech deal in", from_id=ALICE, message_id=7)
        async with aiohttp.ClientSession() as http, http.post(f"{fake.url}/_fake/updates", json=update) as resp:
            assert resp.status == 200
        reply = await asyncio.to_thread(
            fake.recorder.wait_for,
            "sendMessage",
            lambda c: c.params.get("chat_id") == ALICE and "Initech" in text_of(c),
            TURN_SECONDS,
            since,
        )
        assert reply.params["parse_mode"] == "HTML"
        acknowledged = update["update_id"] + 1  # the next getUpdates confirms it, so it is never fetched again
        await asyncio.to_thread(
            fake.recorder.wait_for, "getUpdates", lambda c: c.params.get("offset") == acknowledged, 10, since
        )
    finally:
        await server.close()


def test_the_gateway_log_never_shows_the_bot_token(running: Running) -> None:
    token = running.settings.telegram_bot_token
    assert token is not None
    logs = running.settings.logs_dir
    text = "\n".join(p.read_text(errors="replace") for p in logs.glob("*.log"))
    assert text, "the stack writes its logs under var/logs"
    assert token.get_secret_value() not in text


async def test_a_code_asked_from_the_assistant_links_telegram_and_unlink_cuts_it_off_at_once(
    chat: Chat, running: Running
) -> None:
    rep = await asyncio.to_thread(running.new_user)
    asked = await running.say(rep, "link")
    code = next(
        word.rstrip(".") for r in asked["replies"] for word in r["text"].split() if "-" in word and len(word) >= 9
    )
    telegram_user = 424242
    since = await chat.say(telegram_user, f"/start {code}")
    assert "Linked" in text_of(await chat.reply_to(telegram_user, since))
    since = await chat.say(telegram_user, "show my team's open deals")
    assert "link your CRM account" not in text_of(await chat.reply_to(telegram_user, since))
    since = await chat.say(telegram_user, "unlink")
    assert "no longer linked" in text_of(await chat.reply_to(telegram_user, since))
    since = await chat.say(telegram_user, "show my open deals")
    answer = text_of(await chat.reply_to(telegram_user, since))
    assert "link" in answer.lower() and "$" not in answer
    await chat.reply_to(telegram_user, since, "On our team?")  # a prospect's first exchange: how to link
    since = await chat.say(telegram_user, f"/start {code}")  # the code worked once
    assert "not valid" in text_of(await chat.reply_to(telegram_user, since))
