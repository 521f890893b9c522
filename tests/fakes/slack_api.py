"""A fake Slack Web API on 127.0.0.1: the methods the product calls, answered like Slack, every call recorded,
and as strict as Slack where rendering can break a message: Block Kit limits (50 blocks, 3000-character
sections, 75-character button titles, unique action ids, no empty text) give `invalid_blocks`, and a `<`
in mrkdwn that is not a link, mention or channel reference (an unescaped name) gives `invalid_blocks` too.

Mounted by `FakeServer(slack_routes)`; the product's `AsyncWebClient` gets `base_url=f"{url}/api/"`.
Tests hand Slack's `response_url`s to the product as `f"{url}/response/<anything>"`; posts to them are
recorded as method "response_url". `POST /_control/fail {"method", "error", "times"}` makes the next
calls to a method answer `{"ok": false, "error": ...}` (how a deliverer's retry is tested), and
`POST /_control/delay {"method", "seconds"}` makes a method slow (recorded after the delay).
Socket Mode: `apps.connections.open` (with an `xapp-` token) hands out `ws://…/_socket`, which says
hello, pushes each envelope posted to `/_control/socket` and records the app's acks as "socket_ack".
Builders for what Slack sends the product (signed events, slash commands, button clicks) live here too,
for the unit and e2e tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from tests.fakes.server import Call, Recorder

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"
JSON_FIELDS = ("blocks", "attachments", "metadata", "view")
MESSAGE_METHODS = ("chat.postMessage", "chat.postEphemeral", "chat.update")
# What Slack accepts between < and > in mrkdwn: links, user/channel mentions, special mentions.
_CONTROL = re.compile(r"<([^<>]*)>")
_CONTROL_OK = re.compile(r"^(https?://|mailto:|@[UW][A-Z0-9]+|#C[A-Z0-9]+|![a-z]+)")


def mrkdwn_problem(text: str) -> str | None:
    """Why Slack would mangle this mrkdwn (None: it renders as meant)."""
    for match in _CONTROL.finditer(text):
        if not _CONTROL_OK.match(match.group(1)):
            return f"unescaped <{match.group(1)}>"
    stripped = _CONTROL.sub("", text)
    if "<" in stripped or ">" in stripped:
        return "unescaped < or >"
    return None


def blocks_problem(blocks: Any) -> str | None:
    """The first Block Kit rule these blocks break, as Slack's validator would see it (None: valid)."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "blocks must be a list of at most 50"
    action_ids: set[str] = set()
    block_ids: set[str] = set()
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is not None:
            if block_id in block_ids or len(str(block_id)) > 255:
                return f"duplicate or long block_id {block_id}"
            block_ids.add(block_id)
        if kind == "section":
            text = block.get("text") or {}
            body = str(text.get("text", ""))
            if not body.strip() or len(body) > 3000:
                return "section text must be 1..3000 characters"
            if text.get("type") == "mrkdwn" and (why := mrkdwn_problem(body)):
                return why
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 25:
                return "actions need 1..25 elements"
            for element in elements:
                title = str((element.get("text") or {}).get("text", ""))
                if not title or len(title) > 75 or len(str(element.get("value", ""))) > 2000:
                    return "button text must be 1..75 characters, value at most 2000"
                if element.get("action_id") in action_ids:
                    return "duplicate action_id"
                action_ids.add(element.get("action_id"))
        elif kind == "context":
            for element in block.get("elements") or []:
                if element.get("type") == "mrkdwn" and (why := mrkdwn_problem(str(element.get("text", "")))):
                    return why
        elif kind not in ("image", "divider", "header"):
            return f"unsupported block type {kind}"
    return None


def message_problem(method: str, p: dict[str, Any]) -> str | None:
    """Slack's error code for a chat.* call it would refuse (None: it would post it)."""
    if not p.get("channel"):
        return "channel_not_found"
    if method == "chat.postEphemeral" and not p.get("user"):
        return "user_not_found"
    if method == "chat.update" and not p.get("ts"):
        return "message_not_found"
    if not p.get("text") and not p.get("blocks"):
        return "no_text"
    if p.get("blocks") is not None and blocks_problem(p["blocks"]):
        return "invalid_blocks"
    return None


def _decoded(params: dict[str, Any]) -> dict[str, Any]:
    """Form posts carry blocks and friends as JSON strings; tests read them as lists and dicts."""
    for name in JSON_FIELDS:
        value = params.get(name)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                params[name] = json.loads(value)
    return params


async def _params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return _decoded(params)


def slack_routes(recorder: Recorder) -> Iterable[web.RouteDef]:
    """Routes for `FakeServer`: Slack Web API methods under `/api/<method>`, response URLs, a fault switch."""
    counter = itertools.count(1)
    lock = threading.Lock()
    failures: dict[str, list[str]] = {}
    delays: dict[str, float] = {}
    sockets: set[web.WebSocketResponse] = set()
    uploads: dict[str, bytes] = {}  # files the product uploaded (files.uploadV2), by id
    shared_files: dict[str, bytes] = {}  # files "users" shared (audio clips), served at /files/<id>
    base_url: list[str] = [""]  # this server's own URL, learnt from the first request

    def ts() -> str:
        with lock:
            return f"1700000000.{next(counter):06d}"

    def answer(method: str, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel", ""))
        if method == "auth.test":
            return {
                "url": "https://e2e.slack.example/",
                "team": "E2E",
                "user": "crm",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            stamp = ts()
            message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": p.get("text", ""), "ts": stamp}
            if p.get("blocks"):
                message["blocks"] = p["blocks"]
            if p.get("thread_ts"):
                message["thread_ts"] = p["thread_ts"]
            return {"channel": channel, "ts": stamp, "message": message}
        if method == "chat.postEphemeral":
            return {"message_ts": ts()}
        if method == "chat.update":
            return {"channel": channel, "ts": p.get("ts", ""), "text": p.get("text", "")}
        if method == "conversations.open":
            users = str(p.get("users", "U0"))
            return {"channel": {"id": "D" + users.split(",")[0].lstrip("U")}}
        if method == "views.open":
            return {"view": {"id": f"V{ts().replace('.', '')}", **(p.get("view") or {})}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{ts().replace('.', '')}"
            return {"upload_url": f"{base_url[0]}/_upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = p.get("files")
            if isinstance(files, str):
                files = json.loads(files)
            missing = [f["id"] for f in files or [] if f.get("id") not in uploads]
            if missing or not files:
                raise KeyError("file_not_found")
            return {
                "files": [{"id": f["id"], "title": f.get("title", ""), "size": len(uploads[f["id"]])} for f in files]
            }
        if method == "users.info":
            user = str(p.get("user", ""))
            return {"user": {"id": user, "team_id": TEAM_ID, "name": user.lower(), "is_bot": user == BOT_USER_ID}}
        raise KeyError(method)

    async def api(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        base_url[0] = f"{request.scheme}://{request.host}"
        params = await _params(request)
        if delays.get(method):
            await asyncio.sleep(delays[method])
        recorder.add(Call(method=method, params=params, headers=dict(request.headers)))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or str(params.get("token", ""))
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        with lock:
            queued = failures.get(method)
            error = queued.pop(0) if queued else None
        if error:
            return web.json_response({"ok": False, "error": error})
        if method in MESSAGE_METHODS and (problem := message_problem(method, params)):
            return web.json_response({"ok": False, "error": problem})
        if method == "apps.connections.open":
            if not token.startswith("xapp-"):
                return web.json_response({"ok": False, "error": "not_allowed_token_type"})
            return web.json_response({"ok": True, "url": f"ws://{request.host}/_socket"})
        try:
            result = answer(method, params)
            if method == "chat.postMessage":  # what Slack made of it (tests reply in its thread by this ts)
                recorder.add(
                    Call(method="posted", params={"channel": result["channel"], "ts": result["ts"]}, headers={})
                )
            return web.json_response({"ok": True, **result})
        except KeyError as exc:
            error = "unknown_method" if exc.args[0] == method else str(exc.args[0])
            return web.json_response({"ok": False, "error": error})

    async def response_url(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        params = _decoded(dict(body) if isinstance(body, dict) else {})
        params["path"] = request.path
        recorder.add(Call(method="response_url", params=params, headers=dict(request.headers)))
        return web.Response(text="ok")

    async def fail(request: web.Request) -> web.Response:
        body = await request.json()
        with lock:
            failures.setdefault(str(body["method"]), []).extend(
                [str(body.get("error", "fatal_error"))] * int(body.get("times", 1))
            )
        return web.json_response({"ok": True})

    async def socket(request: web.Request) -> web.WebSocketResponse:
        """Slack's Socket Mode server: says hello, pushes the envelopes tests queue, records the acks."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sockets.add(ws)
        try:
            await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}})
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    recorder.add(Call(method="socket_ack", params=json.loads(msg.data), headers={}))
        finally:
            sockets.discard(ws)
        return ws

    async def socket_send(request: web.Request) -> web.Response:
        envelope = await request.json()
        for ws in list(sockets):
            await ws.send_json(envelope)
        return web.json_response({"ok": True, "sockets": len(sockets)})

    async def upload(request: web.Request) -> web.Response:
        data = await request.read()
        uploads[request.match_info["id"]] = data
        recorder.add(Call(method="upload", params={"id": request.match_info["id"], "data": data}, headers={}))
        return web.Response(text=f"OK - {len(data)}")

    async def share_file(request: web.Request) -> web.Response:
        file_id = f"F{ts().replace('.', '')}"
        shared_files[file_id] = await request.read()
        base = f"{request.scheme}://{request.host}"
        return web.json_response({"ok": True, "id": file_id, "url_private_download": f"{base}/files/{file_id}"})

    async def download(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        recorder.add(Call(method="download", params={"id": request.match_info["id"]}, headers=dict(request.headers)))
        if not token.startswith("xoxb-"):
            return web.Response(status=302, headers={"Location": "https://e2e.slack.example/login"})
        data = shared_files.get(request.match_info["id"])
        return web.Response(body=data, content_type="audio/webm") if data is not None else web.Response(status=404)

    async def delay(request: web.Request) -> web.Response:
        body = await request.json()
        delays[str(body["method"])] = float(body.get("seconds", 0))
        return web.json_response({"ok": True})

    return [
        web.get("/_socket", socket),
        web.post("/_control/socket", socket_send),
        web.post("/_control/delay", delay),
        web.post("/api/{method}", api),
        web.get("/api/{method}", api),
        web.post("/response/{id}", response_url),
        web.post("/_control/fail", fail),
        web.post("/_upload/{id}", upload),
        web.post("/_control/files", share_file),
        web.get("/files/{id}", download),
    ]


# --- Slack's side of the conversation: signed requests to the product, as Slack sends them -------------

_event_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    """A fresh id for a channel, thread, user or event, unique in this test run."""
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


def event_body(event: dict[str, Any], *, event_id: str | None = None, team: str = TEAM_ID) -> dict[str, Any]:
    """An Events API `event_callback` envelope around `event`."""
    return {
        "token": "deprecated-verification-token",
        "team_id": team,
        "api_app_id": "A1",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):08d}{uuid.uuid4().hex[:6].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team, "user_id": BOT_USER_ID, "is_bot": True}],
    }


def message_event(
    user: str, text: str, channel: str, *, channel_type: str = "im", thread_ts: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A `message` event (`message.im` for a DM, `message.channels` with channel_type "channel")."""
    ts = f"{time.time():.6f}"
    event: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "channel_type": channel_type,
        "team": TEAM_ID,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def mention_event(user: str, text: str, channel: str, *, thread_ts: str | None = None) -> dict[str, Any]:
    """An `app_mention` event; `text` should contain `<@UBOT>` as Slack writes it."""
    event = message_event(user, text, channel, thread_ts=thread_ts)
    event["type"] = "app_mention"
    del event["channel_type"]
    return event


def command_form(user: str, text: str, channel: str, *, response_url: str, channel_name: str = "sales") -> str:
    """The form body Slack posts for `/crm <text>`."""
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "e2e",
            "channel_id": channel,
            "channel_name": channel_name,
            "user_id": user,
            "user_name": user.lower(),
            "command": "/crm",
            "text": text,
            "api_app_id": "A1",
            "response_url": response_url,
            "trigger_id": new_id("trig."),
        }
    )


def block_actions_form(
    user: str, channel: str, message: dict[str, Any], button: dict[str, Any], block_id: str, *, response_url: str
) -> str:
    """The form body Slack posts when `user` clicks `button` (an element of our actions block `block_id`)
    on `message` (as our chat.postMessage sent it, with its `ts`)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A1",
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": bool(message.get("ephemeral")),
        },
        "trigger_id": new_id("trig."),
        "team": {"id": TEAM_ID, "domain": "e2e"},
        "channel": {"id": channel, "name": "directmessage" if channel.startswith("D") else "sales"},
        "message": {k: v for k, v in message.items() if k != "ephemeral"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": button["action_id"],
                "block_id": block_id,
                "text": button["text"],
                "value": button["value"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


def signed_headers(body: str, secret: str, *, timestamp: int | None = None, json_body: bool = True) -> dict[str, str]:
    """The headers Slack adds: its timestamp and the v0 HMAC signature of `v0:<ts>:<body>`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature or "",
        "Content-Type": "application/json" if json_body else "application/x-www-form-urlencoded",
    }


async def post_signed(
    base_url: str,
    path: str,
    body: str,
    secret: str,
    *,
    json_body: bool = True,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """POST `body` to the product the way Slack does (signed); return the status and body of its answer."""
    sent = {**signed_headers(body, secret, timestamp=timestamp, json_body=json_body), **(headers or {})}
    async with (
        aiohttp.ClientSession() as http,
        http.post(base_url + path, data=body.encode(), headers=sent, timeout=aiohttp.ClientTimeout(total=30)) as resp,
    ):
        return resp.status, await resp.text()


async def control(fake_url: str, what: str, **body: Any) -> None:
    """Switch a fault on in the fake (`what` is "fail" or "delay")."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{fake_url}/_control/{what}", json=body, timeout=aiohttp.ClientTimeout(total=10)) as resp,
    ):
        resp.raise_for_status()
