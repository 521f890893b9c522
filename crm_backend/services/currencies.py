"""Currencies: one base currency, and conversion through it."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from crm_backend.errors import Conflict, NotFound, ValidationFailed
from crm_backend.models.base import utcnow
from crm_backend.models.currencies import Currency
from crm_backend.services.validation import validated
from crm_backend.store import UnitOfWork


class ConversionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(max_digits=18, decimal_places=4)
    from_currency: str = Field(alias="from", pattern=r"^[A-Za-z]{3}$")
    to_currency: str = Field(alias="to", pattern=r"^[A-Za-z]{3}$")


def _by_code(uow: UnitOfWork, code: str) -> Currency:
    currency = uow.session.scalar(select(Currency).where(Currency.code == code.upper(), Currency.is_active.is_(True)))
    if currency is None:
        raise NotFound(f"No active currency {code.upper()!r}.")
    return currency


def convert(uow: UnitOfWork, data: ConversionRequest | dict[str, Any]) -> dict[str, Any]:
    """`amount` in `from` expressed in `to`, through the base currency, rounded to cents."""
    request = validated(ConversionRequest, data)
    source, target = _by_code(uow, request.from_currency), _by_code(uow, request.to_currency)
    in_base = request.amount * source.rate_to_base
    result = (in_base / target.rate_to_base).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    rate = (source.rate_to_base / target.rate_to_base).quantize(Decimal("0.000001"))
    return {
        "amount": str(request.amount),
        "from": source.code,
        "to": target.code,
        "result": str(result),
        "rate": str(rate),
        "rates_updated_at": min(source.rate_updated_at, target.rate_updated_at).isoformat(),
    }


def _check_base(uow: UnitOfWork, currency: Currency, is_base: bool, rate: Decimal) -> None:
    if is_base:
        others = uow.session.scalar(
            select(func.count()).select_from(Currency).where(Currency.is_base.is_(True), Currency.id != currency.id)
        )
        if others:
            raise Conflict("There is already a base currency; unset it first.")
        if rate != 1:
            raise ValidationFailed({"rate_to_base": "the base currency's rate is 1"})


def before_create(uow: UnitOfWork, currency: Currency, values: dict[str, Any]) -> None:
    currency.code = currency.code.upper()
    _check_base(uow, currency, bool(values.get("is_base")), Decimal(values["rate_to_base"]))


def before_update(uow: UnitOfWork, currency: Currency, changes: dict[str, tuple[Any, Any]]) -> None:
    is_base = changes["is_base"][1] if "is_base" in changes else currency.is_base
    rate = changes["rate_to_base"][1] if "rate_to_base" in changes else currency.rate_to_base
    _check_base(uow, currency, bool(is_base), Decimal(rate))
    if "rate_to_base" in changes:
        currency.rate_updated_at = utcnow()
