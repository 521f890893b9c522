"""Linking chat identities (a Slack user in a workspace, a Telegram user) to CRM users, and the
shared rooms an admin marks as a team's room.

A user asks for a one-time code (CLI, REST API, or the assistant in a channel already linked) and
sends it to the bot; the code is single-use, expires, and only its digest is stored. Until a chat
identity is linked it gets no CRM data at all. Unlinking takes effect on the next message.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm_backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from crm_backend.models.base import utcnow
from crm_backend.models.channels import LinkCode, TeamRoom
from crm_backend.models.users import ChannelIdentity, Role, Team, User
from crm_backend.services.auth import actor_for
from crm_backend.store import Actor, UnitOfWork

# No 0/O, 1/I/L: a code is read off one screen and typed into another.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_PATTERN = re.compile(r"\b([A-HJKMNP-Z2-9]{4})-?([A-HJKMNP-Z2-9]{4})\b", re.IGNORECASE)
LINKABLE_CHANNELS = frozenset({"slack", "telegram"})


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkedIdentity:
    id: int
    channel: str
    external_id: str
    workspace_id: str
    linked_at: datetime


def _is(channel: str, external_id: str, workspace_id: str) -> list[Any]:
    """The one way a chat identity is matched: platform, its user id, its workspace."""
    return [
        ChannelIdentity.channel == channel,
        ChannelIdentity.external_id == external_id,
        ChannelIdentity.workspace_id == workspace_id,
    ]


def _digest(code: str) -> str:
    return hashlib.sha256(code.upper().replace("-", "").encode()).hexdigest()


def find_code(text: str) -> str | None:
    """A link code in what the user sent ("ABCD-EFGH", "/start abcdefgh"), normalised."""
    match = CODE_PATTERN.search(text or "")
    return f"{match.group(1)}-{match.group(2)}".upper() if match else None


def issue_link_code(uow: UnitOfWork, ttl: timedelta, user_id: int | None = None) -> IssuedCode:
    """A new one-time code for the acting user (an admin may issue one for `user_id`)."""
    actor = uow.require_actor()
    target = actor.user_id if user_id is None else user_id
    if target != actor.user_id and actor.role != Role.ADMIN:
        raise PermissionDenied("Only an admin can issue a link code for someone else.")
    user = uow.session.get(User, target)
    if user is None or not user.is_active:
        raise NotFound("No such active user.")
    code = "".join(secrets.choice(ALPHABET) for _ in range(8))
    code = f"{code[:4]}-{code[4:]}"
    expires_at = utcnow() + ttl
    uow.session.add(LinkCode(user_id=target, code_hash=_digest(code), expires_at=expires_at))
    uow.session.flush()
    return IssuedCode(code, expires_at)


def redeem_link_code(uow: UnitOfWork, code: str, channel: str, external_id: str, workspace_id: str = "") -> Actor:
    """Link the chat identity to the code's user; the code then stops working. Returns that user.

    Unknown, used and expired codes all fail the same way, so codes cannot be probed.
    """
    if channel not in LINKABLE_CHANNELS:
        raise ValidationFailed({"channel": f"one of {', '.join(sorted(LINKABLE_CHANNELS))}"})
    row = uow.session.scalar(select(LinkCode).where(LinkCode.code_hash == _digest(code)).with_for_update())
    now = utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise NotFound("That code is not valid (codes work once and expire). Ask for a new one.")
    user = uow.session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise NotFound("That code is not valid (codes work once and expire). Ask for a new one.")
    existing = uow.session.scalar(select(ChannelIdentity).where(*_is(channel, external_id, workspace_id)))
    row.used_at = now
    if existing is not None and existing.user_id != user.id:
        raise Conflict("This chat account is already linked to another CRM user. Unlink it there first.")
    if existing is None:
        uow.session.add(
            ChannelIdentity(user_id=user.id, channel=channel, external_id=external_id, workspace_id=workspace_id)
        )
        try:
            with uow.session.begin_nested():
                uow.session.flush()
        except IntegrityError as exc:  # the same identity linked by a concurrent message
            raise Conflict("This chat account was linked a moment ago; send your message again.") from exc
    return actor_for(user)


def actor_for_identity(uow: UnitOfWork, channel: str, external_id: str, workspace_id: str = "") -> Actor | None:
    """The active CRM user a chat identity is linked to, or None."""
    user = uow.session.scalar(
        select(User)
        .join(ChannelIdentity, ChannelIdentity.user_id == User.id)
        .where(*_is(channel, external_id, workspace_id), User.is_active.is_(True))
    )
    return actor_for(user) if user is not None else None


def _view(identity: ChannelIdentity) -> LinkedIdentity:
    return LinkedIdentity(
        identity.id, identity.channel, identity.external_id, identity.workspace_id, identity.created_at
    )


def my_identities(uow: UnitOfWork) -> list[LinkedIdentity]:
    actor = uow.require_actor()
    rows = uow.session.scalars(
        select(ChannelIdentity).where(ChannelIdentity.user_id == actor.user_id).order_by(ChannelIdentity.id)
    )
    return [_view(i) for i in rows]


def unlink(uow: UnitOfWork, identity_id: int) -> LinkedIdentity:
    """Remove a linked identity: the user's own, or anyone's for an admin."""
    actor = uow.require_actor()
    identity = uow.session.get(ChannelIdentity, identity_id)
    if identity is None or (identity.user_id != actor.user_id and actor.role != Role.ADMIN):
        raise NotFound("No such linked chat account.")
    view = _view(identity)
    uow.session.delete(identity)
    uow.session.flush()
    return view


def unlink_identity(uow: UnitOfWork, channel: str, external_id: str, workspace_id: str = "") -> bool:
    """The chat identity unlinks itself ("unlink" sent to the bot); False when it was not linked."""
    identity = uow.session.scalar(select(ChannelIdentity).where(*_is(channel, external_id, workspace_id)))
    if identity is None:
        return False
    uow.session.delete(identity)
    uow.session.flush()
    return True


@dataclass(frozen=True)
class TeamRoomView:
    id: int
    channel: str
    workspace_id: str
    room_id: str
    team_id: int
    team: str


def mark_team_room(uow: UnitOfWork, channel: str, workspace_id: str, room_id: str, team_id: int) -> TeamRoomView:
    """Admin only: members of `team_id` may all see that team's records, so replies there are public."""
    actor = uow.require_actor()
    if actor.role != Role.ADMIN:
        raise PermissionDenied("Only an admin can mark a team room.")
    errors = {}
    if channel not in LINKABLE_CHANNELS:
        errors["channel"] = f"one of {', '.join(sorted(LINKABLE_CHANNELS))}"
    if not room_id or len(room_id) > 100:
        errors["room_id"] = "the platform's channel or chat id (1-100 characters)"
    if len(workspace_id) > 100:
        errors["workspace_id"] = "at most 100 characters"
    team = uow.session.get(Team, team_id)
    if team is None:
        errors["team_id"] = "no such team"
    if errors or team is None:
        raise ValidationFailed(errors)
    room = TeamRoom(
        channel=channel, workspace_id=workspace_id, room_id=room_id, team_id=team_id, created_by=actor.user_id
    )
    uow.session.add(room)
    try:
        with uow.session.begin_nested():
            uow.session.flush()
    except IntegrityError as exc:
        raise Conflict("That room is already marked as a team room.") from exc
    return TeamRoomView(room.id, channel, workspace_id, room_id, team_id, team.name)


def unmark_team_room(uow: UnitOfWork, room_id: int) -> None:
    actor = uow.require_actor()
    if actor.role != Role.ADMIN:
        raise PermissionDenied("Only an admin can change team rooms.")
    room = uow.session.get(TeamRoom, room_id)
    if room is None:
        raise NotFound("No such team room.")
    uow.session.delete(room)
    uow.session.flush()


def team_rooms(uow: UnitOfWork) -> list[TeamRoomView]:
    uow.require_actor()
    rows = uow.session.execute(
        select(TeamRoom, Team.name).join(Team, Team.id == TeamRoom.team_id).order_by(TeamRoom.id)
    )
    return [TeamRoomView(r.id, r.channel, r.workspace_id, r.room_id, r.team_id, name) for r, name in rows]


def room_team(uow: UnitOfWork, channel: str, workspace_id: str, room_id: str) -> int | None:
    """The team a shared room belongs to, if an admin marked it."""
    return uow.session.scalar(
        select(TeamRoom.team_id).where(
            TeamRoom.channel == channel, TeamRoom.workspace_id == workspace_id, TeamRoom.room_id == room_id
        )
    )


def may_post_publicly(actor: Actor, room_team_id: int | None) -> bool:
    """Replies for `actor` may be posted for the whole room only in their own team's room, and only for
    reps, whose view is within their team; managers (territories), agents and admins see beyond it."""
    return room_team_id is not None and actor.team_id == room_team_id and actor.role == Role.REP
