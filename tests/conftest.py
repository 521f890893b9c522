"""Shared fixtures: a migrated CRM database (SQLite always, PostgreSQL when reachable) with demo data.

PostgreSQL tests use TEST_DATABASE_URL (default: the local server's `test` database) and run each
test in a schema of its own, dropped afterwards; they are skipped, with the reason shown, when the
server cannot be reached. CI machines run PostgreSQL, so there they always run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from assistant.bench_crm import postgres_unreachable
from crm_backend.demo import seed_demo
from crm_backend.migrate import upgrade
from crm_backend.models import Base
from crm_backend.services import auth, users
from crm_backend.store import Actor, Store

POSTGRES_URL = os.environ.get(
    "TEST_DATABASE_URL", os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
)


_PG_SKIP = postgres_unreachable(POSTGRES_URL)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run; each test gets a copy (migrating takes ~0.3 s)."""
    path = tmp_path_factory.mktemp("template") / "crm.sqlite3"
    s = Store.from_url(f"sqlite:///{path}")
    upgrade(s.engine)
    s.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A PostgreSQL schema migrated once per run, dropped at the end."""
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    s = pg_store(schema)
    try:
        upgrade(s.engine)
        s.dispose()
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def STORE_OPTIONS(tmp_path: Path) -> dict[str, Any]:
    """What the server configures on its store: the secret key and the document folder."""
    return {"secret": "test-secret", "files_dir": tmp_path / "files"}


def pg_store(schema: str, tmp_path: Path | None = None) -> Store:
    options = STORE_OPTIONS(tmp_path) if tmp_path else {}
    return Store.from_url(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"}, **options)


def empty_tables(s: Store) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with s.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty CRM database of each supported kind."""
    if request.param == "sqlite":
        path = tmp_path / "crm.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        s = Store.from_url(f"sqlite:///{path}", **STORE_OPTIONS(tmp_path))
    else:
        s = pg_store(request.getfixturevalue("postgres_schema"), tmp_path)
        empty_tables(s)
    yield s
    s.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty database with no schema at all, for migration tests."""
    if request.param == "sqlite":
        s = Store.from_url(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
        yield s
        s.dispose()
        return
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    schema = f"m_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    s = pg_store(schema)
    try:
        yield s
    finally:
        s.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Demo:
    store: Store
    tokens: dict[str, str]
    actors: dict[str, Actor] = field(default_factory=dict)

    def actor(self, username: str) -> Actor:
        """The user as an actor, read once (so it can be asked for inside an open unit of work)."""
        if username not in self.actors:
            with self.store.unit_of_work() as uow:
                self.actors[username] = auth.load_actor(uow, users.get_user_by_username(uow, username).id)
        return self.actors[username]


@pytest.fixture
def demo(store: Store) -> Demo:
    """The demo teams, users, accounts and deals (see crm_backend/demo.py)."""
    demo = Demo(store=store, tokens=seed_demo(store))
    for username in demo.tokens:
        demo.actor(username)
    return demo
