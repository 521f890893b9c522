"""The gateway's side of the human handoff: reaching users on their own channel with an agent's words,
and telling the agent console what changed, live.

The state itself lives in the database (`crm_backend.services.handoff`); this module holds only what a
running gateway process needs: the channel adapters' push functions (registered at start-up, like the
notification deliverers) and the console's live subscribers. A reply for a user whose channel is not
running here is still recorded as a turn (the widget shows it with the history; the REST API reads it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from assistant.messages import Reply

log = logging.getLogger(__name__)

Pusher = Callable[[dict[str, Any], list[Reply]], Awaitable[bool]]

ESCALATED = (
    "I'm bringing in a person from our team (ticket #{ticket}). Expected wait: about {minutes} minutes. "
    "They will see this whole conversation, so you won't need to repeat anything; just keep writing here."
)
ALREADY_WAITING = "You're already in the queue for a person (ticket #{ticket}); they will answer right here."
AGENT_JOINED = "{agent} from our team has joined the conversation."
HANDED_BACK = "You're back with the assistant. {note}Anything else I can help with?"
RESOLVED = "{agent} has marked this as resolved. How would you rate the help you got, from 1 (poor) to 5 (great)?"
RATED = "Thank you for your rating! I'm here if you need anything else."
SLA_MISSED = (
    'I\'m sorry, everyone on the team is still busy. Would you like a call back instead? Say "call me back" '
    "(with your phone number if we don't have it), or keep waiting here."
)
CALLBACK = "Done: someone from our team will call you back (task #{task}). I'm here in the meantime."
CSAT_CHOICES = [(str(n), f"csat:{n}") for n in range(1, 6)]


class HandoffDesk:
    """Push functions per channel and live console subscribers, for one gateway process."""

    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self._pushers: dict[str, Pusher] = {}
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._announcers: list[Callable[[int], Awaitable[None]]] = []
        self.timeout_seconds = timeout_seconds

    def on_escalation(self, announce: Callable[[int], Awaitable[None]]) -> None:
        """Call `announce(ticket_id)` for every new handoff (the Slack support channel registers one)."""
        self._announcers.append(announce)

    async def escalated(self, ticket_id: int, conversation_id: str) -> None:
        """A new handoff: consoles refresh their queue; announcers tell agents elsewhere."""
        self.publish({"type": "queue", "conversation_id": conversation_id, "ticket_id": ticket_id})
        for announce in list(self._announcers):
            try:
                await asyncio.wait_for(announce(ticket_id), self.timeout_seconds)
            except Exception as exc:  # an outage there must not cost the user their answer
                log.warning("handoff: announcing ticket %s failed: %s", ticket_id, type(exc).__name__)

    def register(self, channel: str, pusher: Pusher) -> None:
        self._pushers[channel] = pusher

    def unregister(self, channel: str) -> None:
        self._pushers.pop(channel, None)

    async def push(self, channel: str, address: dict[str, Any], replies: list[Reply]) -> bool:
        """Deliver replies to a user outside a turn; False when the channel cannot reach them from here."""
        pusher = self._pushers.get(channel)
        if pusher is None or not address:
            return False
        try:
            return await asyncio.wait_for(pusher(address, replies), self.timeout_seconds)
        except Exception as exc:  # a platform outage must not fail the agent's action; the turn is recorded
            log.warning("handoff: pushing to %s failed: %s", channel, type(exc).__name__)
            return False

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=500)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        """Tell every open console (a full one misses the event and reloads on its next one)."""
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)


HANDOFF = web.AppKey("handoff", HandoffDesk)
