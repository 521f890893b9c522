"""Scheduled macros run over every matching record once per occurrence, then move to the next one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from crm_backend.macros.schedule import run_due
from crm_backend.models.annotations import Tag, Tagging
from crm_backend.models.automation import Macro, MacroRunStatus, MacroTrigger
from crm_backend.models.deals import Deal
from tests.conftest import Demo
from tests.unit.engines.macros.conftest import MakeMacro, macro, macro_runs


def make_due(demo: Demo, mid: int, when: dt.datetime) -> None:
    with demo.store.unit_of_work() as uow:
        uow.session.execute(update(Macro).where(Macro.id == mid).values(next_run_at=when))


def tagged_deals(demo: Demo, tag: str) -> list[str]:
    with demo.store.unit_of_work() as uow:
        stmt = (
            select(Deal.name)
            .join(Tagging, (Tagging.entity_id == Deal.id) & (Tagging.entity_type == "deal"))
            .join(Tag, Tag.id == Tagging.tag_id)
            .where(Tag.name == tag)
            .order_by(Deal.name)
        )
        return list(uow.session.scalars(stmt))


def test_due_macro_runs_over_matching_visible_records_once(demo: Demo, make_macro: MakeMacro) -> None:
    mid = make_macro(
        "alice",
        trigger="schedule",
        schedule="FREQ=DAILY;BYHOUR=7;BYMINUTE=0",
        conditions={"field": "stage", "op": "in", "value": ["Proposal", "Negotiation"]},
        actions=[{"type": "add_tag", "tag": "weekly-review"}],
    )
    planned = macro(demo, mid).next_run_at
    assert planned is not None
    now = planned + dt.timedelta(minutes=1)
    assert run_due(demo.store, planned - dt.timedelta(minutes=1)) == 0  # not due yet
    assert run_due(demo.store, now) == 1
    # alice's open Proposal/Negotiation deals only: the macro acts with its owner's rights
    assert tagged_deals(demo, "weekly-review") == ["Acme - Fleet telematics", "Nimbus Labs - Platform renewal"]
    runs = macro_runs(demo, mid)
    assert {r.status for r in runs} == {MacroRunStatus.SUCCEEDED} and len(runs) == 2
    assert {r.trigger for r in runs} == {MacroTrigger.SCHEDULE}
    following = macro(demo, mid).next_run_at
    assert following == planned + dt.timedelta(days=1)
    assert run_due(demo.store, now) == 0  # the occurrence was claimed: it does not run twice
    assert len(macro_runs(demo, mid)) == 2


def test_schedule_with_count_stops_after_its_last_occurrence(demo: Demo, make_macro: MakeMacro) -> None:
    saved_at = dt.datetime.now(dt.UTC)
    mid = make_macro(trigger="schedule", schedule="FREQ=HOURLY;COUNT=2", actions=[{"type": "add_tag", "tag": "t"}])
    first = macro(demo, mid).next_run_at
    assert first is not None and first <= saved_at  # the save minute is the first occurrence
    assert run_due(demo.store, saved_at) == 1
    second = macro(demo, mid).next_run_at
    assert second == first + dt.timedelta(hours=1)
    assert run_due(demo.store, second) == 1
    assert macro(demo, mid).next_run_at is None  # COUNT=2: done
    make_due(demo, mid, second)
    with demo.store.unit_of_work() as uow:
        uow.session.execute(update(Macro).where(Macro.id == mid).values(is_active=False))
    assert run_due(demo.store, second) == 0  # switched off macros never run
