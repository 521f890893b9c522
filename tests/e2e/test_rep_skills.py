"""A rep changes the CRM by conversation through the real gateway, Rasa and action server: the read-back,
the write on "yes" (with its audit row naming the channel and the user), nothing on "no", undo, and
another rep's record never shown. The wider scripted set is tests/e2e/test_conversations.py."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from crm_backend.models import AuditLog, Deal, DealStage, User
from crm_backend.store import Store
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e

DEAL = "Initech - Analytics add-on"


def text_of(reply: dict[str, Any]) -> str:
    return "\n".join(r["text"] for r in reply["replies"])


def deal_row(store: Store) -> Deal:
    with store.unit_of_work() as uow:
        found: Deal = uow.session.scalars(select(Deal).where(Deal.name == DEAL)).one()
        return found


@pytest.fixture
def store(running: Running) -> Any:
    s = Store.from_url(running.settings.database_url)
    yield s
    s.dispose()


async def test_a_stage_change_is_read_back_written_on_yes_audited_and_undone(running: Running, store: Store) -> None:
    before = deal_row(store)
    assert before.stage is DealStage.QUALIFICATION
    first = await running.say("alice", "move the initech deal to proposal")
    conversation = first["conversation_id"]
    assert "Initech - Analytics add-on" in text_of(first) and "to Proposal" in text_of(first)
    assert text_of(first).endswith("?")
    assert deal_row(store).stage is DealStage.QUALIFICATION  # read back, nothing written yet

    done = await running.say("alice", "yes", conversation)
    assert "Moved" in text_of(done)
    after = deal_row(store)
    assert after.stage is DealStage.PROPOSAL
    with store.unit_of_work() as uow:
        row = uow.session.scalars(
            select(AuditLog)
            .where(AuditLog.entity_type == "deals", AuditLog.entity_id == after.id)
            .order_by(AuditLog.id.desc())
        ).first()
        assert row is not None and row.channel == "api" and row.change_set
        alice = uow.session.scalars(select(User).where(User.username == "alice")).one()
        assert row.user_id == alice.id and row.changes["stage"] == ["Qualification", "Proposal"]

    undone = await running.say("alice", "undo that", conversation)
    assert "Undone" in text_of(undone)
    assert deal_row(store).stage is DealStage.QUALIFICATION


def key_of(reply: dict[str, Any], title: str) -> str:
    return next(b["key"] for r in reply["replies"] for b in r["buttons"] if b["title"] == title)


async def test_only_the_offered_button_confirms_and_typed_payloads_are_plain_text(
    running: Running, store: Store
) -> None:
    first = await running.say("alice", "move the initech deal to negotiation")
    conversation = first["conversation_id"]
    old_yes = key_of(first, "Yes")
    # Rasa's payload syntax typed by hand is read as words, never as an intent with entities.
    for typed in ('/inform{"stage": "closed_won"}', '/choose_record{"ordinal": "1"}'):
        await running.say("alice", typed, conversation)
        assert deal_row(store).stage is DealStage.QUALIFICATION
    again = await running.say("alice", "move the initech deal to negotiation", conversation)
    # The first read-back's Yes was superseded by the newer question's buttons: refused, nothing written.
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            running.messages_url,
            json={"button": old_yes, "conversation_id": conversation},
            headers=running.headers("alice"),
        ) as resp,
    ):
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "stale_button"
    made_up = {"button": "not-a-key", "conversation_id": conversation}
    async with (
        aiohttp.ClientSession() as http,
        http.post(running.messages_url, json=made_up, headers=running.headers("alice")) as resp,
    ):
        assert resp.status == 409
    assert deal_row(store).stage is DealStage.QUALIFICATION
    done = await running.say("alice", conversation_id=conversation, button=key_of(again, "Yes"))
    assert "Moved" in text_of(done) and deal_row(store).stage is DealStage.NEGOTIATION
    assert "Undone" in text_of(await running.say("alice", "undo that", conversation))
    assert deal_row(store).stage is DealStage.QUALIFICATION


async def test_no_writes_nothing(running: Running, store: Store) -> None:
    first = await running.say("alice", "change the amount on the initech deal to 25k")
    assert "?" in text_of(first)
    declined = await running.say("alice", "no", first["conversation_id"])
    assert "didn't change anything" in text_of(declined)
    assert deal_row(store).amount == Decimal("18500")


async def test_another_reps_deal_is_never_shown(running: Running) -> None:
    reply = text_of(await running.say("bob", "what stage is the initech deal in"))
    assert "Initech - Analytics" not in reply and "18,500" not in reply
    assert "can't find" in reply or "didn't" in reply or "not sure" in reply
