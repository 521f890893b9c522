"""The calendar and notification operations over real HTTP, and the gateway running the scheduler:
a reminder created through the API reaches the user's feed without anyone calling the scheduler."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import icalendar
from aiohttp.test_utils import TestClient, TestServer

from assistant.gateway import create_app
from assistant.settings import Settings
from crm_backend.scheduler.runner import run_once
from tests.conftest import Demo
from tests.integration.conftest import Api

MONDAY = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
BOOKINGS = "/api/v1/calendar-bookings"


def iso(hours: float, day: int = 0) -> str:
    return (MONDAY + dt.timedelta(days=day, hours=hours)).isoformat().replace("+00:00", "Z")


def out(hours: float) -> str:
    return (MONDAY + dt.timedelta(hours=hours)).isoformat()


async def book(api: Api, username: str, start: float, end: float, attendees: list[str], title: str) -> int:
    body = {
        "title": title,
        "start_at": iso(start),
        "end_at": iso(end),
        "attendees": [{"user_id": api.demo.actor(a).user_id} for a in attendees],
    }
    created = await api.ok("POST", BOOKINGS, username, status=201, json=body)
    return int(created["id"])


async def test_booking_ics_for_organiser_and_attendee_but_not_outsiders(api: Api) -> None:
    bid = await book(api, "alice", 9, 10, ["bob"], "Acme renewal")
    for user in ("alice", "bob"):
        resp = await api.call("GET", f"{BOOKINGS}/{bid}/ics", user)
        assert resp.status == 200
        assert resp.content_type == "text/calendar"
        [event] = icalendar.Calendar.from_ical(await resp.read()).walk("VEVENT")
        assert str(event["summary"]) == "Acme renewal"
    outsider = await api.call("GET", f"{BOOKINGS}/{bid}/ics", "carlos")
    assert outsider.status == 404
    assert (await api.call("GET", f"{BOOKINGS}/{bid}/ics", None)).status == 401


async def test_feed_holds_the_callers_bookings(api: Api) -> None:
    mine = await book(api, "alice", 9, 10, [], "Mine")
    await book(api, "carlos", 11, 12, [], "Carlos only")
    resp = await api.call("GET", f"/api/v1/calendar/feed.ics?start={iso(0)}&end={iso(0, day=7)}", "alice")
    assert resp.status == 200 and resp.content_type == "text/calendar"
    events = icalendar.Calendar.from_ical(await resp.read()).walk("VEVENT")
    assert [str(e["uid"]) for e in events] == [f"booking-{mine}@crm-assistant"]
    bad = await api.call("GET", f"/api/v1/calendar/feed.ics?start={iso(5)}&end={iso(1)}", "alice")
    assert bad.status == 400


async def test_free_slots_find_30_minutes_with_a_colleague(api: Api) -> None:
    await book(api, "alice", 9, 12, [], "Morning block")
    await book(api, "maria", 12.5, 17, ["bob"], "Offsite")
    bob = api.demo.actor("bob").user_id
    found = await api.ok("GET", f"/api/v1/calendar/free-slots?user_ids={bob}&duration=30&start={iso(0)}&end={iso(24)}")
    assert found["items"][0] == {"start_at": out(9), "end_at": out(9.5)}  # bob alone is free all morning
    both = f"user_ids={bob},{api.demo.actor('alice').user_id}"
    found = await api.ok("GET", f"/api/v1/calendar/free-slots?{both}&duration=30&start={iso(0)}&end={iso(24)}")
    assert found["items"] == [{"start_at": out(12), "end_at": out(12.5)}]
    unknown = await api.call(
        "GET", f"/api/v1/calendar/free-slots?user_ids=9999&duration=30&start={iso(0)}&end={iso(24)}"
    )
    assert unknown.status == 422
    assert (await api.call("GET", f"/api/v1/calendar/free-slots?duration=x&start={iso(0)}&end={iso(24)}")).status == 400


async def test_notifications_list_shows_only_the_callers_with_delivery_state(api: Api) -> None:
    due = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    await api.ok("POST", "/api/v1/reminders", "alice", status=201, json={"message": "Call Acme", "remind_at": due})
    report = await run_once(api.demo.store)
    assert report.results["reminders"] == 1, report.as_dict()
    mine = await api.ok("GET", "/api/v1/notifications?status=sent", "alice")
    assert mine["total"] == 1
    [note] = mine["items"]
    assert (note["kind"], note["title"], note["channel"], note["attempts"]) == ("reminder", "Call Acme", "in_app", 1)
    assert (await api.ok("GET", "/api/v1/notifications", "bob"))["total"] == 0
    assert (await api.call("GET", "/api/v1/notifications?status=lost", "alice")).status == 400


async def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_gateway_runs_the_scheduler_and_a_reminder_reaches_the_feed(demo: Demo, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        var_dir=tmp_path / "var",
        rasa_port=1,
        action_server_port=1,
        health_timeout_seconds=0.5,
        scheduler_interval_seconds=0.2,
    )
    client = TestClient(TestServer(create_app(settings, demo.store), host="127.0.0.1"))
    await client.start_server()
    try:
        headers = {"Authorization": f"Bearer {demo.tokens['alice']}"}
        due = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
        resp = await client.post(
            "/api/v1/reminders", json={"message": "Send the quote", "remind_at": due}, headers=headers
        )
        assert resp.status == 201

        async def delivered() -> list[dict[str, Any]]:
            async with client.get("/api/v1/notifications?status=sent", headers=headers) as r:
                return list((await r.json())["items"])

        [note] = await wait_for(delivered)
        assert note["title"] == "Send the quote"
        async with client.get("/api/v1/feeds", headers=headers) as r:
            assert r.status == 200
            feed = await r.json()
        assert [item["title"] for item in feed["items"]].count("Send the quote") == 1
        async with client.get("/readyz") as r:
            ready = await r.json()
        assert set(ready["components"]) == {"rasa", "action_server", "database"}
        scheduler = ready["details"]["scheduler"]
        assert scheduler["running"] is True and scheduler["leader"] is True
        assert scheduler["last_tick_at"] is not None
    finally:
        await client.close()
