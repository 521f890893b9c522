"""The scheduler loop: an asyncio task in the gateway that ticks every few seconds. Only the holder of
the "scheduler" lease runs the jobs, so several gateways on one database never double up. Blocking
database work runs in threads; one job's failure is logged and the others still run."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crm_backend.scheduler import lease, recurrence, reminders
from crm_backend.scheduler.delivery import DeliveryReport, Registry, RetryPolicy, default_registry, deliver_due
from crm_backend.store import Store

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
# Jobs other engines provide, as "module:function" taking (store, now).
EXTERNAL_JOBS: dict[str, str] = {
    "scoring": "crm_backend.scoring.jobs:run",
    "macros": "crm_backend.macros.schedule:run_due",
    "signals": "crm_backend.signals.sweep:run",
    "channel_events": "crm_backend.services.conversations:forget_old_events",
}


@dataclass(frozen=True)
class SchedulerConfig:
    interval: dt.timedelta = dt.timedelta(seconds=5)
    horizon: dt.timedelta = dt.timedelta(days=30)  # how far ahead recurring activities are expanded
    # Jobs that need not run every tick, and how often they do: series expand on edit anyway, and
    # stalled deals and account health are day-sized facts (the sweep reads every open deal).
    cadence: dict[str, dt.timedelta] = field(
        default_factory=lambda: {"recurrence": dt.timedelta(minutes=10), "signals": dt.timedelta(minutes=15)}
    )
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch: int = 500

    @property
    def lease_ttl(self) -> dt.timedelta:
        return max(self.interval * 3, dt.timedelta(seconds=30))


def resolve(path: str) -> Callable[[Store, dt.datetime], Any]:
    """The function at "module:name"."""
    module_name, _, attr = path.partition(":")
    job: Callable[[Store, dt.datetime], Any] = getattr(importlib.import_module(module_name), attr)
    return job


@dataclass
class TickReport:
    at: dt.datetime
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "results": self.results, "errors": self.errors}


async def run_once(
    store: Store,
    now: dt.datetime | None = None,
    *,
    registry: Registry | None = None,
    config: SchedulerConfig | None = None,
    skip: frozenset[str] = frozenset(),
) -> TickReport:
    """Every job (but those in `skip`) once, as of `now` (default: the clock): reminders first so that
    a due one is delivered in the same tick, delivery last so that it also sends what the others queued."""
    live = now is None
    now = now or dt.datetime.now(dt.UTC)
    config = config or SchedulerConfig()
    registry = registry or default_registry()
    report = TickReport(now)

    async def deliver(total: DeliveryReport) -> bool:
        """Send what is due; False (and the error reported) when delivery itself failed."""
        at = dt.datetime.now(dt.UTC) if live else now
        try:
            total.add(await deliver_due(store, at, registry, config.retry, batch=config.batch))
        except Exception as exc:
            log.exception("scheduler job delivery failed")
            report.errors["delivery"] = f"{type(exc).__name__}: {exc}"[:300]
            return False
        return True

    async def job(name: str, work: Callable[[], Any]) -> None:
        try:
            result = await asyncio.to_thread(work)
        except Exception as exc:  # one job's failure must not stop the others
            log.exception("scheduler job %s failed", name)
            report.errors[name] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            report.results[name] = result

    # Fire and deliver reminders batch by batch, so the first are sent while later ones still fire.
    delivered = DeliveryReport()
    fired = 0
    while True:
        before = fired
        await job("reminders", lambda: reminders.fire_due(store, now, batch=config.batch, max_batches=1))
        fired += int(report.results.get("reminders", 0))
        if "reminders" in report.errors or fired - before < config.batch:
            break
        if not await deliver(delivered):
            break
    report.results["reminders"] = fired
    if "recurrence" not in skip:
        await job("recurrence", lambda: recurrence.expand_due(store, now, config.horizon))
    for name, path in EXTERNAL_JOBS.items():
        if name in skip:
            continue
        try:
            external = resolve(path)
        except Exception as exc:
            log.exception("scheduler job %s cannot be loaded", name)
            report.errors[name] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        await job(name, lambda fn=external: fn(store, now))  # type: ignore[misc]
    await deliver(delivered)
    report.results["delivery"] = vars(delivered)
    return report


class Scheduler:
    """Started and stopped with the gateway; `state()` feeds /readyz."""

    def __init__(self, store: Store, config: SchedulerConfig | None = None, registry: Registry | None = None) -> None:
        self.store = store
        self.config = config or SchedulerConfig()
        self.registry = registry or default_registry()
        self.holder = lease.holder_id()
        self.leader = False
        self.last_tick_at: dt.datetime | None = None
        self.last_report: TickReport | None = None
        self.last_error: str | None = None
        self._last_run: dict[str, dt.datetime] = {}  # of the jobs with a cadence
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def state(self) -> dict[str, Any]:
        return {
            "running": self._task is not None and not self._task.done(),
            "leader": self.leader,
            "holder": self.holder,
            "interval_seconds": self.config.interval.total_seconds(),
            "last_tick_at": self.last_tick_at.isoformat() if self.last_tick_at else None,
            "last_error": self.last_error,
        }

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name="crm-scheduler")

    async def stop(self) -> None:
        """Stop ticking and hand the lease back, so another gateway takes over at once."""
        if self._task is not None:
            self._stopping.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.leader:
            try:
                await asyncio.to_thread(lease.release, self.store, LEASE_NAME, self.holder)
            except Exception:
                log.exception("could not release the scheduler lease; it expires on its own")
            self.leader = False

    async def tick(self, now: dt.datetime | None = None) -> TickReport | None:
        """Renew or take the lease; when leader, run the jobs. Returns None when another process leads."""
        self.leader = await asyncio.to_thread(lease.acquire, self.store, LEASE_NAME, self.holder, self.config.lease_ttl)
        if not self.leader:
            return None
        started = now or dt.datetime.now(dt.UTC)
        skip = frozenset(
            name
            for name, every in self.config.cadence.items()
            if name in self._last_run and started - self._last_run[name] < every
        )
        heartbeat = asyncio.create_task(self._renew_while_running())
        try:
            report = await run_once(self.store, now, registry=self.registry, config=self.config, skip=skip)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        for name in self.config.cadence.keys() - skip - report.errors.keys():
            self._last_run[name] = started
        self.last_tick_at, self.last_report = report.at, report
        self.last_error = "; ".join(f"{k}: {v}" for k, v in report.errors.items()) or None
        return report

    async def _renew_while_running(self) -> None:
        """Keep the lease during a long tick (thousands of reminders at once)."""
        while True:
            await asyncio.sleep(self.config.lease_ttl.total_seconds() / 3)
            self.leader = await asyncio.to_thread(
                lease.acquire, self.store, LEASE_NAME, self.holder, self.config.lease_ttl
            )

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception as exc:  # the database may be away for a moment; try again next tick
                log.exception("scheduler tick failed")
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self.leader = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.config.interval.total_seconds())
