"""Reading a prospect's answers: what a message says about their need, timeline, budget, who decides,
their name, company and how to reach them — for the question just asked and for the ones not asked yet
("we have about 20k and need it before March" answers budget and timeline at once).

Values are kept as the form's slot strings: budget "20000 USD", authority "yes" / "no" / "shared",
contact "email" or "phone" or "email, phone"; SKIPPED ("-") for a question the prospect passed on.
Pure functions (no I/O): the form's validation action (actions/prospects.py) calls them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from email_validator import EmailNotValidError, validate_email

from actions.forms import NOT_A_NAME, answer, person_name
from actions.parsing import Money, parse_amount, parse_when, stated_amount
from actions.replies import money
from crm_backend.services.matching import normal_phone
from crm_backend.services.prospects import (
    ANSWER_SLOTS,
    AUTHORITY,
    BUDGET,
    COMPANY,
    CONFIRM,
    CONTACT,
    NAME,
    NEED,
    SKIPPED,
    SLOTS,
    TIMELINE,
    split_contact,
)
from crm_backend.services.prospects import answers_from_form as to_answers

__all__ = [
    "ANSWER_SLOTS",
    "AUTHORITY",
    "BUDGET",
    "COMPANY",
    "CONFIRM",
    "CONTACT",
    "CORRECTING",
    "NAME",
    "NEED",
    "PERSON_WANTED",
    "SKIPPED",
    "SLOTS",
    "TIMELINE",
    "check",
    "company_after_name",
    "split_contact",
    "summary",
    "to_answers",
    "volunteered",
]

LABELS = {
    NEED: "need",
    TIMELINE: "timeline",
    BUDGET: "budget",
    AUTHORITY: "decision",
    NAME: "name",
    COMPANY: "company",
    CONTACT: "contact",
}

SKIP = re.compile(
    r"^\s*(?:(?:um+|uh+|hmm+|well|honestly|tbh)[, ]+)*"
    r"(?:skip(?: (?:it|that|this)(?: one)?)?|pass|next|n/?a|none|nope|no|"
    r"(?:i )?(?:don'?t|dont|do not) know(?: yet)?|dunno(?: yet)?|idk|no idea|not sure(?: yet)?|unsure|"
    r"(?:i'?d )?rather not(?: say)?|prefer not to say|not telling|can'?t say|no comment|-)"
    r"(?:[, ]+(?:for now|right now|at the moment|yet|thanks|sorry))?\s*[.!]*\s*$",
    re.I,
)
NO_BUDGET = re.compile(
    r"\b(no budget|not? (?:set|fixed|allocated)|haven'?t (?:got|set) (?:a|one)|tbd|to be decided|depends)\b", re.I
)
EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
AT_SIGN = re.compile(r"\S+@\S*")
PHONE = re.compile(r"(?<![\w.])\+?\d[\d ()./-]{5,}\d(?![\w.])")
_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_PERIODS = (
    rf"(?:{_MONTHS})\b|q[1-4]\b|(?:the )?(?:quarter|month|year|week|summer|spring|autumn|fall|winter|holidays)\b|"
    r"(?:\d+|a|one|two|three|four|five|six|nine|twelve|a few|a couple(?: of)?|couple of)\s+"
    r"(?:weeks?|months?|days?|quarters?)\b|"
    r"\d{4}\b|(?:end|start|beginning|middle) of (?:the )?(?:year|month|quarter|" + _MONTHS + r")\b"
)
TIMELINE_SAID = re.compile(
    r"\b(asap|a\.s\.a\.p\.?|as soon as possible|right away|straight away|immediately|urgently|yesterday|"
    r"no rush|no hurry|not urgent|whenever|"
    rf"(?:before|by|in|within|until|around|for|early|mid|late|next|this|over the next|in the next|end of|start of)"
    rf"[ -](?:the )?(?:{_PERIODS}))",
    re.I,
)
YES = re.compile(
    r"^\s*(?:y|yes|yep|yeah|yup|sure|correct|right|exactly|that'?s (?:right|correct|it)|i do|i am|me)\b", re.I
)
NO = re.compile(r"^\s*(?:n|no|nope|nah|not me|not really)\b", re.I)
AUTHORITY_YES = re.compile(
    r"\b(myself|that'?d be me|that'?s me|it'?s me|(?:the )?(?:final )?(?:call|decision|say) is mine|"
    r"i make the (?:final )?(?:call|decision)|"
    r"i(?:'m| am) (?:the )?(?:decision[- ]?maker|one who (?:decides|signs)|(?:the )?(?:owner|founder|ceo|buyer))|"
    r"i (?:decide|sign(?: off)?|approve|make (?:the|that) (?:call|decision)|own the budget|"
    r"have (?:the )?(?:final )?say)|"
    r"(?:it'?s|its|that'?s) (?:my|our) (?:call|decision)|my (?:call|decision)|up to me)\b",
    re.I,
)
AUTHORITY_NO = re.compile(
    r"\b(not (?:me|my call|my decision|up to me)|(?:check|talk|speak) (?:with|to) (?:my|our)|run it (?:by|past)|"
    r"(?:need|have) to (?:ask|get (?:approval|sign[- ]?off))|"
    r"(?:my|our|the) (?:boss|manager|cfo|ceo|coo|cto|cio|director|vp|head of \w+|board|founder|owner|"
    r"procurement|finance team|leadership)\b[^.]{0,30}\b(?:decides?|signs?|approves?|makes? the (?:call|decision)|"
    r"has the (?:final )?say|(?:needs?|has) to (?:approve|sign|agree)))",
    re.I,
)
SOMEONE_ELSE = re.compile(
    r"\b(boss|manager|cfo|ceo|coo|cto|cio|director|vp|board|founder|owner|procurement|finance|leadership|"
    r"someone else|somebody else|my team|partners?|head of \w+)\b",
    re.I,
)
SHARED = re.compile(
    r"\b(me and|and me|me plus|plus me|together with|jointly|both of us|with (?:my|our) \w+|with input from|"
    r"along with|committee|we decide)\b",
    re.I,
)
_WORD = r"[A-Z][a-zà-ÿ'’]+(?:-[A-Za-zà-ÿ'’]+)*"  # a capitalised name word, "Okonkwo-Bell", "O'Neill"
NAME_SAID = re.compile(
    r"\b(?i:my name is|my name'?s|name'?s|i am|i'?m|im|this is|call me)\s+"
    rf"(?P<name>{_WORD}(?:\s+{_WORD}){{0,2}})"
)
NAME_HERE = re.compile(rf"(?:^|[,.!]\s*)(?P<name>{_WORD}(?:\s+{_WORD}){{1,2}})\s+here\b")
NOT_NAMES = frozenset(
    [
        "looking",
        "interested",
        "here",
        "from",
        "with",
        "at",
        "just",
        "the",
        "a",
        "an",
        "curious",
        "new",
        "trying",
        "wondering",
        "hoping",
        "calling",
        "writing",
        "reaching",
        "sure",
        "fine",
        "ok",
        "okay",
        "good",
        "great",
        "not",
    ]
)
COMPANY_SAID = re.compile(
    r"\b(?P<cue>(?i:from|at|work(?:ing)? (?:at|for)|company is|company'?s|company called|i represent|on behalf of|"
    r"i run|we'?re|we are))\s+(?P<company>[A-Z][\w&.'’-]*(?:\s+(?:[A-Z][\w&.'’-]*|&))*)"
)
NOT_COMPANIES = re.compile(
    rf"^(?:{_MONTHS}|monday|tuesday|wednesday|thursday|friday|i|we|our|my|the|a|q[1-4]|ceo|cfo|coo|cto|cio|gm|vp|"
    r"md|hr|it|ops|head|director|manager|boss|board|owner|founder|gps?|us|uk|eu)\b",
    re.I,
)
NO_COMPANY = re.compile(r"\b(no company|just me|myself|freelanc\w*|self[- ]employed|individual|personal)\b", re.I)
NAME_PREFIX = re.compile(r"^\s*(?:(?:my name is|my name'?s|name'?s|i am|i'?m|im|this is|call me|it'?s)\s+)", re.I)
COMPANY_PREFIX = re.compile(
    r"^\s*(?:(?:i work (?:at|for)|we'?re|we are|from|at|with|the company is|company is|it'?s|its|called)\s+)", re.I
)


def _email(text: str) -> tuple[str | None, str | None]:
    """(normalised email, problem): a well-formed address, or what is wrong with the one written."""
    found = EMAIL.search(text)
    if found:
        try:
            return validate_email(found.group(0), check_deliverability=False).normalized, None
        except EmailNotValidError:
            pass
    written = AT_SIGN.search(text)
    if written:
        shown = written.group(0).strip(".,;!?")
        return None, f"“{shown}” doesn't look like a complete email address. Could you check it?"
    return None, None


def _phone(text: str) -> str | None:
    for m in PHONE.finditer(text):
        raw = m.group(0).strip()
        digits = re.sub(r"\D", "", raw)
        if normal_phone(raw) and 7 <= len(digits) <= 15 and stated_amount(raw) is None:
            return re.sub(r"\s{2,}", " ", raw)
    return None


def contact_of(text: str) -> tuple[str | None, str | None]:
    """(contact slot value, problem) from a message: an email and/or a phone number."""
    email, problem = _email(text)
    phone = _phone(EMAIL.sub(" ", text))
    if problem and not phone:
        return None, problem
    parts = [p for p in (email, phone) if p]
    return (", ".join(parts) if parts else None), None


def authority_of(text: str, *, asked: bool) -> str | None:
    """ "yes" (they decide), "shared" (with others), "no" (someone else decides), None (not said)."""
    own = bool(AUTHORITY_YES.search(text))
    others = bool(SHARED.search(text) or SOMEONE_ELSE.search(text))
    if own:
        return "shared" if others else "yes"
    if AUTHORITY_NO.search(text):
        return "no"
    if SHARED.search(text) and re.search(r"\b(me|i|myself)\b", text, re.I):
        return "shared"
    if asked:
        if NO.search(text):
            return "no"
        if YES.search(text):
            return "shared" if others else "yes"
        if SOMEONE_ELSE.search(text):  # "my boss", "our CFO"
            return "no"
    return None


WEAK_TIMELINE = re.compile(r"^(?:this|for|around)\b", re.I)


def timeline_of(text: str, *, asked: bool = True) -> str | None:
    """The timeline phrase in `text`; unasked, only one that cannot be about something else ("this week"
    in "we got extra approved this week" is not when they want to start)."""
    for found in TIMELINE_SAID.finditer(text):
        phrase = found.group(1).strip()
        if asked or not WEAK_TIMELINE.match(phrase):
            return phrase[:100]
    return None


def _clean_name(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip(" ,.;:!?")


def volunteered(text: str) -> dict[str, str]:
    """Every answer a message gives without being asked, from clear cues only (an amount that is money, a
    date phrase, "I'm Priya from Lumen Dental", an email): {slot: value}. Names and companies come only
    from explicit phrases — never from a guess at which words are a name."""
    out: dict[str, str] = {}
    amount = stated_amount(text)
    if amount is not None:
        out[BUDGET] = f"{amount.amount} {amount.currency}"
    when = timeline_of(text, asked=False)
    if when:
        out[TIMELINE] = when
    decides = authority_of(text, asked=False)
    if decides:
        out[AUTHORITY] = decides
    contact, _problem = contact_of(text)
    if contact:
        out[CONTACT] = contact
    named = NAME_SAID.search(text) or NAME_HERE.search(text)
    if named and named.group("name").split()[0].lower() not in NOT_NAMES:
        out[NAME] = _clean_name(named.group("name"))
    for company in COMPANY_SAID.finditer(text):
        value = _company(company.group("company"))
        weak = company.group("cue").lower() == "from" and NAME not in out and len(value.split()) < 2
        if value and not NOT_COMPANIES.match(value) and not weak:
            out[COMPANY] = value
            break
    return out


def _company(raw: str) -> str:
    """A company name as said, up to the end of its sentence ("Brisa Hotels. We want…" → "Brisa Hotels")."""
    words: list[str] = []
    for word in raw.split():
        words.append(word)
        if word.endswith(".") and not re.fullmatch(r"(?:[A-Z]\.)+|(?:Inc|Ltd|Co|Corp|Bros|St)\.", word):
            break
    return _clean_name(" ".join(words))[:200]


NEED_CUES = re.compile(
    r"\b(to (?:track|manage|replace|move|get|help|organi[sz]e|automate|keep|follow)|"
    r"moving (?:off|from|away)|replace|switch(?:ing)? from|struggl|spreadsheets?|excel|"
    r"(?:our|my) (?:sales|support|reps|agents|pipeline|customers|clients|leads)|"
    r"(?:need|want|looking for) (?:a|an|something|one place|(?:to|help) (?:track|manage|organi[sz]e|replace)))",
    re.I,
)


PERSON_WANTED = re.compile(
    r"\b((?:real|actual|live)\s+(?:person|human|agent|people|sales ?person)|human being|"
    r"(?:talk|speak|chat)\s+(?:to|with)\s+(?:a |an |some)?(?:one|body|person|human|agent|rep\b|sales)|"
    r"(?:get|connect|put)\s+me\s+(?:to|with|through)|is (?:any|some)one (?:there|available)|anyone available)",
    re.I,
)
CORRECTING = re.compile(
    r"\b(actually|sorry|correction|i meant|should be|not\b.{1,30}\bbut|typo|wrong|my name is|company is)\b", re.I
)


def company_after_name(text: str) -> str | None:
    """The company in a "Name, Company" answer to the name question."""
    parts = [p.strip() for p in re.split(r"[,;]", text)]
    if len(parts) < 2 or person_name(parts[0]) is None:
        return None
    candidate = _company(parts[1])
    if not candidate or EMAIL.search(candidate) or re.search(r"\d", candidate) or not candidate[0].isupper():
        return None
    return None if NOT_COMPANIES.match(candidate) else candidate


def need_in_request(text: str) -> str | None:
    """The need a prospect states while asking for a demo ("we're a 40 person agency moving off
    spreadsheets, could someone show us around"), or None for a bare ask ("demo please")."""
    if len(text.split()) < 6 or not NEED_CUES.search(text):
        return None
    # Keep the sentences that say what they need; drop greetings and the ask itself ("could we get a demo?").
    parts = [
        p.strip() for p in re.split(r"(?<=[.?!;])\s+|,\s+(?=(?:could|can|would|is it possible)\b)", text) if p.strip()
    ]
    kept = [GREETING.sub("", p).strip() for p in parts if not DEMO_ASK.search(p) or NEED_CUES.search(p)]
    need = " ".join(k for k in kept if k) or text.strip()
    return need[:1000]


GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening))(?: there)?(?:[,!.]?\s+|[,!.]?$))+", re.I
)
DEMO_ASK = re.compile(
    r"\b(demo|show (?:us|me)|walk (?:us|me) through|quote|pricing|trial|talk to sales|contact (?:us|me)|"
    r"get in touch)\b",
    re.I,
)


BARE_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(k|grand|thousand)?\b", re.I)


def _bare_amount(text: str) -> Money | None:
    """A number given as the budget without anything saying it is money ("maybe 200 a month", "15 thousand")."""
    found = BARE_NUMBER.search(text)
    if not found:
        return None
    value = Decimal(found.group(1).replace(",", ""))
    if found.group(2):
        value *= 1000
    return Money(value, "USD")


def check(slot: str, text: str, now: dt.datetime) -> tuple[str | None, str | None]:
    """(value, problem) for `text` as the answer to the question for `slot`."""
    raw = (text or "").strip()
    if slot != CONTACT and SKIP.match(raw):
        return SKIPPED, None
    if slot == NEED:
        value = answer(raw)
        if len(value) < 3 or value.lower() in NOT_A_NAME:
            return None, "Could you tell me in a few words what you'd like to use it for? (or say “skip”)"
        return value[:1000], None
    if slot == TIMELINE:
        whole = answer(raw)
        when = timeline_of(raw) or (parsed.text if (parsed := parse_when(raw, now=now, tz="UTC")) else None)
        if when:  # the whole answer when it is short ("no rush, maybe summer"), else the phrase
            return (whole if len(whole) <= 60 else when)[:100], None
        value = answer(raw)
        if len(value) < 2 or value.lower() in NOT_A_NAME:
            return None, "Roughly when would you like to be up and running — “next month”, “by Q3”, “no rush”?"
        return value[:100], None
    if slot == BUDGET:
        if NO_BUDGET.search(raw):
            return SKIPPED, None
        amount = parse_amount(raw) or _bare_amount(raw)
        if amount is None or amount.amount <= 0:
            return None, "Roughly how much — e.g. “about 20k a year” or “under 500 a month”? Or say “skip”."
        return f"{amount.amount} {amount.currency}", None
    if slot == AUTHORITY:
        decides = authority_of(raw, asked=True)
        if decides is None:
            return (
                None,
                "Will you make the decision yourself, or with someone else? (“me”, “me and our CFO”, “my boss”)",
            )
        return decides, None
    if slot in (NAME, COMPANY) and ("?" in raw or len(raw.split()) > 10):
        again = "What's your name?" if slot == NAME else "Which company are you with?"
        return None, f"Sorry, I didn't catch that. {again}"
    if slot == NAME:
        name = person_name(NAME_PREFIX.sub("", re.split(r"[,;(]", raw, maxsplit=1)[0]))
        if name is None:
            return None, "Sorry, I didn't catch your name. What should we call you?"
        return name, None
    if slot == COMPANY:
        if NO_COMPANY.search(raw):
            return SKIPPED, None
        value = answer(COMPANY_PREFIX.sub("", raw))
        if not value or value.lower() in NOT_A_NAME or not re.search(r"[^\W\d_]", value) or len(value) > 200:
            return None, "Which company are you with? (or say “skip”)"
        return value, None
    if slot == CONTACT:
        contact, problem = contact_of(raw)
        if contact:
            return contact, None
        if problem:
            return None, problem
        if SKIP.match(raw):
            return SKIPPED, None
        return None, "I need an email address or a phone number to pass on — or say “skip”."
    return raw, None


def shown(slot: str, value: str | None) -> str:
    """A slot value as the read-back shows it."""
    if value in (None, "", SKIPPED):
        return "—"
    assert value is not None  # noqa: S101 - narrowed above
    if slot == BUDGET:
        amount, currency = value.split()
        return money(Decimal(amount), currency)
    if slot == AUTHORITY:
        return {"yes": "you decide", "shared": "you decide with others", "no": "someone else decides"}[value]
    return value


def summary(slots: Mapping[str, Any]) -> str:
    order = (NAME, COMPANY, CONTACT, NEED, TIMELINE, BUDGET, AUTHORITY)
    return "\n".join(f"• {LABELS[s].capitalize()}: {shown(s, slots.get(s))}" for s in order)
