"""`crm-assistant forecast` (a period's forecast, a snapshot, or the backtest) and
`crm-assistant bench forecast` (forecast time over a million generated deals by territory)."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from assistant.commands import Handler, actor_for
from assistant.settings import Settings, open_store


def add_commands(sub: Any) -> dict[str, Handler]:
    p = sub.add_parser("forecast", help="forecast a period (or --backtest past periods) as a user")
    p.add_argument("--period", help="2026-Q3, 2026-07 or 2026 (default: the current quarter)")
    p.add_argument("--method", choices=["weighted", "historical", "ai", "all"], default="all")
    p.add_argument("--by", choices=["owner", "team", "territory"], help="split the figure")
    p.add_argument("--territory-id", type=int, help="only this territory and its descendants")
    p.add_argument("--owner-id", type=int, help="only this owner's deals")
    p.add_argument("--currency", help="state the figures in this currency (default: the base currency)")
    p.add_argument("--as", dest="as_user", default="admin", help="whose view (default: admin)")
    p.add_argument("--snapshot", action="store_true", help="also store the forecast as forecast records")
    p.add_argument("--backtest", action="store_true", help="replay past periods and report MAPE per method")
    p.add_argument("--periods", type=int, default=8, help="backtest: closed periods to replay (default 8)")
    p.add_argument("--period-type", choices=["month", "quarter", "year"], default="quarter")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    return {"forecast": cmd_forecast}


def add_bench(benches: Any) -> dict[str, Handler]:
    p = benches.add_parser("forecast", help="forecasting over generated deals by territory (default 1,000,000)")
    p.add_argument("--deals", type=int, default=1_000_000, help="generated deals (default 1,000,000)")
    p.add_argument("--database-url", help="an EMPTY database to fill (default: a temporary SQLite file)")
    p.add_argument("--rounds", type=int, default=5, help="timed forecasts per measurement (default 5)")
    p.add_argument("--output", type=Path, help="also write the figures as JSON here")
    return {"forecast": cmd_bench_forecast}


def cmd_forecast(settings: Settings, args: argparse.Namespace) -> int:
    from crm_backend.errors import CrmError, ValidationFailed
    from crm_backend.forecasting import backtest, service

    store = open_store(settings)
    try:
        with store.unit_of_work(actor_for(store, args.as_user), channel="cli") as uow:
            if args.backtest:
                result = backtest.run(
                    uow,
                    periods=args.periods,
                    period_type=args.period_type,
                    owner_id=args.owner_id,
                    territory_id=args.territory_id,
                    currency=args.currency,
                )
                _out(json.dumps(result, indent=2, ensure_ascii=False) if args.json else backtest_text(result))
                return 0
            options = {
                "method": args.method,
                "by": args.by,
                "territory_id": args.territory_id,
                "owner_id": args.owner_id,
                "currency": args.currency,
            }
            if args.snapshot:
                stored = service.snapshot(uow, args.period, **options)
                result = stored["forecast"]
                sys.stderr.write(
                    f"stored {len(stored['sales_forecasts'])} sales and "
                    f"{len(stored['territory_forecasts'])} territory forecast records\n"
                )
            else:
                result = service.forecast(uow, args.period, **options)
            _out(json.dumps(result, indent=2, ensure_ascii=False) if args.json else forecast_text(result))
            return 0
    except ValidationFailed as exc:
        sys.stderr.write(f"error: {'; '.join(f'{k}: {v}' for k, v in exc.fields.items())}\n")
        return 2
    except CrmError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 2
    finally:
        store.dispose()


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _figure(figure: dict[str, Any] | None) -> str:
    if figure is None:
        return "-"
    text = f"{figure['amount']}"
    if figure.get("lower") is not None:
        text += f" [{figure['lower']}–{figure['upper']}]"
    if "variance" in figure:
        text += f" var {figure['variance']}"
    return text


def forecast_text(result: dict[str, Any]) -> str:
    methods = result["methods"]
    head = (
        f"Forecast {result['period']['label']} in {result['currency']} "
        f"({result['confidence']}% intervals{', closed' if result['closed'] else ''})"
    )
    lines = [head, "\t".join(["group", *methods, "manual", "actual"])]
    for group in [*result["groups"], result["total"]]:
        manual = ", ".join(m["amount"] for m in group["manual"]) or "-"
        cells = [_figure(group["figures"].get(m)) for m in methods]
        lines.append("\t".join([group["label"], *cells, manual, group["actual"] or "-"]))
    for name, details in result["details"].items():
        lines.append(f"{name}: {json.dumps(details, ensure_ascii=False)}")
    return "\n".join(lines)


def backtest_text(result: dict[str, Any]) -> str:
    names = list(result["mape"])
    lines = [f"Backtest over {len(result['periods'])} {result['period_type']}s in {result['currency']}"]
    lines.append("\t".join(["period", "actual", *names]))
    for row in result["periods"]:
        lines.append("\t".join([row["period"], row["actual"], *[row["forecasts"][n] or "-" for n in names]]))
    lines.append("\t".join(["MAPE %", "", *[str(result["mape"][n]) for n in names]]))
    comparison = result["comparison"]
    lines.append(comparison["sentence"] if comparison else "No period had closed-won revenue to score against.")
    return "\n".join(lines)


# --- bench -----------------------------------------------------------------------------------------
REGIONS = ("Americas", "EMEA", "APAC", "LATAM", "Nordics")
SUBREGIONS = 10  # territories under each region: 5 + 50 in all
REPS = 100
TEAMS = 10
ACCOUNTS = 2_000
BATCH = 10_000
CURRENCIES = (("USD", "1", 70), ("EUR", "1.08", 20), ("GBP", "1.27", 10))
STAGES = (("Prospecting", 20), ("Qualification", 20), ("Proposal", 15), ("Negotiation", 10))
CLOSED = (("Closed Won", 20), ("Closed Lost", 15))


def _log(message: str) -> None:
    sys.stderr.write(f"[bench forecast] {message}\n")
    sys.stderr.flush()


def _deal_rows(rng: random.Random, count: int, owners: list[int], territories: list[int], accounts: list[int],
               today: date) -> Iterator[dict[str, Any]]:  # fmt: skip
    from crm_backend.models.deals import STAGE_PROBABILITY, DealStage

    stages = [s for s, _ in (*STAGES, *CLOSED)]
    weights = [w for _, w in (*STAGES, *CLOSED)]
    codes, code_weights = [c for c, _, _ in CURRENCIES], [w for _, _, w in CURRENCIES]
    now = datetime.now(UTC)
    for i in range(count):
        stage = DealStage(rng.choices(stages, weights)[0])
        expected = today + timedelta(days=rng.randrange(-540, 365))
        created = datetime.combine(expected - timedelta(days=rng.randrange(30, 240)), datetime.min.time(), UTC)
        closed = None
        if stage in (DealStage.CLOSED_WON, DealStage.CLOSED_LOST):
            expected = today - timedelta(days=rng.randrange(1, 730))
            closed = datetime.combine(expected + timedelta(days=rng.randrange(-20, 40)), datetime.min.time(), UTC)
            created = min(created, closed - timedelta(days=1))
        yield {
            "name": f"Bench deal {i}",
            "account_id": rng.choice(accounts),
            "contact_id": None,
            "lead_id": None,
            "stage": stage.value,
            "type": "New Business",
            "amount": Decimal(rng.randrange(1_000, 250_000)),
            "currency": rng.choices(codes, code_weights)[0],
            "probability": STAGE_PROBABILITY[stage],
            "expected_close_date": expected,
            "closed_at": min(closed, now) if closed else None,
            "stage_changed_at": created,
            "competitors": [],
            "lost_reason": "No budget this year" if stage is DealStage.CLOSED_LOST else None,
            "description": None,
            "custom_fields": {},
            "owner_id": rng.choice(owners),
            "territory_id": rng.choice(territories),
            "shared_with_team": False,
            "created_at": created,
            "updated_at": created,
            "version": 1,
            "deleted_at": None,
        }


def _fill(store: Any, deals: int, today: date) -> dict[str, Any]:
    """Teams, reps, a 5 × 10 territory tree, currencies, accounts and `deals` deals, in bulk."""
    from crm_backend.demo import seed_demo
    from crm_backend.models import Account, Currency, Deal, Team, Territory, User

    seed_demo(store)
    rng = random.Random(20261125)  # noqa: S311 - reproducible bench data, not secrets
    now = datetime.now(UTC)
    stamp = {"created_at": now, "updated_at": now}
    with store.engine.begin() as conn:
        conn.execute(
            insert(Currency),
            [
                {"code": c, "name": c, "symbol": c, "rate_to_base": Decimal(r), "is_base": c == "USD",
                 "is_active": True, "rate_updated_at": now, "version": 1, **stamp}
                for c, r, _ in CURRENCIES
            ],
        )  # fmt: skip
        conn.execute(insert(Team), [{"name": f"Bench team {t}", **stamp} for t in range(TEAMS)])
        teams = list(conn.scalars(select(Team.id).where(Team.name.like("Bench team %"))))
        conn.execute(
            insert(User),
            [
                {"username": f"bench{u}", "full_name": f"Bench Rep {u}", "email": f"bench{u}@bench.example.com",
                 "role": "rep", "team_id": teams[u % TEAMS], "timezone": "UTC", "is_active": True, **stamp}
                for u in range(REPS)
            ],
        )  # fmt: skip
        owners = list(conn.scalars(select(User.id)))
        territory = {"type": "Geographic", "version": 1, **stamp}
        conn.execute(insert(Territory), [{"name": r, "parent_id": None, **territory} for r in REGIONS])
        regions = {name: tid for name, tid in conn.execute(select(Territory.name, Territory.id))}
        conn.execute(
            insert(Territory),
            [{"name": f"{r} {k}", "parent_id": regions[r], **territory} for r in REGIONS for k in range(SUBREGIONS)],
        )
        leaves = list(conn.scalars(select(Territory.id).where(Territory.parent_id.is_not(None))))
        conn.execute(
            insert(Account),
            [
                {"name": f"Bench account {a}", "owner_id": rng.choice(owners), "shared_with_team": False,
                 "custom_fields": {}, "version": 1, **stamp}
                for a in range(ACCOUNTS)
            ],
        )  # fmt: skip
        accounts = list(conn.scalars(select(Account.id)))
        rows = _deal_rows(rng, deals, owners, leaves, accounts, today)
        done = 0
        while chunk := [row for _, row in zip(range(BATCH), rows, strict=False)]:
            conn.execute(insert(Deal), chunk)
            done += len(chunk)
            if done % 100_000 == 0:
                _log(f"{done:,} deals")
    return {"territories": len(REGIONS) * (SUBREGIONS + 1), "reps": len(owners), "accounts": len(accounts)}


def _timed(rounds: int, work: Callable[[], Any]) -> dict[str, float]:
    work()  # warm-up: imports, caches
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    samples.sort()
    return {"median_s": round(samples[len(samples) // 2], 3), "min_s": round(samples[0], 3),
            "max_s": round(samples[-1], 3)}  # fmt: skip


def cmd_bench_forecast(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from assistant.bench_crm import Target, prepared

    workdir = tempfile.TemporaryDirectory(prefix="bench-forecast-")
    url = args.database_url or f"sqlite:///{workdir.name}/forecast.sqlite3"
    target = Target(make_url(url).get_backend_name(), url, {})
    today = date.today()  # noqa: DTZ011 - periods are calendar days
    with prepared(target) as store:  # PostgreSQL: a throw-away schema, dropped afterwards
        try:
            return _measure(store, args, today)
        finally:
            workdir.cleanup()


def _measure(store: Any, args: argparse.Namespace, today: date) -> int:
    """Migrate, fill and time the forecasts; prints (and writes) the figures as JSON."""
    import platform

    import psutil
    from sqlalchemy import text

    from crm_backend.forecasting import service
    from crm_backend.migrate import upgrade

    upgrade(store.engine)
    start = time.perf_counter()
    sizes = _fill(store, args.deals, today)
    fill_s = time.perf_counter() - start
    _log(f"filled in {fill_s:.0f} s")
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE deals"))
    period = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    results: dict[str, Any] = {}
    for label, method, by in (
        ("weighted_by_territory", "weighted", "territory"),
        ("weighted_total", "weighted", None),
        ("historical_by_territory", "historical", "territory"),
        ("ai_by_territory", "ai", "territory"),
    ):
        rounds = args.rounds if method == "weighted" else max(1, args.rounds // 2)

        def work(method: str = method, by: str | None = by) -> dict[str, Any]:
            with store.unit_of_work(channel="cli", read_only=True) as uow:
                return service.forecast(uow, period, method=method, by=by, today=today)

        results[label] = _timed(rounds, work)
        _log(f"{label}: {results[label]}")
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": store.engine.dialect.name,
        "deals": args.deals,
        **sizes,
        "period": period,
        "fill_s": round(fill_s, 1),
        "machine": {
            "cpus": psutil.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "timings": results,
    }
    _out(json.dumps(report, indent=2))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0
