"""The gateway's one inbound message type and one reply type, shared by every channel.

A channel adapter (channels/slack.py, channels/telegram.py, channels/web.py, the REST API) turns a
platform event into an `Inbound`, hands it to `assistant.dialogue.Dialogue.handle`, and renders the
`Outcome`'s replies in its own way (Block Kit, inline keyboards, HTML). Actions never see a channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Channel = Literal["api", "web", "slack", "telegram", "voice"]


@dataclass(frozen=True, slots=True)
class Sender:
    """Who is talking, as the platform names them."""

    channel: Channel
    external_id: str  # Slack user id, Telegram user id, web visitor id, or the CRM user id for api
    workspace: str = ""  # Slack team id; "" elsewhere
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    kind: str  # "audio", "image", "file"
    url: str = ""
    content_type: str = ""
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One user turn from any channel.

    `thread` is the platform's conversation key (Slack team:channel:thread, Telegram chat:topic,
    the widget session); the gateway turns it into a conversation id that is stable per thread and
    person and never collides across channels. Exactly one of `text` and `button` is set: `button`
    is the opaque key of a button the gateway offered (a click), never a payload the user typed.
    """

    sender: Sender
    thread: str
    text: str | None = None
    button: str | None = None
    attachments: tuple[Attachment, ...] = ()
    room: str = ""  # the shared room the message was posted in ("" for a private chat / DM)
    shared: bool = False  # other people can read what is posted in `room`
    heard: dict[str, object] | None = None  # `text` is a speech transcript: its confidence and engine
    # How the channel reaches this user later (an agent's reply after a handoff): e.g. Telegram's chat id,
    # Slack's channel and thread, the widget's session. Only JSON-safe values.
    address: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Button:
    title: str
    key: str  # server-issued; send it back as `Inbound.button`
    payload: str = ""  # what the key stands for (the REST API shows it; platforms never need it)


@dataclass(frozen=True, slots=True)
class Reply:
    """One assistant message: text, optional buttons, an optional short table, image or audio."""

    text: str
    buttons: tuple[Button, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    image: str | None = None
    audio: bytes | None = None


Status = Literal["answered", "link_required", "linked", "duplicate", "stale_button", "rate_limited", "with_agent"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the gateway answered. `private` replies carry CRM data: an adapter must not post them
    where people other than the speaker can read them (unless `room_team_ok`)."""

    conversation_id: str | None
    replies: list[Reply] = field(default_factory=list)
    status: Status = "answered"
    private: bool = False
    room_team_ok: bool = False  # the room is a team room the speaker belongs to: post publicly
    user_id: int | None = None
