"""Scheduled macros: on each occurrence of its RRULE, a macro runs over every record of its entity
type that its owner may see and its conditions match.

`run_due(store, now)` is called by the scheduler's job loop. Each due macro is first *claimed* by
moving `next_run_at` to the following occurrence with a compare-and-set, so two schedulers never
run the same occurrence twice and a crash mid-way does not re-run it; then the records are run in
batches, one transaction per batch, so a huge table never becomes one huge transaction.

The RRULE is anchored at the minute the schedule was saved (`state["schedule_anchor"]`), which is
its first occurrence unless BYHOUR/BYDAY/... say otherwise; COUNT and INTERVAL then mean what they say.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, cast

from dateutil.parser import isoparse
from dateutil.rrule import rrulestr
from sqlalchemy import Table, select, update

from crm_backend import conditions, facts
from crm_backend.errors import CrmError
from crm_backend.macros import definitions as d
from crm_backend.models.automation import EntityType, Macro, MacroTrigger
from crm_backend.services import records
from crm_backend.store import Actor, Store

log = logging.getLogger(__name__)

BATCH = 200
ANCHOR = "schedule_anchor"


def next_run(rule: str, anchor: dt.datetime, after: dt.datetime) -> dt.datetime | None:
    """The first occurrence of `rule` (anchored at `anchor`) strictly after `after`; None when done."""
    found = rrulestr(rule, dtstart=anchor).after(after, inc=False)
    return found if isinstance(found, dt.datetime) else None


def plan(macro: Macro, rule: str | None, now: dt.datetime) -> None:
    """Set `next_run_at` (and the anchor) for a macro whose trigger or schedule was just saved."""
    state: dict[str, Any] = {k: v for k, v in (macro.state or {}).items() if k != ANCHOR}
    if MacroTrigger(macro.trigger or MacroTrigger.MANUAL) is MacroTrigger.SCHEDULE and rule:
        anchor = now.replace(second=0, microsecond=0)
        state[ANCHOR] = anchor.isoformat()
        first = rrulestr(rule, dtstart=anchor).after(anchor, inc=True)  # may be the save time itself
        macro.next_run_at = first if isinstance(first, dt.datetime) else None
    else:
        macro.next_run_at = None
    macro.state = state


def _anchor(macro: Macro) -> dt.datetime:
    raw = (macro.state or {}).get(ANCHOR)
    anchor = isoparse(raw) if isinstance(raw, str) else (macro.created_at or dt.datetime.now(dt.UTC))
    return anchor if anchor.tzinfo else anchor.replace(tzinfo=dt.UTC)


def run_due(store: Store, now: dt.datetime) -> int:
    """Run every scheduled macro that is due at `now`; return how many macros ran."""
    with store.unit_of_work(None, "system", read_only=True) as uow:
        due = list(
            uow.session.execute(
                select(Macro.id, Macro.next_run_at)
                .where(Macro.is_active.is_(True), Macro.trigger == MacroTrigger.SCHEDULE, Macro.next_run_at <= now)
                .order_by(Macro.next_run_at, Macro.id)
            )
        )
    ran = 0
    for macro_id, due_at in due:
        if due_at is not None and _claim(store, macro_id, due_at, now):
            _run_over_records(store, macro_id)
            ran += 1
    return ran


def _claim(store: Store, macro_id: int, due_at: dt.datetime, now: dt.datetime) -> bool:
    """Move `next_run_at` on past `now`, only if nobody else did; True when this caller won."""
    with store.unit_of_work(None, "system") as uow:
        macro = uow.session.get(Macro, macro_id)
        if macro is None or not macro.schedule:
            return False
        following = next_run(macro.schedule, _anchor(macro), now)
        table = cast(Table, Macro.__table__)
        result: Any = uow.session.execute(
            update(table).where(table.c.id == macro_id, table.c.next_run_at == due_at).values(next_run_at=following)
        )
        return bool(result.rowcount == 1)


def _run_over_records(store: Store, macro_id: int) -> None:
    from crm_backend.macros import engine

    with store.unit_of_work(None, "system") as uow:
        macro = uow.session.get(Macro, macro_id)
        if macro is None:  # deleted since it was claimed
            return
        try:
            actor: Actor = engine.owner_actor(uow, macro)
        except CrmError as exc:
            engine.log_failure(uow, macro, None, MacroTrigger.SCHEDULE, exc.message)
            return
        etype = EntityType(macro.entity_type)
        res = records.resource(d.RESOURCE[etype])
        ids = list(
            uow.session.scalars(records.scoped(res, actor).with_only_columns(res.id_column).order_by(res.id_column))
        )
    for i in range(0, len(ids), BATCH):
        try:
            _run_batch(store, actor, macro_id, etype, ids[i : i + BATCH])
        except CrmError as exc:  # e.g. a conflict with a user's edit: the rest still runs
            log.warning("scheduled macro %s, records %s..%s: %s", macro_id, ids[i], ids[-1], exc.message)


def _run_batch(store: Store, actor: Actor, macro_id: int, etype: EntityType, ids: list[int]) -> None:
    from crm_backend.macros import engine

    res = records.resource(d.RESOURCE[etype])
    with store.unit_of_work(actor, "system") as uow:
        macro = uow.session.get(Macro, macro_id)
        if macro is None or not macro.is_active:
            return
        objs = list(uow.session.scalars(records.scoped(res, actor).where(res.id_column.in_(ids))))
        record_facts = facts.facts_for(uow, etype, objs)
        for obj in objs:
            if conditions.evaluate(macro.conditions or {}, record_facts[obj.id]):
                engine.run_macro(uow, macro, obj.id, trigger=MacroTrigger.SCHEDULE, record_facts=record_facts[obj.id])
