"""`crm-assistant macro ...`: list the macros a user may see, run one on a record (or dry-run it),
and read its run log. The same engine as `POST /api/v1/macros/{id}/run`, as the user given by --as."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from assistant.commands import Handler, actor_for, say
from assistant.settings import Settings, open_store


def add_commands(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("macro", help="list, run and inspect macros")
    macro_sub = p.add_subparsers(dest="macro_command", required=True)
    q = macro_sub.add_parser("list", help="the macros a user may see")
    q.add_argument("--as", dest="as_user", default="admin", help="whose view (default: admin)")
    q = macro_sub.add_parser("run", help="run a macro on one record (all or nothing)")
    q.add_argument("macro", help="the macro's id or name")
    q.add_argument("--record", type=int, required=True, help="the id of the lead/deal/contact/account")
    q.add_argument("--dry-run", action="store_true", help="show what would change; write nothing but the log")
    q.add_argument("--as", dest="as_user", default="admin", help="the user who runs it (default: admin)")
    q.add_argument("--json", action="store_true", help="print the whole result as JSON")
    q = macro_sub.add_parser("runs", help="a macro's run log, newest first")
    q.add_argument("macro", help="the macro's id or name")
    q.add_argument("--limit", type=int, default=20)
    q.add_argument("--as", dest="as_user", default="admin", help="whose view (default: admin)")
    return {"macro": cmd_macro}


def cmd_macro(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend.errors import CrmError

    store = open_store(settings)
    try:
        actor = actor_for(store, args.as_user)
        handler = {"list": _list, "run": _run, "runs": _runs}[args.macro_command]
        with store.unit_of_work(actor, "cli", read_only=args.macro_command != "run") as uow:
            return handler(uow, args)
    except CrmError as exc:
        fields = getattr(exc, "fields", None)
        detail = "; ".join(f"{k}: {v}" for k, v in fields.items()) if fields else ""
        sys.stderr.write(f"macro: {exc.message} {detail}".strip() + "\n")
        return 2
    finally:
        store.dispose()


def _list(uow: Any, _args: argparse.Namespace) -> int:
    from crm_backend.services import records

    page = records.list_records(uow, records.resource("macros"), records.ListQuery(sort="name", limit=500))
    for m in page.items:
        state = "on " if m.is_active else "off"
        last = f"last {m.last_status} {m.last_executed_at:%Y-%m-%d %H:%M}" if m.last_executed_at else "never run"
        kind = f"{m.entity_type.value:<8} {m.trigger.value:<16}"
        say(f"#{m.id:<4} {state} {kind} {m.name}  ({m.execution_count} runs, {last})")
    say(f"{page.total} macro(s)")
    return 0


def _run(uow: Any, args: argparse.Namespace) -> int:
    from crm_backend.macros import engine

    macro = engine.find_macro(uow, args.macro)
    result = engine.run_macro(uow, macro, args.record, dry_run=args.dry_run)
    if args.json:
        say(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        say(f"macro #{macro.id} {macro.name!r} on {result.entity_type} {result.entity_id}: {result.status.value}")
        for step in result.steps:
            say(
                f"  [{step['index']}] {step['type']}: {step['status']}"
                + (f" - {step['error']}" if "error" in step else "")
            )
        for change in result.changes:
            say(f"  {_change(change)}")
        if result.error:
            say(f"  {result.error}")
        if result.dry_run:
            say("  (dry run: nothing was written)")
    return 0 if result.error is None else 1


def _change(change: dict[str, Any]) -> str:
    if "field" in change:
        return f"{change['record']}.{change['field']}: {change['before']!r} -> {change['after']!r}"
    if "created" in change:
        return f"creates {change['created']}" + (f" #{change['id']}" if change.get("id") else "")
    if "tag_added" in change:
        return f"{change['record']}: tag {change['tag_added']!r}"
    if "notified" in change:
        return f"notifies user {change['notified']}: {change['title']}"
    return json.dumps(change, default=str)


def _runs(uow: Any, args: argparse.Namespace) -> int:
    from crm_backend.macros import engine

    macro = engine.find_macro(uow, args.macro)
    items, total = engine.runs(uow, macro, limit=args.limit)
    for r in items:
        error = f"  {r.error}" if r.error else ""
        head = f"{r.started_at:%Y-%m-%d %H:%M:%S} #{r.id:<5} {r.status.value:<9} {r.trigger.value:<15}"
        say(f"{head} {r.entity_type.value} {r.entity_id}{error}")
    say(f"{total} run(s) of macro #{macro.id} {macro.name!r}")
    return 0


# --- bench -------------------------------------------------------------------------------------------
RESULTS = "bench/results/macros.md"


def add_bench(benches: Any) -> dict[str, Handler]:
    q = benches.add_parser("macros", help="macro trigger overhead, scheduled runs and manual runs")
    q.add_argument("--leads", type=int, default=2000, help="leads to create and run over (default 2000)")
    q.add_argument("--runs", type=int, default=200, help="manual runs to time (default 200)")
    q.add_argument("--output", default=RESULTS, help=f"markdown file to write (default {RESULTS})")
    return {"macros": _bench}


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    """On a throw-away SQLite database: leads created with and without an on_create macro, one
    scheduled macro over every lead, and the latency of manual runs (real and dry)."""
    import datetime as dt
    import platform
    import statistics
    import tempfile
    import time
    from pathlib import Path

    from crm_backend.demo import seed_demo
    from crm_backend.macros import engine
    from crm_backend.macros.schedule import run_due
    from crm_backend.migrate import upgrade
    from crm_backend.models.automation import Macro
    from crm_backend.services import records
    from crm_backend.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="macro-bench-"))
    store = Store.from_url(f"sqlite:///{tmp / 'crm.sqlite3'}")
    upgrade(store.engine)
    seed_demo(store)
    alice = actor_for(store, "alice")
    leads, res = records.resource("leads"), records.resource("macros")

    def create_leads(tag: str) -> tuple[float, list[int]]:
        ids: list[int] = []
        started = time.perf_counter()
        for start in range(0, args.leads, 500):
            with store.unit_of_work(alice) as uow:
                for i in range(start, min(start + 500, args.leads)):
                    payload = {"last_name": f"{tag}{i}", "company": f"{tag} Co {i}", "industry": "Software"}
                    ids.append(records.create_record(uow, leads, payload, allow_duplicate=True).id)
        return time.perf_counter() - started, ids

    plain, _ = create_leads("plain")
    with store.unit_of_work(alice) as uow:
        tag_it = {"type": "add_tag", "tag": "saas"}
        contact = {"type": "set_field", "field": "status", "value": "Contacted"}
        records.create_record(
            uow,
            res,
            {"name": "tag new", "entity_type": "lead", "trigger": "on_create", "actions": [tag_it, contact]},
        )
        sched = records.create_record(
            uow,
            res,
            {
                "name": "daily",
                "entity_type": "lead",
                "trigger": "schedule",
                "schedule": "FREQ=DAILY",
                "conditions": {"field": "industry", "op": "eq", "value": "Software"},
                "actions": [{"type": "add_tag", "tag": "daily"}],
            },
        ).id
        manual = records.create_record(
            uow,
            res,
            {
                "name": "manual",
                "entity_type": "lead",
                "actions": [{"type": "set_field", "field": "title", "value": "CTO"}],
            },
        ).id
    triggered, ids = create_leads("macro")
    started = time.perf_counter()
    with store.unit_of_work() as uow:
        due_at = uow.session.get(Macro, sched).next_run_at  # type: ignore[union-attr]
    run_due(store, due_at or dt.datetime.now(dt.UTC))
    scheduled = time.perf_counter() - started
    timings: dict[str, list[float]] = {"real": [], "dry": []}
    for i in range(args.runs):
        for kind in ("real", "dry"):
            t0 = time.perf_counter()
            with store.unit_of_work(alice) as uow:
                found = uow.session.get_one(Macro, manual)
                engine.run_macro(uow, found, ids[i % len(ids)], dry_run=kind == "dry")
            timings[kind].append((time.perf_counter() - t0) * 1000)
    store.dispose()

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1]

    n = args.leads
    lines = [
        "# Macros: measured figures",
        "",
        f"- machine: {platform.node()} ({platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}), SQLite file database",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- command: `crm-assistant bench macros --leads {n} --runs {args.runs}`",
        "",
        "| what | figure |",
        "|---|---|",
        f"| create {n} leads, no macro (baseline) | {plain:.2f} s ({n / plain:,.0f} leads/s) |",
        f"| create {n} leads, on_create macro (add_tag + set_field) | {triggered:.2f} s "
        f"({n / triggered:,.0f} leads/s) |",
        f"| trigger overhead per created lead | {(triggered - plain) / n * 1000:.2f} ms |",
        f"| scheduled macro over {2 * n} leads ({n} match) | {scheduled:.2f} s ({2 * n / scheduled:,.0f} leads/s) |",
        f"| manual run (set_field), p50 / p95 | {statistics.median(timings['real']):.1f} / "
        f"{pct(timings['real'], 95):.1f} ms |",
        f"| dry run (set_field), p50 / p95 | {statistics.median(timings['dry']):.1f} / "
        f"{pct(timings['dry'], 95):.1f} ms |",
        "",
    ]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    say("\n".join(lines))
    return 0
