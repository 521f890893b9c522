"""What a macro may say: its trigger, its conditions and its ordered actions, checked as a whole
when it is saved, so that a bad macro is refused with the path of its bad part (`actions[2].field`)
instead of failing later, on some record, at three in the morning.

Actions are a discriminated union on "type". Text fields may hold `{field}` placeholders filled
from the record's facts (`crm_backend.facts`); names are looked up as whole keys (dotted names
like `{account.industry}` are facts, not attribute access), and a name the record lacks renders
visibly as `[missing: name]`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import string
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from dateutil.rrule import rrule, rrulestr
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from crm_backend import conditions, facts
from crm_backend.errors import ValidationFailed
from crm_backend.models.activities import ActivityType, Priority
from crm_backend.models.automation import EntityType, MacroTrigger
from crm_backend.models.users import Team, User
from crm_backend.services import records
from crm_backend.services.validation import validated
from crm_backend.store import UnitOfWork

MAX_ACTIONS = 20
MAX_TEXT = 300
MAX_BODY = 4000
UserRef = Literal["owner"] | int


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SetField(Action):
    type: Literal["set_field"]
    field: str = Field(min_length=1, max_length=100, description="a writable field, or custom.<name>")
    value: Any = None


class AddTag(Action):
    type: Literal["add_tag"]
    tag: str = Field(min_length=1, max_length=60)


class AssignOwner(Action):
    """One of: `{"user_id": 7}`, `{"strategy": "round_robin", "team_id": 2}`, `{"strategy": "territory"}`."""

    type: Literal["assign_owner"]
    strategy: Literal["user", "round_robin", "territory"] = "user"
    user_id: int | None = None
    team_id: int | None = None


class CreateActivity(Action):
    type: Literal["create_activity"]
    activity_type: ActivityType = ActivityType.TASK
    subject: str = Field(min_length=1, max_length=MAX_TEXT)
    description: str | None = Field(default=None, max_length=MAX_BODY)
    due_in_days: int | None = Field(default=None, ge=0, le=3650)
    priority: Priority = Priority.MEDIUM
    assign_to: UserRef = "owner"


class CreateTask(Action):
    """A task for the record's owner: `create_activity` with activity_type Task, said the short way."""

    type: Literal["create_task"]
    subject: str = Field(min_length=1, max_length=MAX_TEXT)
    description: str | None = Field(default=None, max_length=MAX_BODY)
    due_in_days: int | None = Field(default=None, ge=0, le=3650)
    priority: Priority = Priority.MEDIUM
    assign_to: UserRef = "owner"


class CreateReminder(Action):
    type: Literal["create_reminder"]
    message: str = Field(min_length=1, max_length=1000)
    remind_in_minutes: int | None = Field(default=None, ge=0, le=525_600)
    remind_at: dt.datetime | None = None
    assign_to: UserRef = "owner"


class PostToFeed(Action):
    type: Literal["post_to_feed"]
    title: str = Field(min_length=1, max_length=MAX_TEXT)
    body: str | None = Field(default=None, max_length=MAX_BODY)
    user: UserRef = "owner"


class CreateTicket(Action):
    type: Literal["create_ticket"]
    subject: str = Field(min_length=1, max_length=MAX_TEXT)
    description: str | None = Field(default=None, max_length=MAX_BODY)
    priority: Priority = Priority.MEDIUM


class Notify(Action):
    type: Literal["notify"]
    user: Literal["owner", "manager"] | int = "owner"
    title: str = Field(min_length=1, max_length=MAX_TEXT)
    body: str | None = Field(default=None, max_length=MAX_BODY)
    important: bool = False


class RunScoring(Action):
    type: Literal["run_scoring"]


AnyAction = Annotated[
    SetField
    | AddTag
    | AssignOwner
    | CreateActivity
    | CreateTask
    | CreateReminder
    | PostToFeed
    | CreateTicket
    | Notify
    | RunScoring,
    Field(discriminator="type"),
]
ACTION_LIST: TypeAdapter[list[AnyAction]] = TypeAdapter(list[AnyAction])
TEXT_FIELDS = ("subject", "description", "message", "title", "body", "tag")
RESOURCE = {
    EntityType.LEAD: "leads",
    EntityType.DEAL: "deals",
    EntityType.CONTACT: "contacts",
    EntityType.ACCOUNT: "accounts",
}


# --- placeholders ------------------------------------------------------------------------------------
class _Facts(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return f"[missing: {key}]"


def placeholders(template: str) -> list[str]:
    """The `{name}` placeholders of `template` (ValueError when its braces do not balance)."""
    return [name for _text, name, _spec, _conv in string.Formatter().parse(template) if name is not None]


def render(template: str, record_facts: Mapping[str, Any]) -> str:
    """`template` with each `{name}` replaced by that fact: whole-key look-ups only, never attributes."""
    values = _Facts(record_facts)
    out: list[str] = []
    for text, name, spec, conversion in string.Formatter().parse(template):
        out.append(text)
        if name is None:
            continue
        value = values[name]
        value = "" if value is None else facts.plain(value)
        if conversion == "r":
            value = repr(value)
        try:
            out.append(format(value, spec or ""))
        except (ValueError, TypeError):
            out.append(str(value))
    return "".join(out)


# --- validation --------------------------------------------------------------------------------------
def parse_actions(raw: Any) -> list[AnyAction]:
    """The actions as models, or ValidationFailed naming the bad one (`actions[2].field`)."""
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed({"actions": "give a non-empty list of actions"})
    if len(raw) > MAX_ACTIONS:
        raise ValidationFailed({"actions": f"a macro may have at most {MAX_ACTIONS} actions"})
    try:
        return ACTION_LIST.validate_python(raw)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for err in exc.errors():
            loc = list(err["loc"])
            path = f"actions[{loc[0]}]" if loc else "actions"
            rest = [str(p) for p in loc[2:]] if len(loc) > 1 else []  # loc[1] is the union tag
            if rest:
                path += "." + ".".join(rest)
            fields.setdefault(path, err["msg"])
        raise ValidationFailed(fields) from exc


def scoring_available() -> bool:
    try:
        module = importlib.import_module("crm_backend.scoring.engine")
    except ModuleNotFoundError:
        return False
    return hasattr(module, "score_records")


def check_schedule(rule: Any) -> str:
    """An RFC 5545 RRULE ("RRULE:FREQ=DAILY;BYHOUR=8"), normalised to start with "RRULE:"."""
    if not isinstance(rule, str) or not rule.strip():
        raise ValidationFailed({"schedule": 'a schedule trigger needs an RRULE, e.g. "RRULE:FREQ=DAILY;BYHOUR=8"'})
    text = rule.strip()
    if "\n" in text or "DTSTART" in text.upper():
        raise ValidationFailed({"schedule": "give one RRULE line (the macro's save time anchors it)"})
    if not text.upper().startswith("RRULE:"):
        text = "RRULE:" + text
    try:
        parsed = rrulestr(text, dtstart=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    except (ValueError, TypeError) as exc:
        raise ValidationFailed({"schedule": f"not an RFC 5545 rule: {exc}"}) from exc
    if isinstance(parsed, rrule) and "FREQ=SECONDLY" in text.upper().replace(" ", ""):
        raise ValidationFailed({"schedule": "a macro runs at most once a minute"})
    return text


def validate_macro(
    uow: UnitOfWork,
    *,
    entity_type: Any,
    trigger: Any,
    trigger_fields: Any,
    schedule: Any,
    conditions_: Any,
    actions: Any,
) -> tuple[list[AnyAction], str | None]:
    """Check a whole macro; return its parsed actions and normalised schedule (or raise)."""
    try:
        etype = EntityType(entity_type)
    except ValueError:
        raise ValidationFailed({"entity_type": f"one of {', '.join(e.value for e in EntityType)}"}) from None
    try:
        trig = MacroTrigger(trigger)
    except ValueError:
        raise ValidationFailed({"trigger": f"one of {', '.join(t.value for t in MacroTrigger)}"}) from None
    known = facts.fields(etype, uow)
    _check_trigger(etype, trig, trigger_fields)
    normalised = check_schedule(schedule) if trig is MacroTrigger.SCHEDULE else None
    if trig is not MacroTrigger.SCHEDULE and schedule:
        raise ValidationFailed({"schedule": "only a schedule trigger takes a schedule"})
    conditions.validate(conditions_ if conditions_ is not None else {}, fields=known)
    parsed = parse_actions(actions)
    for i, action in enumerate(parsed):
        check_action(uow, etype, action, f"actions[{i}]", known)
    return parsed, normalised


def _check_trigger(etype: EntityType, trig: MacroTrigger, trigger_fields: Any) -> None:
    if trig is MacroTrigger.ON_STAGE_CHANGE and etype is not EntityType.DEAL:
        raise ValidationFailed({"trigger": "on_stage_change is for deals only"})
    names = trigger_fields or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationFailed({"trigger_fields": "a list of field names"})
    if names and trig is not MacroTrigger.ON_UPDATE:
        raise ValidationFailed({"trigger_fields": "only an on_update trigger takes trigger_fields"})
    columns = set(facts.MODELS[etype].__table__.columns.keys())
    for i, name in enumerate(names):
        if name not in columns:
            raise ValidationFailed({f"trigger_fields[{i}]": f"{etype.value} has no field '{name}'"})


def check_action(uow: UnitOfWork, etype: EntityType, action: AnyAction, path: str, known: Mapping[str, str]) -> None:
    """One action must make sense for `etype`: its fields exist, its values pass the resource's schema."""
    for name in TEXT_FIELDS:
        text = getattr(action, name, None)
        if isinstance(text, str):
            _check_placeholders(text, f"{path}.{name}", known)
    if isinstance(action, SetField):
        _check_set_field(uow, etype, action, path, known)
    elif isinstance(action, AssignOwner):
        _check_assign(uow, action, path)
    elif isinstance(action, CreateReminder):
        if (action.remind_in_minutes is None) == (action.remind_at is None):
            raise ValidationFailed({path: "give either remind_in_minutes or remind_at"})
    elif isinstance(action, RunScoring) and not scoring_available():
        raise ValidationFailed({path: "scoring is not available in this installation"})
    for name in ("user", "assign_to"):
        ref = getattr(action, name, None)
        if isinstance(ref, int) and uow.session.get(User, ref) is None:
            raise ValidationFailed({f"{path}.{name}": f"no user with id {ref}"})


def _check_placeholders(text: str, path: str, known: Mapping[str, str]) -> None:
    try:
        names = placeholders(text)
    except ValueError as exc:
        raise ValidationFailed({path: f"bad placeholder: {exc} (write {{{{ for a literal brace)"}) from None
    for name in names:
        if name not in known and name != "id":
            raise ValidationFailed({path: f"unknown field '{name}' in a placeholder"})


def _check_set_field(uow: UnitOfWork, etype: EntityType, action: SetField, path: str, known: Mapping[str, str]) -> None:
    res = records.resource(RESOURCE[etype])
    if action.field.startswith("custom."):
        if action.field not in known:
            raise ValidationFailed({f"{path}.field": f"no custom field '{action.field[7:]}' on {etype.value}s"})
        return
    writable = set(res.update_schema.model_fields) - {"custom_fields"}
    if action.field not in writable:
        raise ValidationFailed({f"{path}.field": f"'{action.field}' is not a writable field of a {res.noun}"})
    if isinstance(action.value, str) and placeholders_in(action.value):
        _check_placeholders(action.value, f"{path}.value", known)
        return
    try:
        validated(res.update_schema, {action.field: action.value})
    except ValidationFailed as exc:
        raise ValidationFailed({f"{path}.value": "; ".join(exc.fields.values())}) from None


def placeholders_in(text: str) -> bool:
    try:
        return bool(placeholders(text))
    except ValueError:
        return True  # a broken template is reported by the placeholder check


def _check_assign(uow: UnitOfWork, action: AssignOwner, path: str) -> None:
    if action.strategy == "user":
        if action.user_id is None:
            raise ValidationFailed({f"{path}.user_id": "give user_id, or strategy round_robin or territory"})
        user = uow.session.get(User, action.user_id)
        if user is None or not user.is_active:
            raise ValidationFailed({f"{path}.user_id": f"no active user with id {action.user_id}"})
    elif action.strategy == "round_robin":
        if action.team_id is None:
            raise ValidationFailed({f"{path}.team_id": "round_robin needs the team_id to rotate through"})
        if uow.session.get(Team, action.team_id) is None:
            raise ValidationFailed({f"{path}.team_id": f"no team with id {action.team_id}"})
    if action.strategy != "user" and action.user_id is not None:
        raise ValidationFailed({f"{path}.user_id": f"strategy {action.strategy} picks the user itself"})


def definition(values: Mapping[str, Any], obj: Any = None) -> dict[str, Any]:
    """The macro's parts from `values`, falling back to `obj`'s current ones (for partial updates)."""
    names = ("entity_type", "trigger", "trigger_fields", "schedule", "conditions", "actions")
    out = {}
    for name in names:
        if name in values:
            out[name] = values[name]
        elif obj is not None:
            out[name] = getattr(obj, name)
        else:
            out[name] = None
    out["conditions_"] = out.pop("conditions")
    if out["trigger"] is None:
        out["trigger"] = MacroTrigger.MANUAL
    return out


def dump_actions(actions: Sequence[AnyAction]) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json", exclude_none=True) for a in actions]
