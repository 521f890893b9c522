"""The rep's time by conversation: log what happened, add tasks and reminders, set up recurring
activities and book meetings — each read back first and written only after the user's yes.

Every write goes through `crm_backend.services.records` (permissions, validation, audit, undo) in a
`Writer`; the actions only work out what the user meant and say it back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from actions import resolve
from actions.base import OWN_EXTRACTORS, Ask, Turn, user_zone
from actions.confirm import Pending, WriteAction, Writer, ask, writer
from actions.parsing import When, extract_amount_and_when, parse_when
from actions.replies import ActionResult, Reply, moment
from actions.resolve import Ref
from crm_backend.errors import Conflict
from crm_backend.models.activities import (
    ActivityStatus,
    ActivityType,
    BookingType,
    CalendarBooking,
    RecurrencePattern,
)
from crm_backend.models.users import User
from crm_backend.services import calendar, records
from crm_backend.store import UnitOfWork

LINK_KINDS = ("contact", "account", "deal", "lead")  # on a tie, the earlier kind wins ("Acme" is the account)
FOCUS_ORDER = ("deal", "contact", "account", "lead")  # the most specific record becomes the focus
LINK_FIELDS = {"contact": "contact_id", "account": "account_id", "deal": "deal_id", "lead": "lead_id"}
REMINDER_HOUR = 9  # a reminder given a day but no time goes off at 09:00 local
TASK_DUE_HOUR = 17  # a task due on a day is due by the end of its working day
DEFAULT_MEETING_MINUTES = 30
SLOT_SEARCH = dt.timedelta(days=14)
SLOT_STEP = dt.timedelta(minutes=30)


# --- wording ------------------------------------------------------------------------------------------
def span_text(start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> str:
    """`Tue 1 Dec, 15:00–15:30` (the end's day too when it is another day)."""
    local_end = end.astimezone(zone)
    if local_end.date() == start.astimezone(zone).date():
        return f"{moment(start, zone)}–{local_end:%H:%M}"
    return f"{moment(start, zone)} – {moment(end, zone)}"


def _and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _sentence_case(text: str) -> str:
    """'call Acme' → 'Call Acme' (leaves 'iPhone demo' and 'eBay' alone)."""
    if len(text) > 1 and text[0].islower() and not text[1].isupper():
        return text[0].upper() + text[1:]
    return text


# --- which records a message links to ------------------------------------------------------------------
@dataclass
class Links:
    """The records an activity, reminder or booking points at (a contact's or deal's account included)."""

    refs: dict[str, Ref] = field(default_factory=dict)  # kind → record
    unmatched: list[str] = field(default_factory=list)  # names said that match nothing the user can see

    def add(self, ref: Ref) -> None:
        self.refs.setdefault(ref.kind, ref)

    @property
    def ids(self) -> dict[str, int]:
        return {LINK_FIELDS[kind]: ref.id for kind, ref in self.refs.items()}

    @property
    def focus(self) -> Ref | None:
        return next((self.refs[k] for k in FOCUS_ORDER if k in self.refs), None)

    @property
    def place(self) -> str | None:
        """What it is 'on': the deal, else the account."""
        ref = self.refs.get("deal") or self.refs.get("account")
        return ref.label if ref else None

    @property
    def person(self) -> str | None:
        ref = self.refs.get("contact") or self.refs.get("lead")
        return ref.label if ref else None

    def on_text(self) -> str:
        """' on Nimbus Labs (Dana Smith)' / ' for Tom Baker' / ''."""
        place, person = self.place, self.person
        if place and person:
            return f" on {place} ({person})"
        if place:
            return f" on {place}"
        return f" for {person}" if person else ""


def best_match(uow: UnitOfWork, kinds: Sequence[str], phrase: str) -> Ref | None:
    """The record `phrase` names best; on a tie the earlier kind wins, so "Acme" is the account
    Acme Corporation rather than its deal "Acme - Fleet telematics" (both score 100)."""
    matches = resolve.find(uow, kinds, phrase)  # ties are ordered by the kinds given
    return matches[0].ref if matches else None


def implied(uow: UnitOfWork, links: Links) -> Links:
    """A contact's or deal's account belongs to the links too (when the user may see it)."""
    if "account" in links.refs:
        return links
    for kind in ("deal", "contact"):
        ref = links.refs.get(kind)
        if ref is None:
            continue
        loaded = resolve.load(uow, ref.key)
        account_id = getattr(loaded[1], "account_id", None) if loaded else None
        hit = resolve.load(uow, f"account:{account_id}") if account_id else None
        if hit:
            links.add(hit[0])
            break
    return links


def _name_positions(turn: Turn) -> dict[str, int]:
    """Where in the text each said name (record entity, spaCy PERSON/ORG) first starts."""
    positions: dict[str, int] = {}
    for e in turn.entities:
        if e.get("entity") not in ("record", "PERSON", "ORG"):
            continue
        value, start = str(e.get("value") or "").strip(), e.get("start")
        if value and isinstance(start, int) and start >= 0:
            positions[value] = min(positions.get(value, start), start)
    return positions


def links_in(uow: UnitOfWork, turn: Turn, names: Sequence[str], kinds: Sequence[str] = LINK_KINDS) -> Links:
    """The best visible record for each name; names that match nothing are kept as `unmatched`."""
    links = Links()
    for phrase in names:
        ref = best_match(uow, kinds, phrase)
        if ref is None:
            links.unmatched.append(phrase)
        else:
            links.add(ref)
    return implied(uow, links)


def _record_spans(turn: Turn) -> list[tuple[int, int]]:
    spans = []
    for e in turn.entities:
        start, end = e.get("start"), e.get("end")
        if e.get("entity") in ("record", "PERSON", "ORG") and isinstance(start, int) and isinstance(end, int):
            spans.append((start, end))
    return spans


def in_focus(uow: UnitOfWork, turn: Turn) -> Links:
    """The conversation's focus record (and its account) when the user named none: "log a call on it"."""
    links = Links()
    ref = resolve.from_focus(uow, LINK_KINDS, turn.slot(resolve.FOCUS))
    if ref is not None:
        links.add(ref)
    return implied(uow, links)


def unlinked(links: Links) -> str:
    """The read-back's warning that a name said matched nothing the user can see."""
    if not links.unmatched:
        return ""
    return f"I can't find “{links.unmatched[0]}” among your records, so it won't be linked. "


def focus_events(links: Links, turn: Turn, action: str) -> list[Any]:
    ref = links.focus
    return resolve.remember(ref, turn, action) if ref else []


# --- logging what happened ----------------------------------------------------------------------------
# Where the free text starts: after the first comma, colon, dash or "saying"/"that" (not inside a
# number like 10:30 or 12,000, nor inside a record's name like "Acme - Fleet telematics").
SEPARATOR = re.compile(r"(?<!\d)[,:](?!\d)|\s[-–]\s|\s?—\s?|\ssaying\s|\sthat\s", re.IGNORECASE)
TYPE_WORDS: tuple[tuple[re.Pattern[str], ActivityType], ...] = (
    (re.compile(r"\b(?:call(?:ed|ing)?|rang|rung|phoned?|phone\s+call|dialed|dialled)\b", re.I), ActivityType.CALL),
    (re.compile(r"\b(?:met|meet(?:ing)?|catch[- ]?up|demo|lunch|coffee|visit(?:ed)?)\b", re.I), ActivityType.MEETING),
    (re.compile(r"\b(?:e-?mail(?:ed)?|wrote)\b", re.I), ActivityType.EMAIL),
    (re.compile(r"\b(?:task|to-?do)\b", re.I), ActivityType.TASK),
    (re.compile(r"\bnote\b", re.I), ActivityType.NOTE),
)
ACTIVITY_TYPES = {t.value.lower(): t for t in ActivityType}


def split_description(text: str, protected: Sequence[tuple[int, int]] = ()) -> tuple[int, str]:
    """(where the header ends, the free text verbatim): the part after the first separator, or the
    whole message when there is none (voice transcripts) or nothing follows it."""
    for m in SEPARATOR.finditer(text):
        if any(start < m.end() and m.start() < end for start, end in protected):
            continue
        rest = text[m.end() :].strip()
        if rest:
            return m.start(), rest
        break
    return len(text), text.strip()


def activity_type_in(turn: Turn, header_end: int, default: ActivityType) -> ActivityType:
    """The activity_type entity said in the header, else a word there that names one, else `default`."""
    for e in turn.entities:
        if e.get("entity") != "activity_type" or e.get("extractor") not in OWN_EXTRACTORS:
            continue
        start = e.get("start")
        kind = ACTIVITY_TYPES.get(str(e.get("value") or "").strip().lower())
        if kind is not None and (not isinstance(start, int) or start < header_end):
            return kind
    header = turn.text[:header_end]
    for pattern, kind in TYPE_WORDS:
        if pattern.search(header):
            return kind
    return default


def activity_subject(kind: ActivityType, links: Links) -> str:
    """'Call with Dana Smith' / 'Note on Acme Corporation' / 'Meeting with Globex'."""
    who = links.person or links.place
    if kind is ActivityType.NOTE:
        return f"Note on {links.place or who}" if (links.place or who) else "Note"
    if kind is ActivityType.TASK:
        return f"Task for {who}" if who else "Task"
    return f"{kind.value} with {who}" if who else kind.value


def log_summary(kind: str, links: Links, description: str) -> str:
    """'Log a call on Nimbus Labs with Dana Smith: “she wants a proposal by Friday”'."""
    noun = kind.lower()
    text = f"Log {resolve.article(noun)} {noun}"
    if links.place:
        text += f" on {links.place}"
    if links.person:
        text += f" with {links.person}"
    return f"{text}: “{description}”"


class ActionLogActivity(WriteAction):
    """'log a call with Dana at Nimbus, she wants a proposal by Friday' / 'add a note to Acme: budget approved'."""

    def name(self) -> str:
        return "action_log_activity"

    def read_back(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        header_end, description = split_description(turn.text, _record_spans(turn))
        kind = activity_type_in(turn, header_end, ActivityType.NOTE)
        links, events = self._links(uow, turn, header_end)
        args = {
            "type": kind.value,
            "subject": activity_subject(kind, links)[:300],
            "description": description[:10000],
            "links": links.ids,
            "place": links.place,
            "person": links.person,
        }
        return ask(Pending("log_activity", args, log_summary(kind.value, links, description)), events)

    def _links(self, uow: UnitOfWork, turn: Turn, header_end: int) -> tuple[Links, list[Any]]:
        """The records named before the free text (those named inside it only when none were);
        else the record in focus; else ask. The free text itself is never searched for names."""
        names = [] if turn.choosing else resolve.names_in(turn)
        positions = _name_positions(turn)
        header = [n for n in names if positions.get(n, -1) < header_end]
        if header:
            links = links_in(uow, turn, header)
            own = set(turn.entity_values("record"))
            missing = [n for n in links.unmatched if n in own] or (links.unmatched if not links.refs else [])
            if missing:
                raise resolve.not_found(LINK_KINDS, missing[0])
            return links, focus_events(links, turn, self.name())
        if names:
            links = links_in(uow, turn, names)
            if links.refs:
                return links, focus_events(links, turn, self.name())
        links = in_focus(uow, turn)
        if not links.refs:
            raise Ask(
                "Which account, contact or deal should I log it on? Say it in one go, "
                "e.g. “log a call with Dana at Nimbus, she wants a proposal by Friday”."
            )
        return links, focus_events(links, turn, self.name())


@writer
class LogActivity(Writer):
    kind = "log_activity"

    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        kind = ActivityType(args["type"])
        values = {
            "type": kind,
            "subject": args["subject"],
            "description": args["description"],
            "status": ActivityStatus.COMPLETED,
            "completion_percent": 100,
            "completed_at": dt.datetime.now(dt.UTC),
            **{k: int(v) for k, v in dict(args.get("links") or {}).items() if k in LINK_FIELDS.values()},
        }
        records.create_record(uow, records.resource("activities"), values)
        noun = kind.value.lower()
        done = f"Logged {resolve.article(noun)} {noun}"
        if args.get("place"):
            done += f" on {args['place']}"
        if args.get("person"):
            done += f" with {args['person']}"
        return done + "."


# --- tasks and reminders ------------------------------------------------------------------------------
REMIND = re.compile(r"\bremind(?:er|ers)?\b", re.IGNORECASE)
FILLERS = r"(?:(?:ok(?:ay)?|so|um+|uh+|hey|please|pls|can\s+you|could\s+you|would\s+you|will\s+you)[\s,]+)*"
TASK_LEAD_IN = re.compile(
    rf"^\s*{FILLERS}(?:"
    r"remind\s+me\s+(?:to\s+|about\s+|that\s+|of\s+)?"
    r"|(?:set|add|create|make|put\s+in|schedule|new)\s+(?:me\s+)?(?:a\s+|an\s+)?(?:new\s+)?"
    r"(?:task|to-?do|reminder|follow[- ]?up)(?:\s+for\s+me)?(?:\s+(?:to|for|about|that)\b)?"
    r"|(?:a\s+)?(?:task|to-?do|reminder)\s*(?=[:\-–])"
    r"|i\s+(?:need|have|must|should)\s+to\s+"
    r")",
    re.IGNORECASE,
)
DANGLING = re.compile(
    r"^(?:[\s,:;.\-–—]+|(?:by|on|at|for|from|starting|beginning)\s)+"
    r"|(?:[\s,:;\-–—]+|\b(?:by|on|at|for|from|starting|beginning|due))+$",
    re.IGNORECASE,
)


def _tidy(text: str) -> str:
    """Whitespace collapsed, stray punctuation and prepositions at either end dropped."""
    previous = None
    text = re.sub(r"\s{2,}", " ", text).strip()
    while previous != text:
        previous = text
        text = DANGLING.sub("", text).strip()
    return text


def cut(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` without the `spans` (each replaced by a space)."""
    out, pos = [], 0
    for start, end in sorted(spans):
        out.append(text[pos:start])
        out.append(" ")
        pos = max(pos, end)
    out.append(text[pos:])
    return "".join(out)


def task_subject(text: str, when_spans: Sequence[tuple[int, int]]) -> str:
    """'remind me to call Acme tomorrow at 10' → 'call Acme': the date words and the lead-in go, the
    rest stays as said (amounts included)."""
    rest = _tidy(cut(text, when_spans))
    previous = None
    while previous != rest:
        previous = rest
        rest = _tidy(TASK_LEAD_IN.sub("", rest, count=1))
    return rest


def due_time(when: When, zone: ZoneInfo, hour: int) -> dt.datetime:
    """The moment `when` names; a day (or the first day of a range) without a time gets `hour` local."""
    if when.has_time:
        return when.start
    day = when.start.astimezone(zone).date()
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zone)


def task_summary(subject: str, due: dt.datetime | None, remind: bool, links: Links, zone: ZoneInfo) -> str:
    text = f"Add the task “{subject}”{links.on_text()}"
    if due is None:
        return text + " with no due date"
    text += f", due {moment(due, zone)}"
    return text + (", and remind you then" if remind else "")


class ActionCreateTask(WriteAction):
    """'remind me to call Acme tomorrow at 10' / 'add a task to send the proposal by Friday'."""

    def name(self) -> str:
        return "action_create_task"

    def read_back(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        zone = turn.zone(uow)
        found = extract_amount_and_when(turn.text, now=turn.now, tz=zone.key)
        remind = bool(REMIND.search(turn.text))
        subject = _sentence_case(task_subject(turn.text, found.when_spans))[:300]
        example = "e.g. “remind me to call Acme tomorrow at 10”"
        if not subject:
            raise Ask(f"What should the {'reminder' if remind else 'task'} say? Say it in one go, {example}.")
        due: dt.datetime | None = None
        if found.when is not None:
            due = due_time(found.when, zone, REMINDER_HOUR if remind else TASK_DUE_HOUR)
        if remind and due is None:
            raise Ask(f"When should I remind you? Say it in one go, {example}.")
        if remind and due is not None and due <= turn.now:
            raise Ask(f"{moment(due, zone)} has already passed. When should I remind you? Say it in one go, {example}.")
        links = links_in(uow, turn, resolve.names_in(turn))
        summary = task_summary(subject, due, remind, links, zone)
        args = {
            "subject": subject,
            "due_at": due.astimezone(dt.UTC).isoformat() if due else None,
            "due_text": moment(due, zone) if due else None,
            "remind": remind,
            "links": links.ids,
            "on": links.on_text(),
        }
        return ask(Pending("create_task", args, summary), focus_events(links, turn, self.name()), unlinked(links))


@writer
class CreateTask(Writer):
    kind = "create_task"

    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        link_ids = {k: int(v) for k, v in dict(args.get("links") or {}).items() if k in LINK_FIELDS.values()}
        due = args.get("due_at")
        task = records.create_record(
            uow,
            records.resource("activities"),
            {"type": ActivityType.TASK, "subject": args["subject"], "due_at": due, **link_ids},
        )
        done = f"Added the task “{args['subject']}”{args.get('on') or ''}"
        if due:
            done += f", due {args['due_text']}"
        if args.get("remind") and due:
            records.create_record(
                uow,
                records.resource("reminders"),
                {"message": args["subject"], "remind_at": due, "activity_id": task.id, **link_ids},
            )
            done += "; I'll remind you then"
        return done + "."


# --- recurring activities -----------------------------------------------------------------------------
DAY_CODES = {
    **dict.fromkeys(("monday", "mon"), "MO"),
    **dict.fromkeys(("tuesday", "tues", "tue"), "TU"),
    **dict.fromkeys(("wednesday", "weds", "wed"), "WE"),
    **dict.fromkeys(("thursday", "thurs", "thur", "thu"), "TH"),
    **dict.fromkeys(("friday", "fri"), "FR"),
    **dict.fromkeys(("saturday", "sat"), "SA"),
    **dict.fromkeys(("sunday", "sun"), "SU"),
}
DAY_NAMES = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday"}
DAY_NAMES |= {"SA": "Saturday", "SU": "Sunday"}
WORKDAYS = ["MO", "TU", "WE", "TH", "FR"]
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "other": 2, "second": 2, "third": 3}
ORDINAL_DAYS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "tenth": 10, "fifteenth": 15, "last": -1}
UNITS = {
    "day": RecurrencePattern.DAILY,
    "week": RecurrencePattern.WEEKLY,
    "month": RecurrencePattern.MONTHLY,
    "year": RecurrencePattern.YEARLY,
}

_DAY = "|".join(sorted(DAY_CODES, key=len, reverse=True))
_DAY_LIST = rf"(?:{_DAY})s?\.?(?:\s*(?:,|and|&|\+|/|or)\s*(?:{_DAY})s?\.?)*"
_MONTH_DAY = r"(?:\d{1,2}(?:st|nd|rd|th)?|" + "|".join(ORDINAL_DAYS) + ")"
_EVERY = r"(?:every|each|evry|ever)"
RECURRENCE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "workdays",
        re.compile(rf"\b(?:{_EVERY}\s+(?:work\s*day|week\s*day|business\s+day)s?|(?:on\s+)?weekdays)\b", re.I),
    ),
    (
        "month_day",
        re.compile(
            rf"\b(?:{_EVERY}|on)\s+(?:the\s+)?(?P<md>{_MONTH_DAY})\s+(?:day\s+)?of\s+(?:the|every|each)\s+month\b"
            rf"|\b(?:{_EVERY}|monthly\s+on)\s+(?:the\s+)?(?P<md2>\d{{1,2}}(?:st|nd|rd|th)|first|last(?:\s+day)?)\b",
            re.I,
        ),
    ),
    ("every_days", re.compile(rf"\b{_EVERY}\s+(?P<other>other\s+|second\s+)?(?P<days>{_DAY_LIST})(?![a-z])", re.I)),
    ("plural_days", re.compile(rf"\b(?:on\s+)?(?P<days>(?:{_DAY})s(?:\s*(?:,|and|&|\+|/)\s*(?:{_DAY})s)*)\b", re.I)),
    (
        "every_n",
        re.compile(
            rf"\b{_EVERY}\s+(?P<n>\d{{1,3}}|{'|'.join(NUMBERS)})\s+(?P<unit>day|week|month|year)s?\b",
            re.I,
        ),
    ),
    ("every_unit", re.compile(rf"\b{_EVERY}\s+(?:single\s+)?(?P<unit>day|week|month|year)\b", re.I)),
    (
        "adverb",
        re.compile(
            r"\b(?P<adv>daily|weekly|bi-?weekly|fortnightly|monthly|bi-?monthly|quarterly|yearly|annually)\b", re.I
        ),
    ),
)
STARTING = re.compile(r"\b(?:starting|beginning|begin|start|from|as\s+of|commencing|effective)\s*$", re.I)
ON_DAYS = re.compile(rf"\bon\s+(?:the\s+)?(?P<days>{_DAY_LIST})(?![a-z])", re.I)
ADVERBS = {
    "daily": (RecurrencePattern.DAILY, 1),
    "weekly": (RecurrencePattern.WEEKLY, 1),
    "biweekly": (RecurrencePattern.WEEKLY, 2),
    "fortnightly": (RecurrencePattern.WEEKLY, 2),
    "monthly": (RecurrencePattern.MONTHLY, 1),
    "bimonthly": (RecurrencePattern.MONTHLY, 2),
    "quarterly": (RecurrencePattern.MONTHLY, 3),
    "yearly": (RecurrencePattern.YEARLY, 1),
    "annually": (RecurrencePattern.YEARLY, 1),
}
RECURRING_LEAD_IN = re.compile(
    rf"^\s*{FILLERS}(?:"
    r"remind\s+me\s+(?:to\s+|about\s+|of\s+)?"
    r"|(?:set\s+up|setup|set|add|create|make|schedule|put\s+in|book|new)\s+(?:me\s+)?(?:a\s+|an\s+)?(?:new\s+)?"
    r"(?:recurring\s+|repeating\s+|regular\s+)?(?:task|to-?do|reminder|event|activity|series)?(?:\s+(?:to|for|about)\b)?"
    r"|(?:a\s+|an\s+)?(?:recurring|repeating|regular)\s+(?:task|to-?do|reminder|event|activity)?(?:\s+(?:to|for)\b)?"
    r"|(?:a|an)\s+"
    r"|i\s+(?:need|have|want)\s+to\s+"
    r")",
    re.IGNORECASE,
)


@dataclass
class Recurrence:
    """How often: a pattern, an interval, the weekdays (MO…SU) and days of the month it falls on."""

    pattern: RecurrencePattern
    interval: int = 1
    weekdays: list[str] = field(default_factory=list)
    month_days: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)

    def describe(self) -> str:
        """'every Monday' / 'every 2 weeks on Monday and Thursday' / 'on the 1st of every month'."""
        days = _and([DAY_NAMES[d] for d in self.weekdays])
        if self.weekdays == WORKDAYS and self.interval == 1:
            return "every weekday"
        if self.pattern is RecurrencePattern.WEEKLY and days:
            return f"every {days}" if self.interval == 1 else f"every {self.interval} weeks on {days}"
        if self.pattern is RecurrencePattern.MONTHLY and self.month_days:
            which = _and(["last day" if d == -1 else _ordinal(d) for d in self.month_days])
            every = "every month" if self.interval == 1 else f"every {self.interval} months"
            return f"on the {which} of {every}"
        unit = {"Daily": "day", "Weekly": "week", "Monthly": "month", "Yearly": "year"}[self.pattern.value]
        return f"every {unit}" if self.interval == 1 else f"every {self.interval} {unit}s"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _days(raw: str) -> list[str]:
    """'Mon and Thursdays' → ['MO', 'TH']."""
    codes: list[str] = []
    for word in re.findall(r"[a-z]+", raw.lower()):
        code = DAY_CODES.get(word) or DAY_CODES.get(word.removesuffix("s"))
        if code and code not in codes:
            codes.append(code)
    return codes


def _month_day(raw: str) -> int | None:
    word = raw.lower().removesuffix(" day").strip()
    if word in ORDINAL_DAYS:
        return ORDINAL_DAYS[word]
    digits = re.match(r"\d+", word)
    day = int(digits.group()) if digits else 0
    return day if 1 <= day <= 31 else None


def parse_recurrence(text: str) -> Recurrence | None:
    """How often `text` says something happens ("every Monday", "weekly … on Thursdays", "every
    first of the month", "every 2 weeks", "daily"); None when it names no repetition."""
    pattern: RecurrencePattern | None = None
    interval = 1
    weekdays: list[str] = []
    month_days: list[int] = []
    spans: list[tuple[int, int]] = []

    def taken(m: re.Match[str]) -> bool:
        return any(s < m.end() and m.start() < e for s, e in spans)

    for rule, regex in RECURRENCE_RULES:
        for m in regex.finditer(text):
            if taken(m):
                continue
            if rule == "workdays":
                weekdays = list(WORKDAYS)
            elif rule == "month_day":
                day = _month_day(m.group("md") or m.group("md2") or "")
                if day is None:
                    continue
                pattern, month_days = RecurrencePattern.MONTHLY, [*month_days, day]
            elif rule in ("every_days", "plural_days"):
                weekdays = weekdays + [d for d in _days(m.group("days")) if d not in weekdays]
                if rule == "every_days" and m.group("other"):
                    interval = 2
            elif rule == "every_n":
                raw = m.group("n").lower()
                interval = int(raw) if raw.isdigit() else NUMBERS[raw]
                pattern = UNITS[m.group("unit").lower()]
            elif rule == "every_unit":
                pattern = pattern or UNITS[m.group("unit").lower()]
            else:
                pattern, interval = ADVERBS[m.group("adv").lower().replace("-", "")]
            spans.append(m.span())
    if not spans or interval < 1:
        return None
    if pattern in (None, RecurrencePattern.WEEKLY) and not weekdays:
        for m in ON_DAYS.finditer(text):  # "weekly call on Thursday"
            if not taken(m):
                weekdays += [d for d in _days(m.group("days")) if d not in weekdays]
                spans.append(m.span())
    if weekdays and pattern in (None, RecurrencePattern.DAILY, RecurrencePattern.WEEKLY):
        pattern = RecurrencePattern.WEEKLY
    if pattern is None:
        return None
    if pattern is not RecurrencePattern.WEEKLY:
        weekdays = []
    return Recurrence(pattern, interval, weekdays, month_days if pattern is RecurrencePattern.MONTHLY else [], spans)


def recurring_subject(text: str, spans: Sequence[tuple[int, int]]) -> str:
    rest = _tidy(cut(text, spans))
    previous = None
    while previous != rest:
        previous = rest
        rest = _tidy(RECURRING_LEAD_IN.sub("", rest, count=1))
    return rest


def first_occurrences(rule: str, starts_at: dt.datetime, tz: str, after: dt.datetime, n: int = 3) -> list[dt.datetime]:
    """The first `n` occurrences at or after `after` (searching up to four years ahead)."""
    start = max(after, starts_at)
    return calendar.occurrences_between(rule, starts_at, tz, start, start + dt.timedelta(days=4 * 366))[:n]


class ActionCreateRecurring(WriteAction):
    """'every Monday at 9 pipeline review' / 'set up a weekly call with Dana on Thursdays'."""

    def name(self) -> str:
        return "action_create_recurring"

    def read_back(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        zone = turn.zone(uow)
        example = "e.g. “every Monday at 9 pipeline review”"
        recurrence = parse_recurrence(turn.text)
        if recurrence is None:
            raise Ask(f"How often should it repeat? Say it in one go, {example}.")
        remaining = cut(turn.text, recurrence.spans)
        found = extract_amount_and_when(remaining, now=turn.now, tz=zone.key)
        when, when_spans = found.when, found.when_spans
        if when is not None and not when.has_time and not STARTING.search(remaining[: when_spans[0][0]]):
            when, when_spans = None, ()  # a date inside the subject ("send the Q3 report") is not the start
        subject = _sentence_case(recurring_subject(remaining, when_spans))[:300]
        if not subject:
            raise Ask(f"What is it you do {recurrence.describe()}? Say it in one go, {example}.")
        remind = bool(REMIND.search(turn.text))
        header_end, _ = split_description(turn.text, _record_spans(turn))
        default_type = ActivityType.TASK
        kind = activity_type_in(turn, header_end, default_type)
        starts_at = self._start(when, zone, turn.now)
        values: dict[str, Any] = {
            "pattern": recurrence.pattern,
            "interval": recurrence.interval,
            "weekdays": recurrence.weekdays,
            "month_days": recurrence.month_days,
            "starts_at": starts_at,
        }
        rule = calendar.build_rrule(values)
        upcoming = first_occurrences(rule, starts_at, zone.key, turn.now)
        if not upcoming:
            raise Ask(f"I can't find a date that “{recurrence.describe()}” falls on. How often should it repeat?")
        links = links_in(uow, turn, resolve.names_in(turn))
        at = upcoming[0].astimezone(zone)
        summary = (
            f"Set up “{subject}” ({kind.value.lower()}){links.on_text()} {recurrence.describe()} at {at:%H:%M}"
            + (", with a reminder each time" if remind else "")
            + " — the next ones: "
            + "; ".join(moment(o, zone) for o in upcoming)
        )
        args = {
            "subject": subject,
            "activity_type": kind.value,
            "pattern": recurrence.pattern.value,
            "interval": recurrence.interval,
            "weekdays": recurrence.weekdays,
            "month_days": recurrence.month_days,
            "starts_at": starts_at.astimezone(dt.UTC).isoformat(),
            "timezone": zone.key,
            "remind": remind,
            "links": links.ids,
            "describe": f"{recurrence.describe()} at {at:%H:%M}",
        }
        return ask(Pending("create_recurring", args, summary), focus_events(links, turn, self.name()), unlinked(links))

    @staticmethod
    def _start(when: When | None, zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
        """The series' anchor: the day said ("starting Dec 1", else today) at the time said (else 09:00)."""
        if when is None:
            return dt.datetime.combine(now.astimezone(zone).date(), dt.time(REMINDER_HOUR), tzinfo=zone)
        return due_time(when, zone, REMINDER_HOUR)


@writer
class CreateRecurring(Writer):
    kind = "create_recurring"

    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        link_ids = {k: int(v) for k, v in dict(args.get("links") or {}).items() if k in LINK_FIELDS.values()}
        series = records.create_record(
            uow,
            records.resource("recurring-activities"),
            {
                "subject": args["subject"],
                "activity_type": args["activity_type"],
                "pattern": args["pattern"],
                "interval": int(args["interval"]),
                "weekdays": list(args.get("weekdays") or []),
                "month_days": [int(d) for d in args.get("month_days") or []],
                "starts_at": args["starts_at"],
                "timezone": args["timezone"],
                **link_ids,
            },
        )
        done = f"Set up “{args['subject']}” {args['describe']}"
        if args.get("remind"):
            first = calendar.next_occurrence(series.rrule, series.starts_at, dt.datetime.now(dt.UTC), series.timezone)
            if first is not None:
                records.create_record(
                    uow,
                    records.resource("reminders"),
                    {"message": args["subject"], "remind_at": first, "recurrence": series.rrule, **link_ids},
                )
                done += ", with a reminder each time"
        return done + "."


# --- booking meetings ---------------------------------------------------------------------------------
DURATION = re.compile(
    r"(?<!\bin\s)(?<!\bwithin\s)\b(?:for\s+)?(?:"
    r"(?P<half>half\s+an?\s+hour)"
    r"|(?P<hour_half>(?:an?|one)\s+hour\s+and\s+a\s+half)"
    r"|(?P<n>\d{1,3}(?:[.,]5)?|an?|one|two|three)\s*-?\s*(?P<unit>hours?|hrs?|hr|minutes?|mins?|min)"
    r"|(?P<n2>\d{1,3})(?P<unit2>h|m)"
    r")\b",
    re.IGNORECASE,
)
WORD_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
BOOKING_TYPES = (
    (re.compile(r"\bdemo\b", re.I), BookingType.DEMO),
    (re.compile(r"\bpresentation\b", re.I), BookingType.PRESENTATION),
    (re.compile(r"\b(?:call|phone)\b", re.I), BookingType.CALL),
)


def parse_duration(text: str) -> tuple[int, tuple[int, int]] | None:
    """Minutes and the span of "for an hour" / "45 minutes" / "30 minute call" / "1.5 hours" / "90m"."""
    for m in DURATION.finditer(text):
        if m.group("half"):
            minutes = 30
        elif m.group("hour_half"):
            minutes = 90
        else:
            raw = (m.group("n") or m.group("n2")).lower().replace(",", ".")
            unit = (m.group("unit") or m.group("unit2")).lower()
            count = WORD_COUNTS[raw] if raw in WORD_COUNTS else float(raw)
            minutes = round(count * (60 if unit.startswith("h") else 1))
        if 5 <= minutes <= 8 * 60:
            return minutes, m.span()
    return None


@dataclass
class Invitees:
    contacts: list[Ref] = field(default_factory=list)
    users: list[tuple[int, str]] = field(default_factory=list)  # (user id, full name)
    links: Links = field(default_factory=Links)

    @property
    def names(self) -> list[str]:
        return [c.label for c in self.contacts] + [name for _, name in self.users]


def find_user(uow: UnitOfWork, phrase: str) -> tuple[int, str, float] | None:
    """The active colleague `phrase` names best (by full name or username), not the acting user."""
    me = uow.require_actor().user_id
    best: tuple[int, str, float] | None = None
    for user in uow.session.scalars(select(User).where(User.is_active.is_(True), User.id != me)):
        value = max(resolve.score(phrase, user.full_name), resolve.score(phrase, user.username))
        if value >= resolve.MATCH and (best is None or value > best[2]):
            best = (user.id, user.full_name, value)
    return best


def booking_type_in(text: str) -> BookingType:
    for pattern, kind in BOOKING_TYPES:
        if pattern.search(text):
            return kind
    return BookingType.MEETING


def clash_text(uow: UnitOfWork, user_ids: Sequence[int], start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> str:
    """'' when everyone is free; else who is busy with what ("You're busy then (Globex workshop,
    15:00–16:00)"; a colleague's meeting the user may not see is only "busy")."""
    actor = uow.require_actor()
    res = records.resource("calendar-bookings")
    parts: list[str] = []
    for uid in user_ids:
        found = calendar.conflicts(uow, uid, start, end)
        if not found:
            continue
        if uid == actor.user_id:
            what = "; ".join(f"{b.title}, {span_text(b.start_at, b.end_at, zone)}" for b in found[:2])
            parts.append(f"You're busy then ({what}).")
            continue
        visible = set(uow.session.scalars(records.scoped(res, actor).where(res.id_column.in_([b.id for b in found]))))
        user = uow.session.get(User, uid)
        shown = [f"{b.title}, {span_text(b.start_at, b.end_at, zone)}" for b in found[:2] if b in visible]
        name = user.full_name if user else "A colleague"
        parts.append(f"{name} is busy then" + (f" ({'; '.join(shown)})." if shown else "."))
    return " ".join(parts)


def free(
    uow: UnitOfWork, user_ids: Sequence[int], minutes: int, start: dt.datetime, end: dt.datetime, limit: int = 3
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Free slots for everyone invited from the CRM, on the half hour, within working hours."""
    if end <= start:
        return []
    return calendar.free_slots(uow, user_ids, dt.timedelta(minutes=minutes), start, end, step=SLOT_STEP, limit=limit)


def booking_summary(args: dict[str, Any], zone: ZoneInfo, instead: bool = False) -> str:
    start, end = dt.datetime.fromisoformat(args["start"]), dt.datetime.fromisoformat(args["end"])
    return f"Book “{args['title']}” on {span_text(start, end, zone)}" + (" instead" if instead else "")


def other_slots_reply(slots: Sequence[tuple[dt.datetime, dt.datetime]], zone: ZoneInfo) -> Reply | None:
    if not slots:
        return None
    lines = ["Other free times:"]
    lines += [f"{n}. {span_text(s, e, zone)}" for n, (s, e) in enumerate(slots, start=1)]
    s = slots[0][0].astimezone(zone)
    lines.append(f"To take one, say so with its time, e.g. “book it {s:%a} {s.day} {s:%b} at {s:%H:%M}”.")
    return Reply("\n".join(lines))


class ActionBookMeeting(WriteAction):
    """'book a meeting with Dana Smith next Tuesday 3pm' / 'find a slot with Raj this week'."""

    def name(self) -> str:
        return "action_book_meeting"

    def read_back(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        zone = turn.zone(uow)
        actor = uow.require_actor()
        invitees, events = self._invitees(uow, turn)
        duration = parse_duration(turn.text)
        minutes = duration[0] if duration else DEFAULT_MEETING_MINUTES
        text = cut(turn.text, [duration[1]]) if duration else turn.text
        when = parse_when(text, now=turn.now, tz=zone.key)
        kind = booking_type_in(turn.text)
        other = invitees.links.person or invitees.links.place
        who = invitees.names or ([other] if other else [])
        user_ids = [actor.user_id, *(uid for uid, _ in invitees.users)]
        args: dict[str, Any] = {
            "title": f"{kind.value} with {_and(who)}"[:300],
            "type": kind.value,
            "minutes": minutes,
            "timezone": zone.key,
            "contact_ids": [c.id for c in invitees.contacts],
            "user_ids": [uid for uid, _ in invitees.users],
            "links": invitees.links.ids,
        }
        prefix = ""
        if when is not None and when.has_time and when.end is None and when.start > turn.now:
            start, end = when.start, when.start + dt.timedelta(minutes=minutes)
            prefix = clash_text(uow, user_ids, start, end, zone)
            if not prefix:
                args |= {"start": start.astimezone(dt.UTC).isoformat(), "end": end.astimezone(dt.UTC).isoformat()}
                return ask(Pending("book_meeting", args, booking_summary(args, zone)), events)
            window = (start, start + SLOT_SEARCH)
        elif when is not None and not when.has_time:
            day_end = when.end or when.start + dt.timedelta(days=1)
            window = (max(turn.now, when.start), day_end)
            if window[1] <= window[0]:
                window = (turn.now, turn.now + SLOT_SEARCH)
        else:
            if when is not None:
                prefix = f"{moment(when.start, zone)} has already passed."
            window = (turn.now, turn.now + SLOT_SEARCH)
        slots = free(uow, user_ids, minutes, *window)
        if not slots and window[1] - window[0] < SLOT_SEARCH:  # nothing that day: look further on
            slots = free(uow, user_ids, minutes, window[1], window[1] + SLOT_SEARCH)
            prefix = (prefix + " Nothing is free then.").strip()
        if not slots:
            raise Ask(
                f"{prefix} I can't find a free {minutes}-minute slot in the next two weeks.".strip(), events=events
            )
        first, *others = slots
        args |= {"start": first[0].astimezone(dt.UTC).isoformat(), "end": first[1].astimezone(dt.UTC).isoformat()}
        pending = Pending("book_meeting", args, booking_summary(args, zone, instead=bool(prefix)))
        result = ask(pending, events, prefix=f"{prefix} " if prefix else "")
        more = other_slots_reply(others, zone)
        if more:
            result.replies.append(more)
        return result

    def _invitees(self, uow: UnitOfWork, turn: Turn) -> tuple[Invitees, list[Any]]:
        """Named contacts and colleagues (a named account, deal or lead is linked, not invited); with
        no name, the contact or record in focus; else ask who."""
        invitees = Invitees()
        for phrase in [] if turn.choosing else resolve.names_in(turn):
            contact = resolve.find(uow, ("contact",), phrase, limit=1)
            user = find_user(uow, phrase)
            if contact and (user is None or contact[0].score >= user[2]):
                if contact[0].ref not in invitees.contacts:
                    invitees.contacts.append(contact[0].ref)
                invitees.links.add(contact[0].ref)
            elif user is not None:
                if user[0] not in [uid for uid, _ in invitees.users]:
                    invitees.users.append((user[0], user[1]))
            else:
                ref = best_match(uow, ("account", "deal", "lead"), phrase)
                if ref is None:
                    raise Ask(f"I can't find a contact, colleague or account called “{phrase}” that you can see.")
                invitees.links.add(ref)
        if invitees.names or invitees.links.refs:
            implied(uow, invitees.links)
            return invitees, focus_events(invitees.links, turn, self.name())
        invitees.links = in_focus(uow, turn)
        if not invitees.links.refs:
            raise Ask(
                "Who is the meeting with? Say it in one go, e.g. “book a meeting with Dana Smith next Tuesday at 3pm”."
            )
        if "contact" in invitees.links.refs:
            invitees.contacts.append(invitees.links.refs["contact"])
        return invitees, focus_events(invitees.links, turn, self.name())


@writer
class BookMeeting(Writer):
    kind = "book_meeting"

    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        start, end = dt.datetime.fromisoformat(args["start"]), dt.datetime.fromisoformat(args["end"])
        user_ids = [int(u) for u in args.get("user_ids") or []]
        everyone = [uow.require_actor().user_id, *user_ids]
        if start <= dt.datetime.now(dt.UTC) or any(calendar.conflicts(uow, uid, start, end) for uid in everyone):
            raise Conflict("That slot is no longer free.")
        attendees = [{"contact_id": int(c)} for c in args.get("contact_ids") or []]
        attendees += [{"user_id": uid} for uid in user_ids]
        link_ids = {k: int(v) for k, v in dict(args.get("links") or {}).items() if k in LINK_FIELDS.values()}
        booking: CalendarBooking = records.create_record(
            uow,
            records.resource("calendar-bookings"),
            {
                "title": args["title"],
                "type": args["type"],
                "start_at": start,
                "end_at": end,
                "timezone": args["timezone"],
                "attendees": attendees,
                **link_ids,
            },
        )
        zone = ZoneInfo(args["timezone"])
        return f"Booked “{booking.title}” on {span_text(start, end, zone)}."

    def refresh(self, uow: UnitOfWork, args: dict[str, Any]) -> Pending | None:
        """The slot was taken (or has passed): propose the next free one."""
        zone = user_zone(uow)
        start = max(dt.datetime.fromisoformat(args["start"]), dt.datetime.now(dt.UTC))
        everyone = [uow.require_actor().user_id, *(int(u) for u in args.get("user_ids") or [])]
        slots = free(uow, everyone, int(args["minutes"]), start, start + SLOT_SEARCH, limit=1)
        if not slots:
            return None
        fresh = {**args, "start": slots[0][0].astimezone(dt.UTC).isoformat()}
        fresh["end"] = slots[0][1].astimezone(dt.UTC).isoformat()
        return Pending(
            self.kind, fresh, booking_summary(fresh, zone, instead=True), note="That slot has just been taken."
        )
