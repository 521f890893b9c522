"""Deals: pipeline rules (stage → probability, closing) and the queries the assistant answers from."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select

from crm_backend.errors import ValidationFailed
from crm_backend.models.accounts import Account
from crm_backend.models.base import utcnow
from crm_backend.models.deals import CLOSED_STAGES, STAGE_PROBABILITY, Deal, DealStage
from crm_backend.models.users import User
from crm_backend.services import records
from crm_backend.store import Actor, UnitOfWork


class DealSummary(BaseModel):
    """What a list of deals shows: enough to recognise each one."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    account_name: str
    stage: DealStage
    amount: Decimal
    currency: str
    probability: int
    expected_close_date: date | None
    owner_username: str


class StageChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: DealStage
    probability: int | None = Field(default=None, ge=0, le=100)
    lost_reason: str | None = Field(default=None, max_length=500)
    version: int | None = None


def visible_deals(actor: Actor) -> Select[Any]:
    """The deals `actor` may see (the same scope the API and every list use)."""
    return records.scoped(records.resource("deals"), actor)


def apply_stage_rules(deal: Deal, stage: DealStage, probability: int | None, lost_reason: str | None) -> None:
    """Probability follows the stage unless overridden; closing stamps the date; losing needs a reason."""
    if stage is DealStage.CLOSED_LOST and not (lost_reason or deal.lost_reason):
        raise ValidationFailed({"lost_reason": "say why the deal was lost"})
    if deal.stage != stage or deal.stage_changed_at is None:
        deal.stage_changed_at = utcnow()
    deal.stage = stage
    deal.probability = probability if probability is not None else STAGE_PROBABILITY[stage]
    if lost_reason is not None:
        deal.lost_reason = lost_reason
    deal.closed_at = utcnow() if stage in CLOSED_STAGES else None


def before_create(uow: UnitOfWork, deal: Deal, values: dict[str, Any]) -> None:
    stage = DealStage(values.get("stage", DealStage.PROSPECTING))
    apply_stage_rules(deal, stage, values.get("probability"), values.get("lost_reason"))


def before_update(uow: UnitOfWork, deal: Deal, changes: dict[str, tuple[Any, Any]]) -> None:
    if "stage" in changes:
        stage = changes.pop("stage")[1]
        probability = changes.pop("probability", (None, None))[1]
        lost_reason = changes.pop("lost_reason", (None, None))[1]
        apply_stage_rules(deal, stage, probability, lost_reason)


def change_stage(uow: UnitOfWork, deal_id: int, change: StageChange | dict[str, Any]) -> Deal:
    """`POST /deals/{id}/stage` and the assistant's "move the Nimbus deal to negotiation"."""
    data = change if isinstance(change, StageChange) else StageChange.model_validate(change)
    values: dict[str, Any] = {"stage": data.stage}
    if data.probability is not None:
        values["probability"] = data.probability
    if data.lost_reason is not None:
        values["lost_reason"] = data.lost_reason
    deal: Deal = records.update_record(uow, records.resource("deals"), deal_id, values, data.version)
    return deal


def list_open_deals(uow: UnitOfWork, limit: int | None = 50) -> list[DealSummary]:
    """The acting user's own open deals, soonest expected close first (undated last); all when `limit` is None."""
    actor = uow.require_actor()
    stmt = (
        visible_deals(actor)
        .join(Account, Account.id == Deal.account_id)
        .join(User, User.id == Deal.owner_id)
        .add_columns(Account.name, User.username)
        .where(Deal.owner_id == actor.user_id, Deal.stage.not_in(CLOSED_STAGES))
        .order_by(Deal.expected_close_date.is_(None), Deal.expected_close_date, Deal.id)
        .limit(limit)
    )
    return [
        DealSummary(
            id=deal.id,
            name=deal.name,
            account_name=account_name,
            stage=deal.stage,
            amount=deal.amount,
            currency=deal.currency,
            probability=deal.probability,
            expected_close_date=deal.expected_close_date,
            owner_username=owner_username,
        )
        for deal, account_name, owner_username in uow.session.execute(stmt)
    ]


def create_deal(uow: UnitOfWork, data: dict[str, Any]) -> Deal:
    deal: Deal = records.create_record(uow, records.resource("deals"), data)
    return deal
