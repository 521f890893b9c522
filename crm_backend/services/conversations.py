"""Conversations with the assistant: each belongs to one user, on one channel."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from crm_backend.errors import NotFound, ValidationFailed
from crm_backend.models.base import utcnow
from crm_backend.models.conversations import Conversation
from crm_backend.store import UnitOfWork

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
