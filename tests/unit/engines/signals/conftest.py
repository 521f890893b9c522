"""Helpers for the signal tests: demo data, records created through the services, signal look-ups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select

from crm_backend.models.accounts import Account
from crm_backend.models.deals import Deal
from crm_backend.models.feeds import FeedItem, SalesSignal
from crm_backend.models.notifications import Notification
from crm_backend.services import records
from crm_backend.store import UnitOfWork
from tests.conftest import Demo


class World:
    """The demo CRM with short ways to act as a user and to read what the engine wrote."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.store = demo.store

    @contextmanager
    def as_user(self, username: str | None) -> Iterator[UnitOfWork]:
        actor = self.demo.actor(username) if username else None
        with self.store.unit_of_work(actor, "api" if username else "system") as uow:
            yield uow

    def create(self, username: str, collection: str, data: dict[str, Any]) -> int:
        with self.as_user(username) as uow:
            return int(records.create_record(uow, records.resource(collection), data, allow_duplicate=True).id)

    def update(self, username: str, collection: str, rid: int, data: dict[str, Any]) -> None:
        with self.as_user(username) as uow:
            records.update_record(uow, records.resource(collection), rid, data, None)

    def deal(self, name: str) -> Deal:
        with self.as_user(None) as uow:
            return uow.session.scalars(select(Deal).where(Deal.name == name)).one()

    def account(self, name: str) -> Account:
        with self.as_user(None) as uow:
            return uow.session.scalars(select(Account).where(Account.name == name)).one()

    def user_id(self, username: str) -> int:
        return self.demo.actor(username).user_id

    def signals(self, signal_type: str | None = None) -> list[SalesSignal]:
        with self.as_user(None) as uow:
            stmt = select(SalesSignal).order_by(SalesSignal.id)
            if signal_type:
                stmt = stmt.where(SalesSignal.signal_type == signal_type)
            return list(uow.session.scalars(stmt))

    def feed(self, username: str) -> list[FeedItem]:
        with self.as_user(None) as uow:
            stmt = select(FeedItem).where(FeedItem.owner_id == self.user_id(username)).order_by(FeedItem.id)
            return list(uow.session.scalars(stmt))

    def notifications(self, kind: str = "signal") -> list[Notification]:
        with self.as_user(None) as uow:
            return list(uow.session.scalars(select(Notification).where(Notification.kind == kind)))


@pytest.fixture
def world(demo: Demo) -> World:
    return World(demo)
