"""`crm-assistant bench turn`: latency of one assistant turn and the memory of each process.

Starts the real stack on free ports over a throw-away SQLite database with the demo data, then
measures (1) turns through the gateway (`POST /api/v1/assistant/messages`: token check,
conversation claim, Rasa, the action server and the CRM query) and (2) Rasa's own
`/model/parse` on the same texts. Their ratio is what the gateway, dialogue policies and actions
add on top of NLU. Figures go to stdout (and JSON with --output); record them in bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from assistant.cli import ensure_demo_data
from assistant.settings import Settings
from assistant.stack import Stack, free_port
from assistant.training import ensure_model

TEXTS = ("hi", "show my open deals", "what's in my pipeline?", "what can you do?", "thanks")
USERS = ("alice", "bob", "carlos", "maria")


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


class Bench:
    def __init__(self, settings: Settings, tokens: dict[str, str], http: aiohttp.ClientSession) -> None:
        self.settings, self.tokens, self.http = settings, tokens, http

    async def turn(self, user: str, text: str, conversation_id: str | None) -> tuple[float, str]:
        body: dict[str, Any] = {"text": text}
        if conversation_id:
            body["conversation_id"] = conversation_id
        start = time.perf_counter()
        async with self.http.post(
            f"{self.settings.gateway_url}/api/v1/assistant/messages",
            json=body,
            headers={"Authorization": f"Bearer {self.tokens[user]}"},
        ) as resp:
            data = await resp.json()
            if resp.status != 200 or not data.get("replies"):
                raise RuntimeError(f"turn failed: HTTP {resp.status} {data}")
        return time.perf_counter() - start, data["conversation_id"]

    async def conversation(self, user: str, rounds: int) -> list[float]:
        samples, cid = [], None
        for _ in range(rounds):
            for text in TEXTS:
                elapsed, cid = await self.turn(user, text, cid)
                samples.append(elapsed)
        return samples

    async def parse(self, text: str) -> float:
        start = time.perf_counter()
        async with self.http.post(
            f"{self.settings.rasa_url}/model/parse",
            json={"text": text},
            params={"token": self.settings.rasa_api_token()},
        ) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"parse failed: HTTP {resp.status}")
        return time.perf_counter() - start

    async def parse_stream(self, count: int) -> list[float]:
        return [await self.parse(TEXTS[i % len(TEXTS)]) for i in range(count)]


async def measure(
    settings: Settings, tokens: dict[str, str], sequential: int, concurrent: int, rounds: int
) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as http:
        bench = Bench(settings, tokens, http)
        await bench.conversation("alice", 1)  # warm-up: first turns load lazily
        await bench.parse_stream(10)
        seq: list[float] = []
        for i in range(sequential):
            seq += await bench.conversation(USERS[i % len(USERS)], 1)
        seq_parse = await bench.parse_stream(len(seq))
        conc_runs = await asyncio.gather(
            *(bench.conversation(USERS[i % len(USERS)], rounds) for i in range(concurrent))
        )
        conc = [s for run in conc_runs for s in run]
        per_stream = max(1, len(conc) // concurrent)
        conc_parse_runs = await asyncio.gather(*(bench.parse_stream(per_stream) for _ in range(concurrent)))
        conc_parse = [s for run in conc_parse_runs for s in run]
    result = {
        "sequential": {"turn": percentiles(seq), "model_parse": percentiles(seq_parse)},
        "concurrent": {"conversations": concurrent, "turn": percentiles(conc), "model_parse": percentiles(conc_parse)},
    }
    for mode in ("sequential", "concurrent"):
        r = result[mode]
        r["overhead_ratio_p50"] = round(r["turn"]["p50_ms"] / r["model_parse"]["p50_ms"], 1)
    return result


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    total = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    return round(total / 2**20, 1)


def run_turn_bench(settings: Settings, sequential: int, concurrent: int, rounds: int, output: Path | None) -> int:
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        var_dir = Path(tmp)
        bench_settings = settings.model_copy(
            update={
                "var_dir": var_dir,
                "database_url": f"sqlite:///{var_dir / 'crm.sqlite3'}",
                "rasa_port": free_port(),
                "action_server_port": free_port(),
                "gateway_port": free_port(),
            }
        )
        model, _ = ensure_model(bench_settings)
        tokens = ensure_demo_data(bench_settings)
        print(f"starting the stack on free ports (model {model.name})...", flush=True)
        with Stack(bench_settings, model) as stack:
            figures = asyncio.run(measure(bench_settings, tokens, sequential, concurrent, rounds))
            figures["rss_mb"] = {name: rss_mb(pid) for name, pid in stack.pids().items()}
    figures["machine"] = machine()
    figures["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    figures["command"] = (
        f"crm-assistant bench turn --sequential {sequential} --concurrent {concurrent} --rounds {rounds}"
    )
    print(json.dumps(figures, indent=2))
    if output:
        output.write_text(json.dumps(figures, indent=2))
    return 0
