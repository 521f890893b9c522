"""The scheduler loop: only the lease holder runs jobs, a stopped leader hands over at once, and one
failing job does not stop the others."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_backend.models.activities import ReminderStatus
from crm_backend.scheduler import runner
from crm_backend.scheduler.runner import Scheduler, SchedulerConfig, run_once
from crm_backend.store import Store
from tests.conftest import Demo
from tests.unit.engines.scheduler.test_reminders import NOW, make_reminder, notifications, reminder


def explode(store: Store, now: dt.datetime) -> None:
    """A job that always fails (stands in for a broken engine)."""
    raise RuntimeError("engine broke")


async def test_only_the_lease_holder_runs_jobs_and_a_clean_stop_hands_over(demo: Demo) -> None:
    first, second = Scheduler(demo.store), Scheduler(demo.store)
    make_reminder(demo, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    assert await first.tick() is not None and first.leader
    assert await second.tick() is None and not second.leader
    assert len(notifications(demo.store)) == 1
    await first.stop()
    assert not first.leader
    assert await second.tick() is not None and second.leader
    assert second.state()["leader"] is True and second.state()["last_tick_at"] is not None


async def test_a_failing_job_is_reported_and_the_others_still_run(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        runner,
        "EXTERNAL_JOBS",
        {
            "broken": f"{__name__}:explode",
            "absent": "crm_backend.no_such_engine:run",
        },
    )
    rid = make_reminder(demo, NOW - dt.timedelta(minutes=1))
    report = await run_once(demo.store, NOW, config=SchedulerConfig())
    assert report.errors["broken"] == "RuntimeError: engine broke"
    assert report.errors["absent"].startswith("ModuleNotFoundError")  # a job that cannot be loaded is an error
    assert report.results["delivery"]["sent"] == 1
    assert reminder(demo.store, rid).status == ReminderStatus.SENT
