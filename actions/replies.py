"""Reply wording shared by all actions: domain errors as sentences, amounts and dates as text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from crm_backend.errors import (
    AuthenticationFailed,
    Conflict,
    CrmError,
    Duplicate,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    VisitorOnly,
)

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}

VISITOR_ONLY = (
    "I can't look up or change CRM records in this chat. I can answer questions about our product, "
    'book a demo with our team ("book a demo") or bring in a person ("talk to a person"). '
    "Team members: sign in, or link this chat account with a one-time code, to use your CRM here."
)
NOT_SIGNED_IN = (
    "I can't tell who you are, so I can't show CRM data here. "
    "Please talk to me through the CRM assistant API or a linked channel."
)
UNEXPECTED = "Sorry, something went wrong on my side and nothing was changed. Please try again."


@dataclass(slots=True)
class Reply:
    """One message back to the user; `buttons` are (title, payload) pairs."""

    text: str
    buttons: list[tuple[str, str]] = field(default_factory=list)
    custom: dict[str, Any] | None = None  # a payload for the gateway instead of words (e.g. a handoff request)


@dataclass(slots=True)
class ActionResult:
    replies: list[Reply]
    events: list[dict[str, Any]] = field(default_factory=list)


def sentence_for(error: CrmError) -> str:
    """The one place a domain error becomes words for the user."""
    if isinstance(error, VisitorOnly):
        return VISITOR_ONLY
    if isinstance(error, AuthenticationFailed):
        return NOT_SIGNED_IN
    if isinstance(error, NotFound):
        return f"I couldn't find that. {error.message}"
    if isinstance(error, PermissionDenied):
        return "You don't have permission to do that."
    if isinstance(error, ValidationFailed):
        problems = "; ".join(f"{name}: {why}" for name, why in error.fields.items())
        return f"Some details aren't valid ({problems}). Nothing was saved."
    if isinstance(error, Duplicate):
        return "That looks like a record that already exists, so I didn't create a twin."
    if isinstance(error, Conflict):
        return f"That clashes with the record's current state: {error.message} Nothing was changed."
    return UNEXPECTED


def money(amount: Decimal, currency: str) -> str:
    """`$48,000` / `€18,500.50` / `CHF 1,200`."""
    whole = amount == amount.to_integral_value()
    number = f"{amount:,.0f}" if whole else f"{amount:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{currency} {number}"


def day(value: date | None) -> str:
    """`7 Dec 2026`, or a plain phrase when there is no date."""
    return f"{value.day} {value:%b %Y}" if value else "no close date set"


def moment(value: datetime, zone: ZoneInfo, now: datetime | None = None) -> str:
    """`Tue 1 Dec, 15:00` in the user's zone (with the year when it is not `now`'s year)."""
    local = value.astimezone(zone)
    year = f" {local.year}" if now is not None and local.year != now.astimezone(zone).year else ""
    return f"{local:%a} {local.day} {local:%b}{year}, {local:%H:%M}"
