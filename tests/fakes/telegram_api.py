"""A fake Telegram Bot API on 127.0.0.1 that records every call and is as strict as Telegram where it matters.

python-telegram-bot is pointed at it (`TELEGRAM_API_URL=<url>/bot`) and posts form fields to
`/bot<token>/<method>`. The fake answers like Telegram (`{"ok": true, "result": ...}`), rejects HTML
that Telegram could not parse ("can't parse entities"), texts over 4096 characters and over-long
callback data, and refuses to open a private chat with a user who never started the bot (403). Tests
queue updates for `getUpdates` (polling mode) and mark such users through two `/_fake/...` routes.
Builders for update JSON (`message_update`, `callback_update`) live here too, for unit and e2e tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import Call, Recorder

BOT = {
    "id": 999,
    "is_bot": True,
    "first_name": "CRM Test",
    "username": "crm_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
TEXT_LIMIT = 4096
CALLBACK_DATA_BYTES = 64
ANSWER_TEXT_LIMIT = 200
# Telegram's HTML parse mode: these tags, and only &lt; &gt; &amp; &quot; plus numeric entities.
HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre"}
    | {"blockquote", "tg-emoji"}
)
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
JSON_FIELDS = frozenset({"reply_markup", "reply_parameters", "link_preview_options", "allowed_updates", "entities"})
INT_FIELDS = frozenset(
    {"chat_id", "message_id", "message_thread_id", "offset", "limit", "timeout", "cache_time", "reply_to_message_id"}
)
TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_MARKUP = re.compile(
    r"<(?P<close>/?)(?P<tag>[A-Za-z][A-Za-z0-9-]*)(?P<attrs>\s[^<>]*)?>|&(?P<entity>#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);|(?P<bare>[<&])"
)


class ApiError(Exception):
    """One Bot API error answer: HTTP status = error_code, like Telegram."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def parse_html(text: str) -> str:
    """The plain text Telegram would show for `text` in parse mode HTML; ApiError where Telegram refuses it."""
    plain: list[str] = []
    open_tags: list[str] = []
    pos = 0
    for m in _MARKUP.finditer(text):
        plain.append(text[pos : m.start()])
        pos = m.end()
        if m["bare"]:
            raise ApiError(400, f"Bad Request: can't parse entities: unescaped {m['bare']!r} at offset {m.start()}")
        if m["entity"]:
            name = m["entity"]
            if name.startswith("#"):
                plain.append(chr(int(name[2:], 16) if name[1:2] in "xX" else int(name[1:])))
            elif name in NAMED_ENTITIES:
                plain.append(NAMED_ENTITIES[name])
            else:
                raise ApiError(400, f"Bad Request: can't parse entities: unsupported entity &{name}; at {m.start()}")
            continue
        tag = m["tag"].lower()
        if tag not in HTML_TAGS:
            raise ApiError(400, f'Bad Request: can\'t parse entities: unsupported start tag "{tag}" at {m.start()}')
        if m["close"]:
            if not open_tags or open_tags[-1] != tag:
                raise ApiError(400, f'Bad Request: can\'t parse entities: unmatched end tag "{tag}" at {m.start()}')
            open_tags.pop()
        else:
            open_tags.append(tag)
    plain.append(text[pos:])
    if open_tags:
        raise ApiError(
            400, f"Bad Request: can't parse entities: can't find end tag corresponding to \"{open_tags[-1]}\""
        )
    return "".join(plain)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class FakeTelegram:
    """The fake's state: message ids, private chats the bot may not open, updates waiting for getUpdates."""

    never_started: set[int] = field(default_factory=set)
    updates: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    files: dict[str, bytes] = field(default_factory=dict)  # file_id -> content (voice notes users "sent")

    def get_file(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = str(p.get("file_id", ""))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        size = len(self.files[file_id])
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": size,
            "file_path": f"voice/{file_id}.oga",
        }

    def send_voice(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = _chat_id(p)
        if chat_id in self.never_started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        voice = p.get("voice")
        if not isinstance(voice, dict) or not voice.get("data"):
            raise ApiError(400, "Bad Request: there is no voice in the request")
        out = self.message(chat_id, None, p)
        out["voice"] = {"file_id": f"sent{out['message_id']}", "file_unique_id": "x", "duration": 1}
        return out

    def message(self, chat_id: int, text: str | None, params: dict[str, Any]) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        if chat_id < 0:
            chat["title"] = "Fake group"
        out: dict[str, Any] = {"message_id": next(self.message_ids), "date": int(time.time()), "chat": chat}
        out["from"] = {k: BOT[k] for k in ("id", "is_bot", "first_name", "username")}
        if text is not None:
            out["text"] = text
        if isinstance(params.get("reply_markup"), dict) and params["reply_markup"].get("inline_keyboard"):
            out["reply_markup"] = params["reply_markup"]
        if params.get("message_thread_id"):
            out["message_thread_id"] = params["message_thread_id"]
        return out

    def send_message(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = _chat_id(p)
        if chat_id in self.never_started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        text = p.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        plain = parse_html(text) if str(p.get("parse_mode", "")).upper() == "HTML" else text
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        _check_markup(p.get("reply_markup"))
        return self.message(chat_id, plain, p)

    def answer_callback_query(self, p: dict[str, Any]) -> bool:
        if not p.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        if len(str(p.get("text", ""))) > ANSWER_TEXT_LIMIT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    def edit_message_reply_markup(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("message_id"):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        _check_markup(p.get("reply_markup"))
        return self.message(_chat_id(p), None, p) | {"message_id": p["message_id"]}

    def edit_message_text(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("message_id"):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        text = str(p.get("text", ""))
        plain = parse_html(text) if str(p.get("parse_mode", "")).upper() == "HTML" else text
        if not plain.strip() or utf16_len(plain) > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: message text is empty or too long")
        _check_markup(p.get("reply_markup"))
        return self.message(_chat_id(p), plain, p) | {"message_id": p["message_id"]}

    async def get_updates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(p.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates:
            self.arrived.clear()
            wait = min(float(p.get("timeout") or 0), 5.0)  # a long poll, kept short so shutdowns are quick
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.arrived.wait(), wait)
        return list(self.updates[: int(p.get("limit") or 100)])


def _chat_id(p: dict[str, Any]) -> int:
    value = p.get("chat_id")
    if not isinstance(value, int):
        raise ApiError(400, "Bad Request: chat not found")
    return value


def _check_markup(markup: Any) -> None:
    if markup is None:
        return
    if not isinstance(markup, dict) or not isinstance(markup.get("inline_keyboard", []), list):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not str(button.get("text", "")).strip():
                raise ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_BYTES:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


async def _params(request: web.Request) -> dict[str, Any]:
    """The call's parameters, as PTB sends them (form fields, nested objects as JSON text) or as JSON."""
    raw: dict[str, Any]
    if request.content_type == "application/json":
        body = await request.json()
        raw = dict(body) if isinstance(body, dict) else {}
    else:
        form = await request.post()
        raw = {k: v for k, v in form.items() if isinstance(v, str)}
        raw.update({k: v for k, v in request.query.items()})
        files = {k: v for k, v in form.items() if isinstance(v, web.FileField)}
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in JSON_FIELDS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from exc
        elif key in INT_FIELDS and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        params[key] = value
    if request.content_type != "application/json":
        for key, upload in files.items():
            data = upload.file.read()
            params[key] = {"filename": upload.filename, "content_type": upload.content_type, "data": data}
    return params


def telegram_routes(recorder: Recorder) -> list[web.RouteDef]:
    """Bot API methods under `/bot<token>/<method>`, plus `/_fake/updates` and `/_fake/never-started/<id>`."""
    state = FakeTelegram()

    async def api(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await _params(request)
        except ApiError as exc:
            return _error(exc)
        recorder.add(Call(method=method, params=params, headers=dict(request.headers)))
        if not TOKEN.match(request.match_info["token"]):
            return _error(ApiError(401, "Unauthorized"))
        try:
            result: Any
            if method == "getMe":
                result = BOT
            elif method == "sendMessage":
                result = state.send_message(params)
            elif method == "answerCallbackQuery":
                result = state.answer_callback_query(params)
            elif method == "editMessageReplyMarkup":
                result = state.edit_message_reply_markup(params)
            elif method == "editMessageText":
                result = state.edit_message_text(params)
            elif method in ("setWebhook", "deleteWebhook", "sendChatAction"):
                result = True
            elif method == "getFile":
                result = state.get_file(params)
            elif method == "sendVoice":
                result = state.send_voice(params)
            elif method == "getUpdates":
                result = await state.get_updates(params)
            else:
                raise ApiError(404, "Not Found: method not found")
        except ApiError as exc:
            return _error(exc)
        return web.json_response({"ok": True, "result": result})

    async def queue_update(request: web.Request) -> web.Response:
        update = await request.json()
        state.updates.append(update)
        state.arrived.set()
        return web.json_response({"ok": True})

    async def upload_file(request: web.Request) -> web.Response:
        file_id = f"f{len(state.files) + 1}"
        state.files[file_id] = await request.read()
        return web.json_response({"ok": True, "file_id": file_id})

    async def download_file(request: web.Request) -> web.Response:
        recorder.add(Call(method="downloadFile", params={"path": request.match_info["path"]}, headers={}))
        if not TOKEN.match(request.match_info["token"]):
            return web.Response(status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1].split(".")[0]
        if file_id not in state.files:
            return web.Response(status=404)
        return web.Response(body=state.files[file_id], content_type="audio/ogg")

    async def never_started(request: web.Request) -> web.Response:
        state.never_started.add(int(request.match_info["chat_id"]))
        return web.json_response({"ok": True})

    return [
        web.post("/bot{token}/{method}", api),
        web.get("/bot{token}/{method}", api),
        web.get("/file/bot{token}/{path:.+}", download_file),
        web.post("/_fake/files", upload_file),
        web.post("/_fake/updates", queue_update),
        web.post("/_fake/never-started/{chat_id}", never_started),
    ]


def _error(exc: ApiError) -> web.Response:
    body = {"ok": False, "error_code": exc.code, "description": exc.description}
    return web.json_response(body, status=exc.code)


# --- update builders (what Telegram would post to the webhook) ------------------------------------------------


def user(
    user_id: int, first_name: str = "Alice", *, is_bot: bool = False, username: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
    if username:
        out["username"] = username
    return out


def chat(chat_id: int) -> dict[str, Any]:
    """A private chat for a positive id, a supergroup for a negative one (as Telegram numbers them)."""
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Alice"}
    return {"id": chat_id, "type": "supergroup", "title": "Sales team"}


def message_update(
    update_id: int,
    text: str,
    *,
    from_id: int,
    chat_id: int | None = None,
    message_id: int = 1,
    is_bot: bool = False,
    thread_id: int | None = None,
    reply_to_bot: bool = False,
) -> dict[str, Any]:
    """A `message` update; `chat_id` defaults to the sender's private chat."""
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat(chat_id if chat_id is not None else from_id),
        "from": user(from_id, is_bot=is_bot),
        "text": text,
    }
    if text.startswith("/"):
        length = len(text.split()[0])
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    if thread_id is not None:
        message["message_thread_id"] = thread_id
        message["is_topic_message"] = True
    if reply_to_bot:
        message["reply_to_message"] = {
            "message_id": message_id - 1 if message_id > 1 else 1,
            "date": int(time.time()),
            "chat": message["chat"],
            "from": {k: BOT[k] for k in ("id", "is_bot", "first_name", "username")},
            "text": "an earlier answer",
        }
    return {"update_id": update_id, "message": message}


def voice_update(
    update_id: int,
    file_id: str,
    *,
    from_id: int,
    chat_id: int | None = None,
    message_id: int = 1,
    duration: int = 3,
    file_size: int | None = None,
    reply_to_bot: bool = False,
) -> dict[str, Any]:
    """A `message` update carrying a voice note (the file must have been put on the fake with /_fake/files)."""
    update = message_update(
        update_id, "x", from_id=from_id, chat_id=chat_id, message_id=message_id, reply_to_bot=reply_to_bot
    )
    message = update["message"]
    del message["text"]
    message["voice"] = {
        "file_id": file_id,
        "file_unique_id": f"u{file_id}",
        "duration": duration,
        "mime_type": "audio/ogg",
    }
    if file_size is not None:
        message["voice"]["file_size"] = file_size
    return update


def callback_update(
    update_id: int, data: str, *, from_id: int, chat_id: int | None = None, message_id: int = 1000
) -> dict[str, Any]:
    """A `callback_query` update: `from_id` clicked a button carrying `data` under the bot's message."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cq{update_id}",
            "chat_instance": "ci-1",
            "from": user(from_id),
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": chat(chat_id if chat_id is not None else from_id),
                "from": {k: BOT[k] for k in ("id", "is_bot", "first_name", "username")},
                "text": "a question with buttons",
            },
        },
    }


def plain(text: str) -> str:
    """What a user sees of an HTML message (for assertions)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))
