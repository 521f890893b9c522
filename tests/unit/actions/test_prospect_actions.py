"""The prospect qualification form as the action server runs it: a website visitor answers in any order,
skips, corrects and gives a bad email; the lead is written (deduped, routed, scored, transcript attached),
a demo is offered from the owner's calendar and booked with an invitation link. CRM users are refused."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from actions import prospect_answers as pa
from actions.forms import FORM_KIND
from actions.prospects import (
    DEMO_OFFER,
    ActionAskProspectConfirm,
    ActionBookDemo,
    ActionStartProspect,
    ActionSubmitProspect,
    ValidateProspectForm,
)
from crm_backend.models.activities import Activity, ActivityType, BookingType, CalendarBooking
from crm_backend.models.conversations import Conversation
from crm_backend.models.leads import Lead, LeadSource, LeadStatus
from crm_backend.models.notifications import Notification
from crm_backend.models.users import User
from crm_backend.services import calendar, conversations, prospects
from tests.unit.actions.conftest import SECRET, Chat, Crm

START, VALIDATE, ASK_CONFIRM = ActionStartProspect(), ValidateProspectForm(), ActionAskProspectConfirm()
SUBMIT, BOOK = ActionSubmitProspect(), ActionBookDemo()


def visitor(crm: Crm, conversation_id: str = "web-prospect-1") -> Chat:
    with crm.store.unit_of_work(None, "web") as uow:
        conversations.claim_visitor_conversation(uow, conversation_id, f"v-{conversation_id}", "web")
    chat = crm.chat("alice", conversation_id)
    chat.visitor, chat.channel = f"v-{conversation_id}", "web"
    return chat


async def answer(chat: Chat, text: str, intent: str = "inform") -> list[dict[str, Any]]:
    """The prospect answers the question the form asked (`requested_slot`); Rasa's from_text mapping has
    put the whole text into that slot before validation runs."""
    requested = chat.slots["requested_slot"]
    with chat.crm.store.unit_of_work(None, "web") as uow:
        conversations.record_turn(uow, chat.conversation_id, "user", text, None, sentiment=("positive", 0.6))
    return await chat.say(VALIDATE, text, intent, filled={requested: text})


def ask(chat: Chat) -> str:
    """The next question the form asks: the first required slot still empty."""
    slot = next(s for s in pa.SLOTS if chat.slots.get(s) is None)
    chat.slots["requested_slot"] = slot
    return slot


async def qualify(chat: Chat, answers: dict[str, str]) -> None:
    await chat.say(START, "hi, we'd like to see a demo", "request_demo")
    while (slot := ask(chat)) != pa.CONFIRM:
        await answer(chat, answers[slot])
    await chat.say(ASK_CONFIRM, answers[pa.CONTACT], "inform")
    await answer(chat, "yes", "affirm")
    assert chat.slots[pa.CONFIRM] == "yes"


FULL = {
    pa.NEED: "tracking deals and follow-ups for our 8 reps",
    pa.TIMELINE: "before March",
    pa.BUDGET: "about 20k a year",
    pa.AUTHORITY: "yes, I sign off on it",
    pa.NAME: "Priya Raman",
    pa.COMPANY: "Lumen Dental",
    pa.CONTACT: "priya@lumendental.example",
}


async def test_the_request_itself_gives_the_need_and_answers_come_in_any_order(crm: Crm) -> None:
    chat = visitor(crm)
    await chat.say(
        START, "we're a 12 person agency moving off spreadsheets, could someone show us around?", "request_demo"
    )
    assert chat.slots[FORM_KIND] == "prospect"
    assert chat.slots[pa.NEED] == "we're a 12 person agency moving off spreadsheets"  # without the ask itself
    assert "skip any" in chat.text
    assert ask(chat) == pa.TIMELINE
    await answer(chat, "we have about 20k and need it before March")
    assert chat.slots[pa.BUDGET] == "20000 USD"
    assert chat.slots[pa.TIMELINE] == "before March"
    assert chat.text == ""  # no complaint: the next question follows
    assert ask(chat) == pa.AUTHORITY


async def test_an_answer_for_another_question_leaves_the_asked_one_open(crm: Crm) -> None:
    chat = visitor(crm)
    await chat.say(START, "demo please", "request_demo")
    assert chat.slots[pa.NEED] is None
    ask(chat)
    await answer(chat, "20k, and before March")  # asked about the need
    assert chat.slots[pa.NEED] is None
    assert chat.slots[pa.BUDGET] == "20000 USD" and chat.slots[pa.TIMELINE] == "before March"
    assert ask(chat) == pa.NEED


async def test_skips_bad_emails_and_corrections(crm: Crm) -> None:
    chat = visitor(crm)
    await chat.say(START, "can someone from sales contact me", "request_demo")
    ask(chat)
    await answer(chat, "a shared inbox and pipeline for our support team")
    ask(chat)
    await answer(chat, "no rush")
    assert ask(chat) == pa.BUDGET
    await answer(chat, "rather not say")
    assert chat.slots[pa.BUDGET] == pa.SKIPPED
    assert ask(chat) == pa.AUTHORITY
    await answer(chat, "actually we have about 30k, my boss decides")
    assert chat.slots[pa.BUDGET] == "30000 USD"
    assert chat.slots[pa.AUTHORITY] == "no"
    assert ask(chat) == pa.NAME
    await answer(chat, "I'm Jonas Weber from Weber Logistik")
    assert (chat.slots[pa.NAME], chat.slots[pa.COMPANY]) == ("Jonas Weber", "Weber Logistik")
    assert ask(chat) == pa.CONTACT
    await answer(chat, "jonas@weber-logistik")
    assert chat.slots[pa.CONTACT] is None
    assert "doesn't look like a complete email" in chat.text
    await answer(chat, "sorry: jonas@weber-logistik.example")
    assert chat.slots[pa.CONTACT] == "jonas@weber-logistik.example"
    assert ask(chat) == pa.CONFIRM
    await chat.say(ASK_CONFIRM, "", "inform")
    assert "Budget: $30,000" in chat.text and "someone else decides" in chat.text
    await answer(chat, "no", "deny")
    assert chat.slots[pa.CONFIRM] is None
    await chat.say(ASK_CONFIRM, "no", "deny")
    assert "what should I change" in chat.text
    await answer(chat, "the budget is 45k")
    assert chat.slots[pa.BUDGET] == "45000 USD"
    assert "changed the budget to $45,000" in chat.text
    assert chat.slots[pa.CONFIRM] is None
    await answer(chat, "yes that's right", "affirm")
    assert chat.slots[pa.CONFIRM] == "yes"


async def test_submit_writes_a_routed_scored_lead_with_the_transcript_and_offers_demo_times(crm: Crm) -> None:
    chat = visitor(crm)
    await qualify(chat, FULL)
    await chat.say(SUBMIT, "yes", "affirm")
    with crm.store.unit_of_work(None, "test", read_only=True) as uow:
        lead = uow.session.scalar(select(Lead).where(Lead.email == "priya@lumendental.example"))
        assert lead is not None
        assert (lead.first_name, lead.last_name, lead.company) == ("Priya", "Raman", "Lumen Dental")
        assert lead.source is LeadSource.WEBSITE
        assert lead.status is LeadStatus.QUALIFIED
        assert lead.budget == 20000 and lead.has_authority is True
        assert lead.timeline == "before March" and "8 reps" in (lead.need or "")
        owner = uow.session.get(User, lead.owner_id)
        assert owner is not None and owner.role.value == "rep"
        owner_name = owner.full_name
        assert uow.session.get(Conversation, chat.conversation_id).lead_id == lead.id
        note = uow.session.scalar(
            select(Activity).where(Activity.lead_id == lead.id, Activity.type == ActivityType.NOTE)
        )
        assert note is not None and "before March" in (note.description or "")
        assert "[positive +0.60]" in (note.description or "")
        assert "mood positive" in (lead.description or "")
        assert lead.score >= prospects.HOT_SCORE  # the starter rules: BANT known, buyer qualified in chat, …
        hot = uow.session.scalar(select(Notification).where(Notification.kind == "hot_lead"))
        assert hot is not None and hot.user_id == lead.owner_id and hot.entity_id == lead.id
    assert owner_name in chat.text
    offer = chat.slots[DEMO_OFFER]
    assert 1 <= len(offer) <= 3
    assert [b["payload"] for b in chat.buttons][:2] == ['/affirm{"demo_slot":"1"}', '/affirm{"demo_slot":"2"}'][
        : len(offer)
    ]
    assert all(chat.slots[s] is None for s in pa.SLOTS) and chat.slots[FORM_KIND] is None


async def test_a_returning_prospect_updates_their_lead_instead_of_making_a_twin(crm: Crm) -> None:
    first = visitor(crm, "web-first")
    await qualify(first, FULL)
    await first.say(SUBMIT, "yes", "affirm")
    again = visitor(crm, "web-again")
    await qualify(again, {**FULL, pa.BUDGET: "50k", pa.NAME: "Priya R", pa.COMPANY: "Lumen Dental Group"})
    await again.say(SUBMIT, "yes", "affirm")
    with crm.store.unit_of_work(None, "test", read_only=True) as uow:
        leads = list(uow.session.scalars(select(Lead).where(Lead.email == "priya@lumendental.example")))
        assert len(leads) == 1
        assert leads[0].budget == 50000
        notes = list(uow.session.scalars(select(Activity).where(Activity.lead_id == leads[0].id)))
        assert len(notes) == 2  # one transcript per conversation


async def test_an_existing_customer_contact_gets_no_lead_and_their_owner_hears(crm: Crm) -> None:
    with crm.store.unit_of_work(None, "test", read_only=True) as uow:
        from crm_backend.models.contacts import Contact

        contact = uow.session.scalar(select(Contact).where(Contact.email.is_not(None)).order_by(Contact.id))
        assert contact is not None
        email, owner_id, contact_id = contact.email, contact.owner_id, contact.id
        before = uow.session.scalar(select(Lead.id).order_by(Lead.id.desc()))
    chat = visitor(crm)
    await qualify(chat, {**FULL, pa.CONTACT: email})
    await chat.say(SUBMIT, "yes", "affirm")
    assert "already one of our customers" in chat.text
    with crm.store.unit_of_work(None, "test", read_only=True) as uow:
        assert uow.session.scalar(select(Lead.id).order_by(Lead.id.desc())) == before
        assert uow.session.get(Conversation, chat.conversation_id).contact_id == contact_id
        told = uow.session.scalar(
            select(Notification).where(Notification.user_id == owner_id, Notification.kind == "prospect")
        )
        assert told is not None


async def test_yes_books_the_demo_with_the_owner_and_links_an_invitation(crm: Crm) -> None:
    chat = visitor(crm)
    await qualify(chat, FULL)
    await chat.say(SUBMIT, "yes", "affirm")
    offered = [dt.datetime.fromisoformat(s) for s in chat.slots[DEMO_OFFER]]
    await chat.say(BOOK, "/affirm", "affirm", [{"entity": "demo_slot", "value": "2", "extractor": None, "_text": "2"}])
    assert "Booked: a 30-minute demo" in chat.text
    token = re.search(r"/widget/invites/([\w.-]+)\.ics", chat.text)
    assert token is not None
    assert chat.slots[DEMO_OFFER] is None
    with crm.store.unit_of_work(None, "test", read_only=True) as uow:
        booking = prospects.invited_booking(uow, SECRET, token.group(1))
        assert booking.type is BookingType.DEMO
        assert booking.start_at == offered[1]
        assert "mailto:priya@lumendental.example" in calendar.booking_ics(uow, booking).decode().replace("\r\n ", "")
        assert (
            len(list(uow.session.scalars(select(CalendarBooking).where(CalendarBooking.lead_id == booking.lead_id))))
            == 1
        )


async def test_no_thanks_books_nothing(crm: Crm) -> None:
    chat = visitor(crm)
    await qualify(chat, FULL)
    await chat.say(SUBMIT, "yes", "affirm")
    await chat.say(BOOK, "no thanks", "deny")
    assert "our team will be in touch" in chat.text
    with crm.store.unit_of_work(None, "test", read_only=True) as uow:
        assert uow.session.scalar(select(CalendarBooking).where(CalendarBooking.type == BookingType.DEMO)) is None


async def test_a_crm_user_is_not_a_prospect(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(START, "I'd like a demo", "request_demo")
    assert "add a new lead" in chat.text
    assert chat.slots[FORM_KIND] is None
    assert all(chat.slots[s] == pa.SKIPPED for s in pa.SLOTS)  # the form closes at once, nothing written


async def test_a_person_asked_for_mid_form_takes_nothing_so_the_handoff_rule_runs(crm: Crm) -> None:
    chat = visitor(crm)
    await chat.say(START, "demo please", "request_demo")
    ask(chat)
    # Rasa's from_text mapping skips human_handoff (domain.yml not_intent), so nothing is filled...
    await chat.say(VALIDATE, "agent please", "human_handoff")
    assert chat.events == []  # ...and validation takes nothing: the form is rejected and the handoff rule runs
    assert chat.slots[pa.NEED] is None


async def test_wanting_a_person_however_the_nlu_read_it_hands_over_and_keeps_the_answers(crm: Crm) -> None:
    chat = visitor(crm)
    await chat.say(START, "demo please", "request_demo")
    ask(chat)
    await answer(chat, "CRM for our 5 recruiters")
    ask(chat)
    await answer(chat, "this is taking ages, is there a real human I can talk to", "bot_challenge")
    assert {"handoff": "requested"} in [m.get("custom") for m in chat.replies]
    assert chat.slots[FORM_KIND] is None  # the form closes: submit writes nothing
    assert chat.slots[pa.NEED] == "CRM for our 5 recruiters"  # the ticket's BANT snapshot still has it
    assert chat.slots[pa.TIMELINE] == pa.SKIPPED


async def test_an_email_read_as_help_is_still_the_answer(crm: Crm) -> None:
    chat = visitor(crm)
    await chat.say(START, "demo please", "request_demo")
    for slot in pa.ANSWER_SLOTS[:-1]:
        chat.slots[slot] = pa.SKIPPED
    assert ask(chat) == pa.CONTACT
    await chat.say(VALIDATE, "ilse@vandamme.example", "help")  # Rasa filled nothing (help is not_intent)
    assert chat.slots[pa.CONTACT] == "ilse@vandamme.example"


async def test_a_demo_time_taken_meanwhile_gets_the_times_free_now(crm: Crm) -> None:
    chat = visitor(crm)
    await qualify(chat, FULL)
    await chat.say(SUBMIT, "yes", "affirm")
    first = dt.datetime.fromisoformat(chat.slots[DEMO_OFFER][0])
    with crm.store.unit_of_work(None, "test") as uow:
        lead = uow.session.scalar(select(Lead).where(Lead.email == "priya@lumendental.example"))
        assert lead is not None
        uow.session.add(
            CalendarBooking(title="Taken", start_at=first, end_at=first + dt.timedelta(hours=1), owner_id=lead.owner_id)
        )
    await chat.say(BOOK, "yes", "affirm")
    assert "was just taken" in chat.text and "These times are free now" in chat.text
    assert first.isoformat() not in chat.slots[DEMO_OFFER] and chat.slots[DEMO_OFFER]
    await chat.say(BOOK, "the first one", "choose_record")
    assert "Booked:" in chat.text


async def test_a_product_question_mid_form_is_answered_and_the_question_stays_open(crm: Crm) -> None:
    chat = visitor(crm)
    await chat.say(START, "demo please", "request_demo")
    ask(chat)
    await answer(chat, "quick one - is the data hosted in the EU? we're bound by GDPR", "ask_product_question")
    assert "talk to a person" in chat.text  # no embedder in this runtime: the "can't look it up" answer
    assert chat.slots[pa.NEED] is None


async def test_names_said_in_passing_do_not_replace_given_ones_but_corrections_do(crm: Crm) -> None:
    chat = visitor(crm)
    await chat.say(START, "demo please", "request_demo")
    for slot, value in ((pa.NEED, "a pipeline"), (pa.TIMELINE, "soon"), (pa.BUDGET, "-"), (pa.AUTHORITY, "yes")):
        chat.slots[slot] = value
    assert ask(chat) == pa.NAME
    await answer(chat, "Dwight Okonkwo, Harbourline Marine")
    assert (chat.slots[pa.NAME], chat.slots[pa.COMPANY]) == ("Dwight Okonkwo", "Harbourline Marine")
    assert ask(chat) == pa.CONTACT
    await answer(chat, "I'm at Okonkwo Sailing on weekends, dwight@harbourline.example")
    assert chat.slots[pa.COMPANY] == "Harbourline Marine"  # mentioned, not a correction
    assert chat.slots[pa.CONTACT] == "dwight@harbourline.example"
    ask(chat)
    await answer(chat, "sorry, my name is Dwight Okonkwo-Bell")
    assert chat.slots[pa.NAME] == "Dwight Okonkwo-Bell"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("we have about 20k and need it before March", {pa.BUDGET: "20000 USD", pa.TIMELINE: "before March"}),
        (
            "I'm Priya from Lumen Dental, priya@lumendental.com",
            {pa.NAME: "Priya", pa.COMPANY: "Lumen Dental", pa.CONTACT: "priya@lumendental.com"},
        ),
        ("not me, our COO decides", {pa.AUTHORITY: "no"}),
        ("it's me and our CFO", {pa.AUTHORITY: "shared"}),
        ("call me on +44 7700 900456", {pa.CONTACT: "+44 7700 900456"}),
        ("around 15 grand a year, asap", {pa.BUDGET: "15000 USD", pa.TIMELINE: "asap"}),
        ("we're 8 reps in 2 offices", {}),
        ("the budget's 11k, we got extra approved this week", {pa.BUDGET: "11000 USD"}),
        (
            "Hello, Marisol Quintero here. We need it before the end of the year",
            {pa.NAME: "Marisol Quintero", pa.TIMELINE: "before the end of the year"},
        ),
        ("mostly referrals from GPs", {}),
        ("I make the final call, with input from our CFO", {pa.AUTHORITY: "shared"}),
        ("i'm looking for a crm", {}),
    ],
)
def test_answers_volunteered_out_of_order(text: str, expected: dict[str, str]) -> None:
    assert pa.volunteered(text) == expected


@pytest.mark.parametrize(
    ("slot", "text", "value"),
    [
        (pa.BUDGET, "20000", "20000 USD"),
        (pa.BUDGET, "no budget yet", pa.SKIPPED),
        (pa.BUDGET, "lots", None),
        (pa.AUTHORITY, "yep", "yes"),
        (pa.AUTHORITY, "my boss", "no"),
        (pa.AUTHORITY, "me and our cfo", "shared"),
        (pa.NAME, "Jonas Weber, weber-logistik.de", "Jonas Weber"),
        (pa.NAME, "yes", None),
        (pa.COMPANY, "we're Lumen Dental", "Lumen Dental"),
        (pa.COMPANY, "just me, freelancer", pa.SKIPPED),
        (pa.CONTACT, "jane@contoso", None),
        (pa.CONTACT, "skip", pa.SKIPPED),
        (pa.CONTACT, "+1 (555) 010-2030", "+1 (555) 010-2030"),
        (pa.TIMELINE, "by Q2 ideally", "by Q2 ideally"),
        (pa.NEED, "ok", None),
        (pa.NEED, "dunno", pa.SKIPPED),
        (pa.BUDGET, "not much, maybe 200 a month", "200 USD"),
        (pa.AUTHORITY, "myself", "yes"),
        (pa.AUTHORITY, "the final call is mine", "yes"),
        (pa.TIMELINE, "no rush, maybe summer", "no rush, maybe summer"),
        (pa.CONTACT, "i'd rather not say for now", pa.SKIPPED),
        (pa.COMPANY, "is the data hosted in the EU?", None),
    ],
)
def test_answers_to_the_question_asked(slot: str, text: str, value: str | None) -> None:
    assert pa.check(slot, text, dt.datetime(2026, 11, 26, tzinfo=dt.UTC))[0] == value
