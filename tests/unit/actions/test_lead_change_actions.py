"""Converting a lead and recomputing a score by conversation: read back, written only on yes,
undoable where the audit trail allows, and never on a record the user cannot see."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from actions.confirm import PENDING, ActionConfirm, ActionDeny, ActionUndo
from actions.lead_changes import ActionConvertLead, ActionRescoreLead, wants_deal
from crm_backend import events
from crm_backend.models import Account, Contact, Deal, Lead
from crm_backend.models.automation import EntityScore, EntityType
from crm_backend.models.leads import LeadStatus
from crm_backend.services import records
from tests.unit.actions.conftest import Crm, entity

TOM = [entity("record", "Tom Baker")]
NIMBUS_DEAL = "Nimbus Labs - Platform renewal"


def lead(crm: Crm, last_name: str = "Baker") -> Lead:
    with crm.store.unit_of_work() as uow:
        found: Lead = uow.session.scalars(select(Lead).where(Lead.last_name == last_name)).one()
        return found


def accounts_named(crm: Crm, name: str, *, live: bool = True) -> list[Account]:
    with crm.store.unit_of_work() as uow:
        stmt = select(Account).where(func.lower(Account.name) == name.lower())
        if live:
            stmt = stmt.where(Account.deleted_at.is_(None))
        return list(uow.session.scalars(stmt))


def contacts_of(crm: Crm, account_id: int) -> list[Contact]:
    with crm.store.unit_of_work() as uow:
        return list(
            uow.session.scalars(select(Contact).where(Contact.account_id == account_id, Contact.deleted_at.is_(None)))
        )


def deals_of_lead(crm: Crm, lead_id: int) -> list[Deal]:
    with crm.store.unit_of_work() as uow:
        return list(uow.session.scalars(select(Deal).where(Deal.lead_id == lead_id, Deal.deleted_at.is_(None))))


def score_row(crm: Crm, kind: EntityType, entity_id: int) -> EntityScore:
    with crm.store.unit_of_work() as uow:
        found = uow.session.scalars(
            select(EntityScore).where(EntityScore.entity_type == kind, EntityScore.entity_id == entity_id)
        ).one()
        return found


def make_score_stale(crm: Crm, lead_id: int, score: int) -> None:
    """As if the score was computed before something it depends on changed (a time-based rule, a model)."""
    with crm.store.unit_of_work() as uow, events.origin(uow.session, "scoring"):
        uow.session.execute(
            update(EntityScore)
            .where(EntityScore.entity_type == EntityType.LEAD, EntityScore.entity_id == lead_id)
            .values(score=score, grade="cold")
        )
        uow.session.execute(update(Lead).where(Lead.id == lead_id).values(score=score))


# --- converting -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "types", "amount", "expected"),
    [
        ("convert Tom Baker", [], False, False),
        ("turn the Fabrikam lead into an account", ["lead", "account"], False, False),
        ("convert that lead to a deal", ["lead", "deal"], False, True),
        ("make Yusuf a contact and create the opportunity", ["contact", "deal"], False, True),
        ("convert Tom with a deal worth 20k", [], True, True),
        ("convert Granite Peak without creating a deal", ["deal"], False, False),
        ("convert her, no deal yet", [], False, False),
    ],
)
def test_a_deal_is_created_only_when_the_user_asks_for_one(
    text: str, types: list[str], amount: bool, expected: bool
) -> None:
    assert wants_deal(text, types, amount) is expected


async def test_conversion_is_read_back_and_creates_account_and_contact_only_on_yes(crm: Crm) -> None:
    chat = crm.chat("bob")
    await chat.say(ActionConvertLead(), "convert Tom Baker", "convert_lead", TOM)
    assert "Convert lead Tom Baker (Fabrikam): create account Fabrikam and contact Tom Baker?" in chat.text
    assert "deal" not in chat.text
    assert [b["payload"] for b in chat.buttons][:2] == ["/affirm", "/deny"]
    assert lead(crm).status is LeadStatus.CONTACTED and accounts_named(crm, "Fabrikam") == []  # nothing yet

    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "Converted lead Tom Baker (Fabrikam): created account Fabrikam and contact Tom Baker." in chat.text
    (account,) = accounts_named(crm, "Fabrikam")
    assert account.owner_id == crm.actor("bob").user_id
    (contact,) = contacts_of(crm, account.id)
    assert (contact.first_name, contact.last_name, contact.email) == ("Tom", "Baker", "tom.baker@fabrikam.example")
    converted = lead(crm)
    assert converted.status is LeadStatus.CONVERTED and converted.converted_at is not None
    assert (converted.converted_account_id, converted.converted_contact_id) == (account.id, contact.id)
    assert deals_of_lead(crm, converted.id) == []
    assert chat.slots[PENDING] is None


async def test_conversion_with_a_deal_worth_20k_creates_the_deal(crm: Crm) -> None:
    chat = crm.chat("bob")
    await chat.say(
        ActionConvertLead(),
        "convert Tom Baker with a deal worth 20k",
        "convert_lead",
        [*TOM, entity("record_type", "deal")],
    )
    assert (
        "Convert lead Tom Baker (Fabrikam): create account Fabrikam and contact Tom Baker "
        "and a deal “Fabrikam - New business” for $20,000?"
    ) in chat.text
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "and a deal “Fabrikam - New business” for $20,000." in chat.text
    converted = lead(crm)
    (deal,) = deals_of_lead(crm, converted.id)
    assert (deal.name, deal.amount, deal.currency) == ("Fabrikam - New business", Decimal("20000"), "USD")
    assert deal.account_id == converted.converted_account_id and deal.contact_id == converted.converted_contact_id
    assert deal.owner_id == crm.actor("bob").user_id


async def test_conversion_reuses_an_account_with_the_same_company_name(crm: Crm) -> None:
    with crm.store.unit_of_work(crm.actor("bob")) as uow:
        existing = records.create_record(uow, records.resource("accounts"), {"name": "Fabrikam Inc"}).id
    chat = crm.chat("bob")
    await chat.say(
        ActionConvertLead(), "turn the fabrikam lead into an account", "convert_lead", [entity("record", "fabrikam")]
    )
    assert "Convert lead Tom Baker (Fabrikam): add contact Tom Baker to the existing account Fabrikam Inc?" in chat.text
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "added contact Tom Baker to the existing account Fabrikam Inc." in chat.text
    assert accounts_named(crm, "Fabrikam") == []  # no twin
    (contact,) = contacts_of(crm, existing)
    assert contact.last_name == "Baker" and lead(crm).converted_account_id == existing


async def test_no_converts_nothing(crm: Crm) -> None:
    chat = crm.chat("bob")
    await chat.say(ActionConvertLead(), "convert Tom Baker", "convert_lead", TOM)
    await chat.say(ActionDeny(), "no", "deny")
    assert "didn't change anything" in chat.text
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "nothing waiting" in chat.text
    assert lead(crm).status is LeadStatus.CONTACTED and accounts_named(crm, "Fabrikam") == []


async def test_undo_removes_what_the_conversion_created_and_reopens_the_lead(crm: Crm) -> None:
    chat = crm.chat("bob")
    await chat.say(
        ActionConvertLead(), "convert Tom Baker to a deal", "convert_lead", [*TOM, entity("record_type", "deal")]
    )
    await chat.say(ActionConfirm(), "yes", "affirm")
    converted = lead(crm)
    account_id, contact_id = converted.converted_account_id, converted.converted_contact_id
    assert account_id is not None and contact_id is not None and len(deals_of_lead(crm, converted.id)) == 1

    await chat.say(ActionUndo(), "undo that", "undo")
    assert "Undone: Converted lead Tom Baker (Fabrikam)" in chat.text and "removed 3 new records" in chat.text
    reopened = lead(crm)
    assert reopened.status is LeadStatus.CONTACTED
    assert (reopened.converted_at, reopened.converted_account_id, reopened.converted_contact_id) == (None, None, None)
    assert accounts_named(crm, "Fabrikam") == [] and contacts_of(crm, account_id) == []
    assert deals_of_lead(crm, reopened.id) == []
    # It can be converted again afterwards.
    await chat.say(ActionConvertLead(), "convert Tom Baker", "convert_lead", TOM)
    assert "Convert lead Tom Baker (Fabrikam): create account Fabrikam" in chat.text


async def test_an_already_converted_lead_is_not_read_back_again(crm: Crm) -> None:
    chat = crm.chat("bob")
    await chat.say(ActionConvertLead(), "convert Tom Baker", "convert_lead", TOM)
    await chat.say(ActionConfirm(), "yes", "affirm")
    await chat.say(ActionConvertLead(), "convert Tom Baker", "convert_lead", TOM)
    assert "Tom Baker was already converted on " in chat.text and "into the account Fabrikam" in chat.text
    assert chat.slots[PENDING] is None and not chat.buttons
    assert len(accounts_named(crm, "Fabrikam")) == 1


async def test_a_lead_edited_since_the_read_back_is_read_back_again(crm: Crm) -> None:
    chat = crm.chat("bob")
    await chat.say(ActionConvertLead(), "convert Tom Baker", "convert_lead", TOM)
    with crm.store.unit_of_work(crm.actor("bob")) as uow:
        records.update_record(uow, records.resource("leads"), lead(crm).id, {"company": "Fabrikam Europe"}, None)
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "changed since I read it back" in chat.text
    assert (
        "Convert lead Tom Baker (Fabrikam Europe): create account Fabrikam Europe and contact Tom Baker?" in chat.text
    )
    assert lead(crm).status is LeadStatus.CONTACTED
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert len(accounts_named(crm, "Fabrikam Europe")) == 1 and lead(crm).status is LeadStatus.CONVERTED


async def test_a_rep_cannot_convert_another_reps_lead(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionConvertLead(), "convert Tom Baker", "convert_lead", TOM)
    assert "can't find" in chat.text and "Fabrikam" not in chat.text
    assert chat.slots.get(PENDING) is None
    assert lead(crm).status is LeadStatus.CONTACTED


# --- rescoring ------------------------------------------------------------------------------------
async def test_rescore_is_read_back_and_recomputes_the_stored_score_on_yes(crm: Crm) -> None:
    tom = lead(crm)
    make_score_stale(crm, tom.id, 10)
    chat = crm.chat("bob")
    await chat.say(ActionRescoreLead(), "rescore Tom Baker", "rescore_lead", TOM)
    assert "Recompute the score of lead Tom Baker (now 10, cold)?" in chat.text
    assert score_row(crm, EntityType.LEAD, tom.id).score == 10  # nothing yet

    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "Recomputed the score of lead Tom Baker: 10 (cold) → 25 (cold). Top reasons: Warm source +25." in chat.text
    row = score_row(crm, EntityType.LEAD, tom.id)
    assert (row.score, row.previous_score, row.grade) == (25, 10, "cold")
    assert lead(crm).score == 25  # mirrored onto the lead


async def test_rescore_a_deal_that_is_up_to_date_says_it_stayed(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(
        ActionRescoreLead(),
        "rescore the nimbus deal",
        "rescore_lead",
        [entity("record", "nimbus"), entity("record_type", "deal")],
    )
    with crm.store.unit_of_work() as uow:
        deal_id = uow.session.scalars(select(Deal.id).where(Deal.name == NIMBUS_DEAL)).one()
    before = score_row(crm, EntityType.DEAL, deal_id)
    assert f"Recompute the score of deal “{NIMBUS_DEAL}” (now {before.score}, {before.grade})?" in chat.text
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert f"Recomputed the score of deal “{NIMBUS_DEAL}”: still {before.score} ({before.grade})." in chat.text
    assert "Late stage +25" in chat.text


async def test_no_leaves_the_score_as_it_was(crm: Crm) -> None:
    tom = lead(crm)
    make_score_stale(crm, tom.id, 10)
    chat = crm.chat("bob")
    await chat.say(ActionRescoreLead(), "rescore Tom Baker", "rescore_lead", TOM)
    await chat.say(ActionDeny(), "no", "deny")
    assert score_row(crm, EntityType.LEAD, tom.id).score == 10 and lead(crm).score == 10


async def test_the_rescore_of_a_kind_the_user_named_looks_only_at_that_kind(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(
        ActionRescoreLead(),
        "rescore the nimbus lead",
        "rescore_lead",
        [entity("record", "nimbus"), entity("record_type", "lead")],
    )
    assert "can't find a lead called “nimbus”" in chat.text and chat.slots.get(PENDING) is None


async def test_a_rep_cannot_rescore_another_reps_lead(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionRescoreLead(), "rescore Tom Baker", "rescore_lead", TOM)
    assert "can't find" in chat.text and "now 25" not in chat.text and chat.slots.get(PENDING) is None


async def test_rescoring_everything_at_once_is_declined(crm: Crm) -> None:
    chat = crm.chat("bob")
    await chat.say(ActionRescoreLead(), "rescore all my leads", "rescore_lead", [entity("record_type", "lead")])
    assert "one lead or deal at a time" in chat.text and chat.slots.get(PENDING) is None
