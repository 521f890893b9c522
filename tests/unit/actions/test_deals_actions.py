"""The deal actions, run the way the action server runs them: a real rasa-sdk Tracker and
CollectingDispatcher, the real services, a real database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import runtime
from actions.deals import MAX_LISTED, ActionListOpenDeals, open_deals_text
from actions.replies import NOT_SIGNED_IN, UNEXPECTED, day, money
from crm_backend.models import DealStage, User
from crm_backend.services.auth import IDENTITY_KEY, sign_identity
from crm_backend.services.deals import DealSummary
from tests.conftest import Demo

SECRET = "actions-test-secret"


@pytest.fixture
def installed(demo: Demo) -> Iterator[Demo]:
    runtime.install(runtime.ActionRuntime(store=demo.store, secret=SECRET))
    yield demo
    runtime.install(None)


def tracker(conversation_id: str, metadata: dict[str, Any] | None) -> Tracker:
    return Tracker.from_dict(
        {
            "sender_id": conversation_id,
            "slots": {},
            "latest_message": {
                "text": "show my open deals",
                "intent": {"name": "list_open_deals", "confidence": 0.99},
                "entities": [],
                "metadata": metadata or {},
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def signed(demo: Demo, username: str, conversation_id: str = "c1", secret: str = SECRET) -> dict[str, Any]:
    return {IDENTITY_KEY: sign_identity(secret, demo.actor(username), "api", conversation_id)}


async def run(t: Tracker) -> list[str]:
    dispatcher = CollectingDispatcher()
    events = await ActionListOpenDeals().run(dispatcher, t, {})
    assert events == []
    return [m["text"] for m in dispatcher.messages]


async def test_rep_hears_their_open_deals_with_totals(installed: Demo) -> None:
    [text] = await run(tracker("c1", signed(installed, "alice")))
    assert text.startswith("You have 3 open deals ($173,000 + €18,500):")
    for name in ("Acme - Fleet telematics", "Nimbus Labs - Platform renewal", "Initech - Analytics add-on"):
        assert name in text
    assert "Acme - Pilot" not in text  # closed won
    assert "Globex" not in text  # bob's


async def test_rep_without_open_deals_is_told_so(installed: Demo) -> None:
    [text] = await run(tracker("c1", signed(installed, "admin")))
    assert text == "You have no open deals right now."


async def test_message_without_signed_identity_gets_no_crm_data(installed: Demo) -> None:
    assert await run(tracker("c1", {"user_id": installed.actor("alice").user_id})) == [NOT_SIGNED_IN]


async def test_identity_forged_with_another_key_gets_no_crm_data(installed: Demo) -> None:
    assert await run(tracker("c1", signed(installed, "alice", secret="guessed"))) == [NOT_SIGNED_IN]


async def test_identity_from_another_conversation_gets_no_crm_data(installed: Demo) -> None:
    assert await run(tracker("c2", signed(installed, "alice", conversation_id="c1"))) == [NOT_SIGNED_IN]


async def test_deactivated_user_gets_no_crm_data(installed: Demo) -> None:
    metadata = signed(installed, "bob")
    with installed.store.unit_of_work() as uow:
        bob = uow.session.scalar(select(User).where(User.username == "bob"))
        assert bob is not None
        bob.is_active = False
    assert await run(tracker("c1", metadata)) == [NOT_SIGNED_IN]


async def test_database_failure_becomes_a_plain_apology(installed: Demo) -> None:
    metadata = signed(installed, "alice")
    installed.store.engine.dispose()
    with installed.store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE deals RENAME TO deals_gone")
    try:
        assert await run(tracker("c1", metadata)) == [UNEXPECTED]
    finally:
        with installed.store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE deals_gone RENAME TO deals")


def test_money_and_dates_read_naturally() -> None:
    assert money(Decimal("48000"), "USD") == "$48,000"
    assert money(Decimal("18500.5"), "EUR") == "€18,500.50"
    assert money(Decimal("1200"), "CHF") == "CHF 1,200"
    assert day(date(2026, 12, 7)) == "7 Dec 2026"
    assert day(None) == "no close date set"


def test_a_long_pipeline_lists_the_soonest_ten_and_counts_all() -> None:
    items = [
        DealSummary(
            id=i,
            name=f"Deal {i}",
            account_name="Acme",
            stage=DealStage.PROPOSAL,
            amount=Decimal("1000"),
            currency="USD",
            probability=50,
            expected_close_date=date(2026, 12, i + 1),
            owner_username="alice",
        )
        for i in range(12)
    ]
    lines = open_deals_text(items).splitlines()
    assert lines[0] == "You have 12 open deals ($12,000):"
    assert [line.split(".", 1)[0] for line in lines[1:-1]] == [str(n) for n in range(1, MAX_LISTED + 1)]
    assert "Deal 9 " in lines[-2] and "Deal 10" not in "\n".join(lines)
    assert lines[-1] == "…and 2 more, closing later."
