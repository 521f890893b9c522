"""Generic record operations over every resource: list, get, create, update, delete.

A `Resource` names a model, its schemas, its visibility rule and its searchable, filterable and
sortable fields, plus hooks where an aggregate adds its own rules (duplicate checks, stage
probability, hierarchy). The REST API, the importer and the assistant's actions all go through
these functions, so validation, permissions, versions and the audit trail are the same everywhere.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, func, inspect, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from crm_backend.errors import Conflict, Duplicate, NotFound, PermissionDenied, ValidationFailed
from crm_backend.models.base import Base, utcnow
from crm_backend.models.users import Role, User
from crm_backend.services.custom_fields import check_custom_fields
from crm_backend.services.scopes import Visibility, may_change, may_create, team_members, visible
from crm_backend.services.validation import validated
from crm_backend.store import Actor, UnitOfWork

MAX_LIMIT = 500
Hook = Callable[[UnitOfWork, Any, dict[str, Any]], None]


@dataclass(frozen=True)
class Resource:
    """One REST collection and the rules of its records."""

    name: str  # the collection's URL name, e.g. "sales-forecasts"
    model: type[Base]
    create_schema: type[BaseModel]
    update_schema: type[BaseModel]
    read_schema: type[BaseModel]
    visibility: Visibility
    search: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    sort: tuple[str, ...] = ("id", "created_at", "updated_at")
    default_sort: str = "-id"
    label: str = ""  # singular noun for messages ("lead")
    prepare: Callable[[UnitOfWork, dict[str, Any]], dict[str, Any]] | None = None  # payload → column values
    before_create: Hook | None = None  # (uow, new object, validated payload)
    before_update: Hook | None = None  # (uow, object, {field: (before, after)})
    before_delete: Hook | None = None
    find_duplicates: Callable[[UnitOfWork, Any], list[dict[str, Any]]] | None = None
    serialize_extra: Callable[[Any], dict[str, Any]] | None = None
    writable: bool = True

    @property
    def noun(self) -> str:
        return self.label or self.name.rstrip("s").replace("-", " ")

    @property
    def id_column(self) -> Any:
        return self.model.id  # type: ignore[attr-defined]

    @property
    def soft_delete(self) -> bool:
        return hasattr(self.model, "deleted_at")

    @property
    def owned(self) -> bool:
        return hasattr(self.model, "owner_id")

    def column(self, name: str) -> InstrumentedAttribute[Any]:
        attr = getattr(self.model, name, None)
        if attr is None:
            raise ValidationFailed({name: "unknown field"})
        return attr  # type: ignore[no-any-return]


@dataclass
class ListQuery:
    filters: dict[str, str] = field(default_factory=dict)
    q: str | None = None
    sort: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass
class Page:
    items: list[Any]
    total: int


REGISTRY: dict[str, Resource] = {}
BY_TABLE: dict[str, Resource] = {}


def register(resource: Resource) -> Resource:
    REGISTRY[resource.name] = resource
    BY_TABLE.setdefault(resource.model.__tablename__, resource)
    return resource


def resource(name: str) -> Resource:
    if not REGISTRY:
        import crm_backend.resources  # noqa: F401 - registers every collection
    try:
        return REGISTRY[name]
    except KeyError:
        raise NotFound(f"No collection named {name!r}.") from None


# --- reading ---------------------------------------------------------------------------------------
def scoped(res: Resource, actor: Actor) -> Select[Any]:
    stmt = select(res.model).where(visible(res.model, res.visibility, actor))
    if res.soft_delete:
        stmt = stmt.where(res.model.deleted_at.is_(None))  # type: ignore[attr-defined]
    return stmt


def _coerce(res: Resource, name: str, raw: str) -> Any:
    column = res.column(name).property.columns[0]
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = str
    try:
        if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
            return python_type(raw)
        if python_type is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if python_type is int:
            return int(raw)
        if python_type is Decimal:
            return Decimal(raw)
        if python_type is float:
            return float(raw)
        if python_type is dt.datetime:
            value = dt.datetime.fromisoformat(raw)
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if python_type is dt.date:
            return dt.date.fromisoformat(raw)
    except (ValueError, InvalidOperation) as exc:
        raise ValidationFailed({name: f"{raw!r} is not a valid value"}) from exc
    return raw


def _filter_clause(res: Resource, key: str, raw: str) -> ColumnElement[bool]:
    name, _, op = key.partition("__")
    if name not in res.filters:
        allowed = ", ".join(res.filters) or "none"
        raise ValidationFailed({key: f"not a filter of {res.name} (filters: {allowed})"})
    col: Any = res.column(name)
    clause: ColumnElement[bool]
    if op in ("", "eq"):
        clause = col.is_(None) if raw.lower() == "null" else col == _coerce(res, name, raw)
        return clause
    if op == "ne":
        clause = col != _coerce(res, name, raw)
        return clause
    if op == "in":
        clause = col.in_([_coerce(res, name, part) for part in raw.split(",") if part])
        return clause
    if op in ("gte", "lte", "gt", "lt"):
        value = _coerce(res, name, raw)
        clause = {"gte": col >= value, "lte": col <= value, "gt": col > value, "lt": col < value}[op]
        return clause
    raise ValidationFailed({key: f"unknown operator {op!r} (use eq, ne, in, gt, gte, lt, lte)"})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_records(uow: UnitOfWork, res: Resource, query: ListQuery) -> Page:
    actor = uow.require_actor()
    if not 1 <= query.limit <= MAX_LIMIT:
        raise ValidationFailed({"limit": f"must be between 1 and {MAX_LIMIT}"})
    if query.offset < 0:
        raise ValidationFailed({"offset": "must not be negative"})
    stmt = scoped(res, actor)
    for key, raw in query.filters.items():
        stmt = stmt.where(_filter_clause(res, key, raw))
    if query.q:
        if not res.search:
            raise ValidationFailed({"q": f"{res.name} has no text search"})
        pattern = f"%{_escape_like(query.q.strip())}%"
        stmt = stmt.where(or_(*(res.column(c).ilike(pattern, escape="\\") for c in res.search)))
    total = uow.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    sort = query.sort or res.default_sort
    descending = sort.startswith("-")
    sort_field = sort.lstrip("-")
    if sort_field not in res.sort:
        raise ValidationFailed({"sort": f"sort by one of: {', '.join(res.sort)} (prefix '-' for descending)"})
    order = res.column(sort_field).desc() if descending else res.column(sort_field).asc()
    stmt = stmt.order_by(order, res.model.id.desc() if descending else res.model.id.asc())  # type: ignore[attr-defined]
    items = list(uow.session.scalars(stmt.limit(query.limit).offset(query.offset)))
    return Page(items=items, total=int(total))


def get_record(uow: UnitOfWork, res: Resource, record_id: int) -> Any:
    actor = uow.require_actor()
    obj = uow.session.scalar(scoped(res, actor).where(res.model.id == record_id))  # type: ignore[attr-defined]
    if obj is None:
        raise NotFound(f"No {res.noun} with id {record_id}.")
    return obj


def serialize(res: Resource, obj: Any) -> dict[str, Any]:
    """The record as its Read schema (computed fields from `serialize_extra`), JSON-ready."""
    columns = inspect(res.model).column_attrs.keys()
    values = {name: getattr(obj, name) for name in res.read_schema.model_fields if name in columns}
    if res.serialize_extra:
        values.update(res.serialize_extra(obj))
    return res.read_schema.model_validate(values).model_dump(mode="json")


# --- writing ---------------------------------------------------------------------------------------
def _check_owner(uow: UnitOfWork, actor: Actor, owner_id: int) -> None:
    """Reps own what they create; managers may assign within their team; admins to anyone."""
    if owner_id == actor.user_id:
        return
    if actor.role is Role.ADMIN:
        if uow.session.get(User, owner_id) is None:
            raise ValidationFailed({"owner_id": "no such user"})
        return
    if actor.role is Role.MANAGER and actor.team_id is not None:
        in_team = uow.session.scalar(select(func.count()).where(User.id == owner_id, User.id.in_(team_members(actor))))
        if in_team:
            return
    raise PermissionDenied(
        "You may only assign records to yourself" + (" or your team." if actor.role is Role.MANAGER else ".")
    )


def _check_references(uow: UnitOfWork, res: Resource, values: Mapping[str, Any]) -> None:
    """Every foreign key the caller sets must point at a record the caller may see."""
    actor = uow.require_actor()
    mapper = inspect(res.model)
    for name, value in values.items():
        if value is None or name == "owner_id" or name not in mapper.columns:
            continue
        for fk in mapper.columns[name].foreign_keys:
            target = BY_TABLE.get(fk.column.table.name)
            if target is None:
                continue
            found = uow.session.scalar(
                scoped(target, actor).where(target.model.id == value)  # type: ignore[attr-defined]
            )
            if found is None:
                raise ValidationFailed({name: f"no {target.noun} with id {value}"})


def check_linked_entity(uow: UnitOfWork, obj: Any, values: dict[str, Any]) -> None:
    """Notes, signals and feed items point at any record by (entity_type, entity_id): it must be one
    the acting user can see."""
    entity_type, entity_id = getattr(obj, "entity_type", None), getattr(obj, "entity_id", None)
    if entity_type is None or entity_id is None:
        return
    kind = str(getattr(entity_type, "value", entity_type))
    target = REGISTRY.get(kind) or REGISTRY.get(f"{kind}s") or BY_TABLE.get(kind)
    if target is None:
        raise ValidationFailed({"entity_type": f"{kind!r} is not a kind of record"})
    found = uow.session.scalar(scoped(target, uow.require_actor()).where(target.id_column == entity_id))
    if found is None:
        raise ValidationFailed({"entity_id": f"no {target.noun} with id {entity_id}"})


def create_record(
    uow: UnitOfWork, res: Resource, data: BaseModel | Mapping[str, Any], *, allow_duplicate: bool = False
) -> Any:
    actor = uow.require_actor()
    if not res.writable or not may_create(res.visibility, actor):
        raise PermissionDenied(f"You may not create {res.name}.")
    values = _new_values(uow, res, data)
    if res.owned:
        _check_owner(uow, actor, values["owner_id"])
    _check_references(uow, res, values)
    if hasattr(res.model, "custom_fields"):
        values["custom_fields"] = values.get("custom_fields") or {}
        check_custom_fields(uow, res.model.__tablename__, values["custom_fields"])
    obj = res.model(**values)
    if res.before_create:
        res.before_create(uow, obj, values)
    if res.find_duplicates and not allow_duplicate:
        candidates = res.find_duplicates(uow, obj)
        if candidates:
            raise Duplicate(candidates, f"This looks like an existing {res.noun}; nothing was created.")
    uow.session.add(obj)
    uow.session.flush()
    return obj


def _new_values(uow: UnitOfWork, res: Resource, data: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """A create payload validated and prepared into column values (the acting user owns it by default)."""
    payload = validated(res.create_schema, dict(data) if isinstance(data, Mapping) else data)
    values = payload.model_dump(exclude_unset=True)
    if res.prepare:
        values = res.prepare(uow, values)
    if res.owned:
        values["owner_id"] = values.get("owner_id") or uow.require_actor().user_id
    return values


def duplicates_of(uow: UnitOfWork, res: Resource, data: BaseModel | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The existing records `data` would be a twin of (what create_record would refuse), without
    creating anything: the assistant offers them before asking to create."""
    if res.find_duplicates is None:
        return []
    values = _new_values(uow, res, data)
    obj = res.model(**values)
    try:
        if res.before_create:
            res.before_create(uow, obj, values)
        return res.find_duplicates(uow, obj)
    finally:
        if obj in uow.session:
            uow.session.expunge(obj)


def update_record(
    uow: UnitOfWork, res: Resource, record_id: int, data: BaseModel | Mapping[str, Any], expected_version: int | None
) -> Any:
    actor = uow.require_actor()
    obj = get_record(uow, res, record_id)
    if not res.writable or not may_change(res.visibility, actor, obj):
        raise PermissionDenied(f"You may not change this {res.noun}.")
    payload = validated(res.update_schema, dict(data) if isinstance(data, Mapping) else data)
    values = payload.model_dump(exclude_unset=True)
    if res.prepare:
        values = res.prepare(uow, values)
    _check_version(res, obj, expected_version)
    if "owner_id" in values:
        if values["owner_id"] is None:
            raise ValidationFailed({"owner_id": "a record must have an owner"})
        _check_owner(uow, actor, values["owner_id"])
    _check_references(uow, res, values)
    if values.get("custom_fields"):
        merged = {**(getattr(obj, "custom_fields", None) or {}), **values["custom_fields"]}
        check_custom_fields(uow, res.model.__tablename__, merged)
        values["custom_fields"] = merged
    changes = {k: (getattr(obj, k), v) for k, v in values.items() if getattr(obj, k) != v}
    if res.before_update:
        res.before_update(uow, obj, changes)
    for key, (_before, after) in changes.items():
        setattr(obj, key, after)
    uow.session.flush()
    return obj


def delete_record(uow: UnitOfWork, res: Resource, record_id: int, expected_version: int | None) -> None:
    actor = uow.require_actor()
    obj = get_record(uow, res, record_id)
    if not res.writable or not may_change(res.visibility, actor, obj):
        raise PermissionDenied(f"You may not delete this {res.noun}.")
    _check_version(res, obj, expected_version)
    if res.before_delete:
        res.before_delete(uow, obj, {})
    if res.soft_delete:
        obj.deleted_at = utcnow()
    else:
        uow.session.delete(obj)
    uow.session.flush()


def _check_version(res: Resource, obj: Any, expected_version: int | None) -> None:
    if expected_version is None or not hasattr(obj, "version"):
        return
    if obj.version != expected_version:
        raise Conflict(
            f"This {res.noun} is at version {obj.version}, not {expected_version}: someone changed it. "
            "Reload it and try again."
        )
