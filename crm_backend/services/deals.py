"""Deals: pipeline rules (stage → probability, closing) and the queries the assistant answers from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from crm_backend.errors import ValidationFailed
from crm_backend.models.accounts import Account
from crm_backend.models.activities import Activity, ActivityStatus
from crm_backend.models.automation import EntityScore, EntityType
from crm_backend.models.base import utcnow
from crm_backend.models.currencies import Currency
from crm_backend.models.deals import CLOSED_STAGES, STAGE_PROBABILITY, Deal, DealStage
from crm_backend.models.territories import Territory
from crm_backend.models.users import User
from crm_backend.scoring.engine import stored_score
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
    owner_name: str = ""


class StageChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: DealStage
    probability: int | None = Field(default=None, ge=0, le=100)
    lost_reason: str | None = Field(default=None, max_length=500)
    version: int | None = None


def summarize(deal: Deal, account_name: str, owner_username: str, owner_name: str) -> DealSummary:
    return DealSummary(
        id=deal.id,
        name=deal.name,
        account_name=account_name,
        stage=deal.stage,
        amount=deal.amount,
        currency=deal.currency,
        probability=deal.probability,
        expected_close_date=deal.expected_close_date,
        owner_username=owner_username,
        owner_name=owner_name,
    )


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
    return find_deals(uow, DealQuery(owner_id=uow.require_actor().user_id), limit)


class DealQuery(BaseModel):
    """Filters of a deal list; a list never holds more than the acting user may see."""

    model_config = ConfigDict(frozen=True)

    owner_id: int | None = None  # only this user's deals (None: every visible deal)
    stages: tuple[DealStage, ...] = ()  # empty: the open stages
    account_id: int | None = None
    territory_id: int | None = None
    close_from: date | None = None  # expected close on or after
    close_before: date | None = None  # expected close before (exclusive)
    min_amount: Decimal | None = None
    min_inclusive: bool = True
    max_amount: Decimal | None = None
    max_inclusive: bool = True
    currency: str = "USD"  # of min_amount/max_amount
    latest_first: bool = False  # latest expected close first (for closed deals), else soonest first


Compare = Callable[[Any, Decimal], ColumnElement[bool]]


def _rates(uow: UnitOfWork) -> dict[str, Decimal]:
    rows = uow.session.execute(select(Currency.code, Currency.rate_to_base).where(Currency.is_active.is_(True)))
    return {code: Decimal(rate) for code, rate in rows}


def _amount_clause(rates: dict[str, Decimal], amount: Decimal, currency: str, compare: Compare) -> ColumnElement[bool]:
    """Deals whose amount compares to `amount` in `currency`: other currencies are converted through the
    base-currency rates; a currency without a rate is compared as written."""
    clauses = [and_(Deal.currency == currency, compare(Deal.amount, amount))]
    known = [currency]
    own_rate = rates.get(currency)
    if own_rate:
        for code, rate in rates.items():
            if code != currency and rate:
                limit = (amount * own_rate / rate).quantize(Decimal("0.01"))
                clauses.append(and_(Deal.currency == code, compare(Deal.amount, limit)))
                known.append(code)
    clauses.append(and_(Deal.currency.not_in(known), compare(Deal.amount, amount)))
    return or_(*clauses)


def find_deals(uow: UnitOfWork, query: DealQuery, limit: int | None = None) -> list[DealSummary]:
    """Visible deals matching `query`, soonest (or latest) expected close first, undated last; all when
    `limit` is None."""
    actor = uow.require_actor()
    stmt = (
        visible_deals(actor)
        .join(Account, Account.id == Deal.account_id)
        .join(User, User.id == Deal.owner_id)
        .add_columns(Account.name, User.username, User.full_name)
    )
    stmt = stmt.where(Deal.stage.in_(query.stages)) if query.stages else stmt.where(Deal.stage.not_in(CLOSED_STAGES))
    if query.owner_id is not None:
        stmt = stmt.where(Deal.owner_id == query.owner_id)
    if query.account_id is not None:
        stmt = stmt.where(Deal.account_id == query.account_id)
    if query.territory_id is not None:
        stmt = stmt.where(Deal.territory_id == query.territory_id)
    if query.close_from is not None:
        stmt = stmt.where(Deal.expected_close_date >= query.close_from)
    if query.close_before is not None:
        stmt = stmt.where(Deal.expected_close_date < query.close_before)
    if query.min_amount is not None or query.max_amount is not None:
        rates = _rates(uow)
        if query.min_amount is not None:
            at_least: Compare = (lambda col, v: col >= v) if query.min_inclusive else (lambda col, v: col > v)
            stmt = stmt.where(_amount_clause(rates, query.min_amount, query.currency, at_least))
        if query.max_amount is not None:
            at_most: Compare = (lambda col, v: col <= v) if query.max_inclusive else (lambda col, v: col < v)
            stmt = stmt.where(_amount_clause(rates, query.max_amount, query.currency, at_most))
    if query.latest_first:
        stmt = stmt.order_by(Deal.expected_close_date.is_(None), Deal.expected_close_date.desc(), Deal.id.desc())
    else:
        stmt = stmt.order_by(Deal.expected_close_date.is_(None), Deal.expected_close_date, Deal.id)
    stmt = stmt.limit(limit)
    return [
        summarize(deal, account_name, owner_username, owner_name)
        for deal, account_name, owner_username, owner_name in uow.session.execute(stmt)
    ]


class ActivityBrief(BaseModel):
    """One activity as a status line shows it."""

    model_config = ConfigDict(frozen=True)

    id: int
    type: str
    subject: str
    status: str
    at: datetime | None  # when it was done (last) or is due / starts (next)


class DealStatus(BaseModel):
    """One deal's state: the summary plus what happened last and what is planned next."""

    model_config = ConfigDict(frozen=True)

    deal: DealSummary
    account_id: int
    closed_at: datetime | None
    lost_reason: str | None
    last_activity: ActivityBrief | None
    next_activity: ActivityBrief | None


def _brief(activity: Activity, at: datetime | None) -> ActivityBrief:
    return ActivityBrief(
        id=activity.id, type=activity.type.value, subject=activity.subject, status=activity.status.value, at=at
    )


def deal_status(uow: UnitOfWork, deal_id: int) -> DealStatus:
    """The deal (NotFound unless visible) with its last completed and next open activity, counting the
    visible activities on the deal and those on its account that belong to no other deal."""
    actor = uow.require_actor()
    deal: Deal = records.get_record(uow, records.resource("deals"), deal_id)
    account_name = uow.session.scalar(select(Account.name).where(Account.id == deal.account_id)) or ""
    owner = uow.session.get(User, deal.owner_id)
    related = records.scoped(records.resource("activities"), actor).where(
        or_(Activity.deal_id == deal.id, and_(Activity.account_id == deal.account_id, Activity.deal_id.is_(None)))
    )
    done_at = func.coalesce(Activity.completed_at, Activity.start_at, Activity.due_at, Activity.created_at)
    last = uow.session.scalar(
        related.where(Activity.status == ActivityStatus.COMPLETED).order_by(done_at.desc(), Activity.id.desc()).limit(1)
    )
    due = func.coalesce(Activity.due_at, Activity.start_at)
    upcoming = uow.session.scalar(
        related.where(Activity.status.in_([ActivityStatus.NOT_STARTED, ActivityStatus.IN_PROGRESS]))
        .order_by(due.is_(None), due, Activity.id)
        .limit(1)
    )
    summary = summarize(deal, account_name, owner.username if owner else "", owner.full_name if owner else "")
    return DealStatus(
        deal=summary,
        account_id=deal.account_id,
        closed_at=deal.closed_at,
        lost_reason=deal.lost_reason,
        last_activity=_brief(last, last.completed_at or last.start_at or last.due_at or last.created_at)
        if last
        else None,
        next_activity=_brief(upcoming, upcoming.due_at or upcoming.start_at) if upcoming else None,
    )


def deal_score(uow: UnitOfWork, deal_id: int) -> tuple[Deal, EntityScore | None]:
    """The deal (NotFound unless visible) and its stored score, None when it was never scored."""
    deal: Deal = records.get_record(uow, records.resource("deals"), deal_id)
    return deal, stored_score(uow, EntityType.DEAL, deal.id)


class Person(BaseModel):
    """A user as a deal owner someone may name ("Bob's deals")."""

    model_config = ConfigDict(frozen=True)

    id: int
    username: str
    full_name: str
    team_id: int | None


def deal_owners(uow: UnitOfWork) -> list[Person]:
    """The active users (reference data everyone may read), to match a name said against."""
    uow.require_actor()
    rows = uow.session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.id))
    return [Person(id=u.id, username=u.username, full_name=u.full_name, team_id=u.team_id) for u in rows]


def territory_named(uow: UnitOfWork, name: str) -> Territory | None:
    """The territory called `name` (any case), or None."""
    uow.require_actor()
    return uow.session.scalar(select(Territory).where(func.lower(Territory.name) == name.strip().lower()).limit(1))


def create_deal(uow: UnitOfWork, data: dict[str, Any]) -> Deal:
    deal: Deal = records.create_record(uow, records.resource("deals"), data)
    return deal
