"""The prospect's side of the website chat: qualify them in conversation (a Rasa form, `prospect_form`),
leave a scored, routed lead behind, and book a demo with its owner.

- `action_start_prospect` ("I'd like a demo", "we're looking for a CRM for our team") clears old answers,
  keeps what the request already says (the need, a budget, a timeline, a name…) and opens the form.
- `validate_prospect_form` reads every answer: the one asked for, and any other the message gives
  ("we have about 20k and need it before March" fills budget and timeline), corrections ("actually it's
  30k") and skips; a question about the product in the middle is answered from the knowledge base and
  the form goes on.
- The questions explain why they are asked (responses `utter_ask_prospect_*` in domain.yml); the last one
  (`action_ask_prospect_confirm`) reads everything back for a yes or a correction.
- `action_submit_prospect` writes the lead (crm_backend.services.prospects.capture) and offers demo times
  from the owner's calendar; `action_book_demo` books the one chosen and links its invitation (.ics).

Only anonymous visitors (and chat accounts not linked to a CRM user) are prospects: a signed-in CRM user
who asks for a demo is pointed at the lead form instead. These actions never read CRM records for the
prospect: they write a lead and read the owner's name and free times, nothing else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import prospect_answers as pa
from actions import runtime
from actions.base import utter
from actions.forms import FORM_KIND, QUESTION
from actions.knowledge import answer as knowledge_answer
from actions.replies import UNEXPECTED, ActionResult, Reply, sentence_for
from crm_backend.errors import AuthenticationFailed, Conflict, CrmError, VisitorOnly
from crm_backend.models.users import User
from crm_backend.services import prospects
from crm_backend.services.auth import IDENTITY_KEY, verified_visitor, verify_identity
from crm_backend.store import UnitOfWork

log = logging.getLogger(__name__)

PROSPECT = "prospect"  # form_kind while the prospect form runs
DEMO_OFFER = "demo_offer"  # the demo start times offered (ISO), in order
CRM_USER = (
    "You're signed in as a member of the team, so there's nothing to qualify here. "
    'To record someone else\'s interest, say "add a new lead".'
)
NOT_SIGNED = "Please talk to me through the website chat."
SIDE_CONFIDENCE = 0.5
# Intents the form's slots never take (domain.yml not_intent): the rules for them run instead.
LEAVING_INTENTS = frozenset({"stop", "help", "human_handoff"})
LEAVING_CONFIDENCE = 0.5
ORDINALS = {"first": 0, "1st": 0, "one": 0, "1": 0, "second": 1, "2nd": 1, "two": 1, "2": 1}
ORDINALS |= {"third": 2, "3rd": 2, "three": 2, "3": 2, "last": -1}
ORDINAL = re.compile(r"\b(" + "|".join(ORDINALS) + r")\b", re.I)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NO_THANKS = re.compile(r"\b(no|nope|nah|not now|later|no thanks|maybe later|don'?t)\b", re.I)


@dataclass
class ProspectTurn:
    """This turn as a prospect action needs it."""

    tracker: Tracker
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def latest(self) -> dict[str, Any]:
        return self.tracker.latest_message or {}

    @property
    def text(self) -> str:
        return str(self.latest.get("text") or "")

    @property
    def intent(self) -> str | None:
        return (self.latest.get("intent") or {}).get("name")

    @property
    def confidence(self) -> float:
        return float((self.latest.get("intent") or {}).get("confidence") or 0.0)

    @property
    def entities(self) -> list[dict[str, Any]]:
        return list(self.latest.get("entities") or [])

    @property
    def conversation_id(self) -> str:
        return str(self.tracker.sender_id)

    def slot(self, name: str) -> Any:
        return self.tracker.get_slot(name)


class ProspectAction(Action, ABC):
    """Base of the prospect actions: only a genuine visitor identity gets through; one transaction."""

    @abstractmethod
    def perform(self, uow: UnitOfWork, turn: ProspectTurn) -> ActionResult:
        """The work, inside one unit of work acting as the system for an anonymous prospect."""

    def refused(self, turn: ProspectTurn) -> list[Any]:
        """Events when the speaker is not a prospect (close the form at once)."""
        return []

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.current()
        turn = ProspectTurn(tracker)
        block = (tracker.latest_message.get("metadata") or {}).get(IDENTITY_KEY)
        if verified_visitor(rt.secret, block, tracker.sender_id, rt.max_identity_age_seconds) is None:
            try:
                verify_identity(rt.secret, block, tracker.sender_id, rt.max_identity_age_seconds)
                text = CRM_USER
            except (VisitorOnly, AuthenticationFailed):
                text = NOT_SIGNED
            dispatcher.utter_message(text=text)
            return self.refused(turn)
        try:
            result = await asyncio.to_thread(self._transaction, rt, turn)
        except CrmError as error:
            result = ActionResult([Reply(sentence_for(error))])
        except Exception:
            log.exception("%s failed", self.name())
            result = ActionResult([Reply(UNEXPECTED)])
        utter(dispatcher, result.replies)
        return result.events

    def _transaction(self, rt: runtime.ActionRuntime, turn: ProspectTurn) -> ActionResult:
        with rt.store.unit_of_work(None, "prospect") as uow:
            return self.perform(uow, turn)


def _closed_form() -> list[Any]:
    """Answers that close the form at once without writing (submit sees no prospect form)."""
    return [*(SlotSet(s, pa.SKIPPED) for s in pa.SLOTS), SlotSet(FORM_KIND, None)]


class ActionStartProspect(ProspectAction):
    def name(self) -> str:
        return "action_start_prospect"

    def refused(self, turn: ProspectTurn) -> list[Any]:
        return _closed_form()

    def perform(self, uow: UnitOfWork, turn: ProspectTurn) -> ActionResult:
        given = pa.volunteered(turn.text)
        need = pa.need_in_request(turn.text)
        if need:
            given[pa.NEED] = need
        given.pop(pa.CONFIRM, None)
        events: list[Any] = [SlotSet(s, given.get(s)) for s in pa.SLOTS]
        intro = (
            "Happy to help with that! A few quick questions so the right person from our team gets back to you "
            "— skip any you like, or ask me anything along the way."
        )
        return ActionResult([Reply(intro)], [*events, SlotSet(FORM_KIND, PROSPECT), SlotSet(DEMO_OFFER, None)])


class ValidateProspectForm(ProspectAction):
    """Take the answer to the question asked, every other answer the message gives, and corrections."""

    def name(self) -> str:
        return "validate_prospect_form"

    def refused(self, turn: ProspectTurn) -> list[Any]:
        return _closed_form()

    def perform(self, uow: UnitOfWork, turn: ProspectTurn) -> ActionResult:
        if turn.slot(FORM_KIND) != PROSPECT:
            return ActionResult([], [])
        requested = turn.slot("requested_slot")
        if requested not in pa.SLOTS:
            return ActionResult([], [])
        found = pa.volunteered(turn.text)
        if pa.PERSON_WANTED.search(turn.text) and not found:
            # "is there a real human I can talk to", however the NLU read it: hand over with the answers so far.
            return ActionResult([Reply("", custom={"handoff": "requested"})], self._close(turn))
        if turn.intent in LEAVING_INTENTS and turn.confidence >= LEAVING_CONFIDENCE and not found:
            return ActionResult([], [])  # nothing taken: the form gives way to the stop / help / handoff rules
        if self._side_question(turn):
            text, buttons = knowledge_answer(runtime.current(), turn.text)
            shown = [(b["title"], b["payload"]) for b in buttons]
            return ActionResult([Reply(text, shown)], [SlotSet(requested, None)])
        replies: list[Reply] = []
        events: list[Any] = []
        changed = []
        if requested == pa.NAME and pa.COMPANY not in found and turn.slot(pa.COMPANY) is None:
            company = pa.company_after_name(turn.text)  # "Dwight Okonkwo, Harbourline Marine"
            if company:
                found[pa.COMPANY] = company
        for slot, value in found.items():
            if slot == requested:
                continue
            before = turn.slot(slot)
            if (
                slot in (pa.NAME, pa.COMPANY)
                and before not in (None, pa.SKIPPED)
                and not pa.CORRECTING.search(turn.text)
            ):
                continue  # a name in passing ("from Lumen") changes no name already given
            if before != value:
                events.append(SlotSet(slot, value))
                if before not in (None, pa.SKIPPED):
                    changed.append(f"{pa.LABELS[slot]} to {pa.shown(slot, value)}")
        if requested == pa.CONFIRM:
            events.append(SlotSet(pa.CONFIRM, self._confirmation(turn, found)))
        else:
            value, problem = self._requested(turn, requested, found)
            events.append(SlotSet(requested, value))
            if problem and not found:
                replies.append(Reply(problem))
        if changed:
            replies.insert(0, Reply("Got it — I changed the " + ", ".join(changed) + "."))
        return ActionResult(replies, events)

    @staticmethod
    def _close(turn: ProspectTurn) -> list[Any]:
        """Close the form without writing: the questions not answered yet count as skipped, the answers given
        stay (the handoff ticket shows them), and submit finds no prospect form to write."""
        requested = turn.slot("requested_slot")  # it holds this message, which answered nothing
        unanswered = [SlotSet(s, pa.SKIPPED) for s in pa.SLOTS if s == requested or turn.slot(s) is None]
        return [*unanswered, SlotSet(FORM_KIND, None)]

    @staticmethod
    def _side_question(turn: ProspectTurn) -> bool:
        return (
            turn.intent == "ask_product_question"
            and turn.confidence >= SIDE_CONFIDENCE
            and ("?" in turn.text or bool(QUESTION.search(turn.text)))
            and not pa.EMAIL.search(turn.text)
        )

    @staticmethod
    def _requested(turn: ProspectTurn, slot: str, found: dict[str, str]) -> tuple[str | None, str | None]:
        """The answer to the question asked. When the message also gave other answers, only a clear answer
        to this one counts ("20k, before March" asked about the need answers budget and timeline, not it)."""
        if slot in found:
            return found[slot], None
        if not found:
            return pa.check(slot, turn.text, turn.now)
        text = turn.text
        if slot in (pa.NAME, pa.COMPANY):
            text = re.split(r"[,;]| and | but ", text, maxsplit=1)[0]  # "Lumen Dental, and my email is …"
        elif slot == pa.NEED and not pa.NEED_CUES.search(text):
            return None, None
        elif slot in (pa.TIMELINE, pa.CONTACT):
            return None, None  # a clear timeline or contact would be among the answers found
        value, _problem = pa.check(slot, text, turn.now)
        return (value, None) if value not in (None, pa.SKIPPED) else (None, None)

    @staticmethod
    def _confirmation(turn: ProspectTurn, found: dict[str, str]) -> str | None:
        """ "yes" to send; None to read back again (after a change, or to ask what to change)."""
        if found:
            return None
        if turn.intent == "affirm" or (turn.intent != "deny" and pa.YES.search(turn.text)):
            return "yes"
        return None


class ActionAskProspectConfirm(ProspectAction):
    """Read everything back: yes sends it; anything else is a change."""

    def name(self) -> str:
        return "action_ask_prospect_confirm"

    def perform(self, uow: UnitOfWork, turn: ProspectTurn) -> ActionResult:
        declined = turn.slot("requested_slot") == pa.CONFIRM and (
            turn.intent == "deny" or bool(pa.NO.search(turn.text))
        )
        if declined:
            return ActionResult(
                [Reply("No problem — what should I change? Say it like “the budget is 30k” or “my email is …”.")]
            )
        slots = {s: turn.slot(s) for s in pa.SLOTS}
        text = f"Here's what I'll pass on to our team:\n{pa.summary(slots)}\nIs that right?"
        return ActionResult([Reply(text, [("Yes, send it", "/affirm"), ("Change something", "/deny")])])


def _when(start: dt.datetime, zone: ZoneInfo) -> str:
    local = start.astimezone(zone)
    return f"{local:%a %-d %b}, {local:%H:%M}"


def demo_offer(uow: UnitOfWork, owner_id: int, free: list[dt.datetime], lead_in: str) -> tuple[Reply, list[str]]:
    """The offer of `free` demo times in the owner's time zone (buttons, and "no thanks"), and the times as the
    `demo_offer` slot keeps them (ISO, with the owner's offset: their weekday is the one shown)."""
    owner = uow.session.get(User, owner_id)
    zone = ZoneInfo(owner.timezone if owner is not None and owner.timezone else "UTC")
    times = ", ".join(_when(s, zone) for s in free)
    text = f'{lead_in} Free times ({zone.key}): {times}. Pick one, or say "no thanks".'
    buttons = [(_when(s, zone), f'/affirm{{"demo_slot":"{i + 1}"}}') for i, s in enumerate(free)]
    buttons.append(("No thanks", "/deny"))
    return Reply(text, buttons), [s.astimezone(zone).isoformat() for s in free]


class ActionSubmitProspect(ProspectAction):
    """Write the lead (deduped, scored, routed; the owner told when it is hot) and offer demo times."""

    def name(self) -> str:
        return "action_submit_prospect"

    def perform(self, uow: UnitOfWork, turn: ProspectTurn) -> ActionResult:
        if turn.slot(FORM_KIND) != PROSPECT:
            return ActionResult([], [SlotSet(FORM_KIND, None)])
        slots = {s: turn.slot(s) for s in pa.SLOTS}
        clear = [*(SlotSet(s, None) for s in pa.SLOTS), SlotSet(FORM_KIND, None)]
        answers = pa.to_answers(slots)
        captured = prospects.capture(uow, turn.conversation_id, answers, now=turn.now)
        name, email, phone = answers["name"], answers["email"], answers["phone"]
        thanks = f"Thank you{', ' + str(name).split()[0] if name else ''}! "
        first = captured.owner_name.split()[0]
        if captured.lead_id is None:
            text = (
                f"{thanks}I see you're already one of our customers, so I've passed this straight to "
                f"{captured.owner_name}, who looks after your account. They'll get back to you shortly."
            )
            return ActionResult([Reply(text)], clear)
        reach = f" at {email or phone}" if (email or phone) else " here in the chat"
        text = f"{thanks}I've passed this to {captured.owner_name}, who'll get in touch{reach}."
        slots_free = prospects.demo_slots(uow, captured.owner_id, turn.now)
        if not slots_free:
            return ActionResult([Reply(text)], clear)
        offer, offered = demo_offer(
            uow, captured.owner_id, slots_free, f"Would a 30-minute demo with {first} suit you?"
        )
        return ActionResult([Reply(text), offer], [*clear, SlotSet(DEMO_OFFER, offered)])


class ActionBookDemo(ProspectAction):
    """Book the demo time the prospect chose (a button, "yes" for the first, "the second one", "thursday")."""

    def name(self) -> str:
        return "action_book_demo"

    def perform(self, uow: UnitOfWork, turn: ProspectTurn) -> ActionResult:
        offered = [dt.datetime.fromisoformat(s) for s in (turn.slot(DEMO_OFFER) or [])]
        if not offered:
            return ActionResult([Reply('There\'s no demo time waiting for an answer. Say "book a demo" to start.')])
        if turn.intent == "deny" or (turn.intent != "affirm" and NO_THANKS.search(turn.text)):
            text = "No problem — our team will be in touch. Anything else I can help with?"
            return ActionResult([Reply(text)], [SlotSet(DEMO_OFFER, None)])
        chosen = self._chosen(turn, offered)
        if chosen is None:
            return ActionResult([Reply('Which time suits you — the first, second or third? Or say "no thanks".')])
        try:
            with uow.session.begin_nested():
                booking = prospects.book_demo(uow, turn.conversation_id, chosen, turn.now)
        except Conflict as error:
            return self._offer_again(uow, turn, error.message)
        owner = uow.session.get(User, booking.owner_id)
        zone = ZoneInfo(booking.timezone or "UTC")
        rt = runtime.current()
        link = f"{rt.public_url}/widget/invites/{prospects.invite_token(rt.secret, booking.id)}.ics"
        who = owner.full_name if owner is not None else "our team"
        text = (
            f"Booked: a 30-minute demo with {who} on {_when(booking.start_at, zone)} ({zone.key}). "
            f"Add it to your calendar: {link}"
        )
        return ActionResult([Reply(text)], [SlotSet(DEMO_OFFER, None)])

    @staticmethod
    def _offer_again(uow: UnitOfWork, turn: ProspectTurn, why: str) -> ActionResult:
        """The chosen time went (someone else booked it): offer the owner's free times as they are now."""
        owner_id = prospects.demo_owner(uow, turn.conversation_id)
        free = prospects.demo_slots(uow, owner_id, turn.now) if owner_id is not None else []
        if not free:
            return ActionResult(
                [Reply(f"{why} Our team will be in touch to find a time.")], [SlotSet(DEMO_OFFER, None)]
            )
        reply, offered = demo_offer(uow, owner_id, free, f"{why} These times are free now")
        return ActionResult([reply], [SlotSet(DEMO_OFFER, offered)])

    @staticmethod
    def _chosen(turn: ProspectTurn, offered: list[dt.datetime]) -> dt.datetime | None:
        for e in turn.entities:
            if e.get("entity") == "demo_slot" and str(e.get("value") or "").isdigit():
                index = int(str(e["value"])) - 1
                return offered[index] if 0 <= index < len(offered) else None
        said = ORDINAL.search(turn.text)
        if said:
            index = ORDINALS[said.group(1).lower()]
            return offered[index] if index < len(offered) else None
        for day in WEEKDAYS:  # offered times carry the owner's offset: their weekday is the one shown
            if re.search(rf"\b{day[:3]}(?:{day[3:]})?\b", turn.text, re.I):
                return next((s for s in offered if s.strftime("%A").lower() == day), None)
        if turn.intent == "affirm":
            return offered[0]
        return None
