"""Forecast skills: the forecast for a period ("my Q3 forecast", "EMEA this quarter vs last", "team
forecast"), which method has been most accurate (the backtest), and converting between currencies."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from actions.base import Ask, CrmAction, Turn
from actions.parsing import parse_amount, parse_when
from actions.replies import ActionResult, Reply, money
from crm_backend.forecasting import backtest, service
from crm_backend.forecasting.periods import Period, PeriodType, containing
from crm_backend.models.users import Role
from crm_backend.services import currencies, records
from crm_backend.services.records import ListQuery
from crm_backend.store import UnitOfWork

METHOD_NAMES = {
    "weighted": "weighted pipeline",
    "historical": "historical trend",
    "ai": "AI (win and close-date models)",
    "seasonal_naive": "seasonal naive (same period last year)",
    "exponential_smoothing": "exponential smoothing",
}
METHOD_WORDS = (
    (re.compile(r"\b(?:all|every|each)\s+(?:the\s+)?methods?\b|\ball\s+three\b", re.IGNORECASE), "all"),
    (re.compile(r"\b(?:historical|history|trend|seasonal)\b", re.IGNORECASE), "historical"),
    (re.compile(r"\b(?:ai|a\.i\.|machine\s+learning|ml|predictive|model)\b", re.IGNORECASE), "ai"),
    (re.compile(r"\b(?:weighted|pipeline)\b", re.IGNORECASE), "weighted"),
)
TEAM = re.compile(r"\b(?:team|everyone|everybody|all\s+(?:the\s+)?reps?)\b", re.IGNORECASE)
WE = re.compile(r"\b(?:our|we|us)\b", re.IGNORECASE)  # a team for a manager; the rep themself for a rep
# "vs last quarter", "compared to the previous month": the comparison, which is not the period asked about.
COMPARE_LAST = re.compile(
    r"\b(?:vs\.?|versus|compared?\s+(?:to|with)|against|than|over)\s+(?:the\s+)?(?:last|previous|prior|preceding)\b"
    r"(?:\s+(?:quarter|qtr|month|year|period|one))?",
    re.IGNORECASE,
)
COMPARE = re.compile(
    r"\b(?:vs\.?|versus|compared?\s+(?:to|with)|comparison|change[ds]?\s+from)\b|\bq-?o-?q\b|\b(?:quarter|month|year)"
    r"[- ]over[- ](?:quarter|month|year)\b",
    re.IGNORECASE,
)
MONTH_NAMES = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
# A month named alone ("forecast for March"): only after a preposition, so "may I…" is not May.
MONTH_ALONE = re.compile(
    r"\b(?:in|for|of|during)\s+(?P<month>" + "|".join(sorted(MONTH_NAMES, key=len, reverse=True)) + r")\b"
    r"(?:\s+(?P<year>\d{4}))?",
    re.IGNORECASE,
)
YEAR_ALONE = re.compile(r"\b(?:fy\s?)?(?P<year>20\d{2})\b", re.IGNORECASE)
MONTH_WORD = re.compile(r"\b(?:month|monthly)\b", re.IGNORECASE)
YEAR_WORD = re.compile(r"\b(?:year|yearly|annual|annually|fy)\b", re.IGNORECASE)


def period_label(period: Period) -> str:
    """`Q3 2026`, `March 2026`, `2026`."""
    if period.type is PeriodType.QUARTER:
        return f"Q{(period.start.month - 1) // 3 + 1} {period.start.year}"
    if period.type is PeriodType.MONTH:
        return f"{period.start:%B %Y}"
    return str(period.start.year)


def _named_type(text: str) -> PeriodType:
    if MONTH_WORD.search(text):
        return PeriodType.MONTH
    if YEAR_WORD.search(text):
        return PeriodType.YEAR
    return PeriodType.QUARTER


def period_for(text: str, today: date, now: datetime, zone: ZoneInfo) -> Period:
    """The month, quarter or year the user means ("Q3", "next month", "this year", "for March",
    "2027"); a day or week means the quarter (or the month/year named) containing it; default: this quarter."""
    when = parse_when(text, now=now, tz=zone.key)
    if when is not None:
        first = when.start.astimezone(zone).date()
        if when.end is not None:
            after = when.end.astimezone(zone).date()
            months = (after.year - first.year) * 12 + after.month - first.month
            if first.day == 1 and after.day == 1:
                if months == 1:
                    return Period(first, PeriodType.MONTH)
                if months == 3 and first.month % 3 == 1:
                    return Period(first, PeriodType.QUARTER)
                if months == 12 and first.month == 1:
                    return Period(first, PeriodType.YEAR)
        return containing(first, _named_type(text))
    if m := MONTH_ALONE.search(text):
        month = MONTH_NAMES[m["month"].lower()]
        year = int(m["year"]) if m["year"] else today.year + (1 if month < today.month else 0)
        return Period(date(year, month, 1), PeriodType.MONTH)
    if m := YEAR_ALONE.search(text):
        return Period(date(int(m["year"]), 1, 1), PeriodType.YEAR)
    return containing(today, _named_type(text))


def method_for(text: str) -> str:
    for pattern, method in METHOD_WORDS:
        if pattern.search(text):
            return method
    return "weighted"


@dataclass
class Scope:
    """Whose deals a forecast counts, as service.forecast takes it, and how to name it."""

    label: str  # "your", "the East team's", "EMEA", "your EMEA"
    options: dict[str, Any] = field(default_factory=dict)
    team_id: int | None = None  # set for a manager's team: take that team's group of a by-team forecast
    note: str | None = None


def _territory(uow: UnitOfWork, name: str) -> tuple[int, str]:
    res = records.resource("territories")
    found = records.list_records(uow, res, ListQuery(q=name, limit=20)).items
    exact = [t for t in found if t.name.casefold() == name.casefold()]
    if exact or len(found) == 1:
        territory = (exact or found)[0]
        return int(territory.id), str(territory.name)
    known = records.list_records(uow, res, ListQuery(sort="name", limit=50)).items
    names = ", ".join(t.name for t in known)
    raise Ask(f"I don't know a territory called “{name}”." + (f" The CRM has: {names}." if names else ""))


def scope_for(uow: UnitOfWork, turn: Turn) -> Scope:
    """The user's own deals by default; a territory when one is named (a rep: their deals in it); the
    team for a manager who asks about the team; everything an admin sees for an admin's team."""
    actor = uow.require_actor()
    mine = {"owner_id": actor.user_id}
    territory = turn.entity("territory")
    if territory:
        tid, name = _territory(uow, territory)
        if actor.role is Role.REP:
            return Scope(f"your {name}", {"territory_id": tid, **mine})
        return Scope(name, {"territory_id": tid})
    explicit = bool(TEAM.search(turn.text))
    if not explicit and not (WE.search(turn.text) and actor.role in (Role.MANAGER, Role.ADMIN)):
        return Scope("your", mine)
    if actor.role is Role.MANAGER and actor.team_id is not None:
        team = records.get_record(uow, records.resource("users"), actor.user_id).team
        return Scope(f"the {team.name} team's" if team else "your team's", {"by": "team"}, team_id=actor.team_id)
    if actor.role is Role.ADMIN:
        return Scope("the company's", {})
    return Scope("your", mine, note="Team forecasts are for managers, so here is yours.")


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _whole(raw: str | None) -> Decimal | None:
    return None if raw is None else Decimal(raw).quantize(Decimal(1))


def _figures(result: dict[str, Any], scope: Scope) -> tuple[dict[str, Any], str | None]:
    """The figures of the scope's row (the team's group, or the total) and its actual when closed."""
    if scope.team_id is None:
        return result["total"]["figures"], result["total"]["actual"]
    for group in result["groups"]:
        if group["key"] == scope.team_id:
            return group["figures"], group["actual"]
    return {}, "0" if result["closed"] else None  # the team has no deals in the period


def figure_text(name: str, figure: dict[str, Any] | None, currency: str, confidence: int) -> str:
    """`weighted pipeline: $96,100 (80% range $11,187–$181,013, 2 deals)`."""
    if figure is None:  # nothing in scope to count (e.g. a team without deals in the period)
        return f"{METHOD_NAMES[name]}: {money(Decimal(0), currency)}, there is nothing to count in it"
    amount = _whole(figure["amount"]) or Decimal(0)
    if not amount and figure.get("deal_count") == 0:
        return f"{METHOD_NAMES[name]}: {money(amount, currency)}, no open deals are expected to close in it"
    parts: list[str] = []
    lower, upper = _whole(figure.get("lower")), _whole(figure.get("upper"))
    if lower is not None and upper is not None:
        parts.append(f"{confidence}% range {money(lower, currency)}–{money(upper, currency)}")
    count = figure.get("deal_count")
    if count is not None:
        parts.append(f"{count} deal" + ("" if count == 1 else "s"))
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"{METHOD_NAMES[name]}: {money(amount, currency)}{detail}"


def _change(now: Decimal, before: Decimal, currency: str) -> str:
    now, before = now.quantize(Decimal(1)), before.quantize(Decimal(1))
    diff = now - before
    sign = "+" if diff >= 0 else "−"
    pct = f" ({sign}{abs(diff / before * 100):.1f}%)" if before else ""
    return f"{sign}{money(abs(diff), currency)}{pct}"


class ActionForecast(CrmAction):
    """'What's my forecast for Q3' / 'EMEA forecast this quarter vs last' / 'team forecast'."""

    def name(self) -> str:
        return "action_forecast"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        zone = turn.zone(uow)
        today = turn.now.astimezone(zone).date()
        compare = bool(COMPARE.search(turn.text) or COMPARE_LAST.search(turn.text))
        period = period_for(COMPARE_LAST.sub(" ", turn.text), today, turn.now, zone)
        method = method_for(turn.text)
        scope = scope_for(uow, turn)
        currency = turn.entity("currency")
        result = service.forecast(uow, period, method=method, currency=currency, today=today, **scope.options)
        cur, confidence = result["currency"], int(result["confidence"])
        figures, actual = _figures(result, scope)
        lines = [scope.note] if scope.note else []
        head = f"{capitalised(scope.label)} forecast for {period_label(period)}"
        methods = result["methods"]
        if len(methods) == 1:
            lines.append(f"{head}, {figure_text(methods[0], figures.get(methods[0]), cur, confidence)}.")
        else:
            lines.append(f"{head}:")
            lines += [f"{n}. {figure_text(m, figures.get(m), cur, confidence)}" for n, m in enumerate(methods, 1)]
        if actual is not None:
            lines.append(f"Actually won in {period_label(period)}: {money(_whole(actual) or Decimal(0), cur)}.")
        if scope.team_id is not None:
            lines += self._by_rep(uow, period, method, currency, today, scope.team_id)
        if compare:
            lines += self._previous(uow, period.previous(), method, currency, today, scope, figures)
        missing = result["details"].get("unconverted_currencies")
        if missing:
            lines.append(f"(Deals in {', '.join(missing)} are left out: the CRM has no exchange rate for them.)")
        return ActionResult([Reply("\n".join(lines))])

    @staticmethod
    def _by_rep(
        uow: UnitOfWork, period: Period, method: str, currency: str | None, today: date, team_id: int
    ) -> list[str]:
        """One line per rep of the team: the first method's amount."""
        members = records.list_records(
            uow,
            records.resource("users"),
            ListQuery(filters={"team_id": str(team_id), "is_active": "true"}, sort="full_name", limit=200),
        ).items
        result = service.forecast(uow, period, method=method, by="owner", currency=currency, today=today)
        first = result["methods"][0]
        cur = result["currency"]
        amounts = {g["key"]: g["figures"][first]["amount"] for g in result["groups"] if first in g["figures"]}
        parts = [f"{m.full_name} {money(_whole(amounts.get(m.id, '0')) or Decimal(0), cur)}" for m in members]
        return [f"By rep ({METHOD_NAMES[first]}): " + ", ".join(parts) + "."] if parts else []

    @staticmethod
    def _previous(
        uow: UnitOfWork,
        previous: Period,
        method: str,
        currency: str | None,
        today: date,
        scope: Scope,
        figures: dict[str, Any],
    ) -> list[str]:
        """The previous period beside this one: what was won there once it is closed (the yardstick a
        forecast is measured against), else its own forecast; and the change."""
        result = service.forecast(uow, previous, method=method, currency=currency, today=today, **scope.options)
        cur, confidence = result["currency"], int(result["confidence"])
        before, actual = _figures(result, scope)
        label = period_label(previous)
        if actual is not None:
            won = Decimal(actual)
            changes = [
                (name, _change(Decimal(figures[name]["amount"]), won, cur))
                for name in result["methods"]
                if name in figures
            ]
            head = f"{label} is closed: {money(won.quantize(Decimal(1)), cur)} was won"
            if len(changes) == 1:
                return [f"{head}, so this forecast is {changes[0][1]} against it."]
            return [f"{head}. Change against it: " + ", ".join(f"{METHOD_NAMES[n]} {c}" for n, c in changes) + "."]
        lines: list[str] = []
        for name in result["methods"]:
            then, now = before.get(name), figures.get(name)
            line = f"{label}, {figure_text(name, then, cur, confidence)}"
            if then is not None and now is not None:
                line += f"; change {_change(Decimal(now['amount']), Decimal(then['amount']), cur)}"
            lines.append(line + ".")
        return lines


class ActionForecastAccuracy(CrmAction):
    """'Which forecast method is most accurate' / 'backtest the forecast': the methods ranked by their
    error over the last eight closed quarters (months or years when asked)."""

    def name(self) -> str:
        return "action_forecast_accuracy"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        zone = turn.zone(uow)
        today = turn.now.astimezone(zone).date()
        kind = _named_type(turn.text)
        scope = scope_for(uow, turn)
        options = {k: v for k, v in scope.options.items() if k in ("owner_id", "territory_id")}
        periods = 8
        result = backtest.run(uow, periods=periods, period_type=kind, today=today, **options)
        over = f"the last {periods} closed {kind.value}s"
        whose = "your team's and territories'" if scope.team_id is not None else scope.label
        ranked = sorted((mape, name) for name, mape in result["mape"].items() if mape is not None)
        lines = [scope.note] if scope.note else []
        if not ranked:
            lines.append(
                f"I can't rank the methods yet: over {over} there were no won deals to compare the "
                f"forecasts with in {whose} figures."
            )
            return ActionResult([Reply("\n".join(lines))])
        best_mape, best = ranked[0]
        tied = [name for mape, name in ranked[1:] if mape - best_mape < backtest.TIE_POINTS]
        winner = " and ".join(METHOD_NAMES[n] for n in [best, *tied])
        verb = "have been equally accurate" if tied else "has been the most accurate"
        lines.append(
            f"Over {over} ({whose} deals), {winner} {verb}: off by {best_mape:.1f}% on average (MAPE, lower is better)."
        )
        lines += [f"{n}. {METHOD_NAMES.get(name, name)}: {mape:.1f}%" for n, (mape, name) in enumerate(ranked, 1)]
        unscored = [METHOD_NAMES.get(n, n) for n, v in result["mape"].items() if v is None]
        if unscored:
            lines.append(f"Not enough history to score {', '.join(unscored)}.")
        return ActionResult([Reply("\n".join(lines))])


# --------------------------------------------------------------------------- currencies

NO_CURRENCY = "XXX"  # ISO 4217's "no currency": what parse_amount says when none was written
CONVERT_TO = re.compile(r"\b(?:in|into|to|as)\s*$", re.IGNORECASE)


def _active_currencies(uow: UnitOfWork) -> list[Any]:
    res = records.resource("currencies")
    return list(records.list_records(uow, res, ListQuery(filters={"is_active": "true"}, sort="code", limit=200)).items)


def _rate_text(rate: str) -> str:
    value = Decimal(rate)
    return f"{value:.4f}".rstrip("0").rstrip(".") if value < 100 else f"{value:,.2f}"


class ActionConvertCurrency(CrmAction):
    """'What is 12,000 euros in dollars' / 'convert 50k gbp to usd' / 'how much is $300 in yen', at
    the CRM's own exchange rates."""

    def name(self) -> str:
        return "action_convert_currency"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        known = _active_currencies(uow)
        codes = [c.code for c in known]
        base = next((c.code for c in known if c.is_base), codes[0] if codes else None)
        if base is None:
            return ActionResult([Reply("The CRM has no currencies set up yet, so I can't convert amounts.")])
        amount = parse_amount(turn.text, default_currency=NO_CURRENCY)
        said = [c.upper() for c in turn.entity_values("currency")]
        source, target = self._currencies(turn, amount.currency if amount else None, said)
        if amount is None:
            if source is None or target is None:
                raise Ask("How much should I convert, and into what? For example “12,000 euros in dollars”.")
            quantity = Decimal(1)  # "what's the euro to dollar rate"
        else:
            quantity = amount.amount
        source = source or base
        unknown = [c for c in dict.fromkeys([source, *([target] if target else [])]) if c not in codes]
        if unknown:
            have = ", ".join(f"{c.code} ({c.name})" for c in known)
            return ActionResult(
                [Reply(f"The CRM has no exchange rate for {' or '.join(unknown)}. Currencies it knows: {have}.")]
            )
        targets = [target] if target else ([base] if source != base else [c for c in codes if c != base])
        if not targets or targets == [source]:
            return ActionResult([Reply(f"That's already in {source}: {money(quantity, source)}.")])
        results = [currencies.convert(uow, {"amount": quantity, "from": source, "to": t}) for t in targets]
        said_amount = money(quantity, source)
        if len(results) == 1:
            r = results[0]
            text = (
                f"{said_amount} is {money(Decimal(r['result']), r['to'])} "
                f"(1 {source} = {_rate_text(r['rate'])} {r['to']}, the CRM's rate)."
            )
        else:
            text = f"{said_amount} is " + ", ".join(money(Decimal(r["result"]), r["to"]) for r in results) + "."
        return ActionResult([Reply(text)])

    @staticmethod
    def _currencies(turn: Turn, written: str | None, said: list[str]) -> tuple[str | None, str | None]:
        """(from, to): a currency written with the amount is the source; of the currency entities the
        first is the source and the second the target, and one alone after "in/to" is the target."""
        if written and written != NO_CURRENCY:
            others = [c for c in said if c != written]
            return written, others[0] if others else None
        if len(said) >= 2:
            return said[0], said[1]
        if len(said) == 1:
            entity = next(
                e for e in turn.entities if e.get("entity") == "currency" and str(e.get("value")).upper() == said[0]
            )
            start = entity.get("start")
            before = turn.text[:start] if isinstance(start, int) and start >= 0 else ""
            return (None, said[0]) if CONVERT_TO.search(before) else (said[0], None)
        return None, None
