"""The conversation runner without Rasa: loading and validating the YAML, placeholders, reply checks,
database checks on a small SQLite file, and a whole conversation against a scripted fake gateway."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import Boolean, Column, Date, DateTime, Integer, MetaData, Numeric, String, Table, create_engine, insert
from sqlalchemy.engine import Engine

from assistant.conversations import (
    ConversationSetError,
    Database,
    DbCheck,
    Turn,
    as_text,
    latency_figures,
    normalise,
    parse_conversations,
    placeholder_values,
    play,
    reply_problems,
    skill_counts,
    summary_text,
    tapped_button,
    unique_number,
    word_for,
)
from assistant.settings import PROJECT_ROOT
from crm_backend.models.base import enum_column

VALID = """
version: 1
anchors:
  me: &me {id_of: {table: users, where: {username: alice}}}
conversations:
- name: move-deal
  skill: update_deal
  user: alice
  kind: write
  tags: [follow_up]
  turns:
  - say: "move deal {n} to won"
    expect_all: ["Deal {Word}", "?"]
  - tap: "Yes"
    expect_any: ["moved"]
  db:
  - table: deals
    where: {name: "Deal {Word}", owner_id: *me}
    expect: {stage: Closed Won, amount: {changed: false}}
  cleanup:
    turns:
    - say: "undo that"
    db:
    - table: deals
      where: {name: "Deal {Word}"}
      expect: {stage: {changed: false}}
- name: peek
  skill: deal_status
  user: bob
  kind: read
  tags: [permission]
  turns:
  - say: "how's deal {word}"
    expect_none: ["48,000"]
"""


class Stage(enum.StrEnum):
    OPEN = "Open"
    WON = "Closed Won"


def small_metadata() -> MetaData:
    metadata = MetaData()
    Table("users", metadata, Column("id", Integer, primary_key=True), Column("username", String(40)))
    Table(
        "deals",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(100)),
        Column("stage", enum_column(Stage)),
        Column("amount", Numeric(12, 2)),
        Column("closes", Date),
        Column("hot", Boolean),
        Column("owner_id", Integer),
        Column("deleted_at", DateTime(timezone=True)),
    )
    return metadata


@pytest.fixture
def database(tmp_path: Path) -> tuple[Database, Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'checks.sqlite3'}")
    metadata = small_metadata()
    metadata.create_all(engine)
    users, deals = metadata.tables["users"], metadata.tables["deals"]
    with engine.begin() as conn:
        conn.execute(insert(users), [{"id": 1, "username": "alice"}, {"id": 2, "username": "bob"}])
        gone = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        rows = [  # id, name, stage, amount, closes, hot, owner, deleted
            (1, "Acme - Fleet", Stage.OPEN, Decimal("48000.00"), dt.date(2027, 1, 15), True, 1, None),
            (2, "Acme - Pilot", Stage.WON, Decimal("9000"), None, False, 1, None),
            (3, "Globex - Warehouse", Stage.OPEN, Decimal("64000.50"), None, None, 2, None),
            (4, "Acme - Gone", Stage.OPEN, Decimal("1"), None, None, 1, gone),
        ]
        names = ("id", "name", "stage", "amount", "closes", "hot", "owner_id", "deleted_at")
        conn.execute(insert(deals), [dict(zip(names, row, strict=True)) for row in rows])
    return Database(engine, metadata), engine


def check(**fields: Any) -> DbCheck:
    return DbCheck(**fields)


# --- loading and validation -------------------------------------------------------------------------------
def test_a_valid_set_loads_with_its_defaults_and_anchors() -> None:
    first, second = parse_conversations(VALID, "set.yml", small_metadata())
    assert (first.name, first.skill, first.user, first.kind) == ("move-deal", "update_deal", "alice", "write")
    assert first.tags == frozenset({"follow_up"})
    assert first.turns[0].say == "move deal {n} to won"
    assert first.turns[1].tap == "Yes"
    assert first.db[0].where["owner_id"] == {"id_of": {"table": "users", "where": {"username": "alice"}}}
    assert first.db[0].needs_snapshot and first.db[0].shows_write
    assert not first.cleanup_db[0].shows_write
    assert first.cleanup_turns[0].say == "undo that"
    assert second.db == () and second.cleanup_turns == ()
    assert skill_counts([first, second, first]) == {"update_deal": 2, "deal_status": 1}


def _one(conversation: str) -> str:
    return f"version: 1\nconversations:\n{conversation}"


BASE = """- name: c
  skill: deal_status
  user: alice
  kind: read
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\nconversations: []", "`version` must be 1"),
        ("version: 1\nconversations: []", "non-empty list"),
        ("version: 1\nextra: 1\nconversations: []", "unknown key(s) extra"),
        ("- [", "not valid YAML"),
        (_one(BASE.replace("alice", "mallory") + "  turns: [{say: hi}]"), "`user` must be one of"),
        (_one(BASE.replace("read", "browse") + "  turns: [{say: hi}]"), "`kind` must be read or write"),
        (_one(BASE.replace("deal_status", "Deal Status") + "  turns: [{say: hi}]"), "`skill` must be an intent"),
        (_one(BASE + "  tags: [sneaky]\n  turns: [{say: hi}]"), "`tags` must be a list"),
        (_one(BASE + "  turns: []"), "turns: must be a non-empty list"),
        (_one(BASE + "  turns: [{say: hi, tap: 1}]"), "exactly one of `say` and `tap`"),
        (_one(BASE + "  turns: [{tap: 1}]"), "first turn cannot tap"),
        (_one(BASE + "  turns: [{say: hi}, {tap: 0}]"), "button's number"),
        (_one(BASE + "  turns: [{say: hi, expect_any: []}]"), "non-empty list of strings"),
        (_one(BASE + "  turns: [{say: hi, expect_all: [''] }]"), "non-empty string"),
        (_one(BASE + "  turns: [{say: 'hi {name}'}]"), "unknown placeholder {name}"),
        (_one(BASE + "  turns: [{say: hi, expext_any: [x]}]"), "unknown key(s) expext_any"),
        (_one(BASE + "  turns: [{say: hi}]\n  db: [{table: deals, where: {id: 1}}]"), "exactly one of expect"),
        (
            _one(BASE + "  turns: [{say: hi}]\n  db: [{table: deals, where: {id: 1}, absent: true, count: 1}]"),
            "exactly one of expect",
        ),
        (_one(BASE + "  turns: [{say: hi}]\n  db: [{table: deals, where: {}, absent: true}]"), "non-empty mapping"),
        (
            _one(BASE + "  turns: [{say: hi}]\n  db: [{table: deals, where: {id: {like: x}}, absent: true}]"),
            "takes one of contains, not, id_of",
        ),
        (
            _one(BASE + "  turns: [{say: hi}]\n  db: [{table: deals, where: {id: 1}, expect: {stage: {was: x}}}]"),
            "takes one of contains, not, changed",
        ),
        (
            _one(BASE + "  turns: [{say: hi}]\n  db: [{table: deals, where: {id: 1}, expect: {stage: {changed: 1}}}]"),
            "changed is true or false",
        ),
        (
            _one(BASE + "  turns: [{say: hi}]\n  db: [{table: deals, where: {id: 1}, absent: false}]"),
            "can only be true",
        ),
        (_one(BASE + "  turns: [{say: hi}]\n  db: [{table: deals, where: {id: 1}, count: -1}]"), "cannot be negative"),
        (_one(BASE + "  turns: [{say: hi}]\n  cleanup: {}"), "`cleanup` is empty"),
        (_one(BASE + "  turns: [{say: hi}]\n" + BASE + "  turns: [{say: hi}]"), "the name is used twice"),
    ],
)
def test_invalid_sets_are_refused_with_where_and_why(text: str, message: str) -> None:
    with pytest.raises(ConversationSetError) as caught:
        parse_conversations(text, "set.yml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("set.yml")


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("[{table: dealz, where: {id: 1}, absent: true}]", "no table 'dealz'"),
        ("[{table: deals, where: {nme: x}, absent: true}]", "has no column 'nme'"),
        ("[{table: deals, where: {id: 1}, expect: {stag: x}}]", "has no column 'stag'"),
        (
            "[{table: deals, where: {owner_id: {id_of: {table: userz, where: {username: a}}}}, absent: true}]",
            "no table 'userz'",
        ),
    ],
)
def test_tables_and_columns_are_checked_against_the_schema(db: str, message: str) -> None:
    text = _one(BASE + f"  turns: [{{say: hi}}]\n  db: {db}")
    with pytest.raises(ConversationSetError, match=message):
        parse_conversations(text, "set.yml", small_metadata())


# --- placeholders -----------------------------------------------------------------------------------------
def test_unique_numbers_differ_for_every_conversation_of_a_run_and_make_names() -> None:
    numbers = [unique_number(89_990, i) for i in range(2_000)]
    assert len(set(numbers)) == len(numbers)
    assert all(10_000 <= n < 100_000 for n in numbers)
    words = {word_for(n) for n in numbers}
    assert len(words) == len(numbers)
    assert all(w.isalpha() and w.islower() and len(w) == 10 for w in words)
    assert word_for(48213) == "nuvolokemi"
    assert placeholder_values(48213) == {"n": "48213", "word": "nuvolokemi", "Word": "Nuvolokemi"}


def test_filling_replaces_placeholders_in_turns_and_checks_only() -> None:
    conversation = parse_conversations(VALID)[0].filled(48213)
    assert conversation.turns[0].say == "move deal 48213 to won"
    assert conversation.turns[0].expect_all == ("Deal Nuvolokemi", "?")
    assert conversation.db[0].where["name"] == "Deal Nuvolokemi"
    assert conversation.cleanup_db[0].where == {"name": "Deal Nuvolokemi"}
    assert conversation.name == "move-deal"


# --- replies ----------------------------------------------------------------------------------------------
def test_reply_checks_ignore_case_and_typographic_quotes() -> None:
    replies = [
        {"text": "I can’t find a deal called “Hooli”.", "buttons": []},
        {"text": "Which one?", "buttons": [{"title": "Crimson Pine Retail (Software)", "payload": "/a"}]},
    ]
    assert normalise("  I CAN’T\u00a0find ") == "i can't find"
    ok = Turn(say="x", expect_any=["can't find", "nope"], expect_all=["HOOLI", "which one"], expect_buttons=["retail"])
    assert reply_problems(ok, replies) == []
    bad = Turn(
        say="x", expect_any=["won"], expect_all=["Hooli", "300,000"], expect_none=["hooli"], expect_buttons=["X"]
    )
    assert [c for c, _ in reply_problems(bad, replies)] == ["expect_any", "expect_all", "expect_none", "expect_buttons"]
    assert "300,000" in dict(reply_problems(bad, replies))["expect_all"]


def test_a_tap_clicks_the_button_named_or_numbered() -> None:
    replies = [
        {
            "text": "Which one?",
            "buttons": [
                {"title": "Media", "key": "k1", "payload": "/p1"},
                {"title": "Textiles", "key": "k2", "payload": "/p2"},
            ],
        }
    ]
    assert (tapped_button(2, replies) or {}).get("key") == "k2"
    assert (tapped_button("textiles", replies) or {}).get("key") == "k2"
    assert tapped_button(3, replies) is None
    assert tapped_button("Energy", replies) is None
    assert tapped_button(1, []) is None


# --- database checks --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (Stage.WON, "Closed Won"),
        (True, "true"),
        (48000, "48000"),
        (Decimal("48000.00"), "48000"),
        (Decimal("925.930"), "925.93"),
        (Decimal("0.50"), "0.5"),
        (1.5, "1.5"),
        (dt.date(2027, 1, 15), "2027-01-15"),
        (["TH", "MO"], '["TH", "MO"]'),
        ("Acme", "Acme"),
    ],
)
def test_values_compare_as_text(value: Any, text: str | None) -> None:
    assert as_text(value) == text


def test_expect_compares_one_live_row_as_text(database: tuple[Database, Engine]) -> None:
    db, _ = database
    alice = {"id_of": {"table": "users", "where": {"username": "alice"}}}
    holds = check(
        table="deals",
        where={"name": "Acme - Fleet", "owner_id": alice},
        expect={"stage": "Open", "amount": 48000, "closes": "2027-01-15", "hot": True, "name": {"contains": "FLEET"}},
    )
    assert db.problem(holds) is None
    wrong = check(table="deals", where={"id": 1}, expect={"stage": "Closed Won", "amount": "48000.01"})
    problem = db.problem(wrong)
    assert problem is not None
    assert "stage is 'Open', expected 'Closed Won'" in problem and "amount is '48000'" in problem
    assert db.problem(check(table="deals", where={"owner_id": 1}, expect={"hot": True})) == (
        "2 rows match, expected exactly one"
    )
    assert db.problem(check(table="deals", where={"stage": {"not": "Open"}}, expect={"name": "Acme - Pilot"})) is None
    assert db.problem(check(table="deals", where={"closes": None, "hot": None}, expect={"id": 3})) is None


def test_soft_deleted_rows_are_gone_unless_asked_for(database: tuple[Database, Engine]) -> None:
    db, _ = database
    assert db.problem(check(table="deals", where={"name": "Acme - Gone"}, absent=True)) is None
    assert db.problem(check(table="deals", where={"name": "Acme - Gone"}, count=1, include_deleted=True)) is None
    assert db.problem(check(table="deals", where={"owner_id": 1}, count=3)) == "2 rows match, expected 3"
    assert db.problem(check(table="deals", where={"name": {"contains": "acme"}}, absent=True)) == (
        "2 rows match, expected 0"
    )


def test_changes_are_measured_against_the_snapshot_before_the_turns(database: tuple[Database, Engine]) -> None:
    db, engine = database
    deals = db.metadata.tables["deals"]
    grew = check(table="deals", where={"owner_id": 1}, count_change=1)
    same = check(table="deals", where={"id": 1}, expect={"stage": {"changed": False}, "amount": {"changed": False}})
    moved = check(table="deals", where={"id": 1}, expect={"stage": {"changed": True}})
    before = {id(c): db.snapshot(c) for c in (grew, same, moved)}
    assert before[id(grew)].count == 2
    with engine.begin() as conn:
        conn.execute(insert(deals).values(id=5, name="Acme - New", stage=Stage.OPEN, owner_id=1))
        conn.execute(deals.update().where(deals.c.id == 1).values(stage=Stage.WON))
    assert db.problem(grew, before[id(grew)]) is None
    assert db.problem(moved, before[id(moved)]) is None
    problem = db.problem(same, before[id(same)])
    assert problem == "stage changed: 'Open' → 'Closed Won'"
    assert db.problem(check(table="deals", where={"owner_id": 1}, count_change=0), before[id(grew)]) == (
        "the count changed by +1, not +0"
    )
    missing = db.snapshot(check(table="deals", where={"id": 99}, expect={"stage": {"changed": False}}))
    assert missing.problem == "before the conversation 0 rows matched, not exactly one"


def test_checks_that_cannot_be_evaluated_say_why(database: tuple[Database, Engine]) -> None:
    db, _ = database
    nobody = {"id_of": {"table": "users", "where": {"username": "mallory"}}}
    assert "matched 0 rows" in str(db.problem(check(table="deals", where={"owner_id": nobody}, absent=True)))
    assert "not a valid deals.stage value" in str(db.problem(check(table="deals", where={"stage": "Lost"}, count=0)))
    assert "no table" in str(db.problem(check(table="dealz", where={"id": 1}, count=0)))


def test_critical_checks_are_leaks_and_writes_after_a_refusal_no_or_stop() -> None:
    permission, plain = parse_conversations(VALID)[1], parse_conversations(VALID)[0]
    assert permission.critical("turn", "expect_none")
    assert permission.critical("db", "expect")
    assert not plain.critical("turn", "expect_none")
    assert plain.critical("turn", "expect_none", explicit=True)
    assert plain.critical("db", "absent")
    assert not plain.critical("db", "expect")
    assert not plain.critical("cleanup", "absent")


def test_latency_figures_work_from_a_single_sample() -> None:
    assert latency_figures([]) == {"n": 0}
    assert latency_figures([0.25]) == {"n": 1, "p50_ms": 250.0, "p95_ms": 250.0, "max_ms": 250.0}
    figures = latency_figures([0.1, 0.2, 0.3, 0.4])
    assert figures["n"] == 4 and figures["max_ms"] == 400.0


# --- a whole run against a scripted gateway ---------------------------------------------------------------
SCRIPTED = """
version: 1
conversations:
- name: pick-and-confirm
  skill: account_overview
  user: alice
  kind: write
  turns:
  - say: "tell me about crimson pine"
    expect_buttons: ["Systems"]
  - tap: "systems"
    expect_all: ["Crimson Pine Systems"]
  - say: "yes"
    expect_any: ["created"]
  db:
  - table: deals
    where: {name: "Deal {Word}"}
    expect: {stage: Open}
  cleanup:
    turns:
    - say: "undo that"
      expect_any: ["undone"]
    db:
    - table: deals
      where: {name: "Deal {Word}"}
      count_change: 0
- name: leaky
  skill: deal_status
  user: bob
  kind: read
  tags: [permission]
  turns:
  - say: "how's the acme deal"
    expect_any: ["can't find"]
    expect_none: ["48,000"]
  db:
  - table: deals
    where: {name: "Acme - Fleet"}
    expect: {stage: {changed: false}}
- name: slow
  skill: my_day
  user: carlos
  kind: read
  turns:
  - say: "slow"
    expect_any: ["agenda"]
- name: tap-without-buttons
  skill: my_day
  user: carlos
  kind: read
  turns:
  - say: "hi"
  - tap: 1
"""


async def test_a_run_plays_each_conversation_through_the_gateway_and_checks_it(
    database: tuple[Database, Engine],
) -> None:
    db, engine = database
    deals = db.metadata.tables["deals"]
    seen: list[tuple[str, str, str]] = []

    async def messages(request: web.Request) -> web.Response:
        body = await request.json()
        text, cid = body.get("text") or {"k1": "/r1", "k2": "/r2"}[body["button"]], body["conversation_id"]
        seen.append((request.headers["Authorization"], text, cid))
        if text == "slow":
            await asyncio.sleep(2)
        if text == "tell me about crimson pine":
            buttons = [
                {"title": "Crimson Pine Retail", "key": "k1", "payload": "/r1"},
                {"title": "Crimson Pine Systems", "key": "k2", "payload": "/r2"},
            ]
            return web.json_response({"conversation_id": cid, "replies": [{"text": "Which one?", "buttons": buttons}]})
        replies = {
            "/r2": "Crimson Pine Systems: 2 open deals.",
            "how's the acme deal": "Acme - Fleet is at $48,000.",
        }
        if text == "yes":
            with engine.begin() as conn:
                conn.execute(
                    insert(deals).values(name=f"Deal {word_for(unique_number(5, 0)).capitalize()}", stage=Stage.OPEN)
                )
            answer = "Created it."
        elif text == "undo that":
            with engine.begin() as conn:
                conn.execute(deals.delete().where(deals.c.name.like("Deal %")))
            answer = "Undone."
        else:
            answer = replies.get(text, "Hello!")
        return web.json_response({"conversation_id": cid, "replies": [{"text": answer, "buttons": []}]})

    app = web.Application()
    app.router.add_post("/api/v1/assistant/messages", messages)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        outcome = await play(
            parse_conversations(SCRIPTED),
            str(server.make_url("")),
            {"alice": "t-alice", "bob": "t-bob", "carlos": "t-carlos"},
            engine,
            metadata=db.metadata,
            salt=5,
            turn_timeout=0.5,
        )
    finally:
        await server.close()

    picked, leaky, slow, tapless = outcome.results
    assert picked.passed, picked.failures
    assert [t.said for t in picked.transcript] == [
        "tell me about crimson pine",
        "[tap Crimson Pine Systems] /r2",
        "yes",
        "undo that",
    ]
    assert {cid for _, _, cid in seen[:4]} == {picked.conversation_id}
    assert seen[0][0] == "Bearer t-alice"
    assert not leaky.passed
    assert [(f.where, f.check, f.critical) for f in leaky.failures] == [
        ("turn 1", "expect_any", False),
        ("turn 1", "expect_none", True),
    ]
    assert leaky.critical_checks == 2  # the leak check and the database after it
    assert [(f.where, f.check) for f in slow.failures] == [("turn 1", "http"), ("turn 1", "expect_any")]
    assert [(f.where, f.check) for f in tapless.failures] == [("turn 2", "tap")]
    assert outcome.passed == 1 and outcome.success_rate == 0.25
    assert [name for name, _ in outcome.critical_failures] == ["leaky"]
    assert len(outcome.latency["write"]) == 4  # three turns and the cleanup turn
    assert len(outcome.latency["read"]) == 2  # the slow turn timed out and is not a sample
    summary = outcome.summary()
    assert summary["by_skill"]["my_day"] == {"conversations": 2, "passed": 0}
    assert summary["critical_checks"]["failed"] == 1
    assert "1/4 passed" in summary_text(summary)
    report = outcome.report()
    assert "transcript" not in report["results"][0] and report["results"][1]["transcript"]


# --- the real set -----------------------------------------------------------------------------------------
CONVERSATIONS = PROJECT_ROOT / "bench" / "conversations.yml"
NOT_SKILLS = {"affirm", "deny", "inform", "choose_record", "choose_other"}  # answers inside other conversations
# Not rep skills over CRM records: a handoff opens a ticket (no cleanup can undo it; tests/e2e/test_handoff.py,
# bench/handoff.py), a product question reads the knowledge base (tests/unit/actions/test_knowledge_action.py),
# a prospect's demo request is a visitor's flow (bench/prospects.py, tests/e2e/test_prospects.py).
NOT_SKILLS |= {"human_handoff", "ask_product_question", "request_demo"}


def test_the_benchmark_set_is_valid_and_covers_every_skill() -> None:
    from crm_backend.models import Base

    conversations = parse_conversations(CONVERSATIONS.read_text(encoding="utf-8"), str(CONVERSATIONS), Base.metadata)
    assert len(conversations) >= 110
    intents = set(yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))["intents"])
    skills = set(skill_counts(conversations))
    assert intents - NOT_SKILLS <= skills, sorted(intents - NOT_SKILLS - skills)
    assert skills <= intents, sorted(skills - intents)
    tags = {t for c in conversations for t in c.tags}
    assert {"permission", "deny", "stop", "undo", "which_one", "other_one", "follow_up", "form"} <= tags
    for conversation in conversations:
        writes = any(c.shows_write for c in conversation.db)
        assert not writes or conversation.cleanup_db, f"{conversation.name} writes but has no cleanup checks"
        if "permission" in conversation.tags:
            guarded = any(t.expect_none for t in conversation.turns) or conversation.db
            assert guarded, f"{conversation.name} checks no leak and no write"
    for kind in ("read", "write"):
        assert sum(c.kind == kind for c in conversations) >= 40
