"""The large generated demo data (crm_backend/demo_large.py), at a small size, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_backend.demo import DEMO_DEALS, seed_demo
from crm_backend.demo_large import add_large_data, company_fragments, seed_large
from crm_backend.errors import Duplicate
from crm_backend.models import Account, Activity, Contact, Deal, Lead, User
from crm_backend.services import accounts, auth, matching, records, users
from crm_backend.services.records import ListQuery
from crm_backend.store import Actor, Store

SIZES: dict[str, Any] = {"leads": 300, "accounts": 60, "activities": 500}
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
DEMO_ACCOUNTS = len({row[1] for row in DEMO_DEALS})


@dataclass
class Large:
    counts: dict[str, int]  # what add_large_data reports
    before: dict[str, int]  # rows of each table after the demo seed alone
    last_demo_lead: int  # leads with a higher id were generated


MODELS: dict[str, Any] = {
    "leads": Lead,
    "accounts": Account,
    "contacts": Contact,
    "deals": Deal,
    "activities": Activity,
}


@pytest.fixture
def large(store: Store) -> Large:
    """The demo seed (with its extra leads, contacts and activities) plus generated data."""
    seed_demo(store, extras=True)
    before = {name: count(store, model) for name, model in MODELS.items()}
    with store.unit_of_work() as uow:
        last = uow.session.scalar(select(func.coalesce(func.max(Lead.id), 0))) or 0
    return Large(add_large_data(store, **SIZES, now=NOW), before, last)


def actor(store: Store, username: str) -> Actor:
    with store.unit_of_work() as uow:
        return auth.load_actor(uow, users.get_user_by_username(uow, username).id)


def user_ids(store: Store) -> dict[str, int]:
    with store.unit_of_work() as uow:
        return {u.username: u.id for u in uow.session.scalars(select(User))}


def all_leads(store: Store, after: int = 0) -> list[Lead]:
    with store.unit_of_work() as uow:
        return list(uow.session.scalars(select(Lead).where(Lead.id > after).order_by(Lead.id)))


def count(store: Store, model: Any) -> int:
    with store.unit_of_work() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def test_counts_and_links(store: Store, large: Large) -> None:
    expected = {"leads": 300, "accounts": 60, "contacts": 60, "activities": 500}
    assert {k: v for k, v in large.counts.items() if k != "deals"} == expected
    assert 60 <= large.counts["deals"] <= 180  # about two per account
    for name, model in MODELS.items():
        assert count(store, model) == large.before[name] + large.counts[name], name
    ids = user_ids(store)
    with store.unit_of_work() as uow:
        owners = Counter(uow.session.scalars(select(Lead.owner_id).where(Lead.id > large.last_demo_lead)))
        assert set(owners) == {ids[n] for n in ("alice", "bob", "carlos", "maria")}
        assert uow.session.scalar(select(func.count()).where(Lead.shared_with_team.is_(True)))
        assert uow.session.scalar(select(func.count()).where(Account.parent_id.is_not(None)))
        # Activities sit on the account of their deal, with that deal's owner.
        mismatched = uow.session.scalar(
            select(func.count())
            .select_from(Activity)
            .join(Deal, Deal.id == Activity.deal_id)
            .where((Deal.account_id != Activity.account_id) | (Deal.owner_id != Activity.owner_id))
        )
        assert mismatched == 0


def test_lead_keys_are_the_services_normal_forms(store: Store, large: Large) -> None:
    rows = all_leads(store, large.last_demo_lead)
    emails = [lead.email for lead in rows if lead.email]
    assert len(emails) == len(set(emails)) > 250
    for lead in rows:
        assert lead.email_key == matching.normal_email(lead.email)
        assert lead.phone_key == matching.normal_phone(lead.phone)
        assert lead.company_key == matching.normal_company(lead.company)
        assert lead.dedup_key == matching.dedup_key(lead.email, lead.phone, lead.company)
        assert lead.version == 1 and lead.created_at.tzinfo is not None and lead.created_at <= NOW
        assert lead.custom_fields == {}


def test_same_seed_gives_same_rows(store: Store, large: Large) -> None:
    first = [(lead.email, lead.company, lead.status, lead.score) for lead in all_leads(store, large.last_demo_lead)]
    add_large_data(store, **SIZES, now=NOW)
    again = [(lead.email, lead.company, lead.status, lead.score) for lead in all_leads(store, large.last_demo_lead)]
    again = again[len(first) :]
    # Same companies, statuses and scores; emails differ only by the running number that keeps them unique.
    assert [row[1:] for row in again] == [row[1:] for row in first]
    emails = [row[0] for row in first + again if row[0]]
    assert len(set(emails)) == len(emails) > 500


def test_rep_lists_own_and_team_shared_leads_only(store: Store, large: Large) -> None:
    ids = user_ids(store)
    east = {ids["alice"], ids["bob"], ids["maria"]}
    with store.unit_of_work(actor=actor(store, "alice")) as uow:
        page = records.list_records(uow, records.resource("leads"), ListQuery(limit=500))
    assert page.total == len(page.items) > 0
    for lead in page.items:
        assert lead.owner_id == ids["alice"] or (lead.shared_with_team and lead.owner_id in east)
    assert any(lead.owner_id != ids["alice"] for lead in page.items)  # team-mates' shared leads
    expected = [
        lead.id
        for lead in all_leads(store)
        if lead.owner_id == ids["alice"] or (lead.shared_with_team and lead.owner_id in east)
    ]
    assert sorted(lead.id for lead in page.items) == expected
    with store.unit_of_work(actor=actor(store, "maria")) as uow:
        team = records.list_records(uow, records.resource("leads"), ListQuery(limit=500))
    assert {lead.owner_id for lead in team.items} == east
    assert team.total == sum(1 for lead in all_leads(store) if lead.owner_id in east)


def test_filtered_list_and_account_summary(store: Store, large: Large) -> None:
    alice = actor(store, "alice")
    with store.unit_of_work(actor=alice) as uow:
        page = records.list_records(
            uow, records.resource("leads"), ListQuery(filters={"status": "New"}, sort="-created_at", limit=20)
        )
        assert page.items and all(lead.status == "New" for lead in page.items)
        stamps = [lead.created_at for lead in page.items]
        assert stamps == sorted(stamps, reverse=True)
        account = uow.session.scalar(
            select(Account).where(Account.owner_id == alice.user_id, Account.name.like("% %")).order_by(Account.id)
        )
        assert account is not None
        summary = accounts.summary(uow, account.id)
    assert summary["account"]["name"] == account.name
    assert len(summary["contacts"]) <= 1


def test_text_search_finds_generated_companies(store: Store, large: Large) -> None:
    maria = actor(store, "maria")
    target = next(lead for lead in all_leads(store) if lead.company and lead.owner_id == maria.user_id)
    assert target.company
    fragment = next(word for word in target.company.split() if word in company_fragments())
    with store.unit_of_work(actor=maria) as uow:
        page = records.list_records(uow, records.resource("leads"), ListQuery(q=fragment.lower(), limit=500))
    assert target.id in {lead.id for lead in page.items}
    for lead in page.items:
        fields = (lead.first_name, lead.last_name, lead.email, lead.company)
        assert any(fragment.lower() in (value or "").lower() for value in fields)


def test_generated_keys_catch_duplicates_of_new_leads(store: Store, large: Large) -> None:
    alice = actor(store, "alice")
    mine = [lead for lead in all_leads(store) if lead.owner_id == alice.user_id]
    by_email = next(lead for lead in mine if lead.email)
    by_phone = next(lead for lead in mine if lead.phone)
    assert by_email.email
    leads = records.resource("leads")
    with store.unit_of_work(actor=alice) as uow, pytest.raises(Duplicate) as caught:
        records.create_record(uow, leads, {"last_name": "Newcomer", "email": by_email.email.upper()})
    assert {"id": by_email.id, "reason": "same email"}.items() <= caught.value.candidates[0].items()
    digits = (by_phone.phone_key or "")[-10:]
    with store.unit_of_work(actor=alice) as uow, pytest.raises(Duplicate) as caught:
        records.create_record(
            uow, leads, {"last_name": "Newcomer", "phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"}
        )
    assert caught.value.candidates[0]["id"] == by_phone.id
    with store.unit_of_work(actor=alice) as uow:
        created = records.create_record(
            uow, leads, {"last_name": "Newcomer", "email": "newcomer@fresh.example.org", "company": by_email.company}
        )
    assert created.dedup_key == "newcomer@fresh.example.org"


def test_seed_large_seeds_the_demo_first_and_only_into_an_empty_database(store: Store) -> None:
    with pytest.raises(RuntimeError, match="missing"):
        add_large_data(store, leads=1, accounts=1, activities=1)
    counts = seed_large(store, leads=20, accounts=5, activities=30, now=NOW)
    assert counts["leads"] == 20 and counts["accounts"] == 5 and counts["activities"] == 30
    assert {"alice", "bob", "maria", "carlos", "admin"} <= set(user_ids(store))
    assert count(store, Account) == 5 + DEMO_ACCOUNTS
    with pytest.raises(RuntimeError, match="already has users"):
        seed_large(store, leads=1, accounts=1, activities=1)
