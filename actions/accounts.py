"""Account skills: the 360° overview, who our contacts are, and sales signals with account health."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from actions import resolve
from actions.base import CrmAction, Turn
from actions.replies import ActionResult, Reply, day, moment, money
from crm_backend.models.contacts import Contact
from crm_backend.models.feeds import SalesSignal
from crm_backend.services import accounts, records
from crm_backend.services.accounts import AccountHealth
from crm_backend.store import UnitOfWork

SHOWN = 5  # items per section of an overview
MAX_LISTED = 8  # lines of a list reply
AT_RISK = 0.6  # churn risk from which an account counts as at risk (health about 46 or lower)


def _more(items: Sequence[str], total: int, limit: int = SHOWN) -> str:
    shown = "; ".join(items[:limit])
    return f"{shown}; and {total - limit} more" if total > limit else shown


def risk_word(churn_risk: float) -> str:
    if churn_risk >= AT_RISK:
        return "high"
    return "medium" if churn_risk >= 0.3 else "low"


def health_text(h: AccountHealth, factors: int = 3) -> str:
    """'Health 35/100, high churn risk (82%): No activity recorded (−25); 1 open support ticket… (−5).'"""
    head = f"Health {h.score}/100, {risk_word(h.churn_risk)} churn risk ({h.churn_risk:.0%})"
    drivers = [d for d in h.drivers if int(d.get("effect") or 0)][:factors]
    if not drivers:
        return head + "."
    said = "; ".join(f"{d.get('text')} ({int(d['effect']):+d})" for d in drivers)
    return f"{head}: {said}."


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _activity(a: dict[str, Any], zone: ZoneInfo, now: datetime) -> str:
    """'Call “Discovery call”, done Tue 24 Nov, 10:00' / 'Task “Send the proposal”, due Fri 27 Nov, 17:00'."""
    what = f"{a.get('type')} “{a.get('subject')}”"
    done = _iso(a.get("completed_at")) if a.get("status") == "Completed" else None
    due, starts = _iso(a.get("due_at")), _iso(a.get("start_at"))
    if a.get("status") == "Completed":
        at = done or starts or due
        return f"{what}, done {moment(at, zone, now)}" if at else f"{what}, done"
    if starts:
        return f"{what}, {moment(starts, zone, now)}"
    return f"{what}, due {moment(due, zone, now)}" if due else what


class ActionAccountOverview(CrmAction):
    """'Tell me about Acme' / 'rundown on Globex' / 'and the account?' (the focus deal's account)."""

    def name(self) -> str:
        return "action_account_overview"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        found = resolve.target(uow, turn, ("account",), self.name())
        data = accounts.summary(uow, found.ref.id, recent=3)
        account = data["account"]
        zone = turn.zone(uow)
        about = ", ".join(str(p) for p in (account.get("industry"), account.get("type")) if p)
        lines = [f"{account['name']}" + (f" ({about})" if about else "") + "."]
        lines.append(health_text(accounts.account_health(uow, found.ref.id, turn.now)))
        contacts = [
            f"{c['first_name']} {c['last_name']}".strip() + (f" ({c['job_title']})" if c.get("job_title") else "")
            for c in data["contacts"]
        ]
        lines.append(f"Contacts: {_more(contacts, len(contacts))}." if contacts else "Contacts: none yet.")
        open_deals = data["open_deals"]
        if open_deals:
            pipeline = " + ".join(money(Decimal(p["amount"]), p["currency"]) for p in data["open_pipeline"])
            listed = [f"{d['name']} ({d['stage']}, {money(Decimal(d['amount']), d['currency'])})" for d in open_deals]
            lines.append(f"Open deals ({len(open_deals)}, {pipeline}): {_more(listed, len(listed))}.")
        else:
            lines.append("Open deals: none.")
        recent = [_activity(a, zone, turn.now) for a in data["recent_activities"]]
        lines.append(f"Latest activities: {'; '.join(recent)}." if recent else "No activities yet.")
        tickets = [f"“{t['subject']}”" for t in data["open_tickets"]]
        lines.append(
            f"Open tickets ({len(tickets)}): {_more(tickets, len(tickets))}." if tickets else "No open tickets."
        )
        return ActionResult([Reply("\n".join(lines))], found.events)


# --- find_contact ---------------------------------------------------------------------------------------
PHONE_WORDS = re.compile(r"\b(?:phone|number|mobile|cell|call|ring|dial)\b", re.IGNORECASE)
EMAIL_WORDS = re.compile(r"\b(?:e-?mail|mail|address)\b", re.IGNORECASE)
PLURAL_WORDS = re.compile(r"\b(?:contacts|people|who|anyone|someone|colleagues)\b", re.IGNORECASE)


def contact_name(c: Contact) -> str:
    return f"{c.first_name} {c.last_name}".strip()


def contact_line(c: Contact) -> str:
    """'Dana Smith, VP Operations (Decision Maker) · dana@… · +1 555…'."""
    role = f"({c.role.value})" if c.role else ""
    title = " ".join(p for p in (c.job_title or "", role) if p)
    parts = [contact_name(c) + (f", {title}" if title else "")]
    parts += [p for p in (c.email, c.phone, c.mobile) if p]
    return " · ".join(parts)


def _preferences(c: Contact) -> str:
    said = [w for w, off in (("calls", c.call_opt_out), ("emails", c.email_opt_out)) if off]
    return f" Prefers no {' or '.join(said)}." if said else ""


def contact_text(c: Contact, account: str | None, text: str) -> str:
    who = contact_name(c)
    at = f" at {account}" if account else ""
    role = c.role.value if c.role else None
    title = " — " + ", ".join(p for p in (c.job_title, role) if p) if (c.job_title or role) else ""
    phones = [p for p in (c.phone, c.mobile) if p]
    if PHONE_WORDS.search(text) and not EMAIL_WORDS.search(text):
        first = f"{who}'s phone: {' / '.join(phones)}." if phones else f"I have no phone number for {who}."
        rest = f" Email: {c.email}." if c.email else ""
        return f"{first}{rest}{_preferences(c)}"
    if EMAIL_WORDS.search(text) and not PHONE_WORDS.search(text):
        first = f"{who}'s email: {c.email}." if c.email else f"I have no email address for {who}."
        rest = f" Phone: {' / '.join(phones)}." if phones else ""
        return f"{first}{rest}{_preferences(c)}"
    lines = [f"{who}{at}{title}."]
    lines.append(f"Email: {c.email or 'none on file'}. Phone: {' / '.join(phones) or 'none on file'}.")
    return "\n".join(lines) + _preferences(c)


KINDS = ("contact", "account")


def _contact_or_account(uow: UnitOfWork, turn: Turn) -> tuple[str, ...]:
    """Which kind the names said point at: a contact when a person is named (or a contact fits best)."""
    names = resolve.names_in(turn)
    if not names:
        return ("account", "contact")
    best = {k: max((m.score for n in names for m in resolve.find(uow, (k,), n)[:1]), default=0.0) for k in KINDS}
    person_said = bool(turn.spacy("PERSON"))
    if best["contact"] >= resolve.MATCH and (person_said or best["contact"] >= best["account"]):
        return ("contact",)
    if best["account"] >= resolve.MATCH:
        return ("account",)
    return ("contact", "account")


class ActionFindContact(CrmAction):
    """'Who is our contact at Globex' / "Dana Smith's phone" / 'and its contacts?' (the focus account)."""

    def name(self) -> str:
        return "action_find_contact"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        kinds = _contact_or_account(uow, turn)
        found = resolve.target(uow, turn, kinds, self.name())
        ref = found.ref
        if ref.kind == "contact":
            obj: Contact = records.get_record(uow, records.resource("contacts"), ref.id)
            if not (PLURAL_WORDS.search(turn.text) and not resolve.names_in(turn) and obj.account_id):
                account = resolve.load(uow, f"account:{obj.account_id}") if obj.account_id else None
                text = contact_text(obj, account[0].label if account else None, turn.text)
                return ActionResult([Reply(text)], found.events)
            ref = resolve.Ref("account", obj.account_id, "")  # "and its contacts?" about a contact: its account
        account_obj, people = accounts.contacts_of(uow, ref.id)
        if not people:
            text = f"I have no contacts at {account_obj.name} that you can see."
        elif len(people) == 1:
            text = f"Our contact at {account_obj.name}: {contact_line(people[0])}.{_preferences(people[0])}"
        else:
            lines = [f"{len(people)} contacts at {account_obj.name}:"]
            lines += [f"{n}. {contact_line(c)}" for n, c in enumerate(people[:MAX_LISTED], start=1)]
            if len(people) > MAX_LISTED:
                lines.append(f"…and {len(people) - MAX_LISTED} more.")
            text = "\n".join(lines)
        events = found.events
        if len(people) == 1:  # "what's her email?" next: the one contact becomes the focus
            events = resolve.remember(resolve.describe(uow, "contact", people)[0], turn, self.name())
        return ActionResult([Reply(text)], events)


# --- list_signals ---------------------------------------------------------------------------------------
FOCUS_WORDS = re.compile(r"\b(?:it|its|this\s+account|that\s+account|this\s+one|them|they|their)\b", re.IGNORECASE)


def signal_line(n: int, s: SalesSignal, account: str | None, zone: ZoneInfo) -> str:
    where = f" [{account}]" if account and account.lower() not in s.title.lower() else ""
    when = day(s.created_at.astimezone(zone).date()) if s.created_at else ""
    return f"{n}. {s.title}{where} ({s.category.value.lower()}, {s.confidence:.0%} sure, {when})"


class ActionListSignals(CrmAction):
    """'Any signals on my accounts' / 'which accounts are at risk' / 'account health for Acme'."""

    def name(self) -> str:
        return "action_list_signals"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        zone = turn.zone(uow)
        found = None
        if resolve.names_in(turn) or FOCUS_WORDS.search(turn.text):
            found = resolve.target(uow, turn, ("account",), self.name(), required=False)
        if found is not None:
            h = accounts.account_health(uow, found.ref.id, turn.now)
            signals, names, total = accounts.recent_signals(uow, found.ref.id, limit=MAX_LISTED)
            lines = [f"{h.name}: {health_text(h)}"]
            if signals:
                lines.append(f"Signals ({total}, newest first):")
                lines += [signal_line(n, s, None, zone) for n, s in enumerate(signals, start=1)]
                if total > len(signals):
                    lines.append(f"…and {total - len(signals)} more.")
            else:
                lines.append("No sales signals on it.")
            return ActionResult([Reply("\n".join(lines))], found.events)
        signals, names, total = accounts.recent_signals(uow, None, limit=MAX_LISTED)
        risky, risky_total = accounts.at_risk_accounts(uow, AT_RISK, limit=SHOWN)
        lines = []
        if signals:
            lines.append(f"{total} sales signal{'s' if total != 1 else ''} on your accounts (newest first):")
            lines += [signal_line(n, s, names.get(s.account_id or 0), zone) for n, s in enumerate(signals, start=1)]
            if total > len(signals):
                lines.append(f"…and {total - len(signals)} more.")
        else:
            lines.append("No sales signals on your accounts right now.")
        if risky:
            listed = [f"{a.name} (health {a.health_score}, churn risk {a.churn_risk or 0:.0%})" for a in risky]
            noun = "account" if risky_total == 1 else "accounts"
            lines.append(f"{risky_total} {noun} at risk: {_more(listed, risky_total)}.")
        else:
            lines.append("No accounts at high risk of churning.")
        return ActionResult([Reply("\n".join(lines))])
