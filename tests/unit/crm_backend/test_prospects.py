"""A prospect's lead on a real database: routing (account owner, territory by the phone's country, round
robin that survives restarts), a hot lead's owner told once, the BANT snapshot a handoff ticket carries,
demo times from the owner's free calendar, booking (taken, too soon, once per conversation) and the
invitation token."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_backend.errors import Conflict, NotFound, ValidationFailed
from crm_backend.models.accounts import Account
from crm_backend.models.activities import CalendarBooking
from crm_backend.models.leads import Lead
from crm_backend.models.notifications import Notification
from crm_backend.models.service_desk import Ticket
from crm_backend.models.territories import Territory
from crm_backend.models.users import User
from crm_backend.scoring import defaults
from crm_backend.services import conversations, handoff, prospects
from tests.conftest import Demo

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)  # a Thursday


def chat(demo: Demo, name: str, mood: float = 0.2) -> str:
    conversation_id = f"web-{name}"
    with demo.store.unit_of_work(None, "web") as uow:
        conversations.claim_visitor_conversation(uow, conversation_id, f"v-{name}", "web")
        conversations.record_turn(uow, conversation_id, "user", "hi, we'd like a demo", sentiment=("neutral", mood))
        conversations.record_turn(uow, conversation_id, "bot", "Happy to help with that!")
    return conversation_id


def capture(demo: Demo, conversation_id: str, **answers: object) -> prospects.Captured:
    with demo.store.unit_of_work(None, "prospect") as uow:
        return prospects.capture(uow, conversation_id, answers, now=NOW)


def test_bad_answers_are_refused_and_nothing_is_written(demo: Demo) -> None:
    conversation_id = chat(demo, "bad")
    with pytest.raises(ValidationFailed):
        capture(demo, conversation_id, name="Ana Lima", email="ana@@nowhere", budget="-5")
    with demo.store.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(Lead).where(Lead.last_name == "Lima")) is None


def test_a_company_with_an_account_goes_to_the_accounts_owner(demo: Demo) -> None:
    with demo.store.unit_of_work(read_only=True) as uow:
        account = uow.session.scalar(select(Account).where(Account.owner_id.is_not(None)).order_by(Account.id))
        assert account is not None
        name, owner = account.name, account.owner_id
    captured = capture(demo, chat(demo, "acct"), name="Lee Park", company=name, email="lee@example.org")
    assert captured.owner_id == owner and captured.created


def test_the_phones_country_picks_the_territory_and_new_leads_rotate_through_its_reps(demo: Demo) -> None:
    with demo.store.unit_of_work(None, "test") as uow:
        territory = Territory(name="North America", country="US")
        uow.session.add(territory)
        uow.session.flush()
        reps = list(uow.session.scalars(select(User).where(User.role == "rep").order_by(User.id)))[:2]
        for rep in reps:
            rep.territory_id = territory.id
        rep_ids = {rep.id for rep in reps}
        territory_id = territory.id
    owners = []
    for n in range(4):
        captured = capture(demo, chat(demo, f"us-{n}"), name=f"Pat Doe{n}", phone=f"+1 415 555 01{n:02d}")
        owners.append(captured.owner_id)
    assert set(owners) == rep_ids
    assert owners[0] != owners[1] and owners[2] != owners[3]  # round robin, read from the leads themselves
    with demo.store.unit_of_work(read_only=True) as uow:
        lead = uow.session.scalar(select(Lead).where(Lead.last_name == "Doe0"))
        assert lead is not None and lead.country == "US" and lead.territory_id == territory_id


def test_a_hot_lead_tells_its_owner_once_and_a_cold_one_does_not(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    with demo.store.unit_of_work(None, "test") as uow:
        defaults.install_default_rules(uow, demo.actor("admin").user_id)
    cold = capture(demo, chat(demo, "cold"), name="Cold Caller")
    assert not cold.hot
    monkeypatch.setattr(prospects, "HOT_SCORE", 1)  # any scored lead is hot now
    conversation_id = chat(demo, "hot")
    hot = capture(
        demo,
        conversation_id,
        name="Hana Sato",
        company="Sato Labs",
        email="hana@satolabs.example",
        budget=Decimal(90000),
        has_authority=True,
        need="CRM for 30 reps",
        timeline="next month",
    )
    again = capture(demo, conversation_id, name="Hana Sato", email="hana@satolabs.example", budget=Decimal(95000))
    assert hot.hot and again.lead_id == hot.lead_id and not again.created
    with demo.store.unit_of_work(read_only=True) as uow:
        told = list(uow.session.scalars(select(Notification).where(Notification.kind == "hot_lead")))
        assert [(n.user_id, n.entity_id) for n in told] == [(hot.owner_id, hot.lead_id)]
        assert "Hana Sato" in told[0].title


def test_a_handoff_ticket_carries_the_leads_bant(demo: Demo) -> None:
    conversation_id = chat(demo, "ticket")
    capture(
        demo,
        conversation_id,
        name="Ola Berg",
        email="ola@berg.example",
        budget=Decimal(12000),
        has_authority=False,
        need="support inbox",
        timeline="Q2",
    )
    with demo.store.unit_of_work(None, "web") as uow:
        escalated = handoff.escalate(uow, conversation_id, "requested", now=NOW)
    with demo.store.unit_of_work(read_only=True) as uow:
        ticket = uow.session.get(Ticket, escalated.ticket_id)
        assert ticket is not None and ticket.lead_id is not None
        assert ticket.bant["budget"] == "12000.00" and ticket.bant["has_authority"] is False
        assert ticket.bant["timeline"] == "Q2"


def test_a_form_snapshot_keeps_only_the_answers_given() -> None:
    slots = {prospects.BUDGET: "20000 USD", prospects.TIMELINE: "before March", prospects.NAME: prospects.SKIPPED}
    assert prospects.form_snapshot(slots) == {"budget": "20000", "timeline": "before March"}
    assert prospects.form_snapshot({prospects.CONFIRM: "yes"}) == {}


def test_demo_times_skip_the_owners_meetings_and_booking_checks_the_time(demo: Demo) -> None:
    conversation_id = chat(demo, "demo")
    captured = capture(demo, conversation_id, name="Rui Costa", email="rui@costa.example")
    with demo.store.unit_of_work(None, "prospect") as uow:
        free = prospects.demo_slots(uow, captured.owner_id, NOW)
        assert len(free) == 3 and len({s.date() for s in free}) == 3
        assert all(s >= NOW + prospects.DEMO_NOTICE for s in free)
        uow.session.add(
            CalendarBooking(
                title="Busy", start_at=free[0], end_at=free[0] + dt.timedelta(hours=1), owner_id=captured.owner_id
            )
        )
    with demo.store.unit_of_work(None, "prospect") as uow:
        assert free[0] not in prospects.demo_slots(uow, captured.owner_id, NOW)
    with demo.store.unit_of_work(None, "prospect") as uow, pytest.raises(Conflict, match="taken"):
        prospects.book_demo(uow, conversation_id, free[0], NOW)
    with demo.store.unit_of_work(None, "prospect") as uow, pytest.raises(Conflict, match="too soon"):
        prospects.book_demo(uow, conversation_id, NOW + dt.timedelta(minutes=10), NOW)
    with demo.store.unit_of_work(None, "prospect") as uow:
        booked = prospects.book_demo(uow, conversation_id, free[1], NOW)
        booked_id = booked.id
    with demo.store.unit_of_work(None, "prospect") as uow:  # asking again: the same demo, not a second one
        assert prospects.book_demo(uow, conversation_id, free[2], NOW).id == booked_id


def test_invitation_tokens_name_one_demo_and_cannot_be_forged(demo: Demo) -> None:
    conversation_id = chat(demo, "invite")
    captured = capture(demo, conversation_id, name="Ines Vidal", email="ines@vidal.example")
    with demo.store.unit_of_work(None, "prospect") as uow:
        start = prospects.demo_slots(uow, captured.owner_id, NOW)[0]
        booking_id = prospects.book_demo(uow, conversation_id, start, NOW).id
    token = prospects.invite_token("secret", booking_id)
    with demo.store.unit_of_work(read_only=True) as uow:
        assert prospects.invited_booking(uow, "secret", token).id == booking_id
        for forged in (token[:-2] + "xx", prospects.invite_token("other", booking_id), "1"):
            with pytest.raises(NotFound):
                prospects.invited_booking(uow, "secret", forged)


def test_without_a_lead_there_is_no_demo(demo: Demo) -> None:
    conversation_id = chat(demo, "nolead")
    with demo.store.unit_of_work(None, "prospect") as uow, pytest.raises(Conflict):
        prospects.book_demo(uow, conversation_id, NOW + dt.timedelta(days=1), NOW)
