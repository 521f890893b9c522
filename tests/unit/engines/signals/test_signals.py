"""Each detector on a real database: the signal appears when its evidence does (and not before), once,
in its owner's feed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_backend import events
from crm_backend.models.automation import EntityScore, EntityType
from crm_backend.models.base import utcnow
from crm_backend.models.conversations import Conversation
from crm_backend.models.feeds import SignalCategory
from crm_backend.services import records
from crm_backend.signals import detectors, store, sweep
from tests.unit.engines.signals.conftest import World

NIMBUS = "Nimbus Labs - Platform renewal"  # alice's, in Proposal (stalls after 14 days)


def _sweep(world: World, days: float) -> sweep.SweepResult:
    return sweep.sweep(world.store, utcnow() + dt.timedelta(days=days))


def _stalled(world: World, deal_id: int) -> list[str]:
    return [s.title for s in world.signals(detectors.DEAL_STALLED) if s.entity_id == deal_id]


def test_deal_stalls_after_n_days_without_activity_and_not_before(world: World) -> None:
    deal = world.deal(NIMBUS)
    _sweep(world, 13.9)
    assert _stalled(world, deal.id) == []
    _sweep(world, 14.1)
    assert _stalled(world, deal.id) == [f"{NIMBUS} stalled: 14 days in Proposal without activity"]
    signal = next(s for s in world.signals(detectors.DEAL_STALLED) if s.entity_id == deal.id)
    assert signal.category is SignalCategory.NEGATIVE
    assert signal.confidence == 0.5
    assert signal.owner_id == world.user_id("alice")
    assert signal.account_id == deal.account_id
    assert signal.data["allowed_days"] == 14


def test_stalled_signal_goes_to_the_owners_feed_only(world: World) -> None:
    deal = world.deal(NIMBUS)
    _sweep(world, 15)
    alice_feed = [f for f in world.feed("alice") if f.entity_id == deal.id]
    assert [f.title for f in alice_feed] == [f"{NIMBUS} stalled: 15 days in Proposal without activity"]
    assert alice_feed[0].data["kind"] == "signal"
    assert alice_feed[0].entity_type is EntityType.DEAL
    assert not [f for f in world.feed("bob") if f.entity_id == deal.id and f.entity_type is EntityType.DEAL]


def test_activity_restarts_the_stall_clock(world: World) -> None:
    deal = world.deal(NIMBUS)
    when = utcnow() + dt.timedelta(days=10)
    world.create(
        "alice",
        "activities",
        {
            "type": "Call",
            "subject": "Check in",
            "deal_id": deal.id,
            "start_at": when.isoformat(),
            "status": "Completed",
            "completed_at": when.isoformat(),
        },
    )
    _sweep(world, 15)
    assert _stalled(world, deal.id) == []
    _sweep(world, 24.5)
    assert _stalled(world, deal.id) == [f"{NIMBUS} stalled: 14 days in Proposal without activity"]


def test_sweeping_twice_signals_once(world: World) -> None:
    deal = world.deal(NIMBUS)
    first = _sweep(world, 20)
    second = _sweep(world, 20.5)
    assert first.signals >= 1 and second.signals == 0
    assert len(_stalled(world, deal.id)) == 1
    assert len([f for f in world.feed("alice") if f.entity_id == deal.id]) == 1
    assert len([n for n in world.notifications() if n.entity_id == deal.id]) == 1


def test_run_is_the_scheduler_entry_point(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "TRANSACTION", 2)  # several short transactions, as on a large database
    count = sweep.run(world.store, utcnow() + dt.timedelta(days=40))
    stalled = world.signals(detectors.DEAL_STALLED)
    assert {s.entity_id for s in stalled} == {d.id for d in map(world.deal, _open_deal_names())}
    assert count == len(stalled) + len({a for a in _account_names()})
    assert sweep.run(world.store, utcnow() + dt.timedelta(days=40)) == 0


def _open_deal_names() -> list[str]:
    from crm_backend.demo import DEMO_DEALS

    return [d[3] for d in DEMO_DEALS if d[4].is_open]


def _account_names() -> set[str]:
    from crm_backend.demo import DEMO_DEALS

    return {d[1] for d in DEMO_DEALS}


def test_amount_cut_and_close_date_slip_are_signalled(world: World) -> None:
    deal = world.deal(NIMBUS)
    later = deal.expected_close_date + dt.timedelta(days=45)  # type: ignore[operator]
    world.update("alice", "deals", deal.id, {"amount": "100000", "expected_close_date": later.isoformat()})
    cut = world.signals(detectors.AMOUNT_DECREASED)
    assert [s.title for s in cut] == [f"{NIMBUS}: amount cut from 125,000 to 100,000 USD (-20%)"]
    assert cut[0].confidence == 0.6
    slipped = world.signals(detectors.CLOSE_DATE_SLIPPED)
    assert len(slipped) == 1 and slipped[0].data["days"] == 45
    assert slipped[0].confidence == 0.7
    assert slipped[0].dedupe_key == f"close_date_slipped:{deal.id}:{later.isoformat()}"
    # a rise and an earlier close date are not bad news
    world.update("alice", "deals", deal.id, {"amount": "150000", "expected_close_date": deal.expected_close_date})
    assert len(world.signals(detectors.AMOUNT_DECREASED)) == 1
    assert len(world.signals(detectors.CLOSE_DATE_SLIPPED)) == 1


def _write_score(world: World, lead_id: int, score: int, grade: str | None = None) -> None:
    """Write the lead's score the way the scoring engine does: inside events.origin("scoring")."""
    with world.as_user(None) as uow:
        session = uow.session
        with events.origin(session, "scoring"):
            row = session.scalars(
                select(EntityScore).where(EntityScore.entity_type == EntityType.LEAD, EntityScore.entity_id == lead_id)
            ).one_or_none()
            if row is None:
                row = EntityScore(entity_type=EntityType.LEAD, entity_id=lead_id, score=score, grade=grade)
                session.add(row)
            else:
                row.previous_score, row.score, row.grade, row.computed_at = row.score, score, grade, utcnow()


def test_score_jump_written_by_scoring_is_signalled(world: World) -> None:
    lead_id = world.create("alice", "leads", {"first_name": "Ivy", "last_name": "Lane", "company": "Lane Co"})
    _write_score(world, lead_id, 30, "cold")
    before = len(world.signals(detectors.SCORE_JUMP))
    _write_score(world, lead_id, 40, "warm")  # +10: not a jump
    assert len(world.signals(detectors.SCORE_JUMP)) == before
    _write_score(world, lead_id, 65, "warm")  # +25: a jump
    jumps = [s for s in world.signals(detectors.SCORE_JUMP) if s.data["score"] == 65]
    assert len(jumps) == 1
    assert jumps[0].category is SignalCategory.POSITIVE
    assert jumps[0].title == "Ivy Lane (Lane Co): lead score jumped 40 → 65"
    assert jumps[0].owner_id == world.user_id("alice")
    _write_score(world, lead_id, 72, "hot")  # +7 but crosses into hot
    hot = [s for s in world.signals(detectors.SCORE_JUMP) if s.data["score"] == 72]
    assert len(hot) == 1 and hot[0].confidence == 0.7 and hot[0].data["grade_after"] == "hot"


def _conversation(world: World, cid: str, account_id: int, sentiment: float | None) -> None:
    with world.as_user(None) as uow:
        conv = uow.session.get(Conversation, cid)
        if conv is None:
            conv = Conversation(id=cid, user_id=world.user_id("alice"), channel="web", account_id=account_id)
            uow.session.add(conv)
        conv.sentiment_score = sentiment


def test_negative_sentiment_is_signalled_when_it_drops_below_the_threshold(world: World) -> None:
    acme = world.account("Acme Corporation")
    _conversation(world, "web:1", acme.id, 0.2)
    _conversation(world, "web:1", acme.id, -0.1)
    assert world.signals(detectors.NEGATIVE_SENTIMENT) == []
    _conversation(world, "web:1", acme.id, -0.6)
    _conversation(world, "web:1", acme.id, -0.8)  # already below: same unhappy conversation
    found = world.signals(detectors.NEGATIVE_SENTIMENT)
    assert [(s.entity_type, s.entity_id, s.owner_id) for s in found] == [
        (EntityType.ACCOUNT, acme.id, world.user_id("alice"))
    ]
    assert found[0].confidence == 0.6
    assert found[0].title == "Acme Corporation: negative conversation sentiment (-0.60)"


def test_ticket_spike_on_an_account_is_signalled_once(world: World) -> None:
    globex = world.account("Globex")
    for n in range(2):
        world.create("admin", "tickets", {"subject": f"Broken {n}", "account_id": globex.id})
    assert world.signals(detectors.TICKET_SPIKE) == []
    world.create("admin", "tickets", {"subject": "Broken again", "account_id": globex.id})
    world.create("admin", "tickets", {"subject": "Still broken", "account_id": globex.id})
    spikes = world.signals(detectors.TICKET_SPIKE)
    assert len(spikes) == 1
    assert spikes[0].title == "Globex: 3 support tickets in the last 7 days"
    assert spikes[0].owner_id == world.user_id("bob")
    assert [f.title for f in world.feed("bob") if f.data.get("kind") == "signal"] == [spikes[0].title]


def test_old_tickets_do_not_make_a_spike(world: World) -> None:
    globex = world.account("Globex")
    with world.as_user("admin") as uow:
        for n in range(2):
            ticket = records.create_record(
                uow, records.resource("tickets"), {"subject": f"Old {n}", "account_id": globex.id}
            )
            ticket.created_at = utcnow() - dt.timedelta(days=10)
    world.create("admin", "tickets", {"subject": "New", "account_id": globex.id})
    assert world.signals(detectors.TICKET_SPIKE) == []


def test_champion_leaving_is_signalled(world: World) -> None:
    acme, globex = world.account("Acme Corporation"), world.account("Globex")
    raj = world.create(
        "alice", "contacts", {"first_name": "Raj", "last_name": "Patel", "account_id": acme.id, "role": "Champion"}
    )
    kim = world.create(
        "alice", "contacts", {"first_name": "Kim", "last_name": "Lee", "account_id": acme.id, "role": "Champion"}
    )
    eve = world.create(
        "alice", "contacts", {"first_name": "Eve", "last_name": "Ng", "account_id": acme.id, "role": "End User"}
    )
    with world.as_user("alice") as uow:
        records.delete_record(uow, records.resource("contacts"), raj, None)
        records.delete_record(uow, records.resource("contacts"), eve, None)
    world.update("admin", "contacts", kim, {"account_id": globex.id})
    left = world.signals(detectors.CHAMPION_LEFT)
    assert sorted((s.data["contact_id"], s.confidence, s.entity_id) for s in left) == [
        (raj, 0.6, acme.id),
        (kim, 0.9, acme.id),
    ]
    assert {s.owner_id for s in left} == {world.user_id("alice")}
    assert "Acme Corporation: champion Kim Lee moved to another account" in {s.title for s in left}


def test_unrelated_changes_cost_nothing(world: World) -> None:
    before = len(world.signals())
    world.update("alice", "accounts", world.account("Acme Corporation").id, {"industry": "Robotics"})
    world.update(
        "alice", "deals", world.deal(NIMBUS).id, {"description": "Renewal, 3 years", "amount": Decimal("125000")}
    )
    assert len(world.signals()) == before


def test_a_key_taken_meanwhile_is_skipped_and_the_rest_emitted(world: World) -> None:
    """The race path: another transaction stored the same fact between our check and our insert."""
    deal = world.deal(NIMBUS)
    now = utcnow() + dt.timedelta(days=20)
    with world.as_user(None) as uow:
        candidates = sweep.stalled_deals(uow, now)
    ours = next(c for c in candidates if c.entity_id == deal.id)
    others = [c for c in candidates if c.entity_id != deal.id]
    with world.as_user(None) as uow:
        assert store.emit(uow, ours) is not None
    with world.as_user(None) as uow:
        assert store.emit(uow, ours) is None
        assert store.emit_many(uow, [ours, *others]) == len(others)  # bulk insert collides, falls back
    assert len(world.signals(detectors.DEAL_STALLED)) == len(candidates)
    assert len(world.notifications()) == len(candidates)
