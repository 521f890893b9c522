"""Running a macro on one record: each action, all or nothing, dry runs, conditions, permissions."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from crm_backend.errors import NotFound
from crm_backend.macros import engine
from crm_backend.models.activities import Activity, Reminder
from crm_backend.models.annotations import Tagging
from crm_backend.models.automation import EntityScore, Macro, MacroRun, MacroRunStatus, ScoringRule
from crm_backend.models.deals import Deal
from crm_backend.models.feeds import FeedItem
from crm_backend.models.leads import Lead
from crm_backend.models.notifications import Notification
from crm_backend.models.service_desk import Ticket
from crm_backend.models.territories import Territory
from crm_backend.models.users import User
from tests.conftest import Demo
from tests.unit.engines.macros.conftest import MakeMacro, count, deal_id, macro, macro_runs

ACME = "Acme - Fleet telematics"  # alice's, Negotiation, 48000 USD


def run(demo: Demo, mid: int, entity_id: int, as_user: str = "alice", **options: Any) -> engine.RunResult:
    with demo.store.unit_of_work(demo.actor(as_user)) as uow:
        found = uow.session.get(Macro, mid)
        assert found is not None
        return engine.run_macro(uow, found, entity_id, **options)


def deal(demo: Demo, did: int) -> Deal:
    with demo.store.unit_of_work() as uow:
        found = uow.session.get(Deal, did)
        assert found is not None
        return found


def user_id(demo: Demo, username: str) -> int:
    return demo.actor(username).user_id


def test_atomicity_a_failing_third_action_leaves_nothing_from_the_first_two(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    mid = make_macro(
        actions=[
            {"type": "set_field", "field": "description", "value": "touched by {name}"},
            {"type": "create_activity", "subject": "Call about {name}"},
            {"type": "assign_owner", "strategy": "territory"},  # the deal has no territory: fails
            {"type": "add_tag", "tag": "never"},
        ]
    )
    result = run(demo, mid, did)
    assert result.status is MacroRunStatus.FAILED
    assert result.failed_step == 2
    assert result.error is not None and result.error.startswith("actions[2] (assign_owner): ")
    assert "no territory" in result.error
    assert [s["status"] for s in result.steps] == ["done", "done", "failed", "not_run"]
    assert deal(demo, did).description is None
    assert count(demo, Activity) == 0
    assert count(demo, Tagging) == 0
    (logged,) = macro_runs(demo, mid)
    assert logged.status is MacroRunStatus.FAILED and logged.changes == [] and logged.error == result.error
    saved = macro(demo, mid)
    assert (saved.execution_count, saved.last_status) == (1, "failed")
    assert saved.last_executed_at is not None


def test_dry_run_shows_changes_and_writes_nothing(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    mid = make_macro(
        actions=[
            {"type": "set_field", "field": "stage", "value": "Proposal"},
            {"type": "create_activity", "subject": "Send the proposal to {account.name}", "due_in_days": 2},
            {"type": "notify", "user": "manager", "title": "{name} moved back"},
        ]
    )
    version = deal(demo, did).version
    result = run(demo, mid, did, dry_run=True)
    assert result.status is MacroRunStatus.DRY_RUN, result.error
    fields = {(c.get("field"), c.get("before"), c.get("after")) for c in result.changes if "field" in c}
    assert ("stage", "Negotiation", "Proposal") in fields
    created = [c for c in result.changes if c.get("created") == "activity"]
    assert created and created[0]["id"] is None
    assert created[0]["values"]["subject"] == "Send the proposal to Acme Corporation"
    assert any(c.get("notified") == user_id(demo, "maria") for c in result.changes)
    after = deal(demo, did)
    assert (after.stage.value, after.version) == ("Negotiation", version)
    assert count(demo, Activity) == 0
    assert count(demo, Notification) == 0
    assert count(demo, FeedItem) == 0
    assert [r.status for r in macro_runs(demo, mid)] == [MacroRunStatus.DRY_RUN]
    assert macro(demo, mid).execution_count == 0


def test_dry_run_exercises_the_real_validation(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    mid = make_macro(actions=[{"type": "set_field", "field": "currency", "value": "{name}"}])  # not a 3-letter code
    result = run(demo, mid, did, dry_run=True)
    assert result.status is MacroRunStatus.DRY_RUN and result.failed_step == 0
    assert result.error is not None and "currency" in result.error
    assert deal(demo, did).currency == "USD"
    (logged,) = macro_runs(demo, mid)
    assert (logged.status, logged.error) == (MacroRunStatus.DRY_RUN, result.error)
    assert macro(demo, mid).execution_count == 0  # a dry run is not an execution


def test_conditions_not_met_is_a_skipped_run_with_reasons(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    mid = make_macro(
        conditions={"field": "amount", "op": "gt", "value": 100000},
        actions=[{"type": "set_field", "field": "description", "value": "big"}],
    )
    result = run(demo, mid, did)
    assert result.status is MacroRunStatus.SKIPPED
    assert result.reasons == ["amount gt 100000: no (is 48000.0)"]
    assert deal(demo, did).description is None
    assert macro_runs(demo, mid)[0].error == "conditions did not hold: amount gt 100000: no (is 48000.0)"


def test_rep_cannot_run_a_macro_on_a_record_they_cannot_see(demo: Demo, make_macro: MakeMacro) -> None:
    bobs = deal_id(demo, "Globex - Data warehouse")
    mid = make_macro(actions=[{"type": "set_field", "field": "description", "value": "mine now"}])
    with pytest.raises(NotFound):
        run(demo, mid, bobs)
    assert deal(demo, bobs).description is None
    assert macro_runs(demo, mid) == []


def test_set_field_and_add_tag_change_the_record(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    mid = make_macro(
        actions=[
            {"type": "set_field", "field": "probability", "value": 90},
            {"type": "add_tag", "tag": "{account.industry}"},
            {"type": "add_tag", "tag": "manufacturing"},  # the same tag again: no second tagging
        ]
    )
    result = run(demo, mid, did)
    assert result.status is MacroRunStatus.SUCCEEDED, result.error
    assert deal(demo, did).probability == 90
    assert count(demo, Tagging, Tagging.entity_type == "deal", Tagging.entity_id == did) == 1
    assert {"record": f"deal:{did}", "tag_added": "Manufacturing"} in result.changes
    assert result.steps[2]["changes"] == []
    saved = macro(demo, mid)
    assert (saved.execution_count, saved.last_status) == (1, "succeeded")


def test_assign_owner_round_robin_rotates_through_the_team(demo: Demo, make_macro: MakeMacro, make_lead: Any) -> None:
    with demo.store.unit_of_work() as uow:
        east = uow.session.scalar(select(User.team_id).where(User.username == "alice"))
    leads = [make_lead("maria", last_name=f"L{i}") for i in range(3)]
    mid = make_macro(
        "maria", entity_type="lead", actions=[{"type": "assign_owner", "strategy": "round_robin", "team_id": east}]
    )
    owners = []
    for lid in leads:
        assert run(demo, mid, lid, as_user="maria").status is MacroRunStatus.SUCCEEDED
        with demo.store.unit_of_work() as uow:
            owners.append(uow.session.get(Lead, lid).owner_id)  # type: ignore[union-attr]
    alice, bob = user_id(demo, "alice"), user_id(demo, "bob")
    assert owners == [alice, bob, alice]


def test_assign_owner_by_territory_picks_a_rep_of_that_territory(
    demo: Demo, make_macro: MakeMacro, make_lead: Any
) -> None:
    with demo.store.unit_of_work() as uow:
        territory = Territory(name="North")
        uow.session.add(territory)
        uow.session.flush()
        uow.session.get(User, user_id(demo, "bob")).territory_id = territory.id  # type: ignore[union-attr]
        tid = territory.id
    lid = make_lead("maria", territory_id=tid)
    mid = make_macro("maria", entity_type="lead", actions=[{"type": "assign_owner", "strategy": "territory"}])
    result = run(demo, mid, lid, as_user="maria")
    assert result.status is MacroRunStatus.SUCCEEDED, result.error
    assert result.changes == [
        {"record": f"lead:{lid}", "field": "owner_id", "before": user_id(demo, "maria"), "after": user_id(demo, "bob")}
    ]


def test_a_rep_macro_cannot_hand_records_to_others(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    mid = make_macro(actions=[{"type": "assign_owner", "user_id": user_id(demo, "bob")}])
    result = run(demo, mid, did)
    assert result.status is MacroRunStatus.FAILED
    assert result.error is not None and "only assign records to yourself" in result.error
    assert deal(demo, did).owner_id == user_id(demo, "alice")


def test_create_activity_and_reminder_are_linked_to_the_record(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    mid = make_macro(
        actions=[
            {
                "type": "create_activity",
                "activity_type": "Call",
                "subject": "Call {account.name}",
                "due_in_days": 3,
                "priority": "High",
            },
            {"type": "create_reminder", "message": "Chase {name}", "remind_in_minutes": 90},
        ]
    )
    result = run(demo, mid, did)
    assert result.status is MacroRunStatus.SUCCEEDED, result.error
    with demo.store.unit_of_work() as uow:
        activity = uow.session.scalars(select(Activity)).one()
        reminder = uow.session.scalars(select(Reminder)).one()
    assert (activity.deal_id, activity.subject, activity.type.value, activity.priority.value) == (
        did,
        "Call Acme Corporation",
        "Call",
        "High",
    )
    assert activity.due_at is not None and activity.owner_id == user_id(demo, "alice")
    assert (reminder.deal_id, reminder.message) == (did, f"Chase {ACME}")
    assert [c["id"] for c in result.changes] == [activity.id, reminder.id]


def test_post_to_feed_create_ticket_and_notify(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    mid = make_macro(
        "maria",
        actions=[
            {"type": "post_to_feed", "title": "{name} needs love", "user": "owner"},
            {"type": "create_ticket", "subject": "Escalation: {name}", "priority": "Urgent"},
            {"type": "notify", "user": "owner", "title": "Heads up on {name}", "body": "Stage {stage}"},
        ],
    )
    result = run(demo, mid, did, as_user="maria")
    assert result.status is MacroRunStatus.SUCCEEDED, result.error
    alice = user_id(demo, "alice")
    with demo.store.unit_of_work() as uow:
        posts = list(uow.session.scalars(select(FeedItem).where(FeedItem.owner_id == alice).order_by(FeedItem.id)))
        ticket = uow.session.scalars(select(Ticket)).one()
        note = uow.session.scalars(select(Notification)).one()
        account_id = uow.session.get(Deal, did).account_id  # type: ignore[union-attr]
    assert [p.title for p in posts] == [f"{ACME} needs love", f"Heads up on {ACME}"]
    assert (ticket.subject, ticket.priority.value, ticket.account_id) == (f"Escalation: {ACME}", "Urgent", account_id)
    assert (note.user_id, note.kind, note.body, note.entity_id) == (alice, "macro", "Stage Negotiation", did)


def test_run_scoring_scores_the_record(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    with demo.store.unit_of_work() as uow:
        uow.session.add(
            ScoringRule(
                name="big",
                entity_type="deal",
                conditions={"field": "amount", "op": "gt", "value": 1000},
                points=40,
                owner_id=user_id(demo, "admin"),
            )
        )
    mid = make_macro(actions=[{"type": "run_scoring"}])
    result = run(demo, mid, did)
    assert result.status is MacroRunStatus.SUCCEEDED, result.error
    with demo.store.unit_of_work() as uow:
        score = uow.session.scalar(
            select(EntityScore.score).where(EntityScore.entity_type == "deal", EntityScore.entity_id == did)
        )
    assert score is not None
    assert result.changes[0]["after"] == score


def test_inactive_macro_refuses_a_real_run_but_allows_a_dry_run(demo: Demo, make_macro: MakeMacro) -> None:
    from crm_backend.errors import Conflict

    did = deal_id(demo, ACME)
    mid = make_macro(is_active=False, actions=[{"type": "set_field", "field": "description", "value": "x"}])
    with pytest.raises(Conflict):
        run(demo, mid, did)
    assert run(demo, mid, did, dry_run=True).status is MacroRunStatus.DRY_RUN
    assert count(demo, MacroRun) == 1


def test_create_task_is_a_task_for_the_owner(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    mid = make_macro("maria", actions=[{"type": "create_task", "subject": "Review {name}", "due_in_days": 0}])
    assert run(demo, mid, did, as_user="maria").status is MacroRunStatus.SUCCEEDED
    with demo.store.unit_of_work() as uow:
        task = uow.session.scalars(select(Activity)).one()
    assert (task.type.value, task.subject, task.owner_id, task.deal_id) == (
        "Task",
        f"Review {ACME}",
        user_id(demo, "alice"),
        did,
    )


def test_dry_run_whose_conditions_fail_is_logged_as_a_dry_run(demo: Demo, make_macro: MakeMacro) -> None:
    did = deal_id(demo, ACME)
    mid = make_macro(
        conditions={"field": "stage", "op": "eq", "value": "Proposal"}, actions=[{"type": "add_tag", "tag": "x"}]
    )
    result = run(demo, mid, did, dry_run=True)
    assert result.status is MacroRunStatus.DRY_RUN
    assert result.error == "conditions did not hold: stage eq 'Proposal': no (is 'Negotiation')"
    assert [r.status for r in macro_runs(demo, mid)] == [MacroRunStatus.DRY_RUN]
    assert macro(demo, mid).execution_count == 0
