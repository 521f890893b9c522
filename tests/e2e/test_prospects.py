"""Prospects through the real stack (gateway → Rasa → action server → database), over the widget's HTTP door
and the Telegram channel: qualification in conversation with answers out of order and a correction, the
lead written, routed and scored, the hot lead's owner told, a demo booked and its invitation downloaded;
a handoff in the middle carries the answers so far; and every rep skill phrase tried as a prospect
reads nothing."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlalchemy import func, select

from actions.forms import SIDE_QUESTIONS
from assistant.nlu_eval import WRITE_INTENTS
from assistant.settings import open_store
from crm_backend.models.accounts import Account
from crm_backend.models.activities import Activity, BookingType, CalendarBooking
from crm_backend.models.contacts import Contact
from crm_backend.models.conversations import Conversation
from crm_backend.models.deals import Deal
from crm_backend.models.leads import Lead, LeadSource
from crm_backend.models.notifications import Notification
from crm_backend.models.service_desk import Ticket
from crm_backend.store import Store, UnitOfWork
from tests.e2e.conftest import Running
from tests.e2e.test_telegram_channel import Chat, text_of

pytestmark = pytest.mark.e2e

TIMEOUT = aiohttp.ClientTimeout(total=60)
# The rep skills: every intent that reads (answered mid-form too) or changes CRM records for a signed-in user.
REP_INTENTS = SIDE_QUESTIONS | WRITE_INTENTS | {"choose_record", "choose_other"}
PHRASES_PER_INTENT = 4


class WidgetVisitor:
    """An anonymous visitor on the website: the widget's HTTP door with its session cookie."""

    def __init__(self, running: Running, http: aiohttp.ClientSession) -> None:
        self.running, self.http = running, http
        self.replies: list[dict[str, Any]] = []

    async def send(self, body: dict[str, Any]) -> str:
        async with self.http.post(
            f"{self.running.settings.gateway_url}/widget/messages", json=body, timeout=TIMEOUT
        ) as resp:
            assert resp.status == 200, await resp.text()
            self.replies = (await resp.json())["replies"]
        return self.text

    async def say(self, text: str) -> str:
        return await self.send({"type": "message", "text": text})

    async def click(self, title: str) -> str:
        key = next((b["key"] for r in self.replies for b in r["buttons"] if b["title"] == title), None)
        assert key is not None, f"no button {title!r} in {self.replies}"
        return await self.send({"type": "button", "key": key})

    @property
    def text(self) -> str:
        return "\n".join(r["text"] for r in self.replies)

    @property
    def buttons(self) -> list[str]:
        return [b["title"] for r in self.replies for b in r["buttons"]]


@pytest.fixture
async def visitor(running: Running) -> AsyncIterator[WidgetVisitor]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield WidgetVisitor(running, http)


@pytest.fixture(scope="module")
def store(running: Running) -> Iterator[Store]:
    opened = open_store(running.settings)
    yield opened
    opened.dispose()


async def test_a_visitor_qualifies_in_conversation_and_books_a_demo(
    running: Running, visitor: WidgetVisitor, store: Store
) -> None:
    reply = await visitor.say(
        "hi! we're a 15 person recruiting agency trying to get off spreadsheets, could we see a demo?"
    )
    assert "few quick questions" in reply
    assert "When would you like" in reply  # the need was in the request: the next question is the timeline
    reply = await visitor.say("we've got about 20k set aside and want it live before March")
    assert "decision" in reply  # budget and timeline both taken: on to who decides
    reply = await visitor.say("yes, it's my call")
    assert "Who am I talking to" in reply
    reply = await visitor.say("I'm Maya Okafor from Brightpath Recruiting")
    assert "email or phone" in reply
    reply = await visitor.say("maya@brightpath")
    assert "complete email address" in reply
    reply = await visitor.say("maya@brightpath-recruiting.example")
    assert "Here's what I'll pass on" in reply and "Brightpath Recruiting" in reply and "$20,000" in reply
    reply = await visitor.say("actually the budget is more like 25k")
    assert "changed the budget to $25,000" in reply and "Is that right?" in reply
    reply = await visitor.click("Yes, send it")
    assert "I've passed this to" in reply and "maya@brightpath-recruiting.example" in reply
    assert "30-minute demo" in reply
    times = [b for b in visitor.buttons if b != "No thanks"]
    assert len(times) == 3
    reply = await visitor.click(times[1])
    assert "Booked: a 30-minute demo with" in reply and times[1] in reply
    link = reply.split("Add it to your calendar: ")[1].split()[0]
    async with visitor.http.get(link, timeout=TIMEOUT) as resp:
        assert resp.status == 200 and resp.content_type == "text/calendar"
        ics = (await resp.text()).replace("\r\n ", "")
    assert "mailto:maya@brightpath-recruiting.example" in ics and "Demo: Maya Okafor" in ics

    with store.unit_of_work(read_only=True) as uow:
        lead = uow.session.scalar(select(Lead).where(Lead.email == "maya@brightpath-recruiting.example"))
        assert lead is not None
        assert (lead.first_name, lead.last_name, lead.company) == ("Maya", "Okafor", "Brightpath Recruiting")
        assert lead.source is LeadSource.WEBSITE and lead.budget == 25000 and lead.has_authority is True
        assert "spreadsheets" in (lead.need or "") and lead.timeline == "before March"
        assert lead.status.value == "Qualified" and lead.score > 0  # scored (rules blended with the model)
        conversation = uow.session.scalar(select(Conversation).where(Conversation.lead_id == lead.id))
        assert conversation is not None and conversation.channel == "web"
        note = uow.session.scalar(select(Activity).where(Activity.lead_id == lead.id))
        # The transcript (each turn's mood too once the sentiment model has loaded: tests/unit/actions).
        assert note is not None and "I'm Maya Okafor from Brightpath Recruiting" in (note.description or "")
        assert "Assistant: Who am I talking to?" in (note.description or "")
        told = uow.session.scalar(
            select(Notification).where(Notification.entity_id == lead.id, Notification.kind == "hot_lead")
        )
        assert told is not None and told.user_id == lead.owner_id
        booking = uow.session.scalar(select(CalendarBooking).where(CalendarBooking.lead_id == lead.id))
        assert booking is not None and booking.type is BookingType.DEMO and booking.owner_id == lead.owner_id


async def test_the_same_prospect_coming_back_updates_their_lead(running: Running, store: Store) -> None:
    async def qualify(budget: str) -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            v = WidgetVisitor(running, http)
            await v.say("can someone from sales show me the product")
            for answer in (
                "a CRM for our six field engineers",
                "next quarter",
                budget,
                "me and our COO",
                "Jon Snell",
                "Snell Surveying",
                "jon@snell-surveying.example",
            ):
                await v.say(answer)
            assert "Here's what I'll pass on" in v.text
            await v.say("yes")
            assert "I've passed this to" in v.text

    await qualify("10k")
    await qualify("about 18k")
    with store.unit_of_work(read_only=True) as uow:
        leads = list(uow.session.scalars(select(Lead).where(Lead.email == "jon@snell-surveying.example")))
        assert len(leads) == 1 and leads[0].budget == 18000


async def test_asking_for_a_person_mid_form_hands_over_with_the_answers_so_far(
    visitor: WidgetVisitor, store: Store
) -> None:
    await visitor.say("I'd like a demo for my team")
    await visitor.say("shared inbox for our support team")
    await visitor.say("within two months, budget around 8k")
    reply = await visitor.say("can I talk to a real person please")
    assert "ticket" in reply.lower()
    with store.unit_of_work(read_only=True) as uow:
        ticket = uow.session.scalar(select(Ticket).order_by(Ticket.id.desc()))
        assert ticket is not None and ticket.escalation_reason == "requested"
        assert ticket.bant.get("budget") == "8000" and "two months" in ticket.bant.get("timeline", "")
        assert "support team" in ticket.bant.get("need", "")


async def test_an_unlinked_telegram_user_can_qualify_as_a_prospect(chat: Chat) -> None:
    stranger = 733_001
    since = await chat.say(stranger, "hello, we want to buy a crm for our sales team, can you show us a demo")
    reply = text_of(await chat.reply_to(stranger, since, "When would you like"))
    assert "CRM" not in reply or "records" not in reply


def rep_phrases(root: Path) -> list[tuple[str, str]]:
    """A few training phrases of every rep skill (annotations removed), chosen at random but reproducibly."""
    picked: list[tuple[str, str]] = []
    rng = random.Random(9)
    for path in sorted((root / "nlu_data").glob("*.yml")):
        for block in (yaml.safe_load(path.read_text()) or {}).get("nlu", []) or []:
            if block.get("intent") not in REP_INTENTS or "examples" not in block:
                continue
            examples = [line[2:].strip() for line in block["examples"].splitlines() if line.strip().startswith("- ")]
            plain = [_plain(e) for e in examples]
            picked += [(block["intent"], p) for p in rng.sample(plain, min(PHRASES_PER_INTENT, len(plain)))]
    return picked


def record_counts(uow: UnitOfWork) -> dict[str, int]:
    models = (Lead, Deal, Account, Contact, Activity, CalendarBooking)
    return {m.__tablename__: int(uow.session.scalar(select(func.count()).select_from(m)) or 0) for m in models}


def _plain(example: str) -> str:
    return re.sub(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})", r"\1", example)


async def test_no_rep_skill_phrase_reads_or_changes_anything_for_a_prospect(running: Running, store: Store) -> None:
    phrases = rep_phrases(running.settings.project_root)
    assert len({intent for intent, _ in phrases}) >= 25
    with store.unit_of_work(read_only=True) as uow:
        names = {n for n in uow.session.scalars(select(Account.name)) if len(n) >= 4}
        names |= {n for n in uow.session.scalars(select(Deal.name)) if len(n) >= 6}
        names |= {f"{c.first_name} {c.last_name}" for c in uow.session.scalars(select(Contact)) if c.first_name}
        names |= {
            f"{lead.first_name} {lead.last_name}" for lead in uow.session.scalars(select(Lead)) if lead.first_name
        }
        before = record_counts(uow)
    leaks: list[str] = []

    async def one(intent: str, text: str) -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            v = WidgetVisitor(running, http)
            for said in (text, "yes"):  # and confirm, in case anything was read back
                reply = await v.say(said)
                leaks.extend(f"{intent}: {text!r} → {name}" for name in names if name in reply and name not in text)

    for start in range(0, len(phrases), 4):
        await asyncio.gather(*(one(i, t) for i, t in phrases[start : start + 4]))
    assert leaks == []
    with store.unit_of_work(read_only=True) as uow:
        assert record_counts(uow) == before  # nothing created, nothing deleted
