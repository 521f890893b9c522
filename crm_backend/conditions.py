"""The condition language that scoring rules, macros and signals share: plain JSON a user can write.

    {}                                                   always true
    {"all": [C, ...]}   {"any": [C, ...]}   {"not": C}    combinators
    {"field": "account.industry", "op": "eq", "value": "Software"}

Operators: eq, ne, gt, gte, lt, lte, in, not_in, contains, startswith, exists, between, days_since.
Fields are the facts of a record (`crm_backend.facts`): its columns, `custom.<name>` for custom
fields, and related data ("account.industry", "activity_count", "last_activity_at", ...).

Text compares case-insensitively; numbers numerically; dates and date-times as dates when either
side is a date. `days_since` takes a number (at least that many days ago) or one comparison
({"gt": 30}, {"lt": 7}, {"between": [7, 30]}). A missing value (null) matches only `exists: false`
and `ne`/`not_in`.

`validate()` rejects a malformed condition with the path of the bad part ("conditions.all[1].op:
unknown operator 'equals'"); `evaluate()` never raises on data: a comparison that cannot be made
(text against a number) is false, and is reported by `check()`.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dateutil.parser import isoparse
from rapidfuzz import fuzz, process

from crm_backend.errors import ValidationFailed

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
OPERATORS = (*COMPARISONS, "in", "not_in", "contains", "startswith", "exists", "between", "days_since")
COMBINATORS = ("all", "any", "not")
MAX_NODES = 200
MAX_DEPTH = 12
MAX_LIST = 500


class Incomparable(Exception):
    """A value in the data cannot be compared the way the condition asks."""


# --- validation --------------------------------------------------------------------------------------
def validate(condition: Any, fields: Collection[str] | None = None, *, path: str = "conditions") -> None:
    """Raise `ValidationFailed({path: message})` naming the first malformed part of `condition`.

    `fields`: the facts that exist for the entity type (see `crm_backend.facts.fields`); unknown
    ones are rejected with a suggestion. `None` skips the field check.
    """
    counter = [0]
    _validate(condition, fields, path, 0, counter)


def _fail(path: str, message: str) -> None:
    raise ValidationFailed({path: message})


def _validate(node: Any, fields: Collection[str] | None, path: str, depth: int, counter: list[int]) -> None:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        _fail(path, f"a condition may have at most {MAX_NODES} parts")
    if depth > MAX_DEPTH:
        _fail(path, f"conditions nest at most {MAX_DEPTH} levels deep")
    if not isinstance(node, dict):
        _fail(path, 'must be an object such as {"field": "status", "op": "eq", "value": "New"}')
    if not node:
        return
    keys = set(node)
    combinators = keys & set(COMBINATORS)
    if combinators:
        if len(keys) != 1:
            _fail(path, f"'{sorted(combinators)[0]}' must be the only key of its object (found {sorted(keys)})")
        key = next(iter(keys))
        if key == "not":
            _validate(node["not"], fields, f"{path}.not", depth + 1, counter)
            return
        items = node[key]
        if not isinstance(items, list) or not items:
            _fail(f"{path}.{key}", "must be a non-empty list of conditions")
        for i, item in enumerate(items):
            _validate(item, fields, f"{path}.{key}[{i}]", depth + 1, counter)
        return
    if "field" not in keys:
        _fail(path, "give 'field' and 'op' (and 'value'), or one of 'all', 'any', 'not'")
    unknown = keys - {"field", "op", "value"}
    if unknown:
        _fail(path, f"unknown key(s) {sorted(unknown)}; a comparison has field, op and value")
    name = node["field"]
    if not isinstance(name, str) or not name:
        _fail(f"{path}.field", "must be a field name")
    if fields is not None and name not in fields:
        _fail(f"{path}.field", f"unknown field '{name}'{_suggest(name, fields, 70)}")
    op = node.get("op")
    if op not in OPERATORS:
        suggestion = _suggest(op, OPERATORS, 60) if isinstance(op, str) else ""
        _fail(f"{path}.op", f"unknown operator {op!r}{suggestion} (use one of {', '.join(OPERATORS)})")
    _validate_value(op, node.get("value"), "value" in node, f"{path}.value")


def _suggest(word: str, choices: Collection[str], cutoff: int) -> str:
    # Plain edit similarity first ("stag" → "stage", not "stage_changed_at"); then the looser
    # weighted ratio, which also catches words that contain a choice ("equals" → "eq").
    hint = process.extractOne(word, list(choices), scorer=fuzz.ratio, score_cutoff=75) or process.extractOne(
        word, list(choices), score_cutoff=cutoff
    )
    return f"; did you mean '{hint[0]}'?" if hint else ""


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _validate_value(op: str, value: Any, given: bool, path: str) -> None:
    if op == "exists":
        if given and not isinstance(value, bool):
            _fail(path, "exists takes true or false (default true)")
        return
    if not given:
        _fail(path, f"'{op}' needs a value")
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            _fail(path, f"'{op}' needs a non-empty list of at most {MAX_LIST} values")
        if not all(_scalar(v) for v in value):
            _fail(path, f"'{op}' compares with plain values (text, numbers, true/false)")
        return
    if op == "between":
        _validate_range(value, path)
        return
    if op == "days_since":
        if _number(value):
            if value < 0:
                _fail(path, "days_since counts days, so it cannot be negative")
            return
        if not isinstance(value, dict) or len(value) != 1:
            _fail(path, 'days_since takes a number of days or one comparison, e.g. {"gt": 30}')
        ((cmp, bound),) = value.items()
        if cmp == "between":
            _validate_range(bound, f"{path}.between")
        elif cmp not in COMPARISONS or not _number(bound):
            _fail(path, f"days_since compares with one of {', '.join(COMPARISONS)} or between, and a number")
        return
    if op in ("contains", "startswith"):
        if op == "startswith" and not isinstance(value, str):
            _fail(path, "startswith needs text")
        if not _scalar(value) or value is None:
            _fail(path, f"'{op}' needs text or a plain value")
        return
    if not _scalar(value):
        _fail(path, f"'{op}' compares with a plain value (text, a number, true/false or null)")
    if op in ("gt", "gte", "lt", "lte") and (value is None or isinstance(value, bool)):
        _fail(path, f"'{op}' needs a number, a date or text")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _validate_range(value: Any, path: str) -> None:
    if not isinstance(value, list) or len(value) != 2 or not all(_scalar(v) and v is not None for v in value):
        _fail(path, "between needs [low, high]")
    low, high = value
    try:
        if _order(low) > _order(high):
            _fail(path, f"between needs low <= high (got {low} > {high})")
    except Incomparable:
        _fail(path, "between needs two values of the same kind (numbers, dates or text)")


def _order(value: Any) -> Any:
    """A sort key for a literal: numbers as floats, ISO dates as dates, other text folded."""
    if _number(value):
        return (0, float(value))
    if isinstance(value, str):
        parsed = _as_date(value)
        return (1, parsed) if parsed is not None else (2, value.casefold())
    raise Incomparable(value)


# --- evaluation --------------------------------------------------------------------------------------
@dataclass
class Outcome:
    matched: bool
    reasons: list[str] = field(default_factory=list)  # one line per comparison made
    errors: list[str] = field(default_factory=list)  # comparisons that could not be made


def evaluate(condition: Mapping[str, Any], facts: Mapping[str, Any], *, now: dt.datetime | None = None) -> bool:
    """Whether `facts` satisfy `condition` (a validated one); never raises on the data."""
    return _eval(condition, facts, now or dt.datetime.now(dt.UTC), None)


def check(condition: Mapping[str, Any], facts: Mapping[str, Any], *, now: dt.datetime | None = None) -> Outcome:
    """`evaluate` with reasons: what was compared and what came out (for explanations and dry runs)."""
    outcome = Outcome(False)
    outcome.matched = _eval(condition, facts, now or dt.datetime.now(dt.UTC), outcome)
    return outcome


def _eval(node: Mapping[str, Any], facts: Mapping[str, Any], now: dt.datetime, out: Outcome | None) -> bool:
    if not node:
        return True
    if "all" in node:
        return all(_eval(c, facts, now, out) for c in node["all"])
    if "any" in node:
        return any(_eval(c, facts, now, out) for c in node["any"])
    if "not" in node:
        return not _eval(node["not"], facts, now, out)
    name, op, value = node.get("field", ""), node.get("op", ""), node.get("value")
    actual = _plain(facts.get(name))
    try:
        result = _compare(op, actual, value, now)
    except (Incomparable, TypeError, ValueError, OverflowError) as exc:
        if out is not None:
            out.errors.append(f"{name} {op} {value!r}: cannot compare {actual!r} ({exc.__class__.__name__})")
        return False
    if out is not None:
        out.reasons.append(f"{name} {op} {value!r}: {'yes' if result else 'no'} (is {_show(actual)})")
    return result


def _show(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    return value


def _as_date(text: str) -> dt.date | dt.datetime | None:
    if len(text) < 8 or not text[:4].isdigit() or text[4] != "-":
        return None
    try:
        parsed = isoparse(text)
    except (ValueError, OverflowError):
        return None
    if len(text) == 10:
        return parsed.date()
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _coerce(actual: Any, literal: Any) -> tuple[Any, Any]:
    """Bring a fact and a literal to comparable forms, or raise Incomparable."""
    kind = type(actual)
    if kind is type(literal):  # the common case, cheaply: text with text, number with number
        if kind is str:
            return actual.casefold(), literal.casefold()
        if kind is int or kind is float:
            return actual, literal
    if isinstance(actual, bool) or isinstance(literal, bool):
        if isinstance(actual, bool) and isinstance(literal, bool):
            return actual, literal
        raise Incomparable("true/false against another kind")
    if isinstance(actual, int | float):
        if _number(literal):
            return float(actual), float(literal)
        if isinstance(literal, str):
            try:
                return float(actual), float(literal)
            except ValueError:
                raise Incomparable("a number against text") from None
        raise Incomparable("a number against another kind")
    if isinstance(actual, dt.datetime | dt.date):
        other = _as_date(literal) if isinstance(literal, str) else None
        if other is None:
            raise Incomparable("a date against something that is not an ISO date")
        if isinstance(actual, dt.datetime) and isinstance(other, dt.datetime):
            return actual, other
        a = actual.date() if isinstance(actual, dt.datetime) else actual
        b = other.date() if isinstance(other, dt.datetime) else other
        return a, b
    if isinstance(actual, str):
        if isinstance(literal, str):
            return actual.casefold(), literal.casefold()
        if _number(literal):
            try:
                return float(actual), float(literal)
            except ValueError:
                raise Incomparable("text against a number") from None
        raise Incomparable("text against another kind")
    raise Incomparable(f"cannot compare {type(actual).__name__}")


def _equal(actual: Any, literal: Any) -> bool:
    if actual is None or literal is None:
        return actual is None and literal is None
    a, b = _coerce(actual, literal)
    return bool(a == b)


def _compare(op: str, actual: Any, value: Any, now: dt.datetime) -> bool:
    if op == "exists":
        present = actual is not None and actual != "" and actual != [] and actual != {}
        return present if value is None or value is True else not present
    if op == "eq":
        return _equal(actual, value)
    if op == "ne":
        return not _equal(actual, value)
    if op == "in":
        return actual is not None and any(_equal(actual, v) for v in value)
    if op == "not_in":
        return actual is None or not any(_equal(actual, v) for v in value)
    if actual is None:
        return False
    if op in ("gt", "gte", "lt", "lte"):
        a, b = _coerce(actual, value)
        return bool({"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op])
    if op == "between":
        a_lo, lo = _coerce(actual, value[0])
        a_hi, hi = _coerce(actual, value[1])
        return bool(lo <= a_lo and a_hi <= hi)
    if op == "contains":
        if isinstance(actual, list | tuple | set):
            return any(_equal(_plain(item), value) for item in actual)
        if isinstance(actual, str):
            return str(value).casefold() in actual.casefold()
        raise Incomparable("contains works on text and lists")
    if op == "startswith":
        if not isinstance(actual, str):
            raise Incomparable("startswith works on text")
        return actual.casefold().startswith(str(value).casefold())
    if op == "days_since":
        return _days_since(actual, value, now)
    raise Incomparable(f"unknown operator {op}")


def _days_since(actual: Any, value: Any, now: dt.datetime) -> bool:
    if isinstance(actual, str):
        parsed = _as_date(actual)
        if parsed is None:
            raise Incomparable("days_since needs a date")
        actual = parsed
    if isinstance(actual, dt.datetime):
        days = (now - actual).total_seconds() / 86400
    elif isinstance(actual, dt.date):
        days = float((now.date() - actual).days)
    else:
        raise Incomparable("days_since needs a date")
    if _number(value):
        return days >= float(value)
    ((cmp, bound),) = value.items()
    if cmp == "between":
        return float(bound[0]) <= days <= float(bound[1])
    b = float(bound)
    return bool(
        {
            "eq": math.floor(days) == b,
            "ne": math.floor(days) != b,
            "gt": days > b,
            "gte": days >= b,
            "lt": days < b,
            "lte": days <= b,
        }[cmp]
    )
