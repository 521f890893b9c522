"""The condition language shared by scoring rules, macros and signals: every operator, the
combinators, and malformed conditions rejected with the path of the bad part."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from crm_backend import conditions
from crm_backend.errors import ValidationFailed

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
FACTS: dict[str, Any] = {
    "source": "Referral",
    "status": "New",
    "employees": 250,
    "budget": 48000.0,
    "title": "VP of Sales",
    "email": None,
    "tags": ["vip", "renewal"],
    "has_authority": True,
    "created_at": NOW - dt.timedelta(days=10),
    "expected_close_date": dt.date(2026, 12, 31),
    "account.industry": "Software",
}


def cmp(op: str, field: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node = {"field": field, "op": op, **extra}
    if value is not None or op not in ("exists",):
        node["value"] = value
    return node


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (cmp("eq", "source", "referral"), True),  # text compares case-insensitively
        (cmp("eq", "source", "Website"), False),
        (cmp("ne", "source", "Website"), True),
        (cmp("ne", "email", None), False),
        (cmp("eq", "email", None), True),
        (cmp("gt", "employees", 200), True),
        (cmp("gt", "employees", 250), False),
        (cmp("gte", "employees", 250), True),
        (cmp("lt", "budget", 50000), True),
        (cmp("lte", "budget", 48000), True),
        (cmp("lt", "budget", 48000), False),
        (cmp("gt", "employees", "100"), True),  # a numeric string against a number
        (cmp("in", "source", ["Website", "Referral"]), True),
        (cmp("in", "source", ["Website"]), False),
        (cmp("not_in", "source", ["Website"]), True),
        (cmp("not_in", "email", ["a@b.c"]), True),  # missing is not in any list
        (cmp("contains", "title", "sales"), True),
        (cmp("contains", "tags", "VIP"), True),  # list membership
        (cmp("contains", "tags", "churn"), False),
        (cmp("startswith", "title", "vp"), True),
        (cmp("startswith", "title", "CEO"), False),
        ({"field": "email", "op": "exists"}, False),
        ({"field": "title", "op": "exists"}, True),
        (cmp("exists", "email", False), True),
        (cmp("between", "employees", [100, 250]), True),  # inclusive
        (cmp("between", "employees", [251, 1000]), False),
        (cmp("between", "expected_close_date", ["2026-12-01", "2026-12-31"]), True),
        (cmp("gt", "created_at", "2026-11-01"), True),  # a date-time against an ISO date
        (cmp("days_since", "created_at", 7), True),  # at least 7 days ago
        (cmp("days_since", "created_at", 14), False),
        (cmp("days_since", "created_at", {"lt": 30}), True),
        (cmp("days_since", "created_at", {"between": [5, 9]}), False),
        (cmp("days_since", "created_at", {"between": [9, 11]}), True),
        (cmp("days_since", "email", 1), False),  # no date, no match
        (cmp("eq", "has_authority", True), True),
        (cmp("eq", "account.industry", "software"), True),
    ],
)
def test_each_operator(node: dict[str, Any], expected: bool) -> None:
    conditions.validate(node, FACTS.keys())
    assert conditions.evaluate(node, FACTS, now=NOW) is expected


def test_combinators_and_empty_condition() -> None:
    hot = {
        "all": [
            cmp("eq", "source", "Referral"),
            {"any": [cmp("gt", "employees", 1000), cmp("contains", "tags", "vip")]},
            {"not": cmp("eq", "status", "Lost")},
        ]
    }
    conditions.validate(hot, FACTS.keys())
    assert conditions.evaluate(hot, FACTS, now=NOW)
    assert not conditions.evaluate(hot, {**FACTS, "tags": []}, now=NOW)
    assert conditions.evaluate({}, FACTS)  # no condition: always


def test_check_explains_each_comparison_and_never_raises_on_data() -> None:
    node = {"all": [cmp("eq", "source", "Referral"), cmp("gt", "title", 5)]}
    outcome = conditions.check(node, FACTS, now=NOW)
    assert outcome.matched is False
    assert outcome.reasons == ["source eq 'Referral': yes (is 'Referral')"]
    assert outcome.errors and outcome.errors[0].startswith("title gt 5: cannot compare")


@pytest.mark.parametrize(
    ("node", "path", "words"),
    [
        ([], "conditions", "must be an object"),
        ({"field": "sorce", "op": "eq", "value": 1}, "conditions.field", "did you mean 'source'"),
        (
            {"all": [cmp("eq", "source", "x"), {"field": "source", "op": "equals", "value": 1}]},
            "conditions.all[1].op",
            "unknown operator",
        ),
        ({"any": []}, "conditions.any", "non-empty list"),
        ({"all": [], "any": []}, "conditions", "only key"),
        ({"field": "source", "op": "in", "value": "Website"}, "conditions.value", "non-empty list"),
        ({"field": "employees", "op": "between", "value": [10]}, "conditions.value", "[low, high]"),
        ({"field": "employees", "op": "between", "value": [10, 5]}, "conditions.value", "low <= high"),
        ({"field": "created_at", "op": "days_since", "value": -1}, "conditions.value", "cannot be negative"),
        ({"field": "created_at", "op": "days_since", "value": {"over": 3}}, "conditions.value", "days_since compares"),
        ({"field": "source", "op": "eq"}, "conditions.value", "needs a value"),
        ({"field": "source", "op": "gt", "value": None}, "conditions.value", "needs a number"),
        ({"field": "source", "op": "eq", "value": 1, "weight": 2}, "conditions", "unknown key"),
        ({"not": {"field": "tags", "op": "startswith", "value": 3}}, "conditions.not.value", "needs text"),
        ({"field": "source", "op": "exists", "value": "yes"}, "conditions.value", "true or false"),
    ],
)
def test_malformed_conditions_name_the_bad_part(node: Any, path: str, words: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        conditions.validate(node, FACTS.keys())
    assert path in err.value.fields
    assert words in err.value.fields[path]


def test_size_and_depth_are_bounded() -> None:
    deep: dict[str, Any] = cmp("eq", "source", "x")
    for _ in range(conditions.MAX_DEPTH + 2):
        deep = {"not": deep}
    with pytest.raises(ValidationFailed) as err:
        conditions.validate(deep)
    assert "nest" in " ".join(err.value.fields.values())
    wide = {"any": [cmp("eq", "source", str(i)) for i in range(conditions.MAX_NODES + 1)]}
    with pytest.raises(ValidationFailed) as err:
        conditions.validate(wide)
    assert "at most" in " ".join(err.value.fields.values())
