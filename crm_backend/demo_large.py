"""Large generated demo data for benchmarks: ~100k leads, 20k accounts, 200k activities.

`seed_large(store)` runs the normal demo seed (users alice, bob, maria, carlos, admin; teams East
and West) and then bulk-inserts generated records owned by the four sales users, some of them
shared with the owner's team. Rows go in with SQLAlchemy Core `INSERT`s of a few thousand rows at
a time, all in one transaction (so a failure leaves only the small demo seed behind). They skip
the per-row services (validation, permission checks, audit trail) on purpose: they are fixtures,
not user input, but every derived column the services maintain (the leads' duplicate keys,
timestamps, versions) is filled the same way. Generation is reproducible: the same `seed` and
`now` give the same rows. Works on SQLite and PostgreSQL.

Use `add_large_data(store)` instead when the demo seed already ran (e.g. to keep its API tokens).
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, text

from crm_backend.demo import seed_demo
from crm_backend.models.accounts import Account, AccountType
from crm_backend.models.activities import Activity, ActivityStatus, ActivityType, Priority
from crm_backend.models.contacts import Contact, ContactMethod, ContactRole, ContactType
from crm_backend.models.deals import STAGE_PROBABILITY, Deal, DealStage, DealType
from crm_backend.models.leads import Lead, LeadSource, LeadStatus
from crm_backend.models.users import User
from crm_backend.services.matching import dedup_key, normal_company, normal_email, normal_phone
from crm_backend.store import Store

BATCH = 5_000
OWNERS: tuple[tuple[str, int], ...] = (("alice", 30), ("bob", 25), ("carlos", 25), ("maria", 20))
SHARED_SHARE = 0.15  # of records shared with the owner's team
HISTORY_DAYS = 730  # records were created over the last two years

FIRST_NAMES = (
    "Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Isabel", "Jonas", "Kemi", "Liam",
    "Mei", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wes", "Xin", "Yara",
    "Zoe", "Aaron", "Bianca", "Carlos", "Dana", "Emil", "Fatima", "Gustav", "Hannah", "Ivan", "Julia",
    "Kofi", "Lena", "Marco", "Nadia", "Oscar", "Priya", "Rafael", "Sofia", "Tomas", "Ursula", "Viktor",
    "Wendy", "Yusuf", "Zara", "Amir", "Beatriz", "Chen", "Dmitri", "Ines", "Jakob", "Leila", "Mateo",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Garcia", "Müller", "Nguyen", "Okafor", "Rossi", "Kowalski", "Tanaka", "Silva", "Johansson",
    "Dubois", "Patel", "Kim", "Novak", "Hernandez", "Ivanova", "O'Brien", "Fischer", "Costa", "Andersen",
    "Yilmaz", "Mensah", "Schmidt", "Lopez", "Chen", "Wagner", "Moreau", "Haddad", "Nowak", "Ferreira",
    "Jansen", "Larsen", "Bianchi", "Suzuki", "Walker", "Martin", "Becker", "Rivera", "Sato", "Horvat",
    "Popescu", "Khan", "Adeyemi", "Castillo", "Lindqvist", "Morales", "Weber", "Ward", "Park", "Costa-Reis",
)  # fmt: skip
COMPANY_FIRST = (
    "Blue", "Silver", "North", "Summit", "Bright", "Iron", "Green", "Red", "Golden", "Clear", "Swift",
    "Prime", "True", "Bold", "Quantum", "Urban", "Coastal", "Alpine", "Polar", "Solar", "Lunar", "Cedar",
    "Maple", "Oak", "Granite", "Copper", "Crystal", "Stellar", "Vertex", "Nova", "Atlas", "Orion", "Delta",
    "Echo", "Harbor", "Pioneer", "Falcon", "Lotus", "Aspen", "Horizon", "Meridian", "Cobalt", "Ember",
    "Willow", "Sierra", "Titan", "Zenith", "Crimson", "Emerald", "Onyx",
)  # fmt: skip
COMPANY_SECOND = (
    "Peak", "River", "Forge", "Bridge", "Field", "Stone", "Wave", "Path", "Point", "Gate", "Works", "Line",
    "Mark", "Core", "Spring", "Ridge", "Bay", "Star", "Light", "Grove", "Port", "Crest", "Vale", "Harvest",
    "Signal", "Anchor", "Beacon", "Circle", "Leaf", "Pine", "Rock", "Shore", "Sky", "Tree", "Wind", "Wolf",
    "Hawk", "Fox", "Lake", "Mill", "Dale", "Brook", "Cliff", "Frost", "Glen", "Moor", "Reef", "Trail",
    "Wood", "Yard",
)  # fmt: skip
# (what the company does, its industry)
COMPANY_KINDS = (
    ("Logistics", "Logistics"), ("Labs", "Software"), ("Systems", "Software"), ("Health", "Healthcare"),
    ("Energy", "Energy"), ("Foods", "Food & Beverage"), ("Capital", "Financial Services"),
    ("Manufacturing", "Manufacturing"), ("Retail", "Retail"), ("Analytics", "Software"),
    ("Pharma", "Healthcare"), ("Motors", "Automotive"), ("Media", "Media"), ("Telecom", "Telecommunications"),
    ("Construction", "Construction"), ("Consulting", "Professional Services"), ("Insurance", "Insurance"),
    ("Robotics", "Manufacturing"), ("Travel", "Hospitality"), ("Education", "Education"),
    ("Agritech", "Agriculture"), ("Biotech", "Healthcare"), ("Security", "Software"), ("Textiles", "Retail"),
)  # fmt: skip
LEGAL_SUFFIXES = ("Inc", "Ltd", "LLC", "GmbH", "Corp", "plc", "AG", "SA", "")
COUNTRIES = (
    ("US", "New York", "NY"), ("US", "Austin", "TX"), ("US", "Chicago", "IL"), ("US", "Seattle", "WA"),
    ("GB", "London", None), ("GB", "Manchester", None), ("DE", "Berlin", None), ("DE", "Munich", "BY"),
    ("FR", "Paris", None), ("NL", "Amsterdam", None), ("ES", "Madrid", None), ("CA", "Toronto", "ON"),
    ("BR", "São Paulo", "SP"), ("IN", "Bangalore", "KA"), ("JP", "Tokyo", None), ("AU", "Sydney", "NSW"),
)  # fmt: skip
TITLES = (
    "CEO", "CTO", "CFO", "COO", "VP Sales", "VP Engineering", "Head of Operations", "IT Manager",
    "Procurement Manager", "Marketing Director", "Product Manager", "Operations Analyst", "Founder",
    "Head of Finance", "Engineering Manager", "Office Manager",
)  # fmt: skip
DEPARTMENTS = ("Executive", "Finance", "IT", "Operations", "Procurement", "Marketing", "Engineering", "Sales")
PRODUCTS = (
    "Platform licence", "Analytics add-on", "Fleet telematics", "Support renewal", "Data warehouse",
    "Pilot", "Onboarding services", "Security audit", "Integration project", "Expansion seats",
)  # fmt: skip
COMPETITORS = ("Salesforce", "HubSpot", "Zoho", "Pipedrive", "Dynamics")
LOST_REASONS = ("Chose a cheaper competitor", "No budget this year", "Project cancelled", "No response")
ACTIVITY_SUBJECTS = {
    ActivityType.CALL: ("Discovery call", "Follow-up call", "Pricing call", "Check-in call"),
    ActivityType.EMAIL: ("Sent proposal", "Sent case study", "Follow-up email", "Sent contract draft"),
    ActivityType.MEETING: ("Product demo", "Kick-off meeting", "Quarterly review", "On-site workshop"),
    ActivityType.TASK: ("Prepare quote", "Update forecast", "Send NDA", "Book technical review"),
    ActivityType.NOTE: ("Budget confirmed", "New stakeholder", "Competitor in play", "Timeline moved"),
}

LEAD_STATUSES = (
    (LeadStatus.NEW, 35),
    (LeadStatus.CONTACTED, 25),
    (LeadStatus.QUALIFIED, 15),
    (LeadStatus.CONVERTED, 10),
    (LeadStatus.LOST, 15),
)
DEAL_STAGES = (
    (DealStage.PROSPECTING, 20),
    (DealStage.QUALIFICATION, 20),
    (DealStage.PROPOSAL, 15),
    (DealStage.NEGOTIATION, 10),
    (DealStage.CLOSED_WON, 20),
    (DealStage.CLOSED_LOST, 15),
)


def company_fragments() -> tuple[str, ...]:
    """Words that occur inside generated company names (for text-search benchmarks)."""
    return COMPANY_SECOND


def _weighted(rng: random.Random, choices: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _slug(name: str) -> str:
    return (normal_company(name) or "company").replace(" ", "")


class _Generator:
    """Generates the rows of each table, batch by batch, from one random stream."""

    def __init__(self, rng: random.Random, now: datetime, owners: dict[str, int]) -> None:
        self.rng = rng
        self.now = now
        self.owner_ids = [owners[name] for name, _ in OWNERS]
        self.owner_weights = [weight for _, weight in OWNERS]
        combos = list(itertools.product(COMPANY_FIRST, COMPANY_SECOND, COMPANY_KINDS))
        rng.shuffle(combos)
        self.combos = combos

    # --- shared pieces --------------------------------------------------------------------------
    def owner(self) -> int:
        return self.rng.choices(self.owner_ids, weights=self.owner_weights)[0]

    def shared(self) -> bool:
        return self.rng.random() < SHARED_SHARE

    def created(self) -> tuple[datetime, datetime]:
        created = self.now - timedelta(seconds=self.rng.randrange(HISTORY_DAYS * 86_400))
        updated = min(self.now, created + timedelta(seconds=self.rng.randrange(30 * 86_400)))
        return created, updated

    def company(self, index: int, group: bool = False) -> tuple[str, str]:
        """The `index`-th company name (unique up to the number of combinations) and its industry;
        a `group` is a holding ("Blue Peak Holdings")."""
        first, second, (kind, industry) = self.combos[index % len(self.combos)]
        legal = LEGAL_SUFFIXES[index % len(LEGAL_SUFFIXES)]
        name = f"{first} {second} {'Holdings' if group else kind}"
        if index >= len(self.combos):
            name += f" {index // len(self.combos) + 1}"
        return (f"{name} {legal}" if legal else name), industry

    def person(self) -> tuple[str, str]:
        return self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)

    @staticmethod
    def email(first: str, last: str, unique: int | None, domain: str) -> str:
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isascii() and (ch.isalnum() or ch == "."))
        return f"{local}{'.' + str(unique) if unique is not None else ''}@{domain}"

    # --- tables ----------------------------------------------------------------------------------
    def accounts(self, start: int, count: int, parents: dict[int, list[int]] | None) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for i in range(start, start + count):
            name, industry = self.company(i, group=parents is None)
            owner = self.owner()
            candidates = parents.get(owner) if parents else None
            created, updated = self.created()
            country, city, state = rng.choice(COUNTRIES)
            employees = rng.choice((12, 45, 120, 350, 900, 2_500, 8_000, 25_000))
            yield {
                "name": name,
                "type": _weighted(
                    rng,
                    (
                        (AccountType.PROSPECT, 50),
                        (AccountType.CUSTOMER, 40),
                        (AccountType.PARTNER, 8),
                        (AccountType.COMPETITOR, 2),
                    ),
                ).value,
                "industry": industry,
                "annual_revenue": Decimal(employees * rng.randrange(80_000, 250_000)),
                "employees": employees,
                "website": f"https://www.{_slug(name)}.example.com",
                "phone": f"+1 555 {rng.randrange(1_000_000, 9_999_999)}",
                "country": country,
                "state": state,
                "city": city,
                "postal_code": f"{rng.randrange(10_000, 99_999)}",
                "parent_id": rng.choice(candidates) if candidates and rng.random() < 0.12 else None,
                "health_score": rng.randrange(20, 101) if rng.random() < 0.8 else None,
                "description": None,
                "custom_fields": {},
                "owner_id": owner,
                "territory_id": None,
                "shared_with_team": self.shared(),
                "created_at": created,
                "updated_at": updated,
                "version": 1,
                "deleted_at": None,
            }

    def contacts(self, accounts: list[tuple[int, int, bool, str]]) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for account_id, owner, shared, domain in accounts:
            first, last = self.person()
            created, updated = self.created()
            yield {
                "first_name": first,
                "last_name": last,
                "email": self.email(first, last, None, domain),
                "phone": f"+1 555 {rng.randrange(1_000_000, 9_999_999)}",
                "mobile": None,
                "account_id": account_id,
                "type": ContactType.PRIMARY.value,
                "role": rng.choice(list(ContactRole)).value,
                "job_title": rng.choice(TITLES),
                "department": rng.choice(DEPARTMENTS),
                "reports_to_id": None,
                "preferred_method": rng.choice((ContactMethod.EMAIL, ContactMethod.PHONE, ContactMethod.VIDEO)).value,
                "contact_frequency": None,
                "language": "en",
                "email_opt_out": rng.random() < 0.05,
                "call_opt_out": False,
                "sms_opt_out": False,
                "custom_fields": {},
                "owner_id": owner,
                "territory_id": None,
                "shared_with_team": shared,
                "created_at": created,
                "updated_at": updated,
                "version": 1,
                "deleted_at": None,
            }

    def deals(self, accounts: list[tuple[int, int, bool, str, int | None]]) -> Iterator[dict[str, Any]]:
        rng = self.rng
        today = self.now.date()
        for account_id, owner, shared, name, contact_id in accounts:
            for _ in range(rng.choices((0, 1, 2, 3, 4), weights=(1, 3, 4, 3, 1))[0]):
                stage: DealStage = _weighted(rng, DEAL_STAGES)
                created, updated = self.created()
                closed = stage in (DealStage.CLOSED_WON, DealStage.CLOSED_LOST)
                closed_at: datetime | None = None
                close_date: date | None = None
                if closed:
                    closed_at = min(self.now, created + timedelta(days=rng.randrange(10, 180)))
                    close_date = closed_at.date()
                elif rng.random() < 0.85:
                    close_date = today + timedelta(days=rng.randrange(-15, 180))
                yield {
                    "name": f"{name.split(' ')[0]} {name.split(' ')[1]} - {rng.choice(PRODUCTS)}",
                    "account_id": account_id,
                    "contact_id": contact_id if rng.random() < 0.7 else None,
                    "lead_id": None,
                    "stage": stage.value,
                    "type": rng.choice(list(DealType)).value,
                    "amount": Decimal(rng.randrange(20, 5_000) * 100),
                    "currency": rng.choices(("USD", "EUR", "GBP"), weights=(75, 15, 10))[0],
                    "probability": STAGE_PROBABILITY[stage],
                    "expected_close_date": close_date,
                    "closed_at": closed_at,
                    "competitors": rng.sample(COMPETITORS, rng.randrange(0, 3)),
                    "lost_reason": rng.choice(LOST_REASONS) if stage is DealStage.CLOSED_LOST else None,
                    "description": None,
                    "custom_fields": {},
                    "owner_id": owner,
                    "territory_id": None,
                    "shared_with_team": shared,
                    "created_at": created,
                    "updated_at": updated,
                    "version": 1,
                    "deleted_at": None,
                }

    def leads(self, start: int, count: int, companies: int) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for i in range(start, start + count):
            first, last = self.person()
            company, industry = self.company(rng.randrange(companies)) if rng.random() < 0.95 else (None, None)
            domain = f"{_slug(company)}.example.com" if company else rng.choice(("example.org", "example.net"))
            email = self.email(first, last, i, domain) if rng.random() < 0.97 else None
            phone = f"+1 555 {i // 10_000:03d} {i % 10_000:04d}" if rng.random() < 0.7 else None
            status: LeadStatus = _weighted(rng, LEAD_STATUSES)
            created, updated = self.created()
            qualified = status in (LeadStatus.QUALIFIED, LeadStatus.CONVERTED)
            yield {
                "first_name": first,
                "last_name": last,
                "email": email,
                "phone": phone,
                "company": company,
                "title": rng.choice(TITLES),
                "industry": industry,
                "employees": rng.choice((None, 10, 50, 200, 1_000, 5_000)),
                "country": rng.choice(COUNTRIES)[0],
                "source": rng.choice(list(LeadSource)).value,
                "status": status.value,
                "score": rng.randrange(0, 101),
                "budget": Decimal(rng.randrange(5, 500) * 1_000) if qualified else None,
                "has_authority": True if qualified else None,
                "need": "Replace spreadsheets with a shared pipeline" if qualified else None,
                "timeline": rng.choice(("This quarter", "Next quarter", "This year")) if qualified else None,
                "campaign_id": None,
                "dedup_key": dedup_key(email, phone, company),
                "email_key": normal_email(email),
                "phone_key": normal_phone(phone),
                "company_key": normal_company(company),
                "lost_reason": rng.choice(LOST_REASONS) if status is LeadStatus.LOST else None,
                "description": None,
                "converted_at": updated if status is LeadStatus.CONVERTED else None,
                "converted_account_id": None,
                "converted_contact_id": None,
                "custom_fields": {},
                "owner_id": self.owner(),
                "territory_id": None,
                "shared_with_team": self.shared(),
                "created_at": created,
                "updated_at": updated,
                "version": 1,
                "deleted_at": None,
            }

    def activities(
        self,
        count: int,
        deals: list[tuple[int, int, int, bool]],
        accounts: list[tuple[int, int, bool]],
        contact_of: dict[int, int],
    ) -> Iterator[dict[str, Any]]:
        rng = self.rng
        types = list(ActivityType)
        for _ in range(count):
            deal_id: int | None
            if deals and rng.random() < 0.8:
                deal_id, account_id, owner, shared = rng.choice(deals)
            else:
                account_id, owner, shared = rng.choice(accounts)
                deal_id = None
            kind = rng.choices(types, weights=(30, 25, 15, 20, 10))[0]
            created, updated = self.created()
            start_at = end_at = due_at = completed_at = None
            duration: int | None = None
            if kind in (ActivityType.CALL, ActivityType.MEETING):
                start_at = created + timedelta(days=rng.randrange(0, 14), hours=rng.randrange(8, 17))
                duration = rng.choice((15, 30, 45, 60, 90))
                end_at = start_at + timedelta(minutes=duration)
            elif kind is ActivityType.TASK:
                due_at = created + timedelta(days=rng.randrange(1, 30))
            moment = end_at or due_at or created
            if moment < self.now and rng.random() < 0.85:
                status = ActivityStatus.COMPLETED
                completed_at = min(self.now, moment)
            elif moment < self.now:
                status = rng.choice((ActivityStatus.CANCELLED, ActivityStatus.NOT_STARTED))
            else:
                status = rng.choice((ActivityStatus.NOT_STARTED, ActivityStatus.IN_PROGRESS))
            yield {
                "type": kind.value,
                "subject": rng.choice(ACTIVITY_SUBJECTS[kind]),
                "description": None,
                "status": status.value,
                "priority": rng.choices(list(Priority), weights=(20, 55, 20, 5))[0].value,
                "start_at": start_at,
                "end_at": end_at,
                "due_at": due_at,
                "duration_minutes": duration,
                "completion_percent": 100 if status is ActivityStatus.COMPLETED else 0,
                "completed_at": completed_at,
                "recurring_activity_id": None,
                "custom_fields": {},
                "lead_id": None,
                "account_id": account_id,
                "contact_id": contact_of.get(account_id) if rng.random() < 0.5 else None,
                "deal_id": deal_id,
                "owner_id": owner,
                "territory_id": None,
                "shared_with_team": shared,
                "created_at": created,
                "updated_at": max(created, updated),
                "version": 1,
                "deleted_at": None,
            }


def _insert(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    done = 0
    for chunk in _batches(rows, BATCH):
        conn.execute(insert(table), chunk)
        done += len(chunk)
    return done


def _max_id(conn: Connection, table: Table) -> int:
    return int(conn.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0)


def add_large_data(
    store: Store,
    *,
    leads: int = 100_000,
    accounts: int = 20_000,
    activities: int = 200_000,
    seed: int = 7,
    now: datetime | None = None,
    analyze: bool = True,
) -> dict[str, int]:
    """Bulk-add generated accounts (with hierarchy), contacts, deals, leads and activities owned by
    the demo's sales users (run `seed_demo` first); return how many rows of each were added.

    About one contact per account, two deals per account and `activities` activities linked to the
    deals or accounts. `analyze` refreshes the planner statistics afterwards (ANALYZE), as one
    should after a bulk load.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    now = (now or datetime.now(UTC)).astimezone(UTC)
    acc_t, con_t, deal_t, lead_t, act_t = (cast(Table, m.__table__) for m in (Account, Contact, Deal, Lead, Activity))
    counts: dict[str, int] = {}
    with store.engine.begin() as conn:
        owners = {
            username: user_id
            for user_id, username in conn.execute(
                select(User.id, User.username).where(User.username.in_([n for n, _ in OWNERS]))
            )
        }
        missing = sorted({n for n, _ in OWNERS} - owners.keys())
        if missing:
            raise RuntimeError(f"the demo users {', '.join(missing)} are missing; run seed_demo first")
        gen = _Generator(rng, now, owners)

        # Accounts: a few group parents first, then the rest (some pointing at a parent of the same owner).
        before = _max_id(conn, acc_t)
        n_parents = min(accounts, max(1, accounts // 20))
        _insert(conn, acc_t, gen.accounts(0, n_parents, None))
        parents: dict[int, list[int]] = defaultdict(list)
        for account_id, owner in conn.execute(select(acc_t.c.id, acc_t.c.owner_id).where(acc_t.c.id > before)):
            parents[owner].append(account_id)
        _insert(conn, acc_t, gen.accounts(n_parents, accounts - n_parents, parents))
        account_rows = [
            (row.id, row.owner_id, bool(row.shared_with_team), row.name)
            for row in conn.execute(
                select(acc_t.c.id, acc_t.c.owner_id, acc_t.c.shared_with_team, acc_t.c.name)
                .where(acc_t.c.id > before)
                .order_by(acc_t.c.id)
            )
        ]
        counts["accounts"] = len(account_rows)

        before = _max_id(conn, con_t)
        counts["contacts"] = _insert(
            conn, con_t, gen.contacts([(a, o, s, f"{_slug(n)}.example.com") for a, o, s, n in account_rows])
        )
        contact_of = {
            account_id: contact_id
            for contact_id, account_id in conn.execute(
                select(con_t.c.id, con_t.c.account_id).where(con_t.c.id > before).order_by(con_t.c.id)
            )
        }

        before = _max_id(conn, deal_t)
        counts["deals"] = _insert(
            conn, deal_t, gen.deals([(a, o, s, n, contact_of.get(a)) for a, o, s, n in account_rows])
        )
        deal_rows = [
            (row.id, row.account_id, row.owner_id, bool(row.shared_with_team))
            for row in conn.execute(
                select(deal_t.c.id, deal_t.c.account_id, deal_t.c.owner_id, deal_t.c.shared_with_team)
                .where(deal_t.c.id > before)
                .order_by(deal_t.c.id)
            )
        ]

        start = _max_id(conn, lead_t)
        counts["leads"] = _insert(conn, lead_t, gen.leads(start, leads, companies=max(50, leads // 12)))

        counts["activities"] = (
            _insert(
                conn,
                act_t,
                gen.activities(activities, deal_rows, [(a, o, s) for a, o, s, _n in account_rows], contact_of),
            )
            if account_rows
            else 0
        )
        del account_rows, deal_rows, contact_of
    if analyze:
        _analyze(store, (acc_t, con_t, deal_t, lead_t, act_t))
    return counts


def _analyze(store: Store, tables: Iterable[Table]) -> None:
    """Fresh planner statistics for the bulk-loaded tables, table by table: a bare ANALYZE on
    PostgreSQL would visit every table of every schema in the database (and can deadlock with
    another session dropping a schema). On SQLite, also fold the write-ahead log back into the file."""
    quote = store.engine.dialect.identifier_preparer.quote
    with store.engine.begin() as conn:
        for table in tables:
            conn.execute(text(f"ANALYZE {quote(table.name)}"))
    if store.engine.dialect.name == "sqlite":
        # Outside a transaction, so on the driver's connection; housekeeping only, so a reader that
        # keeps the log busy is no error (SQLite checkpoints later by itself).
        with store.engine.connect() as conn:
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]


def seed_large(
    store: Store,
    *,
    leads: int = 100_000,
    accounts: int = 20_000,
    activities: int = 200_000,
    seed: int = 7,
    now: datetime | None = None,
    analyze: bool = True,
    extras: bool = False,
) -> dict[str, int]:
    """The demo seed (`seed_demo`, with its `extras` if asked; refuses a database that already has
    users) plus `add_large_data`; returns the counts of the generated rows. The demo's API tokens
    are not kept: call `seed_demo` and `add_large_data` yourself to keep them."""
    seed_demo(store, today=(now or datetime.now(UTC)).date(), extras=extras)
    return add_large_data(
        store, leads=leads, accounts=accounts, activities=activities, seed=seed, now=now, analyze=analyze
    )
