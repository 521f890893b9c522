"""Slack's text markup both ways: Block Kit for the gateway's replies, plain text from Slack's messages.

Pure functions, no I/O, so every rendering rule is tested without Slack. Slack's mrkdwn treats `&`, `<`
and `>` as control characters, so every piece of CRM text is escaped before it goes into a block; a
name like "A&B <Co>" or "*Bold_&_Co*" then shows as typed and can never form a link or a mention.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.messages import Reply

Block = dict[str, Any]

SECTION_LIMIT = 3000  # characters in one section's text
FALLBACK_LIMIT = 3000  # the notification/fallback `text` we send next to the blocks
MAX_BLOCKS = 50  # blocks in one message
BUTTONS_PER_BLOCK = 25  # elements in one actions block
BUTTON_TITLE_LIMIT = 75  # characters of a button's plain_text
ACTION_PREFIX = "crm_button_"
BLOCK_PREFIX = "crm"

_ANGLE = re.compile(r"<([^<>]*)>")
_SPACES = re.compile(r"[ \t]+")


def escape(text: str) -> str:
    """Text made safe for mrkdwn: Slack's three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_text(text: str, bot_user_id: str | None = None) -> str:
    """A Slack message's text as the user meant it: our own mention removed, other mentions, channel
    references and links shown by their label, and Slack's entities turned back into characters."""

    def readable(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            return "" if bot_user_id and target[1:] == bot_user_id else "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):  # <!here>, <!channel>, <!subteam^S123|@team>
            return label or "@" + target[1:].split("^")[0]
        return label or target.removeprefix("mailto:")

    text = _ANGLE.sub(readable, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.strip().splitlines()).strip()


def mentions(text: str, user_id: str) -> bool:
    """Whether a raw Slack message text mentions `user_id` (`<@U123>` or `<@U123|name>`)."""
    return f"<@{user_id}>" in text or f"<@{user_id}|" in text


@dataclass(frozen=True, slots=True)
class ButtonOrigin:
    """What a button's block remembers about where it was posted, so a click continues the same
    conversation: the thread part of the conversation key, and whether the turn came from `/crm`
    (whose answers stay ephemeral)."""

    thread_ts: str
    command: bool = False

    def block_id(self, n: int) -> str:
        return f"{BLOCK_PREFIX}:{'c' if self.command else 'm'}:{self.thread_ts}:{n}"

    @classmethod
    def parse(cls, block_id: str) -> ButtonOrigin | None:
        parts = block_id.split(":")
        if len(parts) != 4 or parts[0] != BLOCK_PREFIX or parts[1] not in ("c", "m"):
            return None
        return cls(parts[2], parts[1] == "c")


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Escaped text in pieces of at most `limit` characters, cut at line ends where possible and
    never inside an entity like `&amp;`."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            cut = limit
            amp = line.rfind("&", max(0, cut - 5), cut)
            if amp != -1 and ";" not in line[amp:cut]:
                cut = amp
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        pieces.append(current)
    return [p for p in pieces if p.strip()]


def section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def row_lines(rows: Iterable[Sequence[str]]) -> str:
    """A short table as a bulleted list, one row per line, cells separated by a middle dot."""
    return "\n".join("• " + " · ".join(escape(cell) for cell in row if cell) for row in rows if any(row))


def button_title(title: str) -> str:
    title = " ".join(title.split()) or "…"
    return title if len(title) <= BUTTON_TITLE_LIMIT else title[: BUTTON_TITLE_LIMIT - 1] + "…"


def reply_blocks(replies: Sequence[Reply], origin: ButtonOrigin) -> list[Block]:
    """The blocks of one answer: per reply its text, its rows, its image and its buttons, whose
    `value` is the server-issued key the click must send back."""
    blocks: list[Block] = []
    n_button = 0
    n_actions = 0
    for reply in replies:
        blocks.extend(section(piece) for piece in split_text(escape(reply.text)))
        if reply.rows:
            blocks.extend(section(piece) for piece in split_text(row_lines(reply.rows)))
        if reply.image and reply.image.startswith(("https://", "http://")):
            blocks.append({"type": "image", "image_url": reply.image, "alt_text": "image"})
        for start in range(0, len(reply.buttons), BUTTONS_PER_BLOCK):
            elements = []
            for button in reply.buttons[start : start + BUTTONS_PER_BLOCK]:
                n_button += 1
                elements.append(
                    {
                        "type": "button",
                        "action_id": f"{ACTION_PREFIX}{n_button}",
                        "text": {"type": "plain_text", "text": button_title(button.title), "emoji": True},
                        "value": button.key,
                    }
                )
            n_actions += 1
            blocks.append({"type": "actions", "block_id": origin.block_id(n_actions), "elements": elements})
    return blocks


def fallback_text(replies: Sequence[Reply]) -> str:
    """The message's `text` (shown in notifications and by screen readers), escaped like the blocks."""
    text = "\n".join(r.text for r in replies if r.text.strip()) or "…"
    text = escape(text)
    return text if len(text) <= FALLBACK_LIMIT else split_text(text, FALLBACK_LIMIT - 1)[0] + "…"


def batches(blocks: Sequence[Block], size: int = MAX_BLOCKS) -> list[list[Block]]:
    """Blocks cut into messages of at most `size` blocks (Slack refuses more)."""
    return [list(blocks[i : i + size]) for i in range(0, len(blocks), size)] or [[]]


def chosen(blocks: Sequence[Block], title: str) -> list[Block]:
    """A clicked message's blocks with every one of our button rows gone: "You chose: <title>" where the
    buttons were, so the same choice (or a sibling) cannot be clicked again."""
    out: list[Block] = []
    replaced = False
    for block in blocks:
        if block.get("type") == "actions" and str(block.get("block_id", "")).startswith(f"{BLOCK_PREFIX}:"):
            if not replaced:
                out.append(choice_context(title))
                replaced = True
            continue
        out.append(block)
    if not replaced:
        out.append(choice_context(title))
    return out


def choice_context(title: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": f"You chose: *{escape(title)}*"}]}


def notification_blocks(
    title: str, body: str | None, *, link: str | None = None, reference: str | None = None
) -> list[Block]:
    """A proactive message: the title in bold, the body, an optional link and the record it concerns."""
    blocks: list[Block] = [section(f"*{piece}*") for piece in split_text(escape(title), SECTION_LIMIT - 2)]
    if body:
        blocks.extend(section(piece) for piece in split_text(escape(body)))
    context: list[str] = []
    if link and link.startswith(("https://", "http://")) and not any(c in link for c in "<>|"):
        context.append(f"<{link}|Open>")
    if reference:
        context.append(escape(reference))
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return blocks[:MAX_BLOCKS]
