"""Confirm, then write; undo; "which one?" and "no, the other one" — on a deal update, end to end
through the actions with a real database."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from actions.choose import ActionChooseOther, ActionChooseRecord
from actions.confirm import PENDING, ActionConfirm, ActionDeny, ActionStop, ActionUndo
from actions.deal_updates import ActionUpdateDeal
from crm_backend.models import STAGE_PROBABILITY, AssistantChange, AuditLog, Deal, DealStage
from crm_backend.services import records
from tests.unit.actions.conftest import Crm, entity

MOVE = "move the nimbus deal to negotiation"
NIMBUS = [entity("record", "Nimbus", "nimbus"), entity("stage", "Negotiation", "negotiation")]


def deal(crm: Crm, name: str) -> Deal:
    with crm.store.unit_of_work() as uow:
        found: Deal = uow.session.scalars(select(Deal).where(Deal.name == name)).one()
        return found


async def test_a_change_is_read_back_and_written_only_on_yes(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionUpdateDeal(), MOVE, "update_deal", NIMBUS)
    assert "Move “Nimbus Labs - Platform renewal” from Proposal to Negotiation, amount stays $125,000?" in chat.text
    assert [b["payload"] for b in chat.buttons][:2] == ["/affirm", "/deny"]
    assert deal(crm, "Nimbus Labs - Platform renewal").stage is DealStage.PROPOSAL  # nothing yet

    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "Moved “Nimbus Labs - Platform renewal” from Proposal to Negotiation" in chat.text
    changed = deal(crm, "Nimbus Labs - Platform renewal")
    assert changed.stage is DealStage.NEGOTIATION and changed.probability == STAGE_PROBABILITY[DealStage.NEGOTIATION]
    assert chat.slots[PENDING] is None
    with crm.store.unit_of_work() as uow:
        audit = uow.session.scalars(
            select(AuditLog).where(AuditLog.entity_type == "deals", AuditLog.entity_id == changed.id)
        ).all()[-1]
        assert audit.channel == "api" and audit.user_id == crm.actor("alice").user_id
        assert audit.change_set and audit.changes["stage"] == ["Proposal", "Negotiation"]


async def test_a_spoken_change_is_audited_with_a_voice_flag_and_what_was_heard(crm: Crm) -> None:
    chat = crm.chat("alice")
    chat.channel, chat.spoken = "telegram", True
    await chat.say(ActionUpdateDeal(), MOVE, "update_deal", NIMBUS)
    assert chat.slots[PENDING]["heard"] == MOVE
    await chat.say(ActionConfirm(), "yes", "affirm")
    changed = deal(crm, "Nimbus Labs - Platform renewal")
    with crm.store.unit_of_work() as uow:
        audit = uow.session.scalars(
            select(AuditLog).where(AuditLog.entity_type == "deals", AuditLog.entity_id == changed.id)
        ).all()[-1]
        assert audit.channel == "telegram:voice" and audit.transcript == f"{MOVE} → yes"


async def test_no_writes_nothing(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionUpdateDeal(), MOVE, "update_deal", NIMBUS)
    await chat.say(ActionDeny(), "no", "deny")
    assert "didn't change anything" in chat.text
    await chat.say(ActionConfirm(), "yes", "affirm")  # a late yes finds nothing to apply
    assert "nothing waiting" in chat.text
    assert deal(crm, "Nimbus Labs - Platform renewal").stage is DealStage.PROPOSAL


async def test_stop_drops_the_read_back(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionUpdateDeal(), MOVE, "update_deal", NIMBUS)
    await chat.say(ActionStop(), "never mind", "stop")
    assert "Nothing was saved" in chat.text and chat.slots[PENDING] is None


async def test_a_record_changed_since_the_read_back_is_asked_again_not_overwritten(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionUpdateDeal(), "make the nimbus deal 130k", "update_deal", [entity("record", "Nimbus")])
    assert "amount $125,000 → $130,000" in chat.text
    target = deal(crm, "Nimbus Labs - Platform renewal")
    with crm.store.unit_of_work(crm.actor("alice")) as uow:  # someone else edits it meanwhile
        records.update_record(uow, records.resource("deals"), target.id, {"amount": "140000"}, None)
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "changed since I read it back" in chat.text and "amount $140,000 → $130,000" in chat.text
    assert deal(crm, "Nimbus Labs - Platform renewal").amount == Decimal("140000")
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert deal(crm, "Nimbus Labs - Platform renewal").amount == Decimal("130000")


async def test_undo_reverts_the_last_confirmed_change(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionUpdateDeal(), MOVE, "update_deal", NIMBUS)
    await chat.say(ActionConfirm(), "yes", "affirm")
    await chat.say(ActionUndo(), "undo that", "undo")
    assert "Undone: Moved “Nimbus Labs - Platform renewal” from Proposal to Negotiation" in chat.text
    restored = deal(crm, "Nimbus Labs - Platform renewal")
    assert restored.stage is DealStage.PROPOSAL and restored.probability == 50
    with crm.store.unit_of_work() as uow:
        assert uow.session.scalars(select(AssistantChange)).one().undone_at is not None
    await chat.say(ActionUndo(), "undo", "undo")
    assert "no change of yours" in chat.text
    assert deal(crm, "Nimbus Labs - Platform renewal").stage is DealStage.PROPOSAL


async def test_undo_refuses_when_someone_changed_the_field_since(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionUpdateDeal(), MOVE, "update_deal", NIMBUS)
    await chat.say(ActionConfirm(), "yes", "affirm")
    target = deal(crm, "Nimbus Labs - Platform renewal")
    with crm.store.unit_of_work(crm.actor("alice")) as uow:
        records.update_record(uow, records.resource("deals"), target.id, {"stage": "Proposal"}, None)
        records.update_record(uow, records.resource("deals"), target.id, {"stage": "Closed Won"}, None)
    await chat.say(ActionUndo(), "undo", "undo")
    assert "left everything as it is" in chat.text
    assert deal(crm, "Nimbus Labs - Platform renewal").stage is DealStage.CLOSED_WON


async def test_another_reps_deal_is_not_found(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionUpdateDeal(), "move the hooli deal to negotiation", "update_deal", [entity("record", "Hooli")])
    assert "can't find" in chat.text and "Hooli -" not in chat.text and "300,000" not in chat.text
    assert chat.slots.get(PENDING) is None


async def test_several_matches_ask_which_then_the_choice_replays_the_request(crm: Crm) -> None:
    with crm.store.unit_of_work(crm.actor("alice")) as uow:
        acme = records.get_record(uow, records.resource("deals"), deal(crm, "Acme - Fleet telematics").id).account_id
        records.create_record(
            uow,
            records.resource("deals"),
            {"name": "Acme - Spare parts", "account_id": acme, "amount": "20000", "stage": "Proposal"},
        )
    chat = crm.chat("alice")
    await chat.say(
        ActionUpdateDeal(),
        "move the acme deal to negotiation",
        "update_deal",
        [entity("record", "acme"), entity("stage", "Negotiation", "negotiation")],
    )
    assert "Which one do you mean?" in chat.text
    assert "Acme - Pilot" not in chat.text  # closed deals give way to open ones
    titles = [b["title"] for b in chat.buttons]
    assert any(t.startswith("Acme - Spare parts") for t in titles), titles
    index = next(i for i, t in enumerate(titles, start=1) if t.startswith("Acme - Spare parts"))
    await chat.say(ActionChooseRecord(), str(index), "choose_record", [entity("ordinal", str(index))])
    assert "Move “Acme - Spare parts” from Proposal to Negotiation" in chat.text
    await chat.say(ActionChooseOther(), "no, the other one", "choose_other")
    assert "Move “Acme - Fleet telematics”" not in chat.text  # already in Negotiation
    assert "already in Negotiation" in chat.text
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert deal(crm, "Acme - Spare parts").stage is DealStage.PROPOSAL  # the read-back was replaced


async def test_follow_up_without_a_name_uses_the_deal_in_focus(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionUpdateDeal(), MOVE, "update_deal", NIMBUS)
    await chat.say(ActionDeny(), "no", "deny")
    await chat.say(ActionUpdateDeal(), "actually make it 60k", "update_deal")
    assert "“Nimbus Labs - Platform renewal”" in chat.text and "$60,000" in chat.text


async def test_undo_removes_a_new_series_even_after_the_scheduler_laid_out_occurrences(crm: Crm) -> None:
    import datetime as dt

    from actions.activities import ActionCreateRecurring
    from crm_backend.models import Activity, RecurringActivity
    from crm_backend.services import calendar

    chat = crm.chat("alice")
    await chat.say(ActionCreateRecurring(), "every monday at 9 pipeline review", "create_recurring")
    await chat.say(ActionConfirm(), "yes", "affirm")
    with crm.store.unit_of_work(crm.actor("alice")) as uow:
        series = uow.session.scalars(select(RecurringActivity)).one()
        assert calendar.expand_series(uow, series, dt.datetime.now(dt.UTC), dt.timedelta(days=30)) >= 4
    await chat.say(ActionUndo(), "undo", "undo")
    assert chat.text.startswith("Undone:"), chat.text
    with crm.store.unit_of_work() as uow:
        assert uow.session.scalars(select(RecurringActivity)).all() == []
        assert uow.session.scalars(select(Activity).where(Activity.recurring_activity_id.is_not(None))).all() == []


async def test_a_late_yes_does_not_apply_an_old_read_back(crm: Crm) -> None:
    from actions.confirm import PENDING_TTL_SECONDS

    chat = crm.chat("alice")
    await chat.say(ActionUpdateDeal(), MOVE, "update_deal", NIMBUS)
    chat.slots[PENDING]["at"] -= PENDING_TTL_SECONDS + 1
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "didn't apply it" in chat.text and chat.slots[PENDING] is None
    assert deal(crm, "Nimbus Labs - Platform renewal").stage is DealStage.PROPOSAL
