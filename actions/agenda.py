"""The rep's own time: "what's on today" (activities, bookings, reminders, what is overdue) and
"what's new" (their feed and notifications) — read-only, in the user's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from actions.base import CrmAction, Turn
from actions.parsing import parse_when
from actions.replies import ActionResult, Reply
from crm_backend.models.activities import ActivityType
from crm_backend.services import agenda, feeds
from crm_backend.services.agenda import AgendaEntry
from crm_backend.services.feeds import NewsItem
from crm_backend.store import UnitOfWork

MAX_LISTED = 8  # per section of a chat reply; the rest is counted
UPCOMING_DAYS = 7  # "what's coming up" without a date
REMINDERS_AHEAD_DAYS = 365  # "my reminders" without a date: every pending one from today on

OVERDUE = re.compile(r"\b(?:overdue|past\s+due|late|missed|behind)\b", re.IGNORECASE)
REMINDERS = re.compile(r"\bremind", re.IGNORECASE)
BARE_PERIOD = re.compile(r"\b(?P<unit>weekend|week|month)\b", re.IGNORECASE)
UPCOMING = re.compile(r"\b(?:upcoming|coming\s+up|next|soon|ahead)\b", re.IGNORECASE)
# Booking types count as the activity type a rep would call them.
BOOKING_AS = {"Meeting": "Meeting", "Demo": "Meeting", "Presentation": "Meeting", "Call": "Call"}
ACTIVITY_TYPES = {t.value.lower(): t.value for t in ActivityType}
PLURALS = {"Call": "calls", "Meeting": "meetings", "Email": "emails", "Note": "notes", "Task": "tasks"}
LOUD_PRIORITIES = {"Urgent": "urgent", "High": "high priority"}


def short_day(d: date, today: date | None = None) -> str:
    """`Tue 1 Dec` (with the year when it is not this year's)."""
    text = f"{d:%a} {d.day} {d:%b}"
    return text if today is None or d.year == today.year else f"{text} {d.year}"


def moment(at: datetime, zone: ZoneInfo, day: date | None = None) -> str:
    """`15:00` on `day` (the one day being listed), else `Tue 1 Dec 15:00` — in the user's zone."""
    local = at.astimezone(zone)
    if day is not None and local.date() == day:
        return f"{local:%H:%M}"
    return f"{short_day(local.date(), day)} {local:%H:%M}"


def ago(at: datetime, now: datetime, zone: ZoneInfo) -> str:
    """`just now`, `5 min ago`, `2 h ago`, `yesterday`, `3 days ago`, `on 12 Nov`."""
    seconds = (now - at).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = (now.astimezone(zone).date() - at.astimezone(zone).date()).days
    if days <= 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    local = at.astimezone(zone).date()
    return f"on {local.day} {local:%b}" + ("" if local.year == now.astimezone(zone).year else f" {local.year}")


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


@dataclass(frozen=True)
class Window:
    """The stretch of time asked about: [start, end) and how to name it."""

    start: datetime
    end: datetime
    label: str  # "today (Thu 26 Nov)", "Mon 30 Nov – Sun 6 Dec", "the next 7 days"
    day: date | None  # set when the window is one calendar day: times are then shown as 15:00
    asked: bool  # the user named a date or range


def window_for(text: str, now: datetime, zone: ZoneInfo) -> Window:
    """The day or range in `text` ("tomorrow", "this week", "next Monday"); today by default, the next
    seven days for "upcoming"."""
    today = now.astimezone(zone).date()
    when = parse_when(text, now=now, tz=zone.key)
    if when is None and (period := BARE_PERIOD.search(text)):  # "my week", "what's on this wk"
        when = parse_when(f"this {period['unit']}", now=now, tz=zone.key)
    if when is not None and when.end is not None:
        first, last = when.start.astimezone(zone).date(), (when.end - timedelta(microseconds=1)).astimezone(zone).date()
        if first == last:
            return _day_window(first, today, zone, asked=True)
        return Window(when.start, when.end, f"{short_day(first, today)} – {short_day(last, today)}", None, True)
    if when is not None:
        return _day_window(when.start.astimezone(zone).date(), today, zone, asked=True)
    if UPCOMING.search(text):
        return Window(now, now + timedelta(days=UPCOMING_DAYS), f"the next {UPCOMING_DAYS} days", None, False)
    return _day_window(today, today, zone, asked=False)


def _day_window(day: date, today: date, zone: ZoneInfo, *, asked: bool) -> Window:
    names = {0: "today", 1: "tomorrow", -1: "yesterday"}
    name = names.get((day - today).days)
    label = f"{name} ({short_day(day, today)})" if name else short_day(day, today)
    return Window(_midnight(day, zone), _midnight(day + timedelta(days=1), zone), label, day, asked)


def _kind_of(entry: AgendaEntry) -> str:
    return BOOKING_AS.get(entry.type, entry.type) if entry.kind == "booking" else entry.type


def _what(entry: AgendaEntry) -> str:
    """`Call Dana about the renewal scope (Nimbus Labs)`, prefixed by its type unless the title says it."""
    title = entry.title
    if not title.lower().startswith(entry.type.lower()) and entry.kind != "reminder":
        title = f"{entry.type}: {title}"
    if entry.account and entry.account.lower() not in entry.title.lower():
        title += f" ({entry.account})"
    loud = LOUD_PRIORITIES.get(entry.priority or "")
    return f"{title} — {loud}" if loud else title


def _scheduled_line(entry: AgendaEntry, zone: ZoneInfo, day: date | None) -> str:
    when = moment(entry.at, zone, day)
    if entry.due:
        when = f"due {when}"
    elif entry.end is not None and entry.end.astimezone(zone).date() == entry.at.astimezone(zone).date():
        when += f"–{entry.end.astimezone(zone):%H:%M}"
    return f"{when} {_what(entry)}"


def _overdue_line(entry: AgendaEntry, zone: ZoneInfo, today: date) -> str:
    return f"{_what(entry)}, due {short_day(entry.at.astimezone(zone).date(), today)}"


def numbered(lines: list[str], more: str = "more") -> list[str]:
    """`1. …` lines, at most MAX_LISTED, then `…and N more`."""
    out = [f"{n}. {line}" for n, line in enumerate(lines[:MAX_LISTED], start=1)]
    if len(lines) > MAX_LISTED:
        out.append(f"…and {len(lines) - MAX_LISTED} {more}.")
    return out


def _things(types: set[str]) -> str:
    """What the user asked for, in words: "meetings", "calls or tasks", or everything."""
    if not types:
        return "calls, meetings or tasks"
    return " or ".join(PLURALS.get(t, t.lower() + "s") for t in sorted(types))


class ActionMyDay(CrmAction):
    """'What's on today' / 'my week' / 'overdue tasks' / 'upcoming meetings' / 'my reminders'."""

    def name(self) -> str:
        return "action_my_day"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        zone = turn.zone(uow)
        now = turn.now
        today = now.astimezone(zone).date()
        text = turn.text
        types = {ACTIVITY_TYPES.get(v.lower(), v) for v in turn.entity_values("activity_type")}
        window = window_for(text, now, zone)
        only_overdue = bool(OVERDUE.search(text))
        only_reminders = bool(REMINDERS.search(text)) and not types and not only_overdue
        if only_overdue:
            return ActionResult([Reply(self._overdue_reply(uow, zone, today, types))])
        if only_reminders:
            return ActionResult([Reply(self._reminders_reply(uow, zone, now, window))])

        scheduled = [e for e in agenda.scheduled(uow, window.start, window.end) if not types or _kind_of(e) in types]
        reminders = [] if types else agenda.pending_reminders(uow, window.start, window.end)
        includes_today = window.start <= now < window.end
        late = (
            [e for e in agenda.overdue(uow, _midnight(today, zone)) if not types or e.type in types]
            if includes_today
            else []
        )
        if late:  # listed once, as overdue, when a range reaches back before today
            scheduled = [e for e in scheduled if not (e.due and e.at < _midnight(today, zone))]
        lines: list[str] = []
        if scheduled:
            lines.append(f"Your {_things(types) if types else 'agenda'} {self._for(window)}:")
            lines += numbered([_scheduled_line(e, zone, window.day) for e in scheduled])
        elif reminders or late:
            lines.append(f"No {_things(types)} {self._for(window)}.")
        if reminders:
            lines.append("Reminders:")
            lines += numbered([f"{moment(r.at, zone, window.day)} {r.title}" for r in reminders])
        if late:
            lines.append(f"Overdue ({len(late)}):")
            lines += numbered([_overdue_line(e, zone, today) for e in late])
        if not lines:
            overdue_note = ", and nothing overdue" if includes_today else ""
            lines.append(f"Nothing on your agenda {self._for(window)}{overdue_note}. Enjoy the breathing room!")
            if types:
                lines[-1] = f"No {_things(types)} on your agenda {self._for(window)}{overdue_note}."
        return ActionResult([Reply("\n".join(lines))])

    @staticmethod
    def _for(window: Window) -> str:
        return window.label if window.day is not None else f"for {window.label}"

    @staticmethod
    def _overdue_reply(uow: UnitOfWork, zone: ZoneInfo, today: date, types: set[str]) -> str:
        late = [e for e in agenda.overdue(uow, _midnight(today, zone)) if not types or e.type in types]
        if not late:
            what = f"No overdue {_things(types)}" if types else "Nothing overdue"
            return f"{what} — you're all caught up."
        noun = "item" if len(late) == 1 else "items"
        return "\n".join(
            [f"You have {len(late)} overdue {noun}:", *numbered([_overdue_line(e, zone, today) for e in late])]
        )

    @staticmethod
    def _reminders_reply(uow: UnitOfWork, zone: ZoneInfo, now: datetime, window: Window) -> str:
        if window.asked:
            pending = agenda.pending_reminders(uow, window.start, window.end)
            empty, header = (
                f"You have no pending reminders {ActionMyDay._for(window)}.",
                f"Your reminders {ActionMyDay._for(window)}:",
            )
        else:
            start = _midnight(now.astimezone(zone).date(), zone)
            pending = agenda.pending_reminders(uow, start, start + timedelta(days=REMINDERS_AHEAD_DAYS))
            empty, header = "You have no pending reminders.", "Your pending reminders:"
        if not pending:
            return empty
        day = window.day if window.asked else None
        return "\n".join([header, *numbered([f"{moment(r.at, zone, day)} {r.title}" for r in pending])])


def _news_line(item: NewsItem, now: datetime, zone: ZoneInfo) -> str:
    text = item.title
    if item.body and item.body.strip() and item.body.strip() not in item.title:
        body = " ".join(item.body.split())
        text += f": {body[:117]}…" if len(body) > 120 else f": {body}"
    flag = " (important)" if item.important else ""
    return f"{text}{flag} — {ago(item.at, now, zone)}"


def since_when(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The start of "since Monday" / "today" / "this week"; a weekday means the last one, not the next."""
    when = parse_when(text, now=now, tz=zone.key)
    if when is None:
        return None
    if when.start > now and when.end is None and when.start - now <= timedelta(days=7):
        return when.start - timedelta(days=7)  # "since Monday" said on a Thursday: this week's Monday
    return when.start if when.start <= now else None


class ActionWhatsNew(CrmAction):
    """'What's new' / 'what did I miss' / 'notifications since Monday': the newest entries of the
    user's own feed and notifications."""

    def name(self) -> str:
        return "action_whats_new"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        zone = turn.zone(uow)
        now = turn.now
        since = since_when(turn.text, now, zone)
        news = feeds.latest(uow, since=since, limit=MAX_LISTED)
        since_text = f" since {short_day(since.astimezone(zone).date(), now.astimezone(zone).date())}" if since else ""
        if not news.items:
            return ActionResult([Reply(f"Nothing new{since_text}. You're up to date.")])
        unread = f" ({news.unread} unread)" if news.unread else ""
        lines = [f"What's new{since_text}{unread}:"]
        lines += [f"{n}. {_news_line(item, now, zone)}" for n, item in enumerate(news.items, start=1)]
        if news.total > len(news.items):
            lines.append(f"…and {news.total - len(news.items)} older.")
        return ActionResult([Reply("\n".join(lines))])
