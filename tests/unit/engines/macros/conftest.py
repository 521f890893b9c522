"""Building macros, leads and deals through the services, as the demo users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_backend.models.automation import Macro, MacroRun
from crm_backend.models.base import Base
from crm_backend.services import records
from tests.conftest import Demo

MakeMacro = Callable[..., int]


@pytest.fixture
def make_macro(demo: Demo) -> MakeMacro:
    """Save a macro through the `macros` collection (so its validation hooks run); return its id."""

    def make(owner: str = "alice", **values: Any) -> int:
        payload = {"name": "macro", "entity_type": "deal", "actions": [], **values}
        with demo.store.unit_of_work(demo.actor(owner)) as uow:
            return int(records.create_record(uow, records.resource("macros"), payload).id)

    return make


@pytest.fixture
def make_lead(demo: Demo) -> Callable[..., int]:
    def make(owner: str = "alice", **values: Any) -> int:
        payload = {"last_name": "Lovelace", "company": "Analytical Engines", **values}
        with demo.store.unit_of_work(demo.actor(owner)) as uow:
            return int(records.create_record(uow, records.resource("leads"), payload, allow_duplicate=True).id)

    return make


def deal_id(demo: Demo, name: str) -> int:
    with demo.store.unit_of_work() as uow:
        from crm_backend.models.deals import Deal

        found = uow.session.scalar(select(Deal.id).where(Deal.name == name))
        assert found is not None, name
        return int(found)


def count(demo: Demo, model: type[Base], *where: Any) -> int:
    with demo.store.unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def macro_runs(demo: Demo, macro_id: int) -> list[MacroRun]:
    with demo.store.unit_of_work() as uow:
        return list(uow.session.scalars(select(MacroRun).where(MacroRun.macro_id == macro_id).order_by(MacroRun.id)))


def macro(demo: Demo, macro_id: int) -> Macro:
    with demo.store.unit_of_work() as uow:
        found = uow.session.get(Macro, macro_id)
        assert found is not None
        return found
