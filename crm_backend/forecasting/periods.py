"""Forecast periods: the month, quarter or year containing a date, their neighbours, and the
labels users type ("2026-Q3", "2026-07", "2026")."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, timedelta

from crm_backend.errors import ValidationFailed
from crm_backend.models.forecasts import ForecastPeriod


class PeriodType(enum.StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"

    @property
    def months(self) -> int:
        return {PeriodType.MONTH: 1, PeriodType.QUARTER: 3, PeriodType.YEAR: 12}[self]

    @property
    def per_year(self) -> int:
        """Periods in a year: the season length of a series of these periods."""
        return 12 // self.months

    @property
    def stored(self) -> ForecastPeriod:
        """The value the forecast tables store for this kind of period."""
        return {
            PeriodType.MONTH: ForecastPeriod.MONTHLY,
            PeriodType.QUARTER: ForecastPeriod.QUARTERLY,
            PeriodType.YEAR: ForecastPeriod.ANNUAL,
        }[self]


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _first_of(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, order=True)
class Period:
    """A calendar period; `start` and `end` are both inside it."""

    start: date
    type: PeriodType

    @property
    def end(self) -> date:
        return self.next().start - timedelta(days=1)

    @property
    def label(self) -> str:
        if self.type is PeriodType.MONTH:
            return f"{self.start.year}-{self.start.month:02d}"
        if self.type is PeriodType.QUARTER:
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return str(self.start.year)

    def shifted(self, steps: int) -> Period:
        return Period(_first_of(_month_index(self.start) + steps * self.type.months), self.type)

    def next(self) -> Period:
        return self.shifted(1)

    def previous(self) -> Period:
        return self.shifted(-1)

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def is_closed(self, today: date) -> bool:
        """A period is closed once its last day is over: its actual is final."""
        return self.end < today

    def as_dict(self) -> dict[str, str]:
        return {
            "label": self.label,
            "type": self.type.value,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


def containing(day: date, type_: PeriodType) -> Period:
    index = _month_index(day)
    return Period(_first_of(index - index % type_.months), type_)


_PATTERNS = (
    (re.compile(r"^(\d{4})-[Qq]([1-4])$"), PeriodType.QUARTER),
    (re.compile(r"^(\d{4})-(\d{1,2})$"), PeriodType.MONTH),
    (re.compile(r"^(\d{4})$"), PeriodType.YEAR),
)


def parse(text: str, field: str = "period") -> Period:
    """ "2026-Q3", "2026-07" or "2026"; anything else is a validation error naming `field`."""
    raw = text.strip()
    for pattern, type_ in _PATTERNS:
        match = pattern.match(raw)
        if not match:
            continue
        year = int(match.group(1))
        if not 1900 <= year <= 2999:
            break
        if type_ is PeriodType.YEAR:
            return Period(date(year, 1, 1), type_)
        number = int(match.group(2))
        if type_ is PeriodType.QUARTER:
            return Period(date(year, 3 * number - 2, 1), type_)
        if 1 <= number <= 12:
            return Period(date(year, number, 1), type_)
        break
    raise ValidationFailed({field: "give a period as 2026-Q3, 2026-07 or 2026"})


def parse_type(text: str, field: str = "period_type") -> PeriodType:
    try:
        return PeriodType(text.strip().lower())
    except ValueError:
        raise ValidationFailed({field: "one of month, quarter, year"}) from None


def closed_before(today: date, type_: PeriodType, count: int) -> list[Period]:
    """The last `count` closed periods before the one containing `today`, oldest first."""
    current = containing(today, type_)
    return [current.shifted(-k) for k in range(count, 0, -1)]
