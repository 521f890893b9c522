"""The shared shape of every CRM action: verify who is asking, run one transaction, reply.

Subclasses implement `perform(uow, tracker)`: read slots, call one service, return replies.
Identity comes only from the gateway-signed metadata of the latest message; a domain error
becomes a sentence, anything else a generic apology (the details go to the log, not the user).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.replies import UNEXPECTED, ActionResult, Reply, sentence_for
from crm_backend.errors import AuthenticationFailed, CrmError
from crm_backend.services.auth import IDENTITY_KEY, IdentityClaims, load_actor, verify_identity
from crm_backend.store import UnitOfWork

log = logging.getLogger(__name__)


def identity_of(tracker: Tracker, rt: runtime.ActionRuntime) -> IdentityClaims:
    metadata = tracker.latest_message.get("metadata") or {}
    return verify_identity(rt.secret, metadata.get(IDENTITY_KEY), tracker.sender_id, rt.max_identity_age_seconds)


class CrmAction(Action, ABC):
    """Base of actions that read or write the CRM as the signed-in user."""

    @abstractmethod
    def perform(self, uow: UnitOfWork, tracker: Tracker) -> ActionResult:
        """Do the work inside one unit of work (committed only if this returns)."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        rt = runtime.current()
        try:
            claims = identity_of(tracker, rt)
            result = await asyncio.to_thread(self._transaction, rt, claims, tracker)
        except CrmError as error:
            if isinstance(error, AuthenticationFailed):
                log.warning("%s refused: %s", self.name(), error.message)
            result = ActionResult([Reply(sentence_for(error))])
        except Exception:
            log.exception("%s failed", self.name())
            result = ActionResult([Reply(UNEXPECTED)])
        for reply in result.replies:
            buttons = [{"title": title, "payload": payload} for title, payload in reply.buttons]
            dispatcher.utter_message(text=reply.text, buttons=buttons or None)
        return result.events

    def _transaction(self, rt: runtime.ActionRuntime, claims: IdentityClaims, tracker: Tracker) -> ActionResult:
        with rt.store.unit_of_work(channel=claims.channel) as uow:
            uow.actor = load_actor(uow, claims.user_id)
            return self.perform(uow, tracker)
