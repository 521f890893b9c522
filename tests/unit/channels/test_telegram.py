"""The Telegram adapter's rules without Rasa: escaping and splitting that Telegram accepts, inline keyboards,
what the bot reads in groups, the webhook's secret check, start-up refusals, notifications, and that the
bot token never reaches the log. Calls go to the fake Bot API (tests/fakes/telegram_api.py) over HTTP.
The whole conversation path is in tests/e2e/test_telegram_channel.py."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import Message, Update
from telegram.error import NetworkError

from assistant.messages import Button, Reply
from assistant.settings import Settings
from assistant.stack import free_port
from channels import ChannelMisconfigured
from channels.telegram import (
    SECRET_HEADER,
    TELEGRAM,
    WEBHOOK_PATH,
    BotIdentity,
    TelegramDeliverer,
    dialogue_text,
    mount,
    thread_key,
    topic_of,
    voice_of,
)
from channels.telegram_render import (
    TEXT_LIMIT,
    callback_data,
    escape,
    keyboard,
    notification_messages,
    pack,
    parse_callback_data,
    render_reply,
    reply_lines,
    utf16_len,
)
from crm_backend.scheduler.delivery import NotificationView
from tests.fakes.server import FakeServer
from tests.fakes.telegram_api import ApiError, message_update, parse_html, telegram_routes, voice_update

ME = BotIdentity(999, "crm_test_bot")
TOKEN = "123456:unit-test-token"
SECRET = "unit-webhook-secret"
NASTY = "Under_score *Star* [Brackets] <Tag> & Co"


# --- escaping and splitting -----------------------------------------------------------------------


def test_names_with_markup_characters_are_escaped_and_read_back_unchanged() -> None:
    [message] = render_reply(Reply(f"Account: {NASTY}"))
    assert "&lt;Tag&gt;" in message.html and "&amp; Co" in message.html
    assert parse_html(message.html) == f"Account: {NASTY}"  # Telegram's parser accepts it, text intact


def test_a_10000_character_reply_is_three_messages_split_between_lines() -> None:
    lines = [f"{n:04d} " + "x" * 94 for n in range(100)]  # 100 lines of 99 characters
    text = "\n".join(lines)
    assert len(text) == 9999
    messages = render_reply(Reply(text))
    assert len(messages) == 3
    assert all(utf16_len(m.html) <= TEXT_LIMIT for m in messages)
    assert [line for m in messages for line in parse_html(m.html).split("\n")] == lines


def test_one_huge_line_of_ampersands_is_cut_without_breaking_an_entity() -> None:
    messages = render_reply(Reply("&" * 10_000))
    assert len(messages) >= 10_000 * 5 // TEXT_LIMIT
    for m in messages:
        assert utf16_len(m.html) <= TEXT_LIMIT
        parse_html(m.html)  # raises on a cut entity such as "&am"
    assert "".join(parse_html(m.html) for m in messages) == "&" * 10_000


def test_emoji_count_twice_towards_the_limit() -> None:
    messages = render_reply(Reply("\n".join(["😀" * 50] * 60)))  # 3000 code points, 6000+ UTF-16 units
    assert len(messages) == 2
    assert all(utf16_len(m.html) <= TEXT_LIMIT for m in messages)


def test_a_table_split_across_messages_keeps_its_pre_tags_balanced() -> None:
    rows = tuple((f"Deal {n} <{NASTY}>", "$1,000", "Proposal") for n in range(200))
    messages = render_reply(Reply("Your deals:", rows=rows))
    assert len(messages) > 1
    for m in messages:
        assert utf16_len(m.html) <= TEXT_LIMIT
        parse_html(m.html)
        assert m.html.count("<pre>") == m.html.count("</pre>") == 1


def test_buttons_go_under_the_last_piece_only() -> None:
    yes_no = (Button("Yes", "k-yes"), Button("No", "k-no"))
    messages = render_reply(Reply("x\n" * 3000, buttons=yes_no))
    assert len(messages) == 2
    assert messages[0].buttons == () and messages[-1].buttons == yes_no


def test_a_reply_with_only_buttons_still_has_text() -> None:
    [message] = render_reply(Reply("", buttons=(Button("Yes", "k1"),)))
    assert message.html.strip() and message.buttons


def test_blank_lines_never_become_an_empty_message() -> None:
    assert pack(reply_lines(Reply("\n\n\n"))) == []


def test_a_notification_has_a_bold_escaped_title() -> None:
    [html] = notification_messages("Reminder: call <Tag> & Co", "About deal *Star*")
    assert html.startswith("<b>Reminder: call &lt;Tag&gt; &amp; Co</b>")
    assert parse_html(html) == "Reminder: call <Tag> & Co\nAbout deal *Star*"


def test_escape_leaves_markdown_characters_alone() -> None:
    assert escape("_*[]`") == "_*[]`"


# --- keyboards ------------------------------------------------------------------------------------


def test_yes_no_buttons_share_a_row_and_send_back_their_keys() -> None:
    markup = keyboard([Button("Yes", "b-1"), Button("No", "b-2")])
    assert markup is not None
    [[yes, no]] = markup.inline_keyboard
    assert (yes.text, yes.callback_data, no.text, no.callback_data) == ("Yes", "b-1", "No", "b-2")


def test_long_titles_get_one_row_each() -> None:
    markup = keyboard([Button("Initech - Analytics add-on", "b-1"), Button("Initech - Support renewal", "b-2")])
    assert markup is not None and [len(row) for row in markup.inline_keyboard] == [1, 1]


def test_no_buttons_no_keyboard() -> None:
    assert keyboard([]) is None


def test_a_button_shown_in_the_private_chat_carries_its_group_thread() -> None:
    data = callback_data("abcdefghijklmnopqrstuvwx", "-1001234567890:77")
    assert len(data.encode()) <= 64
    assert parse_callback_data(data) == ("abcdefghijklmnopqrstuvwx", "-1001234567890:77")
    assert parse_callback_data("b-1") == ("b-1", None)


def test_a_forged_thread_in_callback_data_is_ignored() -> None:
    assert parse_callback_data("b-1 not-a-thread") == ("b-1", None)
    assert parse_callback_data("b-1 -100:1 extra") == ("b-1", None)


def test_an_over_long_callback_falls_back_to_the_key() -> None:
    assert callback_data("k" * 24, "-1:" + "9" * 60) == "k" * 24


def test_the_fake_rejects_what_telegram_rejects() -> None:
    for bad in ("<b>open", "a < b", "x &nbsp; y", "<script>x</script>", "<b><i>x</b></i>", "Tom & Jerry"):
        with pytest.raises(ApiError, match="can't parse entities"):
            parse_html(bad)
    assert parse_html("<b>a</b> &lt;&amp;&gt; &#x27;&#39;") == "a <&> ''"


# --- what the bot reads ---------------------------------------------------------------------------


def message(text: str, *, chat_id: int | None = None, from_id: int = 42, **kwargs: Any) -> Message:
    update = Update.de_json(message_update(1, text, from_id=from_id, chat_id=chat_id, **kwargs), None)
    assert update is not None and update.message is not None
    return update.message


GROUP = -100123


def test_every_text_in_a_private_chat_is_read() -> None:
    assert dialogue_text(message("show my open deals"), ME) == "show my open deals"


def test_messages_from_bots_are_ignored_including_our_own() -> None:
    assert dialogue_text(message("show my open deals", is_bot=True), ME) is None
    assert dialogue_text(message("hello", from_id=ME.id, is_bot=True), ME) is None


def test_plain_chatter_in_a_group_is_ignored() -> None:
    assert dialogue_text(message("show my open deals", chat_id=GROUP), ME) is None


def test_commands_in_a_group_are_read_with_or_without_the_bot_name() -> None:
    assert dialogue_text(message("/crm show my open deals", chat_id=GROUP), ME) == "show my open deals"
    assert dialogue_text(message("/crm@crm_test_bot show my deals", chat_id=GROUP), ME) == "show my deals"
    assert dialogue_text(message("/help@CRM_Test_Bot", chat_id=GROUP), ME) == "help"
    assert dialogue_text(message("/cancel", chat_id=GROUP), ME) == "stop"
    assert dialogue_text(message("/crm", chat_id=GROUP), ME) == "help"


def test_commands_for_another_bot_are_ignored() -> None:
    assert dialogue_text(message("/crm@other_bot show deals", chat_id=GROUP), ME) is None
    assert dialogue_text(message("/weather", chat_id=GROUP), ME) is None


def test_mentions_and_replies_to_the_bot_are_read_in_a_group() -> None:
    assert dialogue_text(message("@crm_test_bot show my open deals", chat_id=GROUP), ME) == "show my open deals"
    assert dialogue_text(message("hey @Crm_Test_Bot", chat_id=GROUP), ME) == "hey"
    assert dialogue_text(message("@crm_test_bot", chat_id=GROUP), ME) == "help"
    assert dialogue_text(message("@crm_test_botty hi", chat_id=GROUP), ME) is None
    assert dialogue_text(message("yes", chat_id=GROUP, message_id=5, reply_to_bot=True), ME) == "yes"


def test_start_help_and_cancel_become_words_the_dialogue_knows() -> None:
    assert dialogue_text(message("/start ABCD-EFGH"), ME) == "/start ABCD-EFGH"
    assert dialogue_text(message("/start"), ME) == "hello"
    assert dialogue_text(message("/help"), ME) == "help"
    assert dialogue_text(message("/cancel"), ME) == "stop"


def test_a_typed_payload_in_a_private_chat_is_passed_as_plain_text() -> None:
    # The Dialogue treats it as words (never as an intent); the adapter must not drop or rewrite it.
    assert dialogue_text(message('/inform{"amount": 1}'), ME) == '/inform{"amount": 1}'


def test_topics_get_their_own_thread() -> None:
    assert thread_key(GROUP, topic_of(message("/help", chat_id=GROUP, thread_id=7))) == f"{GROUP}:7"
    assert thread_key(GROUP, topic_of(message("/help", chat_id=GROUP))) == f"{GROUP}:"


# --- the webhook, start-up, notifications, logs --------------------------------------------------------


@pytest.fixture(scope="module")
def fake_telegram() -> Iterator[FakeServer]:
    server = FakeServer(telegram_routes).start()
    yield server
    server.stop()


def settings_for(fake: FakeServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_MODE": "webhook",
        "TELEGRAM_API_URL": f"{fake.url}/bot",
        "CHANNEL_TIMEOUT_SECONDS": 5,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def gateway(fake_telegram: FakeServer) -> AsyncIterator[tuple[str, web.Application]]:
    """Only the Telegram channel on an aiohttp app (no Dialogue: these requests never reach one)."""
    app = web.Application()
    mount(app, settings_for(fake_telegram))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


async def post_update(url: str, update: dict[str, Any], secret: str | None) -> int:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    async with aiohttp.ClientSession() as http, http.post(url + WEBHOOK_PATH, json=update, headers=headers) as resp:
        return resp.status


async def test_a_wrong_or_missing_secret_token_is_refused(
    gateway: tuple[str, web.Application], fake_telegram: FakeServer
) -> None:
    url, _app = gateway
    before = len(fake_telegram.recorder)
    assert await post_update(url, message_update(1, "/help", from_id=42), "wrong-secret") == 403
    assert await post_update(url, message_update(2, "/help", from_id=42), None) == 403
    assert await post_update(url, message_update(3, "/help", from_id=42), SECRET[:-1]) == 403
    await asyncio.sleep(0.3)
    assert len(fake_telegram.recorder) == before


async def test_a_bots_message_is_acknowledged_and_never_answered(
    gateway: tuple[str, web.Application], fake_telegram: FakeServer
) -> None:
    url, app = gateway
    before = len(fake_telegram.recorder)
    assert await post_update(url, message_update(4, "hello", from_id=555, is_bot=True), SECRET) == 200
    await asyncio.sleep(0.3)
    assert app[TELEGRAM].me == ME  # learnt from getMe at start-up
    assert fake_telegram.recorder.calls()[before:] == []


async def test_a_body_that_is_not_an_update_is_a_bad_request(gateway: tuple[str, web.Application]) -> None:
    url, _app = gateway
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + WEBHOOK_PATH, data="not json", headers={SECRET_HEADER: SECRET}) as resp,
    ):
        assert resp.status == 400


def test_webhook_mode_refuses_to_start_without_a_secret(fake_telegram: FakeServer) -> None:
    with pytest.raises(ChannelMisconfigured, match="TELEGRAM_WEBHOOK_SECRET"):
        mount(web.Application(), settings_for(fake_telegram, TELEGRAM_WEBHOOK_SECRET=None))
    with pytest.raises(ChannelMisconfigured, match="TELEGRAM_WEBHOOK_SECRET"):
        mount(web.Application(), settings_for(fake_telegram, TELEGRAM_WEBHOOK_SECRET="has spaces!"))


def test_polling_mode_needs_no_secret_and_adds_no_webhook_route(fake_telegram: FakeServer) -> None:
    app = web.Application()
    mount(app, settings_for(fake_telegram, TELEGRAM_MODE="polling", TELEGRAM_WEBHOOK_SECRET=None))
    assert all(r.resource is None or r.resource.canonical != WEBHOOK_PATH for r in app.router.routes())


async def test_a_notification_reaches_the_users_private_chat_escaped(
    gateway: tuple[str, web.Application], fake_telegram: FakeServer
) -> None:
    _url, app = gateway
    since = len(fake_telegram.recorder)
    deliverer = TelegramDeliverer(app[TELEGRAM], 5.0)
    view = NotificationView(
        id=1, user_id=1, kind="reminder", title=f"Call {NASTY}", body="Due now", data={},
        entity_type=None, entity_id=None, channel="telegram", address="4242", workspace=None, attempt=1,
    )  # fmt: skip
    await deliverer.deliver(view)
    call = await asyncio.to_thread(fake_telegram.recorder.wait_for, "sendMessage", since=since, timeout=10)
    assert call.params["chat_id"] == 4242 and call.params["parse_mode"] == "HTML"
    assert parse_html(call.params["text"]) == f"Call {NASTY}\nDue now"


async def test_the_bot_token_never_reaches_the_log(fake_telegram: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = web.Application()
    mount(app, settings_for(fake_telegram, TELEGRAM_API_URL="http://127.0.0.1:9/bot"))  # nothing listens
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # getMe fails at start-up and is logged
    try:
        with pytest.raises(NetworkError):  # its text is checked below
            await app[TELEGRAM].bot.send_message(chat_id=1, text="hi")
    finally:
        await runner.cleanup()
    assert "getMe failed" in caplog.text
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text
    for record in caplog.records:
        assert TOKEN not in json.dumps(record.args, default=str)


def voice_message(*, chat_id: int | None = None, from_id: int = 42, **kwargs: Any) -> Message:
    update = Update.de_json(voice_update(1, "f1", from_id=from_id, chat_id=chat_id, **kwargs), None)
    assert update is not None and update.message is not None
    return update.message


def test_a_voice_note_is_heard_in_a_private_chat_and_in_a_group_only_as_a_reply_to_the_bot() -> None:
    heard = voice_of(voice_message(), ME)
    assert heard is not None and heard.file_id == "f1"
    assert voice_of(voice_message(chat_id=GROUP), ME) is None  # group chatter
    assert voice_of(voice_message(chat_id=GROUP, reply_to_bot=True), ME) is not None
    assert voice_of(message("hello"), ME) is None  # text is not a voice note
