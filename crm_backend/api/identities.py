"""The API's chat-account operations: one-time link codes, linked identities, and team rooms."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from crm_backend.api.http import json_response as respond
from crm_backend.api.http import read_object, record_id
from crm_backend.api.operations import operation
from crm_backend.api.routes import run
from crm_backend.services import identities
from crm_backend.services.validation import validated

TAG = "channels"


class LinkCodeRequest(BaseModel):
    """Ask for a one-time code; an admin may ask for another user's."""

    model_config = ConfigDict(extra="forbid")

    minutes: int = Field(default=15, ge=1, le=24 * 60, description="How long the code works")
    user_id: int | None = Field(default=None, description="Admins only: issue the code for this user")


class TeamRoomRequest(BaseModel):
    """Mark a Slack channel or Telegram group as a team's room (admins)."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(description="slack or telegram")
    workspace_id: str = Field(default="", max_length=100, description="The Slack team id ('' for Telegram)")
    room_id: str = Field(min_length=1, max_length=100, description="The Slack channel id or Telegram chat id")
    team_id: int


def _jsonable(view: Any) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in asdict(view).items()}


@operation(
    "POST",
    "/me/link-codes",
    tag=TAG,
    summary="A one-time code to link a Slack or Telegram account",
    body=LinkCodeRequest,
    status=201,
)
async def create_link_code(request: web.Request) -> web.Response:
    body = validated(LinkCodeRequest, await read_object(request))
    issued = await run(
        request, lambda uow: identities.issue_link_code(uow, timedelta(minutes=body.minutes), body.user_id)
    )
    return respond(
        {
            "code": issued.code,
            "expires_at": issued.expires_at.isoformat(),
            "instructions": f"Send {issued.code} to the CRM assistant in a Slack direct message, or "
            f"/start {issued.code} to the Telegram bot. The code works once.",
        },
        status=201,
    )


@operation("GET", "/me/channel-identities", tag=TAG, summary="The chat accounts linked to me")
async def list_identities(request: web.Request) -> web.Response:
    items = await run(request, identities.my_identities, read_only=True)
    return respond({"items": [_jsonable(i) for i in items]})


@operation("DELETE", "/me/channel-identities/{id:\\d+}", tag=TAG, summary="Unlink a chat account (at once)")
async def delete_identity(request: web.Request) -> web.Response:
    rid = record_id(request)
    removed = await run(request, lambda uow: identities.unlink(uow, rid))
    return respond(_jsonable(removed))


@operation("GET", "/team-rooms", tag=TAG, summary="Shared rooms marked as a team's room")
async def list_team_rooms(request: web.Request) -> web.Response:
    rooms = await run(request, identities.team_rooms, read_only=True)
    return respond({"items": [_jsonable(r) for r in rooms]})


@operation(
    "POST",
    "/team-rooms",
    tag=TAG,
    summary="Mark a shared room as a team's room (admins)",
    body=TeamRoomRequest,
    status=201,
)
async def create_team_room(request: web.Request) -> web.Response:
    body = validated(TeamRoomRequest, await read_object(request))
    room = await run(
        request,
        lambda uow: identities.mark_team_room(uow, body.channel, body.workspace_id, body.room_id, body.team_id),
    )
    return respond(_jsonable(room), status=201)


@operation("DELETE", "/team-rooms/{id:\\d+}", tag=TAG, summary="Unmark a team room (admins)")
async def delete_team_room(request: web.Request) -> web.Response:
    rid = record_id(request)
    await run(request, lambda uow: identities.unmark_team_room(uow, rid))
    return respond({"deleted": rid})
