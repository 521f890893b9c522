"""Each channel's overhead, measured: concurrent conversations through Slack and Telegram (against the
local fake platform servers the tests use) and through the REST API, on one stack in one run.

For Slack and Telegram the latency is from the inbound request (a signed event, a webhook update) to
the outbound reply call the product makes (chat.postMessage / sendMessage, as the fake server records
it); for the website widget from the message frame to the replies frame on its websocket (signed-in
sessions); for the REST API it is the request's round trip. Every Slack event and Telegram update is also
delivered three times (Slack's retries, Telegram's redelivery): the duplicates counted must be 0.

    .venv/bin/python bench/channels.py [--conversations 20] [--turns 3] [--out bench/results/channels.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from assistant.settings import Settings, open_store  # noqa: E402
from bench.stack import running_stack, write_report  # noqa: E402
from crm_backend.services import identities, users  # noqa: E402
from crm_backend.services.auth import actor_for  # noqa: E402
from tests.fakes import slack_api, telegram_api  # noqa: E402
from tests.fakes.platforms import SLACK_SIGNING_SECRET, TELEGRAM_WEBHOOK_SECRET  # noqa: E402
from tests.fakes.server import FakeServer  # noqa: E402

QUESTIONS = ("show my open deals", "what's on my agenda today", "tell me about Nimbus Labs")
COPIES = 3  # each platform event is delivered this many times


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "turns": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "mean_ms": round(statistics.fmean(ms), 1) if ms else float("nan"),
    }


async def slack_turn(
    http: aiohttp.ClientSession, gateway: str, fake: FakeServer, user: str, channel: str, text: str
) -> float:
    envelope = slack_api.event_body(slack_api.message_event(user, text, channel))
    body = json.dumps(envelope)
    since = len(fake.recorder)
    started = time.monotonic()
    for attempt in range(COPIES):
        headers = slack_api.signed_headers(body, SLACK_SIGNING_SECRET)
        if attempt:
            headers |= {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"}
        async with http.post(f"{gateway}/slack/events", data=body.encode(), headers=headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"the gateway answered {resp.status}: {await resp.text()}")
    call = await asyncio.to_thread(
        fake.recorder.wait_for, "chat.postMessage", lambda c: c.params.get("channel") == channel, 120.0, since
    )
    return call.at - started


async def telegram_turn(
    http: aiohttp.ClientSession, gateway: str, fake: FakeServer, user_id: int, update_id: int, text: str
) -> float:
    update = telegram_api.message_update(update_id, text, from_id=user_id)
    since = len(fake.recorder)
    started = time.monotonic()
    for _ in range(COPIES):
        async with http.post(
            f"{gateway}/telegram/webhook",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_WEBHOOK_SECRET},
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"the gateway answered {resp.status}: {await resp.text()}")
    call = await asyncio.to_thread(
        fake.recorder.wait_for, "sendMessage", lambda c: str(c.params.get("chat_id")) == str(user_id), 120.0, since
    )
    return call.at - started


async def api_turn(http: aiohttp.ClientSession, gateway: str, token: str, cid: str, text: str) -> float:
    started = time.monotonic()
    async with http.post(
        f"{gateway}/api/v1/assistant/messages",
        json={"text": text, "conversation_id": cid},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        if resp.status != 200:
            raise RuntimeError(f"the gateway answered {resp.status}: {await resp.text()}")
        await resp.read()
    return time.monotonic() - started


async def widget_turn(ws: aiohttp.ClientWebSocketResponse, text: str) -> float:
    """From a widget message frame to its replies frame (the typing frame in between is skipped)."""
    started = time.monotonic()
    await ws.send_json({"type": "message", "text": text})
    while (frame := await ws.receive_json(timeout=120))["type"] == "typing":
        pass
    if frame["type"] != "replies":
        raise RuntimeError(f"the widget answered {frame}")
    return time.monotonic() - started


async def widget_conversations(gateway: str, token: str, n: int, turns: int) -> list[float]:
    """`n` signed-in widget sessions at once (each its own cookie), `turns` each."""

    async def one() -> list[float]:
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
            http.ws_connect(f"{gateway}/widget/ws", origin=gateway) as ws,
        ):
            await ws.send_json({"type": "auth", "token": token})
            signed_in = await ws.receive_json(timeout=60)
            if not signed_in.get("signed_in"):
                raise RuntimeError(f"the widget refused the token: {signed_in}")
            return [await widget_turn(ws, QUESTIONS[t % len(QUESTIONS)]) for t in range(turns)]

    return [s for r in await asyncio.gather(*(one() for _ in range(n))) for s in r]


async def concurrently(n: int, turns: int, one: Callable[[int, int], Awaitable[float]]) -> list[float]:
    """`n` conversations at once, each saying `turns` things one after the other."""

    async def conversation(i: int) -> list[float]:
        return [await one(i, t) for t in range(turns)]

    results = await asyncio.gather(*(conversation(i) for i in range(n)))
    return [s for r in results for s in r]


def link_all(settings: Settings, n: int) -> None:
    """n Slack users and n Telegram users, all linked to alice (distinct conversations)."""
    store = open_store(settings)
    try:
        for channel, ids, workspace in (
            ("slack", [f"UBENCH{i}" for i in range(n)], slack_api.TEAM_ID),
            ("telegram", [str(500000 + i) for i in range(n)], ""),
        ):
            for external_id in ids:
                with store.unit_of_work(channel="cli") as uow:
                    uow.actor = actor_for(users.get_user_by_username(uow, "alice"))
                    code = identities.issue_link_code(uow, dt.timedelta(minutes=5)).code
                with store.unit_of_work(channel=channel) as uow:
                    identities.redeem_link_code(uow, code, channel, external_id, workspace)
    finally:
        store.dispose()


async def measure(
    settings: Settings, token: str, slack: FakeServer, telegram: FakeServer, n: int, turns: int
) -> dict[str, Any]:
    gateway = settings.gateway_url
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        # Warm-up: one turn per channel, not counted.
        await api_turn(http, gateway, token, "bench-warm", QUESTIONS[0])
        results = {
            "api": summary(
                await concurrently(
                    n,
                    turns,
                    lambda i, t: api_turn(http, gateway, token, f"bench-api-{i}", QUESTIONS[t % len(QUESTIONS)]),
                )
            ),
            "slack": summary(
                await concurrently(
                    n,
                    turns,
                    lambda i, t: slack_turn(
                        http, gateway, slack, f"UBENCH{i}", f"DBENCH{i}", QUESTIONS[t % len(QUESTIONS)]
                    ),
                )
            ),
            "web": summary(await widget_conversations(gateway, token, n, turns)),
            "telegram": summary(
                await concurrently(
                    n,
                    turns,
                    lambda i, t: telegram_turn(
                        http, gateway, telegram, 500000 + i, 900000 + i * 100 + t, QUESTIONS[t % len(QUESTIONS)]
                    ),
                )
            ),
        }
    await asyncio.sleep(3)  # let any late duplicate reply arrive before counting
    slack_replies = [
        c for c in slack.recorder.calls("chat.postMessage") if str(c.params.get("channel", "")).startswith("DBENCH")
    ]
    telegram_replies = [
        c for c in telegram.recorder.calls("sendMessage") if 500000 <= int(c.params.get("chat_id", 0)) < 600000
    ]
    expected = n * turns
    results["slack"]["events_sent"] = expected * COPIES
    results["slack"]["duplicate_effects"] = len(slack_replies) - expected
    results["telegram"]["updates_sent"] = expected * COPIES
    results["telegram"]["duplicate_effects"] = len(telegram_replies) - expected
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "channels.json")
    args = parser.parse_args()
    with running_stack("channels", lambda settings: link_all(settings, args.conversations)) as bench:
        results = asyncio.run(
            measure(bench.settings, bench.tokens["alice"], bench.slack, bench.telegram, args.conversations, args.turns)
        )
    write_report(
        args.out,
        conversations=args.conversations,
        turns_each=args.turns,
        copies_of_each_event=COPIES,
        results=results,
    )
    dup = results["slack"]["duplicate_effects"] + results["telegram"]["duplicate_effects"]
    return 0 if dup == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
