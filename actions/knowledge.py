"""Answers from the knowledge base: a question about the product (pricing, trial, SSO, security, …) is
answered with the passage of the best-matching published article, citing it; below the score threshold
the assistant says it does not know and offers a person. Anyone may ask: prospects (anonymous visitors)
and signed-in users alike — articles are public information; drafts are never shown here."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from crm_backend.errors import AuthenticationFailed, CrmError, VisitorOnly
from crm_backend.services import knowledge
from crm_backend.services.auth import IDENTITY_KEY, verified_visitor, verify_identity

log = logging.getLogger(__name__)

NOT_KNOWN = (
    "I don't have an answer to that in our help articles. Would you like a person from our team to help? "
    'Say "talk to a person".'
)
UNAVAILABLE = 'I can\'t look that up right now. Say "talk to a person" and someone from our team will answer.'
OFFER_PERSON = [{"title": "Talk to a person", "payload": "/human_handoff"}]


def _genuine(tracker: Tracker, rt: runtime.ActionRuntime) -> bool:
    """The message carries the gateway's signature (a CRM user's or a website visitor's)."""
    block = (tracker.latest_message.get("metadata") or {}).get(IDENTITY_KEY)
    try:
        verify_identity(rt.secret, block, tracker.sender_id, rt.max_identity_age_seconds)
        return True
    except VisitorOnly:
        return verified_visitor(rt.secret, block, tracker.sender_id, rt.max_identity_age_seconds) is not None
    except AuthenticationFailed:
        return False


def answer(rt: runtime.ActionRuntime, question: str) -> tuple[str, list[dict[str, str]]]:
    """The reply to a product question: the best passage and its source, or "I don't know" with a person."""
    if rt.embedder is None:
        return UNAVAILABLE, OFFER_PERSON
    knowledge.refresh_in(rt.store, rt.embedder)  # articles edited since: embedded again, no lock held meanwhile
    with rt.store.unit_of_work(channel="assistant", read_only=True) as uow:
        hits = knowledge.search(uow, rt.embedder, question, limit=1, refresh=False)
    if not hits:
        return NOT_KNOWN, OFFER_PERSON
    best = hits[0]
    return f"{best.snippet}\n\n(From our help article “{best.title}”.)", []


class ActionAnswerFromKnowledge(Action):
    def name(self) -> str:
        return "action_answer_from_knowledge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.current()
        if not _genuine(tracker, rt):
            dispatcher.utter_message(text="Please talk to me through the website chat or a linked channel.")
            return []
        question = str(tracker.latest_message.get("text") or "")
        try:
            text, buttons = await asyncio.to_thread(answer, rt, question)
        except CrmError as error:
            text, buttons = error.message, []
        except Exception:
            log.exception("knowledge answer failed")
            text, buttons = UNAVAILABLE, OFFER_PERSON
        if not buttons and tracker.get_slot("audience") == "prospect":
            buttons = [{"title": "Book a demo", "payload": "/request_demo"}]  # a visitor's next step
        dispatcher.utter_message(text=text, buttons=buttons or None)
        return []
