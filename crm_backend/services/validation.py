"""Turning pydantic validation errors into the CRM's one `ValidationFailed` error."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from crm_backend.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: M | dict[str, Any]) -> M:
    """`data` as a `model`, or `ValidationFailed` naming each bad field."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = {".".join(str(p) for p in err["loc"]) or "body": err["msg"] for err in exc.errors()}
        raise ValidationFailed(fields) from exc
