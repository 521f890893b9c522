"""The Slack channel: Events API, the `/crm` slash command and button clicks, inside the gateway's aiohttp app.

Slack's requests go through slack-bolt, whose request verification answers a forged signature or a
timestamp older than five minutes with 401 before anything else runs. Bolt acknowledges first and runs
our listener after (`process_before_response=False`), so Slack gets its answer within its 3 seconds
however long Rasa takes. Each event, command and click is passed through the Dialogue's persisted
`first_time()` check, so Slack's retries (`X-Slack-Retry-Num`, same `event_id`) are answered once.
Messages from bots, our own included, and edits/joins/deletions are ignored.

Where an answer goes: in a DM, as a message; in a shared channel, in the thread, except that answers
carrying CRM data (and linking instructions) go only to the speaker (`chat.postEphemeral`) unless an
admin marked the channel as the speaker's team room; `/crm` answers stay ephemeral unless it is a
team room. Socket Mode (no public URL) is an option: `SLACK_SOCKET_MODE=true` plus `SLACK_APP_TOKEN`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from assistant import console as agent_desk
from assistant.dialogue import DELIVERY, DIALOGUE, DialogueUnavailable
from assistant.handoff import HANDOFF
from assistant.messages import Inbound, Outcome, Reply, Sender
from assistant.settings import Settings
from assistant.voice_api import VOICE, voice_note
from channels import ChannelMisconfigured
from channels.slack_blocks import (
    ACTION_PREFIX,
    ButtonOrigin,
    batches,
    choice_context,
    chosen,
    escape,
    fallback_text,
    mentions,
    notification_blocks,
    plain_text,
    reply_blocks,
)
from voice.audio import encode_voice_note

if TYPE_CHECKING:
    from crm_backend.scheduler.delivery import NotificationView

log = logging.getLogger(__name__)

CHANNEL: Final = "slack"
ROUTES = ("/slack/events", "/slack/interactions", "/slack/commands")
# Message subtypes that are a person saying something; edits, deletions, joins and the like are not.
SPOKEN_SUBTYPES = frozenset({"thread_broadcast", "file_share"})
# Answers that concern only the speaker: never posted where others can read them.
QUIET_STATUSES = frozenset({"link_required", "linked", "stale_button", "rate_limited"})
UNEXPECTED = "Sorry, something went wrong on my side and nothing was changed. Please try again."
BARE_MENTION = "help"  # what "@crm" alone asks for

Visibility = Literal["public", "ephemeral"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where the answer to one turn goes: the channel and thread it came from, the person who spoke,
    whether others can read that channel, and for `/crm` the response URL Slack gave us."""

    channel: str
    user: str
    thread_ts: str = ""  # the thread to answer in ("" = top level)
    shared: bool = False
    command: bool = False
    response_url: str | None = None


def visibility(outcome: Outcome, target: Target) -> Visibility:
    """Whether an answer may be posted for everyone in the channel or only shown to the speaker."""
    if not target.shared and not target.command:
        return "public"  # the speaker's DM with the bot
    if outcome.status in QUIET_STATUSES:
        return "ephemeral"
    if outcome.room_team_ok:
        return "public"
    if target.command or outcome.private:
        return "ephemeral"
    return "public"


def is_person_speaking(event: dict[str, Any], bot_user_id: str) -> bool:
    """A message a person wrote: not a bot's (ours included), not an edit, deletion or join."""
    if event.get("bot_id") or event.get("bot_profile") or event.get("hidden"):
        return False
    subtype = event.get("subtype")
    if subtype is not None and subtype not in SPOKEN_SUBTYPES:
        return False
    user = event.get("user")
    return bool(user) and user != bot_user_id


def is_direct(channel: str, channel_type: str | None = None) -> bool:
    """A one-to-one conversation (Slack's DM channel ids start with D)."""
    return channel_type == "im" if channel_type else channel.startswith("D")


def audio_clip(event: dict[str, Any]) -> dict[str, Any] | None:
    """The audio file a message shares (a Slack audio clip, or an uploaded recording), if any."""
    for file in event.get("files") or []:
        if not isinstance(file, dict):
            continue
        mimetype = str(file.get("mimetype", ""))
        if mimetype.startswith("audio/") or (file.get("subtype") == "slack_audio" and mimetype.startswith("video/")):
            return file
    return None


def client_timeout(settings: Settings) -> int:
    """slack-sdk takes whole seconds."""
    return max(1, math.ceil(settings.channel_timeout_seconds))


class SlackDeliverer:
    """Sends a notification (a due reminder, a hot lead, an escalation) to the user's Slack DM."""

    channel = CHANNEL

    def __init__(self, client: AsyncWebClient, timeout_seconds: float) -> None:
        self._client = client
        self.timeout_seconds = timeout_seconds

    async def deliver(self, notification: NotificationView) -> None:
        """Post it; raise on any failure so the scheduler retries with backoff."""
        if not notification.address:
            raise ValueError("the notification has no Slack user id to go to")
        url = notification.data.get("url")
        reference = (
            f"{notification.entity_type.replace('_', ' ')} #{notification.entity_id}"
            if notification.entity_type and notification.entity_id is not None
            else None
        )
        blocks = notification_blocks(
            notification.title, notification.body, link=url if isinstance(url, str) else None, reference=reference
        )
        await asyncio.wait_for(
            self._client.chat_postMessage(
                channel=notification.address,  # a user id: Slack posts into the app's DM with them
                text=escape(notification.title),
                blocks=blocks,
                unfurl_links=False,
                metadata={"event_type": "crm_notification", "event_payload": {"notification_id": notification.id}},
            ),
            self.timeout_seconds,
        )


class SlackChannel:
    """The Bolt app, its listeners and the way answers are posted back."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
        if not secret.strip():
            raise ChannelMisconfigured(
                "The Slack channel needs SLACK_SIGNING_SECRET (the app's Basic Information page) to verify requests."
            )
        if not token.strip():
            raise ChannelMisconfigured("The Slack channel needs SLACK_BOT_TOKEN (xoxb-…, the app's OAuth page).")
        self._app = app
        self._timeout = client_timeout(settings)
        self._app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
        self._socket_mode = settings.slack_socket_mode
        if self._socket_mode and not self._app_token.strip():
            raise ChannelMisconfigured("Slack Socket Mode needs SLACK_APP_TOKEN (xapp-…, with connections:write).")
        self.client = AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=self._timeout)
        self._file_hosts = {"files.slack.com", urlsplit(settings.slack_api_url).hostname or "slack.com"}
        self._support = settings.slack_support_channel
        self.bolt = AsyncApp(
            name="crm-assistant",
            signing_secret=secret,
            client=self.client,
            process_before_response=False,
            logger=logging.getLogger("channels.slack.bolt"),
        )
        self.socket: AsyncSocketModeHandler | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._register()

    # -- wiring ----------------------------------------------------------------------------------

    def _register(self) -> None:
        self.bolt.event("app_mention")(self.on_mention)
        self.bolt.event("message")(self.on_message)
        self.bolt.command("/crm")(self.on_command)
        self.bolt.action(re.compile(rf"^{ACTION_PREFIX}\d+$"))(self.on_button)
        # Anything else Slack sends is acknowledged and dropped (Bolt would answer 404 and Slack retry).
        self.bolt.event(re.compile(".*"))(self._ignore)
        self.bolt.action(re.compile(".*"))(self._ack_only)
        self.bolt.view(re.compile(".*"))(self._ack_only)
        self.bolt.shortcut(re.compile(".*"))(self._ack_only)

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """Every Slack HTTP request: Bolt verifies the signature (401 otherwise) and dispatches."""
        bolt_response = await self.bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    def socket_mode_handler(self) -> AsyncSocketModeHandler:
        """Socket Mode over aiohttp: events arrive over a websocket the app opens (no public URL)."""
        return AsyncSocketModeHandler(self.bolt, self._app_token)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """For `app.cleanup_ctx`: up after the Dialogue exists, down before the store closes."""
        await self.start(app)
        yield
        await self.stop(app)

    async def start(self, app: web.Application) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        self.client.session = self._http  # Bolt's per-request clients share it too
        app[DELIVERY].register(SlackDeliverer(self.client, float(self._timeout)))
        if self._socket_mode:
            self.socket = self.socket_mode_handler()
            await self.socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("slack: connected in Socket Mode")

    async def stop(self, app: web.Application) -> None:
        if self.socket is not None:
            await self.socket.close_async()  # type: ignore[no-untyped-call]
            self.socket = None
        if self._tasks:  # let answers in flight finish, briefly
            _done, pending = await asyncio.wait(set(self._tasks), timeout=self._timeout)
            for task in pending:
                task.cancel()
        registry = app.get(DELIVERY)
        if registry is not None:
            registry.unregister(CHANNEL)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _track(self) -> None:
        """Keep a reference to the task Bolt started for this listener (so it is not collected mid-turn
        and shutdown can wait for it)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- listeners -------------------------------------------------------------------------------

    async def _ignore(self) -> None:
        return None

    async def _ack_only(self, ack: AsyncAck) -> None:
        await ack()

    async def on_message(self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        """A DM to the bot, or a reply in a channel thread where the speaker is talking with the bot."""
        self._track()
        bot = context.bot_user_id or ""
        if not is_person_speaking(event, bot):
            return
        channel = str(event.get("channel", ""))
        direct = is_direct(channel, event.get("channel_type"))
        raw = str(event.get("text") or "")
        thread_ts = str(event.get("thread_ts") or "")
        if self._support and channel == self._support and thread_ts and thread_ts != event.get("ts"):
            if await self._first_time(body.get("event_id")):
                await self._agent_says(body, event, plain_text(raw, bot))
            return
        clip = audio_clip(event)
        if not direct:
            if mentions(raw, bot) and clip is None:
                return  # the app_mention event for the same message answers it
            if not thread_ts or thread_ts == event.get("ts"):
                return  # channel chatter, not addressed to us
        team = str(body.get("team_id") or event.get("team") or "")
        user = str(event["user"])
        inbound = Inbound(
            sender=Sender(CHANNEL, user, team),
            thread=f"{team}:{channel}:{thread_ts}",
            text=None if clip is not None else plain_text(raw, bot) or BARE_MENTION,
            room="" if direct else channel,
            shared=not direct,
            address={"channel": channel, "thread_ts": thread_ts, "user": user, "shared": not direct},
        )
        if not direct and not await self._talking_in_thread(inbound):
            return
        if not await self._first_time(body.get("event_id")):
            return
        target = Target(channel, user, thread_ts, shared=not direct)
        if clip is not None:
            await self._voice_turn(inbound, target, clip)
        else:
            await self._turn(inbound, target)

    # -- the support channel: handoffs announced, agents answering in the ticket's thread --------------

    async def announce(self, ticket_id: int) -> None:
        """A new handoff in the support channel; its thread becomes the ticket's agent thread."""
        assert self._support  # noqa: S101 - registered only when configured
        about = await agent_desk.announcement(self._app, ticket_id)
        text = (
            f"*New handoff #{about['ticket_id']}* ({about['priority']}, {about['channel']}): "
            f"{escape(about['subject'])}\n>{escape(about['last_message'] or '(no message)')}\n"
            "Reply in this thread to answer the customer (you take the conversation), or use the agent console."
        )
        posted = await self.client.chat_postMessage(channel=self._support, text=text, unfurl_links=False)
        await agent_desk.remember_thread(self._app, ticket_id, f"{self._support}:{posted['ts']}")

    async def _agent_says(self, body: dict[str, Any], event: dict[str, Any], text: str) -> None:
        """A reply in a ticket's thread: from a linked agent it goes to the customer (taking the ticket
        first if nobody has); anyone else is told why not, only to them."""
        thread_ts = str(event.get("thread_ts") or "")
        target = Target(self._support or "", str(event.get("user") or ""), thread_ts, shared=True)
        ticket_id = await agent_desk.ticket_in_thread(self._app, f"{target.channel}:{thread_ts}")
        if ticket_id is None or not text:
            return
        team = str(body.get("team_id") or event.get("team") or "")
        actor = await self._app[DIALOGUE].actor_of(Sender(CHANNEL, target.user, team))
        if actor is None:
            await self._tell(target, "Link your Slack account to the CRM first (send me a link code in a DM).")
            return
        refused = await agent_desk.answer_from_chat(self._app, actor, ticket_id, text)
        if refused:
            await self._tell(target, refused)

    async def _voice_turn(self, inbound: Inbound, target: Target, clip: dict[str, Any]) -> None:
        """An audio clip: downloaded with the bot token (from Slack's file host only), transcribed, shown
        back ("I heard: ..."), answered like typed text; spoken back as a clip where the answer is public."""
        if await self._app[DIALOGUE].actor_of(inbound.sender) is None:
            await self._turn(replace(inbound, text=""), target)  # the linking steps; the audio is never fetched
            return
        limit = self._app[VOICE].settings.voice_max_bytes
        if int(clip.get("size") or 0) > limit:
            await self._tell(target, f"That recording is too long for me (the limit is {limit / 1024 / 1024:g} MB).")
            return
        try:
            audio = await self._download(str(clip.get("url_private_download") or clip.get("url_private") or ""), limit)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("slack: could not fetch an audio clip: %s", slack_error(exc))
            await self._tell(target, "I couldn't fetch that recording from Slack. Please try again, or type it.")
            return
        try:
            answer = await voice_note(self._app, inbound, audio, str(clip.get("mimetype") or ""))
        except DialogueUnavailable as exc:
            await self._tell(target, exc.message)
            return
        except Exception:
            log.exception("slack: a voice turn failed")
            await self._tell(target, UNEXPECTED)
            return
        await self._deliver(answer.outcome, target)
        if answer.speech and visibility(answer.outcome, target) == "public":
            await self._upload_speech(answer.speech, target)

    async def _download(self, url: str, limit: int) -> bytes:
        """A file Slack holds, fetched with the bot token; only from Slack's file host (or the configured
        API host, for a self-hosted gateway in front of Slack), so the token never goes anywhere else."""
        host = urlsplit(url).hostname or ""
        if urlsplit(url).scheme not in ("https", "http") or host not in self._file_hosts:
            raise ValueError(f"not a Slack file URL ({host or 'no host'})")
        assert self._http is not None  # noqa: S101 - set in start()
        headers = {"Authorization": f"Bearer {self.client.token}"}
        async with self._http.get(url, headers=headers, allow_redirects=False) as resp:
            resp.raise_for_status()
            data = await resp.content.read(limit + 1)
        if len(data) > limit:
            raise ValueError("the file is over the size limit")
        return data

    async def _upload_speech(self, speech: bytes, target: Target) -> None:
        """The spoken answer as an OGG/Opus file in the same conversation (files.uploadV2)."""
        try:
            note = await asyncio.to_thread(encode_voice_note, speech)
            await self.client.files_upload_v2(
                channel=target.channel,
                thread_ts=target.thread_ts or None,
                content=note,
                filename="reply.ogg",
                title="Spoken answer",
            )
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack: uploading the spoken answer failed: %s", slack_error(exc))
        except Exception as exc:  # an encoder failure must not lose the (already posted) text answer
            log.warning("slack: could not encode the spoken answer: %s", exc)

    async def on_mention(self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        """`@crm …` in a channel: answered in the message's thread, which becomes the conversation."""
        self._track()
        bot = context.bot_user_id or ""
        channel = str(event.get("channel", ""))
        if not is_person_speaking(event, bot) or is_direct(channel, event.get("channel_type")):
            return  # in a DM the message event carries it
        if not await self._first_time(body.get("event_id")):
            return
        team = str(body.get("team_id") or event.get("team") or "")
        user = str(event["user"])
        thread_ts = str(event.get("thread_ts") or event.get("ts") or "")
        inbound = Inbound(
            sender=Sender(CHANNEL, user, team),
            thread=f"{team}:{channel}:{thread_ts}",
            text=plain_text(str(event.get("text") or ""), bot) or BARE_MENTION,
            room=channel,
            shared=True,
            address={"channel": channel, "thread_ts": thread_ts, "user": user, "shared": True},
        )
        await self._turn(inbound, Target(channel, user, thread_ts, shared=True))

    async def on_command(self, ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
        """`/crm <request>` anywhere: answered through Slack's response URL, only to the speaker unless the
        channel is the speaker's team room."""
        await ack()
        self._track()
        trigger = command.get("trigger_id")
        if not await self._first_time(f"command:{trigger}" if trigger else None):
            return
        channel = str(command.get("channel_id", ""))
        team = str(command.get("team_id", ""))
        user = str(command.get("user_id", ""))
        direct = is_direct(channel) or command.get("channel_name") == "directmessage"
        inbound = Inbound(
            sender=Sender(CHANNEL, user, team),
            thread=f"{team}:{channel}:",
            text=plain_text(str(command.get("text") or ""), context.bot_user_id) or BARE_MENTION,
            room="" if direct else channel,
            shared=not direct,
        )
        url = command.get("response_url")
        response_url = url if isinstance(url, str) else None
        await self._turn(inbound, Target(channel, user, "", shared=not direct, command=True, response_url=response_url))

    async def on_button(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A click on one of our buttons: its key goes to the Dialogue, which honours it only if it was
        offered in this conversation and is still current; the buttons are then replaced by the choice."""
        await ack()
        self._track()
        origin = ButtonOrigin.parse(str(action.get("block_id", "")))
        key = action.get("value")
        if origin is None or not isinstance(key, str) or not key:
            return
        click_id = body.get("trigger_id") or action.get("action_ts")
        if not await self._first_time(f"action:{click_id}" if click_id else None):
            return
        user_info = body.get("user") or {}
        container = body.get("container") or {}
        user = str(user_info.get("id", ""))
        team = str((body.get("team") or {}).get("id") or user_info.get("team_id") or "")
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        direct = is_direct(channel)
        inbound = Inbound(
            sender=Sender(CHANNEL, user, team),
            thread=f"{team}:{channel}:{origin.thread_ts}",
            button=key,
            room="" if direct else channel,
            shared=not direct,
        )
        url = body.get("response_url")
        target = Target(
            channel,
            user,
            origin.thread_ts,
            shared=not direct,
            command=origin.command,
            response_url=url if isinstance(url, str) else None,
        )
        outcome = await self._answer(inbound, target)
        if outcome is None:
            return
        if outcome.status == "answered":
            title = str(((action.get("text") or {}).get("text")) or "")
            await self._retire_buttons(body, container, title)
        await self._deliver(outcome, target)

    # -- turns -----------------------------------------------------------------------------------

    async def _first_time(self, event_id: object) -> bool:
        """True unless this event id was seen before (kept in the database, so retries across restarts
        and across gateway processes are answered once). An event without an id cannot be deduplicated."""
        if not isinstance(event_id, str) or not event_id:
            return True
        return await self._app[DIALOGUE].first_time(CHANNEL, event_id)

    async def _talking_in_thread(self, inbound: Inbound) -> bool:
        """Whether the bot answered this speaker in this thread (kept in the database, so it survives a
        restart): a reply there without a mention continues that conversation. Anyone else mentions the bot."""
        return await self._app[DIALOGUE].in_thread(inbound.sender, inbound.thread)

    async def _turn(self, inbound: Inbound, target: Target) -> None:
        outcome = await self._answer(inbound, target)
        if outcome is not None:
            await self._deliver(outcome, target)

    async def _answer(self, inbound: Inbound, target: Target) -> Outcome | None:
        """The Dialogue's answer, or a plain sentence to the speaker when it cannot answer."""
        try:
            return await self._app[DIALOGUE].handle(inbound)
        except DialogueUnavailable as exc:
            log.warning("slack: dialogue unavailable: %s", exc.message)
            await self._tell(target, exc.message)
        except Exception:
            log.exception("slack: a turn failed")  # the traceback stays in the server log
            await self._tell(target, UNEXPECTED)
        return None

    async def _deliver(self, outcome: Outcome, target: Target) -> None:
        if outcome.status == "duplicate" or not outcome.replies:
            return
        how = visibility(outcome, target)
        blocks = reply_blocks(outcome.replies, ButtonOrigin(target.thread_ts, target.command))
        text = fallback_text(outcome.replies)
        for batch in batches(blocks):
            await self._post(target, how, text, batch)

    async def push(self, address: dict[str, Any], replies: list[Reply]) -> bool:
        """Replies outside a turn (an agent's words after a handoff), in the conversation's DM or thread;
        in a shared channel only the asker sees them (ephemeral)."""
        target = Target(
            str(address["channel"]),
            str(address.get("user") or ""),
            str(address.get("thread_ts") or ""),
            shared=bool(address.get("shared")),
        )
        how: Visibility = "ephemeral" if target.shared else "public"
        blocks = reply_blocks(replies, ButtonOrigin(target.thread_ts, False))
        for batch in batches(blocks):
            await self._post(target, how, fallback_text(replies), batch)
        return True

    async def _tell(self, target: Target, sentence: str) -> None:
        """A plain sentence (no CRM data), shown only to the speaker when others could read it."""
        how: Visibility = "ephemeral" if target.shared or target.command else "public"
        await self._post(target, how, escape(sentence), [])

    async def _post(self, target: Target, how: Visibility, text: str, blocks: list[dict[str, Any]]) -> None:
        """One Slack message; failures are logged (by error code, never with the token) and dropped."""
        thread_ts = target.thread_ts or None
        try:
            if target.command and target.response_url:
                await self._respond(
                    target.response_url,
                    {
                        "response_type": "in_channel" if how == "public" else "ephemeral",
                        "replace_original": False,
                        "text": text,
                        **({"blocks": blocks} if blocks else {}),
                    },
                )
            elif how == "ephemeral":
                await self.client.chat_postEphemeral(
                    channel=target.channel, user=target.user, text=text, blocks=blocks or None, thread_ts=thread_ts
                )
            else:
                await self.client.chat_postMessage(
                    channel=target.channel, text=text, blocks=blocks or None, thread_ts=thread_ts, unfurl_links=False
                )
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack: posting the answer failed: %s", slack_error(exc))

    async def _respond(self, url: str, body: dict[str, Any]) -> None:
        webhook = AsyncWebhookClient(url, timeout=self._timeout, session=self._http)
        response = await webhook.send_dict(body)
        if response.status_code != 200:
            log.warning("slack: response_url answered %s", response.status_code)

    async def _retire_buttons(self, body: dict[str, Any], container: dict[str, Any], title: str) -> None:
        """Replace the clicked message's buttons with "You chose: …" so they cannot be used again."""
        try:
            if container.get("is_ephemeral"):
                url = body.get("response_url")
                if isinstance(url, str):
                    replacement = {"replace_original": True, "text": escape(title), "blocks": [choice_context(title)]}
                    await self._respond(url, replacement)
                return
            message = body.get("message") or {}
            channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
            ts = container.get("message_ts") or message.get("ts")
            if channel and ts:
                await self.client.chat_update(
                    channel=str(channel),
                    ts=str(ts),
                    text=str(message.get("text") or escape(title)),
                    blocks=chosen(message.get("blocks") or [], title),
                )
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack: updating the clicked message failed: %s", slack_error(exc))


def slack_error(exc: BaseException) -> str:
    """A failure named without its request (which carries the token in its headers)."""
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "get"):
        try:
            return f"{type(exc).__name__}: {response.get('error')}"
        except Exception:  # noqa: S110 - a malformed response still gets its type logged
            pass
    return type(exc).__name__


SLACK = web.AppKey("slack", SlackChannel)


def mount(app: web.Application, settings: Settings) -> None:
    """Add the Slack routes and start-up to the gateway app; raise ChannelMisconfigured without secrets."""
    channel = SlackChannel(app, settings)
    app[SLACK] = channel
    for path in ROUTES:
        app.router.add_post(path, channel.handle_http)
    if HANDOFF in app:
        app[HANDOFF].register(CHANNEL, channel.push)
        if settings.slack_support_channel:
            app[HANDOFF].on_escalation(channel.announce)
    app.cleanup_ctx.append(channel.lifetime)
