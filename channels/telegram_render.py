"""The gateway's replies as Telegram messages: HTML with every text escaped, split at Telegram's 4096-character
limit on line boundaries, buttons as inline keyboards.

Pure functions with no network, so the rules that keep a message sendable (a name like `Under_score *Star*
<Tag>` must not break it, a long list must not be refused) are tested on their own; channels/telegram.py
sends what these build.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import CallbackQueryLimit, InlineKeyboardButtonLimit, MessageLimit

from assistant.messages import Button, Reply

TEXT_LIMIT: int = MessageLimit.MAX_TEXT_LENGTH  # 4096, counted in UTF-16 code units
CALLBACK_DATA_LIMIT: int = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA  # 64 bytes
ANSWER_LIMIT: int = CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH  # 200
BUTTON_TITLE_CHARS = 40
SHORT_TITLE_CHARS = 18  # buttons this short sit two to a row (Yes / No)
CELL_CHARS = 24
PRE_OPEN, PRE_CLOSE = "<pre>", "</pre>"
_THREAD = re.compile(r"^-?\d{1,20}:\d{0,12}$")


def escape(text: str) -> str:
    """Text made safe for parse mode HTML: `<`, `>` and `&` become entities; `_ * [` need nothing."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units (an emoji can count twice)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class Line:
    """One escaped line of a message; `pre` lines are shown monospaced inside <pre>."""

    html: str
    pre: bool = False


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One sendMessage: its HTML text and the buttons under it."""

    html: str
    buttons: tuple[Button, ...] = ()


def table_lines(rows: Sequence[Sequence[str]]) -> list[str]:
    """A short table as aligned monospace lines (cells cut at CELL_CHARS)."""
    cells = [[_cut(str(c), CELL_CHARS) for c in row] for row in rows]
    width = max((len(r) for r in cells), default=0)
    widths = [max((len(r[i]) for r in cells if i < len(r)), default=0) for i in range(width)]
    return ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in cells]


def reply_lines(reply: Reply, limit: int = TEXT_LIMIT) -> list[Line]:
    """A reply's text, table and image link as escaped lines, none longer than one message."""
    lines: list[Line] = []
    for raw in reply.text.split("\n") if reply.text else []:
        lines.extend(Line(piece) for piece in escaped_pieces(raw, limit))
    for raw in table_lines(reply.rows):
        lines.extend(Line(piece, pre=True) for piece in escaped_pieces(raw, limit - len(PRE_OPEN + PRE_CLOSE)))
    if reply.image and reply.image.startswith(("https://", "http://")):
        lines.append(Line(f'<a href="{html.escape(reply.image, quote=True)}">Open the image</a>'))
    return lines


def escaped_pieces(raw: str, budget: int) -> list[str]:
    """`raw` escaped, cut into pieces of at most `budget` UTF-16 units, never inside an entity."""
    whole = escape(raw)
    if utf16_len(whole) <= budget:
        return [whole]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in raw:
        part = escape(char)
        cost = utf16_len(part)
        if current and size + cost > budget:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(part)
        size += cost
    if current or not pieces:
        pieces.append("".join(current))
    return pieces


def pack(lines: Iterable[Line], limit: int = TEXT_LIMIT) -> list[str]:
    """Lines joined into as few messages as fit `limit`, broken only between lines; each run of `pre`
    lines is wrapped in its own <pre> in every message it lands in, so no message has an open tag."""
    messages: list[str] = []
    current: list[Line] = []
    size = 0
    for line in lines:
        cost = utf16_len(line.html) + _joint_cost(current, line)
        if current and size + cost > limit:
            messages.append(_render(current))
            current, size = [], 0
            cost = utf16_len(line.html) + _joint_cost(current, line)
        current.append(line)
        size += cost
    if current:
        messages.append(_render(current))
    return [m for m in messages if m.strip()]


def _joint_cost(current: list[Line], line: Line) -> int:
    newline = 1 if current else 0
    opens_pre = line.pre and (not current or not current[-1].pre)
    return newline + (len(PRE_OPEN + PRE_CLOSE) if opens_pre else 0)


def _render(lines: list[Line]) -> str:
    out: list[str] = []
    for n, line in enumerate(lines):
        text = line.html
        if line.pre and (n == 0 or not lines[n - 1].pre):
            text = PRE_OPEN + text
        if line.pre and (n == len(lines) - 1 or not lines[n + 1].pre):
            text += PRE_CLOSE
        out.append(text)
    return "\n".join(out)


def render_reply(reply: Reply, limit: int = TEXT_LIMIT) -> list[Outgoing]:
    """One reply as the messages to send; its buttons go under the last one."""
    texts = pack(reply_lines(reply, limit), limit)
    if not texts and reply.buttons:
        texts = ["Choose one:"]
    if not texts:
        return []
    out = [Outgoing(t) for t in texts]
    out[-1] = Outgoing(texts[-1], reply.buttons)
    return out


def callback_data(key: str, origin: str | None = None) -> str:
    """What a button sends back: the server-issued key, plus the thread it was offered in when the button is
    shown elsewhere (a group's answer moved to the private chat). Over 64 bytes, the key alone."""
    data = f"{key} {origin}" if origin else key
    return data if len(data.encode()) <= CALLBACK_DATA_LIMIT else key


def parse_callback_data(data: str) -> tuple[str, str | None]:
    """(key, origin thread or None); an origin that is not a Telegram `chat:topic` is ignored."""
    key, _, origin = data.partition(" ")
    return key, origin if _THREAD.match(origin) else None


def keyboard(buttons: Sequence[Button], origin: str | None = None) -> InlineKeyboardMarkup | None:
    """Buttons as an inline keyboard: short titles two to a row, longer ones one per row."""
    if not buttons:
        return None
    made = [
        InlineKeyboardButton(_cut(b.title, BUTTON_TITLE_CHARS) or "…", callback_data=callback_data(b.key, origin))
        for b in buttons
    ]
    per_row = 2 if all(len(b.title) <= SHORT_TITLE_CHARS for b in buttons) else 1
    return InlineKeyboardMarkup([made[i : i + per_row] for i in range(0, len(made), per_row)])


def notification_messages(title: str, body: str | None) -> list[str]:
    """A notification (reminder, hot lead, escalation) as HTML messages: the title in bold, then the body."""
    lines = [Line(f"<b>{piece}</b>") for piece in escaped_pieces(title, TEXT_LIMIT - 7)]
    for raw in (body or "").split("\n"):
        lines.extend(Line(piece) for piece in escaped_pieces(raw, TEXT_LIMIT))
    return pack(lines)


def short(text: str, limit: int = ANSWER_LIMIT) -> str:
    """A sentence cut to fit a callback answer (a toast shows at most 200 characters)."""
    return _cut(" ".join(text.split()), limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
