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

from assistant import console, mood, voice_api
from assistant.dialogue import DELIVERY, DIALOGUE, Dialogue, api_turn
from assistant.embeddings import available_embedder
from assistant.handoff import HANDOFF, HandoffDesk
from assistant.messages import Inbound, Reply, Sender
from assistant.mood import MOOD
from assistant.rasa_client import ActionServerClient, RasaClient
from assistant.settings import Settings, open_store
from assistant.voice_api import VOICE
from channels import web as widget
from crm_backend.api.app import build_app
from crm_backend.api.http import STORE, ApiError, authenticate, json_response, read_json
from crm_backend.errors import ValidationFailed
from crm_backend.scheduler.delivery import default_registry
from crm_backend.scheduler.runner import Scheduler, SchedulerConfig
from crm_backend.services.validation import validated
from crm_backend.store import Store

log = logging.getLogger(__name__)

MAX_MESSAGE_BODY_BYTES = 64 * 1024

SETTINGS = web.AppKey("settings", Settings)
RASA = web.AppKey("rasa", RasaClient)
ACTIONS = web.AppKey("actions", ActionServerClient)
HTTP = web.AppKey("http", aiohttp.ClientSession)
SCHEDULER = web.AppKey("scheduler", Scheduler)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1)
    # The `key` of a button from an earlier reply in this conversation (a click); a payload typed as
    # `text` ("/affirm") is plain text, never a button.
    button: str | None = Field(default=None, min_length=1, max_length=64)
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
    if (message.text is None) == (message.button is None):
        raise ApiError(
            400, "invalid_body", 'Send either "text" or "button".', fields={"text": "give text or a button key"}
        )
    if message.text is not None and not message.text.strip():
        raise ApiError(400, "invalid_body", "The message text is empty.", fields={"text": "must not be blank"})
    return message


def reply_json(reply: Reply) -> dict[str, Any]:
    """The REST API's reply item: text, buttons (click one by sending its `key` as "button"), image."""
    item: dict[str, Any] = {
        "text": reply.text,
        "buttons": [{"title": b.title, "key": b.key, "payload": b.payload} for b in reply.buttons],
    }
    if reply.image:
        item["image"] = reply.image
    return item


async def post_message(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    actor = await authenticate(request)
    message = await read_message(request, settings.max_message_chars)
    inbound = Inbound(
        sender=Sender("api", str(actor.user_id)),
        thread=message.conversation_id or "",
        text=message.text,
        button=message.button,
    )
    outcome = await api_turn(request.app, inbound, actor)
    if outcome.status == "stale_button":
        raise ApiError(409, "stale_button", outcome.replies[0].text)
    return json_response(
        {
            "conversation_id": outcome.conversation_id or message.conversation_id,
            "replies": [reply_json(r) for r in outcome.replies],
        }
    )


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
    settings = request.app[SETTINGS]
    details = {
        "scheduler": scheduler.state() if scheduler is not None else {"running": False, "enabled": False},
        "channels": {
            "api": True,
            "web": True,
            "slack": ("socket_mode" if settings.slack_socket_mode else "events_api")
            if settings.slack_enabled
            else False,
            "telegram": settings.telegram_mode if settings.telegram_enabled else False,
            "notifications": sorted(request.app[DELIVERY].channels()),
        },
        "voice": request.app[VOICE].state() if VOICE in request.app else {"ok": False, "detail": "off"},
        "sentiment": request.app[MOOD].state() if MOOD in request.app else {"ok": False, "detail": "off"},
    }
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
    """The CRM REST API, the assistant's message route, the channels (website widget always; Slack and
    Telegram when their credentials are set), health and readiness."""
    app = build_app(store, embedder=available_embedder())  # knowledge-base search (MiniLM, loaded on first use)
    app[SETTINGS] = settings
    app[DELIVERY] = default_registry()
    app[HANDOFF] = HandoffDesk(settings.channel_timeout_seconds)

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
        app[DIALOGUE] = Dialogue(settings, store, app[RASA], app[ACTIONS], desk=app[HANDOFF])
        yield
        await http.close()
        store.dispose()

    async def scheduler(app: web.Application) -> Any:
        """Runs after `clients` and the channels are set up and stops before the store closes."""
        runner = Scheduler(store, scheduler_config(settings), app[DELIVERY])
        app[SCHEDULER] = runner
        await runner.start()
        yield
        await runner.stop()

    app.cleanup_ctx.append(clients)

    def sentiment_ready(service: Any) -> None:
        if DIALOGUE in app:
            app[DIALOGUE].sentiment = service

    mood.mount(app, settings, sentiment_ready)
    widget.mount(app, settings)
    voice_api.mount(app, settings)
    console.mount(app, settings)
    if settings.slack_enabled:
        from channels import slack  # imported only when switched on: slack-bolt is a large import

        slack.mount(app, settings)
    if settings.telegram_enabled:
        from channels import telegram

        telegram.mount(app, settings)
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
