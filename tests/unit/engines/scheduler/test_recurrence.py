"""Recurring activities expand into Activity rows in the series' own time zone (DST included),
idempotently, with month-end, until and count rules; editing a series changes only its future."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import crm_backend.resources  # noqa: F401 - fills the collection registry
from crm_backend.errors import ValidationFailed
from crm_backend.models.activities import Activity, ActivityStatus, RecurringActivity
from crm_backend.scheduler import recurrence
from crm_backend.services import calendar, records
from tests.conftest import Demo

BERLIN = ZoneInfo("Europe/Berlin")
HORIZON = dt.timedelta(days=30)


def create_series(demo: Demo, **values: Any) -> int:
    body = {"subject": "Pipeline review", "pattern": "Daily", **values}
    for key in ("starts_at", "until"):
        if isinstance(body.get(key), dt.datetime):
            body[key] = body[key].isoformat()
    with demo.store.unit_of_work(demo.actor("alice")) as uow:
        return int(records.create_record(uow, records.resource("recurring-activities"), body).id)


def occurrences(demo: Demo, series_id: int) -> list[Activity]:
    with demo.store.unit_of_work() as uow:
        stmt = select(Activity).where(Activity.recurring_activity_id == series_id).order_by(Activity.start_at)
        return list(uow.session.scalars(stmt))


def series(demo: Demo, series_id: int) -> RecurringActivity:
    with demo.store.unit_of_work() as uow:
        found = uow.session.get(RecurringActivity, series_id)
        assert found is not None
        return found


def test_daily_0900_berlin_stays_0900_local_across_the_october_dst_change(demo: Demo) -> None:
    start = dt.datetime(2026, 10, 22, 9, 0, tzinfo=BERLIN)
    sid = create_series(demo, starts_at=start, timezone="Europe/Berlin", count=6)
    now = start - dt.timedelta(hours=1)
    assert recurrence.expand_due(demo.store, now, HORIZON) == 6
    found = occurrences(demo, sid)
    assert [a.start_at.astimezone(BERLIN).strftime("%m-%d %H:%M") for a in found] == [
        "10-22 09:00",
        "10-23 09:00",
        "10-24 09:00",
        "10-25 09:00",
        "10-26 09:00",
        "10-27 09:00",
    ]
    assert {a.start_at.astimezone(dt.UTC).hour for a in found} == {7, 8}  # the UTC hour moves instead
    assert found[0].owner_id == demo.actor("alice").user_id and found[0].subject == "Pipeline review"
    s = series(demo, sid)
    assert s.occurrences_created == 6 and s.next_occurrence_at == start.astimezone(dt.UTC)


def test_expansion_is_idempotent_and_extends_with_the_horizon(demo: Demo) -> None:
    start = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    sid = create_series(demo, starts_at=start, pattern="Weekly")
    assert recurrence.expand_due(demo.store, start, dt.timedelta(days=14)) == 3  # 1st, 8th, 15th
    assert recurrence.expand_due(demo.store, start, dt.timedelta(days=14)) == 0
    assert recurrence.expand_due(demo.store, start + dt.timedelta(days=7), dt.timedelta(days=14)) == 1  # the 22nd
    assert len(occurrences(demo, sid)) == 4
    s = series(demo, sid)
    assert s.occurrences_created == 4
    assert s.next_occurrence_at == dt.datetime(2026, 12, 8, 8, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("month_day", "expected"),
    [
        (31, ["01-31", "03-31", "05-31"]),  # months without a 31st are skipped (RFC 5545)
        (-1, ["01-31", "02-28", "03-31", "04-30", "05-31"]),  # the last day of every month
    ],
)
def test_month_end_rules(demo: Demo, month_day: int, expected: list[str]) -> None:
    start = dt.datetime(2027, 1, 1, 10, 0, tzinfo=dt.UTC)
    sid = create_series(demo, starts_at=start, pattern="Monthly", month_days=[month_day])
    recurrence.expand_due(demo.store, start, dt.timedelta(days=151))
    assert [a.start_at.strftime("%m-%d") for a in occurrences(demo, sid)] == expected


def test_until_is_inclusive_and_ends_the_series(demo: Demo) -> None:
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    sid = create_series(demo, starts_at=start, until=start + dt.timedelta(days=2))
    recurrence.expand_due(demo.store, start, HORIZON)
    assert len(occurrences(demo, sid)) == 3
    recurrence.expand_due(demo.store, start + dt.timedelta(days=3), HORIZON)
    assert series(demo, sid).next_occurrence_at is None
    assert len(occurrences(demo, sid)) == 3


def test_count_limits_occurrences_even_over_several_expansions(demo: Demo) -> None:
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    sid = create_series(demo, starts_at=start, count=4, pattern="Weekly")
    recurrence.expand_due(demo.store, start, dt.timedelta(days=10))
    recurrence.expand_due(demo.store, start + dt.timedelta(days=20), dt.timedelta(days=60))
    assert [a.start_at.day for a in occurrences(demo, sid)] == [1, 8, 15, 22]


def test_until_and_count_together_and_a_bad_time_zone_are_refused(demo: Demo) -> None:
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    with pytest.raises(ValidationFailed) as until_and_count:
        create_series(demo, starts_at=start, count=3, until=start + dt.timedelta(days=3))
    assert "count" in until_and_count.value.fields
    for bad in ("Mars/Olympus", "Europe", "../../etc/passwd"):
        with pytest.raises(ValidationFailed) as bad_zone:
            create_series(demo, starts_at=start, timezone=bad)
        assert "timezone" in bad_zone.value.fields
    with demo.store.unit_of_work() as uow:
        assert uow.session.scalars(select(RecurringActivity)).first() is None


def test_editing_a_series_changes_future_occurrences_only(demo: Demo) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = (now - dt.timedelta(days=3)).replace(hour=9, minute=0, second=0)
    sid = create_series(demo, starts_at=start)
    recurrence.expand_due(demo.store, start, dt.timedelta(days=10))
    before = occurrences(demo, sid)
    past = [a for a in before if a.start_at < now]
    future = [a for a in before if a.start_at > now]
    assert len(past) >= 3 and len(future) >= 3
    with demo.store.unit_of_work() as uow:
        done = uow.session.get(Activity, future[0].id)
        assert done is not None
        done.status, done.completed_at = ActivityStatus.COMPLETED, now
    with demo.store.unit_of_work(demo.actor("alice")) as uow:
        records.update_record(
            uow, records.resource("recurring-activities"), sid, {"subject": "Forecast call"}, expected_version=None
        )
    after = {a.id: a for a in occurrences(demo, sid)}
    for old in past:
        assert after[old.id].subject == "Pipeline review"  # the past is untouched
    assert after[future[0].id].subject == "Pipeline review"  # a completed future one is kept
    regenerated = [a for a in after.values() if a.start_at > now and a.id != future[0].id]
    assert regenerated and all(a.subject == "Forecast call" for a in regenerated)


def test_next_occurrence_is_timezone_aware() -> None:
    rule = calendar.build_rrule({"pattern": "Daily", "interval": 1})
    start = dt.datetime(2026, 3, 27, 9, 0, tzinfo=BERLIN)
    after = dt.datetime(2026, 3, 29, 0, 0, tzinfo=dt.UTC)
    assert calendar.next_occurrence(rule, start, after, "Europe/Berlin") == dt.datetime(
        2026, 3, 29, 7, 0, tzinfo=dt.UTC
    )
