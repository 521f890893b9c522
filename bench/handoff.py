"""Handoff latency, measured: Telegram users (on the local fake Bot API) ask for a person, the demo agent
takes each ticket over the REST API and replies several times; the latency is from the agent's reply
request to the sendMessage the gateway makes to the user's chat (as the fake server records it). Also the
escalation turn itself (the user's "talk to a human" to the ticket message) and the queue read.

    .venv/bin/python bench/handoff.py [--conversations 10] [--replies 5] [--out bench/results/handoff.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from assistant.settings import Settings, open_store  # noqa: E402
from bench.channels import summary, telegram_turn  # noqa: E402
from bench.stack import running_stack, write_report  # noqa: E402
from crm_backend.services import identities, users  # noqa: E402
from crm_backend.services.auth import actor_for  # noqa: E402
from tests.fakes.server import FakeServer  # noqa: E402

FIRST_USER = 610_000


def link(settings: Settings, n: int) -> None:
    """n Telegram users, each linked to alice (each its own conversation)."""
    store = open_store(settings)
    try:
        for i in range(n):
            with store.unit_of_work(channel="cli") as uow:
                uow.actor = actor_for(users.get_user_by_username(uow, "alice"))
                code = identities.issue_link_code(uow, dt.timedelta(minutes=5)).code
            with store.unit_of_work(channel="telegram") as uow:
                identities.redeem_link_code(uow, code, "telegram", str(FIRST_USER + i), "")
    finally:
        store.dispose()


async def agent_call(http: aiohttp.ClientSession, gateway: str, token: str, path: str, body: Any = None) -> Any:
    async with http.post(
        f"{gateway}/api/v1/handoffs{path}", json=body or {}, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status} {await resp.text()}")
        return await resp.json()


async def one_conversation(
    http: aiohttp.ClientSession, gateway: str, agent_token: str, fake: FakeServer, i: int, replies: int
) -> tuple[float, list[float]]:
    user_id = FIRST_USER + i
    since = len(fake.recorder)
    started = time.monotonic()
    await telegram_turn(http, gateway, fake, user_id, 700_000 + i * 100, "I need to talk to a person")
    ask = await asyncio.to_thread(  # the user may also get notifications (alice's alerts) meanwhile
        fake.recorder.wait_for,
        "sendMessage",
        lambda c: c.params.get("chat_id") == user_id and "ticket #" in str(c.params.get("text", "")),
        120.0,
        since,
    )
    escalation = ask.at - started
    text = str(ask.params.get("text", ""))
    if "ticket #" not in text:
        raise RuntimeError(f"no handoff for user {user_id}: {text!r}")
    ticket = int(text.split("ticket #")[1].split(")")[0])
    await agent_call(http, gateway, agent_token, f"/{ticket}/take")
    latencies = []
    for n in range(replies):
        marker = f"bench reply {i}-{n}"
        since = len(fake.recorder)
        started = time.monotonic()
        await agent_call(http, gateway, agent_token, f"/{ticket}/reply", {"text": marker})
        call = await asyncio.to_thread(
            fake.recorder.wait_for, "sendMessage", lambda c, m=marker: m in str(c.params.get("text", "")), 60.0, since
        )
        latencies.append(call.at - started)
    await agent_call(http, gateway, agent_token, f"/{ticket}/resolve")
    return escalation, latencies


async def measure(settings: Settings, agent_token: str, fake: FakeServer, n: int, replies: int) -> dict[str, Any]:
    gateway = settings.gateway_url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        results = await asyncio.gather(
            *(one_conversation(http, gateway, agent_token, fake, i, replies) for i in range(n))
        )
        queue_times = []
        for _ in range(20):
            started = time.monotonic()
            async with http.get(f"{gateway}/api/v1/handoffs", headers={"Authorization": f"Bearer {agent_token}"}) as r:
                await r.read()
            queue_times.append(time.monotonic() - started)
    return {
        "escalation_turn": summary([e for e, _ in results]),
        "agent_reply_to_user": summary([x for _, ls in results for x in ls]),
        "queue_read": summary(queue_times),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument("--replies", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "handoff.json")
    args = parser.parse_args()
    with running_stack(
        "handoff", lambda settings: link(settings, args.conversations), SENTIMENT_ENABLED="false"
    ) as bench:
        results = asyncio.run(
            measure(bench.settings, bench.tokens["sam"], bench.telegram, args.conversations, args.replies)
        )
    write_report(args.out, conversations=args.conversations, replies_each=args.replies, results=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
