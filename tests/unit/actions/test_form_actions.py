"""Creating records and qualifying leads through the forms: prefill from the request, answer
checks, read-back (with duplicates named), write only on yes, undo."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select

from actions.confirm import ActionConfirm, ActionDeny, ActionUndo
from actions.forms import (
    ActionStartForm,
    ActionSubmitForm,
    ValidateBantForm,
    ValidateContactForm,
    ValidateDealForm,
    ValidateLeadForm,
    email_or_phone,
    person_name,
)
from crm_backend.models import Contact, Deal, Lead, LeadStatus
from tests.unit.actions.conftest import Crm, entity


def lead_named(crm: Crm, last_name: str) -> list[Lead]:
    with crm.store.unit_of_work() as uow:
        return list(uow.session.scalars(select(Lead).where(Lead.last_name == last_name, Lead.deleted_at.is_(None))))


async def test_a_lead_from_one_sentence_and_one_answer(crm: Crm) -> None:
    chat = crm.chat("alice")
    text = "add a new lead Jane Doe from Contoso Pharma"
    await chat.say(
        ActionStartForm(),
        text,
        "create_lead",
        [entity("record", "Jane Doe"), entity("record", "Contoso Pharma")],
    )
    assert chat.slots["lead_name"] == "Jane Doe" and chat.slots["lead_company"] == "Contoso Pharma"
    assert chat.slots["lead_email"] is None  # the form will ask for it
    await chat.say(
        ValidateLeadForm(),
        "um it's jane.doe@contoso.example",
        "inform",
        filled={"lead_email": "um it's jane.doe@contoso.example"},
    )
    assert chat.slots["lead_email"] == "jane.doe@contoso.example" and chat.text == ""
    await chat.say(ActionSubmitForm(), "um it's jane.doe@contoso.example", "inform")
    assert "Create lead Jane Doe (Contoso Pharma, jane.doe@contoso.example)?" in chat.text
    assert lead_named(crm, "Doe") == []
    await chat.say(ActionConfirm(), "yes", "affirm")
    [lead] = lead_named(crm, "Doe")
    assert (lead.first_name, lead.company, lead.email) == ("Jane", "Contoso Pharma", "jane.doe@contoso.example")
    assert lead.owner_id == crm.actor("alice").user_id
    await chat.say(ActionUndo(), "undo that", "undo")
    assert "Undone: Created lead Jane Doe" in chat.text
    assert lead_named(crm, "Doe") == []


async def test_a_bad_answer_is_refused_with_a_reason(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionStartForm(), "new lead", "create_lead")
    await chat.say(ValidateLeadForm(), "whatever", "inform", filled={"lead_email": "whatever"})
    assert chat.slots["lead_email"] is None and "isn't an email address or a phone number" in chat.text
    await chat.say(ValidateLeadForm(), "skip", "inform", filled={"lead_email": "skip"})
    assert chat.slots["lead_email"] == "-"


async def test_a_likely_twin_is_named_before_creating(crm: Crm) -> None:
    chat = crm.chat("bob")
    await chat.say(
        ActionStartForm(),
        "add lead Tom Baker at Fabrikam, tom.baker@fabrikam.example",
        "create_lead",
        [entity("record", "Tom Baker"), entity("record", "Fabrikam")],
    )
    await chat.say(ActionSubmitForm(), "", "create_lead")
    assert "looks like an existing lead: Tom Baker (Fabrikam, tom.baker@fabrikam.example, same email)" in chat.text
    assert "Create a new lead anyway?" in chat.text
    await chat.say(ActionDeny(), "no", "deny")
    assert len(lead_named(crm, "Baker")) == 1


async def test_a_deal_with_checked_account_amount_and_date(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionStartForm(), "new deal for acme worth 50k", "create_deal", [entity("record", "acme")])
    assert chat.slots["deal_account"] == "acme" and chat.slots["deal_amount"] == "50000 USD"
    await chat.say(ValidateDealForm(), "", "inform", filled={"deal_account": "acme", "deal_amount": "50000 USD"})
    assert chat.slots["deal_account"].startswith("account:")
    await chat.say(ValidateDealForm(), "yesterday", "inform", filled={"deal_close_date": "yesterday"})
    assert chat.slots["deal_close_date"] is None and "in the past" in chat.text
    await chat.say(ValidateDealForm(), "in six weeks", "inform", filled={"deal_close_date": "in six weeks"})
    closes = date.fromisoformat(chat.slots["deal_close_date"])
    assert abs((closes - datetime.now(UTC).date()).days - 42) <= 1
    await chat.say(ValidateDealForm(), "skip", "inform", filled={"deal_name": "skip"})
    await chat.say(ActionSubmitForm(), "skip", "inform")
    assert "Create deal “Acme Corporation - New deal” with Acme Corporation: $50,000" in chat.text
    await chat.say(ActionConfirm(), "yes", "affirm")
    with crm.store.unit_of_work() as uow:
        deal = uow.session.scalars(select(Deal).where(Deal.name == "Acme Corporation - New deal")).one()
        assert deal.amount == Decimal("50000") and deal.expected_close_date == closes


async def test_an_account_the_rep_cannot_see_is_not_accepted(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionStartForm(), "new deal", "create_deal")
    await chat.say(ValidateDealForm(), "Globex", "inform", filled={"deal_account": "Globex"})
    assert chat.slots["deal_account"] is None and "can't find an account called “Globex”" in chat.text


async def test_bant_answers_qualify_the_lead(crm: Crm) -> None:
    chat = crm.chat("bob")
    await chat.say(ActionStartForm(), "qualify tom baker", "qualify_lead", [entity("record", "tom baker")])
    assert chat.slots["form_record"].startswith("lead:") and chat.text == ""
    answers = {
        "bant_budget": "yes, about 40k",
        "bant_authority": "yes he signs",
        "bant_need": "route planning for 40 vans",
        "bant_timeline": "this quarter",
    }
    for slot, said in answers.items():
        await chat.say(ValidateBantForm(), said, "inform", filled={slot: said})
    assert chat.slots["bant_budget"] == "40000" and chat.slots["bant_authority"] == "yes"
    await chat.say(ActionSubmitForm(), "this quarter", "inform")
    assert "Save the qualification of Tom Baker: budget $40,000, talking to the decision maker" in chat.text
    await chat.say(ActionConfirm(), "yes", "affirm")
    [lead] = lead_named(crm, "Baker")
    assert lead.status is LeadStatus.QUALIFIED and lead.budget == Decimal("40000") and lead.has_authority
    assert lead.need == "route planning for 40 vans"


async def test_qualifying_someone_elses_lead_closes_the_form_without_asking(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionStartForm(), "qualify tom baker", "qualify_lead", [entity("record", "tom baker")])
    assert "can't find" in chat.text and chat.slots["form_kind"] is None
    assert all(chat.slots[s] == "-" for s in ("bant_budget", "bant_authority", "bant_need", "bant_timeline"))
    await chat.say(ActionSubmitForm(), "", "qualify_lead")
    assert chat.text == "" and chat.slots.get("pending_write") is None


def test_answers_are_read_like_people_give_them() -> None:
    assert person_name("dana smith") == "Dana Smith"
    assert person_name("her name is Zoë O'Neil") == "Zoë O'Neil"
    assert person_name("42") is None
    assert email_or_phone("it's DANA@Nimbus.Example") == ("DANA@nimbus.example", None)
    assert email_or_phone("+1 (555) 010-2030") == (None, "+1 (555) 010-2030")
    assert email_or_phone("no idea") is None


async def test_contact_duplicates_are_checked_without_creating(crm: Crm) -> None:
    with crm.store.unit_of_work() as uow:
        before = len(uow.session.scalars(select(Contact)).all())
    chat = crm.chat("alice")
    await chat.say(
        ActionStartForm(),
        "add Dana Smith as a contact at Nimbus, dana.smith@nimbus.example",
        "create_contact",
        [entity("record", "Dana Smith"), entity("record", "Nimbus")],
    )
    await chat.say(ValidateContactForm(), "", "inform", filled={"contact_account": "Nimbus"})
    await chat.say(ActionSubmitForm(), "", "inform")
    assert "looks like an existing contact: Dana Smith" in chat.text
    with crm.store.unit_of_work() as uow:
        assert len(uow.session.scalars(select(Contact)).all()) == before
