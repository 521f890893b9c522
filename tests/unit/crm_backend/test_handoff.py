"""The human handoff's state machine on a real database: every transition, the ones that must be refused,
the ticket it builds (transcript, sentiment trend, priority, SLA), ratings, callbacks, the queue's
visibility, and the state surviving a new store (a restart of every process)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_backend.models import Activity
from crm_backend.models.activities import Priority
from crm_backend.models.channels import ConversationTurn
from crm_backend.models.conversations import Conversation, HandoffState
from crm_backend.models.service_desk import Ticket, TicketStatus
from crm_backend.services import conversations, handoff
from crm_backend.store import Store
from tests.conftest import Demo

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)


def start(demo: Demo, username: str = "alice", moods: tuple[tuple[str, float], ...] = ()) -> str:
    """A conversation of `username` with a few user turns (their sentiment) and bot answers."""
    with demo.store.unit_of_work(demo.actor(username), channel="web") as uow:
        conversation_id = conversations.claim_conversation(uow, None, "web")
        handoff.remember_address(uow, conversation_id, {"session": "s-1"})
        for n, mood in enumerate(moods or (("neutral", 0.0),)):
            conversations.record_turn(uow, conversation_id, "user", f"message {n}", sentiment=mood)
            conversations.record_turn(uow, conversation_id, "bot", f"answer {n}")
    return conversation_id


def escalate(demo: Demo, conversation_id: str, reason: str = "requested") -> handoff.Escalated:
    with demo.store.unit_of_work(channel="web") as uow:
        return handoff.escalate(uow, conversation_id, reason, now=NOW)


def as_agent(demo: Demo, work: object, username: str = "sam") -> object:
    with demo.store.unit_of_work(demo.actor(username), channel="console") as uow:
        return work(uow)  # type: ignore[operator]


def state(store: Store, conversation_id: str) -> HandoffState:
    with store.unit_of_work(read_only=True) as uow:
        return handoff.state_of(uow, conversation_id)


def test_escalation_builds_a_ticket_with_the_transcript_trend_and_a_priority_from_the_mood(demo: Demo) -> None:
    conversation_id = start(demo, moods=(("negative", -0.7), ("negative", -0.9), ("negative", -0.8)))
    escalated = escalate(demo, conversation_id, "sentiment")
    assert escalated.created and escalated.priority is Priority.HIGH
    assert escalated.sla_due_at == NOW + dt.timedelta(minutes=handoff.SLA_MINUTES[Priority.HIGH])
    with demo.store.unit_of_work(read_only=True) as uow:
        ticket = uow.session.get(Ticket, escalated.ticket_id)
        assert ticket is not None and ticket.status is TicketStatus.NEW and ticket.escalation_reason == "sentiment"
        assert [t["speaker"] for t in ticket.transcript] == ["user", "bot"] * 3
        assert ticket.transcript[0]["sentiment"] == "negative"
        assert ticket.sentiment_trend == [-0.7, -0.9, -0.8]
        assert ticket.sentiment_label == "negative" and ticket.conversation_id == conversation_id
        assert ticket.owner_id == demo.actor("alice").user_id
    assert state(demo.store, conversation_id) is HandoffState.WAITING


def test_asking_again_while_waiting_opens_no_second_ticket(demo: Demo) -> None:
    conversation_id = start(demo)
    first = escalate(demo, conversation_id)
    again = escalate(demo, conversation_id)
    assert not again.created and again.ticket_id == first.ticket_id
    with demo.store.unit_of_work(read_only=True) as uow:
        assert len(uow.session.scalars(select(Ticket)).all()) == 1


def test_the_full_round_trip_bot_waiting_agent_bot_then_closed_and_rated(demo: Demo) -> None:
    conversation_id = start(demo)
    ticket_id = escalate(demo, conversation_id).ticket_id
    taken = as_agent(demo, lambda uow: handoff.take(uow, ticket_id))
    assert isinstance(taken, handoff.Handed) and taken.state is HandoffState.AGENT
    assert taken.address == {"session": "s-1"} and taken.channel == "web"
    as_agent(demo, lambda uow: handoff.agent_reply(uow, ticket_id, "Hi, I'm Sam. Let me check.", now=NOW))
    back = as_agent(demo, lambda uow: handoff.hand_back(uow, ticket_id, "refund issued"))
    assert isinstance(back, handoff.Handed) and back.state is HandoffState.BOT
    with demo.store.unit_of_work(read_only=True) as uow:
        ticket = uow.session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.status is TicketStatus.PENDING and ticket.handback_note == "refund issued"
        assert ticket.first_agent_reply_at == NOW and ticket.assignee_id == demo.actor("sam").user_id
        agent_turns = uow.session.scalars(
            select(ConversationTurn.text).where(ConversationTurn.speaker == "agent")
        ).all()
        assert agent_turns == ["Hi, I'm Sam. Let me check."]
    resolved = as_agent(demo, lambda uow: handoff.resolve(uow, ticket_id, now=NOW))
    assert isinstance(resolved, handoff.Handed) and resolved.state is HandoffState.CLOSED
    with demo.store.unit_of_work(channel="web") as uow:
        assert handoff.rate(uow, conversation_id, 4) == ticket_id
    with demo.store.unit_of_work(read_only=True) as uow:
        ticket = uow.session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.csat == 4 and ticket.status is TicketStatus.RESOLVED
    assert state(demo.store, conversation_id) is HandoffState.BOT


def test_moves_from_the_wrong_state_are_refused_and_change_nothing(demo: Demo) -> None:
    conversation_id = start(demo)
    ticket_id = escalate(demo, conversation_id).ticket_id
    with pytest.raises(Conflict, match="Take the conversation"):
        as_agent(demo, lambda uow: handoff.agent_reply(uow, ticket_id, "hello"))
    with pytest.raises(Conflict):
        as_agent(demo, lambda uow: handoff.hand_back(uow, ticket_id))
    with pytest.raises(Conflict), demo.store.unit_of_work(channel="web") as uow:  # nothing to rate yet
        handoff.rate(uow, conversation_id, 5)
    as_agent(demo, lambda uow: handoff.take(uow, ticket_id))
    with pytest.raises(Conflict, match="Another agent"):
        as_agent(demo, lambda uow: handoff.take(uow, ticket_id), username="admin")
    with pytest.raises(Conflict, match="Another agent"):
        as_agent(demo, lambda uow: handoff.agent_reply(uow, ticket_id, "me too"), username="admin")
    with pytest.raises(ValidationFailed):
        as_agent(demo, lambda uow: handoff.agent_reply(uow, ticket_id, "   "))
    assert state(demo.store, conversation_id) is HandoffState.AGENT


def test_a_rep_cannot_work_handoffs(demo: Demo) -> None:
    conversation_id = start(demo, username="bob")
    ticket_id = escalate(demo, conversation_id).ticket_id
    with pytest.raises(PermissionDenied):
        as_agent(demo, lambda uow: handoff.take(uow, ticket_id), username="alice")
    with pytest.raises(PermissionDenied):
        as_agent(demo, handoff.queue, username="alice")
    with pytest.raises(NotFound):
        as_agent(demo, lambda uow: handoff.take(uow, 999_999))


def test_the_queue_lists_waiting_conversations_first_with_their_sla(demo: Demo) -> None:
    first, second = start(demo), start(demo, username="bob")
    escalate(demo, first)
    taken = escalate(demo, second).ticket_id
    as_agent(demo, lambda uow: handoff.take(uow, taken))
    rows = as_agent(demo, handoff.queue)
    assert isinstance(rows, list)
    assert [r["state"] for r in rows] == ["waiting", "agent"]
    assert rows[0]["conversation_id"] == first and rows[0]["sla_seconds_left"] is not None


def test_the_state_survives_a_restart_of_every_process(demo: Demo) -> None:
    conversation_id = start(demo)
    ticket_id = escalate(demo, conversation_id).ticket_id
    as_agent(demo, lambda uow: handoff.take(uow, ticket_id))
    demo.store.dispose()  # every connection gone; nothing of the handoff lives in memory
    assert state(demo.store, conversation_id) is HandoffState.AGENT


def test_no_agent_in_time_then_a_callback_task_for_the_owner_and_back_to_the_bot(demo: Demo) -> None:
    conversation_id = start(demo)
    escalated = escalate(demo, conversation_id)
    with demo.store.unit_of_work(channel="scheduler") as uow:
        assert handoff.overdue(uow, now=NOW) == []
        late = handoff.overdue(uow, now=escalated.sla_due_at + dt.timedelta(minutes=1))
        assert [h.conversation_id for h in late] == [conversation_id]
    with demo.store.unit_of_work(channel="scheduler") as uow:  # told once only
        assert handoff.overdue(uow, now=escalated.sla_due_at + dt.timedelta(minutes=2)) == []
    with demo.store.unit_of_work(channel="web") as uow:
        task_id = handoff.request_callback(uow, conversation_id, contact="+1 555 0100", now=NOW)
    with demo.store.unit_of_work(read_only=True) as uow:
        task = uow.session.get(Activity, task_id)
        assert (
            task is not None
            and task.owner_id == demo.actor("alice").user_id
            and "+1 555 0100" in (task.description or "")
        )
    assert state(demo.store, conversation_id) is HandoffState.BOT


def test_an_agent_can_pick_up_a_conversation_the_bot_is_having(demo: Demo) -> None:
    conversation_id = start(demo)
    picked = as_agent(demo, lambda uow: handoff.pick_up(uow, conversation_id, now=NOW))
    assert isinstance(picked, handoff.Handed) and picked.state is HandoffState.AGENT
    with demo.store.unit_of_work(read_only=True) as uow:
        ticket = uow.session.get(Ticket, picked.ticket_id)
        assert ticket is not None and ticket.escalation_reason == "agent_pickup"


def test_turn_sentiment_moves_the_conversations_rolling_value(demo: Demo) -> None:
    conversation_id = start(demo, moods=(("positive", 0.8), ("negative", -0.9), ("negative", -0.9)))
    with demo.store.unit_of_work(read_only=True) as uow:
        found = uow.session.get(Conversation, conversation_id)
        assert found is not None and found.sentiment_score is not None
        assert found.sentiment_score < 0 and found.sentiment_label == "negative"
    with pytest.raises(ValidationFailed), demo.store.unit_of_work(channel="web") as uow:
        conversations.record_turn(uow, conversation_id, "user", "x", sentiment=("furious", -2.0))


@pytest.mark.parametrize(
    ("trend", "pipeline", "hot", "expected"),
    [
        ((-0.9, -0.8), 0, False, Priority.HIGH),
        ((-0.9, -0.8), 250_000, False, Priority.URGENT),
        ((0.0,), 250_000, False, Priority.HIGH),
        ((-0.3,), 0, False, Priority.MEDIUM),
        ((0.6, 0.7), 0, False, Priority.LOW),
        ((), 0, True, Priority.HIGH),
    ],
)
def test_priority_comes_from_mood_and_what_is_at_stake(
    trend: tuple[float, ...], pipeline: int, hot: bool, expected: Priority
) -> None:
    from decimal import Decimal

    assert handoff.priority_for(trend, Decimal(pipeline), hot) is expected
