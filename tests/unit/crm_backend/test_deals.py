from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm_backend.errors import AuthenticationFailed, ValidationFailed
from crm_backend.models import Account, Deal
from crm_backend.services import accounts, deals
from tests.conftest import Demo

ALICE_OPEN = ["Acme - Fleet telematics", "Nimbus Labs - Platform renewal", "Initech - Analytics add-on"]


def open_deal_names(demo: Demo, username: str) -> list[str]:
    with demo.store.unit_of_work(actor=demo.actor(username)) as uow:
        return [d.name for d in deals.list_open_deals(uow)]


def test_rep_lists_only_own_open_deals_soonest_close_first_undated_last(demo: Demo) -> None:
    assert open_deal_names(demo, "alice") == ALICE_OPEN


def test_rep_does_not_see_closed_or_other_reps_deals(demo: Demo) -> None:
    names = open_deal_names(demo, "bob")
    assert names == ["Globex - Data warehouse", "Umbrella - Patient portal"]
    assert "Globex - Legacy migration" not in names  # closed lost


def test_manager_my_open_deals_are_their_own_not_the_teams(demo: Demo) -> None:
    assert open_deal_names(demo, "maria") == ["Hooli - Enterprise licence"]


def test_open_deal_summary_carries_account_stage_amount_and_currency(demo: Demo) -> None:
    with demo.store.unit_of_work(actor=demo.actor("alice")) as uow:
        initech = deals.list_open_deals(uow)[-1]
    assert (initech.account_name, initech.stage, initech.amount, initech.currency) == (
        "Initech",
        "Qualification",
        Decimal("18500.00"),
        "EUR",
    )
    assert initech.expected_close_date is None


@pytest.mark.parametrize(
    ("username", "expected_owners"),
    [
        ("alice", {"alice"}),
        ("carlos", {"carlos"}),
        ("maria", {"alice", "bob", "maria"}),
        ("admin", {"alice", "bob", "maria", "carlos"}),
    ],
)
def test_visible_deals_scope_follows_role_and_team(demo: Demo, username: str, expected_owners: set[str]) -> None:
    actor = demo.actor(username)
    with demo.store.unit_of_work(actor=actor) as uow:
        owners = {d.owner.username for d in uow.session.scalars(deals.visible_deals(actor))}
    assert owners == expected_owners


def test_listing_deals_needs_a_signed_in_user(demo: Demo) -> None:
    with pytest.raises(AuthenticationFailed), demo.store.unit_of_work() as uow:
        deals.list_open_deals(uow)


def test_invalid_deal_is_rejected_with_field_errors_and_nothing_is_written(demo: Demo) -> None:
    alice = demo.actor("alice")
    with demo.store.unit_of_work(actor=alice) as uow:
        account_id = uow.session.scalar(select(Account.id).where(Account.owner_id == alice.user_id))
        before = uow.session.scalar(select(func.count()).select_from(Deal))
    with pytest.raises(ValidationFailed) as err, demo.store.unit_of_work(actor=alice) as uow:
        deals.create_deal(uow, {"name": "Bad", "account_id": account_id, "amount": "-5", "currency": "dollars"})
    assert set(err.value.fields) == {"amount", "currency"}
    with demo.store.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Deal)) == before


def test_rep_cannot_create_a_deal_on_another_reps_account(demo: Demo) -> None:
    alice, bob = demo.actor("alice"), demo.actor("bob")
    with demo.store.unit_of_work(actor=alice) as uow:
        alices_account = uow.session.scalar(select(Account.id).where(Account.owner_id == alice.user_id))
    with pytest.raises(ValidationFailed) as err, demo.store.unit_of_work(actor=bob) as uow:
        deals.create_deal(uow, {"name": "Sneaky", "account_id": alices_account, "amount": "10"})
    assert err.value.fields == {"account_id": f"no account with id {alices_account}"}


def test_failed_unit_of_work_rolls_back_everything_it_wrote(demo: Demo) -> None:
    alice = demo.actor("alice")
    with pytest.raises(RuntimeError), demo.store.unit_of_work(actor=alice) as uow:
        accounts.create_account(uow, {"name": "Half-written Ltd"})
        raise RuntimeError("boom after the first write")
    with demo.store.unit_of_work() as uow:
        assert uow.session.scalar(select(Account).where(Account.name == "Half-written Ltd")) is None
