"""Table-driven tests for actions.parsing: every phrase the conversational skills rely on is pinned here."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from actions.parsing import Money, When, extract_amount_and_when, parse_amount, parse_when

TZ = "Europe/Berlin"
BERLIN = ZoneInfo(TZ)
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=BERLIN)  # a Wednesday afternoon


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("50k", "50000", "USD"),
        ("50K", "50000", "USD"),
        ("$1.2M", "1200000", "USD"),
        ("1.5 million", "1500000", "USD"),
        ("2 mil", "2000000", "USD"),
        ("3 mio", "3000000", "USD"),
        ("2.5bn", "2500000000", "USD"),
        ("12,000 euros", "12000", "EUR"),
        ("12.000 €", "12000", "EUR"),
        ("12.000,50 €", "12000.5", "EUR"),
        ("€12,000.50", "12000.5", "EUR"),
        ("€12.000", "12000", "EUR"),
        ("EUR 300", "300", "EUR"),
        ("eur 300", "300", "EUR"),
        ("300 EUR", "300", "EUR"),
        ("£40k", "40000", "GBP"),
        ("40 quid", "40", "GBP"),
        ("48,000 dollars", "48000", "USD"),
        ("48000", "48000", "USD"),
        ("a hundred grand", "100000", "USD"),
        ("100 grand", "100000", "USD"),
        ("a million dollars", "1000000", "USD"),
        ("1.2m", "1200000", "USD"),
        ("CHF 1'200", "1200", "CHF"),
        ("¥5000", "5000", "JPY"),
        ("5000 yen", "5000", "JPY"),
        ("12.5", "12.5", "USD"),
        ("12,50", "12.5", "USD"),
        ("1,200,000", "1200000", "USD"),
        ("1.200.000", "1200000", "USD"),
        ("1.200.000 €", "1200000", "EUR"),
        # a dot + three digits without a European currency is a decimal mark
        ("12.000", "12", "USD"),
        ("$1.200", "1.2", "USD"),
        ("50 k", "50000", "USD"),
        ("SEK 50k", "50000", "SEK"),
        # fillers and surrounding words
        ("um, like 50k maybe", "50000", "USD"),
        ("the deal is worth about $75,000 I think", "75000", "USD"),
        # a currency or multiplier wins over a bare number
        ("3 reps want 50k", "50000", "USD"),
    ],
)
def test_parse_amount(text: str, amount: str, currency: str) -> None:
    assert parse_amount(text) == Money(Decimal(amount), currency)


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("5 bucks", "EUR", Money(Decimal(5), "EUR")),
        ("5 bucks", "USD", Money(Decimal(5), "USD")),
        ("48000", "GBP", Money(Decimal(48000), "GBP")),
        ("50k", "chf", Money(Decimal(50000), "CHF")),
        ("$50", "EUR", Money(Decimal(50), "USD")),
    ],
)
def test_parse_amount_default_currency(text: str, default: str, expected: Money) -> None:
    assert parse_amount(text, default_currency=default) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no number here",
        "forty thousand",
        "a hundred times",
        "-50k",
        "minus 300 EUR",
        "0",
        "$0",
        "0k",
        "in 3 days",
        "2026-12-04",
        "12/04",
        "Q3 2027",
        "Dec 4",
        "at 10",
        "3pm",
        "20%",
        "12.3.4",
    ],
)
def test_parse_amount_none(text: str) -> None:
    assert parse_amount(text) is None


def test_money_amount_has_no_trailing_float_noise() -> None:
    money = parse_amount("$1.2M")
    assert money is not None
    assert str(money.amount) == "1200000"


# --------------------------------------------------------------------------- dates: single days and times


@pytest.mark.parametrize(
    ("text", "start", "has_time", "matched"),
    [
        ("today", berlin(2026, 11, 25), False, "today"),
        ("tomorrow", berlin(2026, 11, 26), False, "tomorrow"),
        ("yesterday", berlin(2026, 11, 24), False, "yesterday"),
        ("I called her yesterday", berlin(2026, 11, 24), False, "yesterday"),
        ("day after tomorrow", berlin(2026, 11, 27), False, "day after tomorrow"),
        ("the day before yesterday", berlin(2026, 11, 23), False, "the day before yesterday"),
        # the dateparser pitfall: the time must not be dropped
        ("tomorrow at 10", berlin(2026, 11, 26, 10), True, "tomorrow at 10"),
        ("tomorrow at 10am", berlin(2026, 11, 26, 10), True, "tomorrow at 10am"),
        ("tomorrow at 10 am", berlin(2026, 11, 26, 10), True, "tomorrow at 10 am"),
        ("tomorrow 3:30pm", berlin(2026, 11, 26, 15, 30), True, "tomorrow 3:30pm"),
        ("tomorrow at 10 p.m.", berlin(2026, 11, 26, 22), True, "tomorrow at 10 p.m."),
        ("tomorrow morning", berlin(2026, 11, 26, 9), True, "tomorrow morning"),
        ("tomorrow afternoon", berlin(2026, 11, 26, 14), True, "tomorrow afternoon"),
        ("at 3pm", berlin(2026, 11, 25, 15), True, "at 3pm"),
        ("3pm", berlin(2026, 11, 25, 15), True, "3pm"),
        ("12am", berlin(2026, 11, 25, 0), True, "12am"),
        ("12pm", berlin(2026, 11, 25, 12), True, "12pm"),
        # business-hours rule: 1-7 pm, 8-11 am
        ("at 3", berlin(2026, 11, 25, 15), True, "at 3"),
        ("at 7", berlin(2026, 11, 25, 19), True, "at 7"),
        ("at 8", berlin(2026, 11, 25, 8), True, "at 8"),
        ("at 11", berlin(2026, 11, 25, 11), True, "at 11"),
        ("at 12", berlin(2026, 11, 25, 12), True, "at 12"),
        ("at 3:30", berlin(2026, 11, 25, 15, 30), True, "at 3:30"),
        ("at 15:00", berlin(2026, 11, 25, 15), True, "at 15:00"),
        ("at 3 o'clock", berlin(2026, 11, 25, 15), True, "at 3 o'clock"),
        ("@ 9", berlin(2026, 11, 25, 9), True, "@ 9"),
        ("next Tuesday 3pm", berlin(2026, 12, 1, 15), True, "next Tuesday 3pm"),
        ("Tuesday", berlin(2026, 12, 1), False, "Tuesday"),
        ("Monday", berlin(2026, 11, 30), False, "Monday"),
        ("Thursday", berlin(2026, 11, 26), False, "Thursday"),
        # a bare weekday is never today (already under way) ...
        ("Wednesday", berlin(2026, 12, 2), False, "Wednesday"),
        # ... but "this" includes today
        ("this Wednesday", berlin(2026, 11, 25), False, "this Wednesday"),
        ("this Friday at noon", berlin(2026, 11, 27, 12), True, "this Friday at noon"),
        ("coming Friday", berlin(2026, 11, 27), False, "coming Friday"),
        ("next Friday", berlin(2026, 12, 4), False, "next Friday"),
        ("next Monday", berlin(2026, 11, 30), False, "next Monday"),
        ("last Tuesday", berlin(2026, 11, 24), False, "last Tuesday"),
        ("last Wednesday", berlin(2026, 11, 18), False, "last Wednesday"),
        ("by Friday", berlin(2026, 11, 27), False, "by Friday"),
        ("on Fri", berlin(2026, 11, 27), False, "on Fri"),
        ("in two weeks", berlin(2026, 12, 9), False, "in two weeks"),
        ("in a week", berlin(2026, 12, 2), False, "in a week"),
        ("in a couple of weeks", berlin(2026, 12, 9), False, "in a couple of weeks"),
        ("in 3 days", berlin(2026, 11, 28), False, "in 3 days"),
        ("within 10 days", berlin(2026, 12, 5), False, "within 10 days"),
        ("3 days from now", berlin(2026, 11, 28), False, "3 days from now"),
        ("2 days ago", berlin(2026, 11, 23), False, "2 days ago"),
        ("in 3 months", berlin(2027, 2, 25), False, "in 3 months"),
        ("in a year", berlin(2027, 11, 25), False, "in a year"),
        ("in 2 hours", berlin(2026, 11, 25, 17), True, "in 2 hours"),
        ("in an hour", berlin(2026, 11, 25, 16), True, "in an hour"),
        ("in 30 minutes", berlin(2026, 11, 25, 15, 30), True, "in 30 minutes"),
        ("end of month", berlin(2026, 11, 30), False, "end of month"),
        ("by the end of the month", berlin(2026, 11, 30), False, "by the end of the month"),
        ("end of next month", berlin(2026, 12, 31), False, "end of next month"),
        ("end of the quarter", berlin(2026, 12, 31), False, "end of the quarter"),
        ("end of quarter", berlin(2026, 12, 31), False, "end of quarter"),
        ("EOQ", berlin(2026, 12, 31), False, "EOQ"),
        ("end of week", berlin(2026, 11, 27), False, "end of week"),
        ("end of year", berlin(2026, 12, 31), False, "end of year"),
        ("Dec 4", berlin(2026, 12, 4), False, "Dec 4"),
        ("December 4th", berlin(2026, 12, 4), False, "December 4th"),
        ("Dec 4, 2027", berlin(2027, 12, 4), False, "Dec 4, 2027"),
        ("4 December at 14:30", berlin(2026, 12, 4, 14, 30), True, "4 December at 14:30"),
        ("the 4th of December", berlin(2026, 12, 4), False, "the 4th of December"),
        # no year: the occurrence closest to today
        ("Jan 5", berlin(2027, 1, 5), False, "Jan 5"),
        ("Nov 20", berlin(2026, 11, 20), False, "Nov 20"),
        ("2026-12-04", berlin(2026, 12, 4), False, "2026-12-04"),
        ("2026-12-04 at 9:15", berlin(2026, 12, 4, 9, 15), True, "2026-12-04 at 9:15"),
        # US month/day
        ("12/04", berlin(2026, 12, 4), False, "12/04"),
        ("1/15", berlin(2027, 1, 15), False, "1/15"),
        ("12/04/2027", berlin(2027, 12, 4), False, "12/04/2027"),
        ("EOD", berlin(2026, 11, 25, 17), True, "EOD"),
        ("by end of day", berlin(2026, 11, 25, 17), True, "by end of day"),
        ("tomorrow EOD", berlin(2026, 11, 26, 17), True, "tomorrow EOD"),
        ("noon", berlin(2026, 11, 25, 12), True, "noon"),
        ("tonight", berlin(2026, 11, 25, 20), True, "tonight"),
        # midnight is the end of the day named
        ("midnight", berlin(2026, 11, 26), True, "midnight"),
        ("tomorrow at midnight", berlin(2026, 11, 27), True, "tomorrow at midnight"),
    ],
)
def test_parse_when_point(text: str, start: datetime, has_time: bool, matched: str) -> None:
    assert parse_when(text, now=NOW, tz=TZ) == When(start, None, has_time, matched)


@pytest.mark.parametrize(
    ("text", "start", "matched"),
    [
        # typos and speech fillers
        ("tommorow", berlin(2026, 11, 26), "tommorow"),
        ("tomorow", berlin(2026, 11, 26), "tomorow"),
        ("tmrw at 10", berlin(2026, 11, 26, 10), "tmrw at 10"),
        ("Tomorrow", berlin(2026, 11, 26), "Tomorrow"),
        ("TOMORROW AT 10AM", berlin(2026, 11, 26, 10), "TOMORROW AT 10AM"),
        ("um, like next tuesday maybe", berlin(2026, 12, 1), "next tuesday"),
        ("uh wensday", berlin(2026, 12, 2), "wensday"),
        ("thurs", berlin(2026, 11, 26), "thurs"),
        ("nxt tues", berlin(2026, 12, 1), "nxt tues"),
        ("can we do, uh, tomorrow, at 10?", berlin(2026, 11, 26, 10), "tomorrow, at 10"),
        ("tomorrow I'll call at 3", berlin(2026, 11, 26, 15), "tomorrow at 3"),
    ],
)
def test_parse_when_tolerates_typos_and_fillers(text: str, start: datetime, matched: str) -> None:
    when = parse_when(text, now=NOW, tz=TZ)
    assert when is not None
    assert (when.start, when.text) == (start, matched)


# --------------------------------------------------------------------------- dates: ranges


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("next week", berlin(2026, 11, 30), berlin(2026, 12, 7)),
        ("nxt week", berlin(2026, 11, 30), berlin(2026, 12, 7)),
        ("nxt wk", berlin(2026, 11, 30), berlin(2026, 12, 7)),
        ("this week", berlin(2026, 11, 23), berlin(2026, 11, 30)),
        ("last week", berlin(2026, 11, 16), berlin(2026, 11, 23)),
        ("this weekend", berlin(2026, 11, 28), berlin(2026, 11, 30)),
        ("next month", berlin(2026, 12, 1), berlin(2027, 1, 1)),
        ("this month", berlin(2026, 11, 1), berlin(2026, 12, 1)),
        ("last month", berlin(2026, 10, 1), berlin(2026, 11, 1)),
        ("Q3", berlin(2027, 7, 1), berlin(2027, 10, 1)),  # Q3 2026 is over: the next one
        ("Q4", berlin(2026, 10, 1), berlin(2027, 1, 1)),  # under way: this one
        ("Q1", berlin(2027, 1, 1), berlin(2027, 4, 1)),
        ("Q3 2027", berlin(2027, 7, 1), berlin(2027, 10, 1)),
        ("q2 2026", berlin(2026, 4, 1), berlin(2026, 7, 1)),
        ("Q1 '28", berlin(2028, 1, 1), berlin(2028, 4, 1)),
        ("closing in Q2", berlin(2027, 4, 1), berlin(2027, 7, 1)),
        ("this quarter", berlin(2026, 10, 1), berlin(2027, 1, 1)),
        ("next quarter", berlin(2027, 1, 1), berlin(2027, 4, 1)),
        ("last quarter", berlin(2026, 7, 1), berlin(2026, 10, 1)),
        ("next year", berlin(2027, 1, 1), berlin(2028, 1, 1)),
    ],
)
def test_parse_when_range(text: str, start: datetime, end: datetime) -> None:
    when = parse_when(text, now=NOW, tz=TZ)
    assert when is not None
    assert (when.start, when.end, when.has_time) == (start, end, False)


def test_range_ignores_a_time() -> None:
    when = parse_when("next week at 3", now=NOW, tz=TZ)
    assert when == When(berlin(2026, 11, 30), berlin(2026, 12, 7), False, "next week")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "Q5",
        "Q0",
        "sometime",
        "12.50",
        "50k",
        "2026-13-45",
        "Feb 30",
        "at 25",
        "13pm",
        "3 reps",
        "I sat down",
        "c'mon, really",
        "the sun is out",
    ],
)
def test_parse_when_none(text: str) -> None:
    assert parse_when(text, now=NOW, tz=TZ) is None


# --------------------------------------------------------------------------- time zones and DST


def test_results_are_in_the_requested_zone() -> None:
    when = parse_when("tomorrow at 10", now=NOW, tz="America/New_York")
    assert when is not None
    assert when.start == datetime(2026, 11, 26, 10, tzinfo=ZoneInfo("America/New_York"))
    assert when.start.tzinfo == ZoneInfo("America/New_York")


def test_now_in_another_zone_is_converted_first() -> None:
    utc_now = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # already Thursday in Berlin
    when = parse_when("today", now=utc_now, tz=TZ)
    assert when is not None
    assert when.start == berlin(2026, 11, 26)


def test_tomorrow_at_9_across_dst_end() -> None:
    when = parse_when("tomorrow at 9", now=berlin(2026, 10, 24, 12), tz=TZ)
    assert when is not None
    assert when.start == berlin(2026, 10, 25, 9)
    assert when.start.astimezone(UTC) == datetime(2026, 10, 25, 8, tzinfo=UTC)


def test_in_hours_counts_real_time_across_dst_end() -> None:
    now = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)  # 01:30 CEST on the night of the change
    when = parse_when("in 2 hours", now=now, tz=TZ)
    assert when is not None
    assert when.start.astimezone(UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert when.start.hour == 2  # 02:30 CET: the clock went back an hour


def test_time_skipped_by_dst_start_moves_forward() -> None:
    when = parse_when("at 2:30am", now=berlin(2027, 3, 28, 0, 15), tz=TZ)
    assert when is not None
    assert (when.start.hour, when.start.minute, when.start.utcoffset()) == (3, 30, berlin(2027, 3, 28, 4).utcoffset())


def test_range_spanning_dst_has_local_midnights() -> None:
    when = parse_when("this quarter", now=NOW, tz=TZ)
    assert when is not None and when.end is not None
    assert (when.start.utcoffset(), when.end.utcoffset()) == (berlin(2026, 10, 1).utcoffset(), NOW.utcoffset())


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when("today", now=datetime(2026, 11, 25, 15), tz=TZ)  # noqa: DTZ001


# --------------------------------------------------------------------------- both in a sentence


@pytest.mark.parametrize(
    ("text", "money", "start", "rest"),
    [
        (
            "she wants a proposal by Friday for about 50k",
            Money(Decimal(50000), "USD"),
            berlin(2026, 11, 27),
            "she wants a proposal for about",
        ),
        (
            "Send Acme a quote for €12.000 in 3 days at 10",
            Money(Decimal(12000), "EUR"),
            berlin(2026, 11, 28, 10),
            "Send Acme a quote for",
        ),
        ("closing Q3 2027 at 1.2m", Money(Decimal(1200000), "USD"), berlin(2027, 7, 1), "closing at"),
        (
            "call back on Dec 4 about the 300 EUR add-on",
            Money(Decimal(300), "EUR"),
            berlin(2026, 12, 4),
            "call back about the add-on",
        ),
        ("follow up in 2 weeks", None, berlin(2026, 12, 9), "follow up"),
        ("renewal is 48,000 dollars", Money(Decimal(48000), "USD"), None, "renewal is"),
        ("12/04 meeting, budget 20k", Money(Decimal(20000), "USD"), berlin(2026, 12, 4), "meeting, budget"),
        ("nothing useful here", None, None, "nothing useful here"),
    ],
)
def test_extract_amount_and_when(text: str, money: Money | None, start: datetime | None, rest: str) -> None:
    found = extract_amount_and_when(text, now=NOW, tz=TZ)
    assert found.money == money
    assert (found.when.start if found.when else None) == start
    assert found.rest == rest


def test_extract_spans_point_into_the_source() -> None:
    text = "she wants a proposal by Friday for about 50k"
    found = extract_amount_and_when(text, now=NOW, tz=TZ, default_currency="EUR")
    assert found.money == Money(Decimal(50000), "EUR")
    assert found.money_span is not None
    assert text[slice(*found.money_span)] == "50k"
    assert [text[s:e] for s, e in found.when_spans] == ["by Friday"]
    assert found.source == text


def test_extract_skips_a_negative_amount() -> None:
    found = extract_amount_and_when("discount of -50k tomorrow", now=NOW, tz=TZ)
    assert (found.money, found.money_span) == (None, None)
    assert found.when is not None


def test_a_day_said_after_a_period_wins_over_the_period() -> None:
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    found = parse_when("remind me to review the q4 numbers tomorrow at 9", now=now, tz="UTC")
    assert found is not None and found.start == datetime(2026, 11, 27, 9, 0, tzinfo=UTC) and found.has_time
    period = parse_when("what's my forecast for q4", now=now, tz="UTC")
    assert period is not None and period.end is not None
