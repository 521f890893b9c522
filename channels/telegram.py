"""The Telegram channel: Bot API updates in (a webhook on the gateway, or polling for development),
`assistant.messages.Inbound` to the Dialogue, replies out as escaped HTML with inline keyboards.

python-telegram-bot is used as the API client only (`telegram.Bot` pointed at `TELEGRAM_API_URL`, every
call with timeouts). Every webhook call must carry the secret token; each update is processed once
(its `update_id` is kept in the database); bots, including this one, are never answered. In groups the
bot reads only commands, mentions and replies to itself, and an answer with CRM data goes to the asker's
private chat, never the group (unless an admin made the group the asker's team room).
See docs/channels/telegram.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from telegram import (
    Audio,
    Bot,
    CallbackQuery,
    InputFile,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
    User,
    Voice,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.request import HTTPXRequest

from assistant.dialogue import DELIVERY, DIALOGUE, PROSPECT_LINK_HINT, DialogueUnavailable
from assistant.handoff import HANDOFF
from assistant.messages import Inbound, Outcome, Reply, Sender
from assistant.settings import Settings
from assistant.voice_api import voice_note
from channels import ChannelMisconfigured
from channels.telegram_render import (
    keyboard,
    notification_messages,
    parse_callback_data,
    render_reply,
    short,
)
from voice.audio import encode_voice_note

if TYPE_CHECKING:
    from crm_backend.scheduler.delivery import NotificationView

log = logging.getLogger(__name__)

CHANNEL: Final = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
MAX_UPDATE_BYTES = 256 * 1024
POLL_SECONDS = 25
ALLOWED_UPDATES = ("message", "callback_query")
STOP_GRACE_SECONDS = 5.0
# Telegram's own rule for secret_token: 1-256 characters of A-Z, a-z, 0-9, _ and -.
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_COMMAND = re.compile(r"^/(?P<name>[A-Za-z0-9_]{1,32})(?:@(?P<bot>[A-Za-z0-9_]+))?(?:\s+(?P<rest>.*))?$", re.DOTALL)

SENT_PRIVATELY = "I've sent you the answer in a private message."
SERVER_ERROR = "Sorry, something went wrong on my side. Please try again."
EXPIRED_BUTTON = "This button no longer works. Please ask again."
# Voice messages are for linked CRM users; anyone else (a prospect) types, and a colleague learns how to link.
VOICE_UNLINKED = "I can only read typed messages from you here, so please type your question. " + PROSPECT_LINK_HINT
VOICE_TOO_LARGE = "That voice message is too long for me (the limit is {mb:g} MB). Please send a shorter one."
VOICE_NOT_FETCHED = "I couldn't fetch that voice message from Telegram. Please try again, or type it."


def open_private_chat(username: str) -> str:
    """The group note when the answer has CRM data but the bot may not write to the asker privately yet."""
    return (
        "That answer contains CRM data, so I only send it in a private chat. "
        f"Please open a private chat with @{username}, press Start, and ask me there."
    )


# --- what the bot reads -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the bot is (from getMe): to skip its own messages and recognise mentions and replies to it."""

    id: int
    username: str


def is_group(chat_type: str) -> bool:
    return chat_type in (ChatType.GROUP, ChatType.SUPERGROUP)


def dialogue_text(message: Message, me: BotIdentity) -> str | None:
    """The text a message asks of the Dialogue, or None when the bot must stay quiet: messages from bots,
    non-text messages, and in groups everything except our commands, mentions of us and replies to us."""
    sender = message.from_user
    text = (message.text or "").strip()
    if sender is None or sender.is_bot or not text:
        return None
    private = message.chat.type == ChatType.PRIVATE
    command = _COMMAND.match(text)
    if command:
        addressee = command["bot"]
        if addressee is not None and addressee.lower() != me.username.lower():
            return None  # a command for another bot in the group
        name, rest = command["name"].lower(), (command["rest"] or "").strip()
        if name == "start":
            return f"/start {rest}" if rest else "hello"
        if name == "help":
            return "help"
        if name == "cancel":
            return "stop"
        if name == "crm":
            return rest or "help"
        return text if private or addressee is not None else None
    if private:
        return text
    mention = re.compile(rf"@{re.escape(me.username)}\b", re.IGNORECASE)
    if mention.search(text):
        return " ".join(mention.sub(" ", text).split()) or "help"
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        return text
    return None


def voice_of(message: Message, me: BotIdentity) -> Voice | Audio | None:
    """The voice note (or audio file) a message asks the Dialogue about: in a private chat, or in a group
    when it replies to the bot. None for bots and for everything else."""
    sender = message.from_user
    media = message.voice or message.audio
    if sender is None or sender.is_bot or media is None:
        return None
    if message.chat.type == ChatType.PRIVATE:
        return media
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        return media
    return None


def thread_key(chat_id: int | str, topic: int | None = None) -> str:
    """The conversation key of a chat (and forum topic): `chat:topic`."""
    return f"{chat_id}:{topic or ''}"


def topic_of(message: Message) -> int | None:
    """The forum topic a message is in; replies in ordinary groups are not topics."""
    return message.message_thread_id if message.is_topic_message else None


def unreachable(exc: TelegramError) -> bool:
    """Telegram refuses to open a private chat: the user never started the bot, or blocked it."""
    return isinstance(exc, Forbidden) or (isinstance(exc, BadRequest) and "chat not found" in exc.message.lower())


# --- where replies go ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a turn came from: the chat to answer in, its topic, the message to reply to, and who asked."""

    chat_id: int
    user_id: int
    shared: bool
    topic: int | None = None
    reply_to: int | None = None
    thread: str = ""  # the conversation's thread, when it differs from this chat's (a click in a private copy)

    @property
    def conversation_thread(self) -> str:
        return self.thread or thread_key(self.chat_id, self.topic)

    @property
    def address(self) -> dict[str, object]:
        """Where an agent's reply goes later: the asker's private chat (a group would show it to everyone)."""
        if self.shared:
            return {"chat_id": self.user_id, "thread": self.conversation_thread}
        return {"chat_id": self.chat_id, "topic": self.topic, "thread": self.conversation_thread}


def _arrival(message: Message, sender: User, text: str | None) -> tuple[Origin, Inbound]:
    """Where a message came from and what it asks the Dialogue (text None: a voice note, heard later)."""
    group = is_group(message.chat.type)
    origin = Origin(
        chat_id=message.chat.id,
        user_id=sender.id,
        shared=group,
        topic=topic_of(message),
        reply_to=message.message_id if group else None,
    )
    inbound = Inbound(
        sender=Sender(CHANNEL, str(sender.id), display_name=sender.full_name),
        thread=origin.conversation_thread,
        text=text,
        room=str(message.chat.id) if group else "",
        shared=group,
        address=origin.address,
    )
    return origin, inbound


class TelegramChannel:
    """The bot's client, the update handling, and the background work of one gateway process."""

    def __init__(self, app: web.Application, settings: Settings, bot: Bot | None = None) -> None:
        if settings.telegram_bot_token is None:
            raise ChannelMisconfigured("The Telegram channel needs TELEGRAM_BOT_TOKEN.")
        self.app = app
        self.settings = settings
        self.mode = settings.telegram_mode
        self._token = settings.telegram_bot_token.get_secret_value()
        secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else ""
        if self.mode == "webhook" and not secret:
            raise ChannelMisconfigured(
                "Telegram webhook mode needs TELEGRAM_WEBHOOK_SECRET (Telegram sends it with every update); "
                "set it, or use TELEGRAM_MODE=polling for development."
            )
        if secret and not _SECRET.match(secret):
            raise ChannelMisconfigured("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -.")
        self._secret = secret.encode()
        timeout = settings.channel_timeout_seconds
        self.bot = bot or Bot(
            self._token,
            base_url=settings.telegram_api_url,
            base_file_url=settings.telegram_file_url,
            request=HTTPXRequest(
                connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout, pool_timeout=timeout
            ),
            # getUpdates waits up to POLL_SECONDS on top of this read timeout (PTB adds them).
            get_updates_request=HTTPXRequest(
                connection_pool_size=1,
                connect_timeout=timeout,
                read_timeout=timeout,
                write_timeout=timeout,
                pool_timeout=timeout,
            ),
        )
        self.me: BotIdentity | None = None
        self._me_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._turns = _Turns()
        self._poller: asyncio.Task[None] | None = None

    # --- life cycle

    async def start(self) -> None:
        """Learn who the bot is (getMe); in polling mode start fetching updates. A Telegram outage at
        start-up does not stop the gateway: getMe is retried with the first update."""
        try:
            await self.identity()
        except TelegramError as exc:
            log.warning("telegram: getMe failed at start-up (%s); will retry on the first update", self.redact(exc))
        if self.mode == "polling":
            self._poller = asyncio.create_task(self._poll(), name="telegram-poll")

    async def stop(self) -> None:
        """Stop polling, let running turns finish for a moment, cancel the rest, close the client."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(TelegramError, RuntimeError):
            await self.bot.shutdown()

    async def identity(self) -> BotIdentity:
        if self.me is None:
            async with self._me_lock:
                if self.me is None:
                    await self.bot.initialize()  # calls getMe once
                    user = self.bot.bot
                    self.me = BotIdentity(user.id, user.username or "")
        return self.me

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` after the webhook has answered; the set keeps the task alive until it ends."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def redact(self, exc: BaseException) -> str:
        """An error for the log, with the bot token (part of every Bot API URL) taken out."""
        return f"{type(exc).__name__}: {exc}".replace(self._token, "<token>")[:300]

    # --- webhook and polling

    async def webhook(self, request: web.Request) -> web.Response:
        """POST /telegram/webhook: check the secret token, answer at once, process the update after."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            return web.json_response({"ok": False, "error": "too_large"}, status=413)
        try:
            data = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"}, status=400)
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.json_response({"ok": False, "error": "not_an_update"}, status=400)
        if self.me is None:
            try:
                await self.identity()
            except TelegramError as exc:  # Telegram retries the update later; we'd lose it now
                log.warning("telegram: getMe failed (%s); asking Telegram to retry", self.redact(exc))
                return web.json_response({"ok": False, "error": "not_ready"}, status=503)
        self.spawn(self.process(data))
        return web.json_response({"ok": True})

    async def _poll(self) -> None:
        """Development mode: fetch updates with getUpdates (long poll) and process each once."""
        with contextlib.suppress(TelegramError):
            await self.bot.delete_webhook()  # getUpdates is refused while a webhook is set
        offset: int | None = None
        pause = 1.0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=POLL_SECONDS, allowed_updates=list(ALLOWED_UPDATES)
                )
            except Exception as exc:  # the network, Telegram, or a malformed answer: keep polling
                log.warning("telegram: getUpdates failed (%s); retrying in %.0fs", self.redact(exc), pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)
                continue
            pause = 1.0
            for update in updates:
                offset = update.update_id + 1
                self.spawn(self.process(update))

    async def process(self, data: dict[str, Any] | Update) -> None:
        """One update: skip what the bot must not answer, drop repeats, then run the turn."""
        try:
            me = await self.identity()
            update = data if isinstance(data, Update) else Update.de_json(data, self.bot)
            if update.callback_query is not None:
                await self._on_click(update.update_id, update.callback_query)
            elif update.message is not None:
                await self._on_message(update.update_id, update.message, me)
        except Exception as exc:  # a background task: log it (without the token) and carry on
            log.warning("telegram: an update failed: %s", self.redact(exc))

    # --- messages and clicks

    async def _on_message(self, update_id: int, message: Message, me: BotIdentity) -> None:
        media = voice_of(message, me)
        if media is not None:
            await self._on_voice(update_id, message, media)
            return
        text = dialogue_text(message, me)
        sender = message.from_user
        if text is None or sender is None:
            return
        origin, inbound = _arrival(message, sender, text)
        async with self._turns.hold(f"{origin.conversation_thread}/{sender.id}"):
            if not await self.app[DIALOGUE].first_time(CHANNEL, str(update_id)):
                return
            await self._turn(inbound, origin)

    async def _on_voice(self, update_id: int, message: Message, media: Voice | Audio) -> None:
        """A voice note: fetched, transcribed, shown back ("I heard: ..."), answered like typed text, and
        answered with a voice note too when the user wants voice replies."""
        sender = message.from_user
        if sender is None:
            return
        origin, inbound = _arrival(message, sender, None)
        async with self._turns.hold(f"{origin.conversation_thread}/{sender.id}"):
            if not await self.app[DIALOGUE].first_time(CHANNEL, str(update_id)):
                return
            if await self.app[DIALOGUE].actor_of(inbound.sender) is None:  # the audio is never fetched
                await self._send(origin.chat_id, [Reply(VOICE_UNLINKED)], origin)
                return
            limit = self.settings.voice_max_bytes
            if media.file_size is not None and media.file_size > limit:
                await self._send(origin.chat_id, [Reply(VOICE_TOO_LARGE.format(mb=limit / 1024 / 1024))], origin)
                return
            try:
                file = await self.bot.get_file(media.file_id)
                audio = bytes(await file.download_as_bytearray())
            except TelegramError as exc:
                log.warning("telegram: could not fetch a voice message: %s", self.redact(exc))
                await self._send(origin.chat_id, [Reply(VOICE_NOT_FETCHED)], origin)
                return
            try:
                answer = await voice_note(self.app, inbound, audio, media.mime_type)
            except DialogueUnavailable as exc:
                await self._send(origin.chat_id, [Reply(exc.message)], origin)
                return
            except Exception as exc:
                log.warning("telegram: a voice turn failed: %s", self.redact(exc))
                await self._send(origin.chat_id, [Reply(SERVER_ERROR)], origin)
                return
            await self.deliver(answer.outcome, origin, speech=answer.speech)

    async def _on_click(self, update_id: int, query: CallbackQuery) -> None:
        message = query.message
        if message is None or not query.data:
            await self._answer(query, EXPIRED_BUTTON)
            return
        key, origin_thread = parse_callback_data(query.data)
        chat = message.chat
        topic = message.message_thread_id if isinstance(message, Message) and message.is_topic_message else None
        thread = origin_thread or thread_key(chat.id, topic)
        room = thread.partition(":")[0]
        shared = room.startswith("-")  # Telegram numbers groups below zero, private chats above
        origin = Origin(chat.id, query.from_user.id, is_group(chat.type), topic, thread=origin_thread or "")
        inbound = Inbound(
            sender=Sender(CHANNEL, str(query.from_user.id), display_name=query.from_user.full_name),
            thread=thread,
            button=key,
            room=room if shared else "",
            shared=shared,
        )
        async with self._turns.hold(f"{thread}/{query.from_user.id}"):
            if not await self.app[DIALOGUE].first_time(CHANNEL, str(update_id)):
                return
            # Take the keyboard away first, so the same question cannot be answered twice.
            try:
                await self.bot.edit_message_reply_markup(chat_id=chat.id, message_id=message.message_id)
            except TelegramError as exc:
                log.info("telegram: could not remove a keyboard (%s)", self.redact(exc))
            await self._turn(inbound, origin, query)

    async def _turn(self, inbound: Inbound, origin: Origin, query: CallbackQuery | None = None) -> None:
        """Ask the Dialogue, answer the click (if any), deliver the replies where they may be read."""
        try:
            outcome = await self.app[DIALOGUE].handle(inbound)
        except DialogueUnavailable as exc:
            if query is not None:
                await self._answer(query, exc.message)
            await self._send(origin.chat_id, [Reply(exc.message)], origin)
            return
        except Exception as exc:
            log.warning("telegram: a turn failed: %s", self.redact(exc))
            if query is not None:
                await self._answer(query, SERVER_ERROR)
            await self._send(origin.chat_id, [Reply(SERVER_ERROR)], origin)
            return
        if query is not None:
            stale = outcome.status == "stale_button"
            await self._answer(query, short(outcome.replies[0].text) if stale and outcome.replies else None)
            if stale:
                return
        await self.deliver(outcome, origin)

    async def deliver(self, outcome: Outcome, origin: Origin, *, speech: bytes = b"") -> None:
        """Replies with CRM data asked in a group go to the asker's private chat, with a note in the group;
        everything else is answered where it was asked. `speech` (WAV) follows the text as a voice note."""
        if not outcome.replies or outcome.status == "duplicate":
            return
        if origin.shared and outcome.private and not outcome.room_team_ok:
            private = Origin(origin.user_id, origin.user_id, shared=False, thread=origin.conversation_thread)
            try:
                await self._send(origin.user_id, outcome.replies, private, raise_unreachable=True)
            except TelegramError as exc:
                log.info("telegram: cannot write privately to a group member (%s)", self.redact(exc))
                me = await self.identity()
                await self._send(origin.chat_id, [Reply(open_private_chat(me.username))], origin)
                return
            await self._send_voice(origin.user_id, speech, private)
            await self._send(origin.chat_id, [Reply(SENT_PRIVATELY)], origin)
            return
        await self._send(origin.chat_id, outcome.replies, origin)
        await self._send_voice(origin.chat_id, speech, origin)

    async def _send_voice(self, chat_id: int, speech: bytes, origin: Origin) -> None:
        """sendVoice with the replies spoken (OGG/Opus, as Telegram plays voice notes); nothing when silent."""
        if not speech:
            return
        try:
            note = await asyncio.to_thread(encode_voice_note, speech)
            await self.bot.send_voice(
                chat_id=chat_id, voice=InputFile(note, filename="reply.ogg"), message_thread_id=origin.topic
            )
        except TelegramError as exc:
            log.warning("telegram: sendVoice failed: %s", self.redact(exc))
        except Exception as exc:  # an encoder failure must not lose the (already sent) text answer
            log.warning("telegram: could not encode the voice reply: %s", exc)

    async def _send(
        self, chat_id: int, replies: list[Reply], origin: Origin, *, raise_unreachable: bool = False
    ) -> None:
        """sendMessage for every rendered piece. Buttons shown outside their conversation's chat carry
        the conversation's thread, so a click in the private chat continues the group's conversation."""
        button_origin = origin.thread or None
        first = True
        for reply in replies:
            for piece in render_reply(reply):
                try:
                    await self.bot.send_message(
                        chat_id=chat_id,
                        text=piece.html,
                        parse_mode=ParseMode.HTML,
                        reply_markup=keyboard(piece.buttons, button_origin),
                        message_thread_id=origin.topic,
                        reply_parameters=(
                            ReplyParameters(origin.reply_to, allow_sending_without_reply=True)
                            if first and origin.reply_to
                            else None
                        ),
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                    )
                except TelegramError as exc:
                    if raise_unreachable and first and unreachable(exc):
                        raise
                    log.warning("telegram: sendMessage failed: %s", self.redact(exc))
                    return
                first = False

    async def push(self, address: dict[str, Any], replies: list[Reply]) -> bool:
        """Replies outside a turn (an agent's words after a handoff), to the chat in `address`."""
        chat_id = int(str(address["chat_id"]))
        topic = address.get("topic")
        origin = Origin(
            chat_id,
            chat_id,
            shared=False,
            topic=int(str(topic)) if topic else None,
            thread=str(address.get("thread") or ""),
        )
        await self._send(chat_id, replies, origin)
        return True

    async def _answer(self, query: CallbackQuery, text: str | None) -> None:
        """answerCallbackQuery, always, so the client stops its spinner; a stale click gets a short toast."""
        try:
            await self.bot.answer_callback_query(query.id, text=short(text) if text else None)
        except TelegramError as exc:
            log.info("telegram: answerCallbackQuery failed (%s)", self.redact(exc))


class _Turns:
    """One turn at a time per conversation, in arrival order (a quick "yes" must not overtake its question)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class TelegramDeliverer:
    """Notifications (reminders, hot-lead alerts, escalations) to the user's private chat with the bot."""

    channel = CHANNEL

    def __init__(self, telegram: TelegramChannel, timeout_seconds: float) -> None:
        self.telegram = telegram
        self.timeout_seconds = timeout_seconds

    async def deliver(self, notification: NotificationView) -> None:
        if not notification.address:
            raise ValueError("the user has no linked Telegram chat")
        for text in notification_messages(notification.title, notification.body):
            await self.telegram.bot.send_message(
                chat_id=int(notification.address),
                text=text,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )


TELEGRAM = web.AppKey("telegram", TelegramChannel)


def quiet_client_logs() -> None:
    """httpx logs every request URL at INFO, and the Bot API URL contains the bot token: keep those loggers
    (and python-telegram-bot's own debug output) at WARNING."""
    for name in ("httpx", "httpcore", "telegram"):
        logging.getLogger(name).setLevel(logging.WARNING)


def mount(app: web.Application, settings: Settings) -> None:
    """Add the Telegram channel to the gateway app: the webhook route (webhook mode) or the poller
    (polling mode), getMe at start-up, and the notification deliverer. Refuses to start webhook mode
    without TELEGRAM_WEBHOOK_SECRET."""
    quiet_client_logs()
    telegram = TelegramChannel(app, settings)
    app[TELEGRAM] = telegram
    if telegram.mode == "webhook":
        app.router.add_post(WEBHOOK_PATH, telegram.webhook)
    if HANDOFF in app:
        app[HANDOFF].register(CHANNEL, telegram.push)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await telegram.start()
        registry = app.get(DELIVERY)
        if registry is not None:
            registry.register(TelegramDeliverer(telegram, settings.channel_timeout_seconds))
        yield
        if registry is not None:
            registry.unregister(CHANNEL)
        await telegram.stop()

    app.cleanup_ctx.append(lifecycle)
