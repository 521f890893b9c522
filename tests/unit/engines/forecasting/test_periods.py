from __future__ import annotations

from datetime import date

import pytest

from crm_backend.errors import ValidationFailed
from crm_backend.forecasting.periods import PeriodType, closed_before, containing, parse


@pytest.mark.parametrize(
    ("text", "start", "end", "label"),
    [
        ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30), "2026-Q3"),
        ("2026-q1", date(2026, 1, 1), date(2026, 3, 31), "2026-Q1"),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29), "2024-02"),
        ("2026-7", date(2026, 7, 1), date(2026, 7, 31), "2026-07"),
        ("2026", date(2026, 1, 1), date(2026, 12, 31), "2026"),
    ],
)
def test_parse_gives_the_period_and_its_bounds(text: str, start: date, end: date, label: str) -> None:
    period = parse(text)
    assert (period.start, period.end, period.label) == (start, end, label)


@pytest.mark.parametrize("text", ["2026-Q5", "2026-13", "26", "Q3", "2026-Q3-01", ""])
def test_parse_refuses_anything_else_naming_the_field(text: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse(text)
    assert "period" in err.value.fields


def test_neighbours_cross_year_boundaries() -> None:
    assert parse("2026-Q4").next().label == "2027-Q1"
    assert parse("2026-01").previous().label == "2025-12"
    assert parse("2026").shifted(-2).label == "2024"


def test_containing_and_closed_before() -> None:
    assert containing(date(2026, 8, 17), PeriodType.QUARTER).label == "2026-Q3"
    assert [p.label for p in closed_before(date(2026, 2, 3), PeriodType.QUARTER, 3)] == [
        "2025-Q2",
        "2025-Q3",
        "2025-Q4",
    ]
    assert parse("2026-Q1").is_closed(date(2026, 4, 1)) and not parse("2026-Q1").is_closed(date(2026, 3, 31))
