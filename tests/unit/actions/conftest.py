"""Talking to the actions the way the action server runs them: a real rasa-sdk Tracker and
CollectingDispatcher, the gateway's signed identity, the real services and a real database with
the demo data (extras included: contacts, leads, activities, currencies, territories).

`Chat` keeps the conversation's slots between turns like Rasa does (it applies the SlotSet events
the actions return), so multi-turn flows — read-back, yes, undo, "no, the other one" — are tested
through the same code paths as in production.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from crm_backend.demo import seed_demo
from crm_backend.services.auth import IDENTITY_KEY, sign_identity, sign_visitor
from crm_backend.store import Store
from tests.conftest import Demo

SECRET = "actions-test-secret"


@dataclass
class Crm(Demo):
    """The demo CRM with extras; `chat(user)` starts a conversation with the actions."""

    def chat(self, username: str, conversation_id: str | None = None) -> Chat:
        return Chat(self, username, conversation_id or f"conv-{username}")


def entity(name: str, value: str, text: str | None = None, extractor: str = "DIETClassifier") -> dict[str, Any]:
    """An entity as Rasa hands it to actions; `text` (the words said) locates start/end."""
    return {"entity": name, "value": value, "extractor": extractor, "_text": text or value}


@dataclass
class Chat:
    crm: Crm
    username: str
    conversation_id: str
    slots: dict[str, Any] = field(default_factory=dict)
    replies: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    channel: str = "api"
    spoken: bool = False  # messages are transcripts (the gateway signs what was heard)
    visitor: str | None = None  # an anonymous website visitor (a prospect) instead of the CRM user

    def tracker(
        self, text: str, intent: str, entities: Sequence[dict[str, Any]], filled: dict[str, Any] | None = None
    ) -> Tracker:
        located = []
        for e in entities:
            e = dict(e)
            said = e.pop("_text", str(e["value"]))
            start = text.lower().find(said.lower())
            e.setdefault("start", start)
            e.setdefault("end", start + len(said) if start >= 0 else -1)
            located.append(e)
        heard = text if self.spoken else None
        if self.visitor is not None:
            identity = sign_visitor(SECRET, self.visitor, self.channel, self.conversation_id)
        else:
            identity = sign_identity(
                SECRET, self.crm.actor(self.username), self.channel, self.conversation_id, heard=heard
            )
        metadata = {IDENTITY_KEY: identity}
        # Slots a form filled from this message: Rasa sets them after the user event, and
        # validation actions see them as `slots_to_validate()`.
        events: list[dict[str, Any]] = [{"event": "user", "text": text}]
        events += [{"event": "slot", "name": k, "value": v} for k, v in (filled or {}).items()]
        return Tracker.from_dict(
            {
                "sender_id": self.conversation_id,
                "slots": {**self.slots, **(filled or {})},
                "latest_message": {
                    "text": text,
                    "intent": {"name": intent, "confidence": 0.99},
                    "entities": located,
                    "metadata": metadata,
                },
                "events": events,
                "paused": False,
                "followup_action": None,
                "active_loop": {},
                "latest_action_name": "action_listen",
            }
        )

    async def say(
        self,
        action: Action,
        text: str,
        intent: str,
        entities: Sequence[dict[str, Any]] = (),
        filled: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Run `action` for this user message; keep its slot events; return the bot's messages.

        `filled` are slots a form filled from this message before its validation action runs."""
        dispatcher = CollectingDispatcher()
        self.slots.update(filled or {})
        events = await action.run(dispatcher, self.tracker(text, intent, entities, filled), {})
        self.events = list(events)
        for event in events:
            if event.get("event") == "slot":
                self.slots[event["name"]] = event["value"]
        self.replies = dispatcher.messages
        return dispatcher.messages

    @property
    def text(self) -> str:
        """All replies of the last turn as one string."""
        return "\n".join(m.get("text") or "" for m in self.replies)

    @property
    def buttons(self) -> list[dict[str, str]]:
        return [b for m in self.replies for b in m.get("buttons") or []]


@pytest.fixture
def crm(store: Store) -> Iterator[Crm]:
    """The demo CRM (with extras) and the action runtime installed on it."""
    tokens = seed_demo(store, extras=True)
    runtime.install(runtime.ActionRuntime(store=store, secret=SECRET))
    try:
        yield Crm(store, tokens)
    finally:
        runtime.install(None)
