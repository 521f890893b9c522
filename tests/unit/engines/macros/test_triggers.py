"""Macros that follow changes: on create, on update of given fields, on stage change; loops stopped."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_backend.models.activities import Activity
from crm_backend.models.annotations import Tag, Tagging
from crm_backend.models.automation import MacroRunStatus, MacroTrigger
from crm_backend.models.leads import Lead
from crm_backend.services import deals, records
from tests.conftest import Demo
from tests.unit.engines.macros.conftest import MakeMacro, count, deal_id, macro, macro_runs

ACME = "Acme - Fleet telematics"


def lead(demo: Demo, lid: int) -> Lead:
    with demo.store.unit_of_work() as uow:
        found = uow.session.get(Lead, lid)
        assert found is not None
        return found


def update_lead(demo: Demo, lid: int, values: dict[str, Any], as_user: str = "alice") -> None:
    with demo.store.unit_of_work(demo.actor(as_user)) as uow:
        records.update_record(uow, records.resource("leads"), lid, values, None)


def tags_of(demo: Demo, entity_type: str, entity_id: int) -> list[str]:
    with demo.store.unit_of_work() as uow:
        stmt = (
            select(Tag.name)
            .join(Tagging, Tagging.tag_id == Tag.id)
            .where(Tagging.entity_type == entity_type, Tagging.entity_id == entity_id)
        )
        return sorted(uow.session.scalars(stmt))


def test_on_create_runs_on_new_records_that_match(demo: Demo, make_macro: MakeMacro, make_lead: Any) -> None:
    mid = make_macro(
        entity_type="lead",
        trigger="on_create",
        conditions={"field": "industry", "op": "eq", "value": "software"},
        actions=[{"type": "add_tag", "tag": "saas"}, {"type": "set_field", "field": "status", "value": "Contacted"}],
    )
    hit = make_lead(industry="Software")
    miss = make_lead(industry="Retail", last_name="Other")
    assert tags_of(demo, "lead", hit) == ["saas"] and lead(demo, hit).status.value == "Contacted"
    assert tags_of(demo, "lead", miss) == [] and lead(demo, miss).status.value == "New"
    (logged,) = macro_runs(demo, mid)  # non-matching records are not logged for automatic runs
    assert (logged.entity_id, logged.status, logged.trigger) == (hit, MacroRunStatus.SUCCEEDED, MacroTrigger.ON_CREATE)


def test_on_update_fires_only_for_its_trigger_fields(demo: Demo, make_macro: MakeMacro, make_lead: Any) -> None:
    lid = make_lead()
    mid = make_macro(
        entity_type="lead",
        trigger="on_update",
        trigger_fields=["status"],
        actions=[{"type": "create_activity", "subject": "Now {status}: {last_name}"}],
    )
    update_lead(demo, lid, {"title": "CTO"})
    assert count(demo, Activity) == 0
    update_lead(demo, lid, {"status": "Qualified"})
    with demo.store.unit_of_work() as uow:
        subjects = list(uow.session.scalars(select(Activity.subject)))
    assert subjects == ["Now Qualified: Lovelace"]
    assert macro(demo, mid).execution_count == 1


def test_on_stage_change_follows_the_deal_stage(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    make_macro(
        trigger="on_stage_change",
        conditions={"field": "stage", "op": "eq", "value": "Closed Won"},
        actions=[{"type": "add_tag", "tag": "won"}, {"type": "notify", "user": "manager", "title": "{name} won"}],
    )
    with demo.store.unit_of_work(demo.actor("alice")) as uow:
        records.update_record(uow, records.resource("deals"), did, {"description": "no stage change"}, None)
    assert tags_of(demo, "deal", did) == []
    with demo.store.unit_of_work(demo.actor("alice")) as uow:
        deals.change_stage(uow, did, {"stage": "Closed Won"})
    assert tags_of(demo, "deal", did) == ["won"]


def test_loop_between_two_macros_is_stopped_with_a_clear_error(
    demo: Demo, make_macro: MakeMacro, make_lead: Any
) -> None:
    lid = make_lead()
    a = make_macro(
        name="Title to need",
        entity_type="lead",
        trigger="on_update",
        trigger_fields=["title"],
        actions=[{"type": "set_field", "field": "need", "value": "needs {title}"}],
    )
    b = make_macro(
        name="Need to title",
        entity_type="lead",
        trigger="on_update",
        trigger_fields=["need"],
        actions=[{"type": "set_field", "field": "title", "value": "Head of {need}"}],
    )
    update_lead(demo, lid, {"title": "CTO"})  # the user's write commits, loop or not
    after = lead(demo, lid)
    assert after.need == "needs CTO" and after.title == "Head of needs CTO"
    runs_a = macro_runs(demo, a)
    assert [r.status for r in runs_a] == [MacroRunStatus.SUCCEEDED, MacroRunStatus.FAILED]
    assert runs_a[1].error == (
        f"loop: macro 'Title to need' (#{a}) → 'Need to title' (#{b}) → 'Title to need' (#{a}); "
        "stopped before running 'Title to need' again"
    )
    assert [r.status for r in macro_runs(demo, b)] == [MacroRunStatus.SUCCEEDED]


def test_macro_triggering_itself_is_a_loop(demo: Demo, make_macro: MakeMacro, make_lead: Any) -> None:
    lid = make_lead()
    mid = make_macro(
        name="Any change",
        entity_type="lead",
        trigger="on_update",
        actions=[{"type": "set_field", "field": "title", "value": "Touched"}],
    )
    update_lead(demo, lid, {"phone": "+1 555 0100"})
    assert lead(demo, lid).title == "Touched"
    statuses = [r.status for r in macro_runs(demo, mid)]
    assert statuses == [MacroRunStatus.SUCCEEDED, MacroRunStatus.FAILED]
    assert macro_runs(demo, mid)[1].error is not None and macro_runs(demo, mid)[1].error.startswith(
        f"loop: macro 'Any change' (#{mid}) → 'Any change' (#{mid})"
    )  # type: ignore[union-attr]


def test_a_failing_triggered_macro_does_not_fail_the_users_write(
    demo: Demo, make_macro: MakeMacro, make_lead: Any
) -> None:
    lid = make_lead()
    mid = make_macro(
        entity_type="lead",
        trigger="on_update",
        trigger_fields=["status"],
        actions=[
            {"type": "add_tag", "tag": "touched"},
            {"type": "assign_owner", "strategy": "territory"},  # the lead has no territory
        ],
    )
    update_lead(demo, lid, {"status": "Contacted"})
    assert lead(demo, lid).status.value == "Contacted"
    assert tags_of(demo, "lead", lid) == []
    (failed,) = macro_runs(demo, mid)
    assert failed.status is MacroRunStatus.FAILED and "no territory" in (failed.error or "")


def test_triggered_macro_acts_only_on_what_its_owner_can_see(demo: Demo, make_macro: MakeMacro, make_lead: Any) -> None:
    mid = make_macro("carlos", entity_type="lead", trigger="on_create", actions=[{"type": "add_tag", "tag": "west"}])
    alices = make_lead("alice")
    carlos = make_lead("carlos", last_name="Own")
    assert tags_of(demo, "lead", alices) == []
    assert tags_of(demo, "lead", carlos) == ["west"]
    assert [r.entity_id for r in macro_runs(demo, mid)] == [carlos]


def test_inactive_macros_do_not_fire(demo: Demo, make_macro: MakeMacro, make_lead: Any) -> None:
    make_macro(entity_type="lead", trigger="on_create", is_active=False, actions=[{"type": "add_tag", "tag": "x"}])
    lid = make_lead()
    assert tags_of(demo, "lead", lid) == []
