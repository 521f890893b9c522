"""Running a macro by conversation: the dry run is the read-back, the real run happens on yes (and is
logged and undoable), and only the user's own macros and visible records are ever offered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from actions.confirm import PENDING, ActionConfirm, ActionDeny, ActionUndo
from actions.macros import ActionRunMacro
from crm_backend.models import Activity, Deal, DealType
from crm_backend.models.activities import Reminder
from crm_backend.models.annotations import Tagging
from crm_backend.models.automation import Macro, MacroRun, MacroRunStatus
from crm_backend.models.notifications import Notification
from crm_backend.services import records
from tests.unit.actions.conftest import Crm, entity

ACME = "Acme - Fleet telematics"  # alice's, Negotiation, $48,000, New Business
NUDGE_ACTIONS: list[dict[str, Any]] = [
    {"type": "set_field", "field": "type", "value": "Upsell"},
    {"type": "create_task", "subject": "Follow up on {name}", "due_in_days": 2, "priority": "High"},
    {"type": "add_tag", "tag": "nudged"},
]
RUN_NUDGE = [entity("macro", "stale deal nudge"), entity("record", "Acme fleet telematics")]


def make_macro(crm: Crm, owner: str = "alice", **values: Any) -> int:
    """Save a macro through the `macros` collection, so it is validated like one made in the CRM."""
    payload = {"name": "Stale deal nudge", "entity_type": "deal", "actions": NUDGE_ACTIONS, **values}
    with crm.store.unit_of_work(crm.actor(owner)) as uow:
        return int(records.create_record(uow, records.resource("macros"), payload).id)


def deal(crm: Crm, name: str = ACME) -> Deal:
    with crm.store.unit_of_work() as uow:
        found: Deal = uow.session.scalars(select(Deal).where(Deal.name == name)).one()
        return found


def tasks_on(crm: Crm, deal_id: int) -> list[Activity]:
    with crm.store.unit_of_work() as uow:
        return list(
            uow.session.scalars(select(Activity).where(Activity.deal_id == deal_id, Activity.deleted_at.is_(None)))
        )


def runs(crm: Crm, macro_id: int) -> list[MacroRun]:
    with crm.store.unit_of_work() as uow:
        return list(uow.session.scalars(select(MacroRun).where(MacroRun.macro_id == macro_id)))


def taggings(crm: Crm, deal_id: int) -> int:
    with crm.store.unit_of_work() as uow:
        stmt = (
            select(func.count()).select_from(Tagging).where(Tagging.entity_type == "deal", Tagging.entity_id == deal_id)
        )
        return int(uow.session.scalar(stmt) or 0)


async def test_the_dry_run_is_read_back_and_the_macro_runs_only_on_yes(crm: Crm) -> None:
    macro_id = make_macro(crm)
    target = deal(crm)
    chat = crm.chat("alice")
    await chat.say(
        ActionRunMacro(), "run the stale deal nudge on the acme fleet telematics deal", "run_macro", RUN_NUDGE
    )
    assert (
        f"Run “Stale deal nudge” on “{ACME}”: set type New Business → Upsell, create task “Follow up on {ACME}” due "
    ) in chat.text
    assert chat.text.endswith(", add tag “nudged”?")
    assert [b["payload"] for b in chat.buttons][:2] == ["/affirm", "/deny"]
    # The dry run left nothing behind: no change, no task, no tag, not even a run log entry.
    assert deal(crm).type is DealType.NEW_BUSINESS and tasks_on(crm, target.id) == [] and taggings(crm, target.id) == 0
    assert runs(crm, macro_id) == []

    await chat.say(ActionConfirm(), "yes", "affirm")
    assert (
        f"Ran “Stale deal nudge” on “{ACME}”: set type New Business → Upsell, created task “Follow up on" in chat.text
    )
    assert "added tag “nudged”" in chat.text
    assert deal(crm).type is DealType.UPSELL
    (task,) = tasks_on(crm, target.id)
    assert task.subject == f"Follow up on {ACME}" and task.priority.value == "High" and task.due_at is not None
    assert taggings(crm, target.id) == 1
    (run,) = runs(crm, macro_id)
    assert run.status is MacroRunStatus.SUCCEEDED and run.user_id == crm.actor("alice").user_id
    assert run.entity_id == target.id and run.channel == "api" and len(run.changes) == 3
    assert chat.slots[PENDING] is None


async def test_no_runs_nothing(crm: Crm) -> None:
    macro_id = make_macro(crm)
    chat = crm.chat("alice")
    await chat.say(ActionRunMacro(), "run stale deal nudge on acme fleet telematics", "run_macro", RUN_NUDGE)
    await chat.say(ActionDeny(), "no", "deny")
    assert "didn't change anything" in chat.text
    assert deal(crm).type is DealType.NEW_BUSINESS and tasks_on(crm, deal(crm).id) == [] and runs(crm, macro_id) == []


async def test_undo_reverts_what_the_macro_did(crm: Crm) -> None:
    with crm.store.unit_of_work(crm.actor("admin")) as uow:  # a tag in use already (reps may not delete tags)
        records.create_record(uow, records.resource("tags"), {"name": "nudged"})
    make_macro(crm)
    chat = crm.chat("alice")
    await chat.say(ActionRunMacro(), "run stale deal nudge on acme fleet telematics", "run_macro", RUN_NUDGE)
    await chat.say(ActionConfirm(), "yes", "affirm")
    await chat.say(ActionUndo(), "undo that", "undo")
    assert "Undone: Ran “Stale deal nudge”" in chat.text
    restored = deal(crm)
    assert (
        restored.type is DealType.NEW_BUSINESS and tasks_on(crm, restored.id) == [] and taggings(crm, restored.id) == 0
    )


async def test_a_misspelt_macro_name_still_finds_it(crm: Crm) -> None:
    make_macro(crm)
    chat = crm.chat("alice")
    await chat.say(
        ActionRunMacro(),
        "rn the stale deal nuge macro on acme fleet telematics",
        "run_macro",
        [entity("macro", "stale deal nuge macro"), entity("record", "acme fleet telematics")],
    )
    assert f"Run “Stale deal nudge” on “{ACME}”" in chat.text


async def test_what_macros_can_i_run_lists_only_my_active_macros(crm: Crm) -> None:
    make_macro(crm, description="for deals that sat still")
    make_macro(crm, name="Welcome sequence", entity_type="lead", actions=[{"type": "add_tag", "tag": "welcomed"}])
    make_macro(crm, name="Old sweep", is_active=False)
    make_macro(crm, owner="bob", name="Bob's secret sweep")
    chat = crm.chat("alice")
    await chat.say(ActionRunMacro(), "what macros can I run", "run_macro")
    assert chat.text == (
        "Macros you can run:\n1. Stale deal nudge (deals): for deals that sat still\n2. Welcome sequence (leads)"
    )
    await chat.say(ActionRunMacro(), "which macros can I use on a lead", "run_macro", [entity("record_type", "lead")])
    assert chat.text == "Macros you can run on leads:\n1. Welcome sequence"
    assert chat.slots.get(PENDING) is None


async def test_an_unknown_macro_lists_the_available_ones(crm: Crm) -> None:
    make_macro(crm)
    make_macro(crm, owner="bob", name="Teleport")
    chat = crm.chat("alice")
    await chat.say(
        ActionRunMacro(),
        "run teleport on acme fleet telematics",
        "run_macro",
        [entity("macro", "teleport"), entity("record", "acme fleet telematics")],
    )
    assert "I don't know a macro called “teleport” that you can run." in chat.text  # bob's is not hers
    assert "1. Stale deal nudge (deals)" in chat.text and chat.slots.get(PENDING) is None


async def test_a_switched_off_macro_is_named_as_such(crm: Crm) -> None:
    make_macro(crm, is_active=False)
    chat = crm.chat("alice")
    await chat.say(ActionRunMacro(), "run stale deal nudge on acme fleet telematics", "run_macro", RUN_NUDGE)
    assert "“Stale deal nudge” is switched off" in chat.text and chat.slots.get(PENDING) is None


async def test_a_macro_whose_conditions_do_not_hold_is_not_read_back(crm: Crm) -> None:
    macro_id = make_macro(crm, conditions={"field": "stage", "op": "eq", "value": "Proposal"})
    chat = crm.chat("alice")
    await chat.say(ActionRunMacro(), "run stale deal nudge on acme fleet telematics", "run_macro", RUN_NUDGE)
    assert (
        f"“Stale deal nudge” doesn't apply to “{ACME}”: its conditions don't hold (stage eq 'Proposal': no" in chat.text
    )
    assert chat.slots.get(PENDING) is None and runs(crm, macro_id) == []


async def test_a_record_without_a_macro_asks_which_macro(crm: Crm) -> None:
    make_macro(crm)
    make_macro(crm, name="Welcome sequence", entity_type="lead", actions=[{"type": "add_tag", "tag": "welcomed"}])
    chat = crm.chat("alice")
    await chat.say(
        ActionRunMacro(),
        "apply a macro to the acme fleet telematics deal",
        "run_macro",
        [entity("record", "acme fleet telematics")],
    )
    assert chat.text == f"Which macro should I run on “{ACME}”?\n1. Stale deal nudge"
    assert chat.buttons == [{"title": "Stale deal nudge", "payload": '/run_macro{"macro": "Stale deal nudge"}'}]
    assert chat.slots["focus_record"] == f"deal:{deal(crm).id}"


async def test_a_macro_without_a_record_says_what_it_does_and_asks_for_one(crm: Crm) -> None:
    make_macro(crm)
    chat = crm.chat("alice")
    await chat.say(
        ActionRunMacro(), "what does the stale deal nudge macro do", "run_macro", [entity("macro", "stale deal nudge")]
    )
    assert chat.text == (
        "“Stale deal nudge” works on deals: set type → Upsell; create task “Follow up on {name}”; add tag “nudged”. "
        "Which deal should I run it on?"
    )


async def test_a_rep_cannot_run_a_macro_on_another_reps_deal(crm: Crm) -> None:
    macro_id = make_macro(crm)
    chat = crm.chat("alice")
    await chat.say(
        ActionRunMacro(),
        "run stale deal nudge on globex",
        "run_macro",
        [entity("macro", "stale deal nudge"), entity("record", "globex")],
    )
    assert "can't find" in chat.text and "Globex - " not in chat.text
    assert chat.slots.get(PENDING) is None and runs(crm, macro_id) == []
    assert deal(crm, "Globex - Data warehouse").type is DealType.NEW_BUSINESS


async def test_a_macro_changed_since_the_read_back_is_read_back_again(crm: Crm) -> None:
    macro_id = make_macro(crm)
    chat = crm.chat("alice")
    await chat.say(ActionRunMacro(), "run stale deal nudge on acme fleet telematics", "run_macro", RUN_NUDGE)
    with crm.store.unit_of_work(crm.actor("alice")) as uow:
        records.update_record(
            uow, records.resource("macros"), macro_id, {"actions": [{"type": "add_tag", "tag": "poked"}]}, None
        )
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert (
        "changed since I read it back" in chat.text
        and f"Run “Stale deal nudge” on “{ACME}”: add tag “poked”?" in chat.text
    )
    assert deal(crm).type is DealType.NEW_BUSINESS and runs(crm, macro_id) == []
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert "Ran “Stale deal nudge”" in chat.text and "added tag “poked”" in chat.text
    with crm.store.unit_of_work() as uow:
        assert uow.session.get(Macro, macro_id).execution_count == 1  # type: ignore[union-attr]


async def test_a_macro_that_would_fail_is_not_read_back_and_nothing_runs(crm: Crm) -> None:
    macro_id = make_macro(crm)
    chat = crm.chat("alice")
    await chat.say(ActionRunMacro(), "run stale deal nudge on acme fleet telematics", "run_macro", RUN_NUDGE)
    # Meanwhile the macro gets a step that cannot work on this deal (it has no territory).
    with crm.store.unit_of_work(crm.actor("alice")) as uow:
        records.update_record(
            uow,
            records.resource("macros"),
            macro_id,
            {"actions": [*NUDGE_ACTIONS[:1], {"type": "assign_owner", "strategy": "territory"}]},
            None,
        )
    await chat.say(ActionConfirm(), "yes", "affirm")  # re-read: its dry run now fails, so nothing is re-asked
    assert "changed by someone else" in chat.text
    assert deal(crm).type is DealType.NEW_BUSINESS and runs(crm, macro_id) == []
    await chat.say(ActionRunMacro(), "run stale deal nudge on acme fleet telematics", "run_macro", RUN_NUDGE)
    assert "would fail on “Acme - Fleet telematics” at step 2 (this deal has no territory to assign by)" in chat.text
    assert chat.slots.get(PENDING) is None


async def test_notifications_and_reminders_are_read_back_with_whom_and_when(crm: Crm) -> None:
    make_macro(
        crm,
        name="Escalate",
        actions=[
            {"type": "notify", "user": "manager", "title": "{name} needs help"},
            {"type": "create_reminder", "message": "chase {name}", "remind_in_minutes": 120},
        ],
    )
    chat = crm.chat("alice")
    await chat.say(
        ActionRunMacro(),
        "run escalate on the nimbus deal",
        "run_macro",
        [entity("macro", "escalate"), entity("record", "nimbus"), entity("record_type", "deal")],
    )
    assert (
        "Run “Escalate” on “Nimbus Labs - Platform renewal”: notify Maria Okafor (“Nimbus Labs - Platform renewal "
        "needs help”), create reminder “chase Nimbus Labs - Platform renewal” at "
    ) in chat.text
    maria = crm.actor("maria").user_id
    with crm.store.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).where(Notification.user_id == maria)) == 0
        assert uow.session.scalar(select(func.count()).select_from(Reminder)) == 0
    await chat.say(ActionConfirm(), "yes", "affirm")
    assert (
        "notified Maria Okafor" in chat.text
        and "created reminder “chase Nimbus Labs - Platform renewal” at" in chat.text
    )
    with crm.store.unit_of_work() as uow:
        (note,) = uow.session.scalars(select(Notification).where(Notification.user_id == maria))
        assert note.title == "Nimbus Labs - Platform renewal needs help"
        (reminder,) = uow.session.scalars(select(Reminder))
        assert reminder.owner_id == crm.actor("alice").user_id and reminder.message.startswith("chase Nimbus")
