"""Custom fields: typed extra values on records, checked against their definitions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from crm_backend.errors import ValidationFailed
from crm_backend.models.annotations import CustomFieldDefinition, CustomFieldType
from crm_backend.store import UnitOfWork


def _valid(definition: CustomFieldDefinition, value: Any) -> bool:
    if value is None:
        return not definition.required
    kind = definition.field_type
    if kind is CustomFieldType.TEXT:
        return isinstance(value, str) and len(value) <= 1000
    if kind is CustomFieldType.NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is CustomFieldType.BOOLEAN:
        return isinstance(value, bool)
    if kind is CustomFieldType.DATE:
        try:
            dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            return False
        return True
    return value in (definition.choices or [])


def check_custom_fields(uow: UnitOfWork, entity_type: str, values: dict[str, Any]) -> None:
    """Reject unknown fields, wrong types and missing required ones, naming each."""
    definitions = {
        d.name: d
        for d in uow.session.scalars(
            select(CustomFieldDefinition).where(CustomFieldDefinition.entity_type == entity_type)
        )
    }
    problems: dict[str, str] = {}
    for name, value in values.items():
        definition = definitions.get(name)
        if definition is None:
            problems[f"custom_fields.{name}"] = "no such custom field"
        elif not _valid(definition, value):
            expected = (
                f"one of {definition.choices}"
                if definition.field_type is CustomFieldType.CHOICE
                else (f"a {definition.field_type.value}")
            )
            problems[f"custom_fields.{name}"] = f"must be {expected}"
    for name, definition in definitions.items():
        if definition.required and values.get(name) is None:
            problems.setdefault(f"custom_fields.{name}", "is required")
    if problems:
        raise ValidationFailed(problems)
