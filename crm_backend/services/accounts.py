"""Accounts: hierarchy without cycles, duplicate names, and the 360° summary."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from crm_backend.errors import ValidationFailed
from crm_backend.models.accounts import Account
from crm_backend.models.activities import Activity
from crm_backend.models.contacts import Contact
from crm_backend.models.deals import CLOSED_STAGES, Deal
from crm_backend.models.feeds import SalesSignal
from crm_backend.models.service_desk import Ticket, TicketStatus
from crm_backend.services import records
from crm_backend.services.matching import normal_company
from crm_backend.services.scopes import Visibility, visible
from crm_backend.signals import health
from crm_backend.store import UnitOfWork

MAX_DEPTH = 50


def _check_parent(uow: UnitOfWork, account: Account, parent_id: int | None) -> None:
    """An account cannot be its own ancestor."""
    seen = {account.id} if account.id else set()
    current = parent_id
    depth = 0
    while current is not None:
        if current in seen:
            raise ValidationFailed({"parent_id": "that would make the account hierarchy a loop"})
        seen.add(current)
        depth += 1
        if depth > MAX_DEPTH:
            raise ValidationFailed({"parent_id": f"hierarchies deeper than {MAX_DEPTH} levels are not supported"})
        current = uow.session.scalar(select(Account.parent_id).where(Account.id == current))


def before_create(uow: UnitOfWork, account: Account, values: dict[str, Any]) -> None:
    _check_parent(uow, account, values.get("parent_id"))


def before_update(uow: UnitOfWork, account: Account, changes: dict[str, tuple[Any, Any]]) -> None:
    if "parent_id" in changes:
        _check_parent(uow, account, changes["parent_id"][1])


def find_duplicates(uow: UnitOfWork, account: Account) -> list[dict[str, Any]]:
    key = normal_company(account.name)
    if not key:
        return []
    actor = uow.require_actor()
    first_word = key.split()[0]
    rows = uow.session.scalars(
        records.scoped(records.resource("accounts"), actor).where(Account.name.ilike(f"%{first_word}%")).limit(200)
    )
    return [{"id": a.id, "name": a.name, "reason": "same company name"} for a in rows if normal_company(a.name) == key]


def _brief(account: Account) -> dict[str, Any]:
    return {"id": account.id, "name": account.name, "type": account.type.value, "parent_id": account.parent_id}


def hierarchy(uow: UnitOfWork, account_id: int) -> dict[str, Any]:
    """The account, its visible ancestors (nearest first) and its visible descendants as a tree."""
    res = records.resource("accounts")
    actor = uow.require_actor()
    root = records.get_record(uow, res, account_id)
    ancestors: list[dict[str, Any]] = []
    parent_id = root.parent_id
    while parent_id is not None and len(ancestors) < MAX_DEPTH:
        parent = uow.session.scalar(records.scoped(res, actor).where(Account.id == parent_id))
        if parent is None:
            break
        ancestors.append(_brief(parent))
        parent_id = parent.parent_id

    def children(node_id: int, depth: int) -> list[dict[str, Any]]:
        if depth >= MAX_DEPTH:
            return []
        kids = uow.session.scalars(
            records.scoped(res, actor).where(Account.parent_id == node_id).order_by(Account.name)
        )
        return [{**_brief(k), "children": children(k.id, depth + 1)} for k in kids]

    return {"account": _brief(root), "ancestors": ancestors, "children": children(root.id, 0)}


def summary(uow: UnitOfWork, account_id: int, recent: int = 10) -> dict[str, Any]:
    """The 360° view: the account with its contacts, open deals, recent activities and open tickets."""
    actor = uow.require_actor()
    res = records.resource("accounts")
    account = records.get_record(uow, res, account_id)
    contacts = uow.session.scalars(
        records.scoped(records.resource("contacts"), actor)
        .where(Contact.account_id == account_id)
        .order_by(Contact.last_name)
    ).all()
    deals = uow.session.scalars(
        records.scoped(records.resource("deals"), actor)
        .where(Deal.account_id == account_id, Deal.stage.not_in(CLOSED_STAGES))
        .order_by(Deal.expected_close_date)
    ).all()
    activities = uow.session.scalars(
        records.scoped(records.resource("activities"), actor)
        .where(Activity.account_id == account_id)
        .order_by(Activity.created_at.desc(), Activity.id.desc())
        .limit(recent)
    ).all()
    tickets = uow.session.scalars(
        select(Ticket).where(
            visible(Ticket, Visibility.TICKETS, actor),
            Ticket.deleted_at.is_(None),
            Ticket.account_id == account_id,
            Ticket.status.not_in([TicketStatus.RESOLVED, TicketStatus.CLOSED]),
        )
    ).all()
    return {
        "account": records.serialize(res, account),
        "contacts": [records.serialize(records.resource("contacts"), c) for c in contacts],
        "open_deals": [records.serialize(records.resource("deals"), d) for d in deals],
        "recent_activities": [records.serialize(records.resource("activities"), a) for a in activities],
        "open_tickets": [records.serialize(records.resource("tickets"), t) for t in tickets],
        "health_score": account.health_score,
        "open_pipeline": [
            {"currency": cur, "amount": str(sum(d.amount for d in deals if d.currency == cur))}
            for cur in sorted({d.currency for d in deals})
        ],
    }


def create_account(uow: UnitOfWork, data: dict[str, Any]) -> Account:
    account: Account = records.create_record(uow, records.resource("accounts"), data, allow_duplicate=True)
    return account


def contacts_of(uow: UnitOfWork, account_id: int) -> tuple[Account, list[Contact]]:
    """The account (NotFound unless visible) and its visible contacts, by last name."""
    account: Account = records.get_record(uow, records.resource("accounts"), account_id)
    contacts = uow.session.scalars(
        records.scoped(records.resource("contacts"), uow.require_actor())
        .where(Contact.account_id == account_id)
        .order_by(Contact.last_name, Contact.first_name, Contact.id)
    ).all()
    return account, list(contacts)


class AccountHealth(BaseModel):
    """An account's health (0-100), churn risk (0..1) and what drives them, largest effect first."""

    model_config = ConfigDict(frozen=True)

    account_id: int
    name: str
    score: int
    churn_risk: float
    drivers: list[dict[str, Any]]
    stored: bool  # False: never stored, computed on the spot


def account_health(uow: UnitOfWork, account_id: int, now: dt.datetime | None = None) -> AccountHealth:
    """The stored health of a visible account, or (never computed yet) one computed now, not stored."""
    account: Account = records.get_record(uow, records.resource("accounts"), account_id)
    explanation = account.health_explanation or {}
    if account.health_score is not None and "drivers" in explanation:
        score, risk, drivers, stored = account.health_score, account.churn_risk, explanation["drivers"], True
    else:
        when = now or dt.datetime.now(dt.UTC)
        fresh = health.assess(health.features_for(uow, [account], when)[account.id], when)
        score, risk, drivers, stored = fresh.score, fresh.churn_risk, fresh.drivers, False
    ranked = sorted(drivers, key=lambda d: -abs(int(d.get("effect") or 0)))
    return AccountHealth(
        account_id=account.id,
        name=account.name,
        score=score,
        churn_risk=float(risk if risk is not None else health.churn_risk(score)),
        drivers=ranked,
        stored=stored,
    )


def recent_signals(
    uow: UnitOfWork, account_id: int | None = None, limit: int = 8
) -> tuple[list[SalesSignal], dict[int, str], int]:
    """Visible sales signals (of one account, or all), newest first and the surer first within a day;
    with the names of their accounts and how many there are in all."""
    stmt = records.scoped(records.resource("sales-signals"), uow.require_actor())
    if account_id is not None:
        stmt = stmt.where(SalesSignal.account_id == account_id)
    total = int(uow.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)
    signals = list(
        uow.session.scalars(
            stmt.order_by(
                func.date(SalesSignal.created_at).desc(), SalesSignal.confidence.desc(), SalesSignal.id.desc()
            ).limit(limit)
        )
    )
    ids = {s.account_id for s in signals if s.account_id}
    names: dict[int, str] = {}
    if ids:
        names = {
            aid: name for aid, name in uow.session.execute(select(Account.id, Account.name).where(Account.id.in_(ids)))
        }
    return signals, names, total


def at_risk_accounts(uow: UnitOfWork, min_churn_risk: float = 0.5, limit: int = 5) -> tuple[list[Account], int]:
    """Visible accounts whose stored churn risk is at least `min_churn_risk`, riskiest first, and their count."""
    stmt = records.scoped(records.resource("accounts"), uow.require_actor()).where(Account.churn_risk >= min_churn_risk)
    total = int(uow.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)
    accounts = uow.session.scalars(stmt.order_by(Account.churn_risk.desc(), Account.name).limit(limit)).all()
    return list(accounts), total
