"""Prospect conversations, scored: each persona in bench/prospect_conversations.yml talks to the real assistant
through the website widget's HTTP door (answering whichever question the assistant asks, out of order when
the persona gives several answers at once, with skips, product questions, read-back corrections and
requests for a person), then the database is checked: was the lead written (qualification completion), does
it hold what the persona said (field accuracy), was the chat handed to a person exactly when the persona
asked (escalation decisions), was the demo booked when chosen.

    .venv/bin/python bench/prospects.py [--concurrency 4] [--only p01,p07] [--out bench/results/prospects.json]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import select  # noqa: E402

from assistant.settings import Settings, open_store  # noqa: E402
from bench.channels import summary  # noqa: E402
from bench.stack import running_stack, write_report  # noqa: E402
from crm_backend.models.activities import BookingType, CalendarBooking  # noqa: E402
from crm_backend.models.leads import Lead  # noqa: E402
from crm_backend.services.matching import normal_phone  # noqa: E402

SCRIPTS = ROOT / "bench" / "prospect_conversations.yml"
TIMEOUT = aiohttp.ClientTimeout(total=90)
MAX_TURNS = 30
# How each question (and its re-ask after a bad answer) starts, as the assistant words it (domain.yml and
# actions/prospect_answers.py); the last one in a reply is the question waiting for an answer.
QUESTIONS = {
    "need": ("What would you like to use it for", "what you'd like to use it for"),
    "timeline": ("When would you like to have something", "Roughly when would you like"),
    "budget": ("budget in mind", "Roughly how much"),
    "authority": ("Will you be making the decision", "Will you make the decision"),
    "name": ("Who am I talking to", "didn't catch your name"),
    "company": ("And which company are you with", "Which company are you with"),
    "contact": ("best email or phone number", "complete email address", "I need an email address or a phone"),
    "confirm": ("Here's what I'll pass on", "what should I change"),
}
FIELDS = ("first_name", "last_name", "company", "email", "phone", "budget", "has_authority", "timeline_contains")


def asked(text: str) -> str | None:
    """The question a reply ends on."""
    best: tuple[int, str] | None = None
    for slot, starts in QUESTIONS.items():
        for start in starts:
            at = text.rfind(start)
            if at >= 0 and (best is None or at > best[0]):
                best = (at, slot)
    return best[1] if best else None


@dataclass
class Played:
    id: str
    turns: int = 0
    seconds: list[float] = field(default_factory=list)
    qualified: bool = False
    escalated: bool = False
    demo_booked: bool = False
    kb_answered: int = 0
    stuck: str | None = None
    transcript: list[tuple[str, str]] = field(default_factory=list)


class Widget:
    def __init__(self, http: aiohttp.ClientSession, gateway: str, played: Played) -> None:
        self.http, self.gateway, self.played = http, gateway, played
        self.replies: list[dict[str, Any]] = []

    async def send(self, body: dict[str, Any], shown: str) -> str:
        started = time.perf_counter()
        async with self.http.post(f"{self.gateway}/widget/messages", json=body, timeout=TIMEOUT) as resp:
            data = await resp.json()
        self.played.seconds.append(time.perf_counter() - started)
        self.played.turns += 1
        self.replies = data.get("replies") or [{"text": str(data.get("error")), "buttons": []}]
        text = "\n".join(r["text"] for r in self.replies)
        self.played.transcript += [("prospect", shown), ("assistant", text)]
        return text

    async def say(self, text: str) -> str:
        return await self.send({"type": "message", "text": text}, text)

    def buttons(self) -> list[tuple[str, str]]:
        return [(b["title"], b["key"]) for r in self.replies for b in r.get("buttons") or []]

    async def click(self, title: str) -> str:
        key = next(k for t, k in self.buttons() if t == title)
        return await self.send({"type": "button", "key": key}, f"[{title}]")


async def play(http: aiohttp.ClientSession, gateway: str, persona: dict[str, Any]) -> Played:
    played = Played(persona["id"])
    widget = Widget(http, gateway, played)
    answers: dict[str, str] = dict(persona.get("answers") or {})
    combined: dict[str, str] = dict(persona.get("combined") or {})
    interjections: dict[str, str] = dict(persona.get("interjections") or {})
    correction = persona.get("correction")
    reply = await widget.say(persona["opening"])
    for _ in range(MAX_TURNS):
        if "I've passed this to" in reply or "already one of our customers" in reply:
            played.qualified = True
            await choose_demo(widget, persona.get("demo"), played)
            return played
        slot = asked(reply)
        if slot is None:
            played.stuck = reply[-300:]
            return played
        if persona.get("escalate_at") == slot:
            reply = await widget.say(persona.get("escalate_text") or "can I talk to a person")
            played.escalated = "ticket" in reply.lower()
            return played
        if slot == "confirm":
            if correction:
                reply, correction = await widget.say(correction), None
            elif "Yes, send it" in [t for t, _ in widget.buttons()]:
                reply = await widget.click("Yes, send it")
            else:
                reply = await widget.say("yes")
            continue
        if slot in interjections:
            reply = await widget.say(interjections.pop(slot))
            played.kb_answered += "help article" in reply
            continue
        said = combined.pop(slot, None) or answers.pop(slot, None) or "skip"
        reply = await widget.say(said)
    played.stuck = "too many turns"
    return played


async def choose_demo(widget: Widget, demo: Any, played: Played) -> None:
    times = [t for t, _ in widget.buttons() if t != "No thanks"]
    if not times or demo is None:
        return
    if demo == "no":
        reply = await widget.click("No thanks")
    elif demo == "yes":
        reply = await widget.say("yes please")
    elif isinstance(demo, str) and demo.startswith("text:"):
        reply = await widget.say(demo[5:])
    else:
        reply = await widget.click(times[int(demo) - 1])
    played.demo_booked = "Booked:" in reply


def lead_of(settings: Settings, expect: dict[str, Any]) -> dict[str, Any] | None:
    store = open_store(settings)
    try:
        with store.unit_of_work(read_only=True) as uow:
            stmt = select(Lead).where(Lead.deleted_at.is_(None))
            if expect.get("email"):
                stmt = stmt.where(Lead.email == str(expect["email"]).lower())
            elif expect.get("phone"):
                stmt = stmt.where(Lead.phone_key == normal_phone(str(expect["phone"])))
            else:
                stmt = stmt.where(Lead.last_name == expect.get("last_name"))
            lead = uow.session.scalar(stmt.order_by(Lead.id.desc()).limit(1))
            if lead is None:
                return None
            demo = uow.session.scalar(
                select(CalendarBooking.id).where(
                    CalendarBooking.lead_id == lead.id, CalendarBooking.type == BookingType.DEMO
                )
            )
            return {
                "first_name": lead.first_name,
                "last_name": lead.last_name,
                "company": lead.company,
                "email": lead.email,
                "phone": lead.phone,
                "budget": lead.budget,
                "has_authority": lead.has_authority,
                "timeline": lead.timeline,
                "score": lead.score,
                "owner_id": lead.owner_id,
                "demo_booked": demo is not None,
            }
    finally:
        store.dispose()


def compare(expect: dict[str, Any], lead: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{field: (expected, stored)} for every checked field that differs."""
    wrong: dict[str, tuple[Any, Any]] = {}
    for name in FIELDS:
        if name not in expect:
            continue
        want = expect[name]
        if name == "timeline_contains":
            got = lead.get("timeline")
            ok = got is not None and str(want).lower() in got.lower()
        elif name == "budget":
            got = lead.get("budget")
            ok = (got is None and want is None) or (
                got is not None and want is not None and Decimal(got) == Decimal(str(want))
            )
        elif name == "phone":
            got = lead.get("phone")
            ok = normal_phone(got) == normal_phone(str(want))
        elif name in ("first_name", "last_name", "company", "email"):
            got = lead.get(name)
            ok = (got or "").lower() == str(want or "").lower()
        else:
            got = lead.get(name)
            ok = got == want
        if not ok:
            wrong[name] = (want, got if not isinstance(got, Decimal) else float(got))
    return wrong


def score(settings: Settings, personas: list[dict[str, Any]], played: dict[str, Played]) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    fields_checked = fields_right = 0
    for persona in personas:
        p, expect = played[persona["id"]], persona.get("expect") or {}
        lead = lead_of(settings, expect) if expect.get("qualified", True) else None
        wrong = compare(expect, lead) if lead is not None else {}
        checked = [f for f in FIELDS if f in expect] if lead is not None else []
        fields_checked += len(checked)
        fields_right += len(checked) - len(wrong)
        as_expected = (
            (p.qualified and lead is not None) == bool(expect.get("qualified", True))
            and p.escalated == bool(expect.get("escalated", False))
            and bool(lead and lead["demo_booked"]) == bool(expect.get("demo_booked", False))
        )
        results.append(
            {
                "id": p.id,
                "turns": p.turns,
                "qualified": p.qualified and (lead is not None or not expect.get("qualified", True)),
                "expected_qualified": bool(expect.get("qualified", True)),
                "escalated": p.escalated,
                "expected_escalated": bool(expect.get("escalated", False)),
                "demo_booked": bool(lead and lead["demo_booked"]),
                "expected_demo": bool(expect.get("demo_booked", False)),
                "wrong_fields": {k: [str(v[0]), str(v[1])] for k, v in wrong.items()},
                "kb_answered": p.kb_answered,
                "stuck": p.stuck,
                "score": lead["score"] if lead else None,
                "transcript": p.transcript if (wrong or p.stuck or not as_expected) else [],
            }
        )
    to_qualify = [r for r in results if r["expected_qualified"]]
    demos = [r for r in results if r["expected_qualified"]]
    latencies = [s for p in played.values() for s in p.seconds]
    return {
        "personas": len(results),
        "qualification_completion": round(sum(r["qualified"] for r in to_qualify) / max(1, len(to_qualify)), 3),
        "completed": f"{sum(r['qualified'] for r in to_qualify)}/{len(to_qualify)}",
        "field_accuracy": round(fields_right / max(1, fields_checked), 3),
        "fields": f"{fields_right}/{fields_checked}",
        "all_fields_right": sum(1 for r in to_qualify if r["qualified"] and not r["wrong_fields"]),
        "escalation_decisions_correct": sum(r["escalated"] == r["expected_escalated"] for r in results),
        "demo_decisions_correct": sum(r["demo_booked"] == r["expected_demo"] for r in demos),
        "demo_expected": sum(r["expected_demo"] for r in demos),
        "product_questions_answered": sum(r["kb_answered"] for r in results),
        "turns_per_conversation": round(sum(r["turns"] for r in results) / max(1, len(results)), 1),
        "turn_latency_seconds": summary(latencies),
        "results": results,
    }


async def play_all(gateway: str, personas: list[dict[str, Any]], concurrency: int) -> dict[str, Played]:
    gate = asyncio.Semaphore(concurrency)
    played: dict[str, Played] = {}

    async def one(persona: dict[str, Any]) -> None:
        async with gate, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            played[persona["id"]] = await play(http, gateway, persona)

    await asyncio.gather(*(one(p) for p in personas))
    return played


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--only", default="", help="comma-separated persona ids")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "prospects.json")
    args = parser.parse_args()
    personas = yaml.safe_load(SCRIPTS.read_text())
    if args.only:
        wanted = set(args.only.split(","))
        personas = [p for p in personas if p["id"] in wanted]
    # The widget allows 20 messages a minute per visitor; a persona never sends more.
    with running_stack("prospects", WIDGET_MESSAGES_PER_MINUTE="60") as bench:
        played = asyncio.run(play_all(bench.settings.gateway_url, personas, args.concurrency))
        results = score(bench.settings, personas, played)
    write_report(args.out, concurrency=args.concurrency, **results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
