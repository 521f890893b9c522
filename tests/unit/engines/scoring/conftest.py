"""Scoring test helpers: rules written the way the API writes them (through the resource)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_backend.models.automation import EntityScore, EntityType
from crm_backend.services import records
from crm_backend.store import Store
from tests.conftest import Demo


def create(demo: Demo, collection: str, data: dict[str, Any], user: str = "admin") -> int:
    with demo.store.unit_of_work(demo.actor(user)) as uow:
        obj = records.create_record(uow, records.resource(collection), data, allow_duplicate=True)
        return int(obj.id)


def update(demo: Demo, collection: str, rid: int, data: dict[str, Any], user: str = "admin") -> None:
    with demo.store.unit_of_work(demo.actor(user)) as uow:
        records.update_record(uow, records.resource(collection), rid, data, None)


def score_of(store: Store, entity_type: EntityType | str, rid: int) -> EntityScore | None:
    with store.unit_of_work(None, "system", read_only=True) as uow:
        row = uow.session.scalar(
            select(EntityScore).where(EntityScore.entity_type == EntityType(entity_type), EntityScore.entity_id == rid)
        )
        if row is not None:
            uow.session.expunge(row)  # keep its loaded values after the read-only rollback
        return row
