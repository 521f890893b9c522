"""Accounts: hierarchy without cycles, duplicate names, and the 360° summary."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_backend.errors import ValidationFailed
from crm_backend.models.accounts import Account
from crm_backend.models.activities import Activity
from crm_backend.models.contacts import Contact
from crm_backend.models.deals import CLOSED_STAGES, Deal
from crm_backend.models.service_desk import Ticket, TicketStatus
from crm_backend.services import records
from crm_backend.services.matching import normal_company
from crm_backend.services.scopes import Visibility, visible
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
