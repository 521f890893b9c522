"""The website chat widget: an embeddable script, its demo page, and a websocket (with a plain HTTP
fallback) that carries a visitor's turns to the gateway's Dialogue.

The server issues and signs the visitor's session id (cookie `crm_widget`); the browser never names
itself. Anonymous visitors talk as a prospect (no CRM reads); a page that passes a CRM API token gets
the signed-in user's skills. Only the gateway's own origin and `WIDGET_ALLOWED_ORIGINS` may talk to
these endpoints. See docs/channels/web-widget.md.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from assistant.dialogue import DIALOGUE, Dialogue, DialogueUnavailable
from assistant.handoff import HANDOFF
from assistant.messages import Inbound, Reply, Sender
from assistant.settings import Settings
from assistant.voice_api import VOICE, Listening, answer_transcript, vocabulary_for
from crm_backend.api.http import STORE, ApiError
from crm_backend.errors import NotFound
from crm_backend.services import calendar, prospects
from voice.audio import AudioRejected

if TYPE_CHECKING:
    from crm_backend.store import Actor

log = logging.getLogger(__name__)

CHANNEL: Final = "web"
COOKIE_NAME = "crm_widget"
SESSION_SALT = "crm-widget-session"
SESSION_MAX_AGE_SECONDS = 30 * 24 * 3600
# A cookie older than this is re-signed (same session id) so that an active visitor never expires.
SESSION_REFRESH_SECONDS = 24 * 3600
MAX_FRAME_BYTES = 16 * 1024
HEARTBEAT_SECONDS = 25.0
MAX_QUEUED_FRAMES = 8
RATE_WINDOW_SECONDS = 60.0
STATIC_DIR = Path(__file__).resolve().parent / "static"

_SESSION_ID = re.compile(r"^v-[A-Za-z0-9_-]{16,64}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}

SERVER_ERROR = "Something went wrong on our side. Please try again."
VOICE_SIGNED_IN_ONLY = "Talking to the assistant is for signed-in users. Please type your message."
TOO_FAST = "You're sending messages too quickly. Please wait a moment and try again."
BAD_TOKEN = "Your sign-in has expired or is not valid, so you are chatting as a visitor. Please sign in again."  # noqa: S105
ORIGIN_REFUSED = "This site is not allowed to use the chat widget."


# --- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VisitorSession:
    """The visitor's server-issued session id, and a cookie value to set when it is new or refreshed."""

    id: str
    cookie: str | None = None


class SessionSigner:
    """Issues and checks the signed visitor session id kept in the widget cookie."""

    def __init__(self, secret: str, max_age_seconds: int = SESSION_MAX_AGE_SECONDS) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=SESSION_SALT)
        self.max_age_seconds = max_age_seconds

    def sign(self, session_id: str) -> str:
        return self._serializer.dumps(session_id)

    def resolve(self, cookie: str | None, now: dt.datetime | None = None) -> VisitorSession:
        """The session a cookie proves; a missing, forged, malformed or expired cookie gets a new one."""
        if cookie and len(cookie) <= 512:
            try:
                value, signed_at = self._serializer.loads(cookie, max_age=self.max_age_seconds, return_timestamp=True)
            except BadSignature:  # also SignatureExpired
                value, signed_at = None, None
            if isinstance(value, str) and _SESSION_ID.fullmatch(value) and signed_at is not None:
                age = ((now or dt.datetime.now(dt.UTC)) - signed_at).total_seconds()
                return VisitorSession(value, self.sign(value) if age > SESSION_REFRESH_SECONDS else None)
        session_id = "v-" + secrets.token_urlsafe(18)
        return VisitorSession(session_id, self.sign(session_id))


# --- origins ----------------------------------------------------------------------------------


def normalize_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port; None for anything else ("null", paths)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def origin_allowed(origin: str | None, allowed: Iterable[str], fetch_site: str | None = None) -> bool:
    """Whether a request with this `Origin` may use the widget endpoints.

    Browsers send `Origin` on every websocket handshake, POST and cross-origin fetch; only a same-origin
    GET or a non-browser client leaves it out, so a missing one is accepted unless the browser itself
    says (Sec-Fetch-Site) that the request comes from another site.
    """
    if origin is None:
        return fetch_site in (None, "same-origin", "none")
    normalized = normalize_origin(origin)
    if normalized is None:
        return False
    return normalized in {n for n in (normalize_origin(a) for a in allowed) if n is not None}


# --- rate limit -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float = 0.0  # seconds until the next message would be accepted


@dataclass
class RateLimiter:
    """At most `limit` messages per `window` seconds per session, over a sliding window kept in this
    process's memory (so each gateway process counts on its own, and a restart forgets)."""

    limit: int
    window: float = RATE_WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 100_000
    _hits: dict[str, deque[float]] = field(default_factory=dict, repr=False)

    def hit(self, key: str, now: float | None = None) -> RateDecision:
        """Count one message for `key` if the window has room; a refused message is not counted."""
        now = self.clock() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._forget_idle(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return RateDecision(False, max(0.0, hits[0] + self.window - now))
        hits.append(now)
        return RateDecision(True)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]


# --- frames -----------------------------------------------------------------------------------


class FrameRejected(Exception):
    """A frame or body the widget endpoints cannot take; `message` is a sentence for the visitor."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True, slots=True)
class Frame:
    """One visitor frame: a typed message, a button click (server-issued key), a history request or a sign-in."""

    type: Literal["message", "button", "history", "auth", "voice_start", "voice_end"]
    value: str = ""


def parse_frame(data: Any, max_chars: int) -> Frame:
    """A JSON object from the websocket or the HTTP fallback, checked: known type, text within the limit."""
    if not isinstance(data, dict):
        raise FrameRejected('Send a JSON object like {"type": "message", "text": "hi"}.')
    kind = data.get("type", "message" if "text" in data else None)
    if kind == "message":
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise FrameRejected("Type a message first.")
        if len(text) > max_chars:
            raise FrameRejected(f"Your message is longer than {max_chars} characters. Please shorten it.", 413)
        return Frame("message", text)
    if kind == "button":
        key = data.get("key")
        if not isinstance(key, str) or not key or len(key) > 200:
            raise FrameRejected("That button is not valid any more.")
        return Frame("button", key)
    if kind == "history":
        return Frame("history")
    if kind in ("voice_start", "voice_end"):  # push-to-talk: PCM frames (16 kHz mono s16le) come between
        return Frame(kind)
    if kind == "auth":
        token = data.get("token")
        if not isinstance(token, str) or not token or len(token) > 200:
            raise FrameRejected(BAD_TOKEN, 401)
        return Frame("auth", token)
    raise FrameRejected('Unknown frame type; use "message", "button", "history", "auth" or "voice_start"/"voice_end".')


def reply_json(reply: Reply) -> dict[str, Any]:
    """A reply as the widget renders it: text, buttons (title + server-issued key), table rows."""
    out: dict[str, Any] = {
        "text": reply.text,
        "buttons": [{"title": b.title, "key": b.key} for b in reply.buttons],
        "rows": [list(row) for row in reply.rows],
    }
    if reply.image:
        out["image"] = reply.image
    return out


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


# --- static files -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    cache_control: str
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'

    async def serve(self, request: web.Request) -> web.Response:
        headers = {"Cache-Control": self.cache_control, "ETag": self.etag, "X-Content-Type-Options": "nosniff"}
        headers.update(self.headers)
        if self.etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
            return web.Response(status=304, headers=headers)
        return web.Response(body=self.body, content_type=self.content_type, charset="utf-8", headers=headers)


DEMO_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def load_assets(settings: Settings) -> dict[str, Asset]:
    """The widget's files, read once at start-up; the script learns the server's message limit."""
    limit = str(settings.max_message_chars)
    script = (STATIC_DIR / "widget.js").read_text("utf-8").replace("{{max_message_chars}}", limit)
    return {
        "/widget.js": Asset(script.encode(), "application/javascript", "public, max-age=300"),
        "/widget.css": Asset((STATIC_DIR / "widget.css").read_bytes(), "text/css", "public, max-age=300"),
        "/widget/demo": Asset(
            (STATIC_DIR / "demo.html").read_bytes(),
            "text/html",
            "no-cache",
            (("Content-Security-Policy", DEMO_CSP), ("Referrer-Policy", "no-referrer")),
        ),
    }


# --- the channel ------------------------------------------------------------------------------


@dataclass
class Visitor:
    """Who one widget connection or request talks as: the session, and the signed-in CRM user if any."""

    session: VisitorSession
    actor: Actor | None = None
    listening: Listening | None = None  # push-to-talk in progress (signed-in users only)

    def sender(self) -> Sender:
        if self.actor is not None:
            return Sender(CHANNEL, self.session.id, display_name=self.actor.username)
        return Sender(CHANNEL, self.session.id)

    def conversation_id(self, dialogue: Dialogue) -> str:
        """The Dialogue's id for this session; a signed-in user's conversation is kept apart from the
        same browser's anonymous one, so signing out never shows the user's turns to a visitor."""
        user_id = self.actor.user_id if self.actor is not None else None
        return dialogue.conversation_id(self.sender(), thread=self.session.id, user_id=user_id)

    @property
    def address(self) -> dict[str, object]:
        """How an agent's reply reaches this browser later: its session (live sockets, else the history)."""
        return {"session": self.session.id}

    def inbound(self, frame: Frame) -> Inbound:
        if frame.type == "button":
            return Inbound(self.sender(), self.session.id, button=frame.value, address=self.address)
        return Inbound(self.sender(), self.session.id, text=frame.value, address=self.address)


@dataclass(frozen=True, slots=True)
class Utterance:
    """A push-to-talk recording that has ended, queued to be answered like a typed message."""

    listening: Listening


class WidgetChannel:
    """The widget's HTTP and websocket handlers over one gateway app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: web.Application | None = None  # the gateway app (voice lives there)
        self.live: dict[str, set[web.WebSocketResponse]] = {}  # open sockets per session (agent replies)
        self.signer = SessionSigner(settings.secret())
        self.limiter = RateLimiter(settings.widget_messages_per_minute)
        self.assets = load_assets(settings)

    # origins and CORS

    def allowed_origins(self, request: web.Request) -> set[str]:
        own = {f"{request.scheme}://{request.host}", self.settings.gateway_url}
        return own | set(self.settings.widget_origins)

    def origin_ok(self, request: web.Request) -> bool:
        return origin_allowed(
            request.headers.get("Origin"), self.allowed_origins(request), request.headers.get("Sec-Fetch-Site")
        )

    def cors_headers(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        headers = {"Vary": "Origin", "Cache-Control": "no-store"}
        if origin is not None and self.origin_ok(request):
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def error(self, request: web.Request, status: int, code: str, message: str, **headers: str) -> web.Response:
        return web.json_response(
            {"error": {"code": code, "message": message}},
            status=status,
            headers={**self.cors_headers(request), **headers},
            dumps=_dumps,
        )

    def set_cookie(self, response: web.StreamResponse, session: VisitorSession) -> None:
        if session.cookie is None:
            return
        secure = self.settings.widget_cookie_secure
        response.set_cookie(
            COOKIE_NAME,
            session.cookie,
            max_age=SESSION_MAX_AGE_SECONDS,
            path="/",
            httponly=True,
            secure=secure,
            samesite="None" if secure else "Lax",
        )

    def session_of(self, request: web.Request) -> VisitorSession:
        return self.signer.resolve(request.cookies.get(COOKIE_NAME))

    async def preflight(self, request: web.Request) -> web.Response:
        if request.headers.get("Origin") is None or not self.origin_ok(request):
            return self.error(request, 403, "origin_not_allowed", ORIGIN_REFUSED)
        headers = self.cors_headers(request)
        headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        headers["Access-Control-Max-Age"] = "600"
        return web.Response(status=204, headers=headers)

    # shared turn logic

    async def turn(self, dialogue: Dialogue, visitor: Visitor, frame: Frame) -> list[dict[str, Any]]:
        outcome = await dialogue.handle(visitor.inbound(frame), actor=visitor.actor)
        return [reply_json(r) for r in outcome.replies]

    async def history(self, dialogue: Dialogue, visitor: Visitor) -> list[dict[str, Any]]:
        return await dialogue.history(visitor.conversation_id(dialogue))

    # HTTP fallback

    async def visitor_from_http(self, request: web.Request, dialogue: Dialogue) -> Visitor | web.Response:
        visitor = Visitor(self.session_of(request))
        auth = request.headers.get("Authorization", "")
        if auth:
            scheme, _, token = auth.partition(" ")
            actor = await dialogue.authenticate(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
            if actor is None:
                return self.error(request, 401, "invalid_token", BAD_TOKEN)
            visitor.actor = actor
        return visitor

    def answer(self, request: web.Request, visitor: Visitor, data: dict[str, Any]) -> web.Response:
        response = web.json_response(data, headers=self.cors_headers(request), dumps=_dumps)
        self.set_cookie(response, visitor.session)
        return response

    async def post_message(self, request: web.Request) -> web.Response:
        if not self.origin_ok(request):
            return self.error(request, 403, "origin_not_allowed", ORIGIN_REFUSED)
        if request.content_length is not None and request.content_length > MAX_FRAME_BYTES:
            return self.error(request, 413, "payload_too_large", f"The message is larger than {MAX_FRAME_BYTES} bytes.")
        raw = await request.content.read(MAX_FRAME_BYTES + 1)
        if len(raw) > MAX_FRAME_BYTES:
            return self.error(request, 413, "payload_too_large", f"The message is larger than {MAX_FRAME_BYTES} bytes.")
        try:
            frame = parse_frame(json.loads(raw), self.settings.max_message_chars)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self.error(request, 400, "malformed_json", "The request body is not valid JSON.")
        except FrameRejected as exc:
            return self.error(request, exc.status, "invalid_message", exc.message)
        if frame.type not in ("message", "button"):
            return self.error(request, 400, "invalid_message", "Send a message or a button here.")
        dialogue = request.app[DIALOGUE]
        visitor = await self.visitor_from_http(request, dialogue)
        if isinstance(visitor, web.Response):
            return visitor
        decision = self.limiter.hit(visitor.session.id)
        if not decision.allowed:
            return self.error(
                request, 429, "rate_limited", TOO_FAST, **{"Retry-After": str(max(1, round(decision.retry_after)))}
            )
        try:
            replies = await self.turn(dialogue, visitor, frame)
        except DialogueUnavailable as exc:
            return self.error(request, 503, "assistant_unavailable", exc.message)
        except Exception:
            log.exception("widget turn failed")
            return self.error(request, 500, "internal_error", SERVER_ERROR)
        return self.answer(request, visitor, {"replies": replies})

    async def get_history(self, request: web.Request) -> web.Response:
        if not self.origin_ok(request):
            return self.error(request, 403, "origin_not_allowed", ORIGIN_REFUSED)
        dialogue = request.app[DIALOGUE]
        visitor = await self.visitor_from_http(request, dialogue)
        if isinstance(visitor, web.Response):
            return visitor
        try:
            turns = await self.history(dialogue, visitor)
        except DialogueUnavailable as exc:
            return self.error(request, 503, "assistant_unavailable", exc.message)
        except Exception:
            log.exception("widget history failed")
            return self.error(request, 500, "internal_error", SERVER_ERROR)
        return self.answer(request, visitor, {"turns": turns})

    # websocket

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.origin_ok(request):
            return self.error(request, 403, "origin_not_allowed", ORIGIN_REFUSED)
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_FRAME_BYTES)
        if not ws.can_prepare(request).ok:
            return self.error(request, 400, "websocket_expected", "Connect to this address with a websocket.")
        visitor = Visitor(self.session_of(request))
        self.set_cookie(ws, visitor.session)
        await ws.prepare(request)
        self.live.setdefault(visitor.session.id, set()).add(ws)
        dialogue = request.app[DIALOGUE]
        queue: asyncio.Queue[Frame | Utterance | None] = asyncio.Queue()
        # Turns run one at a time in their own task so that the reader keeps answering heartbeats.
        worker = asyncio.create_task(self._work(ws, dialogue, visitor, queue))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._receive(ws, request.app, visitor, queue, message.data)
                elif message.type == WSMsgType.BINARY:
                    await self._hear(ws, visitor, message.data)
        finally:
            sockets = self.live.get(visitor.session.id, set())
            sockets.discard(ws)
            if not sockets:
                self.live.pop(visitor.session.id, None)
            queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await worker
        return ws

    async def push(self, address: dict[str, Any], replies: list[Reply]) -> bool:
        """An agent's words (or the handoff's sentences) to every open widget of that session."""
        sockets = list(self.live.get(str(address.get("session", "")), ()))
        frame = {"type": "replies", "push": True, "replies": [reply_json(r) for r in replies]}
        for ws in sockets:
            await _send(ws, frame)
        return bool(sockets)

    async def _hear(self, ws: web.WebSocketResponse, visitor: Visitor, data: bytes) -> None:
        """A push-to-talk audio frame: fed to the recogniser, a partial transcript sent when there is one."""
        if visitor.listening is None:
            await _send(ws, {"type": "error", "message": 'Send {"type": "voice_start"} before audio.', "voice": True})
            return
        try:
            partial, _ended = await visitor.listening.feed(data)  # the button, not silence, ends it
        except AudioRejected as exc:
            visitor.listening = None
            await _send(ws, {"type": "error", "code": "audio_too_long", "message": exc.message, "voice": True})
            return
        if partial:
            await _send(ws, {"type": "partial", "text": partial})

    async def _start_listening(self, ws: web.WebSocketResponse, app: web.Application, visitor: Visitor) -> None:
        if visitor.actor is None:
            await _send(
                ws, {"type": "error", "code": "voice_signed_in_only", "message": VOICE_SIGNED_IN_ONLY, "voice": True}
            )
            return
        try:
            engine, _speaker = await app[VOICE].ready()
        except ApiError as exc:
            await _send(ws, {"type": "error", "code": "voice_unavailable", "message": exc.message, "voice": True})
            return
        vocabulary = await vocabulary_for(app, visitor.actor)
        visitor.listening = Listening(engine, vocabulary, app[VOICE].settings)
        await _send(ws, {"type": "listening"})

    async def _receive(
        self,
        ws: web.WebSocketResponse,
        app: web.Application,
        visitor: Visitor,
        queue: asyncio.Queue[Frame | Utterance | None],
        data: str,
    ) -> None:
        try:
            frame = parse_frame(json.loads(data), self.settings.max_message_chars)
        except json.JSONDecodeError:
            await _send(ws, {"type": "error", "message": "That frame is not valid JSON."})
            return
        except FrameRejected as exc:
            await _send(ws, {"type": "error", "message": exc.message})
            return
        if frame.type == "voice_start":
            await self._start_listening(ws, app, visitor)
            return
        if queue.qsize() >= MAX_QUEUED_FRAMES:
            await _send(ws, {"type": "error", "message": "Please wait for the answer before sending more."})
            return
        if frame.type in ("message", "button", "voice_end"):
            decision = self.limiter.hit(visitor.session.id)
            if not decision.allowed:
                visitor.listening = None
                voice = {"voice": True} if frame.type == "voice_end" else {}
                await _send(ws, {"type": "error", "code": "rate_limited", "message": TOO_FAST, **voice})
                return
        if frame.type == "voice_end":
            if visitor.listening is None:
                await _send(ws, {"type": "error", "message": "There is no recording to finish.", "voice": True})
                return
            queue.put_nowait(Utterance(visitor.listening))
            visitor.listening = None
            return
        queue.put_nowait(frame)

    async def _work(
        self,
        ws: web.WebSocketResponse,
        dialogue: Dialogue,
        visitor: Visitor,
        queue: asyncio.Queue[Frame | Utterance | None],
    ) -> None:
        while (frame := await queue.get()) is not None:
            try:
                if isinstance(frame, Utterance):
                    await self._answer_utterance(ws, visitor, frame.listening)
                elif frame.type == "auth":
                    visitor.actor = await dialogue.authenticate(frame.value)
                    voice = bool(self.app is not None and self.app[VOICE].state().get("ok"))
                    await _send(
                        ws,
                        {"type": "auth", "signed_in": True, "voice": voice}
                        if visitor.actor is not None
                        else {"type": "error", "code": "invalid_token", "message": BAD_TOKEN},
                    )
                elif frame.type == "history":
                    await _send(ws, {"type": "history", "turns": await self.history(dialogue, visitor)})
                else:
                    await _send(ws, {"type": "typing"})
                    await _send(ws, {"type": "replies", "replies": await self.turn(dialogue, visitor, frame)})
            except DialogueUnavailable as exc:
                await _send(
                    ws, {"type": "error", "code": "assistant_unavailable", "message": exc.message, **_voice(frame)}
                )
            except Exception:
                log.exception("widget %s frame failed", "voice" if isinstance(frame, Utterance) else frame.type)
                await _send(ws, {"type": "error", "message": SERVER_ERROR, **_voice(frame)})

    async def _answer_utterance(self, ws: web.WebSocketResponse, visitor: Visitor, listening: Listening) -> None:
        """The push-to-talk recording's final transcript, answered like typed text; the answer spoken too."""
        assert self.app is not None  # noqa: S101 - set by mount()
        await _send(ws, {"type": "typing"})
        transcript = await listening.finish()
        inbound = Inbound(visitor.sender(), visitor.session.id, address=visitor.address)
        answer = await answer_transcript(self.app, inbound, transcript, visitor.actor, echo=False)
        await _send(ws, {"type": "heard", "text": transcript.text if answer.heard else ""})
        await _send(ws, {"type": "replies", "voice": True, "replies": [reply_json(r) for r in answer.outcome.replies]})
        if answer.speech:
            wav = base64.b64encode(answer.speech).decode("ascii")
            await _send(ws, {"type": "speech", "content_type": "audio/wav", "base64": wav})


def _voice(frame: Frame | Utterance) -> dict[str, Any]:
    """Frames answering push-to-talk say so: the widget then has no typed message waiting for them."""
    return {"voice": True} if isinstance(frame, Utterance) else {}


async def _send(ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
    """Send a frame unless the visitor has gone; a closed socket is not an error worth raising."""
    if ws.closed:
        return
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_str(_dumps(data))


async def demo_invitation(request: web.Request) -> web.Response:
    """A booked demo's calendar file, for the prospect who booked it in the chat (the link is the key)."""
    widget = request.app[WIDGET]
    token = request.match_info["token"]

    def read() -> bytes:
        with request.app[STORE].unit_of_work(None, "web", read_only=True) as uow:
            return calendar.booking_ics(uow, prospects.invited_booking(uow, widget.settings.secret(), token))

    try:
        body = await asyncio.to_thread(read)
    except NotFound:
        return web.Response(status=404, text="No such invitation.")
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="demo.ics"', "Cache-Control": "private, no-store"},
    )


WIDGET = web.AppKey("widget", WidgetChannel)


def mount(app: web.Application, settings: Settings) -> None:
    """Serve the widget's files, demo page, websocket and HTTP fallback on the gateway app."""
    widget = WidgetChannel(settings)
    widget.app = app
    app[WIDGET] = widget
    app[HANDOFF].register(CHANNEL, widget.push)
    for path, asset in widget.assets.items():
        app.router.add_get(path, asset.serve)
    app.router.add_get("/widget/ws", widget.websocket)
    app.router.add_post("/widget/messages", widget.post_message)
    app.router.add_get("/widget/history", widget.get_history)
    app.router.add_get("/widget/invites/{token}.ics", demo_invitation)
    app.router.add_route("OPTIONS", "/widget/messages", widget.preflight)
    app.router.add_route("OPTIONS", "/widget/history", widget.preflight)
