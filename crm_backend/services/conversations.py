"""Conversations with the assistant: each belongs to one user (or one anonymous visitor) on one
channel, with its turns, the buttons it offered, and the platform events already taken."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from crm_backend.errors import NotFound, ValidationFailed
from crm_backend.models.base import utcnow
from crm_backend.models.channels import ChannelEvent, ConversationTurn, OfferedButton
from crm_backend.models.conversations import Conversation
from crm_backend.store import Store, UnitOfWork

CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


def claim_conversation(uow: UnitOfWork, conversation_id: str | None, channel: str) -> str:
    """The id of a conversation the acting user may post to: theirs, a new one, or `NotFound`.

    Another user's conversation is reported as not found, so ids cannot be probed.
    """
    actor = uow.require_actor()
    if conversation_id is None:
        conversation_id = f"{channel}-{uuid.uuid4().hex}"
    elif not CONVERSATION_ID.match(conversation_id):
        raise ValidationFailed({"conversation_id": "use 1-80 letters, digits, '_', '-', '.' or ':'"})
    existing = uow.session.scalar(select(Conversation).where(Conversation.id == conversation_id))
    if existing is None:
        uow.session.add(Conversation(id=conversation_id, user_id=actor.user_id, channel=channel))
    elif existing.user_id != actor.user_id or existing.channel != channel:
        raise NotFound("No such conversation.")
    else:
        existing.last_message_at = utcnow()
    uow.session.flush()
    return conversation_id


def claim_visitor_conversation(uow: UnitOfWork, conversation_id: str, visitor_id: str, channel: str) -> str:
    """The conversation of an anonymous visitor (no CRM user): theirs, a new one, or `NotFound`."""
    if not CONVERSATION_ID.match(conversation_id):
        raise ValidationFailed({"conversation_id": "use 1-80 letters, digits, '_', '-', '.' or ':'"})
    existing = uow.session.scalar(select(Conversation).where(Conversation.id == conversation_id))
    if existing is None:
        uow.session.add(Conversation(id=conversation_id, user_id=None, visitor_id=visitor_id, channel=channel))
    elif existing.visitor_id != visitor_id or existing.user_id is not None or existing.channel != channel:
        raise NotFound("No such conversation.")
    else:
        existing.last_message_at = utcnow()
    uow.session.flush()
    return conversation_id


def first_time(uow: UnitOfWork, channel: str, event_id: str) -> bool:
    """True the first time a platform event id is seen (retries of it are then dropped)."""
    try:
        with uow.session.begin_nested():
            uow.session.add(ChannelEvent(channel=channel, event_id=event_id[:200]))
            uow.session.flush()
    except IntegrityError:
        return False
    return True


EVENT_MEMORY = dt.timedelta(days=1)  # Slack retries for minutes, Telegram for hours at most


def forget_old_events(store: Store, now: dt.datetime) -> int:
    """The scheduler's job: drop platform event ids older than `EVENT_MEMORY`."""
    with store.unit_of_work(None, "system") as uow:
        result = uow.session.execute(delete(ChannelEvent).where(ChannelEvent.at < now - EVENT_MEMORY))
        return int(getattr(result, "rowcount", 0) or 0)


def offer_buttons(uow: UnitOfWork, conversation_id: str, buttons: list[tuple[str, str]]) -> list[str]:
    """Remember the buttons shown in a conversation and return their opaque keys, in order.

    The new set supersedes every earlier one: only the newest question's buttons can be clicked.
    """
    now = utcnow()
    uow.session.execute(
        update(OfferedButton)
        .where(OfferedButton.conversation_id == conversation_id, OfferedButton.superseded_at.is_(None))
        .values(superseded_at=now)
    )
    keys = []
    for title, payload in buttons:
        key = secrets.token_urlsafe(12)
        uow.session.add(
            OfferedButton(
                conversation_id=conversation_id, key=key, title=title[:200], payload=payload[:1000], offered_at=now
            )
        )
        keys.append(key)
    uow.session.flush()
    return keys


@dataclass(frozen=True)
class Clicked:
    title: str
    payload: str


def clicked_button(uow: UnitOfWork, conversation_id: str, key: str, max_age: dt.timedelta) -> Clicked | None:
    """The button `key` stands for, if it is in this conversation's newest set, not used and not too old."""
    row = uow.session.scalar(
        select(OfferedButton).where(OfferedButton.key == key, OfferedButton.conversation_id == conversation_id)
    )
    if row is None or row.superseded_at is not None or row.offered_at < utcnow() - max_age:
        return None
    # A click uses up its whole set: a second click on the same "Yes" is refused, not confirmed twice.
    uow.session.execute(
        update(OfferedButton)
        .where(OfferedButton.conversation_id == conversation_id, OfferedButton.superseded_at.is_(None))
        .values(superseded_at=utcnow())
    )
    return Clicked(row.title, row.payload)


def has_bot_turn(uow: UnitOfWork, conversation_id: str) -> bool:
    """Whether the assistant has answered in this conversation yet."""
    found = uow.session.scalar(
        select(ConversationTurn.id)
        .where(ConversationTurn.conversation_id == conversation_id, ConversationTurn.speaker == "bot")
        .limit(1)
    )
    return found is not None


SENTIMENT_LABELS = frozenset({"negative", "neutral", "positive"})
SENTIMENT_MEMORY = 0.6  # the conversation's sentiment: this much of the previous value, the rest the new turn


def record_turn(
    uow: UnitOfWork,
    conversation_id: str,
    speaker: str,
    text: str,
    data: dict[str, Any] | None = None,
    sentiment: tuple[str, float] | None = None,
) -> None:
    """One turn; a user turn's sentiment (label, score in [-1, 1]) also moves the conversation's rolling value."""
    label, score = sentiment if sentiment is not None else (None, None)
    if label is not None and (label not in SENTIMENT_LABELS or score is None or not -1.0 <= score <= 1.0):
        raise ValidationFailed({"sentiment": "a label (negative, neutral, positive) and a score from -1 to 1"})
    uow.session.add(
        ConversationTurn(
            conversation_id=conversation_id,
            speaker=speaker,
            text=text,
            data=data or {},
            sentiment_label=label,
            sentiment_score=score,
        )
    )
    if score is not None:
        found = uow.session.get(Conversation, conversation_id)
        if found is not None:
            previous = found.sentiment_score
            rolling = score if previous is None else SENTIMENT_MEMORY * previous + (1 - SENTIMENT_MEMORY) * score
            found.sentiment_score = round(rolling, 4)
            found.sentiment_label = mood_word(rolling)


def recent_turns(uow: UnitOfWork, conversation_id: str, limit: int = 50) -> list[ConversationTurn]:
    """The last `limit` turns, oldest first."""
    rows = list(
        uow.session.scalars(
            select(ConversationTurn)
            .where(ConversationTurn.conversation_id == conversation_id)
            .order_by(ConversationTurn.id.desc())
            .limit(limit)
        )
    )
    rows.reverse()
    return rows


def mood_word(score: float) -> str:
    """A conversation's mood from a sentiment score in [-1, 1]: negative, neutral or positive."""
    return "negative" if score <= -0.25 else "positive" if score >= 0.25 else "neutral"


def sentiment_scores(uow: UnitOfWork, conversation_id: str) -> list[float]:
    """The sentiment score of every user turn that has one, oldest first."""
    return [
        float(score or 0.0)
        for score in uow.session.scalars(
            select(ConversationTurn.sentiment_score)
            .where(
                ConversationTurn.conversation_id == conversation_id,
                ConversationTurn.speaker == "user",
                ConversationTurn.sentiment_score.is_not(None),
            )
            .order_by(ConversationTurn.id)
        )
    ]


def record_intent(uow: UnitOfWork, conversation_id: str, intent: str, confidence: float, *, fallback: bool) -> None:
    """What the dialogue engine understood the last user turn as (the analytics read it per intent)."""
    turn = uow.session.scalar(
        select(ConversationTurn)
        .where(ConversationTurn.conversation_id == conversation_id, ConversationTurn.speaker == "user")
        .order_by(ConversationTurn.id.desc())
        .limit(1)
    )
    if turn is not None:
        turn.data = {
            **(turn.data or {}),
            "intent": intent[:100],
            "confidence": round(confidence, 3),
            "fallback": fallback,
        }
