"""Which record does the user mean? Names said in chat → CRM records the user may see.

Names come from the message (DIET's `record` entity first, then spaCy's PERSON/ORG, then, when
neither found one, the message's own capitalised or unknown words), are matched fuzzily
(rapidfuzz: case, word order, company suffixes and a typo or two do not matter) against the
records *visible to the acting user only* (the same scope the API uses, so a record they may not
see is never suggested), and the outcome is one of:

- one clear match → it becomes the conversation's focus (`focus_record` slot);
- several close ones → "Which one do you mean?" with a button per record (answered with
  choose_record, which replays the request for the chosen one);
- none → "I can't find …", with an offer to create it where that makes sense.

Follow-ups without a name ("and its contacts?", "change it to Friday") use the focus record;
"no, the other one" (choose_other) moves to the next candidate of the last resolution.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process
from rasa_sdk.events import SlotSet
from sqlalchemy import func, or_, select

from actions.base import Ask, Turn
from actions.replies import money
from crm_backend.models.accounts import Account
from crm_backend.models.contacts import Contact
from crm_backend.models.deals import CLOSED_STAGES, Deal
from crm_backend.models.leads import Lead, LeadStatus
from crm_backend.services import records
from crm_backend.services.matching import normal_company
from crm_backend.store import UnitOfWork

KINDS = ("account", "contact", "lead", "deal")
NOUNS = {"account": "account", "contact": "contact", "lead": "lead", "deal": "deal"}
COLLECTIONS = {"account": "accounts", "contact": "contacts", "lead": "leads", "deal": "deals"}
FOCUS = "focus_record"
CANDIDATES = "candidates"
LAST_REQUEST = "last_request"

MATCH = 80.0  # a name scoring at least this is a match
CLEAR_LEAD = 8.0  # the best match wins outright when it leads the next by this much
PREFILTER_LIMIT = 400  # rows per kind fetched by the SQL prefilter before fuzzy scoring
MAX_CHOICES = 5

# Words that are never (part of) a record's name when we look for one in free text.
_STOPWORDS_TEXT = (
    "a about account accounts an and any are at be by can check company contact contacts could customer "
    "deal deals do does for from get give has have her his how i in info is it its let lead leads log me "
    "move my need note of on open opportunity please pull show status tell that the their them this to up "
    "us we what whats when where which who with would you your overview summary rundown details detail "
    "update updates latest news going doing story everything lowdown"
)
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


@dataclass(frozen=True, slots=True)
class Ref:
    """A record the conversation talks about: 'deal:12' in slots, a label and detail for people."""

    kind: str
    id: int
    label: str
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def button_title(self) -> str:
        return f"{self.label} ({self.detail})" if self.detail else self.label


@dataclass(frozen=True, slots=True)
class Match:
    ref: Ref
    score: float
    closed: bool = False  # a closed deal or converted/lost lead: preferred less on ties


@dataclass(slots=True)
class Target:
    """The record an action works on, with the slot events that remember it."""

    ref: Ref
    events: list[Any] = field(default_factory=list)


def parse_key(key: object) -> tuple[str, int] | None:
    if not isinstance(key, str) or ":" not in key:
        return None
    kind, _, raw = key.partition(":")
    return (kind, int(raw)) if kind in KINDS and raw.isdigit() else None


# --- describing records ---------------------------------------------------------------------------
def _account_names(uow: UnitOfWork, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return dict(uow.session.execute(select(Account.id, Account.name).where(Account.id.in_(wanted))).all())


def lead_name(lead: Lead) -> str:
    """'Tom Baker' (a lead's first name is optional)."""
    return f"{lead.first_name or ''} {lead.last_name}".strip()


def describe(uow: UnitOfWork, kind: str, objs: Sequence[Any]) -> list[Ref]:
    """Refs with a human label and a detail that tells same-named records apart."""
    if kind == "account":
        return [Ref(kind, a.id, a.name, a.industry or a.city or "") for a in objs]
    if kind == "contact":
        names = _account_names(uow, (c.account_id for c in objs))
        return [
            Ref(
                kind,
                c.id,
                f"{c.first_name} {c.last_name}".strip(),
                " at ".join(p for p in (c.job_title, names.get(c.account_id or 0)) if p),
            )
            for c in objs
        ]
    if kind == "lead":
        return [
            Ref(
                kind,
                lead.id,
                lead_name(lead),
                ", ".join(p for p in (lead.company, lead.status.value) if p),
            )
            for lead in objs
        ]
    names = _account_names(uow, (d.account_id for d in objs))
    return [
        Ref(kind, d.id, d.name, f"{names.get(d.account_id, '')} · {d.stage.value} · {money(d.amount, d.currency)}")
        for d in objs
    ]


def load(uow: UnitOfWork, key: object) -> tuple[Ref, Any] | None:
    """The record behind a 'kind:id' key if the acting user may still see it."""
    parsed = parse_key(key)
    if parsed is None:
        return None
    kind, record_id = parsed
    res = records.resource(COLLECTIONS[kind])
    obj = uow.session.scalar(records.scoped(res, uow.require_actor()).where(res.id_column == record_id))
    if obj is None:
        return None
    return describe(uow, kind, [obj])[0], obj


# --- matching ---------------------------------------------------------------------------------------
def _texts(kind: str, obj: Any, account_names: dict[int, str]) -> list[str]:
    """The strings a record can be called by."""
    if kind == "account":
        return [obj.name]
    if kind == "contact":
        return [f"{obj.first_name} {obj.last_name}", obj.last_name]
    if kind == "lead":
        return [t for t in (f"{obj.first_name or ''} {obj.last_name}".strip(), obj.company) if t]
    return [t for t in (obj.name, account_names.get(obj.account_id)) if t]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", default_process(text or ""))


def score(phrase: str, text: str) -> float:
    """How well `phrase` names `text` (0–100): every word said must match a word of the name — exactly,
    as its start ("corp" → "Corporation", "nim" → "Nimbus") or with a typo ("acmee") — so case, order,
    company suffixes and small slips do not matter, but "Lena Fischer" is not "Chloe Fischer"."""
    said = [w for w in _words(normal_company(phrase) or phrase) if w not in STOPWORDS] or _words(phrase)
    name = _words(text)
    if not said or not name:
        return 0.0
    worst = 100.0
    for word in said:
        best = max(fuzz.ratio(word, other) for other in name)
        if len(word) >= 3 and any(other.startswith(word) for other in name):
            best = 100.0
        worst = min(worst, best)
    return float(worst)


def _columns(kind: str) -> list[Any]:
    return {
        "account": [Account.name],
        "contact": [Contact.first_name, Contact.last_name],
        "lead": [Lead.first_name, Lead.last_name, Lead.company],
        "deal": [Deal.name],
    }[kind]


def _prefixes(phrase: str) -> list[str]:
    words = [w for w in re.findall(r"[a-z0-9]+", phrase.lower()) if w not in STOPWORDS]
    return sorted({w[:3] for w in words if len(w) >= 2})


def find(uow: UnitOfWork, kinds: Sequence[str], phrase: str, limit: int = MAX_CHOICES * 2) -> list[Match]:
    """Visible records of `kinds` that `phrase` names, best first."""
    prefixes = _prefixes(phrase)
    if not prefixes:
        return []
    actor = uow.require_actor()
    matches: list[Match] = []
    for kind in kinds:
        res = records.resource(COLLECTIONS[kind])
        columns = _columns(kind)
        clauses = [func.lower(col).like(f"%{p}%") for col in columns for p in prefixes]
        if kind == "deal":
            account_hit = select(Account.id).where(or_(*[func.lower(Account.name).like(f"%{p}%") for p in prefixes]))
            clauses.append(Deal.account_id.in_(account_hit))
        objs = uow.session.scalars(records.scoped(res, actor).where(or_(*clauses)).limit(PREFILTER_LIMIT)).all()
        names = _account_names(uow, (o.account_id for o in objs)) if kind == "deal" else {}
        scored = [(max(score(phrase, t) for t in _texts(kind, o, names)), o) for o in objs]
        kept = [(s, o) for s, o in scored if s >= MATCH]
        refs = describe(uow, kind, [o for _, o in kept])
        for (s, o), ref in zip(kept, refs, strict=True):
            closed = (kind == "deal" and o.stage in CLOSED_STAGES) or (
                kind == "lead" and o.status in (LeadStatus.CONVERTED, LeadStatus.LOST)
            )
            matches.append(Match(ref, s, closed))
    order = {kind: n for n, kind in enumerate(kinds)}  # on a tie, the kind the caller names first
    matches.sort(key=lambda m: (-m.score, m.closed, order[m.ref.kind], m.ref.label.lower(), m.ref.id))
    return matches[:limit]


def names_in(turn: Turn) -> list[str]:
    """The record names the user said: DIET's `record` entities, then spaCy PERSON/ORG not
    overlapping them, then (if neither) runs of words that are not common CRM vocabulary."""
    names = turn.entity_values("record")
    own_spans = [(e.get("start", -1), e.get("end", -1)) for e in turn.entities if e.get("entity") == "record"]
    for label in ("PERSON", "ORG"):
        for e in turn.spacy(label):
            start, end = e.get("start", -1), e.get("end", -1)
            if any(start < oe and os_ < end for os_, oe in own_spans):
                continue
            value = str(e.get("value") or "").strip()
            if value and value not in names and default_process(value) not in STOPWORDS:
                names.append(value)
    return names


def fallback_phrases(text: str) -> list[str]:
    """Runs of non-vocabulary words ("tell me about acme corp" → ["acme corp"]): the last resort."""
    runs: list[str] = []
    current: list[str] = []
    for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9&'.-]*", text):
        if word.lower().strip(".'") in STOPWORDS or (len(word) < 3 and not current):
            if current:
                runs.append(" ".join(current))
                current = []
            continue
        current.append(word)
    if current:
        runs.append(" ".join(current))
    return runs


# --- deciding ---------------------------------------------------------------------------------------
def _choice_question(noun: str, matches: Sequence[Match], turn: Turn, action: str, phrase: str) -> Ask:
    shown = list(matches[:MAX_CHOICES])
    buttons = [(m.ref.button_title, f'/choose_record{{"ordinal":"{n}"}}') for n, m in enumerate(shown, start=1)]
    exact = matches[0].score >= 100
    lines = [
        f"I found {len(matches)} {noun}s matching “{phrase}”. Which one do you mean?"
        if exact
        else f"I couldn't find “{phrase}” exactly. Did you mean one of these?"
    ]
    lines += [f"{n}. {m.ref.button_title}" for n, m in enumerate(shown, start=1)]
    return Ask(
        "\n".join(lines),
        buttons,
        [SlotSet(CANDIDATES, [m.ref.key for m in shown]), SlotSet(LAST_REQUEST, turn.request(action))],
    )


CREATE_INTENTS = {"account": "create_account", "contact": "create_contact", "lead": "create_lead"}


def not_found(kinds: Sequence[str], phrase: str) -> Ask:
    noun = " or ".join(NOUNS[k] for k in kinds[:2])
    creatable = [k for k in kinds if k in CREATE_INTENTS]
    buttons = [
        (f"Create {NOUNS[k]} “{phrase}”", f'/{CREATE_INTENTS[k]}{{"record":"{_payload_safe(phrase)}"}}')
        for k in creatable[:2]
    ]
    offer = " Shall I create it?" if buttons else ""
    return Ask(f"I can't find {article(noun)} {noun} called “{phrase}” that you can see.{offer}", buttons)


def _payload_safe(text: str) -> str:
    return re.sub(r'["{}\\]', "", text)[:80]


def article(word: str) -> str:
    """'a' or 'an' before `word` ("an account", "a call")."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def remember(ref: Ref, turn: Turn, action: str, candidates: Sequence[Ref] = ()) -> list[Any]:
    keys = [c.key for c in candidates] or [ref.key]
    if ref.key not in keys:
        keys.insert(0, ref.key)
    return [SlotSet(FOCUS, ref.key), SlotSet(CANDIDATES, keys), SlotSet(LAST_REQUEST, turn.request(action))]


def from_focus(uow: UnitOfWork, kinds: Sequence[str], focus: object) -> Ref | None:
    """The focus record as one of `kinds`: a deal's or contact's account, an account's only open deal."""
    loaded = load(uow, focus)
    if loaded is None:
        return None
    ref, obj = loaded
    if ref.kind in kinds:
        return ref
    if "account" in kinds and getattr(obj, "account_id", None):
        hit = load(uow, f"account:{obj.account_id}")
        if hit:
            return hit[0]
    if "account" in kinds and ref.kind == "lead" and obj.converted_account_id:
        hit = load(uow, f"account:{obj.converted_account_id}")
        if hit:
            return hit[0]
    if "deal" in kinds and ref.kind == "account":
        res = records.resource("deals")
        open_deals = uow.session.scalars(
            records.scoped(res, uow.require_actor())
            .where(Deal.account_id == ref.id, Deal.stage.not_in(CLOSED_STAGES))
            .limit(2)
        ).all()
        if len(open_deals) == 1:
            return describe(uow, "deal", open_deals)[0]
    return None


def target(uow: UnitOfWork, turn: Turn, kinds: Sequence[str], action: str, *, required: bool = True) -> Target | None:
    """The one record of `kinds` this turn is about, or an `Ask` (which one? not found?).

    With `required=False`, a turn that names nothing and has no usable focus gives None.
    """
    noun = NOUNS[kinds[0]]
    if turn.choosing:
        loaded = load(uow, turn.slot(FOCUS))
        if loaded and loaded[0].kind in kinds:
            return Target(loaded[0], [SlotSet(LAST_REQUEST, turn.request(action))])
    names = names_in(turn)
    if names:
        return _decide(uow, turn, kinds, action, names, noun)
    focused = from_focus(uow, kinds, turn.slot(FOCUS))
    if focused is not None:
        return Target(focused, remember(focused, turn, action))
    phrases = fallback_phrases(turn.text)
    if phrases:
        found = [(p, find(uow, kinds, p)) for p in phrases]
        found = [(p, m) for p, m in found if m and m[0].score >= 88]
        if found:
            return _decide(uow, turn, kinds, action, [p for p, _ in found], noun)
    if not required:
        return None
    raise Ask(f"Which {noun} do you mean? Tell me its name.")


def _decide(uow: UnitOfWork, turn: Turn, kinds: Sequence[str], action: str, names: list[str], noun: str) -> Target:
    best_phrase, best = names[0], []
    for phrase in names:
        matches = find(uow, kinds, phrase)
        # The best-scoring name wins; on a tie the longer one ("titan spring media" over "media").
        if matches and (not best or (matches[0].score, len(phrase)) > (best[0].score, len(best_phrase))):
            best_phrase, best = phrase, matches
    if not best:
        raise not_found(kinds, names[0])
    top = best[0]
    close = [m for m in best if m.score >= top.score - CLEAR_LEAD]
    if len(close) > 1:
        live = [m for m in close if not m.closed]
        if len(live) == 1:
            top = live[0]
        else:
            choices = live or close
            kind_noun = noun if len({m.ref.kind for m in choices}) == 1 else "record"
            raise _choice_question(kind_noun, choices, turn, action, best_phrase)
    return Target(top.ref, remember(top.ref, turn, action, [m.ref for m in best]))


def mentioned(uow: UnitOfWork, turn: Turn, kinds: Sequence[str]) -> list[Ref]:
    """Every record named in the turn, the best match per name (for "call with Dana at Nimbus")."""
    refs: list[Ref] = []
    for phrase in names_in(turn):
        matches = find(uow, kinds, phrase)
        if matches and matches[0].ref not in refs:
            refs.append(matches[0].ref)
    return refs
