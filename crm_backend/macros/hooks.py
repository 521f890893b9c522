"""The `macros` collection's save hooks: a macro is validated as a whole whenever its definition
changes (or it is switched on), and a schedule trigger gets its next run time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_backend.macros import definitions as d
from crm_backend.macros import schedule
from crm_backend.models.automation import Macro, MacroTrigger
from crm_backend.store import UnitOfWork

DEFINITION = ("entity_type", "trigger", "trigger_fields", "schedule", "conditions", "actions")


def before_create(uow: UnitOfWork, macro: Macro, values: dict[str, Any]) -> None:
    actions, rule = d.validate_macro(uow, **d.definition(values, macro))
    macro.trigger = MacroTrigger(macro.trigger or MacroTrigger.MANUAL)
    macro.actions = d.dump_actions(actions)
    macro.schedule = rule
    macro.conditions = macro.conditions or {}
    macro.trigger_fields = macro.trigger_fields or []
    schedule.plan(macro, rule, dt.datetime.now(dt.UTC))


def before_update(uow: UnitOfWork, macro: Macro, changes: dict[str, tuple[Any, Any]]) -> None:
    switched_on = "is_active" in changes and changes["is_active"][1]
    if not (changes.keys() & set(DEFINITION)) and not switched_on:
        return
    values = {name: after for name, (_before, after) in changes.items()}
    actions, rule = d.validate_macro(uow, **d.definition(values, macro))
    if "actions" in changes:
        changes["actions"] = (changes["actions"][0], d.dump_actions(actions))
    if "schedule" in changes or "trigger" in changes:
        changes["schedule"] = (macro.schedule, rule)
        macro.trigger = MacroTrigger(values.get("trigger", macro.trigger))
        macro.schedule = rule
        schedule.plan(macro, rule, dt.datetime.now(dt.UTC))
