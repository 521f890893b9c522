"""Running a macro from the conversation: 'run the follow-up macro on Nimbus', 'what macros can I run'.

The read-back is the macro's dry run on that record (what it *would* change, after the real
validation, leaving nothing behind); on yes the writer runs it for real, all or nothing, and the
run is logged like any manual run.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from actions import resolve
from actions.base import Ask, Turn
from actions.confirm import Pending, WriteAction, Writer, ask, writer
from actions.replies import ActionResult, Reply, day
from crm_backend.errors import Conflict, NotFound, ValidationFailed
from crm_backend.macros import engine
from crm_backend.models.automation import EntityType, Macro, MacroRunStatus
from crm_backend.models.users import User
from crm_backend.services import records
from crm_backend.store import UnitOfWork

MAX_LISTED = 8
MAX_CHANGES = 8
BULK = re.compile(r"\b(?:all|every|each)\b", re.IGNORECASE)
FILLER = re.compile(r"\b(?:macro|automation)s?\b", re.IGNORECASE)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
KIND_ORDER = {kind: n for n, kind in enumerate(resolve.KINDS)}


# --- which macro ------------------------------------------------------------------------------------
def plural(kind: str) -> str:
    return f"{kind}s"


def macro_lines(macros: Sequence[Macro], *, with_kind: bool = True) -> list[str]:
    """'1. Stale deal nudge (deals): nudges deals that sat still' — at most MAX_LISTED, then a count."""
    lines = []
    for n, macro in enumerate(macros[:MAX_LISTED], start=1):
        kind = f" ({plural(EntityType(macro.entity_type).value)})" if with_kind else ""
        about = f": {macro.description}" if macro.description else ""
        lines.append(f"{n}. {macro.name}{kind}{about}")
    if len(macros) > MAX_LISTED:
        lines.append(f"…and {len(macros) - MAX_LISTED} more.")
    return lines


def macro_list(macros: Sequence[Macro], kind: str | None = None) -> str:
    on = f" on {plural(kind)}" if kind else ""
    if not macros:
        return f"There are no macros you can run{on} yet."
    return "\n".join([f"Macros you can run{on}:", *macro_lines(macros, with_kind=kind is None)])


def _payload(intent: str, entities: dict[str, str]) -> str:
    return f"/{intent}{json.dumps(entities, ensure_ascii=False)}"


def match_macro(uow: UnitOfWork, turn: Turn, macros: Sequence[Macro], said: str) -> Macro:
    """The runnable macro `said` names (case, typos and the word 'macro' forgiven), or an Ask."""
    phrase = FILLER.sub(" ", said).strip() or said
    exact = [m for m in macros if m.name.strip().lower() == phrase.lower()]
    if len(exact) == 1:
        return exact[0]
    scored = sorted(((resolve.score(phrase, m.name), m) for m in macros), key=lambda sm: (-sm[0], sm[1].name.lower()))
    hits = [(s, m) for s, m in scored if s >= resolve.MATCH]
    if hits:
        close = [m for s, m in hits if s >= hits[0][0] - resolve.CLEAR_LEAD]
        if len(close) == 1:
            return close[0]
        named = resolve.names_in(turn)
        extra = {"record": named[0]} if named else {}
        shown = close[:MAX_LISTED]
        raise Ask(
            "\n".join([f"Several macros match “{said}”. Which one?", *macro_lines(shown)]),
            [(m.name, _payload("run_macro", {"macro": m.name, **extra})) for m in shown],
        )
    switched_off = _switched_off(uow, phrase)
    if switched_off is not None:
        raise Ask(f"“{switched_off.name}” is switched off; switch it on in the CRM before running it.")
    available = "\n".join(["You can run:", *macro_lines(macros)]) if macros else "There are no macros you can run yet."
    raise Ask(f"I don't know a macro called “{said}” that you can run. {available}")


def _switched_off(uow: UnitOfWork, name: str) -> Macro | None:
    try:
        macro = engine.find_macro(uow, name)
    except (NotFound, ValidationFailed):
        return None
    return None if macro.is_active else macro


def _plan_text(action: dict[str, Any]) -> str:
    """One step of a macro as its owner wrote it ('create task “Follow up”'), placeholders and all."""
    kind = action.get("type")
    if kind == "set_field":
        return f"set {field_label(str(action.get('field')))} → {action.get('value')}"
    if kind == "add_tag":
        return f"add tag “{action.get('tag')}”"
    if kind == "assign_owner":
        return "assign a new owner"
    if kind in ("create_activity", "create_task"):
        what = str(action.get("activity_type") or "Task").lower() if kind == "create_activity" else "task"
        return f"create {what} “{action.get('subject')}”"
    if kind == "create_reminder":
        return f"create reminder “{action.get('message')}”"
    if kind == "post_to_feed":
        return f"post “{action.get('title')}” to the feed"
    if kind == "create_ticket":
        return f"open ticket “{action.get('subject')}”"
    if kind == "notify":
        user = action.get("user", "owner")
        return f"notify the {user}" if user in ("owner", "manager") else "notify a colleague"
    if kind == "run_scoring":
        return "recompute the score"
    return str(kind)


def what_it_does(macro: Macro) -> str:
    steps = [_plan_text(a) for a in macro.actions or [] if isinstance(a, dict)]
    return "; ".join(steps) if steps else "nothing yet"


# --- what a run changes -------------------------------------------------------------------------------
def field_label(field: str) -> str:
    name = field.removeprefix("custom.")
    return name.removesuffix("_id").replace("_", " ") if name.endswith("owner_id") else name.replace("_", " ")


def _user_name(uow: UnitOfWork, user_id: Any) -> str:
    user = uow.session.get(User, int(user_id)) if str(user_id).isdigit() else None
    return user.full_name if user is not None else f"user {user_id}"


def _when(value: Any, zone: ZoneInfo, *, with_time: bool = False) -> str | None:
    """An ISO date or date-time from the run log as the user reads it ('28 Nov 2026', 'Thu 26 Nov, 15:00')."""
    if not isinstance(value, str) or not ISO_DATE.match(value):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None or len(value) <= 10:
        return day(moment.date())
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}" if with_time else day(local.date())


def _value(uow: UnitOfWork, field: str, value: Any, zone: ZoneInfo) -> str:
    if value is None or value == "":
        return "empty"
    if field.endswith("owner_id"):
        return _user_name(uow, value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "empty"
    return _when(value, zone) or str(value)


def change_text(uow: UnitOfWork, change: dict[str, Any], zone: ZoneInfo, *, past: bool) -> str:
    """One change of a (dry) run: 'set priority High → Urgent', 'create task “Follow up” due 3 Dec 2026'."""
    create, add, notify, recompute = (
        ("created", "added", "notified", "recomputed") if past else ("create", "add", "notify", "recompute")
    )
    if "created" in change:
        values = change.get("values") or {}
        kind = change["created"]
        due: Any = None
        if kind == "activity":
            what, due = f"{str(values.get('type') or 'task').lower()} “{values.get('subject')}”", values.get("due_at")
        elif kind == "reminder":
            what, due = f"reminder “{values.get('message')}”", values.get("remind_at")
        elif kind == "feed item":
            what = f"feed post “{values.get('title')}”"
        elif kind == "ticket":
            what = f"ticket “{values.get('subject')}”"
        else:
            what = str(kind)
        owner = values.get("owner_id")
        for_whom = f" for {_user_name(uow, owner)}" if owner and owner != uow.require_actor().user_id else ""
        when = _when(due, zone, with_time=kind == "reminder")
        return f"{create} {what}{for_whom}" + (f" {'at' if kind == 'reminder' else 'due'} {when}" if when else "")
    if "tag_added" in change:
        return f"{add} tag “{change['tag_added']}”"
    if "notified" in change:
        return f"{notify} {_user_name(uow, change['notified'])} (“{change.get('title')}”)"
    field = str(change.get("field") or "")
    if field == "score":
        return f"{recompute} the score ({_value(uow, field, change.get('before'), zone)} → {change.get('after')})"
    before, after = change.get("before"), change.get("after")
    label = field_label(field)
    if before is None or before == "":
        return f"set {label} → {_value(uow, field, after, zone)}"
    return f"set {label} {_value(uow, field, before, zone)} → {_value(uow, field, after, zone)}"


def changes_text(uow: UnitOfWork, changes: Sequence[dict[str, Any]], zone: ZoneInfo, *, past: bool) -> str:
    parts = [change_text(uow, c, zone, past=past) for c in changes[:MAX_CHANGES]]
    if len(changes) > MAX_CHANGES:
        parts.append(f"…and {len(changes) - MAX_CHANGES} more")
    return ", ".join(parts)


def _unmet(reasons: Sequence[str]) -> str:
    failed = [r for r in reasons if ": no (" in r or r.startswith("error")] or list(reasons)
    return "; ".join(failed[:3])


def plan_run(uow: UnitOfWork, macro: Macro, entity_id: int, zone: ZoneInfo) -> Pending | str:
    """The read-back of running `macro` on the record (its dry run), or why there is nothing to confirm."""
    kind = EntityType(macro.entity_type).value
    obj = records.get_record(uow, records.resource(resolve.COLLECTIONS[kind]), entity_id)
    label = resolve.describe(uow, kind, [obj])[0].label
    result = engine.preview(uow, macro, entity_id)
    if result.error:
        step = result.failed_step
        if step is not None:
            error = result.steps[step].get("error") or result.error
            return f"“{macro.name}” would fail on “{label}” at step {step + 1} ({error}), so I didn't run it."
        if result.error.startswith("conditions did not hold"):
            return f"“{macro.name}” doesn't apply to “{label}”: its conditions don't hold ({_unmet(result.reasons)})."
        return f"“{macro.name}” can't run: {result.error}"
    if not result.changes:
        return f"“{macro.name}” would change nothing on “{label}”, so there's nothing to run."
    args = {
        "macro_id": macro.id,
        "macro_version": macro.version,
        "entity_type": kind,
        "entity_id": entity_id,
        "record_version": getattr(obj, "version", None),
        "tz": zone.key,
    }
    summary = f"Run “{macro.name}” on “{label}”: {changes_text(uow, result.changes, zone, past=False)}"
    return Pending("run_macro", args, summary)


# --- the action and its writer ----------------------------------------------------------------------
class ActionRunMacro(WriteAction):
    """'run the follow-up macro on Nimbus' (dry run read back, run on yes) / 'what macros can I run'."""

    def name(self) -> str:
        return "action_run_macro"

    def read_back(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        said_kind = turn.entity("record_type")
        kind = said_kind if said_kind in resolve.KINDS else None
        macros = engine.runnable_macros(uow)
        said = turn.entity("macro")
        named_records = resolve.names_in(turn)
        if said is None:
            if not named_records:
                shown = [m for m in macros if kind is None or EntityType(m.entity_type).value == kind]
                return ActionResult([Reply(macro_list(shown, kind))])
            return self._which_macro(uow, turn, macros)
        macro = match_macro(uow, turn, macros, said)
        macro_kind = EntityType(macro.entity_type).value
        if not named_records and BULK.search(turn.text):
            return ActionResult(
                [Reply(f"I run a macro on one {macro_kind} at a time. Which {macro_kind} should I run it on?")]
            )
        found = resolve.target(uow, turn, (macro_kind,), self.name(), required=False)
        if found is None:
            raise Ask(
                f"“{macro.name}” works on {plural(macro_kind)}: {what_it_does(macro)}. "
                f"Which {macro_kind} should I run it on?"
            )
        planned = plan_run(uow, macro, found.ref.id, turn.zone(uow))
        if isinstance(planned, str):
            return ActionResult([Reply(planned)], found.events)
        return ask(planned, found.events)

    def _which_macro(self, uow: UnitOfWork, turn: Turn, macros: Sequence[Macro]) -> ActionResult:
        """A record but no macro ('run a macro on the Cobalt deal'): the macros for that record."""
        kinds = sorted({EntityType(m.entity_type).value for m in macros}, key=KIND_ORDER.__getitem__)
        if not kinds:
            return ActionResult([Reply(macro_list([]))])
        found = resolve.target(uow, turn, kinds, self.name())
        fitting = [m for m in macros if EntityType(m.entity_type).value == found.ref.kind]
        lines = [f"Which macro should I run on “{found.ref.label}”?", *macro_lines(fitting, with_kind=False)]
        buttons = [(m.name, _payload("run_macro", {"macro": m.name})) for m in fitting[:MAX_LISTED]]
        return ActionResult([Reply("\n".join(lines), buttons)], found.events)


@writer
class RunMacro(Writer):
    kind = "run_macro"

    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        macro: Macro = records.get_record(uow, records.resource("macros"), int(args["macro_id"]))
        kind = str(args["entity_type"])
        entity_id = int(args["entity_id"])
        obj = records.get_record(uow, records.resource(resolve.COLLECTIONS[kind]), entity_id)
        if macro.version != args.get("macro_version") or getattr(obj, "version", None) != args.get("record_version"):
            raise Conflict("The macro or the record changed since the read-back.")
        label = resolve.describe(uow, kind, [obj])[0].label
        result = engine.run_macro(uow, macro, entity_id)
        if result.status is MacroRunStatus.SUCCEEDED:
            zone = ZoneInfo(str(args.get("tz") or "UTC"))
            done = changes_text(uow, result.changes, zone, past=True) or "it changed nothing"
            return f"Ran “{macro.name}” on “{label}”: {done}."
        if result.status is MacroRunStatus.SKIPPED:
            return f"“{macro.name}” didn't run on “{label}”: its conditions no longer hold, so nothing was changed."
        step = result.failed_step
        where = f" at step {step + 1}" if step is not None else ""
        return f"“{macro.name}” failed on “{label}”{where} ({result.error}), so nothing was changed."

    def refresh(self, uow: UnitOfWork, args: dict[str, Any]) -> Pending | None:
        macro: Macro = records.get_record(uow, records.resource("macros"), int(args["macro_id"]))
        if not macro.is_active:
            return None
        planned = plan_run(uow, macro, int(args["entity_id"]), ZoneInfo(str(args.get("tz") or "UTC")))
        return planned if isinstance(planned, Pending) else None
