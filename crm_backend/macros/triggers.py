"""Macros that follow changes: on create, on update (of given fields), on a deal's stage change.

`on_changes` is an `events.HANDLERS` entry: it gets each settled batch of changes, finds the active
macros whose trigger matches (one query per batch), and runs each on the records it matches, acting
as the macro's owner (records the owner cannot see are left alone). A change that a macro caused
carries `macro:<id>` in its origin; when that macro is about to run on it again, that is a loop
(A → B → A): it is not run, and a FAILED run names the chain. A triggered macro that fails is rolled
back and logged; the user's write still commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from sqlalchemy import select

from crm_backend import conditions, facts
from crm_backend.errors import CrmError
from crm_backend.events import Change
from crm_backend.macros import definitions as d
from crm_backend.macros import engine
from crm_backend.models.automation import EntityType, Macro, MacroTrigger
from crm_backend.services import records
from crm_backend.store import UnitOfWork

log = logging.getLogger(__name__)

TRIGGERS = (MacroTrigger.ON_CREATE, MacroTrigger.ON_UPDATE, MacroTrigger.ON_STAGE_CHANGE)
CHUNK = 500


def fires(macro: Macro, change: Change) -> bool:
    """Whether `change` is one `macro`'s trigger reacts to."""
    if change.entity_type != macro.entity_type:
        return False
    trigger = MacroTrigger(macro.trigger)
    if trigger is MacroTrigger.ON_CREATE:
        return change.action == "create"
    if change.action != "update":
        return False
    if trigger is MacroTrigger.ON_STAGE_CHANGE:
        return change.changed("stage")
    return trigger is MacroTrigger.ON_UPDATE and (not macro.trigger_fields or change.changed(*macro.trigger_fields))


def on_changes(uow: UnitOfWork, changes: list[Change]) -> None:
    relevant = [c for c in changes if c.entity_type is not None and c.action in ("create", "update")]
    if not relevant:
        return
    types = sorted({c.entity_type for c in relevant if c.entity_type is not None})
    stmt = (
        select(Macro)
        .where(Macro.is_active.is_(True), Macro.entity_type.in_(types), Macro.trigger.in_(TRIGGERS))
        .order_by(Macro.id)
    )
    for macro in list(uow.session.scalars(stmt)):
        todo: dict[int, Change] = {}
        for change in relevant:
            if fires(macro, change) and getattr(change.obj, "deleted_at", None) is None:
                todo.setdefault(int(change.entity_id), change)
        if todo:
            _run(uow, macro, todo)


def loop_chain(uow: UnitOfWork, macro: Macro, origin: Sequence[str]) -> str:
    """ "loop: macro 'A' (#1) → 'B' (#2) → 'A' (#1)" from the origin of the change that would re-run A."""
    ids = [int(step.split(":", 1)[1]) for step in origin if step.startswith("macro:")]
    chain = [*ids[ids.index(macro.id) :], macro.id] if macro.id in ids else [macro.id, macro.id]
    names = {i: n for i, n in uow.session.execute(select(Macro.id, Macro.name).where(Macro.id.in_(set(chain))))}
    shown = " → ".join(f"'{names.get(i, '?')}' (#{i})" for i in chain)
    return f"loop: macro {shown}; stopped before running '{macro.name}' again"


def _run(uow: UnitOfWork, macro: Macro, todo: dict[int, Change]) -> None:
    trigger = MacroTrigger(macro.trigger)
    step = f"macro:{macro.id}"
    for entity_id, change in list(todo.items()):
        if step in change.origin:
            engine.log_failure(uow, macro, entity_id, trigger, loop_chain(uow, macro, change.origin))
            del todo[entity_id]
    if not todo:
        return
    try:
        actor = engine.owner_actor(uow, macro)
    except CrmError as exc:
        for entity_id in todo:
            engine.log_failure(uow, macro, entity_id, trigger, exc.message)
        return
    etype = EntityType(macro.entity_type)
    res = records.resource(d.RESOURCE[etype])
    for chunk in _chunks(sorted(todo)):
        objs = list(uow.session.scalars(records.scoped(res, actor).where(res.id_column.in_(chunk))))
        record_facts = facts.facts_for(uow, etype, objs)
        for obj in objs:
            if not conditions.evaluate(macro.conditions or {}, record_facts[obj.id]):
                continue
            try:
                engine.run_macro(
                    uow, macro, obj.id, trigger=trigger, cause=todo[obj.id].origin, record_facts=record_facts[obj.id]
                )
            except CrmError as exc:  # run_macro logs what goes wrong; this is belt and braces
                log.warning("macro %s on %s %s: %s", macro.id, etype.value, obj.id, exc.message)


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]
