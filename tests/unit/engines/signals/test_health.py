"""Customer health and churn risk: the formula on hand-computed inputs, and what gets stored."""

from __future__ import annotations

import datetime as dt
import math

from crm_backend.models.base import utcnow
from crm_backend.signals import health, sweep
from crm_backend.signals.health import Features
from tests.unit.engines.signals.conftest import World

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def test_health_formula_on_hand_computed_inputs() -> None:
    features = Features(
        recent_won=60_000,
        previous_won=40_000,
        last_activity_at=NOW - dt.timedelta(days=45),
        open_tickets=2,
        old_open_tickets=1,
        sentiment=-0.4,
        open_deals=1,
        open_pipeline=25_000,
    )
    result = health.assess(features, NOW)
    # 50 + round(20 * 20k/60k) = +7, recency round(15 - 40 * 45/90) = -5, tickets -(2*5 + 1*3) = -13,
    # sentiment round(15 * -0.4) = -6, pipeline +10  ->  43
    effects = {d["factor"]: d["effect"] for d in result.drivers}
    assert effects == {
        "revenue_trend": 7,
        "activity_recency": -5,
        "open_tickets": -13,
        "sentiment": -6,
        "open_pipeline": 10,
    }
    assert result.score == 43
    assert result.churn_risk == round(1 / (1 + math.exp(-0.7)), 3) == 0.668
    texts = {d["factor"]: d["text"] for d in result.drivers}
    assert texts["activity_recency"] == "Last activity 45 days ago"
    assert texts["open_tickets"] == "2 open support tickets, 1 older than 14 days"


def test_health_is_clamped_and_a_silent_account_scores_low() -> None:
    silent = Features(0, 50_000, None, 8, 8, -1.0, 0, 0)
    result = health.assess(silent, NOW)
    assert result.score == 0  # 50 - 20 - 25 - 25 - 15 + 0
    assert result.churn_risk == 0.993
    thriving = Features(90_000, 10_000, NOW, 0, 0, 0.9, 3, 1)
    assert health.assess(thriving, NOW).score == 100


def test_recompute_stores_score_risk_and_drivers(world: World) -> None:
    acme = world.account("Acme Corporation")  # alice: one won deal (9,000, closed now), one open deal
    now = utcnow() + dt.timedelta(minutes=1)
    with world.as_user(None) as uow:
        assert health.recompute_all(uow, now) == 8
    stored = world.account("Acme Corporation")
    # 50 + revenue +20 (all of it recent) + no activity -25 + no tickets 0 + no sentiment 0 + open deal +10
    assert stored.health_score == 55
    assert stored.churn_risk == health.churn_risk(55)
    assert stored.health_updated_at == now
    drivers = {d["factor"]: d for d in stored.health_explanation["drivers"]}
    assert drivers["revenue_trend"]["value"] == {"last_6_months": 9000.0, "previous_6_months": 0.0}
    assert drivers["activity_recency"]["effect"] == -25
    assert stored.health_explanation["computed_at"] == now.isoformat()
    assert acme.health_score is None  # it was not computed before


def test_sweep_refreshes_health_only_when_stale_or_inputs_changed(world: World) -> None:
    assert sweep.sweep(world.store, utcnow()).accounts == 8
    assert sweep.sweep(world.store, utcnow()).accounts == 0  # nothing changed, nothing is a day old
    acme = world.account("Acme Corporation")
    world.create("admin", "tickets", {"subject": "Login fails", "account_id": acme.id})
    with world.as_user(None) as uow:
        assert health.stale_ids(uow, utcnow(), dt.timedelta(days=1)) == [acme.id]
    assert sweep.sweep(world.store, utcnow()).accounts == 1
    assert world.account("Acme Corporation").health_score == 50  # 55 - 5 for the open ticket
    with world.as_user(None) as uow:
        assert len(health.stale_ids(uow, utcnow() + dt.timedelta(days=1, minutes=1), dt.timedelta(days=1))) == 8
