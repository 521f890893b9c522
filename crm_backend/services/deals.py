"""Deals: the pipeline queries the assistant answers from, and deal creation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select

from crm_backend.errors import NotFound
from crm_backend.models.accounts import Account
from crm_backend.models.deals import CLOSED_STAGES, Deal, DealStage
from crm_backend.models.users import User
from crm_backend.services.accounts import visible_accounts
from crm_backend.services.scopes import owned_by_visible_user
from crm_backend.services.validation import validated
from crm_backend.store import Actor, UnitOfWork


class DealCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    account_id: int
    stage: DealStage = DealStage.PROSPECTING
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    probability: int = Field(default=10, ge=0, le=100)
    expected_close_date: date | None = None
    owner_id: int | None = Field(default=None, description="Defaults to the acting user.")


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


def visible_deals(actor: Actor) -> Select[Deal]:
    return select(Deal).where(owned_by_visible_user(Deal.owner_id, actor))


def list_open_deals(uow: UnitOfWork, limit: int = 50) -> list[DealSummary]:
    """The acting user's own open deals, soonest expected close first (undated last)."""
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


def create_deal(uow: UnitOfWork, data: DealCreate | dict[str, object]) -> Deal:
    payload = validated(DealCreate, data)
    actor = uow.require_actor()
    account = uow.session.scalar(visible_accounts(actor).where(Account.id == payload.account_id))
    if account is None:
        raise NotFound("No such account.")
    owner_id = payload.owner_id if payload.owner_id is not None else actor.user_id
    if uow.session.get(User, owner_id) is None:
        raise NotFound("No such owner.")
    deal = Deal(**payload.model_dump(exclude={"owner_id"}), owner_id=owner_id)
    uow.session.add(deal)
    uow.session.flush()
    return deal
