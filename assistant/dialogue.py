"""The conversation gateway's channel seam: every channel's turn goes through `Dialogue.handle`.

It decides who is speaking (a token's CRM user, a linked Slack/Telegram identity, or an anonymous
website visitor acting as a prospect), gives the turn a conversation id that is stable per thread
and person and never collides across channels, honours only buttons the gateway itself offered in
that conversation (typed text that looks like a Rasa payload stays plain text), signs the identity
and channel into the message for Rasa and the actions, and records both sides of the turn.
Adapters in `channels/` only translate platform events to `Inbound` and render `Outcome`s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiohttp import web

from assistant.handoff import ALREADY_WAITING, CALLBACK, ESCALATED, RATED, HandoffDesk
from assistant.messages import Button, Inbound, Outcome, Reply, Sender
from assistant.rasa_client import ActionServerClient, RasaClient, TurnFacts, UpstreamUnavailable
from assistant.settings import Settings
from crm_backend.api.http import ApiError
from crm_backend.errors import AuthenticationFailed, Busy, Conflict, NotFound, ValidationFailed
from crm_backend.models.conversations import HandoffState
from crm_backend.scheduler.delivery import Registry
from crm_backend.services import conversations, handoff, identities, prospects, users
from crm_backend.services.auth import IDENTITY_KEY, authenticate_token, sign_identity, sign_visitor
from crm_backend.store import Actor, Store, UnitOfWork

log = logging.getLogger(__name__)

T = TypeVar("T")

LINKED_CHANNELS = frozenset({"slack", "telegram"})
# Channels whose client names (or gets) an opaque conversation id, like the REST API.
CLIENT_THREADED = frozenset({"api", "voice"})
# Typed text is never a Rasa payload. A message in payload syntax ("/affirm", '/inform{"amount": 1}') is
# answered with a sentence and goes no further, so typing cannot confirm a read-back or fill slots;
# other text starting with slashes loses them so that Rasa reads it as words.
TYPED_PAYLOAD = re.compile(r"^\s*/+\s*([A-Za-z_][\w-]*)\s*(\{.*\}|\[.*\])?\s*$", re.DOTALL)
CHAT_COMMANDS = frozenset({"help", "cancel", "start", "stop"})
PAYLOAD_LIKE = re.compile(r"^\s*/+")
LINK_COMMAND = re.compile(r"^\s*/?(link|link code|link my account|connect)\s*[.!]?\s*$", re.IGNORECASE)
UNLINK_COMMAND = re.compile(r"^\s*/?(unlink|disconnect|unlink me)\s*[.!]?\s*$", re.IGNORECASE)
VOICE_COMMAND = re.compile(
    r"^\s*/?(?:voice|voice replies|voice notes|spoken replies)\s+(?P<switch>on|off)\s*[.!]?\s*$", re.IGNORECASE
)
BUTTON_MAX_AGE = dt.timedelta(days=1)
AUDIENCE_SLOT = "audience"

LINK_HELP = (
    "Hi! I'm the CRM assistant. To use me here, link your CRM account first: get a one-time code "
    '(in a chat where you are already signed in say "link", or run `crm-assistant link <your username>`, '
    "or call POST /api/v1/me/link-codes) and send the code to me. Until then I can't show or change anything."
)
PROSPECT_LINK_HINT = (
    'On our team? Link this chat to your CRM account: say "link" in a chat where you are signed in, '
    "then send me the one-time code."
)
TYPED_COMMAND = (
    "That looks like an internal command, so I didn't act on it. "
    'Please answer in words ("yes", "no") or use the buttons.'
)
CODE_IN_PRIVATE = (
    "Please send the code to me in a private chat (a direct message), not here where others can see it. "
    "If someone else could have seen it, ask for a new one."
)
STALE_BUTTON = (
    "That button belongs to an earlier question, so I ignored it. Please use the latest buttons or say it in words."
)
UNAVAILABLE = "The assistant is not available right now. Please try again in a moment."
# A rating answer after a resolved handoff: a clicked 1-5 button ("csat:4") or a typed digit.
CSAT_ANSWER = re.compile(r"^\s*(?:csat:)?([1-5])\s*(?:/\s*5|stars?)?\s*[.!]?\s*$", re.IGNORECASE)
# While waiting for an agent: "call me back (on +1 555 0100)" turns the wait into a callback task.
CALLBACK_REQUEST = re.compile(r"\b(call(?:\s+me)?\s*back|callback|ring me|phone me)\b", re.IGNORECASE)
PHONE = re.compile(r"\+?\d[\d ()./-]{6,}\d")
FALLBACK_INTENT = "nlu_fallback"
BUSY_RETRIES = (0.3, 1.0)  # pauses before trying a transaction again when the database was busy
NEGATIVE_SCORE = -0.5  # a user turn at or below this counts towards the negative streak
FURIOUS_SCORE = -0.9  # one turn this negative after a calm conversation is escalated at once


class DialogueUnavailable(Exception):
    """The dialogue engine or the action server cannot answer; `message` is a sentence for the user."""

    def __init__(self, message: str, code: str = "assistant_unavailable") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ConversationRefused(Exception):
    """The API client named a conversation that isn't theirs, or an invalid id."""

    def __init__(self, error: NotFound | Any) -> None:
        super().__init__(getattr(error, "message", str(error)))
        self.error = error


@dataclass(frozen=True)
class _Prepared:
    conversation_id: str
    actor: Actor | None
    text: str  # what Rasa receives
    team_room: int | None
    introduce_visitor: bool = False  # tell Rasa this conversation is with a prospect (first exchange)


def _phone_in(text: str) -> str:
    found = PHONE.search(text)
    return found.group(0) if found else ""


def _signals(bot_messages: list[dict[str, Any]]) -> set[str]:
    """What the dialogue told the gateway besides its words (custom payloads in domain.yml): the user asked
    for a person (`{"handoff": "requested"}`), the bot gave up understanding (`{"signal": "fallback"}`)."""
    out: set[str] = set()
    for m in bot_messages:
        custom = m.get("custom")
        if isinstance(custom, dict):
            if custom.get("handoff") == "requested":
                out.add("handoff")
            if custom.get("signal") == "fallback":
                out.add("fallback")
    return out


def _as_replies(bot_messages: list[dict[str, Any]]) -> list[tuple[str, list[tuple[str, str]], str | None]]:
    out = []
    for m in bot_messages:
        text = str(m.get("text") or "")
        buttons = [
            (str(b.get("title", "")), str(b.get("payload", "")))
            for b in m.get("buttons") or []
            if isinstance(b, dict) and b.get("payload")
        ]
        image = m.get("image") if isinstance(m.get("image"), str) else None
        if text or buttons or image:
            out.append((text, buttons, image))
    return out


class Judged(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...


class SentimentClassifier(Protocol):
    """What the Dialogue needs of a sentiment model (assistant.sentiment's service has it)."""

    async def classify(self, text: str) -> Judged: ...


class Dialogue:
    """One conversation turn from any channel to Rasa and back (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        rasa: RasaClient,
        actions: ActionServerClient,
        *,
        desk: HandoffDesk | None = None,
        sentiment: SentimentClassifier | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.rasa = rasa
        self.actions = actions
        self.desk = desk or HandoffDesk()
        self.sentiment = sentiment

    async def mood(self, text: str | None) -> tuple[str, float] | None:
        """The sentiment of a user's words (label, score), or None when there is no model or it failed."""
        if self.sentiment is None or not text or not text.strip():
            return None
        try:
            result = await self.sentiment.classify(text)
        except Exception as exc:  # sentiment must never cost the user an answer
            log.warning("sentiment failed: %s", type(exc).__name__)
            return None
        return str(result.label), float(result.score)

    async def _in_transaction(
        self, work: Callable[[UnitOfWork], T], actor: Actor | None = None, channel: str = "api"
    ) -> T:
        def run() -> T:
            with self.store.unit_of_work(actor, channel) as uow:
                return work(uow)

        for delay in BUSY_RETRIES:  # another writer held the database past its wait: nothing was kept, go again
            try:
                return await asyncio.to_thread(run)
            except Busy:
                log.warning("database busy; trying the turn's transaction again in %.1f s", delay)
                await asyncio.sleep(delay)
        try:
            return await asyncio.to_thread(run)
        except Busy as exc:
            raise DialogueUnavailable(
                "The assistant is very busy right now. Please send that again in a moment."
            ) from exc

    def conversation_id(self, sender: Sender, thread: str, user_id: int | None = None) -> str:
        """Stable per (channel, workspace, thread, person[, CRM user]); the channel prefix keeps ids apart."""
        raw = "\x1f".join([sender.channel, sender.workspace, thread, sender.external_id, str(user_id or "")])
        return f"{sender.channel}-{hashlib.sha256(raw.encode()).hexdigest()[:32]}"

    async def authenticate(self, token: str) -> Actor | None:
        """The CRM user behind an API token (the widget's logged-in mode), or None."""
        try:
            return await self._in_transaction(lambda uow: authenticate_token(uow, token))
        except AuthenticationFailed:
            return None

    async def actor_of(self, sender: Sender) -> Actor | None:
        """The CRM user a Slack or Telegram account is linked to (None when it is not linked)."""
        if sender.channel not in LINKED_CHANNELS:
            return None
        return await self._in_transaction(
            lambda uow: identities.actor_for_identity(uow, sender.channel, sender.external_id, sender.workspace)
        )

    async def wants_voice_replies(self, actor: Actor) -> bool:
        """The user's setting: answer a voice message with a voice note too ("voice off" turns it off)."""
        return await self._in_transaction(users.voice_replies, actor)

    async def first_time(self, channel: str, event_id: str) -> bool:
        """True only the first time a platform event id is seen; kept in the database, so retries
        that reach another process or arrive after a restart are dropped too."""
        return await self._in_transaction(lambda uow: conversations.first_time(uow, channel, event_id))

    async def in_thread(self, sender: Sender, thread: str) -> bool:
        """Whether this (linked) person already talks with the assistant in `thread` (a Slack thread the
        bot answered in), so a reply there needs no mention; kept in the database, so it survives restarts."""

        def check(uow: UnitOfWork) -> bool:
            actor = identities.actor_for_identity(uow, sender.channel, sender.external_id, sender.workspace)
            if actor is None:
                return False
            return conversations.has_bot_turn(uow, self.conversation_id(sender, thread, actor.user_id))

        return await self._in_transaction(check)

    async def history(self, conversation_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The conversation's last turns, oldest first, as the widget shows them."""

        def read(uow: UnitOfWork) -> list[dict[str, Any]]:
            return [
                {
                    "speaker": t.speaker,
                    # An agent's turn reads as it did live ("sam: …"), so the history says who wrote it.
                    "text": handoff.agent_said((t.data or {})["agent"], t.text)
                    if t.speaker == "agent" and (t.data or {}).get("agent")
                    else t.text,
                    "buttons": list((t.data or {}).get("buttons") or []),
                    "at": t.at.isoformat(),
                }
                for t in conversations.recent_turns(uow, conversation_id, limit)
            ]

        return await self._in_transaction(read)

    async def handle(self, inbound: Inbound, *, actor: Actor | None = None) -> Outcome:
        sender = inbound.sender
        text = inbound.text.strip() if inbound.text is not None else None
        if sender.channel in LINKED_CHANNELS:
            actor = await self.actor_of(sender)
            if actor is None and not self._prospect(inbound, text or ""):
                return await self._link_or_explain(sender, text or "", shared=inbound.shared)
            if actor is not None and text and UNLINK_COMMAND.match(text):
                await self._in_transaction(
                    lambda uow: identities.unlink_identity(uow, sender.channel, sender.external_id, sender.workspace)
                )
                return Outcome(
                    None, [Reply("Done: this chat account is no longer linked to the CRM.")], user_id=actor.user_id
                )
        if actor is not None and text and LINK_COMMAND.match(text):
            return await self._issue_code(actor)
        if actor is not None and text and (voice := VOICE_COMMAND.match(text)):
            return await self._set_voice_replies(actor, voice["switch"].lower() == "on")
        if inbound.button is None and not text:
            return Outcome(None, [Reply("Please type a message.")], status="answered")
        if text and len(text) > self.settings.max_message_chars:
            limit = self.settings.max_message_chars
            return Outcome(None, [Reply(f"That message is too long for me (over {limit:,} characters).")])

        mood = await self.mood(text) if inbound.button is None else None
        prepared = await self._in_transaction(
            lambda uow: self._prepare(uow, inbound, actor, text, mood), actor, sender.channel
        )
        if isinstance(prepared, Outcome):
            if prepared.status == "with_agent" and prepared.conversation_id:
                self.desk.publish(
                    {
                        "type": "turn",
                        "conversation_id": prepared.conversation_id,
                        "speaker": "user",
                        "text": text or "",
                        "sentiment": mood[0] if mood else None,
                    }
                )
            return prepared
        if actor is not None:
            identity = sign_identity(
                self.settings.secret(),
                actor,
                sender.channel,
                prepared.conversation_id,
                heard=inbound.text if inbound.heard else None,
            )
        else:
            identity = sign_visitor(
                self.settings.secret(), sender.external_id, sender.channel, prepared.conversation_id
            )
        try:
            if prepared.introduce_visitor:  # the responses have prospect variations (domain.yml, slot audience)
                await self.rasa.set_slot(prepared.conversation_id, AUDIENCE_SLOT, "prospect")
            bot_messages = await self.rasa.send_message(
                prepared.conversation_id, prepared.text, {IDENTITY_KEY: identity}
            )
        except UpstreamUnavailable as exc:
            log.warning("rasa unavailable: %s", exc.reason)
            raise DialogueUnavailable(
                "The assistant's dialogue engine is not available right now. Please try again shortly."
            ) from exc
        answers = _as_replies(bot_messages)
        signals = _signals(bot_messages)
        if not answers and not signals:
            await self._explain_silence(prepared.conversation_id)
        understood = await self._understood(prepared.conversation_id, prepared.text)
        if understood is not None and understood.intent == FALLBACK_INTENT and understood.active_loop is None:
            signals.add("not_understood")  # a form's free-text answer ("Maya Okafor") is not a failure

        def remember(uow: UnitOfWork) -> list[Reply]:
            if understood is not None:
                conversations.record_intent(
                    uow,
                    prepared.conversation_id,
                    understood.intent,
                    understood.confidence,
                    fallback="fallback" in signals or "not_understood" in signals,
                )
            return self._remember(uow, prepared.conversation_id, answers)

        replies = await self._in_transaction(remember)
        if actor is None and sender.channel in LINKED_CHANNELS and prepared.introduce_visitor:
            replies.append(Reply(PROSPECT_LINK_HINT))  # a colleague who has not linked yet learns how
        escalation = await self._escalate_if_needed(
            prepared.conversation_id, signals, mood, prospects.form_snapshot(understood.slots if understood else {})
        )
        if escalation is not None:
            replies.append(escalation)
        return Outcome(
            prepared.conversation_id,
            replies,
            private=actor is not None,
            room_team_ok=actor is not None and identities.may_post_publicly(actor, prepared.team_room),
            user_id=actor.user_id if actor else None,
        )

    async def _understood(self, conversation_id: str, text: str) -> TurnFacts | None:
        """The intent of the turn just answered (kept with the turn for analytics) and the slots; None if
        Rasa won't say."""
        try:
            return await self.rasa.latest_turn(conversation_id, text)
        except UpstreamUnavailable:
            return None

    async def _escalate_if_needed(
        self,
        conversation_id: str,
        signals: set[str],
        mood: tuple[str, float] | None,
        bant: dict[str, Any] | None = None,
    ) -> Reply | None:
        """The handoff rules after the bot answered: the user asked for a person; the bot failed to
        understand `handoff_fallbacks` times in a row; `handoff_negative_turns` clearly negative turns in a
        row, or one furious turn after a calm conversation; an unhappy customer of a valuable account."""
        settings = self.settings

        def decide(uow: UnitOfWork) -> tuple[Reply | None, int | None]:
            negative = mood is not None and mood[0] == "negative" and mood[1] <= NEGATIVE_SCORE
            fallbacks, negatives = handoff.count_turn_signals(
                uow, conversation_id, fallback=bool(signals & {"fallback", "not_understood"}), negative=negative
            )
            found = handoff.conversation(uow, conversation_id)
            reason = None
            if "handoff" in signals:
                reason = "requested"
            elif fallbacks >= settings.handoff_fallbacks:
                reason = "fallback"
            elif negatives >= settings.handoff_negative_turns or (
                mood is not None and mood[1] <= FURIOUS_SCORE and (found.sentiment_score or 0.0) > -0.2
            ):
                reason = "sentiment"
            elif negative and handoff.valuable_account(uow, found.account_id):
                reason = "value"
            if reason is None:
                return None, None
            escalated = handoff.escalate(uow, conversation_id, reason, bant=bant or None)
            template = ESCALATED if escalated.created else ALREADY_WAITING
            text = template.format(ticket=escalated.ticket_id, minutes=escalated.wait_minutes)
            conversations.record_turn(uow, conversation_id, "bot", text, {"buttons": [], "handoff": reason})
            return Reply(text), escalated.ticket_id if escalated.created else None

        reply, created = await self._in_transaction(decide)
        if created is not None:
            await self.desk.escalated(created, conversation_id)
        return reply

    def _prepare(
        self,
        uow: UnitOfWork,
        inbound: Inbound,
        actor: Actor | None,
        text: str | None,
        mood: tuple[str, float] | None = None,
    ) -> _Prepared | Outcome:
        sender = inbound.sender
        introduce_visitor = False
        if sender.channel in CLIENT_THREADED:
            if actor is None:
                raise AuthenticationFailed("This channel needs a signed-in user.")
            try:
                conversation_id = conversations.claim_conversation(uow, inbound.thread or None, sender.channel)
            except Exception as exc:  # NotFound / ValidationFailed: the client's id
                raise ConversationRefused(exc) from exc
        elif actor is not None:
            conversation_id = conversations.claim_conversation(
                uow, self.conversation_id(sender, inbound.thread, actor.user_id), sender.channel
            )
        else:
            conversation_id = conversations.claim_visitor_conversation(
                uow, self.conversation_id(sender, inbound.thread), sender.external_id, sender.channel
            )
            introduce_visitor = not conversations.has_bot_turn(uow, conversation_id)
        handoff.remember_address(uow, conversation_id, dict(inbound.address))
        state = handoff.state_of(uow, conversation_id)
        user_id = actor.user_id if actor else None
        if inbound.button is not None:
            clicked = conversations.clicked_button(uow, conversation_id, inbound.button, BUTTON_MAX_AGE)
            if clicked is None:
                return Outcome(conversation_id, [Reply(STALE_BUTTON)], status="stale_button", private=False)
            conversations.record_turn(uow, conversation_id, "user", clicked.title, {"button": inbound.button})
            rasa_text = clicked.payload
        else:
            assert text is not None  # noqa: S101 - checked by handle()
            conversations.record_turn(
                uow, conversation_id, "user", text, {"voice": inbound.heard} if inbound.heard else None, sentiment=mood
            )
            rasa_text = text
        if state is HandoffState.WAITING and inbound.button is None and CALLBACK_REQUEST.search(rasa_text):
            task = handoff.request_callback(uow, conversation_id, contact=_phone_in(rasa_text))
            reply = CALLBACK.format(task=task)
            conversations.record_turn(uow, conversation_id, "bot", reply, {"buttons": []})
            return Outcome(conversation_id, [Reply(reply)], private=False, user_id=user_id)
        if state in (HandoffState.WAITING, HandoffState.AGENT):  # a person answers: the bot stays silent
            return Outcome(conversation_id, [], status="with_agent", private=False, user_id=user_id)
        if state is HandoffState.CLOSED:
            rating = CSAT_ANSWER.match(rasa_text)
            if rating:
                handoff.rate(uow, conversation_id, int(rating.group(1)))
                conversations.record_turn(uow, conversation_id, "bot", RATED, {"buttons": []})
                return Outcome(conversation_id, [Reply(RATED)], private=False, user_id=user_id)
            handoff.back_to_bot(uow, conversation_id)
        if inbound.button is None:
            typed = TYPED_PAYLOAD.match(rasa_text)
            if typed and typed.group(1).lower() not in CHAT_COMMANDS:
                conversations.record_turn(uow, conversation_id, "bot", TYPED_COMMAND, {"buttons": []})
                return Outcome(conversation_id, [Reply(TYPED_COMMAND)], private=False, user_id=user_id)
            rasa_text = PAYLOAD_LIKE.sub("", rasa_text) or rasa_text.replace("/", " ").strip() or "?"
        team_room = None
        if inbound.shared and inbound.room and actor is not None:
            team_room = identities.room_team(uow, sender.channel, sender.workspace, inbound.room)
        return _Prepared(conversation_id, actor, rasa_text, team_room, actor is None and introduce_visitor)

    def _remember(
        self, uow: UnitOfWork, conversation_id: str, answers: list[tuple[str, list[tuple[str, str]], str | None]]
    ) -> list[Reply]:
        """Offer the buttons (keys replace payloads) and record the assistant's turns."""
        offered = [b for _, buttons, _ in answers for b in buttons]
        keys = iter(conversations.offer_buttons(uow, conversation_id, offered) if offered else [])
        replies = []
        for text, buttons, image in answers:
            shown = tuple(Button(title, next(keys), payload) for title, payload in buttons)
            conversations.record_turn(
                uow, conversation_id, "bot", text, {"buttons": [{"title": b.title, "key": b.key} for b in shown]}
            )
            replies.append(Reply(text, shown, image=image))
        return replies

    async def _explain_silence(self, conversation_id: str) -> None:
        """Rasa swallows a failed custom action and answers nothing: say why."""
        health = await self.actions.health()
        if not health.ok:
            log.warning("action server unavailable: %s", health.detail)
            raise DialogueUnavailable(
                "The assistant can't reach the CRM right now (its action server is down). Please try again shortly.",
                "actions_unavailable",
            )
        log.warning("rasa answered nothing to a turn in %s", conversation_id)
        raise DialogueUnavailable("The assistant could not answer that right now. Please try again shortly.")

    def _prospect(self, inbound: Inbound, text: str) -> bool:
        """An unlinked chat account talks as a prospect: in a private chat, on a platform configured for it
        (PROSPECT_CHANNELS), unless the message is a link code."""
        return (
            not inbound.shared
            and inbound.sender.channel in self.settings.prospect_channel_set
            and identities.find_code(text) is None
            and not LINK_COMMAND.match(text)
        )

    async def _link_or_explain(self, sender: Sender, text: str, *, shared: bool) -> Outcome:
        code = identities.find_code(text)
        if code is None:
            return Outcome(None, [Reply(LINK_HELP)], status="link_required")
        if shared:  # a code seen by others could be redeemed by them first: only in a private chat
            return Outcome(None, [Reply(CODE_IN_PRIVATE)], status="link_required")

        def redeem(uow: UnitOfWork) -> Actor:
            return identities.redeem_link_code(uow, code, sender.channel, sender.external_id, sender.workspace)

        try:
            actor = await self._in_transaction(redeem, channel=sender.channel)
        except (NotFound, Conflict) as exc:
            return Outcome(None, [Reply(exc.message)], status="link_required")
        log.info("linked a %s identity to user %s", sender.channel, actor.user_id)
        return Outcome(
            None,
            [
                Reply(
                    f"Linked! You're signed in as {actor.username}. Ask me about your deals, accounts, leads or "
                    'your day; say "help" for examples, or "unlink" to disconnect this chat account.'
                )
            ],
            status="linked",
            user_id=actor.user_id,
        )

    async def _set_voice_replies(self, actor: Actor, enabled: bool) -> Outcome:
        await self._in_transaction(lambda uow: users.set_voice_replies(uow, enabled), actor)
        text = (
            "Done: I'll answer your voice messages with a voice note as well as text."
            if enabled
            else "Done: I'll answer your voice messages in text only."
        )
        return Outcome(None, [Reply(text)], user_id=actor.user_id)

    async def _issue_code(self, actor: Actor) -> Outcome:
        ttl = dt.timedelta(minutes=self.settings.link_code_minutes)
        issued = await self._in_transaction(lambda uow: identities.issue_link_code(uow, ttl), actor)
        return Outcome(
            None,
            [
                Reply(
                    f"Your one-time link code is {issued.code}. Send it to the CRM assistant in Slack (a direct "
                    f"message) or Telegram (/start {issued.code}) within {self.settings.link_code_minutes} minutes; "
                    "it works once."
                )
            ],
            private=True,
            user_id=actor.user_id,
        )


async def api_turn(app: web.Application, inbound: Inbound, actor: Actor) -> Outcome:
    """A turn for the HTTP endpoints (text and voice): the Dialogue's errors as `ApiError`s."""
    try:
        return await app[DIALOGUE].handle(inbound, actor=actor)
    except ConversationRefused as exc:
        if isinstance(exc.error, ValidationFailed):
            raise ApiError(400, "invalid_body", exc.error.message, fields=exc.error.fields) from exc
        raise ApiError(404, "conversation_not_found", "No such conversation.") from exc
    except DialogueUnavailable as exc:
        raise ApiError(503, exc.code, exc.message) from exc


DIALOGUE = web.AppKey("dialogue", Dialogue)
DELIVERY = web.AppKey("delivery", Registry)
