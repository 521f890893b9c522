"""The database behind the CRM: one engine and session factory, and units of work over them.

Built once per process from a URL (never at import time). A unit of work is one
transaction acting as one user on one channel: committed when the block succeeds,
rolled back on any error, so a failed operation leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from crm_backend import audit, events
from crm_backend.errors import AuthenticationFailed, Busy, Conflict
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
    store: Store | None = None
    change_set: str | None = None  # set by the assistant for a confirmed write: its audit rows carry it
    transcript: str | None = None  # what was heard, when the write was asked for by voice (audited)

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise AuthenticationFailed("This operation needs a signed-in user.")
        return self.actor


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver's own transaction handling only opens a transaction before DML, so a
    # SAVEPOINT could run outside one and its RELEASE would commit. Let SQLAlchemy send BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


READ_ONLY = "crm_read_only"


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: two units of work that read then write would
    # otherwise deadlock on the lock upgrade and fail at once; this way the second waits its turn
    # (busy_timeout). A read-only unit of work takes no lock (WAL readers never wait for writers).
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings this product relies on (foreign keys on SQLite, pre-ping)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


class Store:
    """Owns the engine; hands out units of work."""

    def __init__(
        self,
        engine: Engine,
        *,
        secret: str | None = None,
        files_dir: Path | None = None,
        models_dir: Path | None = None,
    ) -> None:
        audit.install()
        events.install()
        self.engine = engine
        self.secret = secret  # encrypts integration credentials at rest
        self.files_dir = files_dir  # where the document library keeps files
        self.models_dir = models_dir  # where trained scoring models live (None: rules only)
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        secret: str | None = None,
        files_dir: Path | None = None,
        models_dir: Path | None = None,
        **kwargs: Any,
    ) -> Store:
        return cls(create_db_engine(url, **kwargs), secret=secret, files_dir=files_dir, models_dir=models_dir)

    @contextmanager
    def unit_of_work(
        self, actor: Actor | None = None, channel: str = "api", *, read_only: bool = False
    ) -> Iterator[UnitOfWork]:
        """One transaction as `actor`; `read_only` ones never write and never wait for writers."""
        session = self._sessions()
        uow = UnitOfWork(session=session, actor=actor, channel=channel, store=self)
        session.info["uow"] = uow  # read by the audit listener at flush time
        if read_only:
            session.connection(execution_options={READ_ONLY: True})
        try:
            yield uow
            if read_only and (session.new or session.dirty or session.deleted):
                raise RuntimeError("a read-only unit of work tried to write")
            if read_only:
                session.rollback()  # nothing to keep; never commit from a read-only unit of work
            else:
                events.settle(uow)  # scores, macros and signals follow the changes, in this transaction
                session.commit()
        except StaleDataError as exc:
            session.rollback()
            raise Conflict("The record was changed by someone else in the meantime; reload it and try again.") from exc
        except OperationalError as exc:
            session.rollback()
            if "database is locked" in str(exc.orig):
                raise Busy("The database is busy with another change; please try again.") from exc
            raise
        except IntegrityError as exc:
            session.rollback()
            raise Conflict(
                "That clashes with existing data (a unique value is taken or a linked record is missing)."
            ) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            events.discard(session)
            session.close()

    def ping(self) -> None:
        """Raises if the database cannot answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        if self.engine.dialect.name == "sqlite":
            # Keep the planner's statistics fresh (SQLite's recommendation: run it before closing).
            with contextlib.suppress(Exception), self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA optimize")
        self.engine.dispose()
