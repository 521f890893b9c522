"""Deal and pipeline skills: deal lists with filters said in plain words, and one deal's status."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from actions import resolve
from actions.base import Ask, CrmAction, Turn
from actions.deal_updates import stage_of
from actions.parsing import extract_amount_and_when, parse_amount
from actions.replies import ActionResult, Reply, day, moment, money
from crm_backend.models.deals import CLOSED_STAGES, DealStage
from crm_backend.models.users import Role
from crm_backend.services import deals
from crm_backend.services.deals import ActivityBrief, DealQuery, DealSummary, Person
from crm_backend.store import UnitOfWork

MAX_LISTED = 10  # a chat reply, not a report: the soonest to close, then how many more


# --- words → filters (pure, tested without a database) --------------------------------------------------
_CURRENCY_CODES = "usd|eur|gbp|chf|jpy|cad|aud"
_AMOUNT = (
    rf"(?:[$€£¥]\s*|\b(?:{_CURRENCY_CODES})\s*)?\d[\d.,'’]*"
    r"(?:\s*(?:k|mm|m|mil|mio|millions?|thousand|grand|bn|billion)\b)?"
    rf"(?:\s*(?:[$€£¥]|\b(?:{_CURRENCY_CODES}|dollars?|euros?|pounds?|bucks|quid|francs?|yen)\b))?"
)
_COMPARATORS = {
    "no more than": "lte",
    "not more than": "lte",
    "no less than": "gte",
    "not less than": "gte",
    "more than": "gt",
    "greater than": "gt",
    "bigger than": "gt",
    "larger than": "gt",
    "higher than": "gt",
    "over": "gt",
    "above": "gt",
    "exceeding": "gt",
    "in excess of": "gt",
    "north of": "gt",
    "upwards of": "gt",
    ">": "gt",
    "at least": "gte",
    "minimum of": "gte",
    "minimum": "gte",
    "min": "gte",
    ">=": "gte",
    "≥": "gte",
    "less than": "lt",
    "smaller than": "lt",
    "lower than": "lt",
    "under": "lt",
    "below": "lt",
    "south of": "lt",
    "<": "lt",
    "at most": "lte",
    "up to": "lte",
    "maximum of": "lte",
    "maximum": "lte",
    "max": "lte",
    "<=": "lte",
    "≤": "lte",
}
_OPS = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(_COMPARATORS, key=len, reverse=True))
_COMPARATOR_RE = re.compile(rf"(?<![\w<>])(?P<op>{_OPS})\.?\s*(?P<a>{_AMOUNT})", re.IGNORECASE)
_SUFFIX_RE = re.compile(
    rf"(?P<a>{_AMOUNT})\s*(?:(?P<gte>\+|or\s+more|or\s+above|and\s+up|and\s+above)|(?P<lte>or\s+less|or\s+below))",
    re.IGNORECASE,
)
_BETWEEN_RE = re.compile(
    rf"\b(?:between|from)\s+(?P<a>{_AMOUNT})\s*(?:and|to|-|–)\s*(?P<b>{_AMOUNT})|(?P<c>{_AMOUNT})\s*(?:-|–|to)\s*(?P<d>{_AMOUNT})",
    re.IGNORECASE,
)
_EXPLICIT = re.compile(r"[a-z$€£¥]", re.IGNORECASE)  # a multiplier or a currency: "10k", "$10"


@dataclass(frozen=True)
class AmountFilter:
    """Lower and/or upper bounds on a deal amount, in `currency`, with the words that say so."""

    currency: str
    min_amount: Decimal | None = None
    min_inclusive: bool = True
    max_amount: Decimal | None = None
    max_inclusive: bool = True

    @property
    def words(self) -> str:
        low = money(self.min_amount, self.currency) if self.min_amount is not None else ""
        high = money(self.max_amount, self.currency) if self.max_amount is not None else ""
        if low and high:
            return f"between {low} and {high}"
        if low:
            return f"over {low}" if not self.min_inclusive else f"of at least {low}"
        return f"under {high}" if not self.max_inclusive else f"of at most {high}"


def amount_filter(text: str, default_currency: str = "USD") -> AmountFilter | None:
    """The amount bounds in `text` ("over 50k", "at least $100k", "under 20k", "between 10k and 50k",
    "100k+"), or None. Dates should be blanked out first (see `deal_filters`)."""
    bounds: dict[str, tuple[Decimal, bool]] = {}
    currency = default_currency

    def amount(phrase: str) -> Decimal | None:
        nonlocal currency
        found = parse_amount(phrase, default_currency)
        if found is None:
            return None
        currency = found.currency
        return found.amount

    for m in _BETWEEN_RE.finditer(text):
        a, b = (m["a"], m["b"]) if m["a"] else (m["c"], m["d"])
        if not m["a"] and not (_EXPLICIT.search(a) or _EXPLICIT.search(b)):
            continue  # "1-2" is not a money range
        low, high = amount(a), amount(b)
        if low is not None and high is not None:
            if high < low:  # "10k to 50k" said the other way round
                low, high = high, low
            bounds["min"], bounds["max"] = (low, True), (high, True)
            break
    if not bounds:
        for m in _COMPARATOR_RE.finditer(text):
            value = amount(m["a"])
            if value is None:
                continue
            op = _COMPARATORS[" ".join(m["op"].lower().split())]
            bounds["min" if op.startswith("g") else "max"] = (value, op.endswith("e"))
        for m in _SUFFIX_RE.finditer(text):
            value = amount(m["a"])
            if value is not None:
                bounds["min" if m["gte"] else "max"] = (value, True)
    if not bounds:
        return None
    low_bound, high_bound = bounds.get("min"), bounds.get("max")
    return AmountFilter(
        currency,
        low_bound[0] if low_bound else None,
        low_bound[1] if low_bound else True,
        high_bound[0] if high_bound else None,
        high_bound[1] if high_bound else True,
    )


@dataclass(frozen=True)
class Period:
    """A span of days: `start` inclusive, `end` exclusive (either open), and how to say it."""

    start: date | None
    end: date | None
    words: str  # "this month", "before 31 Dec 2026", "on 26 Nov 2026"


_NEXT_N = re.compile(
    r"\b(?:(?:in|over|within|during)\s+)?(?:the\s+)?(?P<dir>next|coming|last|past|previous)\s+"
    r"(?P<n>\d{1,3})\s+(?P<unit>days?|weeks?|months?)\b",
    re.IGNORECASE,
)
_UPTO_BEFORE = re.compile(r"\b(?:before|prior\s+to|earlier\s+than)\s*$", re.IGNORECASE)
_UPTO_BY = re.compile(r"\b(?:by|until|till|no\s+later\s+than|up\s+to)\s*$", re.IGNORECASE)
_FROM_AFTER = re.compile(r"\b(?:after|later\s+than|beyond)\s*$", re.IGNORECASE)
_FROM_SINCE = re.compile(r"\b(?:since|from|starting)\s*$", re.IGNORECASE)
_LEADING = re.compile(r"^(?:(?:before|by|until|till|after|since|from|on|at|in|within)\s+)+", re.IGNORECASE)
_OFFSET = re.compile(r"^(?:in|within)\s+\S+(?:\s+\S+)?\s+(?:days?|weeks?|wks?|months?|years?)\b", re.IGNORECASE)
_END_OF = re.compile(r"(?:the\s+)?end\s+of\b|eo[wmqy]\b", re.IGNORECASE)
_UNIT_DAYS = {"d": 1, "w": 7, "m": 30}


def period_in(text: str, now: datetime, zone: ZoneInfo) -> tuple[Period | None, list[tuple[int, int]]]:
    """The days `text` speaks of ("this month", "before end of quarter", "next 30 days", "since Monday")
    and the spans of the words that said it (to blank out before looking for amounts)."""
    today = now.astimezone(zone).date()
    m = _NEXT_N.search(text)
    if m:
        n = int(m["n"]) * _UNIT_DAYS[m["unit"][0].lower()]
        words = f"in the {m['dir'].lower()} {m['n']} {m['unit'].lower()}"
        if m["dir"].lower() in ("next", "coming"):
            return Period(today, today + timedelta(days=n + 1), words), [m.span()]
        return Period(today - timedelta(days=n), today + timedelta(days=1), words), [m.span()]
    found = extract_amount_and_when(text, now=now, tz=zone.key)
    when = found.when
    if when is None or not found.when_spans:
        return None, []
    spans = list(found.when_spans)
    phrase = when.text.strip()
    bare = _LEADING.sub("", phrase) or phrase
    before = text[: spans[0][0]] + phrase[: len(phrase) - len(bare)]
    first = when.start.astimezone(zone).date()
    if when.end is not None:  # a range: this month, next week, Q3
        last = when.end.astimezone(zone).date()
        if _UPTO_BEFORE.search(before) or _UPTO_BY.search(before):
            return Period(None, first, f"before {bare}"), spans
        if _FROM_AFTER.search(before):
            return Period(last, None, f"after {bare}"), spans
        if _FROM_SINCE.search(before):
            return Period(first, None, f"from {bare}"), spans
        relative = bare.lower().startswith(("this", "next", "last", "past", "previous", "current", "the", "coming"))
        return Period(first, last, bare if relative else f"in {bare}"), spans
    if _OFFSET.match(phrase):  # "in 2 weeks", "within 30 days": from today until then
        return Period(today, first + timedelta(days=1), f"by {day(first)}"), spans
    deadline = _END_OF.match(bare) is not None
    if _UPTO_BEFORE.search(before) and not deadline:
        return Period(None, first, f"before {day(first)}"), spans
    if deadline or _UPTO_BY.search(before) or _UPTO_BEFORE.search(before):
        said = f"{bare} ({day(first)})" if deadline else day(first)
        return Period(None, first + timedelta(days=1), f"by {said}"), spans
    if _FROM_AFTER.search(before):
        return Period(first + timedelta(days=1), None, f"after {day(first)}"), spans
    if _FROM_SINCE.search(before):
        return Period(first, None, f"since {day(first)}"), spans
    return Period(first, first + timedelta(days=1), f"on {day(first)}"), spans


def blank(text: str, spans: Sequence[tuple[int, int]]) -> str:
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


# --- replies ------------------------------------------------------------------------------------------
def totals(items: Sequence[DealSummary]) -> str:
    """'$173,000 + €18,500': one sum per currency, largest first."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for d in items:
        sums[d.currency] += d.amount
    return " + ".join(money(amount, cur) for cur, amount in sorted(sums.items(), key=lambda kv: -kv[1]))


def deal_line(n: int, d: DealSummary, owner: bool = False) -> str:
    verb = "closed" if d.stage in CLOSED_STAGES else "closes"
    closes = f"{verb} {day(d.expected_close_date)}" if d.expected_close_date else day(None)
    line = f"{n}. {d.name} ({d.account_name}): {d.stage}, {money(d.amount, d.currency)}, {d.probability}%, {closes}"
    return f"{line}, {d.owner_name or d.owner_username}" if owner else line


def open_deals_text(
    items: list[DealSummary],
    *,
    subject: str = "You have",
    filters: Sequence[str] = (),
    kind: str = "open",
    show_owners: bool = False,
    empty: str | None = None,
) -> str:
    """The count and total of all of them, with the filters applied; the first `MAX_LISTED` (soonest
    close first; for won or lost deals the latest) one per line."""
    said = "".join(f" {f}" for f in filters)
    if not items:
        if empty:
            return empty
        if not filters and subject == "You have":
            return f"You have no {kind} deals right now."
        return _sentence(subject, f"no {kind} deals{said}.")
    noun = "deal" if len(items) == 1 else "deals"
    total = f"{totals(items)} total" if filters else totals(items)
    lines = [_sentence(subject, f"{len(items)} {kind} {noun}{said} ({total}):")]
    lines += [deal_line(n, d, show_owners) for n, d in enumerate(items[:MAX_LISTED], start=1)]
    if len(items) > MAX_LISTED:
        later = ", closing later" if kind == "open" else ", closed earlier"
        lines.append(f"…and {len(items) - MAX_LISTED} more{later}.")
    return "\n".join(lines)


def _sentence(subject: str, rest: str) -> str:
    text = f"{subject} {rest}" if subject else rest
    return text[:1].upper() + text[1:]


# --- list_open_deals ----------------------------------------------------------------------------------
TEAM_WORDS = re.compile(r"\b(?:team'?s?|everyone'?s?|everybody'?s?|all\s+reps|whole\s+pipeline)\b", re.I)
OVERDUE_WORDS = re.compile(r"\b(?:overdue|past\s+due|slipped|past\s+(?:their|the)\s+close\s+date)\b", re.I)
POSSESSIVE = re.compile(r"(?:['’]s|s['’])$")


@dataclass
class DealFilters:
    """What the user asked a deal list to hold, and how to say it back."""

    query: DealQuery
    words: list[str] = field(default_factory=list)
    owner: Person | None = None
    account: str | None = None
    territory: str | None = None
    team: bool = False


def _names(turn: Turn, skip: Sequence[str]) -> list[tuple[str, bool]]:
    """Names said (with whether DIET called them a record), possessives dropped, territories skipped."""
    own = {v.lower() for v in turn.entity_values("record")}
    out: list[tuple[str, bool]] = []
    for name in resolve.names_in(turn):
        bare = POSSESSIVE.sub("", name.strip()).strip()
        if bare and bare.lower() not in skip and name.lower() not in skip:
            out.append((bare, name.lower() in own))
    return out


def _people_named(people: Sequence[Person], name: str) -> tuple[float, list[Person]]:
    """How well `name` fits the best-fitting users, and those users (several when they fit equally)."""
    scored = [(max(resolve.score(name, p.full_name), resolve.score(name, p.username)), p) for p in people]
    best = max((s for s, _ in scored), default=0.0)
    if best < resolve.MATCH:
        return best, []
    return best, [p for s, p in scored if s >= best - 0.5]


def deal_filters(uow: UnitOfWork, turn: Turn) -> DealFilters:
    """Owner, account, territory, stage, close dates and amounts from the message; Ask when a name
    said is neither a user nor a visible account, or a territory is unknown."""
    actor = uow.require_actor()
    zone = turn.zone(uow)
    text = turn.text
    words: list[str] = []
    values: dict[str, object] = {}
    territory_said = turn.entity_values("territory")
    territory_name = None
    if territory_said:
        found = deals.territory_named(uow, territory_said[0])
        if found is None:
            raise Ask(f"I don't know a territory called “{territory_said[0]}”.")
        values["territory_id"] = found.id
        territory_name = found.name
        words.append(f"in {found.name}")
    stage = stage_of(turn.entity("stage"))
    if stage is not None:
        values["stages"] = (stage,)
        if stage in CLOSED_STAGES:
            values["latest_first"] = True
        else:
            words.insert(0, f"in {stage.value}")
    period, spans = period_in(text, turn.now, zone)
    if OVERDUE_WORDS.search(text):
        values["close_before"] = turn.now.astimezone(zone).date()
        words.append("past their close date")
    elif period is not None:
        values["close_from"], values["close_before"] = period.start, period.end
        words.append(f"closing {period.words}")
    amounts = amount_filter(blank(text, spans))
    if amounts is not None:
        values.update(
            currency=amounts.currency,
            min_amount=amounts.min_amount,
            min_inclusive=amounts.min_inclusive,
            max_amount=amounts.max_amount,
            max_inclusive=amounts.max_inclusive,
        )
        words.append(amounts.words)
    skip = [t.lower() for t in territory_said] + ([territory_name.lower()] if territory_name else [])
    owner: Person | None = None
    account: str | None = None
    people = deals.deal_owners(uow)
    for name, from_diet in _names(turn, skip):
        fit, matches = _people_named(people, name)
        accounts = resolve.find(uow, ("account",), name)
        if matches and (not accounts or fit >= accounts[0].score):  # "Bob's deals"
            if len(matches) > 1:
                raise Ask(f"Whose deals do you mean: {', '.join(p.full_name for p in matches)}?")
            owner = matches[0]
            break
        if accounts:
            values["account_id"] = accounts[0].ref.id
            account = accounts[0].ref.label
            words.insert(0, f"at {account}")
            break
        if from_diet:
            raise Ask(f"I don't know a rep or an account called “{name}” that you can see.")
    team = owner is None and bool(TEAM_WORDS.search(text))
    if owner is not None:
        values["owner_id"] = owner.id
    elif not (team or account or territory_name):
        values["owner_id"] = actor.user_id
    query = DealQuery.model_validate(values)
    return DealFilters(query, words, owner, account, territory_name, team)


def _sees_all_of(uow: UnitOfWork, person: Person) -> bool:
    """Whether the acting user sees every deal `person` owns (themselves, their manager, an admin)."""
    actor = uow.require_actor()
    if actor.role is Role.ADMIN or person.id == actor.user_id:
        return True
    return actor.role is Role.MANAGER and actor.team_id is not None and person.team_id == actor.team_id


class ActionListOpenDeals(CrmAction):
    """'Show my open deals' / 'deals closing this month over 50k' / "Bob's deals" / 'deals in EMEA'.

    Without a name: the acting rep's own deals. A named owner's deals are only those the user may
    see; a rep asking for a colleague's usually gets none, and is told why.
    """

    def name(self) -> str:
        return "action_list_open_deals"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        actor = uow.require_actor()
        wanted = deal_filters(uow, turn)
        items = deals.find_deals(uow, wanted.query, limit=None)
        stage = wanted.query.stages[0] if wanted.query.stages else None
        kind = {DealStage.CLOSED_WON: "won", DealStage.CLOSED_LOST: "lost"}.get(stage, "open") if stage else "open"
        owner = wanted.owner
        subject, empty = "You have", None
        if owner is not None and owner.id != actor.user_id:
            subject = f"{owner.full_name} has"
            if not items and not _sees_all_of(uow, owner):
                said = "".join(f" {w}" for w in wanted.words)
                empty = f"None of {owner.full_name}'s {kind} deals{said} are visible to you." + (
                    " You see your own deals and those your team shares." if actor.role is Role.REP else ""
                )
        elif owner is None and wanted.query.owner_id is None:
            subject = "Your team has" if wanted.team and actor.role is not Role.REP else ""
            if not subject and not wanted.words:
                subject = "You can see"
        text = open_deals_text(
            items,
            subject=subject,
            filters=wanted.words,
            kind=kind,
            show_owners=wanted.query.owner_id is None,
            empty=empty,
        )
        events = []
        if len(items) == 1:
            ref = resolve.Ref("deal", items[0].id, items[0].name)
            events = resolve.remember(ref, turn, self.name())
        return ActionResult([Reply(text)], events)


# --- deal_status --------------------------------------------------------------------------------------
def days_to_go(close: date, today: date) -> str:
    """'today' / 'tomorrow' / 'in 12 days' / '1 day overdue' / '5 days overdue'."""
    delta = (close - today).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    if delta > 1:
        return f"in {delta} days"
    return f"{-delta} day overdue" if delta == -1 else f"{-delta} days overdue"


def activity_text(a: ActivityBrief, zone: ZoneInfo, now: datetime, upcoming: bool) -> str:
    what = f"{a.type} “{a.subject}”"
    if a.at is None:
        return what
    if upcoming:
        late = " (overdue)" if a.at < now else ""
        return f"{what}, due {moment(a.at, zone, now)}{late}"
    return f"{what}, {moment(a.at, zone, now)}"


class ActionDealStatus(CrmAction):
    """'What stage is the Nimbus deal in' / 'where are we with Acme' / 'when does it close'."""

    def name(self) -> str:
        return "action_deal_status"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        found = resolve.target(uow, turn, ("deal",), self.name())
        status = deals.deal_status(uow, found.ref.id)
        d = status.deal
        zone = turn.zone(uow)
        today = turn.now.astimezone(zone).date()
        lines = [
            f"{d.name} ({d.account_name}): {d.stage}, {money(d.amount, d.currency)}, {d.probability}% probability."
        ]
        if d.stage in CLOSED_STAGES:
            closed = f" on {day(status.closed_at.astimezone(zone).date())}" if status.closed_at else ""
            reason = f": {status.lost_reason}" if d.stage is DealStage.CLOSED_LOST and status.lost_reason else ""
            lines.append(f"{'Won' if d.stage is DealStage.CLOSED_WON else 'Lost'}{closed}{reason}.")
        elif d.expected_close_date is not None:
            lines.append(f"Closes {day(d.expected_close_date)} ({days_to_go(d.expected_close_date, today)}).")
        else:
            lines.append("No close date set.")
        lines.append(f"Owner: {d.owner_name or d.owner_username}.")
        last = status.last_activity
        lines.append(
            f"Last activity: {activity_text(last, zone, turn.now, False)}." if last else "No activity logged yet."
        )
        if status.next_activity is not None:
            lines.append(f"Next: {activity_text(status.next_activity, zone, turn.now, True)}.")
        elif d.stage not in CLOSED_STAGES:
            lines.append("Nothing planned next.")
        return ActionResult([Reply("\n".join(lines))], found.events)
