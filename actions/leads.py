"""Lead skills: lead lists with filters said in plain words, and why a lead (or deal) scores what it does."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from actions import resolve
from actions.base import CrmAction, Turn
from actions.deals import period_in
from actions.replies import ActionResult, Reply, day
from crm_backend.models.automation import EntityScore
from crm_backend.models.leads import Lead, LeadSource, LeadStatus
from crm_backend.scoring.rules import DEFAULT_THRESHOLDS
from crm_backend.services import deals, leads
from crm_backend.services.leads import LeadQuery
from crm_backend.store import UnitOfWork

MAX_LISTED = 8
HOT = DEFAULT_THRESHOLDS["hot"]
WARM = DEFAULT_THRESHOLDS["warm"]
TOP_REASONS = 3

# Status words, checked in this order ("unqualified" before "qualified").
STATUS_WORDS: tuple[tuple[re.Pattern[str], tuple[LeadStatus, ...], str], ...] = (
    (
        re.compile(r"\b(?:unqualified|not\s+(?:yet\s+)?qualified|non-?qualified)\b", re.I),
        (LeadStatus.NEW, LeadStatus.CONTACTED),
        "unqualified",
    ),
    (re.compile(r"\bqualified\b", re.I), (LeadStatus.QUALIFIED,), "qualified"),
    (re.compile(r"\bcontacted\b", re.I), (LeadStatus.CONTACTED,), "contacted"),
    (re.compile(r"\bconverted\b", re.I), (LeadStatus.CONVERTED,), "converted"),
    (re.compile(r"\blost\b", re.I), (LeadStatus.LOST,), "lost"),
    (re.compile(r"\bnew\b", re.I), (LeadStatus.NEW,), "new"),
)
GRADE_WORDS = (
    (re.compile(r"\b(?:hot|hottest)\b", re.I), "hot"),
    (re.compile(r"\bwarm\b", re.I), "warm"),
    (re.compile(r"\bcold\b", re.I), "cold"),
)
ALL_WORDS = re.compile(r"\ball\s+(?:my\s+|the\s+)?leads\b|\bevery\s+lead\b", re.I)


def grade_of(score: int) -> str:
    return "hot" if score >= HOT else "warm" if score >= WARM else "cold"


def _midnight(d: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(d, time(0), tzinfo=zone)


def lead_filters(text: str, source: str | None, now: datetime, zone: ZoneInfo) -> tuple[LeadQuery, list[str], str]:
    """The query for a lead list said in words, what to call the leads ("hot new") and the filter words
    ("from Website", "created this week"). "new" is the status New unless a creation date is given:
    "new leads this week" means the ones added this week."""
    values: dict[str, Any] = {}
    said: list[str] = []
    period, _ = period_in(text, now, zone)
    if period is not None:
        values["created_from"] = _midnight(period.start, zone) if period.start else None
        values["created_before"] = _midnight(period.end, zone) if period.end else None
        said.append(f"created {period.words}")
    adjectives: list[str] = []
    for pattern, statuses, word in STATUS_WORDS:
        if pattern.search(text) and not (word == "new" and period is not None):
            values["statuses"] = statuses
            adjectives.append(word)
            break
    else:
        if ALL_WORDS.search(text):
            values["statuses"] = ()
        else:
            adjectives.append("open")
    for pattern, grade in GRADE_WORDS:
        if pattern.search(text):
            if grade == "hot":
                values["min_score"] = HOT
            elif grade == "warm":
                values["min_score"], values["max_score"] = WARM, HOT - 1
            else:
                values["max_score"] = WARM - 1
            adjectives.insert(0, grade)
            break
    if source:
        try:
            values["source"] = LeadSource(source)
            said.insert(0, f"from {values['source'].value}")
        except ValueError:
            pass  # a source the CRM does not know: not a filter
    return LeadQuery.model_validate(values), said, " ".join(adjectives)


def lead_line(n: int, lead: Lead, zone: ZoneInfo, owner: str | None) -> str:
    company = f" ({lead.company})" if lead.company else ""
    added = day(lead.created_at.astimezone(zone).date()) if lead.created_at else ""
    whose = f", {owner}'s" if owner else ""
    return (
        f"{n}. {resolve.lead_name(lead)}{company}: score {lead.score} ({grade_of(lead.score)}), "
        f"{lead.status.value}, {lead.source.value}, added {added}{whose}"
    )


class ActionListLeads(CrmAction):
    """'My leads' / 'new leads from the website this week' / 'any hot leads' / 'unqualified leads'."""

    def name(self) -> str:
        return "action_list_leads"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        actor = uow.require_actor()
        zone = turn.zone(uow)
        query, said, kind = lead_filters(turn.text, turn.entity("lead_source"), turn.now, zone)
        items, total = leads.find_leads(uow, query, limit=MAX_LISTED)
        noun = "lead" if total == 1 else "leads"
        described = " ".join(p for p in (kind, noun, *said) if p)
        if not items:
            return ActionResult([Reply(f"No {described} that you can see right now.")])
        others = {lead.owner_id for lead in items} - {actor.user_id}
        names = {p.id: p.full_name for p in deals.deal_owners(uow)} if others else {}
        lines = [f"{total} {described}, best score first:"]
        lines += [
            lead_line(n, lead, zone, names.get(lead.owner_id) if lead.owner_id != actor.user_id else None)
            for n, lead in enumerate(items, start=1)
        ]
        if total > len(items):
            lines.append(f"…and {total - len(items)} more.")
        events = []
        if total == 1:  # "how hot is it?" next
            events = resolve.remember(resolve.describe(uow, "lead", items)[0], turn, self.name())
        return ActionResult([Reply("\n".join(lines))], events)


# --- lead_score -----------------------------------------------------------------------------------------
_REASON = re.compile(r"^(?P<field>\S+)\s+(?P<op>\S+)\s.*:\s+yes\s+\(is\s+(?P<actual>.*)\)$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _plain_value(raw: str) -> str:
    value = raw.strip().strip("'\"")
    if _ISO.match(value):
        try:
            return day(datetime.fromisoformat(value).date())
        except ValueError:
            return value
    return value


def reason_words(reason: str) -> str | None:
    """ "source in ['Referral', …]: yes (is 'Referral')" → "source: Referral"."""
    m = _REASON.match(reason.strip())
    if not m:
        return None
    field = m["field"].replace("account.", "account ").replace("_", " ")
    return f"{field}: {_plain_value(m['actual'])}"


def _points(value: Any) -> str:
    number = float(value or 0)
    return f"{number:+.0f}" if number.is_integer() else f"{number:+.1f}"


def top_reasons(explanation: dict[str, Any], limit: int = TOP_REASONS) -> list[str]:
    """The rules that moved the score most, in plain words: "+25 Warm source (source: Referral)"."""
    fired = [r for r in explanation.get("rules") or [] if isinstance(r, dict)]
    fired.sort(key=lambda r: -abs(float(r.get("points") or 0)))
    out = []
    for rule in fired[:limit]:
        details = [w for w in (reason_words(str(x)) for x in rule.get("reasons") or []) if w]
        extra = f" ({', '.join(details)})" if details else ""
        out.append(f"{_points(rule.get('points'))} {rule.get('name')}{extra}")
    return out


def score_phrase(row: EntityScore) -> str:
    """'25/100 (cold, was 55)'."""
    notes = [p for p in (row.grade, f"was {row.previous_score}" if row.previous_score not in (None, row.score) else "")]
    said = ", ".join(p for p in notes if p)
    return f"{row.score}/100" + (f" ({said})" if said else "")


def why_lines(row: EntityScore, goal: str) -> list[str]:
    """The top reasons, one line each, and the model's view."""
    reasons = top_reasons(row.explanation or {})
    lines = ["Why:", *(f"{n}. {r}" for n, r in enumerate(reasons, start=1))] if reasons else []
    if not reasons:
        lines.append("No scoring rule adds or takes points for it.")
    model = (row.explanation or {}).get("model")
    probability = row.model_probability
    if probability is None and isinstance(model, dict):
        probability = model.get("probability")
    if probability is not None:
        blend = " (the score blends it with the rules)" if reasons else ""
        lines.append(f"The model gives it a {float(probability):.0%} chance to {goal}{blend}.")
    return lines


class ActionLeadScore(CrmAction):
    """'How hot is the Nimbus lead and why' / 'score for Tom Baker' / 'win probability on the Acme deal'."""

    def name(self) -> str:
        return "action_lead_score"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        found = resolve.target(uow, turn, ("lead", "deal"), self.name())
        if found.ref.kind == "deal":
            deal, row = deals.deal_score(uow, found.ref.id)
            head = f"{deal.name}: win probability {deal.probability}% ({deal.stage.value} stage)"
            if row is None:
                return ActionResult([Reply(f"{head}. It has no score yet.")], found.events)
            lines = [f"{head}; score {score_phrase(row)}.", *why_lines(row, "close as won")]
            return ActionResult([Reply("\n".join(lines))], found.events)
        lead, row = leads.lead_score(uow, found.ref.id)
        who = f"{resolve.lead_name(lead)} ({', '.join(p for p in (lead.company, lead.status.value) if p)})"
        if row is None:
            hint = f" Its recorded score is {lead.score}." if lead.score else ""
            rescore = f"Say “rescore {resolve.lead_name(lead)}” to score it now."
            return ActionResult([Reply(f"{who} hasn't been scored yet.{hint} {rescore}")], found.events)
        lines = [f"{who} scores {score_phrase(row)}.", *why_lines(row, "convert")]
        return ActionResult([Reply("\n".join(lines))], found.events)
