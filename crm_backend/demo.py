"""Demo data for `make run` and the tests: two teams, reps with their own accounts and deals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from crm_backend.demo_knowledge import seed_knowledge_articles
from crm_backend.models.deals import DealStage
from crm_backend.models.users import Role
from crm_backend.services import accounts, auth, deals, records, users
from crm_backend.store import Store, UnitOfWork

DEMO_USERS: tuple[tuple[str, str, Role, str | None], ...] = (
    ("alice", "Alice Rivera", Role.REP, "East"),
    ("bob", "Bob Chen", Role.REP, "East"),
    ("maria", "Maria Okafor", Role.MANAGER, "East"),
    ("carlos", "Carlos Mendes", Role.REP, "West"),
    ("admin", "Ada Admin", Role.ADMIN, None),
    ("sam", "Sam Support", Role.AGENT, None),  # the service desk: takes the assistant's handoffs
)

# (owner, account, industry, deal name, stage, amount, currency, probability, days to close)
DEMO_DEALS: tuple[tuple[str, str, str, str, DealStage, str, str, int, int | None], ...] = (
    (
        "alice",
        "Acme Corporation",
        "Manufacturing",
        "Acme - Fleet telematics",
        DealStage.NEGOTIATION,
        "48000",
        "USD",
        70,
        12,
    ),
    ("alice", "Nimbus Labs", "Software", "Nimbus Labs - Platform renewal", DealStage.PROPOSAL, "125000", "USD", 50, 30),
    (
        "alice",
        "Initech",
        "Financial Services",
        "Initech - Analytics add-on",
        DealStage.QUALIFICATION,
        "18500",
        "EUR",
        25,
        None,
    ),
    ("alice", "Acme Corporation", "Manufacturing", "Acme - Pilot", DealStage.CLOSED_WON, "9000", "USD", 100, -20),
    ("bob", "Globex", "Energy", "Globex - Data warehouse", DealStage.PROSPECTING, "64000", "USD", 10, 45),
    ("bob", "Umbrella Health", "Healthcare", "Umbrella - Patient portal", DealStage.PROPOSAL, "210000", "USD", 40, 60),
    ("bob", "Globex", "Energy", "Globex - Legacy migration", DealStage.CLOSED_LOST, "30000", "USD", 0, -5),
    (
        "carlos",
        "Stark Logistics",
        "Logistics",
        "Stark - Route optimiser",
        DealStage.NEGOTIATION,
        "87000",
        "USD",
        65,
        20,
    ),
    ("carlos", "Wayne Retail", "Retail", "Wayne - Loyalty programme", DealStage.QUALIFICATION, "35000", "GBP", 20, 90),
    ("maria", "Hooli", "Software", "Hooli - Enterprise licence", DealStage.PROPOSAL, "300000", "USD", 35, 75),
)


def seed_demo(store: Store, today: date | None = None, *, extras: bool = False) -> dict[str, str]:
    """Create the demo teams, users, accounts and deals in one transaction; return API tokens.

    `extras` adds what makes `make run` feel lived-in (currencies, territories, contacts, leads,
    activities, a ticket); the tests use the lean set. Refuses to run on a database that already
    has users, so it never mixes with real data.
    """
    today = today or date.today()  # noqa: DTZ011 - demo close dates are calendar days
    tokens: dict[str, str] = {}
    with store.unit_of_work(channel="cli") as uow:
        if users.count_users(uow):
            raise RuntimeError("The database already has users; demo data is only seeded into an empty one.")
        teams = {name: users.create_team(uow, name).id for name in ("East", "West")}
        user_ids: dict[str, int] = {}
        for username, full_name, role, team in DEMO_USERS:
            user = users.create_user(
                uow,
                {
                    "username": username,
                    "full_name": full_name,
                    "email": f"{username}@demo.example.com",
                    "role": role,
                    "team_id": teams[team] if team else None,
                },
            )
            user_ids[username] = user.id
            tokens[username] = auth.issue_token(uow, user.id, "demo")
        account_ids: dict[str, int] = {}
        for owner, account_name, industry, name, stage, amount, currency, prob, days in DEMO_DEALS:
            uow.actor = auth.load_actor(uow, user_ids[owner])
            if account_name not in account_ids:
                account = accounts.create_account(uow, {"name": account_name, "industry": industry})
                account_ids[account_name] = account.id
            deals.create_deal(
                uow,
                {
                    "name": name,
                    "account_id": account_ids[account_name],
                    "stage": stage,
                    "amount": Decimal(amount),
                    "currency": currency,
                    "probability": prob,
                    "expected_close_date": today + timedelta(days=days) if days is not None else None,
                    **({"lost_reason": "Chose a cheaper competitor"} if stage is DealStage.CLOSED_LOST else {}),
                },
            )
        if extras:
            _seed_extras(uow, user_ids, account_ids, today)
        uow.actor = None
    if extras:  # after the seed's transaction: the history goes in with bulk inserts of its own
        _seed_scoring_history(store, user_ids["admin"], today)
    return tokens


def _seed_scoring_history(store: Store, admin_id: int, today: date) -> None:
    """Two and a half years of closed leads and deals (for the scoring model and the AI forecast) and
    the default scoring rule sets, which score every lead and deal as they are installed."""
    from crm_backend.scoring import defaults, history

    # Decided deals only: the reps' open pipeline stays the hand-written demo deals above.
    history.seed_history(store, leads=1500, deals=800, today=today, pipeline=False)
    with store.unit_of_work(channel="cli") as uow:
        defaults.install_default_rules(uow, admin_id)


def _seed_extras(uow: UnitOfWork, user_ids: dict[str, int], account_ids: dict[str, int], today: date) -> None:
    def as_user(username: str) -> None:
        uow.actor = auth.load_actor(uow, user_ids[username])

    def create(collection: str, data: dict[str, Any]) -> Any:
        return records.create_record(uow, records.resource(collection), data, allow_duplicate=True)

    as_user("admin")
    for code, name, symbol, rate in (
        ("USD", "US dollar", "$", "1"),
        ("EUR", "Euro", "€", "1.08"),
        ("GBP", "Pound sterling", "£", "1.27"),
    ):
        create(
            "currencies", {"code": code, "name": name, "symbol": symbol, "rate_to_base": rate, "is_base": code == "USD"}
        )
    create("territories", {"name": "EMEA", "type": "Geographic", "manager_ids": [user_ids["maria"]]})
    create("territories", {"name": "North America", "type": "Geographic", "country": "US"})
    seed_knowledge_articles(uow)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    as_user("alice")
    dana = create(
        "contacts",
        {
            "first_name": "Dana",
            "last_name": "Smith",
            "email": "dana.smith@nimbus.example",
            "account_id": account_ids["Nimbus Labs"],
            "role": "Decision Maker",
            "job_title": "VP Operations",
        },
    )
    create(
        "contacts",
        {
            "first_name": "Raj",
            "last_name": "Patel",
            "email": "raj.patel@acme.example",
            "account_id": account_ids["Acme Corporation"],
            "role": "Champion",
            "job_title": "Fleet Manager",
        },
    )
    create(
        "activities",
        {
            "type": "Call",
            "subject": "Call Dana about the renewal scope",
            "priority": "High",
            "account_id": account_ids["Nimbus Labs"],
            "contact_id": dana.id,
            "due_at": now + timedelta(hours=3),
        },
    )
    create(
        "activities",
        {
            "type": "Task",
            "subject": "Send the Nimbus proposal",
            "priority": "Urgent",
            "account_id": account_ids["Nimbus Labs"],
            "due_at": now - timedelta(days=2),
        },
    )
    create(
        "tickets",
        {
            "subject": "Telematics dashboard not loading",
            "priority": "High",
            "account_id": account_ids["Acme Corporation"],
            "channel": "web",
        },
    )
    as_user("bob")
    create(
        "contacts",
        {
            "first_name": "Lena",
            "last_name": "Fischer",
            "email": "lena.fischer@globex.example",
            "account_id": account_ids["Globex"],
            "role": "Economic Buyer",
            "job_title": "CFO",
        },
    )
    create(
        "leads",
        {
            "first_name": "Tom",
            "last_name": "Baker",
            "email": "tom.baker@fabrikam.example",
            "company": "Fabrikam",
            "source": "Referral",
            "status": "Contacted",
            "score": 55,
        },
    )
    create(
        "activities",
        {
            "type": "Meeting",
            "subject": "Globex data warehouse workshop",
            "account_id": account_ids["Globex"],
            "start_at": now + timedelta(days=1),
            "end_at": now + timedelta(days=1, hours=1),
        },
    )
    as_user("carlos")
    create(
        "leads",
        {
            "first_name": "Yuki",
            "last_name": "Tanaka",
            "email": "yuki@tailspin.example",
            "company": "Tailspin Toys",
            "source": "Trade Show",
            "status": "Qualified",
            "score": 72,
            "budget": "40000",
            "has_authority": True,
            "need": "route planning",
            "timeline": "Q2",
        },
    )
    create(
        "leads",
        {
            "first_name": "Priya",
            "last_name": "Nair",
            "email": "priya.nair@contoso.example",
            "company": "Contoso",
            "source": "Website",
        },
    )
