"""The chat-account operations over HTTP: link codes, linked identities, team rooms."""

from __future__ import annotations

from crm_backend.services import identities
from tests.integration.conftest import Api


async def test_a_user_gets_a_link_code_and_sees_and_unlinks_the_account_it_linked(api: Api) -> None:
    issued = await api.ok("POST", "/api/v1/me/link-codes", json={}, status=201)
    assert identities.find_code(issued["code"]) == issued["code"]
    assert issued["code"] in issued["instructions"]
    with api.demo.store.unit_of_work(channel="slack") as uow:
        identities.redeem_link_code(uow, issued["code"], "slack", "U42", "T1")
    listed = await api.ok("GET", "/api/v1/me/channel-identities")
    assert [(i["channel"], i["external_id"], i["workspace_id"]) for i in listed["items"]] == [("slack", "U42", "T1")]
    assert (await api.ok("GET", "/api/v1/me/channel-identities", username="bob"))["items"] == []
    identity_id = listed["items"][0]["id"]
    assert (await api.call("DELETE", f"/api/v1/me/channel-identities/{identity_id}", username="bob")).status == 404
    await api.ok("DELETE", f"/api/v1/me/channel-identities/{identity_id}")
    assert (await api.ok("GET", "/api/v1/me/channel-identities"))["items"] == []


async def test_bad_link_code_requests_are_refused(api: Api) -> None:
    assert (await api.call("POST", "/api/v1/me/link-codes", username=None, json={})).status == 401
    assert (await api.call("POST", "/api/v1/me/link-codes", json={"minutes": 0})).status == 422
    someone_else = {"user_id": api.demo.actor("bob").user_id}
    assert (await api.call("POST", "/api/v1/me/link-codes", json=someone_else)).status == 403


async def test_only_admins_mark_team_rooms(api: Api) -> None:
    teams = await api.ok("GET", "/api/v1/teams", username="admin")
    east = next(t["id"] for t in teams["items"] if t["name"] == "East")
    room = {"channel": "slack", "workspace_id": "T1", "room_id": "C1", "team_id": east}
    assert (await api.call("POST", "/api/v1/team-rooms", json=room)).status == 403
    created = await api.ok("POST", "/api/v1/team-rooms", username="admin", json=room, status=201)
    assert created["team"] == "East"
    assert (await api.call("POST", "/api/v1/team-rooms", username="admin", json=room)).status == 409
    bad = {**room, "channel": "irc"}
    assert (await api.call("POST", "/api/v1/team-rooms", username="admin", json=bad)).status == 422
    listed = await api.ok("GET", "/api/v1/team-rooms")
    assert [r["room_id"] for r in listed["items"]] == ["C1"]
    await api.ok("DELETE", f"/api/v1/team-rooms/{created['id']}", username="admin")
    assert (await api.ok("GET", "/api/v1/team-rooms"))["items"] == []
