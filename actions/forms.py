"""Creating records and qualifying leads with Rasa forms: ask for what is missing, check each
answer as it comes, read the whole record back, write on yes.

- `action_start_form` runs on the request ("add a new lead Jane Doe from Contoso"): it clears the
  form's old answers and fills what the request already says (names, email, phone, amount, date).
- `validate_<form>` checks each answer (an email or phone, an amount, a date that is not in the
  past, an account the user can see) and asks again with a reason when one is not usable.
- `action_submit_form` reads the record back — or, when it looks like an existing record, names
  that record and asks whether to create a new one anyway — and leaves the write to the writers
  below (actions/confirm.py), so a form is also confirmed, audited and undoable.

"stop"/"cancel" inside a form leaves it without writing (rules in nlu_data/rules.yml).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from email_validator import EmailNotValidError, validate_email
from rasa_sdk.events import SlotSet

from actions import resolve
from actions.base import Ask, CrmAction, Turn
from actions.confirm import Pending, Writer, ask, writer
from actions.parsing import extract_amount_and_when, parse_amount, parse_when
from actions.replies import ActionResult, Reply, day, money, sentence_for
from crm_backend.errors import CrmError
from crm_backend.models.leads import Lead, LeadStatus
from crm_backend.services import deals, leads, records
from crm_backend.services.matching import normal_phone, split_name
from crm_backend.store import UnitOfWork

FORM_KIND = "form_kind"
FORM_RECORD = "form_record"
SKIPPED = "-"  # an optional answer the user skipped
SKIP_WORDS = re.compile(r"^\s*(skip|none|no|nope|n/?a|don'?t know|dont know|no idea|not sure|pass|-)\s*[.!]*\s*$", re.I)
EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+?\d[\d ()./-]{5,}\d")
YES = re.compile(r"\b(yes|yep|yeah|yup|sure|correct|they do|he does|she does|does|definitely|absolutely|y)\b", re.I)
NO = re.compile(r"\b(no|nope|nah|not|don'?t|doesn'?t|isn'?t|n)\b", re.I)
ANSWER_PREFIX = re.compile(
    r"^\s*(?:(?:um+|uh+|so|ok(?:ay)?|well)[, ]+)*(?:(?:it'?s|it is|that'?s|that is|they'?re|the name is|name is|"
    r"his name is|her name is|call it|called)\s+)?",
    re.I,
)


@dataclass(frozen=True)
class FormSpec:
    form: str
    slots: tuple[str, ...]


FORMS: dict[str, FormSpec] = {
    "create_lead": FormSpec("lead_form", ("lead_name", "lead_company", "lead_email")),
    "create_contact": FormSpec("contact_form", ("contact_name", "contact_account", "contact_email")),
    "create_account": FormSpec("account_form", ("account_name", "account_industry")),
    "create_deal": FormSpec("deal_form", ("deal_account", "deal_amount", "deal_close_date", "deal_name")),
    "qualify_lead": FormSpec("bant_form", ("bant_budget", "bant_authority", "bant_need", "bant_timeline")),
}
BY_FORM = {spec.form: kind for kind, spec in FORMS.items()}
NOUNS = {"leads": "lead", "contacts": "contact", "accounts": "account", "deals": "deal"}


def answer(text: str) -> str:
    """A form answer without fillers and lead-ins ("um it's Contoso" → "Contoso")."""
    return ANSWER_PREFIX.sub("", text or "").strip().strip(".!").strip()


NOT_A_NAME = frozenset(
    ["yes", "yep", "yeah", "sure", "ok", "okay", "no", "nope", "nah", "skip", "stop", "cancel", "help", "none", "idk"]
)


def person_name(text: str) -> str | None:
    """A person's name as given ("dana smith" → "Dana Smith"); None if it cannot be one."""
    value = answer(text)
    if not value or len(value) > 120 or not re.fullmatch(r"[^\W\d_][\w .'’-]*", value):
        return None
    if value.lower() in NOT_A_NAME:
        return None
    return value.title() if value == value.lower() else value


def email_or_phone(text: str) -> tuple[str | None, str | None] | None:
    """(email, phone) from an answer, None when it is neither."""
    found = EMAIL.search(text or "")
    if found:
        try:
            return validate_email(found.group(0), check_deliverability=False).normalized, None
        except EmailNotValidError:
            return None
    phone = PHONE.search(text or "")
    if phone and normal_phone(phone.group(0)):
        return None, phone.group(0).strip()
    return None


def _account_choice(uow: UnitOfWork, text: str) -> tuple[str | None, str | None]:
    """(account key, problem) for an answer naming an account the user can see."""
    name = answer(text)
    matches = resolve.find(uow, ("account",), name) if name else []
    if not matches:
        return None, f"I can't find an account called “{name}” that you can see. Which account is it? (or say “stop”)"
    top = matches[0]
    close = [m for m in matches if m.score >= top.score - resolve.CLEAR_LEAD]
    if len(close) > 1:
        names = ", ".join(m.ref.label for m in close[:4])
        return None, f"Several accounts match “{name}”: {names}. Which one? (say its full name)"
    return top.ref.key, None


# --- starting ----------------------------------------------------------------------------------------
COMPANY_WORDS = re.compile(
    r"\b(inc|ltd|llc|plc|corp|corporation|co|company|gmbh|ag|group|labs?|systems|solutions|analytics|foods|"
    r"logistics|retail|health|software|technologies|tech|media|partners|holdings|industries|bank|pharma)\b",
    re.I,
)


def said_in_order(turn: Turn) -> list[tuple[str, str]]:
    """(name, label) of every name in the request, in the order said: DIET's `record` ("record"), then
    spaCy's PERSON/ORG where they do not overlap one of those."""
    found: list[tuple[int, int, str, str]] = []
    for e in turn.entities:
        label = e.get("entity")
        if label not in ("record", "PERSON", "ORG") or not e.get("value"):
            continue
        start, end = int(e.get("start", -1)), int(e.get("end", -1))
        if label != "record" and any(s < end and start < f_end for s, f_end, _, lab in found if lab == "record"):
            continue
        found.append((start, end, str(e["value"]), str(label)))
    found.sort(key=lambda f: (f[0], f[3] != "record"))
    out: list[tuple[str, str]] = []
    for _start, _end, value, label in found:
        if value not in [v for v, _ in out]:
            out.append((value, label))
    return out


def person_and_company(names: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """ "lead Jane Doe from Contoso": the first name said is the person, the next the company — unless the
    labels or the words ("Analytics", "Inc") say otherwise."""

    def companyish(name: str, label: str) -> bool:
        return label == "ORG" or bool(COMPANY_WORDS.search(name))

    if not names:
        return None, None
    if len(names) == 1:
        name, label = names[0]
        return (None, name) if companyish(name, label) else (name, None)
    (first, first_label), (second, second_label) = names[0], names[1]
    if companyish(first, first_label) and not companyish(second, second_label):
        return second, first
    return first, second


class ActionStartForm(CrmAction):
    """Clear the form's old answers and take what the request itself already says."""

    def name(self) -> str:
        return "action_start_form"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        kind = turn.intent or ""
        spec = FORMS.get(kind)
        if spec is None:
            return ActionResult([], [])
        values: dict[str, Any] = dict.fromkeys(spec.slots)
        record: str | None = None
        try:
            if kind == "qualify_lead":
                record = self._lead_to_qualify(uow, turn)
            else:
                values.update(self._prefill(uow, turn, kind))
        except Ask as question:
            # The request can't go ahead (no such lead): fill the form with "skipped" answers so it
            # closes at once, and let submit see there is nothing to do.
            done = [SlotSet(slot, SKIPPED) for slot in spec.slots]
            return ActionResult(question.result.replies, [*done, SlotSet(FORM_KIND, None), SlotSet(FORM_RECORD, None)])
        events: list[Any] = [SlotSet(slot, value) for slot, value in values.items()]
        return ActionResult([], [*events, SlotSet(FORM_KIND, kind), SlotSet(FORM_RECORD, record)])

    @staticmethod
    def _lead_to_qualify(uow: UnitOfWork, turn: Turn) -> str:
        found = resolve.target(uow, turn, ("lead",), "action_start_form")
        lead: Lead = records.get_record(uow, records.resource("leads"), found.ref.id)
        if lead.status in (LeadStatus.CONVERTED, LeadStatus.LOST):
            raise Ask(f"{found.ref.label} is {lead.status.value.lower()}, so there is nothing to qualify.")
        return found.ref.key

    @staticmethod
    def _prefill(uow: UnitOfWork, turn: Turn, kind: str) -> dict[str, Any]:
        reach = email_or_phone(turn.text)
        contact = (reach[0] or reach[1]) if reach else None
        names = said_in_order(turn)
        out: dict[str, Any] = {}
        if kind in ("create_lead", "create_contact"):
            prefix = "lead" if kind == "create_lead" else "contact"
            person, company = person_and_company(names)
            if person and person_name(person):
                out[f"{prefix}_name"] = person_name(person)
            if company:
                out["lead_company" if kind == "create_lead" else "contact_account"] = company
            if contact:
                out[f"{prefix}_email"] = contact
        elif kind == "create_account":
            if names:
                out["account_name"] = names[0][0]
        elif kind == "create_deal":
            company = names[0][0] if names else None
            if company:
                out["deal_account"] = company
            found = extract_amount_and_when(turn.text, now=turn.now, tz=turn.zone(uow).key)
            if found.money:
                out["deal_amount"] = f"{found.money.amount} {found.money.currency}"
            if found.when:
                out["deal_close_date"] = found.when.text
        return out


# --- validating ----------------------------------------------------------------------------------------
# Read skills whose action is `action_<intent>`: a question for one of them in the middle of a form is
# answered there and then (if it reads like a question), instead of being taken as the answer.
SIDE_QUESTIONS = frozenset(
    [
        "list_open_deals",
        "deal_status",
        "account_overview",
        "find_contact",
        "list_leads",
        "my_day",
        "forecast",
        "forecast_accuracy",
        "lead_score",
        "list_signals",
        "whats_new",
        "convert_currency",
    ]
)
QUESTION = re.compile(
    r"\?\s*$|^\s*(?:what|what's|whats|who|who's|how|how's|when|where|which|show|list|tell|any|pull up|give me)\b",
    re.I,
)
SIDE_QUESTION_CONFIDENCE = 0.6


def is_side_question(turn: Turn) -> bool:
    """A confident read request that also looks like a question — not an answer that merely sounds
    like one ("this quarter" for a timeline, "£40,000" for an amount)."""
    return (
        turn.intent in SIDE_QUESTIONS
        and turn.confidence >= SIDE_QUESTION_CONFIDENCE
        and bool(QUESTION.search(turn.text))
    )


def answer_side_question(uow: UnitOfWork, turn: Turn) -> ActionResult:
    action = CrmAction.named(f"action_{turn.intent}")
    if action is None:
        return ActionResult([])
    try:
        with uow.session.begin_nested():
            return action.perform(uow, turn)
    except Ask as question:
        return question.result
    except CrmError as error:
        return ActionResult([Reply(sentence_for(error))])


class FormValidation(CrmAction):
    """validate_<form>: check the answers given this turn; a bad one is cleared with a reason."""

    form: str = ""

    def name(self) -> str:
        return f"validate_{self.form}"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        if turn.slot(FORM_KIND) is None:
            return ActionResult([], [])  # the start failed; the skipped answers close the form
        given = turn.tracker.slots_to_validate()
        if is_side_question(turn):
            # "what's on today?" while the form asks for an email: answer it, keep asking.
            answer_ = answer_side_question(uow, turn)
            cleared = [SlotSet(slot, None) for slot in given if slot in FORMS[BY_FORM[self.form]].slots]
            return ActionResult(answer_.replies, [*cleared, *answer_.events])
        events: list[Any] = []
        replies: list[Reply] = []
        for slot, raw in given.items():
            if slot not in FORMS[BY_FORM[self.form]].slots or raw is None:
                continue
            value, problem = self.check(uow, turn, slot, str(raw))
            events.append(SlotSet(slot, value))
            if problem:
                replies.append(Reply(problem))
        return ActionResult(replies, events)

    def check(self, uow: UnitOfWork, turn: Turn, slot: str, raw: str) -> tuple[str | None, str | None]:
        """(value to keep or None, why it was refused)."""
        if raw == SKIPPED:
            return SKIPPED, None
        if slot.endswith("_name") and slot not in ("account_name", "deal_name"):
            name = person_name(raw)
            return (name, None) if name else (None, "That doesn't look like a person's name. What's their name?")
        if slot.endswith("_email"):
            if SKIP_WORDS.match(raw):
                return SKIPPED, None
            found = email_or_phone(raw)
            if not found:
                return None, "That isn't an email address or a phone number I can use. Try again, or say “skip”."
            return found[0] or found[1], None
        if slot in ("contact_account", "deal_account"):
            return _account_choice(uow, raw)
        if slot in ("lead_company", "account_name"):
            value = answer(raw)
            if not value or value.lower() in NOT_A_NAME:
                return None, "What's the company's name?"
            return value[:200], None
        if slot == "account_industry":
            value = answer(raw)
            return (SKIPPED if SKIP_WORDS.match(raw) or not value else value[:100]), None
        if slot == "deal_amount":
            amount = parse_amount(raw)
            if amount is None:
                return None, "I need an amount like “50k”, “$120,000” or “18.500 €”. How much is it worth?"
            return f"{amount.amount} {amount.currency}", None
        if slot == "deal_close_date":
            when = parse_when(raw, now=turn.now, tz=turn.zone(uow).key)
            if when is None:
                return None, "I didn't catch a date. When should it close? (e.g. “end of March”, “in six weeks”)"
            closes = when.start.date()
            if closes < turn.now.astimezone(turn.zone(uow)).date():
                return None, f"{day(closes)} is in the past. When do you expect it to close?"
            return closes.isoformat(), None
        if slot == "deal_name":
            value = answer(raw)
            return (SKIPPED if SKIP_WORDS.match(raw) or not value else value[:200]), None
        if slot == "bant_budget":
            amount = parse_amount(raw)
            if amount is not None:
                return f"{amount.amount}", None
            if NO.search(raw) or SKIP_WORDS.match(raw):
                return "0", None
            return None, "Roughly how much budget do they have? (e.g. “about 40k”, or “no budget”)"
        if slot == "bant_authority":
            if YES.search(raw) and not NO.search(raw):
                return "yes", None
            if NO.search(raw):
                return "no", None
            return None, "Are you talking to the person who signs? Please answer yes or no."
        if slot in ("bant_need", "bant_timeline"):
            value = raw.strip()
            limit = 1000 if slot == "bant_need" else 100
            return (value[:limit], None) if value else (None, "Could you say a few words about that?")
        return raw, None


class ValidateLeadForm(FormValidation):
    form = "lead_form"


class ValidateContactForm(FormValidation):
    form = "contact_form"


class ValidateAccountForm(FormValidation):
    form = "account_form"


class ValidateDealForm(FormValidation):
    form = "deal_form"


class ValidateBantForm(FormValidation):
    form = "bant_form"


# --- reading back -------------------------------------------------------------------------------------
def _given(value: object) -> str | None:
    return None if value in (None, SKIPPED, "") else str(value)


def _reach(value: str | None) -> dict[str, str]:
    if value is None:
        return {}
    return {"email": value} if "@" in value else {"phone": value}


def _duplicate_note(candidates: list[dict[str, Any]], noun: str) -> str:
    first = candidates[0]
    detail = ", ".join(str(first[k]) for k in ("company", "email", "reason") if first.get(k))
    more = f" (and {len(candidates) - 1} more)" if len(candidates) > 1 else ""
    return f"That looks like an existing {noun}: {first.get('name')} ({detail}){more}. "


def _creation(uow: UnitOfWork, collection: str, data: dict[str, Any], label: str | None, summary: str) -> Pending:
    """The read-back of a new record — or, when it looks like an existing one, that record named
    and the question whether to create a new one anyway (a twin is never created silently)."""
    noun = NOUNS[collection]
    twins = records.duplicates_of(uow, records.resource(collection), data)
    if twins:
        summary = _duplicate_note(twins, noun) + f"Create a new {noun} anyway"
    return Pending("create_record", {"collection": collection, "data": data, "label": label}, summary)


class ActionSubmitForm(CrmAction):
    """Read the finished form back (or name the record it would duplicate) and wait for yes/no."""

    def name(self) -> str:
        return "action_submit_form"

    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        kind = turn.slot(FORM_KIND)
        spec = FORMS.get(kind or "")
        if spec is None:
            return ActionResult([], [SlotSet(FORM_KIND, None)])
        answers = {slot: _given(turn.slot(slot)) for slot in spec.slots}
        pending = getattr(self, f"_{kind}")(uow, turn, answers)
        clear = [SlotSet(slot, None) for slot in spec.slots] + [SlotSet(FORM_KIND, None)]
        return ask(pending, clear)

    @staticmethod
    def _create_lead(uow: UnitOfWork, turn: Turn, a: dict[str, str | None]) -> Pending:
        first, last = split_name(a["lead_name"] or "")
        data = {"first_name": first, "last_name": last, "company": a["lead_company"], **_reach(a["lead_email"])}
        reach = f", {a['lead_email']}" if a["lead_email"] else ""
        return _creation(
            uow, "leads", data, a["lead_name"], f"Create lead {a['lead_name']} ({a['lead_company']}{reach})"
        )

    @staticmethod
    def _create_contact(uow: UnitOfWork, turn: Turn, a: dict[str, str | None]) -> Pending:
        loaded = resolve.load(uow, a["contact_account"])
        if loaded is None:
            raise Ask("I can't find that account any more, so I didn't create the contact.")
        first, last = split_name(a["contact_name"] or "")
        data = {"first_name": first or "", "last_name": last, "account_id": loaded[0].id, **_reach(a["contact_email"])}
        reach = f", {a['contact_email']}" if a["contact_email"] else ""
        summary = f"Create contact {a['contact_name']} at {loaded[0].label}{reach}"
        return _creation(uow, "contacts", data, a["contact_name"], summary)

    @staticmethod
    def _create_account(uow: UnitOfWork, turn: Turn, a: dict[str, str | None]) -> Pending:
        data = {"name": a["account_name"], **({"industry": a["account_industry"]} if a["account_industry"] else {})}
        industry = f" ({a['account_industry']})" if a["account_industry"] else ""
        return _creation(uow, "accounts", data, a["account_name"], f"Create account {a['account_name']}{industry}")

    @staticmethod
    def _create_deal(uow: UnitOfWork, turn: Turn, a: dict[str, str | None]) -> Pending:
        loaded = resolve.load(uow, a["deal_account"])
        if loaded is None:
            raise Ask("I can't find that account any more, so I didn't create the deal.")
        amount, currency = (a["deal_amount"] or "0 USD").split()
        name = a["deal_name"] or f"{loaded[0].label} - New deal"
        data = {
            "name": name,
            "account_id": loaded[0].id,
            "amount": amount,
            "currency": currency,
            "expected_close_date": a["deal_close_date"],
            "stage": "Prospecting",
        }
        closes = date.fromisoformat(a["deal_close_date"]) if a["deal_close_date"] else None
        summary = (
            f"Create deal “{name}” with {loaded[0].label}: {money(Decimal(amount), currency)}, "
            f"closing {day(closes)}, stage Prospecting"
        )
        return _creation(uow, "deals", data, name, summary)

    @staticmethod
    def _qualify_lead(uow: UnitOfWork, turn: Turn, a: dict[str, str | None]) -> Pending:
        loaded = resolve.load(uow, turn.slot(FORM_RECORD))
        if loaded is None:
            raise Ask("I can't find that lead any more, so I didn't qualify it.")
        ref, lead = loaded
        budget = Decimal(a["bant_budget"] or "0")
        answers = {
            "budget": str(budget),
            "has_authority": a["bant_authority"] == "yes",
            "need": a["bant_need"],
            "timeline": a["bant_timeline"],
        }
        budget_text = money(budget, "USD") if budget else "none"
        summary = (
            f"Save the qualification of {ref.label}: budget {budget_text}, "
            f"{'talking to the decision maker' if answers['has_authority'] else 'not the decision maker'}, "
            f"need “{a['bant_need']}”, timeline “{a['bant_timeline']}”"
        )
        return Pending("qualify_lead", {"lead_id": ref.id, "version": lead.version, "answers": answers}, summary)


# --- writing ------------------------------------------------------------------------------------------


@writer
class CreateRecord(Writer):
    """A lead, contact, account or deal from a confirmed form (duplicates were shown before the yes)."""

    kind = "create_record"

    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        collection = str(args["collection"])
        if collection not in NOUNS:
            raise ValueError(f"not a form collection: {collection}")
        data = dict(args["data"])
        if collection == "deals":
            deals.create_deal(uow, data)
        else:
            records.create_record(uow, records.resource(collection), data, allow_duplicate=True)
        return f"Created {NOUNS[collection]} {args.get('label')}."


@writer
class QualifyLead(Writer):
    kind = "qualify_lead"

    def apply(self, uow: UnitOfWork, args: dict[str, Any]) -> str:
        lead = leads.qualify(uow, int(args["lead_id"]), {**args["answers"], "version": int(args["version"])})
        name = resolve.lead_name(lead)
        return f"Saved the qualification of {name}; the lead is now {lead.status.value}."

    def refresh(self, uow: UnitOfWork, args: dict[str, Any]) -> Pending | None:
        lead: Lead = records.get_record(uow, records.resource("leads"), int(args["lead_id"]))
        name = resolve.lead_name(lead)
        return Pending(self.kind, {**args, "version": lead.version}, f"Save the qualification of {name} anyway")
