"""Small hand-made sales worlds for the forecasting tests, built through the services.

Past events (a deal created or closed months ago, the audit row of that change) cannot happen in a
test, so after creating records through the services these helpers move their timestamps back
with plain UPDATEs, the way an import of historical data would leave them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import update

from crm_backend.models import AuditLog, Deal
from crm_backend.models.deals import DealStage
from crm_backend.services import deals, records
from crm_backend.store import Store, UnitOfWork
from tests.conftest import Demo


def at(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def currencies(demo: Demo, **rates: str) -> None:
    """USD as base plus the given currencies (code=rate to USD)."""
    with demo.store.unit_of_work(demo.actor("admin")) as uow:
        res = records.resource("currencies")
        records.create_record(
            uow, res, {"code": "USD", "name": "USD", "symbol": "$", "rate_to_base": "1", "is_base": True}
        )
        for code, rate in rates.items():
            records.create_record(uow, res, {"code": code, "name": code, "symbol": code, "rate_to_base": rate})


def territory(demo: Demo, name: str, parent_id: int | None = None, managers: list[str] | None = None) -> int:
    with demo.store.unit_of_work(demo.actor("admin")) as uow:
        data: dict[str, Any] = {"name": name, "type": "Geographic", "parent_id": parent_id}
        if managers:
            data["manager_ids"] = [demo.actor(m).user_id for m in managers]
        return int(records.create_record(uow, records.resource("territories"), data).id)


def account(uow: UnitOfWork, owner_id: int) -> int:
    res = records.resource("accounts")
    obj = records.create_record(
        uow, res, {"name": f"Forecast account {owner_id}", "owner_id": owner_id}, allow_duplicate=True
    )
    return int(obj.id)


def deal(
    demo: Demo,
    owner: str,
    amount: str,
    expected: date,
    *,
    stage: DealStage = DealStage.PROPOSAL,
    currency: str = "USD",
    probability: int | None = None,
    territory_id: int | None = None,
    created: date | None = None,
    closed: date | None = None,
) -> int:
    """A deal owned by `owner`; `closed` moves its close back to that day (stage must be closed)."""
    owner_id = demo.actor(owner).user_id
    with demo.store.unit_of_work(demo.actor("admin")) as uow:
        data: dict[str, Any] = {
            "name": f"{owner} {amount} {expected}",
            "account_id": account(uow, owner_id),
            "owner_id": owner_id,
            "stage": stage,
            "amount": Decimal(amount),
            "currency": currency,
            "expected_close_date": expected,
            "territory_id": territory_id,
            **({"lost_reason": "test"} if stage is DealStage.CLOSED_LOST else {}),
        }
        if probability is not None:
            data["probability"] = probability
        deal_id = int(deals.create_deal(uow, data).id)
    backdate(demo.store, deal_id, created=created, closed=closed)
    return deal_id


def close(demo: Demo, deal_id: int, on: date, stage: DealStage = DealStage.CLOSED_WON) -> None:
    """Move the deal to a closed stage through the service, then date the change (and its audit row) `on`."""
    with demo.store.unit_of_work(demo.actor("admin")) as uow:
        deals.change_stage(
            uow, deal_id, {"stage": stage, "lost_reason": "test" if stage is DealStage.CLOSED_LOST else None}
        )
    backdate(demo.store, deal_id, closed=on)
    with demo.store.unit_of_work() as uow:
        uow.session.execute(
            update(AuditLog)
            .where(AuditLog.entity_type == "deals", AuditLog.entity_id == deal_id, AuditLog.action == "update")
            .values(at=at(on))
        )


def backdate(store: Store, deal_id: int, *, created: date | None = None, closed: date | None = None) -> None:
    values: dict[str, Any] = {}
    if created:
        values["created_at"] = at(created)
    if closed:
        values["closed_at"] = at(closed)
    if values:
        with store.unit_of_work() as uow:
            uow.session.execute(update(Deal).where(Deal.id == deal_id).values(**values))
