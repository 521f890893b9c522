"""Account skills through the actions, the way the action server runs them: the 360° overview, contacts,
signals and health — with what each user may see."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from actions.accounts import AT_RISK, ActionAccountOverview, ActionFindContact, ActionListSignals
from actions.deals import ActionDealStatus
from crm_backend.models import Account, Contact
from crm_backend.services import records
from crm_backend.signals import health
from tests.unit.actions.conftest import Crm, entity

OVERVIEW = ActionAccountOverview()
CONTACT = ActionFindContact()
SIGNALS = ActionListSignals()


def account_id(crm: Crm, name: str) -> int:
    with crm.store.unit_of_work() as uow:
        return int(uow.session.scalars(select(Account.id).where(Account.name == name)).one())


def contact_id(crm: Crm, last_name: str) -> int:
    with crm.store.unit_of_work() as uow:
        return int(uow.session.scalars(select(Contact.id).where(Contact.last_name == last_name)).one())


def create(crm: Crm, username: str, collection: str, values: dict[str, Any]) -> int:
    with crm.store.unit_of_work(crm.actor(username)) as uow:
        return int(records.create_record(uow, records.resource(collection), values, allow_duplicate=True).id)


def update(crm: Crm, username: str, collection: str, record_id: int, values: dict[str, Any]) -> None:
    with crm.store.unit_of_work(crm.actor(username)) as uow:
        records.update_record(uow, records.resource(collection), record_id, values, None)


def recompute_health(crm: Crm) -> None:
    with crm.store.unit_of_work(None, "system") as uow:
        health.recompute_all(uow, datetime.now(UTC))


# --- account_overview -----------------------------------------------------------------------------------
async def test_overview_has_contacts_open_deals_activities_tickets_and_health(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(OVERVIEW, "tell me about Acme", "account_overview", [entity("record", "Acme")])
    lines = chat.text.splitlines()
    assert lines[0] == "Acme Corporation (Manufacturing, Prospect)."
    assert lines[1].startswith("Health ") and "/100" in lines[1] and "churn risk" in lines[1]
    assert "No activity recorded (-25)" in lines[1]  # the biggest driver comes first
    assert "Contacts: Raj Patel (Fleet Manager)." in lines
    assert "Open deals (1, $48,000): Acme - Fleet telematics (Negotiation, $48,000)." in lines
    assert "No activities yet." in lines
    assert "Open tickets (1): “Telematics dashboard not loading”." in lines
    assert "Acme - Pilot" not in chat.text  # won: not an open deal
    assert chat.slots["focus_record"] == f"account:{account_id(crm, 'Acme Corporation')}"


async def test_overview_follows_the_focus_deal_to_its_account(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionDealStatus(), "nimbus deal status", "deal_status", [entity("record", "nimbus")])
    await chat.say(OVERVIEW, "and the account?", "account_overview")
    assert chat.text.startswith("Nimbus Labs (Software, Prospect).")
    assert "Contacts: Dana Smith (VP Operations)." in chat.text
    assert "Latest activities: " in chat.text and "Task “Send the Nimbus proposal”, due " in chat.text
    assert "No open tickets." in chat.text


async def test_overview_shows_the_stored_health(crm: Crm) -> None:
    recompute_health(crm)
    with crm.store.unit_of_work() as uow:
        acme = uow.session.scalars(select(Account).where(Account.name == "Acme Corporation")).one()
        score, risk = acme.health_score, acme.churn_risk
    assert score is not None and risk is not None
    chat = crm.chat("alice")
    await chat.say(OVERVIEW, "rundown on acme corp", "account_overview", [entity("record", "acme corp")])
    assert f"Health {score}/100" in chat.text and f"({risk:.0%})" in chat.text


async def test_overview_of_another_reps_account_is_not_found_but_their_manager_sees_it(crm: Crm) -> None:
    alice = crm.chat("alice")
    for name in ("Globex", "Umbrella Health", "Hooli"):
        await alice.say(OVERVIEW, f"tell me about {name}", "account_overview", [entity("record", name)])
        assert alice.text.startswith(f"I can't find an account called “{name}”")
    assert "Lena" not in alice.text
    await alice.say(OVERVIEW, "tell me about Stark Logistics", "account_overview", [entity("record", "Stark")])
    assert "Route optimiser" not in alice.text and "$87,000" not in alice.text
    maria = crm.chat("maria")
    await maria.say(OVERVIEW, "what's going on with Globex", "account_overview", [entity("record", "Globex")])
    assert maria.text.startswith("Globex (Energy, Prospect).")
    assert "Contacts: Lena Fischer (CFO)." in maria.text
    assert "Open deals (1, $64,000): Globex - Data warehouse (Prospecting, $64,000)." in maria.text


async def test_overview_without_a_name_or_focus_asks_which_account(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(OVERVIEW, "give me the rundown", "account_overview")
    assert chat.text == "Which account do you mean? Tell me its name."


# --- find_contact ---------------------------------------------------------------------------------------
async def test_contacts_at_an_account_with_title_role_and_email(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(CONTACT, "who is our contact at Acme", "find_contact", [entity("record", "Acme")])
    assert chat.text == (
        "Our contact at Acme Corporation: Raj Patel, Fleet Manager (Champion) · raj.patel@acme.example."
    )
    assert chat.slots["focus_record"] == f"contact:{contact_id(crm, 'Patel')}"

    create(
        crm,
        "alice",
        "contacts",
        {
            "first_name": "Mia",
            "last_name": "Kowalski",
            "job_title": "CTO",
            "phone": "+1 555 0100",
            "account_id": account_id(crm, "Acme Corporation"),
        },
    )
    await chat.say(CONTACT, "who do we know at acme", "find_contact", [entity("record", "acme")])
    assert chat.text.splitlines() == [
        "2 contacts at Acme Corporation:",
        "1. Mia Kowalski, CTO · +1 555 0100",
        "2. Raj Patel, Fleet Manager (Champion) · raj.patel@acme.example",
    ]


async def test_a_named_persons_phone_and_then_her_email(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(CONTACT, "Dana Smith's phone number", "find_contact", [entity("record", "Dana Smith")])
    assert chat.text == "I have no phone number for Dana Smith. Email: dana.smith@nimbus.example."

    update(crm, "alice", "contacts", contact_id(crm, "Smith"), {"phone": "+1 555 010 2030", "call_opt_out": True})
    await chat.say(CONTACT, "Dana Smith's phone number", "find_contact", [entity("record", "Dana Smith")])
    assert chat.text == ("Dana Smith's phone: +1 555 010 2030. Email: dana.smith@nimbus.example. Prefers no calls.")
    await chat.say(CONTACT, "and her email?", "find_contact")
    assert chat.text.startswith("Dana Smith's email: dana.smith@nimbus.example.")

    await chat.say(CONTACT, "who is dana", "find_contact", [entity("record", "dana")])
    assert chat.text.splitlines()[0] == "Dana Smith at Nimbus Labs — VP Operations, Decision Maker."


async def test_its_contacts_uses_the_focus_account(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionDealStatus(), "nimbus deal status", "deal_status", [entity("record", "nimbus")])
    await chat.say(CONTACT, "and its contacts?", "find_contact")
    assert chat.text.startswith("Our contact at Nimbus Labs: Dana Smith, VP Operations (Decision Maker)")
    await chat.say(CONTACT, "and its contacts?", "find_contact")  # the focus is Dana now: still her account
    assert chat.text.startswith("Our contact at Nimbus Labs: Dana Smith")


async def test_an_account_without_contacts_says_so(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(CONTACT, "contacts at Initech", "find_contact", [entity("record", "Initech")])
    assert chat.text == "I have no contacts at Initech that you can see."


async def test_another_reps_contacts_are_never_shown(crm: Crm) -> None:
    alice = crm.chat("alice")
    await alice.say(CONTACT, "email for Lena Fischer", "find_contact", [entity("record", "Lena Fischer")])
    assert alice.text.startswith("I can't find a contact or account called “Lena Fischer”")
    await alice.say(CONTACT, "who is our contact at Globex", "find_contact", [entity("record", "Globex")])
    assert "Lena" not in alice.text and "globex.example" not in alice.text
    bob = crm.chat("bob")
    await bob.say(CONTACT, "who is our contact at Globex", "find_contact", [entity("record", "Globex")])
    assert bob.text == "Our contact at Globex: Lena Fischer, CFO (Economic Buyer) · lena.fischer@globex.example."


# --- list_signals ---------------------------------------------------------------------------------------
def signal(crm: Crm, username: str, account: str, title: str, confidence: float, category: str = "Negative") -> None:
    aid = account_id(crm, account)
    create(
        crm,
        username,
        "sales-signals",
        {
            "entity_type": "account",
            "entity_id": aid,
            "account_id": aid,
            "category": category,
            "signal_type": "deal_stalled",
            "title": title,
            "confidence": confidence,
        },
    )


async def test_signals_on_my_accounts_and_at_risk_accounts(crm: Crm) -> None:
    signal(crm, "alice", "Nimbus Labs", "Nimbus renewal stalled in Proposal", 0.9)
    signal(crm, "alice", "Acme Corporation", "Acme asked for a bigger fleet", 0.6, "Positive")
    signal(crm, "bob", "Globex", "Globex champion left", 0.95)
    recompute_health(crm)
    chat = crm.chat("alice")
    await chat.say(SIGNALS, "any signals on my accounts", "list_signals")
    lines = chat.text.splitlines()
    assert lines[0] == "2 sales signals on your accounts (newest first):"
    assert lines[1].startswith("1. Nimbus renewal stalled in Proposal [Nimbus Labs] (negative, 90% sure, ")
    assert lines[2].startswith("2. Acme asked for a bigger fleet [Acme Corporation] (positive, 60% sure, ")
    assert "Globex" not in chat.text

    with crm.store.unit_of_work(crm.actor("alice")) as uow:
        risky = uow.session.scalars(
            records.scoped(records.resource("accounts"), crm.actor("alice")).where(Account.churn_risk >= AT_RISK)
        ).all()
        owners = {a.owner_id for a in risky}
    assert owners == {crm.actor("alice").user_id}
    assert f"{len(risky)} accounts at risk: " in lines[-1]
    for other in ("Umbrella", "Stark", "Hooli", "Wayne"):
        assert other not in chat.text


async def test_health_and_signals_of_a_named_account(crm: Crm) -> None:
    signal(crm, "alice", "Nimbus Labs", "Nimbus renewal stalled in Proposal", 0.9)
    chat = crm.chat("alice")
    await chat.say(SIGNALS, "account health for Nimbus", "list_signals", [entity("record", "Nimbus")])
    lines = chat.text.splitlines()
    assert lines[0].startswith("Nimbus Labs: Health ") and "churn risk" in lines[0]
    assert lines[1:] == ["Signals (1, newest first):", lines[2]]
    assert lines[2].startswith("1. Nimbus renewal stalled in Proposal (negative, 90% sure, ")
    await chat.say(SIGNALS, "and how is Acme doing", "list_signals", [entity("record", "Acme")])
    assert chat.text.startswith("Acme Corporation: Health ") and chat.text.endswith("No sales signals on it.")
    await chat.say(SIGNALS, "is it at risk?", "list_signals")  # the focus
    assert chat.text.startswith("Acme Corporation: Health ")


async def test_signals_of_another_reps_account_are_not_shown(crm: Crm) -> None:
    signal(crm, "bob", "Globex", "Globex champion left", 0.95)
    chat = crm.chat("alice")
    await chat.say(SIGNALS, "account health for Globex", "list_signals", [entity("record", "Globex")])
    assert chat.text.startswith("I can't find an account called “Globex”")
    assert "champion" not in chat.text


async def test_no_signals_and_no_risk_is_said_plainly(crm: Crm) -> None:
    chat = crm.chat("carlos")
    await chat.say(SIGNALS, "buying signals?", "list_signals")
    assert chat.text == "No sales signals on your accounts right now.\nNo accounts at high risk of churning."
