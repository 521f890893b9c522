"""The shared shape of every CRM action: verify who is asking, run one transaction, reply.

Subclasses implement `perform(uow, turn)`: read what the user said (`Turn`), call services,
return replies and slot events. Identity comes only from the gateway-signed metadata of the latest
message; a domain error becomes a sentence, anything else a generic apology (the details go to the
log, not the user). A helper that needs to ask the user something first (which record? which
date?) raises `Ask`: its replies are sent and nothing is written.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.replies import UNEXPECTED, ActionResult, Reply, sentence_for
from crm_backend.errors import AuthenticationFailed, CrmError
from crm_backend.models.users import User
from crm_backend.services.auth import IDENTITY_KEY, IdentityClaims, load_actor, verify_identity
from crm_backend.store import UnitOfWork

log = logging.getLogger(__name__)

# Intents that answer the assistant's "which one?" instead of asking something new.
CHOICE_INTENTS = frozenset({"choose_record", "choose_other"})
# Entities DIET and the synonym mapper give (spaCy's are read separately, by label).
OWN_EXTRACTORS = frozenset({"DIETClassifier", "EntitySynonymMapper", "RegexEntityExtractor", None})
SPACY = "SpacyEntityExtractor"


def identity_of(tracker: Tracker, rt: runtime.ActionRuntime) -> IdentityClaims:
    metadata = tracker.latest_message.get("metadata") or {}
    return verify_identity(rt.secret, metadata.get(IDENTITY_KEY), tracker.sender_id, rt.max_identity_age_seconds)


def user_zone(uow: UnitOfWork) -> ZoneInfo:
    """The acting user's time zone (UTC when unset or unknown)."""
    user = uow.session.get(User, uow.require_actor().user_id)
    try:
        return ZoneInfo(user.timezone if user and user.timezone else "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


class Ask(Exception):
    """Stop the action and send `result` (a question) instead; nothing is written."""

    def __init__(self, text: str, buttons: list[tuple[str, str]] | None = None, events: list[Any] | None = None):
        super().__init__(text)
        self.result = ActionResult([Reply(text, buttons or [])], list(events or []))


@dataclass
class Turn:
    """What the user said in this turn, as an action needs it.

    When the user answers a "which one?" question (choose_record / choose_other), the request they
    made before is replayed: `text`, `intent` and `entities` are that request's, and `choosing` is
    True (the chosen record is in the `focus_record` slot).
    """

    tracker: Tracker
    claims: IdentityClaims
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    overrides: dict[str, Any] = field(default_factory=dict)  # slot values set earlier in this same turn

    @property
    def message(self) -> dict[str, Any]:
        latest = self.tracker.latest_message or {}
        intent = (latest.get("intent") or {}).get("name")
        request = self.slot("last_request")
        if intent in CHOICE_INTENTS and isinstance(request, dict) and request.get("text"):
            return request
        return {"text": latest.get("text") or "", "intent": intent, "entities": latest.get("entities") or []}

    @property
    def choosing(self) -> bool:
        latest = self.tracker.latest_message or {}
        return (latest.get("intent") or {}).get("name") in CHOICE_INTENTS

    @property
    def text(self) -> str:
        return str(self.message.get("text") or "")

    @property
    def intent(self) -> str | None:
        return self.message.get("intent")

    @property
    def confidence(self) -> float:
        """How sure the NLU was of this turn's intent (0–1)."""
        latest = self.tracker.latest_message or {}
        return float((latest.get("intent") or {}).get("confidence") or 0.0)

    @property
    def entities(self) -> list[dict[str, Any]]:
        return list(self.message.get("entities") or [])

    def entity_values(self, name: str) -> list[str]:
        """Values of our own (DIET/synonym) entity `name`, in message order, without repeats."""
        out: list[str] = []
        for e in self.entities:
            if e.get("entity") == name and e.get("extractor") in OWN_EXTRACTORS and e.get("value") is not None:
                value = str(e["value"]).strip()
                if value and value not in out:
                    out.append(value)
        return out

    def entity(self, name: str) -> str | None:
        values = self.entity_values(name)
        return values[0] if values else None

    def spacy(self, label: str) -> list[dict[str, Any]]:
        return [e for e in self.entities if e.get("extractor") == SPACY and e.get("entity") == label]

    def slot(self, name: str) -> Any:
        if name in self.overrides:
            return self.overrides[name]
        return self.tracker.get_slot(name)

    @property
    def conversation_id(self) -> str:
        return str(self.tracker.sender_id)

    def request(self, action: str) -> dict[str, Any]:
        """This turn's request as the `last_request` slot keeps it (to replay after a choice)."""
        return {**self.message, "action": action}

    def zone(self, uow: UnitOfWork) -> ZoneInfo:
        return user_zone(uow)


PENDING_SLOT = "pending_write"  # a read-back waiting for the user's yes (actions.confirm.Pending)


def remember_heard(events: list[dict[str, Any]], heard: str) -> None:
    """A read-back asked for by voice keeps the transcript, so the confirmed write's audit rows carry it."""
    for event in events:
        value = event.get("value") if event.get("event") == "slot" and event.get("name") == PENDING_SLOT else None
        if isinstance(value, dict) and not value.get("heard"):
            value["heard"] = heard


def utter(dispatcher: CollectingDispatcher, replies: list[Reply]) -> None:
    """Send replies as Rasa bot messages: text with buttons, or a custom payload for the gateway."""
    for reply in replies:
        if reply.custom is not None:
            dispatcher.utter_message(json_message=reply.custom)
            continue
        buttons = [{"title": title, "payload": payload} for title, payload in reply.buttons]
        dispatcher.utter_message(text=reply.text, buttons=buttons or None)


class CrmAction(Action, ABC):
    """Base of actions that read or write the CRM as the signed-in user."""

    @classmethod
    def named(cls, name: str) -> CrmAction | None:
        """The CRM action called `name` (to replay a request after the user chose a record)."""
        pending: list[type[CrmAction]] = [cls]
        while pending:
            klass = pending.pop()
            pending.extend(klass.__subclasses__())
            if not getattr(klass, "__abstractmethods__", None):
                action = klass()
                if action.name() == name:
                    return action
        return None

    @abstractmethod
    def perform(self, uow: UnitOfWork, turn: Turn) -> ActionResult:
        """Do the work inside one unit of work (committed only if this returns)."""

    def prepare_unit_of_work(self, uow: UnitOfWork, turn: Turn) -> None:
        """Hook run before `perform` (the confirm action marks its writes undoable here)."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.current()
        claims: IdentityClaims | None = None
        try:
            claims = identity_of(tracker, rt)
            result = await asyncio.to_thread(self._transaction, rt, Turn(tracker, claims))
        except Ask as ask:
            result = ask.result
        except CrmError as error:
            if isinstance(error, AuthenticationFailed):
                log.warning("%s refused: %s", self.name(), error.message)
            result = ActionResult([Reply(sentence_for(error))], self.events_after_error())
        except Exception:
            log.exception("%s failed", self.name())
            result = ActionResult([Reply(UNEXPECTED)], self.events_after_error())
        utter(dispatcher, result.replies)
        if claims is not None and claims.heard:
            remember_heard(result.events, claims.heard)
        return result.events

    def events_after_error(self) -> list[dict[str, Any]]:
        """Slot events to send when the action failed (e.g. forget a read-back that cannot be applied)."""
        return []

    def _transaction(self, rt: runtime.ActionRuntime, turn: Turn) -> ActionResult:
        with rt.store.unit_of_work(channel=turn.claims.audit_channel) as uow:
            uow.actor = load_actor(uow, turn.claims.user_id)
            self.prepare_unit_of_work(uow, turn)
            return self.perform(uow, turn)
