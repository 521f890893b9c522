from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from crm_backend.migrate import current_revision, upgrade
from crm_backend.models import Base
from crm_backend.store import Store


def test_migrations_build_exactly_the_schema_the_models_declare(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrating_twice_is_a_no_op(store: Store) -> None:
    head = current_revision(store.engine)
    upgrade(store.engine)
    assert current_revision(store.engine) == head is not None
