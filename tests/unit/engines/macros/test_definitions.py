"""A macro is validated as a whole when it is saved: each bad part is refused by its path."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from crm_backend.errors import ValidationFailed
from crm_backend.macros.definitions import render
from crm_backend.models.automation import Macro
from crm_backend.services import records
from tests.conftest import Demo
from tests.unit.engines.macros.conftest import MakeMacro, count, macro

TAG = [{"type": "add_tag", "tag": "vip"}]


def refused(make_macro: MakeMacro, **values: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        make_macro(**values)
    return caught.value.fields


@pytest.mark.parametrize(
    ("values", "path", "words"),
    [
        ({"actions": [{"type": "set_field", "field": "colour", "value": 1}]}, "actions[0].field", "not a writable"),
        ({"actions": [{"type": "set_field", "field": "closed_at", "value": None}]}, "actions[0].field", "writable"),
        ({"actions": [*TAG, {"type": "set_field", "field": "amount", "value": -5}]}, "actions[1].value", "greater"),
        ({"actions": [{"type": "set_field", "field": "stage", "value": "Won-ish"}]}, "actions[0].value", "Prospecting"),
        ({"actions": [{"type": "send_fax"}]}, "actions[0]", "tag"),
        ({"actions": [{"type": "notify", "title": "Hi {nickname}"}]}, "actions[0].title", "unknown field 'nickname'"),
        ({"actions": [{"type": "notify", "title": "Hi {"}]}, "actions[0].title", "placeholder"),
        ({"actions": [{"type": "notify", "title": "x", "user": 999}]}, "actions[0].user", "no user"),
        ({"actions": [{"type": "assign_owner", "strategy": "round_robin"}]}, "actions[0].team_id", "team_id"),
        (
            {"actions": [{"type": "assign_owner", "strategy": "round_robin", "team_id": 99}]},
            "actions[0].team_id",
            "no team",
        ),
        ({"actions": [{"type": "assign_owner"}]}, "actions[0].user_id", "user_id"),
        ({"actions": [{"type": "create_reminder", "message": "call"}]}, "actions[0]", "remind_in_minutes"),
        ({"actions": []}, "actions", "non-empty"),
        ({"entity_type": "lead", "trigger": "on_stage_change", "actions": TAG}, "trigger", "deals only"),
        ({"trigger": "on_update", "trigger_fields": ["stage", "mood"], "actions": TAG}, "trigger_fields[1]", "mood"),
        ({"trigger": "on_create", "trigger_fields": ["stage"], "actions": TAG}, "trigger_fields", "on_update"),
        ({"trigger": "schedule", "actions": TAG}, "schedule", "RRULE"),
        ({"trigger": "schedule", "schedule": "FREQ=FORTNIGHTLY", "actions": TAG}, "schedule", "RFC 5545"),
        ({"trigger": "schedule", "schedule": "FREQ=SECONDLY", "actions": TAG}, "schedule", "once a minute"),
        ({"trigger": "manual", "schedule": "FREQ=DAILY", "actions": TAG}, "schedule", "only a schedule"),
        (
            {"conditions": {"all": [{"field": "stage", "op": "equals", "value": "x"}]}, "actions": TAG},
            "conditions.all[0].op",
            "unknown operator",
        ),
        (
            {"conditions": {"field": "mood", "op": "eq", "value": "x"}, "actions": TAG},
            "conditions.field",
            "unknown field",
        ),
    ],
)
def test_bad_macro_is_refused_naming_its_bad_part(
    demo: Demo, make_macro: MakeMacro, values: dict[str, Any], path: str, words: str
) -> None:
    fields = refused(make_macro, **values)
    assert path in fields, fields
    assert words in fields[path]
    assert count(demo, Macro) == 0


def test_good_macro_is_saved_with_defaults_filled(demo: Demo, make_macro: MakeMacro) -> None:
    mid = make_macro(
        trigger="on_update",
        trigger_fields=["stage"],
        conditions={"field": "amount", "op": "gt", "value": 1000},
        actions=[
            {"type": "create_activity", "subject": "Follow up {name}"},
            {"type": "set_field", "field": "stage", "value": "Proposal"},
        ],
    )
    saved = macro(demo, mid)
    assert saved.actions[0] == {
        "type": "create_activity",
        "activity_type": "Task",
        "subject": "Follow up {name}",
        "priority": "Medium",
        "assign_to": "owner",
    }
    assert saved.next_run_at is None


def test_schedule_trigger_gets_its_next_run_time(demo: Demo, make_macro: MakeMacro) -> None:
    before = dt.datetime.now(dt.UTC)
    mid = make_macro(trigger="schedule", schedule="FREQ=DAILY;BYHOUR=8;BYMINUTE=0", actions=TAG)
    saved = macro(demo, mid)
    assert saved.schedule == "RRULE:FREQ=DAILY;BYHOUR=8;BYMINUTE=0"
    assert saved.next_run_at is not None
    assert before < saved.next_run_at <= before + dt.timedelta(days=1)
    assert (saved.next_run_at.hour, saved.next_run_at.minute) == (8, 0)


def test_update_is_validated_against_the_whole_macro(demo: Demo, make_macro: MakeMacro) -> None:
    mid = make_macro(entity_type="lead", actions=TAG)
    res = records.resource("macros")
    with pytest.raises(ValidationFailed) as caught, demo.store.unit_of_work(demo.actor("alice")) as uow:
        records.update_record(uow, res, mid, {"trigger": "on_stage_change"}, None)
    assert "trigger" in caught.value.fields
    with demo.store.unit_of_work(demo.actor("alice")) as uow:
        records.update_record(uow, res, mid, {"trigger": "schedule", "schedule": "FREQ=HOURLY"}, None)
    assert macro(demo, mid).next_run_at is not None
    with demo.store.unit_of_work(demo.actor("alice")) as uow:
        records.update_record(uow, res, mid, {"trigger": "manual", "schedule": None}, None)
    assert macro(demo, mid).next_run_at is None


def test_placeholders_fill_from_facts_and_show_what_is_missing() -> None:
    facts = {"name": "Acme", "account.industry": "Software", "amount": 1200.5, "expected_close_date": None}
    text = "{name} ({account.industry}) {amount:,.0f} by {expected_close_date} {nickname} {{literal}}"
    assert render(text, facts) == "Acme (Software) 1,200 by  [missing: nickname] {literal}"


def test_placeholders_never_reach_attributes() -> None:
    assert render("{name.__class__}", {"name": "Acme"}) == "[missing: name.__class__]"
    assert render("{name[0]}", {"name": "Acme"}) == "[missing: name[0]]"
