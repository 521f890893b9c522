"""The assistant's analytics on a real database: containment and handoff rates per channel, not-understood
rate and mood per intent, first agent reply time, SLA breaches and ratings, and who may read them."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_backend.errors import PermissionDenied, ValidationFailed
from crm_backend.services import analytics, conversations, handoff
from tests.conftest import Demo

TODAY = dt.datetime.now(dt.UTC)


def conversation(demo: Demo, channel: str, turns: list[tuple[str, float, bool]]) -> str:
    """A conversation of alice on `channel`: user turns (intent, sentiment score, not understood?)."""
    with demo.store.unit_of_work(demo.actor("alice"), channel=channel) as uow:
        conversation_id = conversations.claim_conversation(uow, None, channel)
        for intent, score, missed in turns:
            label = "negative" if score < -0.25 else "positive" if score > 0.25 else "neutral"
            conversations.record_turn(uow, conversation_id, "user", intent, sentiment=(label, score))
            conversations.record_intent(uow, conversation_id, intent, 0.9, fallback=missed)
            conversations.record_turn(uow, conversation_id, "bot", "ok")
    return conversation_id


def report(demo: Demo, username: str = "maria") -> dict:  # type: ignore[type-arg]
    with demo.store.unit_of_work(demo.actor(username), read_only=True) as uow:
        return analytics.assistant_report(uow)


def test_rates_per_channel_and_intent_and_the_handoff_figures(demo: Demo) -> None:
    conversation(demo, "slack", [("list_open_deals", 0.2, False), ("thanks", 0.8, False)])
    conversation(demo, "slack", [("nlu_fallback", -0.1, True)])
    handed = conversation(demo, "web", [("human_handoff", -0.8, False)])
    with demo.store.unit_of_work(channel="web") as uow:
        ticket_id = handoff.escalate(uow, handed, "requested").ticket_id
    with demo.store.unit_of_work(demo.actor("sam"), channel="console") as uow:
        handoff.take(uow, ticket_id)
        handoff.agent_reply(uow, ticket_id, "Hello!")
        handoff.resolve(uow, ticket_id)
    with demo.store.unit_of_work(channel="web") as uow:
        handoff.rate(uow, handed, 4)

    data = report(demo)
    total, slack, web = data["total"], data["by_channel"]["slack"], data["by_channel"]["web"]
    assert total["conversations"] == 3 and total["handed_off"] == 1
    assert total["containment_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert slack["containment_rate"] == 1.0 and web["handoff_rate"] == 1.0
    assert slack["fallback_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert total["tickets"] == 1 and total["csat"] == 4 and total["sla_breaches"] == 0
    assert total["first_agent_reply_seconds"] is not None and total["first_agent_reply_seconds"] >= 0
    assert data["by_intent"]["nlu_fallback"]["fallback_rate"] == 1.0
    assert data["by_intent"]["thanks"]["average_sentiment"] == 0.8


def test_an_unanswered_ticket_past_its_sla_is_a_breach(demo: Demo) -> None:
    waiting = conversation(demo, "telegram", [("human_handoff", -0.9, False)])
    with demo.store.unit_of_work(channel="telegram") as uow:
        escalated = handoff.escalate(uow, waiting, "requested")
    with demo.store.unit_of_work(demo.actor("admin"), read_only=True) as uow:
        late = analytics.assistant_report(uow, now=escalated.sla_due_at + dt.timedelta(minutes=5))
    assert late["total"]["sla_breaches"] == 1 and late["total"]["first_agent_reply_seconds"] is None


def test_reps_may_not_read_it_and_periods_are_checked(demo: Demo) -> None:
    with pytest.raises(PermissionDenied):
        report(demo, "alice")
    with demo.store.unit_of_work(demo.actor("maria"), read_only=True) as uow, pytest.raises(ValidationFailed):
        analytics.assistant_report(uow, dt.date(2026, 2, 1), dt.date(2026, 1, 1))
    with demo.store.unit_of_work(demo.actor("maria"), read_only=True) as uow:
        empty = analytics.assistant_report(uow, dt.date(2020, 1, 1), dt.date(2020, 1, 31))
    assert empty["total"]["conversations"] == 0 and empty["total"]["containment_rate"] is None
