"""Leader election on the `scheduler_leases` table: one row per lease name, held by one process until
it expires. Acquiring is a single conditional UPDATE (mine, or expired) or, when the row is missing, an
INSERT that only one contender can win; both are atomic on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from crm_backend.models.notifications import SchedulerLease
from crm_backend.store import Store

LEASES = cast(Table, SchedulerLease.__table__)


def holder_id() -> str:
    """host:pid:random, unique per process start (a restarted process is a new holder)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class LeaseState:
    name: str
    holder: str
    expires_at: dt.datetime
    acquired_at: dt.datetime


def acquire(store: Store, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime | None = None) -> bool:
    """Take or renew lease `name` for `ttl`; True when `holder` holds it afterwards."""
    now = now or dt.datetime.now(dt.UTC)
    expires = now + ttl
    with store.engine.begin() as conn:
        renewed = conn.execute(
            update(LEASES)
            .where(LEASES.c.name == name, or_(LEASES.c.holder == holder, LEASES.c.expires_at <= now))
            .values(
                holder=holder,
                expires_at=expires,
                acquired_at=case((LEASES.c.holder == holder, LEASES.c.acquired_at), else_=now),
            )
        )
        if renewed.rowcount == 1:
            return True
        if conn.execute(select(LEASES.c.name).where(LEASES.c.name == name)).first() is not None:
            return False  # someone else holds it and it has not expired
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(LEASES).values(name=name, holder=holder, expires_at=expires, acquired_at=now))
    except IntegrityError:
        return False  # another process inserted it first
    return True


def release(store: Store, name: str, holder: str) -> bool:
    """Give the lease up at once (on a clean stop) so another process need not wait for it to expire."""
    with store.engine.begin() as conn:
        return conn.execute(delete(LEASES).where(LEASES.c.name == name, LEASES.c.holder == holder)).rowcount == 1


def current(store: Store, name: str) -> LeaseState | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(LEASES).where(LEASES.c.name == name)).first()
    if row is None:
        return None
    return LeaseState(row.name, row.holder, row.expires_at, row.acquired_at)
