"""`crm-assistant scheduler run-once|status` and `crm-assistant bench scheduler`: run the scheduler's jobs
by hand, see who leads it and what is queued, and measure due-to-sent lag with many reminders due at once."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.commands import Handler, say
from assistant.settings import Settings, open_store

if TYPE_CHECKING:
    from crm_backend.store import Store

RESULTS = Path("bench/results/scheduler.md")


def cmd_run_once(settings: Settings, args: argparse.Namespace) -> int:
    """Every job once, now, taking the lease like a gateway would (refused while a gateway leads)."""
    from assistant.gateway import scheduler_config
    from crm_backend.scheduler import lease
    from crm_backend.scheduler.runner import LEASE_NAME, run_once

    config = scheduler_config(settings)
    store = open_store(settings)
    holder = lease.holder_id()
    try:
        if not lease.acquire(store, LEASE_NAME, holder, config.lease_ttl):
            state = lease.current(store, LEASE_NAME)
            say(f"another scheduler leads ({state.holder if state else '?'}); nothing run")
            return 1
        try:
            report = asyncio.run(run_once(store, config=config))
        finally:
            lease.release(store, LEASE_NAME, holder)
    finally:
        store.dispose()
    say(json.dumps(report.as_dict(), indent=2, default=str))
    return 1 if report.errors else 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from crm_backend.models.activities import Reminder, ReminderStatus
    from crm_backend.models.notifications import Notification
    from crm_backend.scheduler import lease
    from crm_backend.scheduler.runner import LEASE_NAME

    store = open_store(settings)
    try:
        state = lease.current(store, LEASE_NAME)
        now = dt.datetime.now(dt.UTC)
        with store.unit_of_work(None, "cli", read_only=True) as uow:
            by_status = dict(
                uow.session.execute(select(Notification.status, func.count()).group_by(Notification.status)).all()
            )
            due = uow.session.scalar(
                select(func.count()).where(Reminder.status == ReminderStatus.PENDING, Reminder.remind_at <= now)
            )
    finally:
        store.dispose()
    if state is None or state.expires_at <= now:
        say("leader: none (no gateway runs the scheduler right now)")
    else:
        say(
            f"leader: {state.holder} since {state.acquired_at:%Y-%m-%d %H:%M:%S}Z, "
            f"lease until {state.expires_at:%H:%M:%S}Z"
        )
    say(f"reminders due and not yet fired: {due}")
    say("notifications: " + (", ".join(f"{getattr(k, 'value', k)} {v}" for k, v in by_status.items()) or "none"))
    return 0


# --- bench -------------------------------------------------------------------------------------------
def _seed(store: Store, count: int, due: dt.datetime) -> None:
    """Demo users, then `count` reminders all due at `due` (bulk-inserted: seeding is not measured)."""
    from sqlalchemy import insert, select

    from crm_backend.demo import seed_demo
    from crm_backend.models.activities import Reminder
    from crm_backend.models.users import User

    seed_demo(store)
    with store.unit_of_work(None, "cli") as uow:
        owners = list(uow.session.scalars(select(User.id)))
        rows = [
            {"owner_id": owners[i % len(owners)], "message": f"Follow up #{i}", "remind_at": due} for i in range(count)
        ]
        for start in range(0, count, 2000):
            uow.session.execute(insert(Reminder), rows[start : start + 2000])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _drain(store: Store, count: int, interval: float, deadline: float) -> None:
    """Run the real scheduler (lease, ticks, threads) until every reminder's notification is sent."""
    from sqlalchemy import func, select

    from crm_backend.models.notifications import DeliveryStatus, Notification
    from crm_backend.scheduler.runner import Scheduler, SchedulerConfig

    scheduler = Scheduler(store, SchedulerConfig(interval=dt.timedelta(seconds=interval)))
    await scheduler.start()
    try:
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)

            def sent() -> int:
                with store.unit_of_work(None, "cli", read_only=True) as uow:
                    stmt = select(func.count()).where(Notification.status == DeliveryStatus.SENT)
                    return int(uow.session.scalar(stmt) or 0)

            if await asyncio.to_thread(sent) >= count:
                return
        raise TimeoutError("the scheduler did not deliver everything in time")
    finally:
        await scheduler.stop()


def _measure(store: Store, count: int, interval: float, timeout: float) -> dict[str, Any]:
    from sqlalchemy import select

    from crm_backend.migrate import upgrade
    from crm_backend.models.notifications import Notification

    upgrade(store.engine)
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    _seed(store, count, due)
    wait = (due - dt.datetime.now(dt.UTC)).total_seconds()
    if wait > 0:
        time.sleep(wait)
    started = time.monotonic()
    asyncio.run(_drain(store, count, interval, started + timeout))
    with store.unit_of_work(None, "cli", read_only=True) as uow:
        rows = uow.session.execute(select(Notification.created_at, Notification.sent_at)).all()
    fired = [(c - due).total_seconds() for c, _ in rows]
    lags = [(s - due).total_seconds() for _, s in rows if s is not None]
    span = max(lags)
    return {
        "reminders": count,
        "delivered": len(lags),
        "lag_seconds": {
            "p50": round(_percentile(lags, 0.5), 2),
            "p95": round(_percentile(lags, 0.95), 2),
            "max": round(span, 2),
            "mean": round(statistics.fmean(lags), 2),
        },
        "fired_seconds": {"p50": round(_percentile(fired, 0.5), 2), "max": round(max(fired), 2)},
        "throughput_per_second": round(count / span, 1) if span > 0 else None,
    }


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.bench_crm import prepared, server_version, targets

    figures: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "command": f"crm-assistant bench scheduler --reminders {args.reminders} --interval {args.interval:g}",
        "reminders": args.reminders,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "databases": {},
    }
    with tempfile.TemporaryDirectory() as workdir:
        found, skipped = targets(args.database_url, Path(workdir))
        figures["databases"].update(skipped)
        for target in found:
            say(f"measuring {target.label} with {args.reminders} reminders due at once ...")
            with prepared(target) as store:
                result = _measure(store, args.reminders, args.interval, args.timeout)
                result["server"] = server_version(store)
            figures["databases"][target.label] = result
            say(json.dumps(result))
    _write(figures, args.output)
    return 0


def _write(figures: dict[str, Any], path: Path) -> None:
    lines = [
        "# Scheduler: due-to-sent lag",
        "",
        "How long a reminder waits between its due time and its notification being marked sent, when",
        f"{figures['reminders']} reminders fall due at the same "
        "instant. The real scheduler runs (lease, ticks, jobs in threads, in-app delivery); lag is measured",
        "from the due time to each notification's `sent_at`.",
        "",
        f"- Date: {figures['date']}",
        f"- Machine: {figures['machine']} (2 cores shared with other work; load average at start "
        f"{', '.join(str(x) for x in figures['load_average_at_start'])})",
        f"- Command: `{figures['command']}`",
        "",
        "| database | reminders | p50 lag (s) | p95 lag (s) | max lag (s) | fired max (s) | throughput (/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in figures["databases"].items():
        if "skipped" in r:
            lines.append(f"| {label} | skipped: {r['skipped']} | | | | | |")
            continue
        lag = r["lag_seconds"]
        lines.append(
            f"| {label} ({r['server']}) | {r['reminders']} | {lag['p50']} | {lag['p95']} | {lag['max']} | "
            f"{r['fired_seconds']['max']} | {r['throughput_per_second']} |"
        )
    lines += [
        "",
        "Baseline: none before this engine (reminders were never sent). A single due reminder waits at most",
        "one tick interval plus one tick's work. Reminders fire and deliver in batches of 500, so the first",
        "are sent while later ones still fire; firing (one transaction per batch: notification, feed item,",
        "audit rows, change events) dominates, delivery to the feed is cheap.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    path.with_suffix(".json").write_text(json.dumps(figures, indent=2), encoding="utf-8")


def add_commands(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("scheduler", help="the scheduler: run its jobs once, or show its state")
    actions = p.add_subparsers(dest="scheduler_command", required=True)
    actions.add_parser("run-once", help="fire due reminders, expand series, deliver notifications, now")
    actions.add_parser("status", help="who leads the scheduler, what is due and queued")

    def scheduler(settings: Settings, args: argparse.Namespace) -> int:
        return {"run-once": cmd_run_once, "status": cmd_status}[args.scheduler_command](settings, args)

    return {"scheduler": scheduler}


def add_bench(benches: Any) -> dict[str, Handler]:
    b = benches.add_parser("scheduler", help="due-to-sent lag with 10,000 reminders due at once")
    b.add_argument("--reminders", type=int, default=10_000, help="reminders due at once (default 10,000)")
    b.add_argument("--interval", type=float, default=1.0, help="tick interval in seconds (default 1)")
    b.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds per database")
    b.add_argument("--database-url", action="append", metavar="URL", help="default: SQLite and local PostgreSQL")
    b.add_argument("--output", type=Path, default=RESULTS, help=f"markdown file to write (default {RESULTS})")
    return {"scheduler": cmd_bench}
