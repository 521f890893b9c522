"""`crm-assistant bench skills`: the scripted conversations (bench/conversations.yml) through the real
stack over a fresh database with the demo data plus generated leads (100,000 by default): task success
rate, the critical checks (leaks, writes on "no"), and turn latency for read and for write turns.

The database is the demo seed with its extras (as `crm-assistant run` seeds it) plus
`crm_backend.demo_large.add_large_data` leads; SQLite in a temporary folder, or a throw-away schema on
the local PostgreSQL server (`--db postgres`, the schema handling of `bench crm`). The action server,
Rasa and the gateway start on free ports (`assistant.stack.Stack`), as in `bench turn`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from assistant.commands import Handler, say
from assistant.settings import Settings, open_store

DEFAULT_SET = Path("bench") / "conversations.yml"
DEFAULT_LEADS = 100_000


class BenchFailed(RuntimeError):
    """The bench could not run (no database, no model, the stack did not start)."""


def add_commands(sub: Any) -> dict[str, Handler]:
    return {}


def add_bench(benches: Any) -> dict[str, Handler]:
    from assistant.bench_crm import LOCAL_POSTGRES_URL

    p = benches.add_parser(
        "skills", help="the scripted conversations through the real stack: task success and turn latency"
    )
    p.add_argument("--leads", type=int, default=DEFAULT_LEADS, help="generated leads on top of the demo data")
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite", help="the database (default sqlite)")
    p.add_argument(
        "--postgres-url",
        default=LOCAL_POSTGRES_URL,
        help="the PostgreSQL server for --db postgres (a throw-away schema is created and dropped)",
    )
    p.add_argument("--conversations", type=Path, help=f"the conversation set (default: {DEFAULT_SET})")
    p.add_argument("--out", type=Path, help="the JSON report (default: bench/results/skills-<date>.json)")
    return {"skills": cmd_bench_skills}


@contextmanager
def bench_database(kind: str, folder: Path, postgres_url: str) -> Iterator[str]:
    """The URL of an empty database for the bench: a SQLite file in `folder`, or a new PostgreSQL
    schema (dropped afterwards) that every process reaches through the URL's search_path."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'crm.sqlite3'}"
        return
    from assistant.bench_crm import Target, postgres_unreachable, prepared

    reason = postgres_unreachable(postgres_url)
    if reason:
        raise BenchFailed(reason)
    target = Target("postgresql", postgres_url, {})
    with prepared(target) as _store:
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={target.schema}"})
        yield url.render_as_string(hide_password=False)


def seed(settings: Settings, leads: int) -> tuple[dict[str, str], dict[str, int]]:
    """The demo users, records and extras (with their tokens and scoring models), then `leads`
    generated leads owned by the sales reps."""
    from assistant.cli import ensure_demo_data
    from crm_backend.demo_large import add_large_data

    tokens = ensure_demo_data(settings)
    if not tokens:
        raise BenchFailed("the database already had users that are not the demo's")
    store = open_store(settings)
    try:
        counts = add_large_data(store, leads=leads, accounts=0, activities=0) if leads else {}
    finally:
        store.dispose()
    return tokens, counts


def run(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Seed, start the stack, play the set; the report."""
    from assistant.bench import machine, rss_mb
    from assistant.conversations import load_conversations, play
    from assistant.stack import Stack, free_port
    from assistant.training import ensure_model
    from crm_backend.models import Base
    from crm_backend.store import Store

    path = args.conversations or settings.project_root / DEFAULT_SET
    conversations = load_conversations(path, Base.metadata)
    say(f"{len(conversations)} conversations from {path}")
    with (
        tempfile.TemporaryDirectory(prefix="crm-bench-skills-") as tmp,
        bench_database(args.db, Path(tmp), args.postgres_url) as url,
    ):
        bench_settings = settings.model_copy(
            update={
                "var_dir": Path(tmp) / "var",
                "database_url": url,
                "rasa_port": free_port(),
                "action_server_port": free_port(),
                "gateway_port": free_port(),
            }
        )
        say("checking the Rasa model (trains only when config.yml, domain.yml or nlu_data/ changed)...")
        model, _ = ensure_model(bench_settings)
        say(f"seeding the demo data and {args.leads:,} generated leads ({args.db})...")
        started = time.perf_counter()
        tokens, counts = seed(bench_settings, args.leads)
        seed_s = time.perf_counter() - started
        say(f"seeded in {seed_s:.0f} s; starting the stack on free ports (model {model.name})...")
        with Stack(bench_settings, model) as stack:
            store = Store.from_url(url)
            try:
                outcome = asyncio.run(
                    play(
                        conversations,
                        bench_settings.gateway_url,
                        tokens,
                        store.engine,
                        progress=lambda i, r: say(f"  {i + 1:>3} {'ok  ' if r.passed else 'FAIL'} {r.name}"),
                    )
                )
            finally:
                store.dispose()
            memory = {name: rss_mb(pid) for name, pid in stack.pids().items()}
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"crm-assistant bench skills --leads {args.leads} --db {args.db}",
        "machine": machine(),
        "database": {"kind": args.db, "generated": counts, "seed_s": round(seed_s, 1)},
        "model": model.name,
        "conversation_set": str(path),
        "rss_mb": memory,
        **outcome.report(),
    }


def cmd_bench_skills(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.conversations import ConversationSetError, summary_text
    from assistant.stack import StartupFailed

    if args.leads < 0:
        say("bench skills: --leads cannot be negative")
        return 1
    try:
        report = run(settings, args)
    except (BenchFailed, ConversationSetError, StartupFailed, RuntimeError) as exc:
        say(f"bench skills: {exc}")
        return 1
    day = datetime.now(UTC).date().isoformat()
    out = args.out or settings.project_root / "bench" / "results" / f"skills-{day}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    say(summary_text(report))
    say(f"machine: {report['machine']}")
    say(f"full report: {out}")
    return 2 if report["critical_checks"]["failed"] else 0
