"""Lead skills through the actions: lead lists with filters said in words, and lead/deal scores with
their reasons — with what each user may see."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from actions.leads import ActionLeadScore, ActionListLeads, lead_filters, top_reasons, why_lines
from crm_backend.models import EntityScore, Lead, LeadSource, LeadStatus
from crm_backend.models.automation import EntityType
from crm_backend.scoring import engine
from crm_backend.services import records
from tests.unit.actions.conftest import Crm, entity

LEADS = ActionListLeads()
SCORE = ActionLeadScore()
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
LINE = re.compile(r"^\d+\. .*: score (?P<score>\d+) \((?:hot|warm|cold)\), (?P<status>[A-Za-z]+), (?P<source>[^,]+),")


def listed(text: str) -> list[dict[str, str]]:
    return [m.groupdict() for line in text.splitlines() if (m := LINE.match(line))]


def open_leads_of(crm: Crm, username: str) -> int:
    with crm.store.unit_of_work() as uow:
        stmt = (
            select(func.count())
            .select_from(Lead)
            .where(
                Lead.owner_id == crm.actor(username).user_id,
                Lead.status.in_([LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED]),
            )
        )
        return int(uow.session.scalar(stmt) or 0)


def create(crm: Crm, username: str, collection: str, values: dict[str, Any]) -> int:
    with crm.store.unit_of_work(crm.actor(username)) as uow:
        return int(records.create_record(uow, records.resource(collection), values, allow_duplicate=True).id)


# --- words → filters (pure) ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "source", "statuses", "scores", "kind", "said"),
    [
        ("my leads", None, ("New", "Contacted", "Qualified"), (None, None), "open", []),
        ("any hot leads", None, ("New", "Contacted", "Qualified"), (70, None), "hot open", []),
        ("unqualified leads", None, ("New", "Contacted"), (None, None), "unqualified", []),
        ("qualified leads", None, ("Qualified",), (None, None), "qualified", []),
        ("any new leads?", None, ("New",), (None, None), "new", []),
        ("warm leads from linkedin", "Social Media", ("New", "Contacted", "Qualified"), (40, 69), "warm open", []),
        ("all my leads", None, (), (None, None), "", []),
    ],
)
def test_lead_filters_from_words(
    text: str,
    source: str | None,
    statuses: tuple[str, ...],
    scores: tuple[int | None, int | None],
    kind: str,
    said: list[str],
) -> None:
    query, words, adjectives = lead_filters(text, source, NOW, ZoneInfo("UTC"))
    assert tuple(s.value for s in query.statuses) == statuses
    assert (query.min_score, query.max_score) == scores
    assert adjectives == kind
    assert query.source == (LeadSource(source) if source else None)
    assert words == ([f"from {source}"] if source else []) + said


def test_new_with_a_date_means_created_then_not_the_status() -> None:
    query, words, adjectives = lead_filters("new leads from the website this week", "Website", NOW, ZoneInfo("UTC"))
    assert words == ["from Website", "created this week"] and adjectives == "open"
    assert query.created_from == datetime(2026, 11, 23, tzinfo=ZoneInfo("UTC"))
    assert query.created_before == datetime(2026, 11, 30, tzinfo=ZoneInfo("UTC"))
    assert set(query.statuses) == {LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED}


def test_reasons_in_plain_words_largest_first_and_the_model() -> None:
    explanation = {
        "rules": [
            {"name": "Engaged", "points": 15.0, "reasons": ["activity_count gte 3: yes (is 4)"]},
            {"name": "BANT mostly known", "points": 30.0, "reasons": ["bant_known gte 3: yes (is 3)"]},
            {"name": "Cold call", "points": -10.0, "reasons": ["source eq 'Cold Call': yes (is 'Cold Call')"]},
            {"name": "Recently active", "points": 10.0, "reasons": ["last_activity_at days_since {'lt': 14}: yes"]},
        ],
        "model": {"version": "v3", "probability": 0.6234},
    }
    assert top_reasons(explanation) == [
        "+30 BANT mostly known (bant known: 3)",
        "+15 Engaged (activity count: 4)",
        "-10 Cold call (source: Cold Call)",
    ]
    row = EntityScore(entity_type=EntityType.LEAD, entity_id=1, score=58, explanation=explanation)
    assert (
        why_lines(row, "convert")[-1]
        == "The model gives it a 62% chance to convert (the score blends it with the rules)."
    )


# --- list_leads -----------------------------------------------------------------------------------------
async def test_my_leads_are_open_ones_best_score_first_with_how_many_more(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(LEADS, "show me my leads", "list_leads")
    lines = chat.text.splitlines()
    total = open_leads_of(crm, "alice")
    assert total > 8
    assert lines[0] == f"{total} open leads, best score first:"
    rows = listed(chat.text)
    assert len(rows) == 8 and lines[-1] == f"…and {total - 8} more."
    scores = [int(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert {r["status"] for r in rows} <= {"New", "Contacted", "Qualified"}
    for other in ("Tom Baker", "Yuki Tanaka", "Priya Nair"):  # bob's and carlos's
        assert other not in chat.text


async def test_source_and_creation_date_filters(crm: Crm) -> None:
    create(
        crm,
        "alice",
        "leads",
        {"first_name": "Jane", "last_name": "Doe", "company": "Contoso Web", "source": "Website"},
    )
    chat = crm.chat("alice")
    text = "new leads from the website this week"
    await chat.say(LEADS, text, "list_leads", [entity("lead_source", "Website", "website")])
    assert chat.text.splitlines()[0] == "1 open lead from Website created this week, best score first:"
    assert re.search(r"^1\. Jane Doe \(Contoso Web\): score \d+ \(\w+\), New, Website, added ", chat.text, re.M)
    assert {r["source"] for r in listed(chat.text)} == {"Website"}

    await chat.say(LEADS, "leads from chat created today", "list_leads", [entity("lead_source", "Chat", "chat")])
    assert chat.text.startswith("No open leads from Chat created on ") and chat.text.endswith(
        "that you can see right now."
    )


async def test_hot_and_status_words(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(LEADS, "any hot leads", "list_leads")
    rows = listed(chat.text)
    assert rows and all(int(r["score"]) >= 70 for r in rows)
    assert " hot open lead" in chat.text.splitlines()[0]
    await chat.say(LEADS, "unqualified leads", "list_leads")
    assert {r["status"] for r in listed(chat.text)} <= {"New", "Contacted"}
    await chat.say(LEADS, "qualified leads", "list_leads")
    assert {r["status"] for r in listed(chat.text)} == {"Qualified"}
    await chat.say(LEADS, "leads we lost", "list_leads")
    assert {r["status"] for r in listed(chat.text)} == {"Lost"}


async def test_a_manager_sees_team_leads_with_their_owner_and_reps_only_their_own(crm: Crm) -> None:
    bob = crm.chat("bob")
    await bob.say(LEADS, "my contacted leads", "list_leads")
    assert "Tom Baker (Fabrikam): score " in bob.text and "Tom Baker (Fabrikam): score 25 (cold), Contacted" in bob.text
    maria = crm.chat("maria")
    await maria.say(LEADS, "all contacted leads", "list_leads")
    assert maria.text.splitlines()[0].endswith("contacted leads, best score first:")
    await maria.say(LEADS, "cold contacted leads", "list_leads")
    assert "Tom Baker (Fabrikam): score 25 (cold), Contacted, Referral, added " in maria.text
    assert "Bob Chen's" in maria.text
    carlos = crm.chat("carlos")
    await carlos.say(LEADS, "qualified leads from trade shows", "list_leads", [entity("lead_source", "Trade Show")])
    assert "Yuki Tanaka (Tailspin Toys)" in carlos.text and "Tom Baker" not in carlos.text


# --- lead_score -----------------------------------------------------------------------------------------
def stored(crm: Crm, kind: EntityType, record_id: int) -> EntityScore:
    with crm.store.unit_of_work() as uow:
        row: EntityScore = uow.session.scalars(
            select(EntityScore).where(EntityScore.entity_type == kind, EntityScore.entity_id == record_id)
        ).one()
        return row


def lead_id(crm: Crm, company: str) -> int:
    with crm.store.unit_of_work() as uow:
        return int(uow.session.scalars(select(Lead.id).where(Lead.company == company)).one())


async def test_a_leads_score_grade_and_reasons(crm: Crm) -> None:
    row = stored(crm, EntityType.LEAD, lead_id(crm, "Fabrikam"))
    chat = crm.chat("bob")
    await chat.say(SCORE, "how hot is the tom baker lead and why", "lead_score", [entity("record", "tom baker")])
    lines = chat.text.splitlines()
    assert lines[0] == f"Tom Baker (Fabrikam, Contacted) scores {row.score}/100 ({row.grade})."
    assert lines[1] == "Why:" and lines[2] == "1. +25 Warm source (source: Referral)"
    assert chat.slots["focus_record"] == f"lead:{lead_id(crm, 'Fabrikam')}"
    await chat.say(SCORE, "why is it rated so low", "lead_score")  # the focus
    assert chat.text.startswith("Tom Baker (Fabrikam, Contacted) scores ")


async def test_another_reps_lead_has_no_score_to_show(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(SCORE, "score for Tom Baker", "lead_score", [entity("record", "Tom Baker")])
    assert chat.text.startswith("I can't find a lead or deal called “Tom Baker”")
    assert "/100" not in chat.text
    await chat.say(SCORE, "why is Fabrikam rated so low", "lead_score", [entity("record", "Fabrikam")])
    assert "/100" not in chat.text


async def test_a_deals_win_probability_and_score(crm: Crm) -> None:
    chat = crm.chat("alice")
    await chat.say(SCORE, "how likely is the nimbus deal to close", "lead_score", [entity("record", "nimbus")])
    lines = chat.text.splitlines()
    assert lines[0].startswith("Nimbus Labs - Platform renewal: win probability 50% (Proposal stage); score ")
    assert "Why:" in lines and "1. +25 Late stage (stage: Proposal)" in lines


async def test_a_lead_never_scored_says_how_to_score_it(crm: Crm) -> None:
    with crm.store.unit_of_work(None, "cli") as uow:
        engine.clear_scores(uow, "lead")
    chat = crm.chat("bob")
    await chat.say(SCORE, "score for Tom Baker", "lead_score", [entity("record", "Tom Baker")])
    assert chat.text.startswith("Tom Baker (Fabrikam, Contacted) hasn't been scored yet. Its recorded score is ")
    assert chat.text.endswith("Say “rescore Tom Baker” to score it now.")
