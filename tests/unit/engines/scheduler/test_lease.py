"""The scheduler lease: one holder at a time, renewal, expiry and takeover, release on stop."""

from __future__ import annotations

import datetime as dt

from crm_backend.scheduler import lease
from crm_backend.store import Store

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(seconds=30)


def test_second_holder_is_refused_while_the_first_holds(store: Store) -> None:
    assert lease.acquire(store, "scheduler", "a", TTL, T0)
    assert not lease.acquire(store, "scheduler", "b", TTL, T0 + dt.timedelta(seconds=10))
    state = lease.current(store, "scheduler")
    assert state is not None and state.holder == "a"


def test_holder_renews_and_keeps_its_acquired_time(store: Store) -> None:
    assert lease.acquire(store, "scheduler", "a", TTL, T0)
    assert lease.acquire(store, "scheduler", "a", TTL, T0 + dt.timedelta(seconds=20))
    state = lease.current(store, "scheduler")
    assert state is not None
    assert state.expires_at == T0 + dt.timedelta(seconds=50)
    assert state.acquired_at == T0
    # Renewed, so b still cannot take it after the first expiry time.
    assert not lease.acquire(store, "scheduler", "b", TTL, T0 + dt.timedelta(seconds=40))


def test_expired_lease_is_taken_over_and_the_old_holder_loses_it(store: Store) -> None:
    assert lease.acquire(store, "scheduler", "a", TTL, T0)
    later = T0 + dt.timedelta(seconds=31)
    assert lease.acquire(store, "scheduler", "b", TTL, later)
    state = lease.current(store, "scheduler")
    assert state is not None and state.holder == "b" and state.acquired_at == later
    assert not lease.acquire(store, "scheduler", "a", TTL, later + dt.timedelta(seconds=1))


def test_release_lets_another_holder_in_at_once(store: Store) -> None:
    assert lease.acquire(store, "scheduler", "a", TTL, T0)
    assert not lease.release(store, "scheduler", "b")  # only the holder can release
    assert lease.release(store, "scheduler", "a")
    assert lease.current(store, "scheduler") is None
    assert lease.acquire(store, "scheduler", "b", TTL, T0 + dt.timedelta(seconds=1))


def test_leases_are_independent_by_name(store: Store) -> None:
    assert lease.acquire(store, "scheduler", "a", TTL, T0)
    assert lease.acquire(store, "other", "b", TTL, T0)


def test_holder_ids_differ_per_start() -> None:
    assert lease.holder_id() != lease.holder_id()
