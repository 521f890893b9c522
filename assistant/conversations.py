"""Scripted end-to-end conversations (bench/conversations.yml): load them, play each one through the
gateway over HTTP as a demo rep, and check the replies and the database state they leave behind.

The file format is documented at the top of bench/conversations.yml. In short, a conversation is
a user, the skill it exercises, `turns` (what the rep says, or a button they tap, and words the
replies must or must not contain), `db` checks after the turns, and an optional `cleanup` (turns
such as "undo that", then checks) that leaves the shared database as the conversation found it.

Conversations are played one after another, each in a new conversation id: they share the demo
users' undo history and the database, so running them concurrently would mix their writes.
Every check is evaluated even after an earlier one failed, so a leak or a write on "no" is always
seen. Such checks are *critical* (see `Conversation.critical`): a run must pass all of them.

Used by tests/e2e/test_conversations.py (against the e2e stack) and `crm-assistant bench skills`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from sqlalchemy import Column, ColumnElement, MetaData, String, Table, cast, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

FORMAT_VERSION = 1
USERS = ("alice", "bob", "maria", "carlos")
KINDS = ("read", "write")
# What a conversation is about besides its skill; `permission`, `deny` and `stop` make checks critical.
TAGS = frozenset(
    {"permission", "deny", "stop", "undo", "which_one", "other_one", "follow_up", "form", "voice", "typo", "manager"}
)
CRITICAL_TAGS = frozenset({"permission", "deny", "stop"})
PLACEHOLDERS = ("n", "word", "Word")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
SKILL_NAME = re.compile(r"^[a-z][a-z_]*$")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SYLLABLES = ("ba", "ke", "lo", "mi", "nu", "ra", "so", "ti", "vo", "ze")  # digit → syllable for {word}
WHERE_OPS = ("contains", "not", "id_of")
EXPECT_OPS = ("contains", "not", "changed")
OUTCOMES = ("expect", "absent", "count", "count_change")
DEFAULT_TURN_TIMEOUT = 60.0


class ConversationSetError(ValueError):
    """The conversation file is not valid; the message says where."""


class CheckFailed(Exception):
    """A database check could not be evaluated as written (no such row for id_of, a bad value)."""


# --- the model ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Turn:
    """One thing the rep does: `say` a text, or `tap` a button of the previous reply (its 1-based
    number, or words of its title), and what the assistant's replies must and must not contain."""

    say: str | None = None
    tap: int | str | None = None
    expect_any: tuple[str, ...] = ()
    expect_all: tuple[str, ...] = ()
    expect_none: tuple[str, ...] = ()
    expect_buttons: tuple[str, ...] = ()
    kind: str | None = None  # read/write for the latency split; default: the conversation's kind
    critical: bool = False  # its expect_none is a leak check even outside a permission conversation


@dataclass(frozen=True)
class DbCheck:
    """Rows of `table` matching `where` (live ones: soft-deleted rows are left out unless
    `include_deleted`), and exactly one outcome: `expect` (one row, these column values), `absent`,
    `count` (that many rows) or `count_change` (that many more than before the conversation)."""

    table: str
    where: Mapping[str, Any]
    expect: Mapping[str, Any] | None = None
    absent: bool = False
    count: int | None = None
    count_change: int | None = None
    include_deleted: bool = False
    critical: bool = False

    @property
    def outcome(self) -> str:
        """Which of expect, absent, count and count_change this check is."""
        if self.absent:
            return "absent"
        if self.count is not None:
            return "count"
        return "count_change" if self.count_change is not None else "expect"

    @property
    def needs_snapshot(self) -> bool:
        """Whether the check compares with the state before the conversation."""
        changed = any(isinstance(v, Mapping) and "changed" in v for v in (self.expect or {}).values())
        return self.count_change is not None or changed

    @property
    def shows_write(self) -> bool:
        """Whether passing means the conversation wrote something (so it needs a cleanup)."""
        if self.count_change:
            return True
        return any(not (isinstance(v, Mapping) and v.get("changed") is False) for v in (self.expect or {}).values())


@dataclass(frozen=True)
class Conversation:
    """One scripted conversation: who talks, about which skill, the turns and the checks after them."""

    name: str
    skill: str
    user: str
    kind: str
    turns: tuple[Turn, ...]
    tags: frozenset[str] = frozenset()
    db: tuple[DbCheck, ...] = ()
    cleanup_turns: tuple[Turn, ...] = ()
    cleanup_db: tuple[DbCheck, ...] = ()
    note: str = ""

    def critical(self, section: str, what: str, explicit: bool = False) -> bool:
        """Whether a check is critical: a reply that must not leak (`expect_none` in a permission
        conversation) or the database after a refusal, a "no" or a "stop" (`db` checks of permission,
        deny and stop conversations, and every `absent` check outside the cleanup)."""
        if explicit:
            return True
        if what == "expect_none":
            return "permission" in self.tags
        if section == "db":
            return bool(self.tags & CRITICAL_TAGS) or what == "absent"
        return False

    def filled(self, n: int) -> Conversation:
        """A copy with the placeholders ({n}, {word}, {Word}) replaced for the number `n`."""
        values = placeholder_values(n)
        return replace(
            self,
            turns=tuple(_fill(t, values) for t in self.turns),
            db=tuple(_fill(c, values) for c in self.db),
            cleanup_turns=tuple(_fill(t, values) for t in self.cleanup_turns),
            cleanup_db=tuple(_fill(c, values) for c in self.cleanup_db),
        )

    def checks(self) -> Iterable[tuple[str, int, DbCheck]]:
        for i, check in enumerate(self.db, 1):
            yield "db", i, check
        for i, check in enumerate(self.cleanup_db, 1):
            yield "cleanup db", i, check


# --- placeholders -----------------------------------------------------------------------------------------
def unique_number(salt: int, index: int) -> int:
    """A five-digit number, different for every index (below 90,000) of one run."""
    return 10_000 + (salt + index) % 90_000


def word_for(n: int) -> str:
    """A pronounceable lower-case word made of `n`'s digits ("48213" → "nuvolokemi"): unique
    names for records a conversation creates that still read like names."""
    return "".join(SYLLABLES[int(d)] for d in str(n))


def placeholder_values(n: int) -> dict[str, str]:
    word = word_for(n)
    return {"n": str(n), "word": word, "Word": word.capitalize()}


def fill(value: Any, values: Mapping[str, str]) -> Any:
    """`value` with every {placeholder} in its strings (and mapping keys) replaced."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, Mapping):
        return {fill(k, values): fill(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(fill(v, values) for v in value)
    return value


def _fill(obj: Any, values: Mapping[str, str]) -> Any:
    return replace(obj, **{f: fill(getattr(obj, f), values) for f in obj.__dataclass_fields__})


# --- loading ---------------------------------------------------------------------------------------------
def load_conversations(path: Path, metadata: MetaData | None = None) -> list[Conversation]:
    """The conversations of a YAML file, validated (and checked against `metadata`'s tables)."""
    return parse_conversations(path.read_text(encoding="utf-8"), str(path), metadata)


def parse_conversations(
    text: str, source: str = "<conversations>", metadata: MetaData | None = None
) -> list[Conversation]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConversationSetError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConversationSetError(f"{source}: expected a mapping with `version` and `conversations`")
    _keys(data, {"version", "anchors", "conversations"}, source)  # `anchors`: YAML anchors reused below
    if data.get("version") != FORMAT_VERSION:
        raise ConversationSetError(f"{source}: `version` must be {FORMAT_VERSION}")
    items = data.get("conversations")
    if not isinstance(items, list) or not items:
        raise ConversationSetError(f"{source}: `conversations` must be a non-empty list")
    conversations: list[Conversation] = []
    seen: set[str] = set()
    for i, item in enumerate(items, 1):
        where = f"{source}: conversation {i}"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            where += f" ({item['name']})"
        conversation = _conversation(item, where)
        if conversation.name in seen:
            raise ConversationSetError(f"{where}: the name is used twice")
        seen.add(conversation.name)
        conversations.append(conversation)
    if metadata is not None:
        check_schema(conversations, metadata)
    return conversations


def _keys(data: Mapping[str, Any], allowed: set[str], where: str, required: Iterable[str] = ()) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConversationSetError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ConversationSetError(f"{where}: missing {', '.join(missing)}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConversationSetError(f"{where}: must be a non-empty string")
    _placeholders(value, where)
    return value


def _placeholders(value: Any, where: str) -> None:
    if isinstance(value, str):
        for name in PLACEHOLDER.findall(value):
            if name not in PLACEHOLDERS:
                raise ConversationSetError(f"{where}: unknown placeholder {{{name}}} (known: {PLACEHOLDERS})")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _placeholders(k, where)
            _placeholders(v, where)
    elif isinstance(value, list):
        for v in value:
            _placeholders(v, where)


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise ConversationSetError(f"{where}: must be a non-empty list of strings")
    return tuple(_text(v, f"{where}[{n}]") for n, v in enumerate(value, 1))


def _conversation(item: Any, where: str) -> Conversation:
    if not isinstance(item, dict):
        raise ConversationSetError(f"{where}: must be a mapping")
    _keys(
        item,
        {"name", "skill", "user", "kind", "tags", "note", "turns", "db", "cleanup"},
        where,
        ("name", "skill", "user", "kind", "turns"),
    )
    name = item["name"]
    if not isinstance(name, str) or not NAME.match(name) or len(name) > 60:
        raise ConversationSetError(f"{where}: `name` must be 1-60 lower-case letters, digits and dashes")
    skill = item["skill"]
    if not isinstance(skill, str) or not SKILL_NAME.match(skill):
        raise ConversationSetError(f"{where}: `skill` must be an intent name like list_open_deals")
    if item["user"] not in USERS:
        raise ConversationSetError(f"{where}: `user` must be one of {', '.join(USERS)}")
    if item["kind"] not in KINDS:
        raise ConversationSetError(f"{where}: `kind` must be read or write")
    tags = item.get("tags") or []
    if not isinstance(tags, list) or any(t not in TAGS for t in tags):
        raise ConversationSetError(f"{where}: `tags` must be a list of {', '.join(sorted(TAGS))}")
    note = item.get("note") or ""
    if not isinstance(note, str):
        raise ConversationSetError(f"{where}: `note` must be a string")
    turns = _turns(item["turns"], f"{where}: turns")
    db = _checks(item.get("db"), f"{where}: db")
    cleanup_turns: tuple[Turn, ...] = ()
    cleanup_db: tuple[DbCheck, ...] = ()
    if "cleanup" in item:
        cleanup = item["cleanup"]
        if not isinstance(cleanup, dict):
            raise ConversationSetError(f"{where}: `cleanup` must be a mapping with `turns` and/or `db`")
        _keys(cleanup, {"turns", "db"}, f"{where}: cleanup")
        if cleanup.get("turns") is not None:
            cleanup_turns = _turns(cleanup["turns"], f"{where}: cleanup turns")
        cleanup_db = _checks(cleanup.get("db"), f"{where}: cleanup db")
        if not cleanup_turns and not cleanup_db:
            raise ConversationSetError(f"{where}: `cleanup` is empty")
    if turns and turns[0].tap is not None:
        raise ConversationSetError(f"{where}: the first turn cannot tap a button (there is no reply yet)")
    return Conversation(
        name=name,
        skill=skill,
        user=item["user"],
        kind=item["kind"],
        turns=turns,
        tags=frozenset(tags),
        db=db,
        cleanup_turns=cleanup_turns,
        cleanup_db=cleanup_db,
        note=note,
    )


def _turns(value: Any, where: str) -> tuple[Turn, ...]:
    if not isinstance(value, list) or not value:
        raise ConversationSetError(f"{where}: must be a non-empty list")
    return tuple(_turn(t, f"{where}[{n}]") for n, t in enumerate(value, 1))


def _turn(value: Any, where: str) -> Turn:
    if not isinstance(value, dict):
        raise ConversationSetError(f"{where}: must be a mapping")
    _keys(value, {"say", "tap", "expect_any", "expect_all", "expect_none", "expect_buttons", "kind", "critical"}, where)
    if ("say" in value) == ("tap" in value):
        raise ConversationSetError(f"{where}: give exactly one of `say` and `tap`")
    tap = value.get("tap")
    if "tap" in value and not (
        (isinstance(tap, int) and not isinstance(tap, bool) and tap >= 1) or (isinstance(tap, str) and tap.strip())
    ):
        raise ConversationSetError(f"{where}: `tap` is a button's number (from 1) or words of its title")
    kind = value.get("kind")
    if kind is not None and kind not in KINDS:
        raise ConversationSetError(f"{where}: `kind` must be read or write")
    critical = value.get("critical", False)
    if not isinstance(critical, bool):
        raise ConversationSetError(f"{where}: `critical` must be true or false")
    return Turn(
        say=_text(value["say"], f"{where}: say") if "say" in value else None,
        tap=tap,
        expect_any=_texts(value.get("expect_any"), f"{where}: expect_any"),
        expect_all=_texts(value.get("expect_all"), f"{where}: expect_all"),
        expect_none=_texts(value.get("expect_none"), f"{where}: expect_none"),
        expect_buttons=_texts(value.get("expect_buttons"), f"{where}: expect_buttons"),
        kind=kind,
        critical=critical,
    )


def _checks(value: Any, where: str) -> tuple[DbCheck, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise ConversationSetError(f"{where}: must be a non-empty list of checks")
    return tuple(_check(c, f"{where}[{n}]") for n, c in enumerate(value, 1))


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | dt.date)


def _where(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise ConversationSetError(f"{where}: `where` must be a non-empty mapping of column: value")
    for column, spec in value.items():
        if isinstance(spec, dict):
            if len(spec) != 1 or next(iter(spec)) not in WHERE_OPS:
                raise ConversationSetError(f"{where}: where.{column} takes one of {', '.join(WHERE_OPS)}")
            op, operand = next(iter(spec.items()))
            if op == "id_of":
                if not isinstance(operand, dict):
                    raise ConversationSetError(f"{where}: where.{column}.id_of needs `table` and `where`")
                _keys(operand, {"table", "where"}, f"{where}: where.{column}.id_of", ("table", "where"))
                _text(operand["table"], f"{where}: where.{column}.id_of.table")
                _where(operand["where"], f"{where}: where.{column}.id_of")
            elif op == "contains" and not isinstance(operand, str):
                raise ConversationSetError(f"{where}: where.{column}.contains takes a string")
            elif op == "not" and not _scalar(operand):
                raise ConversationSetError(f"{where}: where.{column}.not takes a plain value")
        elif not _scalar(spec):
            raise ConversationSetError(f"{where}: where.{column} must be a plain value or an operator mapping")
    _placeholders(value, where)
    return value


def _check(value: Any, where: str) -> DbCheck:
    if not isinstance(value, dict):
        raise ConversationSetError(f"{where}: must be a mapping")
    _keys(value, {"table", "where", "include_deleted", "critical", *OUTCOMES}, where, ("table", "where"))
    table = _text(value["table"], f"{where}: table")
    outcomes = [k for k in OUTCOMES if k in value]
    if len(outcomes) != 1:
        raise ConversationSetError(f"{where}: give exactly one of {', '.join(OUTCOMES)}")
    expect = value.get("expect")
    if "expect" in value:
        if not isinstance(expect, dict) or not expect:
            raise ConversationSetError(f"{where}: `expect` must be a non-empty mapping of column: value")
        for column, spec in expect.items():
            if isinstance(spec, dict):
                if len(spec) != 1 or next(iter(spec)) not in EXPECT_OPS:
                    raise ConversationSetError(f"{where}: expect.{column} takes one of {', '.join(EXPECT_OPS)}")
                op, operand = next(iter(spec.items()))
                if op == "changed" and not isinstance(operand, bool):
                    raise ConversationSetError(f"{where}: expect.{column}.changed is true or false")
                if op == "contains" and not isinstance(operand, str):
                    raise ConversationSetError(f"{where}: expect.{column}.contains takes a string")
                if op == "not" and not _scalar(operand):
                    raise ConversationSetError(f"{where}: expect.{column}.not takes a plain value")
            elif not _scalar(spec):
                raise ConversationSetError(f"{where}: expect.{column} must be a plain value or an operator mapping")
        _placeholders(expect, where)
    if "absent" in value and value["absent"] is not True:
        raise ConversationSetError(f"{where}: `absent` can only be true")
    for key in ("count", "count_change"):
        if key in value and (not isinstance(value[key], int) or isinstance(value[key], bool)):
            raise ConversationSetError(f"{where}: `{key}` must be a whole number")
    if "count" in value and value["count"] < 0:
        raise ConversationSetError(f"{where}: `count` cannot be negative")
    for key in ("include_deleted", "critical"):
        if not isinstance(value.get(key, False), bool):
            raise ConversationSetError(f"{where}: `{key}` must be true or false")
    return DbCheck(
        table=table,
        where=_where(value["where"], where),
        expect=expect,
        absent=bool(value.get("absent", False)),
        count=value.get("count"),
        count_change=value.get("count_change"),
        include_deleted=bool(value.get("include_deleted", False)),
        critical=bool(value.get("critical", False)),
    )


def check_schema(conversations: Sequence[Conversation], metadata: MetaData) -> None:
    """Every table and column the checks name exists in `metadata` (a typo fails before any turn)."""

    def columns(table: str, names: Iterable[str], where: str) -> Table:
        if table not in metadata.tables:
            raise ConversationSetError(f"{where}: no table {table!r}")
        known = metadata.tables[table]
        for name in names:
            if name not in known.c:
                raise ConversationSetError(f"{where}: table {table!r} has no column {name!r}")
        return known

    def where_clause(table: str, where: Mapping[str, Any], place: str) -> None:
        columns(table, where, place)
        for spec in where.values():
            if isinstance(spec, Mapping) and "id_of" in spec:
                inner = spec["id_of"]
                known = columns(inner["table"], inner["where"], place)
                if "id" not in known.c:
                    raise ConversationSetError(f"{place}: table {inner['table']!r} has no id column")
                where_clause(inner["table"], inner["where"], place)

    for conversation in conversations:
        for section, n, check in conversation.checks():
            place = f"{conversation.name}: {section} {n}"
            where_clause(check.table, check.where, place)
            columns(check.table, (check.expect or {}), place)


def skill_counts(conversations: Iterable[Conversation]) -> dict[str, int]:
    """How many conversations exercise each skill, most first."""
    return dict(Counter(c.skill for c in conversations).most_common())


# --- replies ---------------------------------------------------------------------------------------------
def normalise(text: str) -> str:
    """Lower case, typographic quotes and dashes made plain, whitespace collapsed: what checks compare."""
    table = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " "})
    return " ".join(text.translate(table).lower().split())


def reply_problems(turn: Turn, replies: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(check, what is wrong) for each expectation of `turn` the replies do not meet."""
    text = normalise("\n".join(str(r.get("text") or "") for r in replies))
    problems: list[tuple[str, str]] = []
    if turn.expect_any and not any(normalise(w) in text for w in turn.expect_any):
        problems.append(("expect_any", f"none of {list(turn.expect_any)} in the reply"))
    missing = [w for w in turn.expect_all if normalise(w) not in text]
    if missing:
        problems.append(("expect_all", f"missing {missing}"))
    leaked = [w for w in turn.expect_none if normalise(w) in text]
    if leaked:
        problems.append(("expect_none", f"must not appear but did: {leaked}"))
    titles = [normalise(str(b.get("title") or "")) for b in buttons_of(replies)]
    absent = [w for w in turn.expect_buttons if not any(normalise(w) in t for t in titles)]
    if absent:
        problems.append(("expect_buttons", f"no button titled {absent} (buttons: {titles})"))
    return problems


def buttons_of(replies: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [b for r in replies for b in (r.get("buttons") or []) if isinstance(b, Mapping)]


def tapped_button(tap: int | str, replies: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The button `tap` names (its number from 1, or words of its title): a click sends its `key`."""
    buttons = buttons_of(replies)
    if isinstance(tap, int):
        return buttons[tap - 1] if 0 < tap <= len(buttons) else None
    wanted = normalise(tap)
    return next((b for b in buttons if wanted in normalise(str(b.get("title") or ""))), None)


# --- the database ----------------------------------------------------------------------------------------
def as_text(value: Any) -> str | None:
    """A column value as the checks compare it: enums by value, numbers without trailing zeros,
    booleans as true/false, dates in ISO form, JSON sorted; None stays None."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
        text = format(number.normalize(), "f") if number == number.to_integral_value() else format(number, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _python_type(column: Column[Any]) -> Any:
    try:
        return column.type.python_type
    except NotImplementedError:
        return object


def coerce(column: Column[Any], value: Any) -> Any:
    """A YAML value as the column's Python type, to compare with in SQL or after reading."""
    if value is None:
        return None
    kind = _python_type(column)
    try:
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return kind(value.value if isinstance(value, enum.Enum) else str(value))
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(text)
            return text in ("true", "yes", "1")
        if kind is int:
            return int(value)
        if kind is Decimal:
            return Decimal(str(value))
        if kind is float:
            return float(value)
        if kind is dt.datetime:
            moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        if kind is dt.date:
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if kind is str:
            return str(value)
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise CheckFailed(f"{value!r} is not a valid {column.table.name}.{column.name} value") from exc
    return value


@dataclass
class Snapshot:
    """What a check saw before the conversation: the row count and (one row's) column values."""

    count: int | None = None
    row: dict[str, Any] | None = None
    problem: str | None = None


class Database:
    """Evaluates `DbCheck`s with SQLAlchemy Core on the store's engine (any table of `metadata`)."""

    def __init__(self, engine: Engine, metadata: MetaData | None = None) -> None:
        if metadata is None:
            from crm_backend.models import Base

            metadata = Base.metadata
        self.engine, self.metadata = engine, metadata

    def _table(self, name: str) -> Table:
        if name not in self.metadata.tables:
            raise CheckFailed(f"no table {name!r}")
        return self.metadata.tables[name]

    def _conditions(self, table: Table, where: Mapping[str, Any], include_deleted: bool) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if not include_deleted and "deleted_at" in table.c:
            conditions.append(table.c.deleted_at.is_(None))
        for name, spec in where.items():
            if name not in table.c:
                raise CheckFailed(f"table {table.name!r} has no column {name!r}")
            column = table.c[name]
            if isinstance(spec, Mapping):
                op, operand = next(iter(spec.items()))
                if op == "contains":
                    text = cast(column, String) if _python_type(column) is not str else column
                    conditions.append(func.lower(text).contains(str(operand).lower(), autoescape=True))
                elif op == "not":
                    if operand is None:
                        conditions.append(column.is_not(None))
                    else:
                        conditions.append(or_(column != coerce(column, operand), column.is_(None)))
                else:  # id_of
                    conditions.append(column == self._id_of(operand["table"], operand["where"]))
            elif spec is None:
                conditions.append(column.is_(None))
            else:
                conditions.append(column == coerce(column, spec))
        return conditions

    def _id_of(self, table_name: str, where: Mapping[str, Any]) -> Any:
        table = self._table(table_name)
        with self.engine.connect() as conn:
            ids = conn.execute(select(table.c.id).where(*self._conditions(table, where, False)).limit(2)).all()
        if len(ids) != 1:
            raise CheckFailed(f"id_of {table_name} {dict(where)} matched {len(ids)} rows, not one")
        return ids[0][0]

    def count(self, check: DbCheck) -> int:
        table = self._table(check.table)
        stmt = (
            select(func.count()).select_from(table).where(*self._conditions(table, check.where, check.include_deleted))
        )
        with self.engine.connect() as conn:
            return int(conn.scalar(stmt) or 0)

    def rows(self, check: DbCheck, limit: int = 2) -> list[dict[str, Any]]:
        table = self._table(check.table)
        stmt = select(table).where(*self._conditions(table, check.where, check.include_deleted)).limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def snapshot(self, check: DbCheck) -> Snapshot:
        """The state a `count_change` or `changed` check compares with (taken before the turns)."""
        try:
            if check.count_change is not None:
                return Snapshot(count=self.count(check))
            found = self.rows(check)
        except (CheckFailed, SQLAlchemyError) as exc:
            return Snapshot(problem=f"before the conversation: {_short(exc)}")
        if len(found) != 1:
            return Snapshot(problem=f"before the conversation {len(found)} rows matched, not exactly one")
        return Snapshot(row=found[0])

    def problem(self, check: DbCheck, before: Snapshot | None = None) -> str | None:
        """What is wrong with the database for `check` (None when it holds)."""
        try:
            return self._problem(check, before)
        except (CheckFailed, SQLAlchemyError) as exc:
            return _short(exc)

    def _problem(self, check: DbCheck, before: Snapshot | None) -> str | None:
        if check.absent or check.count is not None:
            wanted = 0 if check.absent else check.count
            found = self.count(check)
            return None if found == wanted else f"{found} rows match, expected {wanted}"
        if check.count_change is not None:
            if before is None or before.count is None:
                return (before.problem if before else None) or "no count from before the conversation"
            found = self.count(check)
            change = found - before.count
            return (
                None
                if change == check.count_change
                else f"the count changed by {change:+d}, not {check.count_change:+d}"
            )
        rows = self.rows(check)
        if len(rows) != 1:
            return f"{len(rows)} rows match, expected exactly one"
        row = rows[0]
        table = self._table(check.table)
        wrong = []
        for name, spec in (check.expect or {}).items():
            actual = as_text(row.get(name))
            column = table.c[name]
            if isinstance(spec, Mapping):
                op, operand = next(iter(spec.items()))
                if op == "changed":
                    if before is None or before.row is None:
                        return (before.problem if before else None) or "no row from before the conversation"
                    then = as_text(before.row.get(name))
                    if (actual != then) != operand:
                        wrong.append(f"{name} {'unchanged' if operand else 'changed'}: {then!r} → {actual!r}")
                elif op == "not":
                    if actual == as_text(coerce(column, operand)):
                        wrong.append(f"{name} is {actual!r}, expected anything else")
                elif str(operand).lower() not in (actual or "").lower():  # contains
                    wrong.append(f"{name} is {actual!r}, expected it to contain {operand!r}")
            else:
                expected = as_text(coerce(column, spec))
                if actual != expected:
                    wrong.append(f"{name} is {actual!r}, expected {expected!r}")
        return "; ".join(wrong) or None


def _short(what: BaseException | str) -> str:
    return " ".join(str(what).split())[:300]


# --- playing ---------------------------------------------------------------------------------------------
@dataclass
class Failure:
    where: str  # "turn 2", "db 1", "cleanup turn 1", "cleanup db 1"
    check: str  # expect_any, expect_all, expect_none, expect_buttons, http, tap, expect, absent, count, count_change
    detail: str
    critical: bool = False


@dataclass
class TurnRecord:
    section: str  # "turn" or "cleanup turn"
    said: str
    replies: list[dict[str, Any]]
    ms: float | None
    kind: str
    status: int | None = None
    error: str | None = None


@dataclass
class ConversationResult:
    name: str
    skill: str
    user: str
    kind: str
    tags: list[str]
    conversation_id: str
    passed: bool = True
    failures: list[Failure] = field(default_factory=list)
    transcript: list[TurnRecord] = field(default_factory=list)
    critical_checks: int = 0
    seconds: float = 0.0

    def fail(self, failure: Failure) -> None:
        self.failures.append(failure)
        self.passed = False

    def as_dict(self, transcript: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not transcript:
            data.pop("transcript")
        return data


@dataclass
class SetResult:
    """Every conversation's result and the turns' latencies (seconds), split into read and write turns."""

    results: list[ConversationResult]
    latency: dict[str, list[float]]
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def success_rate(self) -> float:
        return self.passed / len(self.results) if self.results else 0.0

    @property
    def critical_failures(self) -> list[tuple[str, Failure]]:
        return [(r.name, f) for r in self.results for f in r.failures if f.critical]

    def summary(self) -> dict[str, Any]:
        by_skill: dict[str, dict[str, int]] = {}
        for r in self.results:
            entry = by_skill.setdefault(r.skill, {"conversations": 0, "passed": 0})
            entry["conversations"] += 1
            entry["passed"] += int(r.passed)
        return {
            "conversations": len(self.results),
            "passed": self.passed,
            "task_success_rate": round(self.success_rate, 4),
            "turns": sum(len(r.transcript) for r in self.results),
            "critical_checks": {
                "total": sum(r.critical_checks for r in self.results),
                "failed": len(self.critical_failures),
                "failures": [{"conversation": name, **asdict(f)} for name, f in self.critical_failures],
            },
            "latency_ms": {kind: latency_figures(samples) for kind, samples in self.latency.items()},
            "by_skill": dict(sorted(by_skill.items())),
            "seconds": round(self.seconds, 1),
        }

    def report(self) -> dict[str, Any]:
        """The summary, every conversation's outcome, and the transcripts of the failed ones."""
        return {
            **self.summary(),
            "results": [r.as_dict(transcript=not r.passed) for r in self.results],
        }


def latency_figures(samples: Sequence[float]) -> dict[str, Any]:
    """n, p50, p95 and max in milliseconds (p50/p95 need two samples)."""
    if not samples:
        return {"n": 0}
    if len(samples) == 1:
        ms = round(samples[0] * 1000, 1)
        return {"n": 1, "p50_ms": ms, "p95_ms": ms, "max_ms": ms}
    from assistant.bench import percentiles

    return percentiles(list(samples))


def summary_text(summary: Mapping[str, Any]) -> str:
    """The figures in a few lines, for a terminal."""
    critical = summary["critical_checks"]
    lines = [
        f"conversations: {summary['passed']}/{summary['conversations']} passed "
        f"(task success {summary['task_success_rate']:.1%}), {summary['turns']} turns in {summary['seconds']} s",
        f"critical checks (leaks, writes on no/stop): "
        f"{critical['total'] - critical['failed']}/{critical['total']} passed",
    ]
    for kind, figures in summary["latency_ms"].items():
        if figures.get("n"):
            lines.append(
                f"{kind} turns: n={figures['n']} p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
                f"max {figures['max_ms']} ms"
            )
    weak = [
        f"{skill} {v['passed']}/{v['conversations']}"
        for skill, v in summary["by_skill"].items()
        if v["passed"] < v["conversations"]
    ]
    if weak:
        lines.append("skills with failures: " + ", ".join(weak))
    return "\n".join(lines)


def conversation_id(salt: int, index: int, name: str) -> str:
    """A new id the gateway accepts (1-80 of letters, digits, '_', '-', '.', ':')."""
    return f"script-{salt}-{index:03d}-{name}"[:80]


class Gateway:
    """POSTs turns to the gateway's messages endpoint as a demo user, every call with a timeout."""

    def __init__(self, http: aiohttp.ClientSession, url: str, tokens: Mapping[str, str], timeout: float) -> None:
        self.http, self.url, self.tokens = http, url.rstrip("/") + "/api/v1/assistant/messages", tokens
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(
        self, user: str, text: str, cid: str, button: str | None = None
    ) -> tuple[int | None, list[dict[str, Any]], float, str | None]:
        """(HTTP status, replies, seconds, error); with `button`, a click on that button instead of `text`."""
        token = self.tokens.get(user)
        if token is None:
            return None, [], 0.0, f"no API token for {user}"
        started = time.perf_counter()
        try:
            async with self.http.post(
                self.url,
                json={"button": button, "conversation_id": cid} if button else {"text": text, "conversation_id": cid},
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout,
            ) as resp:
                body = await resp.json(content_type=None)
                elapsed = time.perf_counter() - started
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            return None, [], time.perf_counter() - started, f"{type(exc).__name__}: {_short(exc) or 'no answer'}"
        if resp.status != 200 or not isinstance(body, dict):
            return resp.status, [], elapsed, f"HTTP {resp.status}: {_short(json.dumps(body))}"
        replies = [r for r in body.get("replies") or [] if isinstance(r, dict)]
        return resp.status, replies, elapsed, None


class Player:
    """Plays conversations one at a time and collects their results and latencies."""

    def __init__(self, gateway: Gateway, database: Database, salt: int) -> None:
        self.gateway, self.database, self.salt = gateway, database, salt
        self.latency: dict[str, list[float]] = {"read": [], "write": []}

    async def play(self, script: Conversation, index: int) -> ConversationResult:
        started = time.perf_counter()
        conversation = script.filled(unique_number(self.salt, index))
        cid = conversation_id(self.salt, index, conversation.name)
        result = ConversationResult(
            conversation.name, conversation.skill, conversation.user, conversation.kind, sorted(conversation.tags), cid
        )
        before = {
            (section, n): self.database.snapshot(check)
            for section, n, check in conversation.checks()
            if check.needs_snapshot
        }
        await self._turns(conversation, conversation.turns, "turn", result)
        self._checks(conversation, "db", conversation.db, before, result)
        await self._turns(conversation, conversation.cleanup_turns, "cleanup turn", result)
        self._checks(conversation, "cleanup db", conversation.cleanup_db, before, result)
        result.seconds = round(time.perf_counter() - started, 2)
        return result

    async def _turns(
        self, conversation: Conversation, turns: Sequence[Turn], section: str, result: ConversationResult
    ) -> None:
        previous: list[dict[str, Any]] = next((t.replies for t in reversed(result.transcript) if t.status == 200), [])
        for n, turn in enumerate(turns, 1):
            where = f"{section} {n}"
            kind = turn.kind or ("write" if section == "cleanup turn" else conversation.kind)
            text = turn.say
            button: str | None = None
            if turn.tap is not None:
                tapped = tapped_button(turn.tap, previous)
                if tapped is None or not tapped.get("key"):
                    result.fail(Failure(where, "tap", f"no button {turn.tap!r} in the previous reply"))
                    result.transcript.append(TurnRecord(section, f"[tap {turn.tap}]", [], None, kind))
                    continue
                button = str(tapped["key"])
                text = f"[tap {tapped.get('title')}] {tapped.get('payload', '')}"
            if text is None:  # validation makes every turn say or tap
                continue
            status, replies, seconds, error = await self.gateway.send(
                conversation.user, text, result.conversation_id, button
            )
            record = TurnRecord(section, text, replies, round(seconds * 1000, 1), kind, status, error)
            result.transcript.append(record)
            if error:
                result.fail(Failure(where, "http", error))
            else:
                self.latency[kind].append(seconds)
                previous = replies
            critical = conversation.critical(section, "expect_none", turn.critical)
            if turn.expect_none and critical:
                result.critical_checks += 1
            for check, detail in reply_problems(turn, replies if not error else []):
                result.fail(Failure(where, check, detail, critical and check == "expect_none"))

    def _checks(
        self,
        conversation: Conversation,
        section: str,
        checks: Sequence[DbCheck],
        before: Mapping[tuple[str, int], Snapshot],
        result: ConversationResult,
    ) -> None:
        for n, check in enumerate(checks, 1):
            outcome = check.outcome
            critical = conversation.critical("db" if section == "db" else "cleanup", outcome, check.critical)
            result.critical_checks += int(critical)
            problem = self.database.problem(check, before.get((section, n)))
            if problem:
                detail = f"{check.table} where {dict(check.where)}: {problem}"
                result.fail(Failure(f"{section} {n}", outcome, detail, critical))


async def play(
    conversations: Sequence[Conversation],
    gateway_url: str,
    tokens: Mapping[str, str],
    engine: Engine,
    *,
    metadata: MetaData | None = None,
    salt: int | None = None,
    turn_timeout: float = DEFAULT_TURN_TIMEOUT,
    progress: Callable[[int, ConversationResult], None] | None = None,
) -> SetResult:
    """Play every conversation through the gateway at `gateway_url`, one after another, and check
    the database on `engine`. `tokens` are the demo users' API tokens; `salt` makes the {n}
    placeholders of this run (random unless given)."""
    database = Database(engine, metadata)
    check_schema(conversations, database.metadata)
    run_salt = secrets.randbelow(90_000) if salt is None else salt
    started = time.perf_counter()
    results: list[ConversationResult] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=turn_timeout)) as http:
        player = Player(Gateway(http, gateway_url, tokens, turn_timeout), database, run_salt)
        for index, conversation in enumerate(conversations):
            result = await player.play(conversation, index)
            results.append(result)
            if progress is not None:
                progress(index, result)
            await asyncio.sleep(0)
    return SetResult(results, player.latency, time.perf_counter() - started)
