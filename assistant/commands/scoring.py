"""`crm-assistant` scoring commands: score, train-scoring, seed-history (and `bench scoring`)."""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert, select

from assistant.commands import Handler, say
from assistant.settings import Settings, open_store
from crm_backend.models.automation import EntityType, ScoringRule
from crm_backend.models.users import Role, User

ENTITIES = [t.value for t in EntityType]
RESULTS = Path("bench/results/scoring.md")


# --- score -------------------------------------------------------------------------------------------
def cmd_score(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend.scoring import engine

    if not args.all:
        say("Give --all to re-score every record (optionally of one --entity).")
        return 2
    store = open_store(settings)
    try:
        for etype in [args.entity] if args.entity else ENTITIES:
            started, done = time.perf_counter(), 0
            for count in engine.score_all(store, etype):
                done = count
            seconds = time.perf_counter() - started
            say(f"scored {done} {etype}s in {seconds:.1f} s ({done / seconds if seconds else 0:.0f}/s)")
    finally:
        store.dispose()
    return 0


# --- train-scoring -------------------------------------------------------------------------------------
def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend.scoring import model

    store = open_store(settings)
    status = 0
    try:
        for etype in [args.entity] if args.entity else [t.value for t in model.TRAINABLE]:
            with store.unit_of_work(None, "cli", read_only=True) as uow:
                data = model.load_dataset(uow, etype)
            try:
                result = model.train(data, etype, settings.scoring_models_dir, force=args.force)
            except model.NotEnoughHistory as exc:
                say(f"{etype}: not trained: {exc}")
                continue
            m = result.metrics
            say(
                f"{etype}: ROC-AUC {m['roc_auc']}, precision {m['precision']}, recall {m['recall']}, F1 {m['f1']} "
                f"({m['train_rows']} train / {m['test_rows']} held out; {m['split']}; {m['train_seconds']} s)"
            )
            say(f"{etype}: {'now current: ' + result.version if result.promoted else 'not saved'} — {result.reason}")
    finally:
        store.dispose()
    return status


# --- seed-history --------------------------------------------------------------------------------------
def cmd_seed_history(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend.scoring import defaults, history

    store = open_store(settings)
    try:
        counts = history.seed_history(store, seed=args.seed, leads=args.leads, deals=args.deals, months=args.months)
        say("added " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        with store.unit_of_work(None, "cli") as uow:
            admin = uow.session.scalar(select(User.id).where(User.role == Role.ADMIN).order_by(User.id).limit(1))
            owner = admin or uow.session.scalar(select(User.id).order_by(User.id).limit(1))
            if owner is not None:
                made = defaults.install_default_rules(uow, owner)
                if made:
                    say("default rule sets: " + ", ".join(f"{n} {k} rules" for k, n in made.items()))
        say("next: crm-assistant train-scoring && crm-assistant score --all")
    finally:
        store.dispose()
    return 0


# --- bench scoring -------------------------------------------------------------------------------------
def bench_rules(count: int) -> list[dict[str, Any]]:
    """`count` lead rules spread over the operators and facts (the kind of rule book a team grows)."""
    templates: list[tuple[str, Callable[[int], dict[str, Any]], int]] = [
        (
            "source",
            lambda i: {"field": "source", "op": "in", "value": ["Referral", "Partner", "Website"][: 1 + i % 3]},
            10,
        ),
        ("industry", lambda i: {"field": "industry", "op": "eq", "value": ["Software", "Retail", "Finance"][i % 3]}, 8),
        ("size", lambda i: {"field": "employees", "op": "gte", "value": 50 * (1 + i % 5)}, 5),
        ("bant", lambda i: {"field": "bant_known", "op": "gte", "value": 1 + i % 4}, 6),
        ("activity", lambda i: {"field": "activity_count", "op": "between", "value": [i % 3, 5 + i % 5]}, 4),
        ("recent", lambda i: {"field": "last_activity_at", "op": "days_since", "value": {"lt": 7 + i}}, 5),
        ("budget", lambda i: {"field": "budget", "op": "exists", "value": True}, 4),
        ("title", lambda i: {"field": "title", "op": "contains", "value": ["Director", "VP", "Head"][i % 3]}, 6),
        ("email", lambda i: {"field": "email", "op": "startswith", "value": "a"}, -2),
        ("status", lambda i: {"field": "status", "op": "not_in", "value": ["Lost"]}, 3),
        (
            "combo",
            lambda i: {
                "all": [
                    {"field": "country", "op": "ne", "value": "US"},
                    {
                        "any": [
                            {"field": "source", "op": "eq", "value": "Chat"},
                            {"not": {"field": "phone", "op": "exists"}},
                        ]
                    },
                ]
            },
            -4,
        ),
    ]
    rules = []
    for i in range(count):
        name, make, points = templates[i % len(templates)]
        rules.append({"name": f"bench {name} {i}", "conditions": make(i), "points": points})
    return rules


def _bench_database(target: Any, leads: int, rules: int) -> dict[str, Any]:
    from assistant.bench_crm import prepared, server_version
    from crm_backend.demo import seed_demo
    from crm_backend.demo_large import add_large_data
    from crm_backend.migrate import upgrade
    from crm_backend.scoring import engine

    with prepared(target) as store:
        upgrade(store.engine)
        seed_demo(store)
        started = time.perf_counter()
        add_large_data(store, leads=leads, accounts=max(100, leads // 5), activities=leads * 2)
        seeded = time.perf_counter() - started
        with store.engine.begin() as conn:
            owner = conn.scalar(select(User.id).where(User.role == Role.ADMIN).limit(1))
            table = cast(Table, ScoringRule.__table__)
            now = datetime.now(UTC)
            conn.execute(
                insert(table),
                [
                    {**r, "entity_type": "lead", "owner_id": owner, "created_at": now, "updated_at": now}
                    for r in bench_rules(rules)
                ],
            )
        started = time.perf_counter()
        done = 0
        for count in engine.score_all(store, EntityType.LEAD):
            done = count
        seconds = time.perf_counter() - started
        return {
            "database": server_version(store),
            "leads": done,
            "rules": rules,
            "seed_seconds": round(seeded, 1),
            "score_seconds": round(seconds, 1),
            "records_per_second": round(done / seconds) if seconds else None,
        }


def _bench_training(workdir: Path, leads: int, deals: int) -> dict[str, Any]:
    from crm_backend.demo import seed_demo
    from crm_backend.migrate import upgrade
    from crm_backend.scoring import history, model
    from crm_backend.store import Store

    store = Store.from_url(f"sqlite:///{workdir / 'history.sqlite3'}")
    out: dict[str, Any] = {}
    try:
        upgrade(store.engine)
        seed_demo(store)
        out["history"] = history.seed_history(store, leads=leads, deals=deals)
        for etype in model.TRAINABLE:
            with store.unit_of_work(None, "cli", read_only=True) as uow:
                started = time.perf_counter()
                data = model.load_dataset(uow, etype)
                loaded = time.perf_counter() - started
            result = model.train(data, etype, workdir / "models")
            control = model.train(model.shuffled(data), etype, workdir / "control-models")
            out[etype.value] = {
                **result.metrics,
                "load_seconds": round(loaded, 2),
                "shuffled_label_roc_auc": control.metrics["roc_auc"],
            }
    finally:
        store.dispose()
    return out


def write_results(path: Path, command: str, databases: list[dict[str, Any]], training: dict[str, Any]) -> None:
    lines = [
        "# Scoring benchmark",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {platform.node() or 'unknown'}, {platform.machine()}, {platform.processor() or ''} "
        f"Python {platform.python_version()}, {_cpus()} CPUs",
        f"- Command: `{command}`",
        "",
        "## Rule scoring throughput",
        "",
        "Every lead scored with all rules (facts read in batches, explanation written, `Lead.score` mirrored),",
        "one transaction per 1,000 leads (`crm-assistant score --all --entity lead`). Baseline: none before this",
        "engine; the first run is the baseline for later ones.",
        "",
        "| database | leads | rules | seconds | records/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for d in databases:
        if "skipped" in d:
            lines.append(f"| {d['label']} | – | – | – | skipped: {d['skipped']} |")
        else:
            rate = f"{d['records_per_second']:,}"
            lines.append(f"| {d['database']} | {d['leads']:,} | {d['rules']} | {d['score_seconds']} | {rate} |")
    lines += [
        "",
        "## Model training (generated history, `crm_backend/scoring/history.py`)",
        "",
        f"History: {', '.join(f'{n:,} {k}' for k, n in training.get('history', {}).items())}.",
        "Time-based split (newest quarter held out). Control: the same pipeline trained on shuffled labels.",
        "",
        "| model | train rows | held-out rows | ROC-AUC | precision | recall | F1 | shuffled-label ROC-AUC | fit s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for etype in ("lead", "deal"):
        m = training.get(etype)
        if m:
            lines.append(
                f"| {etype} | {m['train_rows']:,} | {m['test_rows']:,} | {m['roc_auc']} | {m['precision']} | "
                f"{m['recall']} | {m['f1']} | {m['shuffled_label_roc_auc']} | {m['train_seconds']} |"
            )
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    path.with_suffix(".json").write_text(json.dumps({"databases": databases, "training": training}, indent=2))


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.bench_crm import targets

    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        workdir = Path(tmp)
        found, skipped = targets(args.database_url, workdir)
        databases: list[dict[str, Any]] = [{"label": k, **v} for k, v in skipped.items()]
        for target in found:
            say(f"scoring {args.leads:,} leads with {args.rules} rules on {target.label} ...")
            databases.append(_bench_database(target, args.leads, args.rules))
            say(json.dumps(databases[-1]))
        say("training on generated history ...")
        training = _bench_training(workdir, args.history_leads, args.history_deals)
        say(json.dumps(training))
    parts = ["crm-assistant bench scoring", f"--leads {args.leads}", f"--rules {args.rules}"]
    parts += [f"--database-url {u}" for u in args.database_url or []]
    write_results(args.output, " ".join(parts), databases, training)
    say(f"wrote {args.output}")
    return 0


def add_commands(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("score", help="re-score leads, deals, contacts and accounts (rules + model)")
    p.add_argument("--all", action="store_true", help="every record (required)")
    p.add_argument("--entity", choices=ENTITIES, help="only this entity type (default: all four)")
    p = sub.add_parser("train-scoring", help="train the lead/deal scoring models on the CRM's history")
    p.add_argument("--entity", choices=["lead", "deal"], help="only this model (default: both)")
    p.add_argument("--force", action="store_true", help="replace the current model even if the new one is worse")
    p = sub.add_parser("seed-history", help="add generated multi-year lead/deal history (for demos) + default rules")
    p.add_argument("--leads", type=int, default=3000)
    p.add_argument("--deals", type=int, default=1500)
    p.add_argument("--months", type=int, default=30)
    p.add_argument("--seed", type=int, default=11)
    return {"score": cmd_score, "train-scoring": cmd_train, "seed-history": cmd_seed_history}


def add_bench(benches: Any) -> dict[str, Handler]:
    p = benches.add_parser("scoring", help="scoring throughput (50 rules x 100,000 leads) and model training")
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--rules", type=int, default=50)
    p.add_argument("--database-url", action="append", metavar="URL", help="repeatable; default SQLite + local PG")
    p.add_argument("--history-leads", type=int, default=5000)
    p.add_argument("--history-deals", type=int, default=2500)
    p.add_argument("--output", type=Path, default=RESULTS)
    return {"scoring": cmd_bench}
