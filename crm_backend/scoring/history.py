"""Generated CRM history with a known, learnable signal: closed leads and deals over several years.

Why generated: the scoring model and the AI forecast need history to learn from, and a demo or a
test needs to know what the right answer is. Each outcome is drawn from a logistic model whose
effects are listed below (`LEAD_EFFECTS`, `DEAL_EFFECTS`), plus Gaussian noise on the log-odds, so
the trained model reaches a held-out ROC-AUC of about 0.7 on a few thousand leads or deals (the
outcomes are coin flips weighted by these odds, so no model can be near 1) and a model trained on
shuffled labels about 0.5.

Leads (created over `months` months before `today`):
    log-odds = -1.0 + source + industry + 0.4·(log10 employees − 2) + 0.45·(BANT known − 2)
               + 0.25·(min(activities, 8) − 2.5) − 0.5·ln(1 + response hours / 24)
               + 1.0·conversation sentiment + N(0, 0.3)
    converted or lost 7-90 days after creation; those created in the last 60 days are mostly
    still open (New / Contacted / Qualified). Activities (calls, e-mails, meetings) start after the
    response time; 60% of leads had a conversation with a sentiment in -1..1.
Deals (close dates over the same span, more in quarter-end months and in Q4; amounts grow ~1.5% a
month; sales cycles of 20-120 days):
    log-odds = -0.3 + type + industry − 0.35·(log10 amount − 4.4) + 0.2·(min(activities, 10) − 4)
               − 0.45·competitors + 0.3·(log10 account employees − 2) + N(0, 0.3)
    deals whose close date is still ahead stay open with an expected close date.

Rows go in with Core INSERTs in one transaction (fixtures, not user input: no per-row services or
events); run `crm-assistant score --all` afterwards to score them. Same seed, same rows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select

from crm_backend.demo_large import COMPANY_FIRST, COMPANY_KINDS, FIRST_NAMES, LAST_NAMES, company_fragments
from crm_backend.models.accounts import Account, AccountType
from crm_backend.models.activities import Activity, ActivityStatus, ActivityType
from crm_backend.models.conversations import Conversation
from crm_backend.models.deals import STAGE_PROBABILITY, Deal, DealStage, DealType
from crm_backend.models.leads import Lead, LeadSource, LeadStatus
from crm_backend.models.users import Role, User
from crm_backend.services.matching import dedup_key, normal_company, normal_email
from crm_backend.store import Store

LEAD_EFFECTS: dict[str, dict[str, float]] = {
    "source": {
        "Referral": 1.2, "Partner": 0.8, "Trade Show": 0.4, "Chat": 0.2, "Website": 0.0,
        "Email Campaign": -0.3, "Other": -0.4, "Social Media": -0.5, "Cold Call": -0.9,
    },
    "industry": {
        "Software": 0.5, "Finance": 0.3, "Healthcare": 0.2, "Manufacturing": 0.0, "Retail": -0.3,
        "Education": -0.5,
    },
}  # fmt: skip
SOURCE_SHARE = {
    "Website": 25, "Referral": 10, "Cold Call": 15, "Social Media": 10, "Email Campaign": 15,
    "Trade Show": 8, "Partner": 7, "Chat": 7, "Other": 3,
}  # fmt: skip
DEAL_EFFECTS: dict[str, dict[str, float]] = {
    "type": {"Renewal": 1.2, "Upsell": 0.6, "Cross-sell": 0.3, "New Business": 0.0},
    "industry": LEAD_EFFECTS["industry"],
}
TYPE_SHARE = {"New Business": 55, "Upsell": 20, "Cross-sell": 10, "Renewal": 15}
INDUSTRIES = tuple(LEAD_EFFECTS["industry"])
NOISE = 0.3
OPEN_WINDOW_DAYS = 60
LOST_REASONS = ("No budget", "Went with a competitor", "No response", "Timing", "Not a fit")


@dataclass
class History:
    """The generated rows (without ids) and the true outcome probabilities, for checks."""

    leads: list[dict[str, Any]] = field(default_factory=list)
    lead_activities: list[list[dict[str, Any]]] = field(default_factory=list)  # per lead
    lead_sentiment: list[float | None] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)
    deal_account: list[int] = field(default_factory=list)  # index into accounts
    deal_activities: list[list[dict[str, Any]]] = field(default_factory=list)


def _pick(rng: random.Random, shares: dict[str, int]) -> str:
    return rng.choices(list(shares), weights=list(shares.values()))[0]


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _employees(rng: random.Random) -> int:
    return max(1, int(math.exp(rng.gauss(math.log(150), 1.4))))


def _activity(kind: ActivityType, when: datetime, owner: int, subject: str) -> dict[str, Any]:
    return {
        "type": kind.value,
        "subject": subject,
        "status": ActivityStatus.COMPLETED.value,
        "start_at": when,
        "completed_at": when,
        "completion_percent": 100,
        "owner_id": owner,
        "created_at": when,
        "updated_at": when,
    }


SUBJECTS = {
    ActivityType.CALL: ("Discovery call", "Follow-up call", "Pricing call", "Check-in call"),
    ActivityType.EMAIL: ("Sent the proposal", "Answered questions by e-mail", "Sent case studies"),
    ActivityType.MEETING: ("Demo meeting", "Requirements workshop", "Review with the buyer"),
}


def _activities(rng: random.Random, n: int, first: datetime, last: datetime, owner: int) -> list[dict[str, Any]]:
    kinds = (ActivityType.CALL, ActivityType.EMAIL, ActivityType.MEETING)
    span = max(0.0, (last - first).total_seconds())
    out = []
    for k in range(n):
        when = first if k == 0 else first + timedelta(seconds=rng.uniform(0, span))
        kind = rng.choice(kinds)
        out.append(_activity(kind, when, owner, rng.choice(SUBJECTS[kind])))
    return out


def generate(
    *,
    seed: int = 11,
    leads: int = 3000,
    deals: int = 1500,
    months: int = 30,
    today: date,
    owners: list[int],
    pipeline: bool = True,
) -> History:
    """Leads and deals with outcomes drawn from the documented effects (see the module docstring);
    `pipeline=False` leaves out deals still open today (history only, no extra pipeline)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    end = datetime.combine(today, time(12), tzinfo=UTC)
    start = end - timedelta(days=30 * months)
    span = (end - start).total_seconds()
    history = History()
    for i in range(leads):
        created = start + timedelta(seconds=rng.uniform(0, span - 14 * 86400))
        source = _pick(rng, SOURCE_SHARE)
        industry = rng.choice(INDUSTRIES)
        employees = _employees(rng)
        known = [rng.random() < 0.5 for _ in range(4)]
        n_acts = min(12, int(rng.expovariate(1 / 2.5) + rng.random()))
        response_h = rng.expovariate(1 / 24)
        sentiment = max(-1.0, min(1.0, rng.gauss(0.1, 0.4))) if rng.random() < 0.6 else None
        logit = (
            -1.0
            + LEAD_EFFECTS["source"][source]
            + LEAD_EFFECTS["industry"][industry]
            + 0.4 * (math.log10(employees) - 2)
            + 0.45 * (sum(known) - 2)
            + 0.25 * (min(n_acts, 8) - 2.5)
            - 0.5 * math.log1p(response_h / 24)
            + 1.0 * (sentiment or 0.0)
            + rng.gauss(0, NOISE)
        )
        decided = created + timedelta(days=rng.uniform(7, 90))
        still_open = decided > end or ((end - created).days < OPEN_WINDOW_DAYS and rng.random() < 0.6)
        if still_open:
            status = rng.choice((LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED))
            decided = min(end, created + timedelta(days=3))
        else:
            status = LeadStatus.CONVERTED if rng.random() < _sigmoid(logit) else LeadStatus.LOST
        owner = rng.choice(owners)
        # Names without extra random draws, so the outcomes above stay what the seed gives.
        first_name, last_name = FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[(i * 7 + seed) % len(LAST_NAMES)]
        company = f"{rng.choice(COMPANY_FIRST)} {rng.choice(company_fragments())} {industry}"
        email = f"{first_name}.{last_name}.{i}@history.example.com".lower()
        history.leads.append(
            {
                "first_name": first_name,
                "last_name": last_name,
                "email": email,
                "company": company,
                "dedup_key": dedup_key(email, None, company),
                "email_key": normal_email(email),
                "company_key": normal_company(company),
                "industry": industry,
                "employees": employees,
                "source": LeadSource(source).value,
                "status": status.value,
                "score": 0,
                "budget": Decimal(rng.randrange(5, 300) * 1000) if known[0] else None,
                "has_authority": True if known[1] else None,
                "need": "Replace spreadsheets" if known[2] else None,
                "timeline": "This quarter" if known[3] else None,
                "lost_reason": rng.choice(LOST_REASONS) if status is LeadStatus.LOST else None,
                "converted_at": decided if status is LeadStatus.CONVERTED else None,
                "owner_id": owner,
                "created_at": created,
                "updated_at": decided,
            }
        )
        first = created + timedelta(hours=response_h)
        acts = _activities(rng, n_acts, first, max(first, decided), owner) if first < end else []
        history.lead_activities.append(acts)
        history.lead_sentiment.append(sentiment)
    _generate_deals(rng, history, deals, start, end, owners, pipeline)
    return history


def _close_date(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A close date with quarter-end and Q4 seasonality (rejection sampling)."""
    span = (end - start).total_seconds()
    while True:
        when = start + timedelta(seconds=rng.uniform(0, span + 120 * 86400))
        weight = (1.3 if when.month in (3, 6, 9, 12) else 1.0) * (1.4 if when.month >= 10 else 1.0)
        if rng.random() < weight / 1.82:
            return when


PRODUCTS = (
    "Platform licence", "Analytics add-on", "Support renewal", "Data migration", "Onboarding package",
    "Seat expansion", "Integration project", "Premium support", "Training programme", "Pilot",
)  # fmt: skip


def _company_names(rng: random.Random, n: int) -> list[str]:
    """`n` distinct, plausible company names ("Cedar Ridge Logistics")."""
    combos = [f"{a} {b} {kind}" for a in COMPANY_FIRST for b in company_fragments() for kind, _ in COMPANY_KINDS]
    rng.shuffle(combos)
    if n <= len(combos):
        return combos[:n]
    return [f"{combos[i % len(combos)]} {i // len(combos) + 1}" if i >= len(combos) else combos[i] for i in range(n)]


def _generate_deals(
    rng: random.Random,
    history: History,
    count: int,
    start: datetime,
    end: datetime,
    owners: list[int],
    pipeline: bool = True,
) -> None:
    n_accounts = max(1, count // 3)
    names = _company_names(rng, n_accounts)
    for j in range(n_accounts):
        history.accounts.append(
            {
                "name": names[j],
                "type": AccountType.CUSTOMER.value,
                "industry": rng.choice(INDUSTRIES),
                "employees": _employees(rng),
                "owner_id": rng.choice(owners),
            }
        )
    for _ in range(count):
        a = rng.randrange(n_accounts)
        account = history.accounts[a]
        closes = _close_date(rng, start + timedelta(days=60), end)
        while not pipeline and closes > end:  # only the past: every deal decided
            closes = _close_date(rng, start + timedelta(days=60), end)
        created = closes - timedelta(days=rng.uniform(20, 120))
        deal_type = _pick(rng, TYPE_SHARE)
        growth = 1.015 ** ((created - start).days / 30 if created > start else 0)
        amount = max(1000.0, math.exp(rng.gauss(math.log(25_000), 0.8)) * growth)
        n_acts = min(20, int(rng.expovariate(1 / 4) + rng.random()))
        competitors = rng.choices((0, 1, 2, 3), weights=(40, 35, 18, 7))[0]
        logit = (
            -0.3
            + DEAL_EFFECTS["type"][deal_type]
            + DEAL_EFFECTS["industry"][account["industry"]]
            - 0.35 * (math.log10(amount) - 4.4)
            + 0.2 * (min(n_acts, 10) - 4)
            - 0.45 * competitors
            + 0.3 * (math.log10(account["employees"]) - 2)
            + rng.gauss(0, NOISE)
        )
        is_open = closes > end
        if is_open:
            stage = rng.choice(
                (DealStage.PROSPECTING, DealStage.QUALIFICATION, DealStage.PROPOSAL, DealStage.NEGOTIATION)
            )
        else:
            stage = DealStage.CLOSED_WON if rng.random() < _sigmoid(logit) else DealStage.CLOSED_LOST
        owner = account["owner_id"]
        changed = min(end, closes) if not is_open else created + (end - created) / 2
        history.deals.append(
            {
                "name": f"{account['name']} - {rng.choice(PRODUCTS)} ({deal_type})",
                "stage": stage.value,
                "type": DealType(deal_type).value,
                "amount": Decimal(str(round(amount, 2))),
                "currency": "USD",
                "probability": STAGE_PROBABILITY[stage],
                "expected_close_date": closes.date(),
                "closed_at": None if is_open else closes,
                "stage_changed_at": changed,
                "competitors": [f"Rival {c + 1}" for c in range(competitors)],
                "lost_reason": rng.choice(LOST_REASONS) if stage is DealStage.CLOSED_LOST else None,
                "owner_id": owner,
                "created_at": created,
                "updated_at": changed,
            }
        )
        history.deal_account.append(a)
        last = min(end, closes)
        history.deal_activities.append(_activities(rng, n_acts, created + timedelta(hours=6), last, owner))


def _insert_returning_ids(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    before = int(conn.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0)
    for i in range(0, len(rows), 2000):
        conn.execute(insert(table), rows[i : i + 2000])
    ids = list(conn.scalars(select(table.c.id).where(table.c.id > before).order_by(table.c.id)))
    if len(ids) != len(rows):
        raise RuntimeError(f"inserted {len(rows)} {table.name} but found {len(ids)}: was someone else writing?")
    return ids


def _rows(chunks: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for chunk in chunks for row in chunk]


def sales_users(store: Store) -> list[int]:
    """The users who own generated history: the sales reps and managers (any active user if none)."""
    with store.engine.connect() as conn:
        ids = list(conn.scalars(select(User.id).where(User.role.in_([Role.REP, Role.MANAGER]))))
        return ids or list(conn.scalars(select(User.id)))


def load(store: Store, history: History) -> dict[str, int]:
    """Insert the generated history in one transaction; return how many rows of each kind."""
    tables = {m: cast(Table, m.__table__) for m in (Lead, Account, Deal, Activity, Conversation)}
    with store.engine.begin() as conn:
        lead_ids = _insert_returning_ids(conn, tables[Lead], history.leads)
        account_ids = _insert_returning_ids(conn, tables[Account], history.accounts)
        for deal, a in zip(history.deals, history.deal_account, strict=True):
            deal["account_id"] = account_ids[a]
        deal_ids = _insert_returning_ids(conn, tables[Deal], history.deals)
        for lid, acts in zip(lead_ids, history.lead_activities, strict=True):
            for act in acts:
                act["lead_id"] = lid
        for did, a, acts in zip(deal_ids, history.deal_account, history.deal_activities, strict=True):
            for act in acts:
                act["deal_id"] = did
                act["account_id"] = account_ids[a]
        activities = [
            {"lead_id": None, "deal_id": None, "account_id": None, **a}
            for a in _rows([*history.lead_activities, *history.deal_activities])
        ]
        for i in range(0, len(activities), 2000):
            conn.execute(insert(tables[Activity]), activities[i : i + 2000])
        conversations = [
            {
                "id": f"history-{lid}",
                "user_id": lead["owner_id"],
                "channel": "web",
                "lead_id": lid,
                "sentiment_score": s,
                "sentiment_label": "positive" if s > 0.2 else "negative" if s < -0.2 else "neutral",
                "last_message_at": lead["created_at"],
                "created_at": lead["created_at"],
                "updated_at": lead["created_at"],
            }
            for lid, lead, s in zip(lead_ids, history.leads, history.lead_sentiment, strict=True)
            if s is not None
        ]
        for i in range(0, len(conversations), 2000):
            conn.execute(insert(tables[Conversation]), conversations[i : i + 2000])
    return {
        "leads": len(lead_ids),
        "accounts": len(account_ids),
        "deals": len(deal_ids),
        "activities": len(activities),
        "conversations": len(conversations),
    }


def seed_history(
    store: Store,
    *,
    seed: int = 11,
    leads: int = 3000,
    deals: int = 1500,
    months: int = 30,
    today: date | None = None,
    pipeline: bool = True,
) -> dict[str, int]:
    """Generate and load history owned by the database's sales users (run the demo seed first)."""
    owners = sales_users(store)
    if not owners:
        raise RuntimeError("the database has no users to own the history; run seed-demo first")
    today = today or datetime.now(UTC).date()
    history = generate(
        seed=seed, leads=leads, deals=deals, months=months, today=today, owners=owners, pipeline=pipeline
    )
    return load(store, history)
