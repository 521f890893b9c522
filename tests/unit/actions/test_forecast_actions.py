"""Forecasts, forecast accuracy and currency conversion through the actions with a real database: the
figures are the forecasting engine's own (computed the way GET /forecasts does), for the deals the
user may see — a rep's own, a manager's team, a territory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from actions.forecasts import (
    COMPARE_LAST,
    ActionConvertCurrency,
    ActionForecast,
    ActionForecastAccuracy,
    figure_text,
    method_for,
    period_for,
    period_label,
)
from actions.replies import money
from crm_backend.forecasting import backtest, service
from crm_backend.forecasting.periods import PeriodType, containing
from crm_backend.models import Role
from crm_backend.services import auth, deals, records, users
from crm_backend.store import UnitOfWork
from tests.unit.actions.conftest import Crm, entity


@contextmanager
def acting(crm: Crm, username: str) -> Iterator[UnitOfWork]:
    with crm.store.unit_of_work() as uow:
        uow.actor = auth.load_actor(uow, users.get_user_by_username(uow, username).id)
        yield uow


def today() -> date:
    return datetime.now(UTC).date()  # the demo users' zone is UTC


def forecast(crm: Crm, username: str, **options: Any) -> dict[str, Any]:
    """The engine's answer, as the user sees it (the oracle the replies are checked against)."""
    with acting(crm, username) as uow:
        return service.forecast(uow, method=options.pop("method", "weighted"), today=today(), **options)


def territory_id(crm: Crm, name: str) -> int:
    with acting(crm, "admin") as uow:
        found = records.list_records(uow, records.resource("territories"), records.ListQuery(q=name)).items
        return int(found[0].id)


def big_deal(crm: Crm, owner: str, name: str, amount: str, **extra: Any) -> None:
    """A deal closing today (inside the current period whatever the date) at 90 %."""
    with acting(crm, owner) as uow:
        account = records.list_records(uow, records.resource("accounts"), records.ListQuery(limit=1)).items[0]
        deals.create_deal(
            uow,
            {
                "name": name,
                "account_id": account.id,
                "stage": "Negotiation",
                "amount": Decimal(amount),
                "currency": "USD",
                "probability": 90,
                "expected_close_date": today(),
                **extra,
            },
        )


async def test_a_reps_forecast_counts_only_their_own_deals(crm: Crm) -> None:
    big_deal(crm, "bob", "Globex - Mega expansion", "900000")
    big_deal(crm, "carlos", "Stark - Fleet of everything", "700000")
    chat = crm.chat("alice")
    await chat.say(ActionForecast(), "what's my forecast", "forecast")

    mine = forecast(crm, "alice", owner_id=crm.actor("alice").user_id)
    figure = mine["total"]["figures"]["weighted"]
    quarter = period_label(containing(today(), PeriodType.QUARTER))
    assert chat.text == f"Your forecast for {quarter}, {figure_text('weighted', figure, 'USD', 80)}."
    assert "weighted pipeline: $" in chat.text and "80% range $" in chat.text and " deal" in chat.text
    assert "810,000" not in chat.text and "630,000" not in chat.text  # bob's and carlos's deals at 90 %

    await chat.say(ActionForecast(), "how's the team forecast looking", "forecast")
    assert chat.text.startswith("Team forecasts are for managers, so here is yours.\nYour forecast for ")
    assert "810,000" not in chat.text


async def test_a_managers_team_forecast_includes_the_team_and_splits_it_by_rep(crm: Crm) -> None:
    big_deal(crm, "bob", "Globex - Mega expansion", "900000")
    big_deal(crm, "carlos", "Stark - Fleet of everything", "700000")  # the West team
    chat = crm.chat("maria")
    await chat.say(ActionForecast(), "team forecast this quarter", "forecast")

    team_id = crm.actor("maria").team_id
    by_team = forecast(crm, "maria", by="team")
    [east] = [g for g in by_team["groups"] if g["key"] == team_id]
    figure = east["figures"]["weighted"]
    assert Decimal(figure["amount"]) >= Decimal(810000)  # bob's deal is in it
    quarter = period_label(containing(today(), PeriodType.QUARTER))
    lines = chat.text.splitlines()
    assert lines[0] == f"The East team's forecast for {quarter}, {figure_text('weighted', figure, 'USD', 80)}."
    assert lines[1].startswith("By rep (weighted pipeline): Alice Rivera $")
    assert "Bob Chen $" in lines[1] and "Maria Okafor $" in lines[1]
    assert "Carlos" not in chat.text

    await chat.say(ActionForecast(), "what's my own forecast", "forecast")  # a manager's own deals
    own = forecast(crm, "maria", owner_id=crm.actor("maria").user_id)["total"]["figures"]["weighted"]
    assert chat.text == f"Your forecast for {quarter}, {figure_text('weighted', own, 'USD', 80)}."


async def test_periods_and_the_comparison_with_the_previous_one(crm: Crm) -> None:
    chat = crm.chat("alice")
    alice = crm.actor("alice").user_id

    await chat.say(ActionForecast(), "projected revenue this year", "forecast")
    year = forecast(crm, "alice", owner_id=alice, period=str(today().year))["total"]["figures"]["weighted"]
    assert chat.text == f"Your forecast for {today().year}, {figure_text('weighted', year, 'USD', 80)}."

    await chat.say(ActionForecast(), "forecast for next month", "forecast")
    month = containing(today(), PeriodType.MONTH).next()
    assert chat.text.startswith(f"Your forecast for {month.start:%B %Y}, weighted pipeline: ")

    await chat.say(ActionForecast(), "my forecast this quarter compared to last quarter", "forecast")
    current = containing(today(), PeriodType.QUARTER)
    previous = current.previous()
    lines = chat.text.splitlines()
    assert lines[0].startswith(f"Your forecast for {period_label(current)}, weighted pipeline: ")
    won = Decimal(forecast(crm, "alice", owner_id=alice, period=previous.label)["total"]["actual"])
    now = Decimal(forecast(crm, "alice", owner_id=alice)["total"]["figures"]["weighted"]["amount"])
    diff = now.quantize(Decimal(1)) - won.quantize(Decimal(1))
    assert len(lines) == 2
    # The previous quarter is over: what was won there is what this one is compared with.
    sign = "+" if diff >= 0 else "−"
    pct = f" ({sign}{abs(diff / won.quantize(Decimal(1)) * 100):.1f}%)" if won.quantize(Decimal(1)) else ""
    assert lines[1] == (
        f"{period_label(previous)} is closed: {money(won.quantize(Decimal(1)), 'USD')} was won, so this forecast is "
        f"{sign}{money(abs(diff), 'USD')}{pct} against it."
    )

    await chat.say(ActionForecast(), "next quarter vs this quarter", "forecast")  # an open period: its forecast
    lines = chat.text.splitlines()
    assert lines[0].startswith(f"Your forecast for {period_label(current.next())}, weighted pipeline: ")
    assert lines[1].startswith(f"{period_label(current)}, weighted pipeline: ")
    assert "; change " in lines[1]

    await chat.say(ActionForecast(), "what's the historical forecast for this quarter", "forecast")
    assert "historical trend: " in chat.text


async def test_a_territory_forecast_and_an_unknown_territory(crm: Crm) -> None:
    emea = territory_id(crm, "EMEA")
    big_deal(crm, "carlos", "Stark - EMEA rollout", "500000", territory_id=emea)
    chat = crm.chat("maria")  # manages EMEA: sees carlos's deal there
    await chat.say(ActionForecast(), "emea forecast", "forecast", [entity("territory", "EMEA", "emea")])
    figure = forecast(crm, "maria", territory_id=emea)["total"]["figures"]["weighted"]
    assert Decimal(figure["amount"]) == Decimal("450000.00")
    quarter = period_label(containing(today(), PeriodType.QUARTER))
    assert chat.text == f"EMEA forecast for {quarter}, {figure_text('weighted', figure, 'USD', 80)}."

    await chat.say(
        ActionForecast(),
        "emea forecast in euros",
        "forecast",
        [entity("territory", "EMEA", "emea"), entity("currency", "EUR", "euros")],
    )
    in_euros = forecast(crm, "maria", territory_id=emea, currency="EUR")["total"]["figures"]["weighted"]
    assert chat.text == f"EMEA forecast for {quarter}, {figure_text('weighted', in_euros, 'EUR', 80)}."
    assert "€416,667" in chat.text  # $450,000 at 1.08

    alice = crm.chat("alice")  # a rep: only her own deals in EMEA (none)
    await alice.say(ActionForecast(), "emea forecast", "forecast", [entity("territory", "EMEA", "emea")])
    assert alice.text == (
        f"Your EMEA forecast for {quarter}, weighted pipeline: $0, no open deals are expected to close in it."
    )

    await alice.say(ActionForecast(), "apac forecast", "forecast", [entity("territory", "APAC", "apac")])
    assert alice.text == "I don't know a territory called “APAC”. The CRM has: EMEA, North America."


async def test_forecast_accuracy_ranks_the_methods_by_their_error(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionForecastAccuracy(), "which forecast method is most accurate", "forecast_accuracy")
    with acting(crm, "alice") as uow:
        result = backtest.run(uow, periods=8, owner_id=uow.require_actor().user_id, today=today())
    ranked = sorted((v, k) for k, v in result["mape"].items() if v is not None)
    assert ranked, "the demo history gives every method something to score"
    lines = chat.text.splitlines()
    assert lines[0].startswith("Over the last 8 closed quarters (your deals), ")
    assert f"off by {ranked[0][0]:.1f}% on average (MAPE, lower is better)." in lines[0]
    names = {"weighted": "weighted pipeline", "ai": "AI (win and close-date models)"}
    for n, (mape, name) in enumerate(ranked, start=1):
        assert lines[n].startswith(f"{n}. ") and lines[n].endswith(f": {mape:.1f}%")
        assert names.get(name, name.replace("_", " ")) in lines[n]

    with crm.store.unit_of_work() as uow:  # a new rep without any history
        users.create_user(
            uow, {"username": "dev", "full_name": "Dev Newton", "email": "dev@x.example", "role": Role.REP}
        )
    newbie = crm.chat("dev")
    await newbie.say(ActionForecastAccuracy(), "how good are the forecasts", "forecast_accuracy")
    assert newbie.text.startswith("I can't rank the methods yet: over the last 8 closed quarters there were no won")


def cur(code: str, said: str) -> dict[str, Any]:
    return entity("currency", code, said)


async def test_currency_conversion(crm: Crm) -> None:
    chat = crm.chat("alice")
    say = ActionConvertCurrency()

    await chat.say(
        say, "what is 12,000 euros in dollars", "convert_currency", [cur("EUR", "euros"), cur("USD", "dollars")]
    )
    assert chat.text == "€12,000 is $12,960 (1 EUR = 1.08 USD, the CRM's rate)."

    await chat.say(say, "convert 50k gbp to usd", "convert_currency", [cur("GBP", "gbp"), cur("USD", "usd")])
    assert chat.text == "£50,000 is $63,500 (1 GBP = 1.27 USD, the CRM's rate)."

    await chat.say(say, "convert 1,000 to euros", "convert_currency", [cur("EUR", "euros")])  # from the base
    assert chat.text == "$1,000 is €925.93 (1 USD = 0.9259 EUR, the CRM's rate)."

    await chat.say(say, "how much is 100 pounds", "convert_currency", [cur("GBP", "pounds")])  # to the base
    assert chat.text == "£100 is $127 (1 GBP = 1.27 USD, the CRM's rate)."

    await chat.say(say, "what's 500 dollars", "convert_currency", [cur("USD", "dollars")])  # base: every other one
    assert chat.text == "$500 is €462.96, £393.70."

    await chat.say(say, "how much is $300 in yen", "convert_currency", [cur("JPY", "yen")])
    assert chat.text == (
        "The CRM has no exchange rate for JPY. Currencies it knows: EUR (Euro), GBP (Pound sterling), USD (US dollar)."
    )

    await chat.say(say, "convert some money", "convert_currency")
    assert chat.text == "How much should I convert, and into what? For example “12,000 euros in dollars”."


# --------------------------------------------------------------------------- wording, without a database

NOV_26 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("what's my forecast", "Q4 2026"),
        ("forecast for Q3", "Q3 2027"),  # the nearest Q3 that has not ended yet
        ("forecast for q2 2026", "Q2 2026"),
        ("projected revenue next quarter", "Q1 2027"),
        ("this quarter vs last", "Q4 2026"),  # "last" is the comparison, not the period
        ("compared to last quarter how is this quarter", "Q4 2026"),
        ("next month", "December 2026"),
        ("this year", "2026"),
        ("annual forecast", "2026"),
        ("monthly forecast", "November 2026"),
        ("forecast for March", "March 2027"),
        ("forecast for 2027", "2027"),
        ("forecast for next week", "Q4 2026"),
        ("may I see the forecast", "Q4 2026"),
    ],
)
def test_the_period_asked_about(text: str, label: str) -> None:
    cleaned = COMPARE_LAST.sub(" ", text)
    assert period_label(period_for(cleaned, NOV_26.date(), NOV_26, ZoneInfo("UTC"))) == label


def test_methods_and_figures_in_words() -> None:
    assert method_for("what's my forecast") == "weighted"
    assert method_for("historical forecast") == "historical"
    assert method_for("what does the AI predict") == "ai"
    assert method_for("forecast with all methods") == "all"
    figure = {"amount": "96100.00", "lower": "11187.27", "upper": "181012.73", "deal_count": 2}
    assert (
        figure_text("weighted", figure, "USD", 80) == "weighted pipeline: $96,100 (80% range $11,187–$181,013, 2 deals)"
    )
    assert figure_text("historical", {"amount": "5000", "lower": None, "upper": None}, "EUR", 80) == (
        "historical trend: €5,000"
    )
