"""The database behind the CRM: one engine and session factory, and units of work over them.

Built once per process from a URL (never at import time). A unit of work is one
transaction acting as one user on one channel: committed when the block succeeds,
rolled back on any error, so a failed operation leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from crm_backend.models.users import Role


@dataclass(frozen=True, slots=True)
class Actor:
    """The user an operation is performed for; every service call carries one."""

    user_id: int
    username: str
    role: Role
    team_id: int | None


@dataclass(slots=True)
class UnitOfWork:
    """One transaction (`session`) acting as `actor` on `channel` (api, slack, telegram, web, voice)."""

    session: Session
    actor: Actor | None
    channel: str

    def require_actor(self) -> Actor:
        if self.actor is None:
            from crm_backend.errors import AuthenticationFailed

            raise AuthenticationFailed("This operation needs a signed-in user.")
        return self.actor


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings this product relies on (foreign keys on SQLite, pre-ping)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


class Store:
    """Owns the engine; hands out units of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Store:
        return cls(create_db_engine(url, **kwargs))

    @contextmanager
    def unit_of_work(self, actor: Actor | None = None, channel: str = "api") -> Iterator[UnitOfWork]:
        session = self._sessions()
        try:
            yield UnitOfWork(session=session, actor=actor, channel=channel)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Raises if the database cannot answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
