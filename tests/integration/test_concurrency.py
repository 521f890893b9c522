"""Two people change the same deal at the same moment: one wins, the other gets a conflict, and
nothing is silently overwritten. Runs on PostgreSQL (row locks, READ COMMITTED) and SQLite."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from crm_backend.errors import Conflict
from crm_backend.models import AuditLog, Deal
from crm_backend.services import records
from tests.conftest import Demo


def test_two_writers_on_one_deal_one_gets_a_conflict(demo: Demo) -> None:
    maria, alice = demo.actor("maria"), demo.actor("alice")
    with demo.store.unit_of_work(actor=alice) as uow:
        deal = uow.session.scalar(select(Deal).where(Deal.name == "Acme - Fleet telematics"))
        assert deal is not None
        deal_id, version = deal.id, deal.version
    res = records.resource("deals")
    # PostgreSQL lets both transactions read before either writes; SQLite serialises writing
    # transactions (BEGIN IMMEDIATE), so there the second simply starts after the first commits.
    both_read = threading.Barrier(2 if demo.store.engine.dialect.name == "postgresql" else 1, timeout=10)
    outcomes: dict[str, Any] = {}

    def write(who: str, actor: Any, amount: str) -> None:
        try:
            with demo.store.unit_of_work(actor=actor) as uow:
                records.get_record(uow, res, deal_id)  # both load the same version
                both_read.wait()
                records.update_record(uow, res, deal_id, {"amount": amount}, version)
            outcomes[who] = "ok"
        except Conflict as exc:
            outcomes[who] = exc

    threads = [
        threading.Thread(target=write, args=("alice", alice, "50000")),
        threading.Thread(target=write, args=("maria", maria, "61000")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(type(v).__name__ if v != "ok" else v for v in outcomes.values()) == ["Conflict", "ok"], outcomes
    winner = next(who for who, v in outcomes.items() if v == "ok")
    with demo.store.unit_of_work() as uow:
        stored = uow.session.get(Deal, deal_id)
        assert stored is not None
        assert (str(stored.amount), stored.version) == ({"alice": "50000.00", "maria": "61000.00"}[winner], version + 1)
        updates = uow.session.scalars(
            select(AuditLog).where(
                AuditLog.entity_type == "deals", AuditLog.entity_id == deal_id, AuditLog.action == "update"
            )
        ).all()
        assert len(updates) == 1  # the loser's change left no trace


def test_readers_do_not_wait_for_a_writer(demo: Demo) -> None:
    """A long write transaction holds the write lock; a read-only unit of work still answers at once."""
    import time

    res = records.resource("deals")
    alice = demo.actor("alice")
    with demo.store.unit_of_work(actor=alice) as writer:
        deal = records.get_record(writer, res, 1)
        records.update_record(writer, res, deal.id, {"description": "being edited"}, None)
        start = time.monotonic()
        with demo.store.unit_of_work(actor=alice, read_only=True) as reader:
            seen = records.get_record(reader, res, deal.id)
            assert seen.description is None  # the uncommitted change is not visible
        assert time.monotonic() - start < 2.0
