"""The assistant gateway: the one authenticated HTTP door to the assistant.

`POST /api/v1/assistant/messages` resolves the bearer token to a CRM user, claims the
conversation for that user, signs the user's identity into the message metadata and passes
the message to Rasa; Rasa's replies come back as `{"text", "buttons"}` items.
`GET /healthz` says the gateway is alive; `GET /readyz` checks Rasa, the action server and
the database (and reports the scheduler's state in `details`). The gateway also runs the
scheduler (reminders, recurring activities, notification delivery) while it serves. Errors are
JSON with a plain message, never a stack trace.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from assistant.rasa_client import ActionServerClient, RasaClient, UpstreamUnavailable
from assistant.settings import Settings, open_store
from crm_backend.api.app import build_app
from crm_backend.api.http import STORE, ApiError, authenticate, in_unit_of_work, json_response, read_json
from crm_backend.errors import NotFound, ValidationFailed
from crm_backend.scheduler.runner import Scheduler, SchedulerConfig
from crm_backend.services.auth import IDENTITY_KEY, sign_identity
from crm_backend.services.conversations import claim_conversation
from crm_backend.services.validation import validated
from crm_backend.store import Store

log = logging.getLogger(__name__)

CHANNEL = "api"
MAX_MESSAGE_BODY_BYTES = 64 * 1024

SETTINGS = web.AppKey("settings", Settings)
RASA = web.AppKey("rasa", RasaClient)
ACTIONS = web.AppKey("actions", ActionServerClient)
HTTP = web.AppKey("http", aiohttp.ClientSession)
SCHEDULER = web.AppKey("scheduler", Scheduler)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    conversation_id: str | None = Field(default=None, max_length=80)


async def read_message(request: web.Request, max_chars: int) -> MessageIn:
    body = await read_json(request, MAX_MESSAGE_BODY_BYTES)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", 'Send a JSON object like {"text": "show my open deals"}.')
    text = body.get("text")
    if isinstance(text, str) and len(text) > max_chars:
        raise ApiError(413, "text_too_long", f"The message text is longer than {max_chars} characters.")
    try:
        message = validated(MessageIn, body)
    except ValidationFailed as exc:
        raise ApiError(400, "invalid_body", "Some fields are missing or not valid.", fields=exc.fields) from exc
    if not message.text.strip():
        raise ApiError(400, "invalid_body", "The message text is empty.", fields={"text": "must not be blank"})
    return message


def as_replies(bot_messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rasa's REST output as the gateway's reply type: text plus optional buttons/image."""
    replies: list[dict[str, Any]] = []
    for m in bot_messages:
        reply: dict[str, Any] = {
            "text": m.get("text") or "",
            "buttons": [
                {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                for b in m.get("buttons") or []
                if isinstance(b, dict)
            ],
        }
        if m.get("image"):
            reply["image"] = m["image"]
        if reply["text"] or reply["buttons"] or "image" in reply:
            replies.append(reply)
    return replies


async def post_message(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    actor = await authenticate(request)
    message = await read_message(request, settings.max_message_chars)
    try:
        conversation_id = await in_unit_of_work(
            request.app[STORE], actor, lambda uow: claim_conversation(uow, message.conversation_id, CHANNEL)
        )
    except NotFound as exc:
        raise ApiError(404, "conversation_not_found", exc.message) from exc
    except ValidationFailed as exc:
        raise ApiError(400, "invalid_body", exc.message, fields=exc.fields) from exc
    metadata = {IDENTITY_KEY: sign_identity(settings.secret(), actor, CHANNEL, conversation_id)}
    try:
        bot_messages = await request.app[RASA].send_message(conversation_id, message.text, metadata)
    except UpstreamUnavailable as exc:
        log.warning("rasa unavailable: %s", exc.reason)
        raise ApiError(
            503,
            "assistant_unavailable",
            "The assistant's dialogue engine is not available right now. Please try again shortly.",
        ) from exc
    replies = as_replies(bot_messages)
    if not replies:
        # Rasa swallows a failed custom action and answers nothing: tell the user why.
        actions_health = await request.app[ACTIONS].health()
        if not actions_health.ok:
            log.warning("action server unavailable: %s", actions_health.detail)
            raise ApiError(
                503,
                "actions_unavailable",
                "The assistant can't reach the CRM right now (its action server is down). Please try again shortly.",
            )
        log.warning("rasa answered nothing to a turn in %s", conversation_id)
        raise ApiError(
            503, "assistant_unavailable", "The assistant could not answer that right now. Please try again shortly."
        )
    return json_response({"conversation_id": conversation_id, "replies": replies})


async def healthz(_request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE]

    async def database() -> dict[str, Any]:
        try:
            await asyncio.to_thread(store.ping)
            return {"ok": True, "detail": "ok"}
        except Exception as exc:  # any driver error means "not ready"
            return {"ok": False, "detail": type(exc).__name__}

    rasa, actions, db = await asyncio.gather(request.app[RASA].health(), request.app[ACTIONS].health(), database())
    components = {"rasa": rasa.as_dict(), "action_server": actions.as_dict(), "database": db}
    ready = all(c["ok"] for c in components.values())
    scheduler = request.app.get(SCHEDULER)
    details = {"scheduler": scheduler.state() if scheduler is not None else {"running": False, "enabled": False}}
    return json_response(
        {"status": "ready" if ready else "not_ready", "components": components, "details": details},
        status=200 if ready else 503,
    )


def scheduler_config(settings: Settings) -> SchedulerConfig:
    return SchedulerConfig(
        interval=dt.timedelta(seconds=settings.scheduler_interval_seconds),
        horizon=dt.timedelta(days=settings.recurrence_horizon_days),
    )


def create_app(settings: Settings, store: Store) -> web.Application:
    """The CRM REST API plus the assistant's message route, health and readiness."""
    app = build_app(store)
    app[SETTINGS] = settings

    async def clients(app: web.Application) -> Any:
        http = aiohttp.ClientSession()
        app[HTTP] = http
        app[RASA] = RasaClient(
            http,
            settings.rasa_url,
            settings.rasa_api_token(),
            settings.rasa_timeout_seconds,
            settings.health_timeout_seconds,
        )
        app[ACTIONS] = ActionServerClient(http, settings.action_server_url, settings.health_timeout_seconds)
        yield
        await http.close()
        store.dispose()

    async def scheduler(app: web.Application) -> Any:
        """Runs after `clients` is set up and stops before it closes the store."""
        runner = Scheduler(store, scheduler_config(settings))
        app[SCHEDULER] = runner
        await runner.start()
        yield
        await runner.stop()

    app.cleanup_ctx.append(clients)
    if settings.scheduler_enabled:
        app.cleanup_ctx.append(scheduler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/api/v1/assistant/messages", post_message)
    return app


def serve(settings: Settings) -> None:
    store = open_store(settings)
    web.run_app(
        create_app(settings, store),
        host=settings.bind_host,
        port=settings.gateway_port,
        shutdown_timeout=10,
        print=None,
        access_log=log,
    )
