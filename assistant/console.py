"""The agent side of the human handoff: a REST API (bearer token) and the agent console (a web page with a
session cookie), over the same operations.

Every operation runs the handoff service in one transaction and then, outside it, reaches the user on
their own channel (`HandoffDesk.push`) and tells open consoles (`HandoffDesk.publish`). The console signs
agents in with their CRM API token or a one-time link (`crm-assistant console-link USER`); its session is a
signed, HttpOnly, SameSite=Strict cookie, and every state-changing request carries the session's CSRF token
(a form field on the login form, the `X-CSRF-Token` header from the page's script).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from assistant.dialogue import DIALOGUE
from assistant.handoff import AGENT_JOINED, CSAT_CHOICES, HANDED_BACK, HANDOFF, RESOLVED, SLA_MISSED, HandoffDesk
from assistant.messages import Button, Reply
from assistant.settings import Settings
from crm_backend.api.http import ACTOR, STORE, ApiError, authenticate, in_unit_of_work, json_response
from crm_backend.api.knowledge import search_articles
from crm_backend.errors import AuthenticationFailed, CrmError
from crm_backend.services import analytics, conversations, handoff
from crm_backend.services.auth import authenticate_token, load_actor
from crm_backend.store import Actor, UnitOfWork

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "channels" / "static"
SESSION_COOKIE = "crm_console"
LOGIN_CSRF_COOKIE = "crm_console_login"
LOGIN_SALT = "console-login"
SESSION_SALT = "console-session"
LOGIN_LINK_SECONDS = 15 * 60
CSRF_HEADER = "X-CSRF-Token"
SIGNED_OUT = "Please sign in to the agent console."


@dataclass(frozen=True, slots=True)
class Session:
    user_id: int
    csrf: str


class ConsoleAuth:
    """Signed console sessions and one-time login links."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.secret()
        self._sessions = URLSafeTimedSerializer(secret, salt=SESSION_SALT)
        self._links = URLSafeTimedSerializer(secret, salt=LOGIN_SALT)
        self.max_age = int(settings.console_session_hours * 3600)
        self.secure = settings.console_cookie_secure

    def session_cookie(self, user_id: int) -> tuple[str, Session]:
        session = Session(user_id, secrets.token_urlsafe(24))
        return self._sessions.dumps({"uid": user_id, "csrf": session.csrf}), session

    def session(self, request: web.Request) -> Session | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self._sessions.loads(raw, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("uid"), int) or not isinstance(data.get("csrf"), str):
            return None
        return Session(data["uid"], data["csrf"])

    def login_link_code(self, user_id: int) -> str:
        return self._links.dumps({"uid": user_id, "nonce": secrets.token_urlsafe(12)})

    def redeem_link(self, code: str) -> tuple[int, str] | None:
        try:
            data = self._links.loads(code, max_age=LOGIN_LINK_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("uid"), int) or not isinstance(data.get("nonce"), str):
            return None
        return data["uid"], data["nonce"]

    def set_cookie(self, response: web.StreamResponse, value: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=self.max_age,
            httponly=True,
            samesite="Strict",
            secure=self.secure,
            path="/console",
        )


CONSOLE_AUTH = web.AppKey("console_auth", ConsoleAuth)


# --- the operations, shared by the REST API and the console ------------------------------------------------


async def _run(app: web.Application, actor: Actor, work: Callable[[UnitOfWork], Any]) -> Any:
    return await in_unit_of_work(app[STORE], actor, work, channel="console")


def _agent_name(actor: Actor) -> str:
    return actor.username


async def take(app: web.Application, actor: Actor, ticket_id: int) -> handoff.Handed:
    handed: handoff.Handed = await _run(app, actor, lambda uow: handoff.take(uow, ticket_id))
    await _tell_user(app, handed, [Reply(AGENT_JOINED.format(agent=_agent_name(actor)))])
    app[HANDOFF].publish({"type": "queue", "conversation_id": handed.conversation_id})
    return handed


async def pick_up(app: web.Application, actor: Actor, conversation_id: str) -> handoff.Handed:
    handed: handoff.Handed = await _run(app, actor, lambda uow: handoff.pick_up(uow, conversation_id))
    await _tell_user(app, handed, [Reply(AGENT_JOINED.format(agent=_agent_name(actor)))])
    app[HANDOFF].publish({"type": "queue", "conversation_id": handed.conversation_id})
    return handed


async def reply(app: web.Application, actor: Actor, ticket_id: int, text: str) -> handoff.Handed:
    handed: handoff.Handed = await _run(app, actor, lambda uow: handoff.agent_reply(uow, ticket_id, text))
    delivered = await app[HANDOFF].push(
        handed.channel, handed.address, [Reply(handoff.agent_said(_agent_name(actor), text))]
    )
    app[HANDOFF].publish(
        {
            "type": "turn",
            "conversation_id": handed.conversation_id,
            "speaker": "agent",
            "text": text.strip(),
            "delivered": delivered,
        }
    )
    return handed


async def hand_back(app: web.Application, actor: Actor, ticket_id: int, note: str) -> handoff.Handed:
    handed: handoff.Handed = await _run(app, actor, lambda uow: handoff.hand_back(uow, ticket_id, note))
    said = HANDED_BACK.format(note=f"{note.strip().rstrip('.')}. " if note.strip() else "")

    def record(uow: UnitOfWork) -> None:
        conversations.record_turn(uow, handed.conversation_id, "bot", said, {"buttons": [], "handoff": "back"})

    await _run(app, actor, record)
    await _tell_user(app, handed, [Reply(said)], record=False)
    app[HANDOFF].publish({"type": "queue", "conversation_id": handed.conversation_id})
    return handed


async def resolve(app: web.Application, actor: Actor, ticket_id: int) -> handoff.Handed:
    handed: handoff.Handed = await _run(app, actor, lambda uow: handoff.resolve(uow, ticket_id))
    question = RESOLVED.format(agent=_agent_name(actor))

    def offer(uow: UnitOfWork) -> Reply:
        keys = conversations.offer_buttons(uow, handed.conversation_id, CSAT_CHOICES)
        buttons = tuple(Button(title, key, payload) for (title, payload), key in zip(CSAT_CHOICES, keys, strict=True))
        conversations.record_turn(
            uow,
            handed.conversation_id,
            "bot",
            question,
            {"buttons": [{"title": b.title, "key": b.key} for b in buttons]},
        )
        return Reply(question, buttons)

    survey: Reply = await _run(app, actor, offer)
    await _tell_user(app, handed, [survey], record=False)
    app[HANDOFF].publish({"type": "queue", "conversation_id": handed.conversation_id})
    return handed


async def announcement(app: web.Application, ticket_id: int) -> dict[str, Any]:
    """What agents elsewhere (the Slack support channel) are told about a new handoff."""
    about: dict[str, Any] = await in_unit_of_work(
        app[STORE], None, lambda uow: handoff.announcement(uow, ticket_id), read_only=True
    )
    return about


async def remember_thread(app: web.Application, ticket_id: int, thread: str) -> None:
    await in_unit_of_work(app[STORE], None, lambda uow: handoff.set_agent_thread(uow, ticket_id, thread))


async def ticket_in_thread(app: web.Application, thread: str) -> int | None:
    found: int | None = await in_unit_of_work(
        app[STORE], None, lambda uow: handoff.ticket_for_thread(uow, thread), read_only=True
    )
    return found


async def answer_from_chat(app: web.Application, actor: Actor, ticket_id: int, text: str) -> str | None:
    """An agent answering in a chat tool (a Slack thread): takes the ticket if nobody has, then replies.
    None when done, else the sentence saying why not (not an agent, someone else owns it, ...)."""
    try:
        view = await in_unit_of_work(
            app[STORE], actor, lambda uow: handoff.customer_view(uow, ticket_id), read_only=True
        )
        if view["conversation"]["state"] == "waiting":
            await take(app, actor, ticket_id)
        await reply(app, actor, ticket_id, text)
    except CrmError as exc:
        return exc.message
    return None


async def _tell_user(
    app: web.Application, handed: handoff.Handed, replies: list[Reply], *, record: bool = True
) -> None:
    """A system sentence to the user (recorded as a bot turn unless the caller did), on their channel."""
    if record:

        def write(uow: UnitOfWork) -> None:
            for r in replies:
                conversations.record_turn(uow, handed.conversation_id, "bot", r.text, {"buttons": []})

        await in_unit_of_work(app[STORE], None, write, channel="console")
    await app[HANDOFF].push(handed.channel, handed.address, replies)
    for r in replies:
        app[HANDOFF].publish(
            {"type": "turn", "conversation_id": handed.conversation_id, "speaker": "bot", "text": r.text}
        )


def _handed_json(handed: handoff.Handed) -> dict[str, Any]:
    return {"conversation_id": handed.conversation_id, "ticket_id": handed.ticket_id, "state": handed.state.value}


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", "The body must be a JSON object.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    return data


def _ticket_id(request: web.Request) -> int:
    try:
        return int(request.match_info["ticket_id"])
    except (KeyError, ValueError) as exc:
        raise ApiError(404, "not_found", "No such handoff ticket.") from exc


# --- REST API (bearer token) -----------------------------------------------------------------------------

Handler = Callable[[web.Request, Actor], Awaitable[web.StreamResponse]]


async def api_queue(request: web.Request, actor: Actor) -> web.StreamResponse:
    rows = await in_unit_of_work(request.app[STORE], actor, handoff.queue, read_only=True)
    return json_response({"items": rows})


async def api_ticket(request: web.Request, actor: Actor) -> web.StreamResponse:
    ticket_id = _ticket_id(request)
    view = await in_unit_of_work(
        request.app[STORE], actor, lambda uow: handoff.customer_view(uow, ticket_id), read_only=True
    )
    return json_response(view)


async def api_take(request: web.Request, actor: Actor) -> web.StreamResponse:
    return json_response(_handed_json(await take(request.app, actor, _ticket_id(request))))


async def api_pick_up(request: web.Request, actor: Actor) -> web.StreamResponse:
    conversation_id = str((await _body(request)).get("conversation_id") or "")
    if not conversation_id:
        raise ApiError(
            422, "validation_failed", "Name the conversation to pick up.", fields={"conversation_id": "required"}
        )
    return json_response(_handed_json(await pick_up(request.app, actor, conversation_id)))


async def api_reply(request: web.Request, actor: Actor) -> web.StreamResponse:
    text = (await _body(request)).get("text")
    if not isinstance(text, str):
        raise ApiError(422, "validation_failed", "Write a reply.", fields={"text": "write a reply"})
    return json_response(_handed_json(await reply(request.app, actor, _ticket_id(request), text)))


async def api_hand_back(request: web.Request, actor: Actor) -> web.StreamResponse:
    note = (await _body(request)).get("note") or ""
    if not isinstance(note, str):
        raise ApiError(422, "validation_failed", "The note must be text.", fields={"note": "text"})
    return json_response(_handed_json(await hand_back(request.app, actor, _ticket_id(request), note)))


async def api_resolve(request: web.Request, actor: Actor) -> web.StreamResponse:
    return json_response(_handed_json(await resolve(request.app, actor, _ticket_id(request))))


def _date(request: web.Request, name: str) -> dt.date | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ApiError(
            422, "validation_failed", f"{name} must be a date like 2026-11-01.", fields={name: "YYYY-MM-DD"}
        ) from exc


async def api_analytics(request: web.Request, actor: Actor) -> web.StreamResponse:
    start, end = _date(request, "start"), _date(request, "end")
    report = await in_unit_of_work(
        request.app[STORE], actor, lambda uow: analytics.assistant_report(uow, start, end), read_only=True
    )
    return json_response(report)


async def console_knowledge(request: web.Request, actor: Actor) -> web.StreamResponse:
    """The knowledge-base search of the REST API, for the signed-in agent (drafts included for writers)."""
    request[ACTOR] = actor
    return await search_articles(request)


def bearer(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def run(request: web.Request) -> web.StreamResponse:
        return await handler(request, await authenticate(request))

    return run


# --- the console (session cookie) --------------------------------------------------------------------------


async def session_actor(request: web.Request, *, csrf: bool) -> Actor:
    """The agent signed in to the console; ApiError 401 when not, 403 on a missing/wrong CSRF token."""
    auth = request.app[CONSOLE_AUTH]
    session = auth.session(request)
    if session is None:
        raise ApiError(401, "signed_out", SIGNED_OUT)
    if csrf and not secrets.compare_digest(request.headers.get(CSRF_HEADER, ""), session.csrf):
        raise ApiError(403, "csrf", "This request did not come from the console page. Reload it and try again.")
    try:
        actor: Actor = await in_unit_of_work(request.app[STORE], None, lambda uow: load_actor(uow, session.user_id))
    except (AuthenticationFailed, CrmError) as exc:
        raise ApiError(401, "signed_out", SIGNED_OUT) from exc
    return actor


def console(handler: Handler, *, csrf: bool = True) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def run(request: web.Request) -> web.StreamResponse:
        return await handler(request, await session_actor(request, csrf=csrf))

    return run


def _page(title: str, body: str) -> web.Response:
    document = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/console/console.css"></head>'
        f"<body>{body}</body></html>"
    )
    return web.Response(
        text=document,
        content_type="text/html",
        headers={
            "Content-Security-Policy": "default-src 'self'; connect-src 'self'; frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
        },
    )


def _login_page(message: str = "", status: int = 200) -> web.Response:
    """The sign-in form, with a fresh CSRF token in a field and in a short-lived cookie (double submit)."""
    error = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    csrf = secrets.token_urlsafe(24)
    response = _page(
        "Agent console — sign in",
        "<main class=login><h1>Agent console</h1>"
        f"{error}"
        '<form method="post" action="/console/login">'
        f'<input type="hidden" name="csrf" value="{csrf}">'
        '<label for="token">Your CRM API token</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password" required>'
        '<button type="submit">Sign in</button></form>'
        "<p>Or open a one-time link: <code>crm-assistant console-link YOUR_USERNAME</code>.</p></main>",
    )
    response.set_status(status)
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, max_age=3600, httponly=True, samesite="Strict", path="/console")
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    code = request.query.get("code")
    if code:
        return await _login_with_link(request, code)
    return _login_page()


async def _login_with_link(request: web.Request, code: str) -> web.StreamResponse:
    auth = request.app[CONSOLE_AUTH]
    redeemed = auth.redeem_link(code)
    if redeemed is None:
        return _login_page("That sign-in link is not valid or has expired. Ask for a new one.", 401)
    user_id, nonce = redeemed
    first = await request.app[DIALOGUE].first_time("console-login", nonce)
    if not first:
        return _login_page("That sign-in link was already used. Ask for a new one.", 401)
    return await _signed_in(request, user_id)


async def login(request: web.Request) -> web.StreamResponse:
    """POST the API token (a form): a session cookie and the console, or the form again with why."""
    if request.headers.get("Origin") not in (None, f"{request.scheme}://{request.host}"):
        return _login_page("Sign in from the console's own page.", 403)
    form = await request.post()
    given, expected = form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not isinstance(given, str) or not expected or not secrets.compare_digest(given, expected):
        return _login_page("Your sign-in form expired. Please try again.", 403)
    token = form.get("token")
    if not isinstance(token, str) or not token.strip():
        return _login_page("Enter your API token.", 400)
    try:
        actor: Actor = await in_unit_of_work(
            request.app[STORE], None, lambda uow: authenticate_token(uow, token.strip())
        )
    except AuthenticationFailed:
        return _login_page("That token is not valid.", 401)
    return await _signed_in(request, actor.user_id)


async def _signed_in(request: web.Request, user_id: int) -> web.StreamResponse:
    try:
        actor: Actor = await in_unit_of_work(request.app[STORE], None, lambda uow: load_actor(uow, user_id))
    except CrmError:
        return _login_page("This user no longer exists or is deactivated.", 401)
    if actor.role not in handoff.WORKING_ROLES:
        return _login_page("The console is for service-desk agents, managers and admins.", 403)
    value, _session = request.app[CONSOLE_AUTH].session_cookie(user_id)
    response = web.HTTPSeeOther("/console")
    request.app[CONSOLE_AUTH].set_cookie(response, value)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    await session_actor(request, csrf=True)
    response = web.HTTPSeeOther("/console")
    response.del_cookie(SESSION_COOKIE, path="/console")
    raise response


async def _app_page(request: web.Request, title: str, element: str, script: str) -> web.StreamResponse:
    """A console page for the signed-in agent (the sign-in form otherwise): one element its script fills."""
    session = request.app[CONSOLE_AUTH].session(request)
    try:
        actor = await session_actor(request, csrf=False)
    except ApiError:
        return _login_page()
    assert session is not None  # noqa: S101 - session_actor succeeded
    return _page(
        title,
        f'<div id="{element}" data-csrf="{html.escape(session.csrf)}" data-agent="{html.escape(actor.username)}">'
        f'</div><script src="/console/{script}"></script>',
    )


async def console_page(request: web.Request) -> web.StreamResponse:
    return await _app_page(request, "Agent console", "console", "console.js")


async def dashboard_page(request: web.Request) -> web.StreamResponse:
    return await _app_page(request, "Assistant analytics", "dashboard", "dashboard.js")


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = STATIC / name
    if name not in ("console.js", "console.css", "dashboard.js") or not path.is_file():
        raise web.HTTPNotFound()
    content_type = "text/javascript" if name.endswith(".js") else "text/css"
    return web.Response(body=path.read_bytes(), content_type=content_type, headers={"Cache-Control": "no-cache"})


async def live(request: web.Request) -> web.StreamResponse:
    """Websocket: every queue change and conversation turn, as it happens (the page filters)."""
    actor = await session_actor(request, csrf=False)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    desk: HandoffDesk = request.app[HANDOFF]
    events = desk.subscribe()
    log.info("console: %s connected", actor.username)

    async def forward() -> None:
        while True:
            event = await events.get()
            await ws.send_str(json.dumps(event))

    sender = asyncio.create_task(forward())
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT and message.data == "ping":
                await ws.send_str(json.dumps({"type": "pong", "at": time.time()}))
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        desk.unsubscribe(events)
    return ws


SLA_WATCH_SECONDS = 30.0


async def tell_overdue(app: web.Application, now: dt.datetime | None = None) -> int:
    """Users waiting past their ticket's SLA are told once and offered a callback; how many were told."""

    def due(uow: UnitOfWork) -> list[handoff.Handed]:
        late = handoff.overdue(uow, now)
        for handed in late:
            conversations.record_turn(uow, handed.conversation_id, "bot", SLA_MISSED, {"buttons": []})
        return late

    late: list[handoff.Handed] = await in_unit_of_work(app[STORE], None, due, channel="scheduler")
    for handed in late:
        await app[HANDOFF].push(handed.channel, handed.address, [Reply(SLA_MISSED)])
        app[HANDOFF].publish({"type": "queue", "conversation_id": handed.conversation_id})
    return len(late)


def mount(app: web.Application, settings: Settings) -> None:
    app[CONSOLE_AUTH] = ConsoleAuth(settings)
    if settings.scheduler_enabled:

        async def sla_watch(app: web.Application) -> Any:
            async def loop() -> None:
                while True:
                    await asyncio.sleep(SLA_WATCH_SECONDS)
                    try:
                        await tell_overdue(app)
                    except Exception:  # the next round tries again
                        log.exception("handoff: the SLA watch failed")

            task = asyncio.create_task(loop(), name="handoff-sla-watch")
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(sla_watch)
    for prefix, wrap in (("/api/v1/handoffs", bearer), ("/console/api/handoffs", console)):
        app.router.add_get(prefix, wrap(api_queue) if wrap is bearer else console(api_queue, csrf=False))
        app.router.add_get(
            prefix + "/{ticket_id}", wrap(api_ticket) if wrap is bearer else console(api_ticket, csrf=False)
        )
        app.router.add_post(prefix + "/pick-up", wrap(api_pick_up))
        app.router.add_post(prefix + "/{ticket_id}/take", wrap(api_take))
        app.router.add_post(prefix + "/{ticket_id}/reply", wrap(api_reply))
        app.router.add_post(prefix + "/{ticket_id}/hand-back", wrap(api_hand_back))
        app.router.add_post(prefix + "/{ticket_id}/resolve", wrap(api_resolve))
    app.router.add_get("/api/v1/analytics/assistant", bearer(api_analytics))
    app.router.add_get("/console/api/analytics", console(api_analytics, csrf=False))
    app.router.add_get("/console/api/knowledge", console(console_knowledge, csrf=False))
    app.router.add_get("/console/dashboard", dashboard_page)
    app.router.add_get("/console", console_page)
    app.router.add_get("/console/login", login_form)
    app.router.add_post("/console/login", login)
    app.router.add_post("/console/logout", logout)
    app.router.add_get("/console/ws", live)
    app.router.add_get("/console/{name}", static_file)
