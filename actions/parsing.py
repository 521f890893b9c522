"""Parse the amounts and dates sales reps type or say ("50k", "€12.000", "tomorrow at 10", "Q3").

Pure functions only (no Rasa, no database), so every rule can be pinned down with table-driven
tests and reused by any action. Phrases are matched with our own regular expressions instead of a
general-purpose date library: libraries such as dateparser silently drop parts of common phrases
("tomorrow at 10" came back as tomorrow at the *current* time), and a CRM must rather return
``None`` than store a wrong close date or amount.

Rules for ambiguous input (each one has tests):

Amounts
  * ``k``/``thousand``/``grand`` = 10³, ``m``/``mm``/``mil``/``mio``/``million`` = 10⁶, ``bn``/``billion`` = 10⁹;
    "a hundred grand" = 100 000.
  * Both ``.`` and ``,`` present: the one that comes last is the decimal mark ("12.000,50", "12,000.50").
  * Only commas: a single comma followed by exactly three digits is grouping ("12,000"), otherwise it is
    the decimal mark ("12,50"); several commas are grouping ("1,200,000").
  * Only dots: a single dot followed by exactly three digits is grouping only when the currency is one
    written with European grouping (EUR: "12.000 €" = 12 000), otherwise it is the decimal mark
    ("12.000" = 12, "$1.200" = 1.2); several dots are grouping ("1.200.000").
  * Apostrophes group digits (Swiss: "CHF 1'200").
  * "$" is USD, "bucks" is the caller's default currency, no currency at all is the default currency.
  * Negative or zero amounts, and text without digits ("forty thousand"), give ``None``.
  * A bare number (no currency, no multiplier) is not an amount when it reads as a time, a date part, a
    count or a percentage ("at 10", "3 days", "Dec 4", "Q3 2027", "20%"); an amount with a currency or
    multiplier is preferred over a bare number elsewhere in the text.

Dates and times (all results are aware datetimes in the caller's ``tz``)
  * A date alone gives local midnight with ``has_time=False``; ranges ("next week", "this month", "Q3")
    also set ``end``, which is *exclusive*: the local midnight that starts the next period.
  * Weekdays: "Tuesday"/"coming Tuesday" = the next one strictly after today; "this Tuesday" = the next
    one, today included; "next Tuesday" = Tuesday of next calendar week (Monday–Sunday);
    "last Tuesday" = the most recent one strictly before today.
  * "12/04" is US month/day (December 4). A date without a year is the occurrence closest to today
    (so "Nov 20" said on Nov 25 is five days ago, "Jan 5" is next January).
  * A quarter without a year ("Q1") is the nearest one that has not ended yet.
  * "end of week" = Friday; "end of month/quarter/year" = its last day (a single day, no ``end``).
  * A time without am/pm: 1–7 means pm (business hours: "at 3" = 15:00), 8–11 am, 12 noon, 0 and
    13–23 as written. A time without a date is today, even if it has passed: the caller knows whether
    it is logging the past ("I called at 2") or planning.
  * "EOD"/"end of day"/"COB" = 17:00, "morning" = 09:00, "afternoon" = 14:00, "evening" = 18:00,
    "tonight" = 20:00, "midnight" = 00:00 at the *end* of the day named (the next day's start).
  * Minutes and hours ("in 2 hours") are added to the real instant, days and more to the local date,
    so both are correct across DST changes.
  * When a text holds several dates, the first one wins — except that a single day said after a period
    wins over the period ("the Q4 numbers tomorrow at 9" is tomorrow). "sat"/"sun" are not read as
    weekdays ("I sat down").
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import TypeVar
from zoneinfo import ZoneInfo

__all__ = ["Extraction", "Money", "Span", "When", "extract_amount_and_when", "parse_amount", "parse_when"]

Span = tuple[int, int]
_V = TypeVar("_V")


@dataclass(frozen=True)
class Money:
    """An amount in an ISO 4217 currency; Decimal so that 1.2M stays exactly 1 200 000."""

    amount: Decimal
    currency: str


@dataclass(frozen=True)
class When:
    """A point in time, or a range when ``end`` (exclusive) is set; ``text`` is the matched phrase."""

    start: datetime
    end: datetime | None
    has_time: bool
    text: str


@dataclass(frozen=True)
class Extraction:
    """What `extract_amount_and_when` found, with spans into ``source`` so the rest can be kept verbatim."""

    source: str
    money: Money | None
    money_span: Span | None
    when: When | None
    when_spans: tuple[Span, ...]

    @property
    def rest(self) -> str:
        """The source without the matched amount and date phrases, whitespace collapsed."""
        spans = sorted([*self.when_spans, *([self.money_span] if self.money_span else [])])
        return re.sub(r"\s{2,}", " ", _cut(self.source, spans)).strip()


def _cut(text: str, spans: Iterable[Span]) -> str:
    pieces: list[str] = []
    pos = 0
    for start, end in spans:
        pieces.append(text[pos:start])
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def _alt(words: Iterable[str]) -> str:
    """A regex alternation, longest first so that "million" wins over "m"."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


# --------------------------------------------------------------------------- amounts

_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
# fmt: off
_CODES = frozenset((
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK",
    "PLN", "CZK", "HUF", "INR", "CNY", "SGD", "HKD", "MXN", "BRL", "ZAR",
))
# fmt: on
_CURRENCY_WORDS = {
    "dollar": "USD",
    "dollars": "USD",
    "euro": "EUR",
    "euros": "EUR",
    "pound": "GBP",
    "pounds": "GBP",
    "quid": "GBP",
    "yen": "JPY",
    "franc": "CHF",
    "francs": "CHF",
}
_DEFAULT_CURRENCY_WORDS = frozenset({"buck", "bucks"})
# Currencies whose amounts are usually written with "." as the thousands separator.
_EUROPEAN_GROUPING = frozenset({"EUR"})
_THOUSAND, _MILLION, _BILLION = Decimal(1000), Decimal(10**6), Decimal(10**9)
_MULTIPLIERS = {
    "k": _THOUSAND,
    "thousand": _THOUSAND,
    "grand": _THOUSAND,
    "m": _MILLION,
    "mm": _MILLION,
    "mil": _MILLION,
    "mio": _MILLION,
    "million": _MILLION,
    "millions": _MILLION,
    "bn": _BILLION,
    "billion": _BILLION,
}
_WORD_NUMBERS = {"hundred": Decimal(100), "thousand": _THOUSAND, "million": _MILLION, "billion": _BILLION}

_CUR_PRE = rf"(?P<pre>[$€£¥]|\b(?:{_alt(_CODES)})\b)"
_CUR_POST = rf"(?P<post>[$€£¥]|(?:{_alt([*_CODES, *_CURRENCY_WORDS, *_DEFAULT_CURRENCY_WORDS])})(?![a-z]))"
_AMOUNT_RE = re.compile(
    rf"(?:{_CUR_PRE}\s*|(?<![\w.,'’/:]))"
    rf"(?:(?P<num>\d+(?:[.,'’]\d+)*)|\b(?:a|one)\s+(?P<word>{_alt(_WORD_NUMBERS)}))"
    rf"(?:\s*(?P<mult>{_alt(_MULTIPLIERS)})(?![a-z]))?"
    rf"(?:\s*{_CUR_POST})?",
    re.IGNORECASE,
)
_MONTH_WORDS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
# After a bare number (no currency, no multiplier) these words mean it is not an amount.
_NOT_AN_AMOUNT_AFTER = re.compile(
    r"\s*(?:%|-\d|/|:|(?:a\.?m|p\.?m|hrs?|hours?|mins?|minutes?|days?|weeks?|wks?|months?|years?|yrs?"
    rf"|st|nd|rd|th|o'?clock|percent|pct|people|users|seats|licen[cs]es?|{_MONTH_WORDS})(?![a-z]))",
    re.IGNORECASE,
)
# Before a bare number these mean it is a time, a year or a day of the month ("at 10", "Q3 2027", "Dec 4").
_NOT_AN_AMOUNT_BEFORE = re.compile(rf"(?:\bat|@|\bq[1-4]|\b(?:{_MONTH_WORDS})[a-z]*\.?)\s*$", re.IGNORECASE)
_NEGATIVE_BEFORE = re.compile(r"(?:(?<![\d\w])[-−]|\bminus)\s*$", re.IGNORECASE)
_DIGIT_DASH_BEFORE = re.compile(r"\d\s*[-–]\s*$")


@dataclass(frozen=True)
class _AmountHit:
    span: Span
    money: Money | None  # None: looked like an amount but is negative, zero or malformed
    explicit: bool  # had a currency or a multiplier


def parse_amount(text: str, default_currency: str = "USD") -> Money | None:
    """The amount in ``text`` ("50k", "€12.000,50", "CHF 1'200"), or None when there is none.

    An amount with a currency or a multiplier wins over a bare number, so "3 reps want 50k" gives 50 000.
    """
    hit = _best_amount(text, default_currency)
    return hit.money if hit else None


def stated_amount(text: str, default_currency: str = "USD") -> Money | None:
    """Like `parse_amount`, but only an amount that says it is money ("20k", "$5,000", "15 grand", "€900"),
    never a bare number ("8 reps", "2027")."""
    hit = _best_amount(text, default_currency)
    return hit.money if hit and hit.explicit else None


def _best_amount(text: str, default_currency: str) -> _AmountHit | None:
    hits = list(_amount_hits(text, default_currency.upper()))
    explicit = [h for h in hits if h.explicit]
    chosen = explicit or hits
    return chosen[0] if chosen else None


def _amount_hits(text: str, default_currency: str) -> Iterable[_AmountHit]:
    for m in _AMOUNT_RE.finditer(text):
        before = text[: m.start()]
        if _DIGIT_DASH_BEFORE.search(before):
            continue  # "2026-12-04", "50-60"
        currency = _currency_of(m.group("pre")) or _currency_of(m.group("post"))
        explicit = bool(currency or m.group("mult") or m.group("word"))
        if not explicit and (_NOT_AN_AMOUNT_AFTER.match(text, m.end()) or _NOT_AN_AMOUNT_BEFORE.search(before)):
            continue
        if m.group("word") and not (currency or m.group("mult")):
            continue  # "a hundred times" is not money
        currency_code = currency or default_currency
        value = _amount_value(m, currency_code)
        negative = bool(_NEGATIVE_BEFORE.search(before))
        money = Money(value, currency_code) if value is not None and value > 0 and not negative else None
        yield _AmountHit(m.span(), money, explicit)


def _currency_of(token: str | None) -> str | None:
    """ISO code for a symbol, code or word; "" for "bucks" (the default currency); None if no token."""
    if not token:
        return None
    lowered = token.lower()
    if token in _SYMBOLS:
        return _SYMBOLS[token]
    if lowered in _CURRENCY_WORDS:
        return _CURRENCY_WORDS[lowered]
    if lowered in _DEFAULT_CURRENCY_WORDS:
        return None
    return token.upper()


def _amount_value(m: re.Match[str], currency: str) -> Decimal | None:
    if m.group("word"):
        base: Decimal | None = _WORD_NUMBERS[m.group("word").lower()]
    else:
        base = _to_decimal(m.group("num"), european=currency in _EUROPEAN_GROUPING)
    if base is None:
        return None
    mult = m.group("mult")
    return _tidy(base * _MULTIPLIERS[mult.lower()] if mult else base)


def _tidy(value: Decimal) -> Decimal:
    """Drop meaningless trailing zeros (1.2 × 10⁶ is 1200000, not 1200000.0) without going to 1.2E+6."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _to_decimal(raw: str, *, european: bool) -> Decimal | None:
    """Digits with grouping/decimal marks to a Decimal, following the rules in the module docstring."""
    s = raw.replace("'", "").replace("’", "")
    if "," in s and "." in s:
        decimal_mark = "," if s.rfind(",") > s.rfind(".") else "."
        group_mark = "." if decimal_mark == "," else ","
        whole, fraction = s.rsplit(decimal_mark, 1)
        if decimal_mark in whole or not _valid_groups(whole.split(group_mark)):
            return None
        return _decimal(whole.replace(group_mark, "") + "." + fraction)
    for mark in (",", "."):
        if mark in s:
            parts = s.split(mark)
            if len(parts) > 2:
                return _decimal("".join(parts)) if _valid_groups(parts) else None
            grouping = len(parts[1]) == 3 and (mark == "," or european)
            return _decimal("".join(parts) if grouping else ".".join(parts))
    return _decimal(s)


def _valid_groups(parts: list[str]) -> bool:
    return 1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:]) if len(parts) > 1 else True


def _decimal(s: str) -> Decimal | None:
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


# --------------------------------------------------------------------------- dates and times


@dataclass(frozen=True)
class _Ctx:
    now: datetime  # aware, in zone
    zone: ZoneInfo

    @property
    def today(self) -> date:
        return self.now.date()


@dataclass(frozen=True)
class _DateValue:
    day: date | None = None
    end: date | None = None  # exclusive end of a range
    exact: datetime | None = None  # "in 2 hours": a full instant, no time to add


@dataclass(frozen=True)
class _TimeValue:
    at: time
    day_offset: int = 0  # midnight = 00:00 of the following day


_DateHandler = Callable[[re.Match[str], _Ctx], _DateValue | None]
_TimeHandler = Callable[[re.Match[str]], _TimeValue | None]

_WEEKDAYS = {
    **dict.fromkeys(["monday", "mon", "mondy", "mnday"], 0),
    **dict.fromkeys(["tuesday", "tues", "tue", "teusday", "tuesdy", "tusday", "tueday"], 1),
    **dict.fromkeys(["wednesday", "wed", "weds", "wednsday", "wensday", "wedensday", "wednesdy"], 2),
    **dict.fromkeys(["thursday", "thurs", "thur", "thu", "thrusday", "thursdy", "thurday"], 3),
    **dict.fromkeys(["friday", "fri", "firday", "fryday", "fridy"], 4),
    **dict.fromkeys(["saturday", "satruday", "saturdy"], 5),  # not "sat": "I sat with her"
    **dict.fromkeys(["sunday", "sundy"], 6),  # not "sun"
}
_MONTHS = {
    **dict.fromkeys(["january", "jan"], 1),
    **dict.fromkeys(["february", "feb", "febuary"], 2),
    **dict.fromkeys(["march", "mar"], 3),
    **dict.fromkeys(["april", "apr"], 4),
    **dict.fromkeys(["may"], 5),
    **dict.fromkeys(["june", "jun"], 6),
    **dict.fromkeys(["july", "jul"], 7),
    **dict.fromkeys(["august", "aug"], 8),
    **dict.fromkeys(["september", "sept", "sep"], 9),
    **dict.fromkeys(["october", "oct"], 10),
    **dict.fromkeys(["november", "nov"], 11),
    **dict.fromkeys(["december", "dec"], 12),
}
_COUNTS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a couple of": 2,
    "a couple": 2,
    "couple of": 2,
    "a few": 3,
    "few": 3,
}
_TOMORROW = r"tomorrow|tommorow|tomorow|tommorrow|tomorrrow|tomorro|tomrrow|tomorow|tmrw|tmrrw|tmr|tmw|2morrow|2moro"
_WD = _alt(_WEEKDAYS)
_MON = _alt(_MONTHS)
_COUNT = r"\d{1,3}|a\s+couple\s+of|a\s+couple|couple\s+of|a\s+few|few|" + _alt(k for k in _COUNTS if " " not in k)
_UNIT = r"minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|months?|mos?|years?|yrs?"
_PERIOD = r"weekend|week|wk|month|quarter|qtr|year|yr"
_NEXT = r"next|nxt"


def _date_rule(pattern: str) -> Callable[[_DateHandler], _DateHandler]:
    """Register a date phrase; all rules are tried, the earliest (then longest) match wins."""

    def register(handler: _DateHandler) -> _DateHandler:
        _DATE_RULES.append((re.compile(pattern, re.IGNORECASE), handler))
        return handler

    return register


def _time_rule(pattern: str) -> Callable[[_TimeHandler], _TimeHandler]:
    """Register a time-of-day phrase; like dates, the earliest (then longest) match wins."""

    def register(handler: _TimeHandler) -> _TimeHandler:
        _TIME_RULES.append((re.compile(pattern, re.IGNORECASE), handler))
        return handler

    return register


_DATE_RULES: list[tuple[re.Pattern[str], _DateHandler]] = []
_TIME_RULES: list[tuple[re.Pattern[str], _TimeHandler]] = []


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _closest(today: date, month: int, day: int) -> date | None:
    """A date without a year: the occurrence closest to today (see the module docstring)."""
    found = [d for y in (today.year - 1, today.year, today.year + 1) if (d := _safe_date(y, month, day))]
    return min(found, key=lambda d: abs((d - today).days)) if found else None


def _add_months(d: date, months: int) -> date:
    year, month0 = divmod(d.year * 12 + d.month - 1 + months, 12)
    return date(year, month0 + 1, min(d.day, monthrange(year, month0 + 1)[1]))


def _year(raw: str | None) -> int | None:
    if raw is None:
        return None
    return int(raw) + 2000 if len(raw) == 2 else int(raw)


@_date_rule(r"\b(?:on\s+)?(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b")
def _iso_date(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    d = _safe_date(int(m["y"]), int(m["m"]), int(m["d"]))
    return _DateValue(d) if d else None


@_date_rule(r"(?<![\d/.])(?:\bon\s+)?(?P<m>\d{1,2})/(?P<d>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?(?![\d/])")
def _us_date(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    year = _year(m["y"])
    month, day = int(m["m"]), int(m["d"])
    d = _safe_date(year, month, day) if year else _closest(ctx.today, month, day)
    return _DateValue(d) if d else None


@_date_rule(rf"\b(?:on\s+)?(?P<mon>{_MON})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?!:)(?:,?\s+(?P<y>\d{{4}})\b)?")
def _month_day(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    return _named_month_date(m, ctx)


@_date_rule(
    rf"\b(?:on\s+)?(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{_MON})\b\.?(?:,?\s+(?P<y>\d{{4}})\b)?"
)
def _day_month(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    return _named_month_date(m, ctx)


def _named_month_date(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    month, day = _MONTHS[m["mon"].lower()], int(m["d"])
    d = _safe_date(int(m["y"]), month, day) if m["y"] else _closest(ctx.today, month, day)
    return _DateValue(d) if d else None


@_date_rule(
    rf"\b(?:(?P<after>(?:the\s+)?day\s+after\s+(?:{_TOMORROW}))|(?P<before>(?:the\s+)?day\s+before\s+yesterday)"
    rf"|(?P<tomorrow>{_TOMORROW})|(?P<today>today|tdy)|(?P<yesterday>yesterday|yday|ystd))\b"
)
def _relative_day(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    offsets = {"after": 2, "before": -2, "tomorrow": 1, "today": 0, "yesterday": -1}
    name = next(k for k in offsets if m[k])
    return _DateValue(ctx.today + timedelta(days=offsets[name]))


@_date_rule(
    r"(?<!['’])\b(?:(?:by|on|until|till|before)\s+)?"
    rf"(?:(?P<mod>this|{_NEXT}|last|past|(?:the\s+)?coming)\s+)?(?P<wd>{_WD})\b\.?"
)
def _weekday(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    return _DateValue(_weekday_date(ctx.today, _WEEKDAYS[m["wd"].lower()], (m["mod"] or "").lower()))


def _weekday_date(today: date, weekday: int, mod: str) -> date:
    """Which Tuesday "Tuesday", "this/next/last Tuesday" means (see the module docstring)."""
    ahead = (weekday - today.weekday()) % 7
    if mod in ("next", "nxt"):
        return today - timedelta(days=today.weekday()) + timedelta(days=7 + weekday)
    if mod in ("last", "past"):
        return today - timedelta(days=(today.weekday() - weekday) % 7 or 7)
    if mod == "this":
        return today + timedelta(days=ahead)
    return today + timedelta(days=ahead or 7)


@_date_rule(rf"\b(?:in|within)\s+(?P<n>{_COUNT})\s+(?P<u>{_UNIT})\b(?:\s+from\s+now\b)?")
def _in_offset(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    return _offset(ctx, _count(m["n"]), m["u"])


@_date_rule(rf"\b(?P<n>{_COUNT})\s+(?P<u>{_UNIT})\s+(?P<dir>ago|from\s+now)\b")
def _ago_offset(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    sign = -1 if m["dir"].lower() == "ago" else 1
    return _offset(ctx, sign * _count(m["n"]), m["u"])


def _count(raw: str) -> int:
    return int(raw) if raw.isdigit() else _COUNTS[" ".join(raw.lower().split())]


def _offset(ctx: _Ctx, n: int, unit: str) -> _DateValue | None:
    """Hours and minutes move the real instant; days and more move the local calendar date."""
    u = unit.lower()
    if u.startswith(("min", "h")):
        delta = timedelta(minutes=n) if u.startswith("min") else timedelta(hours=n)
        return _DateValue(exact=(ctx.now.astimezone(UTC) + delta).astimezone(ctx.zone))
    if u.startswith("d"):
        return _DateValue(ctx.today + timedelta(days=n))
    if u.startswith("w"):
        return _DateValue(ctx.today + timedelta(weeks=n))
    return _DateValue(_add_months(ctx.today, n * (12 if u.startswith("y") else 1)))


def _period_start(today: date, unit: str) -> date:
    if unit in ("week", "wk", "weekend"):
        return today - timedelta(days=today.weekday())
    if unit == "month":
        return today.replace(day=1)
    if unit in ("quarter", "qtr"):
        return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    return date(today.year, 1, 1)


def _period_shift(start: date, unit: str, n: int) -> date:
    if unit in ("week", "wk", "weekend"):
        return start + timedelta(weeks=n)
    months = {"month": 1, "quarter": 3, "qtr": 3}.get(unit, 12)
    return _add_months(start, n * months)


_MOD_SHIFT = {"this": 0, "current": 0, "next": 1, "nxt": 1, "coming": 1, "last": -1, "past": -1, "previous": -1}


def _mod_shift(mod: str | None) -> int:
    return _MOD_SHIFT[mod.lower().split()[-1]] if mod else 0


@_date_rule(rf"\b(?P<mod>this|current|{_NEXT}|(?:the\s+)?coming|last|past|previous)\s+(?P<unit>{_PERIOD})\b(?!\s+ago)")
def _period(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    unit = m["unit"].lower()
    start = _period_shift(_period_start(ctx.today, unit), unit, _mod_shift(m["mod"]))
    if unit == "weekend":
        return _DateValue(start + timedelta(days=5), start + timedelta(days=7))
    return _DateValue(start, _period_shift(start, unit, 1))


@_date_rule(
    r"\b(?:(?:by|before|until|till|at)\s+)?(?:(?:the\s+)?end\s+of\s+(?:the\s+)?"
    rf"(?:(?P<mod>this|current|{_NEXT})\s+)?(?P<unit>week|wk|month|quarter|qtr|year|yr)|(?P<abbr>eow|eom|eoq|eoy))\b"
)
def _end_of(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    abbreviations = {"eow": "week", "eom": "month", "eoq": "quarter", "eoy": "year"}
    unit = abbreviations[m["abbr"].lower()] if m["abbr"] else m["unit"].lower()
    start = _period_shift(_period_start(ctx.today, unit), unit, _mod_shift(m["mod"]))
    if unit in ("week", "wk"):
        return _DateValue(start + timedelta(days=4))  # business week: Friday
    return _DateValue(_period_shift(start, unit, 1) - timedelta(days=1))


@_date_rule(r"\b(?:(?:in|by|during|for)\s+)?q(?P<q>[1-4])(?:\s+(?P<y>\d{4})|\s*'(?P<y2>\d{2}))?\b")
def _quarter(m: re.Match[str], ctx: _Ctx) -> _DateValue | None:
    q = int(m["q"])
    year = _year(m["y"] or m["y2"])
    if year is None:  # the nearest quarter that has not ended yet
        year = ctx.today.year if q >= (ctx.today.month - 1) // 3 + 1 else ctx.today.year + 1
    start = date(year, 3 * q - 2, 1)
    return _DateValue(start, _add_months(start, 3))


_AMPM = r"(?P<ap>[ap])\.?\s?m\b\.?"
_AT = r"(?:(?:\bat|@)\s*)"
_NOT_AN_HOUR_AFTER = (
    r"(?![\d.,:'/]|\s*(?:[%$€£¥]|(?:k|m|mm|bn|mil|mio|grand|thousand|million|billion|percent|usd|eur|gbp|chf"
    r"|dollars?|euros?|bucks?|pounds?|am|pm|[ap]\.m)(?![a-z])))"
)


def _clock(hour: int, minute: int, ampm: str | None) -> _TimeValue | None:
    """Hour and minute to a time, using the business-hours rule when there is no am/pm."""
    if minute > 59:
        return None
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm.lower() == "p" else 0)
    elif 1 <= hour <= 7:
        hour += 12
    return _TimeValue(time(hour, minute)) if hour <= 23 else None


@_time_rule(rf"{_AT}?\b(?P<h>\d{{1,2}})[:.](?P<mi>\d{{2}})(?!\d)(?:\s*{_AMPM})?")
def _hh_mm(m: re.Match[str]) -> _TimeValue | None:
    if ":" not in m.group(0) and not (m["ap"] or m.group(0).lower().startswith(("at", "@"))):
        return None  # "12.50" alone is an amount, not a time
    return _clock(int(m["h"]), int(m["mi"]), m["ap"])


@_time_rule(rf"{_AT}?\b(?P<h>\d{{1,2}})\s*{_AMPM}")
def _hour_ampm(m: re.Match[str]) -> _TimeValue | None:
    return _clock(int(m["h"]), 0, m["ap"])


@_time_rule(rf"{_AT}(?P<h>\d{{1,2}})(?:\s*o'?clock)?\b{_NOT_AN_HOUR_AFTER}")
def _at_hour(m: re.Match[str]) -> _TimeValue | None:
    return _clock(int(m["h"]), 0, None)


_NAMED_TIMES = {
    "noon": _TimeValue(time(12)),
    "midday": _TimeValue(time(12)),
    "midnight": _TimeValue(time(0), day_offset=1),
    "eod": _TimeValue(time(17)),
    "cob": _TimeValue(time(17)),
    "eob": _TimeValue(time(17)),
    "end of day": _TimeValue(time(17)),
    "end of the day": _TimeValue(time(17)),
    "end of business day": _TimeValue(time(17)),
    "end of the business day": _TimeValue(time(17)),
    "close of business": _TimeValue(time(17)),
    "tonight": _TimeValue(time(20)),
    "morning": _TimeValue(time(9)),
    "afternoon": _TimeValue(time(14)),
    "evening": _TimeValue(time(18)),
}


@_time_rule(
    r"\b(?:(?:at|by|before|until|till)\s+)?(?:(?:this|in\s+the)\s+)?(?:12\s+)?"
    r"(?P<name>noon|midday|midnight|eod|cob|eob|end\s+of\s+(?:the\s+)?(?:business\s+)?day|close\s+of\s+business"
    r"|tonight|morning|afternoon|evening)\b"
)
def _named_time(m: re.Match[str]) -> _TimeValue | None:
    return _NAMED_TIMES[" ".join(m["name"].lower().split())]


def _first_hit(
    rules: Iterable[tuple[re.Pattern[str], Callable[[re.Match[str]], _V | None]]],
    text: str,
    blocked: Span | None = None,
) -> tuple[Span, _V] | None:
    """The earliest (then longest) match of any rule whose handler accepts it, skipping ``blocked``."""
    best: tuple[Span, _V] | None = None
    for pattern, handler in rules:
        for m in pattern.finditer(text):
            start, end = m.span()
            if blocked and start < blocked[1] and blocked[0] < end:
                continue
            if best and (start, -end) >= (best[0][0], -best[0][1]):
                continue
            value = handler(m)
            if value is not None:
                best = ((start, end), value)
    return best


def parse_when(text: str, *, now: datetime, tz: str) -> When | None:
    """The date/time or date range in ``text`` relative to ``now``, in time zone ``tz``; None if none."""
    found = _find_when(text, now=now, tz=tz)
    return found[0] if found else None


def _find_when(text: str, *, now: datetime, tz: str) -> tuple[When, tuple[Span, ...]] | None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")  # a naive now would silently shift every result
    zone = ZoneInfo(tz)
    ctx = _Ctx(now.astimezone(zone), zone)
    date_rules = [(p, _bind(h, ctx)) for p, h in _DATE_RULES]
    date_hit = _first_hit(date_rules, text)
    if date_hit and date_hit[1].end and not date_hit[1].exact:
        # "review the Q4 numbers tomorrow at 9": a single day said later beats a period said first.
        day_hit = _first_hit(date_rules, text, blocked=date_hit[0])
        if day_hit and not day_hit[1].end:
            date_hit = day_hit
    if date_hit and (date_hit[1].exact or date_hit[1].end):
        return _when_from(ctx, text, date_hit, None), (date_hit[0],)
    time_hit = _first_hit(_TIME_RULES, text, blocked=date_hit[0] if date_hit else None)
    if not date_hit and not time_hit:
        return None
    spans = tuple(sorted(hit[0] for hit in (date_hit, time_hit) if hit))
    return _when_from(ctx, text, date_hit, time_hit), spans


def _bind(handler: _DateHandler, ctx: _Ctx) -> Callable[[re.Match[str]], _DateValue | None]:
    return lambda m: handler(m, ctx)


def _when_from(
    ctx: _Ctx,
    text: str,
    date_hit: tuple[Span, _DateValue] | None,
    time_hit: tuple[Span, _TimeValue] | None,
) -> When:
    spans = sorted(hit[0] for hit in (date_hit, time_hit) if hit)
    phrase = _phrase(text, spans)
    value = date_hit[1] if date_hit else _DateValue(ctx.today)
    if value.exact:
        return When(value.exact, None, True, phrase)
    day = value.day or ctx.today
    if value.end:
        return When(_local(day, time(0), ctx.zone), _local(value.end, time(0), ctx.zone), False, phrase)
    if time_hit:
        at = time_hit[1]
        return When(_local(day + timedelta(days=at.day_offset), at.at, ctx.zone), None, True, phrase)
    return When(_local(day, time(0), ctx.zone), None, False, phrase)


def _phrase(text: str, spans: list[Span]) -> str:
    """The matched words: one slice when the pieces are adjacent, else the pieces joined by a space."""
    if len(spans) == 2 and not text[spans[0][1] : spans[1][0]].strip(" ,"):
        return text[spans[0][0] : spans[1][1]]
    return " ".join(text[s:e] for s, e in spans)


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Wall-clock time in ``zone``; a time skipped by DST is moved forward like a clock would be."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC).astimezone(zone)


# --------------------------------------------------------------------------- both in one sentence


def extract_amount_and_when(text: str, *, now: datetime, tz: str, default_currency: str = "USD") -> Extraction:
    """Find an amount and a date in one sentence ("proposal by Friday for about 50k").

    The date is found first and blanked out, so "in 3 days" or "Dec 4" are never read as amounts.
    """
    found = _find_when(text, now=now, tz=tz)
    when, when_spans = found if found else (None, ())
    masked = text
    for start, end in when_spans:
        masked = masked[:start] + " " * (end - start) + masked[end:]
    hit = _best_amount(masked, default_currency)
    money = hit.money if hit else None
    return Extraction(text, money, hit.span if hit and money else None, when, when_spans)
