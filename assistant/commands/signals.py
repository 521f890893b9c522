"""`crm-assistant signals` commands: sweep (signals + health refresh now), health, segment (and `bench signals`)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from assistant.commands import Handler, say
from assistant.settings import Settings, open_store

RESULTS = Path("bench/results/signals.md")


def cmd_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend.signals import sweep

    store = open_store(settings)
    try:
        result = sweep.sweep(store, datetime.now(UTC), sweep.SETTINGS)
    finally:
        store.dispose()
    say(f"{result.signals} new signals; {result.accounts} account healths refreshed")
    return 0


def cmd_health(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend.models.accounts import Account
    from crm_backend.signals import health, sweep

    store = open_store(settings)
    now = datetime.now(UTC)
    try:
        with store.unit_of_work(None, "cli") as uow:
            if args.all:
                done = health.recompute_all(uow, now)
            else:
                max_age = sweep.SETTINGS.health_max_age_days
                done = health.recompute_ids(uow, health.stale_ids(uow, now, timedelta(days=max_age)), now)
        with store.unit_of_work(None, "cli", read_only=True) as uow:
            worst = uow.session.scalars(
                select(Account)
                .where(Account.deleted_at.is_(None), Account.health_score.is_not(None))
                .order_by(Account.health_score, Account.id)
                .limit(args.show)
            ).all()
            say(f"{done} account healths computed; the least healthy:")
            for a in worst:
                drivers = sorted(a.health_explanation.get("drivers", []), key=lambda d: d["effect"])
                why = "; ".join(d["text"] for d in drivers[:2] if d["effect"] < 0) or "-"
                say(f"  {a.health_score:>3}  churn {a.churn_risk:.0%}  {a.name} — {why}")
    finally:
        store.dispose()
    return 0


def cmd_segment(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend.signals import segments

    store = open_store(settings)
    try:
        with store.unit_of_work(None, "cli") as uow:
            result = segments.segment(uow, datetime.now(UTC), args.k)
    finally:
        store.dispose()
    if not result.segmented:
        say(f"not segmented: {result.reason}")
        return 1
    say(f"{result.accounts} accounts in {result.k} segments (silhouette {result.silhouette}):")
    for s in result.segments:
        say(f"  {s.size:>6}  {s.name} — {segments.describe(s.centroid_z)}")
    return 0


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    """Time the sweep (stalled deals + health of every account), a repeat sweep and segmentation on a
    generated database (temporary SQLite), and write the figures as markdown."""
    from crm_backend.demo_large import seed_large
    from crm_backend.migrate import upgrade
    from crm_backend.models.feeds import SalesSignal
    from crm_backend.signals import segments, sweep
    from crm_backend.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.from_url(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        try:
            upgrade(store.engine)
            started = time.perf_counter()
            counts = seed_large(store, leads=args.leads, accounts=args.accounts, activities=args.activities)
            seed_s = time.perf_counter() - started
            now = datetime.now(UTC)
            figures: dict[str, Any] = {"seed_s": round(seed_s, 1), "rows": counts}
            for label, when in (("sweep_first", now), ("sweep_repeat", now)):
                started = time.perf_counter()
                result = sweep.sweep(store, when, sweep.SETTINGS)
                figures[label] = {
                    "seconds": round(time.perf_counter() - started, 2),
                    "signals": result.signals,
                    "accounts": result.accounts,
                }
            started = time.perf_counter()
            with store.unit_of_work(None, "cli") as uow:
                seg = segments.segment(uow, now, args.k)
            figures["segment"] = {
                "seconds": round(time.perf_counter() - started, 2),
                "k": seg.k,
                "silhouette": seg.silhouette,
                "sizes": [(s.name, s.size) for s in seg.segments],
            }
            with store.unit_of_work(None, "cli", read_only=True) as uow:
                figures["signals_total"] = len(uow.session.scalars(select(SalesSignal.id)).all())
        finally:
            store.dispose()
    _write(figures, args)
    say(json.dumps(figures, indent=2))
    return 0


def _write(figures: dict[str, Any], args: argparse.Namespace) -> None:
    first, repeat, seg = figures["sweep_first"], figures["sweep_repeat"], figures["segment"]
    lines = [
        "# Signals, health and segmentation — bench",
        "",
        f"- Machine: {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {len(os.sched_getaffinity(0))} usable cores",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `crm-assistant bench signals --accounts {args.accounts} --activities {args.activities}"
        f" --leads {args.leads}`",
        f"- Database: temporary SQLite; generated rows: {figures['rows']} (seeded in {figures['seed_s']} s)",
        "",
        "| step | seconds | result |",
        "|---|---:|---|",
        f"| first sweep (stalled deals + health of every account) | {first['seconds']} | "
        f"{first['signals']} signals (each with a feed item and a queued notification), {first['accounts']} healths |",
        f"| repeat sweep (nothing new, nothing stale) | {repeat['seconds']} | "
        f"{repeat['signals']} signals, {repeat['accounts']} healths |",
        f"| segmentation (k-means, k {'given' if args.k else 'by silhouette 2–6'}) | {seg['seconds']} | "
        f"k={seg['k']}, silhouette {seg['silhouette']} |",
        "",
        "Baseline: none before this engine (first measurement). Segments: "
        + ", ".join(f"{name} ({size})" for name, size in seg["sizes"]),
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    RESULTS.with_suffix(".json").write_text(json.dumps(figures, indent=2), encoding="utf-8")


def add_commands(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("signals", help="sales signals, customer health and segments")
    actions = p.add_subparsers(dest="signals_command", required=True)
    actions.add_parser("sweep", help="run the signal sweep now (stalled deals, stale account health)")
    h = actions.add_parser("health", help="recompute account health (stale ones, or --all)")
    h.add_argument("--all", action="store_true", help="recompute every account, not only stale ones")
    h.add_argument("--show", type=int, default=10, help="list this many of the least healthy accounts")
    s = actions.add_parser("segment", help="segment the accounts with k-means")
    s.add_argument(
        "--k", type=int, choices=range(2, 11), metavar="K", help="number of segments (default: by silhouette)"
    )
    handlers: dict[str, Handler] = {"sweep": cmd_sweep, "health": cmd_health, "segment": cmd_segment}

    def dispatch(settings: Settings, args: argparse.Namespace) -> int:
        return handlers[args.signals_command](settings, args)

    return {"signals": dispatch}


def add_bench(benches: Any) -> dict[str, Handler]:
    b = benches.add_parser("signals", help="signal sweep, account health and segmentation on generated data")
    b.add_argument("--accounts", type=int, default=20_000)
    b.add_argument("--activities", type=int, default=200_000)
    b.add_argument("--leads", type=int, default=1_000)
    b.add_argument("--k", type=int, choices=range(2, 11), metavar="K")
    return {"signals": cmd_bench}
