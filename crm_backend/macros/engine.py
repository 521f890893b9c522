"""Running a macro on one record: check its conditions, then do its actions in order, all or nothing.

The actions run inside a SAVEPOINT and under the origin `macro:<id>` (so the triggers can see which
macro caused a change and stop A → B → A loops). Every write goes through the same services as the
API (`records.create_record` / `update_record`, `notifications.notify`, scoring), so validation,
permissions and the audit trail apply. A failing action rolls the savepoint back: nothing of the
earlier actions stays, and a FAILED `MacroRun` says which step failed and why. A dry run does the
same work and always rolls back, so it shows what *would* change after the real validation.

Who acts: a manual run acts as the user who asked (the record must be visible to them); a
triggered or scheduled run acts as the macro's owner, with the owner's rights.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from crm_backend import conditions, events, facts, notifications
from crm_backend.audit import jsonable
from crm_backend.errors import Conflict, CrmError, NotFound, PermissionDenied, ValidationFailed
from crm_backend.macros import definitions as d
from crm_backend.models.activities import ActivityType
from crm_backend.models.annotations import Tag, Tagging
from crm_backend.models.automation import EntityScore, EntityType, Macro, MacroRun, MacroRunStatus, MacroTrigger
from crm_backend.models.base import utcnow
from crm_backend.models.users import Role, User
from crm_backend.services import auth, records, users
from crm_backend.services.scopes import may_change
from crm_backend.store import Actor, UnitOfWork

log = logging.getLogger(__name__)

MANUAL = MacroTrigger.MANUAL
MACROS = cast(Table, Macro.__table__)
MAX_ERROR = 1000
LINK = {
    EntityType.LEAD: "lead_id",
    EntityType.DEAL: "deal_id",
    EntityType.CONTACT: "contact_id",
    EntityType.ACCOUNT: "account_id",
}


class ActionFailed(CrmError):
    """An action could not be done on this record (no rep to assign, no manager to notify)."""


@dataclass
class RunResult:
    """What a run did (or, for a dry run, would do); `run_id` is its `MacroRun` log entry."""

    run_id: int | None
    macro_id: int
    macro_name: str
    entity_type: str
    entity_id: int | None
    trigger: str
    status: MacroRunStatus
    steps: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def dry_run(self) -> bool:
        return self.status is MacroRunStatus.DRY_RUN

    @property
    def failed_step(self) -> int | None:
        return next((s["index"] for s in self.steps if s["status"] == "failed"), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "macro_id": self.macro_id,
            "macro_name": self.macro_name,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "trigger": self.trigger,
            "status": self.status.value,
            "dry_run": self.dry_run,
            "failed_step": self.failed_step,
            "steps": self.steps,
            "changes": self.changes,
            "error": self.error,
            "reasons": self.reasons,
        }


@contextmanager
def acting_as(uow: UnitOfWork, actor: Actor | None) -> Iterator[None]:
    """Run the block as `actor` (a triggered macro acts with its owner's rights), then restore."""
    saved = uow.actor
    uow.actor = actor
    try:
        yield
    finally:
        uow.actor = saved


def owner_actor(uow: UnitOfWork, macro: Macro) -> Actor:
    try:
        return auth.load_actor(uow, macro.owner_id)
    except CrmError:
        raise ActionFailed(
            f"the macro's owner (user {macro.owner_id}) is deactivated; a macro acts as its owner"
        ) from None


# --- the run -----------------------------------------------------------------------------------------
@dataclass
class Context:
    """One run in progress: the record, its facts and what the steps changed so far."""

    uow: UnitOfWork
    macro: Macro
    etype: EntityType
    res: records.Resource
    obj: Any
    facts: dict[str, Any]
    dry_run: bool
    changes: list[dict[str, Any]] = field(default_factory=list)
    stale: bool = False  # the record changed since `facts` was read

    @property
    def ref(self) -> str:
        return f"{self.etype.value}:{self.obj.id}"

    def text(self, template: str | None) -> str | None:
        if template is None:
            return None
        if self.stale and d.placeholders_in(template):
            self.facts, self.stale = facts.facts_of(self.uow, self.etype, self.obj), False
        return d.render(template, self.facts)

    def refresh(self) -> None:
        """Later placeholders see this change (the facts are read again only if one needs them)."""
        self.stale = True

    def created(self, kind: str, obj: Any, values: Mapping[str, Any]) -> dict[str, Any]:
        return {"created": kind, "id": None if self.dry_run else obj.id, "values": jsonable(dict(values))}


def run_macro(
    uow: UnitOfWork,
    macro: Macro,
    entity_id: int,
    *,
    dry_run: bool = False,
    trigger: MacroTrigger = MANUAL,
    cause: tuple[str, ...] = (),
    record_facts: dict[str, Any] | None = None,
) -> RunResult:
    """Run `macro` on record `entity_id` and log it; see the module docstring for the rules.

    `cause`: the origin of the change that triggered the run, so changes this run makes carry the
    whole chain (that is how a loop A → B → A is recognised); `record_facts`: the record's facts
    when the caller has just read them in a batch (triggers, schedule). A manual run on a record the user
    cannot see raises NotFound (nothing is logged); everything that goes wrong after that is a
    FAILED run in the log, never an exception, so a triggered macro cannot fail the user's write.
    """
    etype = EntityType(macro.entity_type)
    started = utcnow()
    result = RunResult(
        None, macro.id, macro.name, etype.value, entity_id, MacroTrigger(trigger).value, _status(dry_run)
    )
    if trigger is MANUAL:
        actor: Actor | None = uow.require_actor()
        if not macro.is_active and not dry_run:
            raise Conflict("This macro is switched off; switch it on (is_active) or run it as a dry run.")
    else:
        try:
            actor = owner_actor(uow, macro)
        except ActionFailed as exc:
            return _finish(uow, macro, result, None, started, MacroRunStatus.FAILED, exc.message)
    with acting_as(uow, actor):
        res = records.resource(d.RESOURCE[etype])
        try:
            obj = records.get_record(uow, res, entity_id)
        except NotFound:
            if trigger is MANUAL:
                raise
            return _finish(
                uow, macro, result, actor, started, MacroRunStatus.FAILED, "the macro's owner cannot see this record"
            )
        if record_facts is None:
            record_facts = facts.facts_of(uow, etype, obj)
        outcome = conditions.check(macro.conditions or {}, record_facts)
        result.reasons = [*outcome.reasons, *outcome.errors]
        if not outcome.matched:
            why = "conditions did not hold: " + "; ".join(result.reasons)
            return _finish(uow, macro, result, actor, started, MacroRunStatus.SKIPPED, why)
        try:
            actions = d.parse_actions(macro.actions)
        except ValidationFailed as exc:
            return _finish(uow, macro, result, actor, started, MacroRunStatus.FAILED, describe(exc))
        ctx = Context(uow, macro, etype, res, obj, record_facts, dry_run)
        error = _execute(ctx, actions, result, cause)
    status = MacroRunStatus.FAILED if error else _status(dry_run)
    return _finish(uow, macro, result, actor, started, status, error)


def preview(uow: UnitOfWork, macro: Macro, entity_id: int) -> RunResult:
    """What a manual run would change (a dry run) without even its log entry: for a read-back that
    must leave nothing behind until the user confirms. Raises NotFound like a manual run."""
    savepoint = uow.session.begin_nested()
    try:
        result = run_macro(uow, macro, entity_id, dry_run=True)
    finally:
        savepoint.rollback()
    result.run_id = None
    return result


def _status(dry_run: bool) -> MacroRunStatus:
    return MacroRunStatus.DRY_RUN if dry_run else MacroRunStatus.SUCCEEDED


def describe(exc: BaseException) -> str:
    """An error as one sentence for the run log (field errors included, never a stack trace)."""
    if isinstance(exc, ValidationFailed):
        return "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message
    if isinstance(exc, CrmError):
        return exc.message
    if isinstance(exc, ValueError):
        return str(exc)
    return f"unexpected error ({exc.__class__.__name__}); see the server log"


def _execute(ctx: Context, actions: list[d.AnyAction], result: RunResult, cause: tuple[str, ...]) -> str | None:
    """Do the actions in a savepoint; keep them only if all succeed and this is not a dry run."""
    session = ctx.uow.session
    run_tag = f"macro-run:{uuid.uuid4().hex[:12]}"
    result.steps = [{"index": i, "type": a.type, "status": "not_run"} for i, a in enumerate(actions)]
    error: str | None = None
    with ExitStack() as stack:
        for origin in (*cause, f"macro:{ctx.macro.id}", run_tag):
            stack.enter_context(events.origin(session, origin))
        savepoint = session.begin_nested()
        for i, action in enumerate(actions):
            step = result.steps[i]
            try:
                step["changes"] = jsonable(ACTIONS[action.type](ctx, action))
                session.flush()
            except Exception as exc:  # any failure is the run's failure, logged
                if not isinstance(exc, CrmError | ValueError):
                    log.exception("macro %s action %d (%s) failed", ctx.macro.id, i, action.type)
                error = f"actions[{i}] ({action.type}): {describe(exc)}"
                step.update(status="failed", error=describe(exc))
                break
            step["status"] = "done"
            ctx.changes.extend(step["changes"])
        if error is not None or ctx.dry_run:
            savepoint.rollback()
            events.drop_caused_by(session, run_tag)
            session.expire(ctx.macro, ["state"])
        else:
            savepoint.commit()
    result.changes = [] if error else ctx.changes
    return error


def _finish(
    uow: UnitOfWork,
    macro: Macro,
    result: RunResult,
    actor: Actor | None,
    started: dt.datetime,
    status: MacroRunStatus,
    error: str | None,
) -> RunResult:
    if result.dry_run:  # a dry run stays one in the log, whatever it found: `error` says what would go wrong
        status = MacroRunStatus.DRY_RUN
    result.status, result.error = status, error[:MAX_ERROR] if error else None
    run = MacroRun(
        macro_id=macro.id,
        entity_type=EntityType(macro.entity_type),
        entity_id=result.entity_id,
        trigger=MacroTrigger(result.trigger),
        status=status,
        user_id=actor.user_id if actor else None,
        channel=uow.channel[:20],
        steps=result.steps,
        changes=result.changes,
        error=result.error,
        started_at=started,
        finished_at=utcnow(),
    )
    uow.session.add(run)
    uow.session.flush()
    result.run_id = run.id
    if status in (MacroRunStatus.SUCCEEDED, MacroRunStatus.FAILED):
        record_execution(uow, macro, status)
    return result


def record_execution(uow: UnitOfWork, macro: Macro, status: MacroRunStatus) -> None:
    """Count the run on the macro without bumping its version: a user editing the macro must not
    get a conflict because it ran in between (the same reasoning as scoring's derived columns)."""
    now = utcnow()
    table = MACROS
    uow.session.execute(
        update(table)
        .where(table.c.id == macro.id)
        .values(execution_count=table.c.execution_count + 1, last_executed_at=now, last_status=status.value)
    )
    set_committed_value(macro, "execution_count", (macro.execution_count or 0) + 1)
    set_committed_value(macro, "last_executed_at", now)
    set_committed_value(macro, "last_status", status.value)


def log_failure(
    uow: UnitOfWork, macro: Macro, entity_id: int | None, trigger: MacroTrigger, error: str, actor: Actor | None = None
) -> RunResult:
    """A FAILED run that never started (a loop was stopped): logged and counted like any failure."""
    result = RunResult(
        None, macro.id, macro.name, EntityType(macro.entity_type).value, entity_id, trigger.value, MacroRunStatus.FAILED
    )
    return _finish(uow, macro, result, actor, utcnow(), MacroRunStatus.FAILED, error)


# --- the actions ---------------------------------------------------------------------------------------
def _update(ctx: Context, values: dict[str, Any], shown: dict[str, Callable[[], Any]]) -> list[dict[str, Any]]:
    before = {name: read() for name, read in shown.items()}
    records.update_record(ctx.uow, ctx.res, ctx.obj.id, values, None)
    out = []
    for name, read in shown.items():
        after = read()
        if after != before[name]:
            out.append({"record": ctx.ref, "field": name, "before": before[name], "after": after})
    if out:
        ctx.refresh()
    return out


def set_field(ctx: Context, action: d.SetField) -> list[dict[str, Any]]:
    value = ctx.text(action.value) if isinstance(action.value, str) else action.value
    if action.field.startswith("custom."):
        name = action.field.removeprefix("custom.")
        return _update(
            ctx, {"custom_fields": {name: value}}, {action.field: lambda: (ctx.obj.custom_fields or {}).get(name)}
        )
    return _update(ctx, {action.field: value}, {action.field: lambda: getattr(ctx.obj, action.field)})


def add_tag(ctx: Context, action: d.AddTag) -> list[dict[str, Any]]:
    actor = ctx.uow.require_actor()
    if not may_change(ctx.res.visibility, actor, ctx.obj):
        raise PermissionDenied(f"You may not change this {ctx.res.noun}.")
    name = (ctx.text(action.tag) or "").strip()[:60]
    if not name:
        raise ValidationFailed({"tag": "the tag is empty once its placeholders are filled"})
    session = ctx.uow.session
    tag = session.scalar(select(Tag).where(func.lower(Tag.name) == name.lower()))
    if tag is None:
        tag = Tag(name=name)
        session.add(tag)
        session.flush()
    taken = session.scalar(
        select(Tagging.id).where(
            Tagging.tag_id == tag.id, Tagging.entity_type == ctx.etype.value, Tagging.entity_id == ctx.obj.id
        )
    )
    if taken is not None:
        return []
    session.add(Tagging(tag_id=tag.id, entity_type=ctx.etype.value, entity_id=ctx.obj.id))
    session.flush()
    ctx.refresh()
    return [{"record": ctx.ref, "tag_added": tag.name}]


def _rotate(ctx: Context, key: str, candidates: list[int], what: str) -> int:
    """The next of `candidates` after the one this macro picked last time (cursor in macro.state)."""
    if not candidates:
        raise ActionFailed(f"{what} has no active rep to assign")
    state = dict(ctx.macro.state or {})
    last = state.get(key)
    chosen = next((c for c in candidates if last is None or c > last), candidates[0])
    state[key] = chosen
    table = MACROS
    ctx.uow.session.execute(update(table).where(table.c.id == ctx.macro.id).values(state=state))
    set_committed_value(ctx.macro, "state", state)
    return chosen


def assign_owner(ctx: Context, action: d.AssignOwner) -> list[dict[str, Any]]:
    if action.strategy == "round_robin":
        user_id = _rotate(
            ctx,
            f"round_robin:team:{action.team_id}",
            users.active_reps(ctx.uow, User.team_id == action.team_id),
            f"team {action.team_id}",
        )
    elif action.strategy == "territory":
        territory = ctx.obj.territory_id
        if territory is None:
            raise ActionFailed(f"this {ctx.res.noun} has no territory to assign by")
        user_id = _rotate(
            ctx,
            f"territory:{territory}",
            users.active_reps(ctx.uow, User.territory_id == territory),
            f"territory {territory}",
        )
    else:
        if action.user_id is None:  # refused on save; a macro edited in the database may still lack it
            raise ActionFailed("assign_owner needs a user_id")
        user_id = action.user_id
    return _update(ctx, {"owner_id": user_id}, {"owner_id": lambda: ctx.obj.owner_id})


def _user(ctx: Context, ref: str | int) -> int:
    if ref == "owner":
        return int(ctx.obj.owner_id)
    if ref == "manager":
        owner = ctx.uow.session.get(User, ctx.obj.owner_id)
        team = owner.team_id if owner is not None else None
        manager = ctx.uow.session.scalar(
            select(User.id)
            .where(User.team_id == team, User.role == Role.MANAGER, User.is_active.is_(True))
            .order_by(User.id)
            .limit(1)
        )
        if team is None or manager is None:
            raise ActionFailed(f"the {ctx.res.noun}'s owner has no team manager to notify")
        return int(manager)
    return int(ref)


def create_activity(ctx: Context, action: d.CreateActivity | d.CreateTask) -> list[dict[str, Any]]:
    values: dict[str, Any] = {
        "type": action.activity_type if isinstance(action, d.CreateActivity) else ActivityType.TASK,
        "subject": ctx.text(action.subject),
        "description": ctx.text(action.description),
        "priority": action.priority,
        "owner_id": _user(ctx, action.assign_to),
        LINK[ctx.etype]: ctx.obj.id,
    }
    if action.due_in_days is not None:
        values["due_at"] = utcnow() + dt.timedelta(days=action.due_in_days)
    activity = records.create_record(ctx.uow, records.resource("activities"), values)
    return [ctx.created("activity", activity, values)]


def create_reminder(ctx: Context, action: d.CreateReminder) -> list[dict[str, Any]]:
    when = action.remind_at or utcnow() + dt.timedelta(minutes=action.remind_in_minutes or 0)
    values: dict[str, Any] = {
        "message": ctx.text(action.message),
        "remind_at": when if when.tzinfo else when.replace(tzinfo=dt.UTC),
        "owner_id": _user(ctx, action.assign_to),
        LINK[ctx.etype]: ctx.obj.id,
    }
    reminder = records.create_record(ctx.uow, records.resource("reminders"), values)
    return [ctx.created("reminder", reminder, values)]


def post_to_feed(ctx: Context, action: d.PostToFeed) -> list[dict[str, Any]]:
    values: dict[str, Any] = {
        "type": "Update",
        "title": ctx.text(action.title),
        "data": {"body": ctx.text(action.body), "macro_id": ctx.macro.id},
        "entity_type": ctx.etype,
        "entity_id": ctx.obj.id,
        "owner_id": _user(ctx, action.user),
    }
    item = records.create_record(ctx.uow, records.resource("feeds"), values)
    return [ctx.created("feed item", item, values)]


def create_ticket(ctx: Context, action: d.CreateTicket) -> list[dict[str, Any]]:
    values: dict[str, Any] = {
        "subject": ctx.text(action.subject),
        "description": ctx.text(action.description),
        "priority": action.priority,
        "channel": "macro",
    }
    if ctx.etype is EntityType.LEAD:
        values["lead_id"] = ctx.obj.id
    elif ctx.etype is EntityType.ACCOUNT:
        values["account_id"] = ctx.obj.id
    else:  # contacts and deals: their account, and the contact where known
        values["account_id"] = ctx.obj.account_id
        values["contact_id"] = ctx.obj.id if ctx.etype is EntityType.CONTACT else ctx.obj.contact_id
    ticket = records.create_record(
        ctx.uow, records.resource("tickets"), {k: v for k, v in values.items() if v is not None}
    )
    return [ctx.created("ticket", ticket, values)]


def notify(ctx: Context, action: d.Notify) -> list[dict[str, Any]]:
    user_id = _user(ctx, action.user)
    title = ctx.text(action.title) or ""
    notifications.notify(
        ctx.uow,
        user_id,
        "macro",
        title,
        ctx.text(action.body),
        entity_type=ctx.etype,
        entity_id=ctx.obj.id,
        data={"macro_id": ctx.macro.id},
        important=action.important,
    )
    return [{"notified": user_id, "title": title}]


def run_scoring(ctx: Context, action: d.RunScoring) -> list[dict[str, Any]]:
    if not d.scoring_available():
        raise ActionFailed("scoring is not available in this installation")
    from crm_backend.scoring import engine as scoring  # lazily: scoring is an optional engine

    session = ctx.uow.session
    before = session.scalar(
        select(EntityScore.score).where(EntityScore.entity_type == ctx.etype, EntityScore.entity_id == ctx.obj.id)
    )
    rows = scoring.score_records(ctx.uow, ctx.etype, [ctx.obj])
    row = rows.get(int(ctx.obj.id))
    after = row.score if row is not None else None
    ctx.refresh()
    return [
        {"record": ctx.ref, "field": "score", "before": before, "after": after, "grade": row.grade if row else None}
    ]


ACTIONS: dict[str, Callable[[Context, Any], list[dict[str, Any]]]] = {
    "set_field": set_field,
    "add_tag": add_tag,
    "assign_owner": assign_owner,
    "create_activity": create_activity,
    "create_task": create_activity,
    "create_reminder": create_reminder,
    "post_to_feed": post_to_feed,
    "create_ticket": create_ticket,
    "notify": notify,
    "run_scoring": run_scoring,
}


# --- finding macros ------------------------------------------------------------------------------------
def find_macro(uow: UnitOfWork, name_or_id: str | int) -> Macro:
    """A macro the acting user can see, by id or by (case-insensitive) name: for the CLI and assistant."""
    res = records.resource("macros")
    text = str(name_or_id).strip()
    if text.isdigit():
        found: Macro = records.get_record(uow, res, int(text))
        return found
    stmt = records.scoped(res, uow.require_actor()).where(func.lower(Macro.name) == text.lower()).order_by(Macro.id)
    matches = list(uow.session.scalars(stmt.limit(2)))
    if not matches:
        raise NotFound(f"No macro named {text!r}.")
    if len(matches) > 1:
        raise ValidationFailed({"macro": f"more than one macro is named {text!r}; use its id"})
    macro: Macro = matches[0]
    return macro


def runnable_macros(uow: UnitOfWork, entity_type: EntityType | str | None = None) -> list[Macro]:
    """The active macros the acting user may run by hand (those they can see), by name."""
    stmt = records.scoped(records.resource("macros"), uow.require_actor()).where(Macro.is_active.is_(True))
    if entity_type is not None:
        stmt = stmt.where(Macro.entity_type == EntityType(entity_type))
    return list(uow.session.scalars(stmt.order_by(func.lower(Macro.name), Macro.id).limit(records.MAX_LIMIT)))


def runs(uow: UnitOfWork, macro: Macro, *, limit: int = 50, offset: int = 0) -> tuple[list[MacroRun], int]:
    """The macro's run log, newest first."""
    if not 1 <= limit <= records.MAX_LIMIT:
        raise ValidationFailed({"limit": f"must be between 1 and {records.MAX_LIMIT}"})
    if offset < 0:
        raise ValidationFailed({"offset": "must not be negative"})
    total = uow.session.scalar(select(func.count()).where(MacroRun.macro_id == macro.id)) or 0
    stmt = select(MacroRun).where(MacroRun.macro_id == macro.id).order_by(MacroRun.id.desc())
    return list(uow.session.scalars(stmt.limit(limit).offset(offset))), int(total)


def run_as_dict(run: MacroRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "macro_id": run.macro_id,
        "entity_type": EntityType(run.entity_type).value,
        "entity_id": run.entity_id,
        "trigger": MacroTrigger(run.trigger).value,
        "status": MacroRunStatus(run.status).value,
        "user_id": run.user_id,
        "channel": run.channel,
        "steps": run.steps,
        "changes": run.changes,
        "error": run.error,
        "started_at": jsonable(run.started_at),
        "finished_at": jsonable(run.finished_at),
    }
