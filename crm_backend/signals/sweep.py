"""The periodic sweep: the time-based detectors (a deal idle too long in its stage) and the refresh of
account health, for what no single write announces (time passing).

The scheduler calls `run(store, now)`; `POST /sales-signals/sweep` and `crm-assistant signals sweep`
run it on demand. Running it twice emits nothing new: every signal has a dedupe key.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from crm_backend.models.activities import Activity
from crm_backend.models.deals import Deal
from crm_backend.models.feeds import SalesSignal
from crm_backend.signals import detectors, health
from crm_backend.signals.detectors import DEFAULT_SETTINGS, Candidate, SignalSettings
from crm_backend.signals.store import emit_many
from crm_backend.store import Store, UnitOfWork

log = logging.getLogger(__name__)

SETTINGS = DEFAULT_SETTINGS
BATCH = 500  # ids per query
TRANSACTION = 250  # signals or accounts written per transaction


@dataclass(frozen=True)
class SweepResult:
    signals: int  # signals emitted
    accounts: int  # account healths refreshed


def run(store: Store, now: dt.datetime) -> int:
    """The scheduler's entry point; returns the signals emitted plus the account healths refreshed."""
    result = sweep(store, now, SETTINGS)
    if result.signals or result.accounts:  # quiet when nothing was due (it runs every tick)
        log.info("signals sweep: %d signals, %d account healths", result.signals, result.accounts)
    return result.signals + result.accounts


def sweep(store: Store, now: dt.datetime, settings: SignalSettings = DEFAULT_SETTINGS) -> SweepResult:
    """Find the work in one read-only transaction, then do it in short ones of `TRANSACTION` signals or
    accounts: a first sweep over a large database writes for minutes, and must not hold the write lock
    (SQLite's is database-wide) all that time. Interrupted, it loses nothing: a rerun skips what is done.
    """
    max_age = dt.timedelta(days=settings.health_max_age_days)
    with store.unit_of_work(None, "system", read_only=True) as uow:
        candidates = stalled_deals(uow, now, settings)
        stale = health.stale_ids(uow, now, max_age)
    signals = accounts = 0
    for start in range(0, len(candidates), TRANSACTION):
        with store.unit_of_work(None, "system") as uow:
            signals += emit_new(uow, candidates[start : start + TRANSACTION])
    for start in range(0, len(stale), TRANSACTION):
        with store.unit_of_work(None, "system") as uow:
            accounts += health.recompute_ids(uow, stale[start : start + TRANSACTION], now)
    return SweepResult(signals, accounts)


def emit_new(uow: UnitOfWork, candidates: Sequence[Candidate]) -> int:
    """Emit the candidates not signalled before (known keys are skipped in one query per batch)."""
    emitted = 0
    for start in range(0, len(candidates), BATCH):
        chunk = candidates[start : start + BATCH]
        keys = [c.dedupe_key for c in chunk]
        known = set(uow.session.scalars(select(SalesSignal.dedupe_key).where(SalesSignal.dedupe_key.in_(keys))))
        fresh = {c.dedupe_key: c for c in chunk if c.dedupe_key not in known}  # one per key
        emitted += emit_many(uow, list(fresh.values()))
    return emitted


def stalled_deals(uow: UnitOfWork, now: dt.datetime, settings: SignalSettings = DEFAULT_SETTINGS) -> list[Candidate]:
    """Open deals that entered their stage longer ago than the stage allows and have been idle since."""
    entered = func.coalesce(Deal.stage_changed_at, Deal.created_at)
    old_enough = or_(
        *(
            and_(Deal.stage == stage, entered <= now - dt.timedelta(days=days))
            for stage, days in settings.stall_days.items()
        )
    )
    deals = list(uow.session.scalars(select(Deal).where(Deal.deleted_at.is_(None), old_enough).order_by(Deal.id)))
    out: list[Candidate] = []
    for start in range(0, len(deals), BATCH):
        chunk = deals[start : start + BATCH]
        last = _last_activity(uow, [d.id for d in chunk])
        for deal in chunk:
            if found := detectors.deal_stalled(deal, last.get(deal.id), now, settings):
                out.append(found)
    return out


def _last_activity(uow: UnitOfWork, deal_ids: list[int]) -> dict[int, dt.datetime]:
    when = func.max(func.coalesce(Activity.completed_at, Activity.start_at, Activity.created_at))
    stmt = (
        select(Activity.deal_id, when)
        .where(Activity.deal_id.in_(deal_ids), Activity.deleted_at.is_(None))
        .group_by(Activity.deal_id)
    )
    out: dict[int, dt.datetime] = {}
    for deal_id, value in uow.session.execute(stmt):
        if deal_id is not None and (aware := health.as_utc(value)) is not None:
            out[int(deal_id)] = aware
    return out
