"""The deal actions, run the way the action server runs them: a real rasa-sdk Tracker and
CollectingDispatcher, the real services, a real database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import runtime
from actions.choose import ActionChooseRecord
from actions.deals import (
    MAX_LISTED,
    ActionDealStatus,
    ActionListOpenDeals,
    Period,
    amount_filter,
    blank,
    open_deals_text,
    period_in,
)
from actions.replies import NOT_SIGNED_IN, UNEXPECTED, day, money
from crm_backend.models import Deal, DealStage, User
from crm_backend.models.territories import Territory
from crm_backend.services import records
from crm_backend.services.auth import IDENTITY_KEY, sign_identity
from crm_backend.services.deals import DealSummary
from tests.conftest import Demo
from tests.unit.actions.conftest import Crm, entity

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


# --- filters said in words (pure) -------------------------------------------------------------------------
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("text", "low", "high", "currency", "words"),
    [
        ("deals over 50k", ("50000", False), None, "USD", "over $50,000"),
        ("anything at least $100k?", ("100000", True), None, "USD", "of at least $100,000"),
        ("under 20k please", None, ("20000", False), "USD", "under $20,000"),
        ("no more than 20 grand", None, ("20000", True), "USD", "of at most $20,000"),
        ("between 10k and 50k", ("10000", True), ("50000", True), "USD", "between $10,000 and $50,000"),
        ("from 50k to 10k", ("10000", True), ("50000", True), "USD", "between $10,000 and $50,000"),
        ("10k-50k deals", ("10000", True), ("50000", True), "USD", "between $10,000 and $50,000"),
        ("100k+ deals", ("100000", True), None, "USD", "of at least $100,000"),
        ("more than 1.2M euros", ("1200000", False), None, "EUR", "over €1,200,000"),
        ("over 10k and under 50k", ("10000", False), ("50000", False), "USD", "between $10,000 and $50,000"),
    ],
)
def test_amount_comparisons_are_read_from_words(
    text: str, low: tuple[str, bool] | None, high: tuple[str, bool] | None, currency: str, words: str
) -> None:
    found = amount_filter(text)
    assert found is not None
    assert (found.min_amount, found.min_inclusive if low else True) == (
        (Decimal(low[0]), low[1]) if low else (None, True)
    )
    assert (found.max_amount, found.max_inclusive if high else True) == (
        (Decimal(high[0]), high[1]) if high else (None, True)
    )
    assert found.currency == currency and found.words == words


@pytest.mark.parametrize("text", ["my open deals", "1-2 deals", "deals in Q3", "top 5 deals", "over the line"])
def test_text_without_an_amount_comparison_has_no_amount_filter(text: str) -> None:
    assert amount_filter(text) is None


@pytest.mark.parametrize(
    ("text", "start", "end", "words"),
    [
        ("deals closing this month", date(2026, 11, 1), date(2026, 12, 1), "this month"),
        ("closing next week", date(2026, 11, 30), date(2026, 12, 7), "next week"),
        ("closing in Q1", date(2027, 1, 1), date(2027, 4, 1), "in Q1"),
        ("closing before end of quarter", None, date(2027, 1, 1), "by end of quarter (31 Dec 2026)"),
        ("closing by friday", None, date(2026, 11, 28), "by 27 Nov 2026"),
        ("closing before friday", None, date(2026, 11, 27), "before 27 Nov 2026"),
        ("closing after 1 dec", date(2026, 12, 2), None, "after 1 Dec 2026"),
        ("closing today", date(2026, 11, 26), date(2026, 11, 27), "on 26 Nov 2026"),
        ("in the next 30 days", date(2026, 11, 26), date(2026, 12, 27), "in the next 30 days"),
        ("closing within 2 weeks", date(2026, 11, 26), date(2026, 12, 11), "by 10 Dec 2026"),
        ("closing after this quarter", date(2027, 1, 1), None, "after this quarter"),
    ],
)
def test_close_date_ranges_are_read_from_words(text: str, start: date | None, end: date | None, words: str) -> None:
    period, spans = period_in(text, NOW, ZoneInfo("UTC"))
    assert period == Period(start, end, words)
    assert spans


def test_a_date_is_not_read_as_an_amount() -> None:
    text = "deals over 40k closing by Dec 4"
    period, spans = period_in(text, NOW, ZoneInfo("UTC"))
    assert period is not None and period.end == date(2026, 12, 5)
    found = amount_filter(blank(text, spans))
    assert found is not None and found.min_amount == Decimal("40000") and found.max_amount is None


# --- list_open_deals with filters, owners and territories ------------------------------------------------
LIST = ActionListOpenDeals()


def deal_id(crm: Crm, name: str) -> int:
    with crm.store.unit_of_work() as uow:
        return int(uow.session.scalars(select(Deal.id).where(Deal.name == name)).one())


def update(crm: Crm, username: str, collection: str, record_id: int, values: dict[str, Any]) -> None:
    with crm.store.unit_of_work(crm.actor(username)) as uow:
        records.update_record(uow, records.resource(collection), record_id, values, None)


def create(crm: Crm, username: str, collection: str, values: dict[str, Any]) -> int:
    with crm.store.unit_of_work(crm.actor(username)) as uow:
        return int(records.create_record(uow, records.resource(collection), values, allow_duplicate=True).id)


def territory_id(crm: Crm, name: str) -> int:
    with crm.store.unit_of_work() as uow:
        return int(uow.session.scalars(select(Territory.id).where(Territory.name == name)).one())


async def test_stage_filter_is_said_in_the_first_line_and_one_hit_becomes_the_focus(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(
        LIST, "show deals in negotiation", "list_open_deals", [entity("stage", "Negotiation", "negotiation")]
    )
    lines = chat.text.splitlines()
    assert lines[0] == "You have 1 open deal in Negotiation ($48,000 total):"
    assert "Acme - Fleet telematics" in lines[1] and len(lines) == 2
    assert chat.slots["focus_record"] == f"deal:{deal_id(crm, 'Acme - Fleet telematics')}"


async def test_amount_and_close_date_filters_combine(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(LIST, "deals closing in the next 20 days over 40k", "list_open_deals")
    assert chat.text.startswith("You have 1 open deal closing in the next 20 days over $40,000 ($48,000 total):")
    assert "Acme - Fleet telematics" in chat.text and "Nimbus" not in chat.text  # Nimbus closes in 30 days

    await chat.say(LIST, "anything over $100k?", "list_open_deals")
    assert chat.text.startswith("You have 1 open deal over $100,000 ($125,000 total):")
    assert "Nimbus Labs - Platform renewal" in chat.text

    await chat.say(LIST, "deals between 10k and 50k", "list_open_deals")
    assert chat.text.startswith("You have 2 open deals between $10,000 and $50,000 ($48,000 + €18,500 total):")


async def test_amounts_in_other_currencies_are_compared_at_the_exchange_rate(crm: Crm) -> None:
    chat = crm.chat("alice")  # Initech: €18,500 = $19,980 at the demo rate of 1.08
    await chat.say(LIST, "my deals under 20k", "list_open_deals")
    assert "Initech - Analytics add-on" in chat.text and "Acme" not in chat.text
    await chat.say(LIST, "my deals under 19k", "list_open_deals")
    assert chat.text == "You have no open deals under $19,000."


async def test_a_filter_nothing_matches_says_so_with_the_filters(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(LIST, "any deals over 1m closing next week", "list_open_deals")
    assert chat.text == "You have no open deals closing next week over $1,000,000."


async def test_rep_asking_for_another_reps_deals_sees_none_and_hears_why(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(LIST, "show me Bob's deals", "list_open_deals", [entity("record", "Bob's")])
    assert chat.text == (
        "None of Bob Chen's open deals are visible to you. You see your own deals and those your team shares."
    )
    assert "Globex" not in chat.text and "Umbrella" not in chat.text


async def test_rep_sees_a_colleagues_deal_shared_with_the_team(crm: Crm) -> None:
    update(crm, "bob", "deals", deal_id(crm, "Globex - Data warehouse"), {"shared_with_team": True})
    chat = crm.chat("alice")
    await chat.say(LIST, "bob's deals", "list_open_deals", [entity("record", "bob")])
    assert chat.text.startswith("Bob Chen has 1 open deal ($64,000):")
    assert "Globex - Data warehouse" in chat.text and "Umbrella" not in chat.text


async def test_manager_sees_team_members_deals(crm: Crm) -> None:
    chat = crm.chat("maria")
    await chat.say(LIST, "Bob's deals", "list_open_deals", [entity("record", "Bob")])
    assert chat.text.startswith("Bob Chen has 2 open deals ($274,000):")
    assert "Globex - Data warehouse" in chat.text and "Umbrella - Patient portal" in chat.text
    assert "Legacy migration" not in chat.text  # closed lost

    await chat.say(LIST, "alice's deals over 100k", "list_open_deals", [entity("record", "alice's")])
    assert chat.text.startswith("Alice Rivera has 1 open deal over $100,000 ($125,000 total):")

    await chat.say(LIST, "team deals over 50k", "list_open_deals")
    assert chat.text.startswith("Your team has 4 open deals over $50,000")
    for name in ("Nimbus Labs", "Globex - Data warehouse", "Umbrella", "Hooli"):
        assert name in chat.text
    assert "Stark" not in chat.text  # carlos is in the West team
    assert "Bob Chen" in chat.text and "Alice Rivera" in chat.text  # whose each one is


async def test_manager_asking_for_a_rep_outside_the_team_sees_nothing(crm: Crm) -> None:
    chat = crm.chat("maria")
    await chat.say(LIST, "carlos deals", "list_open_deals", [entity("record", "carlos")])
    assert chat.text == "None of Carlos Mendes's open deals are visible to you."


async def test_territory_filter_keeps_to_what_the_user_may_see(crm: Crm) -> None:
    emea = territory_id(crm, "EMEA")
    update(crm, "alice", "deals", deal_id(crm, "Acme - Fleet telematics"), {"territory_id": emea})
    update(crm, "carlos", "deals", deal_id(crm, "Stark - Route optimiser"), {"territory_id": emea})
    alice = crm.chat("alice")
    await alice.say(LIST, "big deals in europe", "list_open_deals", [entity("territory", "EMEA", "europe")])
    assert alice.text.startswith("1 open deal in EMEA ($48,000 total):")
    assert "Stark" not in alice.text
    maria = crm.chat("maria")  # manages EMEA: sees deals placed there, whoever owns them
    await maria.say(LIST, "deals in EMEA", "list_open_deals", [entity("territory", "EMEA")])
    assert maria.text.startswith("2 open deals in EMEA ($135,000 total):")
    assert "Stark - Route optimiser" in maria.text and "Carlos Mendes" in maria.text
    await maria.say(LIST, "deals in narnia", "list_open_deals", [entity("territory", "Narnia")])
    assert maria.text == "I don't know a territory called “Narnia”."


async def test_a_name_that_is_an_account_lists_its_deals_and_an_unknown_name_is_said(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(LIST, "acme deals", "list_open_deals", [entity("record", "acme")])
    assert chat.text.startswith("1 open deal at Acme Corporation ($48,000 total):")
    await chat.say(LIST, "globex deals", "list_open_deals", [entity("record", "globex")])
    assert chat.text == "I don't know a rep or an account called “globex” that you can see."
    await chat.say(LIST, "deals for Zorro", "list_open_deals", [entity("record", "Zorro")])
    assert "“Zorro”" in chat.text


async def test_won_deals_are_listed_latest_first(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(LIST, "my won deals", "list_open_deals", [entity("stage", "Closed Won", "won")])
    lines = chat.text.splitlines()
    assert lines[0].startswith("You have ") and " won deals (" in lines[0]
    assert "Acme - Pilot" in chat.text and "Fleet telematics" not in chat.text
    assert all("Closed Won" in line and "closed " in line for line in lines[1:-1])
    assert lines[-1].endswith("more, closed earlier.")


# --- deal_status ---------------------------------------------------------------------------------------------
STATUS = ActionDealStatus()


async def test_deal_status_gives_stage_amount_close_owner_and_activities(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(STATUS, "what stage is the nimbus deal in", "deal_status", [entity("record", "nimbus")])
    lines = chat.text.splitlines()
    assert lines[0] == "Nimbus Labs - Platform renewal (Nimbus Labs): Proposal, $125,000, 50% probability."
    assert lines[1].startswith("Closes ") and lines[1].endswith("(in 30 days).")
    assert "Owner: Alice Rivera." in lines
    assert "No activity logged yet." in lines
    assert lines[-1].startswith("Next: Task “Send the Nimbus proposal”, due ") and lines[-1].endswith("(overdue).")

    nimbus = deal_id(crm, "Nimbus Labs - Platform renewal")
    create(
        crm,
        "alice",
        "activities",
        {
            "type": "Call",
            "subject": "Scope call with Dana",
            "status": "Completed",
            "completed_at": datetime(2026, 1, 5, 10, 30, tzinfo=UTC).isoformat(),
            "deal_id": nimbus,
        },
    )
    await chat.say(STATUS, "when does it close", "deal_status")  # the focus
    assert "Last activity: Call “Scope call with Dana”, Mon 5 Jan" in chat.text
    assert chat.text.startswith("Nimbus Labs - Platform renewal")


async def test_an_account_name_finds_its_open_deal(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(STATUS, "where are we with Acme", "deal_status", [entity("record", "Acme")])
    assert chat.text.startswith("Acme - Fleet telematics (Acme Corporation): Negotiation, $48,000, 70% probability.")
    assert "(in 12 days)" in chat.text and "Nothing planned next." in chat.text


async def test_an_account_with_several_open_deals_asks_which_one(crm: Crm) -> None:
    acme = deal_id(crm, "Acme - Fleet telematics")
    with crm.store.unit_of_work() as uow:
        account_id = uow.session.scalars(select(Deal.account_id).where(Deal.id == acme)).one()
    create(crm, "alice", "deals", {"name": "Acme - Spare parts", "account_id": account_id, "amount": "12000"})
    chat = crm.chat("alice")
    await chat.say(STATUS, "where are we with Acme", "deal_status", [entity("record", "Acme")])
    assert "Which one do you mean?" in chat.text and len(chat.buttons) == 2
    await chat.say(ActionChooseRecord(), "the second one", "choose_record", [entity("ordinal", "2", "second")])
    assert chat.text.startswith("Acme - Spare parts (Acme Corporation): Prospecting, $12,000")


async def test_deal_status_of_a_closed_deal_says_when_it_was_won(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(STATUS, "status of the pilot deal", "deal_status", [entity("record", "pilot")])
    assert "Which one do you mean?\n1. Acme - Pilot (Acme Corporation · Closed Won · $9,000)" in chat.text
    await chat.say(ActionChooseRecord(), "the first", "choose_record", [entity("ordinal", "1", "first")])
    assert chat.text.startswith("Acme - Pilot (Acme Corporation): Closed Won, $9,000, 100% probability.\nWon on ")


async def test_another_reps_deal_has_no_status(crm: Crm) -> None:
    chat = crm.chat("alice")
    for name in ("Globex", "Hooli"):
        await chat.say(STATUS, f"status of the {name} opportunity", "deal_status", [entity("record", name)])
        assert chat.text.startswith(f"I can't find a deal called “{name}”")
        assert "$" not in chat.text
    await chat.say(STATUS, "status of the Stark opportunity", "deal_status", [entity("record", "Stark")])
    assert "Stark - Route optimiser" not in chat.text and "$87,000" not in chat.text  # at most alike names
    await chat.say(STATUS, "when does it close", "deal_status")
    assert chat.text == "Which deal do you mean? Tell me its name."
