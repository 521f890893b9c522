"""Change events: the engines see every write of a unit of work before it commits, with what
changed and what caused it; a failing engine takes the whole unit of work down with it."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm_backend import events
from crm_backend.models import Activity, AuditLog, Deal, DealStage, FeedItem, Lead, Notification
from crm_backend.notifications import notify
from crm_backend.services import records
from crm_backend.store import Store, UnitOfWork
from tests.conftest import Demo

Seen = list[events.Change]


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[Seen]:
    """Replace the engines with a recorder for the duration of a test."""
    batches: Seen = []
    handlers: list[events.Handler] = [lambda uow, changes: batches.extend(changes)]
    monkeypatch.setattr(events, "handlers", lambda: handlers)
    yield batches


def lead_changes(seen: Seen) -> list[events.Change]:
    return [c for c in seen if c.table == "leads"]


def test_engines_see_creates_and_updates_with_before_and_after(demo: Demo, seen: Seen) -> None:
    alice = demo.actor("alice")
    with demo.store.unit_of_work(alice) as uow:
        lead = records.create_record(uow, records.resource("leads"), {"last_name": "Ng", "company": "Nimbus"})
    (created,) = lead_changes(seen)
    assert created.action == "create" and created.entity_id == lead.id
    assert created.fields["company"] == (None, "Nimbus")
    assert created.origin == ()
    seen.clear()
    with demo.store.unit_of_work(alice) as uow:
        records.update_record(uow, records.resource("leads"), lead.id, {"company": "Nimbus Labs"}, None)
    (updated,) = lead_changes(seen)
    assert updated.action == "update" and updated.fields["company"] == ("Nimbus", "Nimbus Labs")
    assert updated.changed("company") and not updated.changed("status", "score")
    assert updated.entity_type is not None and updated.entity_type.value == "lead"


def test_changes_made_by_an_engine_carry_its_origin(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    got: Seen = []

    def tagger(uow: UnitOfWork, changes: Seen) -> None:
        got.extend(changes)
        for change in changes:
            if change.table == "leads" and change.action == "create":
                with events.origin(uow.session, "tagger"):
                    change.obj.title = "tagged"  # type: ignore[attr-defined]

    monkeypatch.setattr(events, "handlers", lambda: [tagger])
    with demo.store.unit_of_work(demo.actor("alice")) as uow:
        records.create_record(uow, records.resource("leads"), {"last_name": "Ng"})
    follow_up = [c for c in got if c.table == "leads" and c.action == "update"]
    assert [(c.fields, c.origin) for c in follow_up] == [({"title": (None, "tagged")}, ("tagger",))]
    with demo.store.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(Lead.title).where(Lead.last_name == "Ng")) == "tagged"


def test_a_failing_engine_rolls_back_the_whole_unit_of_work(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(uow: UnitOfWork, changes: Seen) -> None:
        raise RuntimeError("engine broke")

    monkeypatch.setattr(events, "handlers", lambda: [broken])
    audit_before = count(demo.store, AuditLog)
    with pytest.raises(RuntimeError), demo.store.unit_of_work(demo.actor("alice")) as uow:
        records.create_record(uow, records.resource("leads"), {"last_name": "Ghost"})
    assert count(demo.store, Lead) == 0
    assert count(demo.store, AuditLog) == audit_before


def test_engines_that_keep_causing_changes_are_stopped(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    def restless(uow: UnitOfWork, changes: Seen) -> None:
        for change in changes:
            if change.table == "deals":
                change.obj.amount += Decimal(1)  # type: ignore[attr-defined]

    monkeypatch.setattr(events, "handlers", lambda: [restless])
    with demo.store.unit_of_work(read_only=True) as uow:
        deal = uow.session.scalars(select(Deal).where(Deal.stage == DealStage.PROPOSAL)).first()
        assert deal is not None
        deal_id, amount = deal.id, deal.amount
    with pytest.raises(RuntimeError, match="kept causing changes"), demo.store.unit_of_work(demo.actor("admin")) as uow:
        records.update_record(uow, records.resource("deals"), deal_id, {"description": "loop"}, None)
    with demo.store.unit_of_work(read_only=True) as uow:
        assert uow.session.get(Deal, deal_id).amount == amount  # type: ignore[union-attr]


def test_reading_calls_no_engine(demo: Demo, seen: Seen) -> None:
    with demo.store.unit_of_work(demo.actor("alice"), read_only=True) as uow:
        uow.session.scalars(select(Activity)).all()
    assert seen == []


def test_notify_posts_to_the_feed_and_queues_once_per_key(demo: Demo) -> None:
    alice = demo.actor("alice")
    for _ in range(2):
        with demo.store.unit_of_work(channel="system") as uow:
            notify(uow, alice.user_id, "reminder", "Call Nimbus", "at 10:00", dedupe_key="reminder:1:2026-11-26")
    with demo.store.unit_of_work(read_only=True) as uow:
        notes = [(n.user_id, n.kind, n.title, n.status.value) for n in uow.session.scalars(select(Notification))]
        feed = list(uow.session.scalars(select(FeedItem.title).where(FeedItem.owner_id == alice.user_id)))
    assert notes == [(alice.user_id, "reminder", "Call Nimbus", "pending")]
    assert feed == ["Call Nimbus"]


def count(store: Store, model: type) -> int:
    with store.unit_of_work(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)
