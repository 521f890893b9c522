"""`crm-assistant bench crm`: the CRM backend over large generated data, SQLite and PostgreSQL side by side.

For each database (default: a throw-away SQLite file, and a throw-away schema on the local
PostgreSQL server when it answers) it migrates, seeds the large demo data
(`crm_backend.demo_large.seed_large`: 100,000 leads, 20,000 accounts, 200,000 activities) and
measures, as the rep alice and the manager maria, each operation in a fresh unit of work (one
transaction, as the REST API does it):

- `list_filter`: leads with status New, newest first, 50 per page, with the total count;
- `search`: leads matching a company-name fragment (`q=`), 50 per page, with the total count;
- `account_summary`: the 360° view of a random account the user can see;
- `create_lead`: a new lead through `records.create_record` (validation, duplicate check, audit);

and then the import rate of a generated 5,000-row leads CSV (`transfer.read_csv` +
`transfer.import_rows`, all-or-nothing) as alice. Figures go to stdout as JSON (and to --output);
progress goes to stderr. Record them in bench/RESULTS.md.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from assistant.bench import machine, percentiles
from crm_backend.demo_large import company_fragments, seed_large
from crm_backend.errors import Duplicate
from crm_backend.migrate import upgrade
from crm_backend.models import Account, Lead, LeadSource
from crm_backend.services import accounts as account_service
from crm_backend.services import auth, records, users
from crm_backend.services.records import ListQuery
from crm_backend.store import Actor, Store

LOCAL_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SIZES = {"leads": 100_000, "accounts": 20_000, "activities": 200_000}
USERS = ("alice", "maria")  # a rep (own + team-shared records) and a manager (the whole team's)
OPERATIONS = ("list_filter", "search", "account_summary", "create_lead")
IMPORT_ROWS = 5_000
WARM_UP = 5
FIRST_NAMES = ("Alex", "Billie", "Casey", "Devon", "Emery", "Finley", "Gray", "Harper", "Jordan", "Kai")
LAST_NAMES = ("Avery", "Brooks", "Carter", "Dalton", "Ellis", "Foster", "Greer", "Hayes", "Irwin", "Jensen")


def log(message: str) -> None:
    sys.stderr.write(f"[bench crm] {message}\n")
    sys.stderr.flush()


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# --- databases -------------------------------------------------------------------------------------
@dataclass
class Target:
    """One database to measure: where it is and how to open a store on it."""

    label: str
    url: str
    connect_args: dict[str, Any]
    schema: str | None = None

    @property
    def kind(self) -> str:
        return make_url(self.url).get_backend_name()


def postgres_unreachable(url: str) -> str | None:
    """Why the PostgreSQL server at `url` cannot be used, or None when it answers."""
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except (SQLAlchemyError, ImportError) as exc:
        return f"PostgreSQL not reachable at {redacted(url)} ({type(exc).__name__})"
    return None


@contextmanager
def prepared(target: Target) -> Iterator[Store]:
    """A store on `target`; a PostgreSQL target gets a schema of its own, dropped afterwards."""
    if target.kind != "postgresql":
        store = Store.from_url(target.url, connect_args=target.connect_args)
        try:
            yield store
        finally:
            store.dispose()
        return
    target.schema = f"bench_{uuid.uuid4().hex[:10]}"
    target.connect_args = {"options": f"-csearch_path={target.schema}"}
    admin = create_engine(target.url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{target.schema}"'))
        store = Store.from_url(target.url, connect_args=target.connect_args)
        try:
            yield store
        finally:
            store.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{target.schema}" CASCADE'))
    finally:
        admin.dispose()


def server_version(store: Store) -> str:
    if store.engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with store.engine.connect() as conn:
        return f"PostgreSQL {conn.scalar(text('SHOW server_version'))}"


def size_mb(store: Store, target: Target) -> float:
    if store.engine.dialect.name == "sqlite":
        database = make_url(target.url).database or ""
        files = [Path(database), Path(database + "-wal")]
        return round(sum(f.stat().st_size for f in files if f.exists()) / 2**20, 1)
    with store.engine.connect() as conn:
        size = conn.scalar(
            text(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relkind = 'r'"
            ),
            {"schema": target.schema},
        )
    return round(int(size or 0) / 2**20, 1)


# --- measuring -------------------------------------------------------------------------------------
def sample(count: int, operation: Callable[[], object]) -> list[float]:
    """Seconds per call of `operation`, after a few unmeasured warm-up calls."""
    for _ in range(WARM_UP):
        operation()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        operation()
        samples.append(time.perf_counter() - start)
    return samples


class Operations:
    """The measured operations for one user on one store; each opens its own unit of work."""

    def __init__(self, store: Store, actor: Actor, rng: random.Random, companies: list[str]) -> None:
        self.store, self.actor, self.rng, self.companies = store, actor, rng, companies
        self.leads = records.resource("leads")
        self.created = 0
        self.duplicates = 0
        with store.unit_of_work(actor=actor) as uow:
            self.account_ids = list(
                uow.session.scalars(records.scoped(records.resource("accounts"), actor).with_only_columns(Account.id))
            )

    def list_filter(self) -> int:
        with self.store.unit_of_work(actor=self.actor) as uow:
            query = ListQuery(filters={"status": "New"}, sort="-created_at", limit=50)
            return records.list_records(uow, self.leads, query).total

    def search(self) -> int:
        fragment = self.rng.choice(company_fragments()).lower()
        with self.store.unit_of_work(actor=self.actor) as uow:
            return records.list_records(uow, self.leads, ListQuery(q=fragment, limit=50)).total

    def account_summary(self) -> int:
        account_id = self.rng.choice(self.account_ids)
        with self.store.unit_of_work(actor=self.actor) as uow:
            return len(account_service.summary(uow, account_id)["recent_activities"])

    def create_lead(self) -> None:
        self.created += 1
        tag = f"{self.rng.getrandbits(40):010x}"
        data = {
            "first_name": self.rng.choice(FIRST_NAMES),
            "last_name": f"{self.rng.choice(LAST_NAMES)} {tag}",
            "email": f"bench.{self.actor.username}.{tag}@bench.example.net",
            "phone": f"+1 556 {self.rng.randrange(10_000_000):07d}",
            "company": self.rng.choice(self.companies),
            "source": LeadSource.WEBSITE.value,
            "score": self.rng.randrange(101),
        }
        try:
            with self.store.unit_of_work(actor=self.actor) as uow:
                records.create_record(uow, self.leads, data)
        except Duplicate:
            self.duplicates += 1


def visible_leads(store: Store, actor: Actor) -> int:
    with store.unit_of_work(actor=actor) as uow:
        return records.list_records(uow, records.resource("leads"), ListQuery(limit=1)).total


def write_import_csv(path: Path, rng: random.Random, companies: list[str]) -> None:
    """`IMPORT_ROWS` new leads, unique by email, phone and name so the all-or-nothing import commits."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["First Name", "Last Name", "Email", "Phone", "Company", "Title", "Source", "Score", "Country"])
        for i in range(IMPORT_ROWS):
            tag = f"{rng.getrandbits(40):010x}"
            writer.writerow(
                [
                    rng.choice(FIRST_NAMES),
                    f"{rng.choice(LAST_NAMES)} {tag}",
                    f"import.{i}.{tag}@import.example.net",
                    f"+1 557 {i:07d}",
                    rng.choice(companies),
                    "Operations Manager",
                    rng.choice([s.value for s in LeadSource]),
                    str(rng.randrange(101)),
                    rng.choice(("US", "GB", "DE", "FR")),
                ]
            )


def measure_import(store: Store, actor: Actor, path: Path) -> dict[str, Any]:
    from crm_backend import transfer

    start = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as fh:
        report = transfer.import_rows(store, actor, "leads", transfer.read_csv(fh, "leads"), partial=False)
    elapsed = time.perf_counter() - start
    if not report.committed or report.created != IMPORT_ROWS:
        problems = [*report.rejected, *report.duplicates][:3]
        raise RuntimeError(f"the benchmark import did not commit all rows: {report.created} created, {problems}")
    return {"rows": report.created, "seconds": round(elapsed, 2), "rows_per_s": round(report.created / elapsed)}


def bench_database(target: Target, queries: int, sizes: dict[str, int], workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"url": redacted(target.url)}
    with prepared(target) as store:
        result["server"] = server_version(store)
        log(f"{target.label}: {result['server']}, migrating...")
        start = time.perf_counter()
        upgrade(store.engine)
        result["migrate_s"] = round(time.perf_counter() - start, 2)
        log(f"{target.label}: seeding {sizes['leads']:,} leads, {sizes['accounts']:,} accounts, ...")
        start = time.perf_counter()
        result["rows"] = seed_large(
            store, leads=sizes["leads"], accounts=sizes["accounts"], activities=sizes["activities"]
        )
        result["seed_s"] = round(time.perf_counter() - start, 1)
        result["size_mb"] = size_mb(store, target)
        log(f"{target.label}: seeded in {result['seed_s']} s ({result['size_mb']} MiB)")
        with store.unit_of_work() as uow:
            actors = {name: auth.load_actor(uow, users.get_user_by_username(uow, name).id) for name in USERS}
            names = uow.session.scalars(select(Lead.company).where(Lead.company.is_not(None)).distinct().limit(2_000))
            companies = sorted(name for name in names if name)
        rng = random.Random(11)  # noqa: S311 - reproducible benchmark inputs, not secrets
        per_user: dict[str, Any] = {}
        for name, actor in actors.items():
            ops = Operations(store, actor, rng, companies)
            figures: dict[str, Any] = {
                "role": actor.role.value,
                "visible_leads": visible_leads(store, actor),
                "visible_accounts": len(ops.account_ids),
                "new_leads_listed_total": ops.list_filter(),
            }
            for op in OPERATIONS:
                log(f"{target.label}: {name} {op} x {queries}")
                figures[op] = percentiles(sample(queries, getattr(ops, op)))
            figures["create_lead"]["duplicates"] = ops.duplicates
            per_user[name] = figures
        result["users"] = per_user
        csv_path = workdir / f"import-{target.label}.csv"
        write_import_csv(csv_path, rng, companies)
        log(f"{target.label}: importing {IMPORT_ROWS:,} leads as alice...")
        result["import"] = measure_import(store, actors["alice"], csv_path)
        csv_path.unlink()
    return result


def targets(database_url: str | Sequence[str] | None, workdir: Path) -> tuple[list[Target], dict[str, Any]]:
    """The databases to measure, and those skipped with the reason."""
    skipped: dict[str, Any] = {}
    if database_url:
        urls = [database_url] if isinstance(database_url, str) else list(database_url)
        found: list[Target] = []
        for i, url in enumerate(urls):
            label = make_url(url).get_backend_name()
            if any(t.label == label for t in found):
                label = f"{label}-{i + 1}"
            found.append(Target(label, url, {}))
        return found, skipped
    found = [Target("sqlite", f"sqlite:///{workdir / 'crm-bench.sqlite3'}", {})]
    reason = postgres_unreachable(LOCAL_POSTGRES_URL)
    if reason:
        skipped["postgresql"] = {"skipped": reason}
    else:
        found.append(Target("postgresql", LOCAL_POSTGRES_URL, {}))
    return found, skipped


def command_line(database_url: str | Sequence[str] | None, queries: int, sizes: dict[str, int]) -> str:
    parts = ["crm-assistant bench crm", f"--queries {queries}"]
    urls = [database_url] if isinstance(database_url, str) else list(database_url or [])
    parts += [f"--database-url {redacted(url)}" for url in urls]
    parts += [f"--{name} {value}" for name, value in sizes.items() if value != SIZES[name]]
    return " ".join(parts)


def run_crm_bench(
    database_url: str | Sequence[str] | None,
    queries: int,
    output: Path | None,
    *,
    leads: int = SIZES["leads"],
    accounts: int = SIZES["accounts"],
    activities: int = SIZES["activities"],
) -> int:
    """Measure every database (see the module docstring); print the JSON figures; 0 if all worked.

    A given SQLite URL must name a new or empty database (the seed refuses one with users); a
    given PostgreSQL URL gets a throw-away schema, so its existing data is never touched.
    """
    if queries < 2:
        raise ValueError("--queries must be at least 2")
    sizes = {"leads": leads, "accounts": accounts, "activities": activities}
    code = 0
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        workdir = Path(tmp)
        found, results = targets(database_url, workdir)
        for label, info in results.items():
            log(f"{label}: {info['skipped']}")
        for target in found:
            try:
                results[target.label] = bench_database(target, queries, sizes, workdir)
            except Exception as exc:  # report the failure and go on with the next database
                log(f"{target.label}: FAILED: {type(exc).__name__}: {exc}")
                results[target.label] = {"url": redacted(target.url), "error": f"{type(exc).__name__}: {exc}"}
                code = 1
    figures: dict[str, Any] = {
        "sizes": sizes,
        "queries_per_operation_and_user": queries,
        "databases": results,
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command_line(database_url, queries, sizes),
    }
    document = json.dumps(figures, indent=2, ensure_ascii=False)
    sys.stdout.write(document + "\n")
    if output:
        with suppress(OSError):
            output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document + "\n")
    return code
