from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from crm_backend.migrate import current_revision, upgrade
from crm_backend.models import Account, AccountType, Base, Deal, DealType, User
from crm_backend.store import Store


def test_migrations_build_exactly_the_schema_the_models_declare(fresh_store: Store) -> None:
    store = fresh_store
    upgrade(store.engine)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrating_twice_is_a_no_op(fresh_store: Store) -> None:
    store = fresh_store
    upgrade(store.engine)
    head = current_revision(store.engine)
    upgrade(store.engine)
    assert current_revision(store.engine) == head is not None


def test_upgrading_a_database_with_data_keeps_rows_and_fills_new_columns(fresh_store: Store) -> None:
    store = fresh_store
    upgrade(store.engine, "0001")
    now = "2026-01-01 00:00:00+00:00"
    with store.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO teams (id, name, created_at, updated_at) VALUES (1, 'East', :t, :t)"), {"t": now}
        )
        conn.execute(
            text(
                "INSERT INTO users (id, username, full_name, email, role, team_id, is_active, created_at, updated_at)"
                " VALUES (1, 'old', 'Old Rep', 'old@example.com', 'rep', 1, :yes, :t, :t)"
            ),
            {"t": now, "yes": True},
        )
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, industry, owner_id, version, created_at, updated_at)"
                " VALUES (1, 'Legacy Co', 'Retail', 1, 1, :t, :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO deals (id, name, account_id, owner_id, stage, amount, currency, probability,"
                " version, created_at, updated_at)"
                " VALUES (1, 'Legacy deal', 1, 1, 'Proposal', 1000, 'USD', 50, 1, :t, :t)"
            ),
            {"t": now},
        )
    upgrade(store.engine)
    with store.unit_of_work() as uow:
        deal = uow.session.get(Deal, 1)
        account = uow.session.get(Account, 1)
        user = uow.session.get(User, 1)
        assert deal is not None and account is not None and user is not None
        assert (deal.name, deal.type, deal.competitors, deal.custom_fields, deal.shared_with_team) == (
            "Legacy deal",
            DealType.NEW_BUSINESS,
            [],
            {},
            False,
        )
        assert (account.type, account.custom_fields) == (AccountType.PROSPECT, {})
        assert user.timezone == "UTC"
