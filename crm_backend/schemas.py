"""Pydantic schemas derived from the models: one place turns a column into a validated field.

For each resource there are three: `Create` (required columns required, unknown fields rejected),
`Update` (every writable field optional; only the fields sent are applied) and `Read` (what the
API returns; secret columns never appear). Per-field rules that a column type cannot express
(email format, ISO currency codes, score ranges) are added as overrides. The same schemas
validate API bodies, import rows and assistant slot values, and are published as OpenAPI.
"""

from __future__ import annotations

import datetime as dt
import enum
import typing
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model
from sqlalchemy import JSON, BigInteger, Boolean, Date, Float, Integer, Numeric, String, Text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import ColumnProperty, Mapper, class_mapper

from crm_backend.models.base import Base, UtcDateTime

# Never writable through the API: identity, bookkeeping and what services compute.
SYSTEM_FIELDS = frozenset({"id", "created_at", "updated_at", "version", "deleted_at"})


def is_secret(name: str) -> bool:
    return name.endswith("_encrypted") or name == "token_hash"


class CreateBase(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UpdateBase(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReadBase(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _python_type(mapper: Mapper[Any], prop: ColumnProperty[Any]) -> Any:
    column = prop.columns[0]
    col_type = column.type
    if isinstance(col_type, SAEnum) and col_type.enum_class is not None:
        return col_type.enum_class
    if isinstance(col_type, UtcDateTime):
        return AwareDatetime
    if isinstance(col_type, Date):
        return dt.date
    if isinstance(col_type, Boolean):
        return bool
    if isinstance(col_type, Integer | BigInteger):
        return int
    if isinstance(col_type, Numeric) and not isinstance(col_type, Float):
        return Annotated[Decimal, Field(max_digits=col_type.precision, decimal_places=col_type.scale)]
    if isinstance(col_type, Float):
        return float
    if isinstance(col_type, JSON):
        hint = typing.get_type_hints(mapper.class_).get(prop.key)
        args = typing.get_args(hint)
        return args[0] if args else dict[str, Any]
    if isinstance(col_type, String) and not isinstance(col_type, Text) and col_type.length:
        return Annotated[str, Field(max_length=col_type.length)]
    return str


def _has_default(prop: ColumnProperty[Any]) -> bool:
    column = prop.columns[0]
    return column.default is not None or column.server_default is not None


def schemas_for(
    model: type[Base],
    *,
    read_only: frozenset[str] = frozenset(),
    hidden: frozenset[str] = frozenset(),
    optional: frozenset[str] = frozenset(),
    overrides: dict[str, tuple[Any, Any]] | None = None,
    extra_create: dict[str, tuple[Any, Any]] | None = None,
    extra_update: dict[str, tuple[Any, Any]] | None = None,
    extra_read: dict[str, tuple[Any, Any]] | None = None,
) -> tuple[type[BaseModel], type[BaseModel], type[BaseModel]]:
    """(Create, Update, Read) schemas for `model`.

    `read_only` fields are returned but not accepted; `hidden` neither; `optional` are not required
    on create even without a column default (a service fills them, e.g. the owner);
    `overrides` replace a field's (type, FieldInfo); `extra_*` add fields that are not columns.
    """
    mapper = class_mapper(model)
    overrides = overrides or {}
    create_fields: dict[str, Any] = {}
    update_fields: dict[str, Any] = {}
    read_fields: dict[str, Any] = {}
    for prop in mapper.column_attrs:
        name = prop.key
        if name in hidden or is_secret(name):
            continue
        column = prop.columns[0]
        base_type, info = overrides.get(name, (_python_type(mapper, prop), None))
        nullable = bool(column.nullable)
        read_fields[name] = (base_type | None if nullable else base_type, None if nullable else ...)
        if name in SYSTEM_FIELDS or name in read_only:
            continue
        required = not nullable and not _has_default(prop) and name not in optional
        # A non-nullable field may be left out (its default applies) but never sent as null.
        value_type = base_type | None if nullable else base_type
        kwargs = _field_kwargs(info) if info is not None else {}
        create_fields[name] = (base_type, Field(..., **kwargs)) if required else (value_type, Field(None, **kwargs))
        update_fields[name] = (value_type, Field(None, **kwargs))
    create_fields.update(extra_create or {})
    update_fields.update(extra_update or {})
    read_fields.update(extra_read or {})
    name = model.__name__
    create = create_model(f"{name}Create", __base__=CreateBase, **create_fields)
    update = create_model(f"{name}Update", __base__=UpdateBase, **update_fields)
    read = create_model(f"{name}Read", __base__=ReadBase, **read_fields)
    return create, update, read


def _field_kwargs(info: Any) -> dict[str, Any]:
    """The constraints of a FieldInfo, to rebuild it with another default."""
    kwargs: dict[str, Any] = {}
    for meta in getattr(info, "metadata", []):
        for attr in ("max_length", "min_length", "pattern", "ge", "le", "gt", "lt", "max_digits", "decimal_places"):
            value = getattr(meta, attr, None)
            if value is not None:
                kwargs[attr] = value
    if getattr(info, "description", None):
        kwargs["description"] = info.description
    return kwargs


def enum_values(enum_cls: type[enum.Enum]) -> list[str]:
    return [str(m.value) for m in enum_cls]
