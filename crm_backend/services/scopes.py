"""Who may see and change what: one rule per kind of record, applied by every read and write.

- admin: everything.
- manager: records owned by anyone in their team or placed in a territory they manage.
- rep: records they own, plus records their team-mates shared with the team.
- agent: tickets, and the accounts, contacts and leads a ticket links to.

A record a user may not see behaves as not found; one they may see but not change is
"permission denied". Keeping the rules here means list, search, count and get cannot disagree.
"""

from __future__ import annotations

import enum
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, false, or_, select, true

from crm_backend.models.service_desk import Ticket
from crm_backend.models.territories import territory_managers
from crm_backend.models.users import Role, User
from crm_backend.store import Actor


class Visibility(enum.Enum):
    OWNED = "owned"  # customer data and sales records with an owner
    PERSONAL = "personal"  # only for the owner (feeds)
    TICKETS = "tickets"  # the service desk
    REFERENCE = "reference"  # shared reference data everyone reads (currencies, territories, users)
    AUDIT = "audit"  # the audit trail


def team_members(actor: Actor) -> Any:
    return select(User.id).where(User.team_id == actor.team_id)


def managed_territories(actor: Actor) -> Any:
    return select(territory_managers.c.territory_id).where(territory_managers.c.user_id == actor.user_id)


def _clause(expr: Any) -> ColumnElement[bool]:
    """Comparisons on a model passed as `Any` are typed as Any; they are clauses."""
    return cast(ColumnElement[bool], expr)


def visible(model: Any, visibility: Visibility, actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause keeping only the rows of `model` that `actor` may see."""
    if actor.role is Role.ADMIN or visibility is Visibility.REFERENCE:
        return true()
    if visibility is Visibility.AUDIT:
        if actor.role is Role.MANAGER and actor.team_id is not None:
            return or_(model.user_id == actor.user_id, model.user_id.in_(team_members(actor)))
        return _clause(model.user_id == actor.user_id)
    if visibility is Visibility.PERSONAL:
        return _clause(model.owner_id == actor.user_id)
    if visibility is Visibility.TICKETS:
        if actor.role is Role.AGENT:
            return true()
        mine = or_(model.owner_id == actor.user_id, model.assignee_id == actor.user_id)
        if actor.role is Role.MANAGER and actor.team_id is not None:
            return or_(mine, model.owner_id.in_(team_members(actor)), model.assignee_id.in_(team_members(actor)))
        return mine
    # OWNED
    if actor.role is Role.AGENT:
        link = {"accounts": Ticket.account_id, "contacts": Ticket.contact_id, "leads": Ticket.lead_id}
        column = link.get(model.__tablename__)
        if column is None:
            return false()
        return _clause(model.id.in_(select(column).where(column.is_not(None), Ticket.deleted_at.is_(None))))
    clauses = [model.owner_id == actor.user_id]
    if actor.team_id is not None:
        if actor.role is Role.MANAGER:
            clauses.append(model.owner_id.in_(team_members(actor)))
        else:
            clauses.append(and_(model.shared_with_team.is_(True), model.owner_id.in_(team_members(actor))))
    if actor.role is Role.MANAGER:
        clauses.append(model.territory_id.in_(managed_territories(actor)))
    return or_(*clauses)


def may_create(visibility: Visibility, actor: Actor) -> bool:
    if actor.role is Role.ADMIN:
        return True
    if visibility is Visibility.REFERENCE or visibility is Visibility.AUDIT:
        return False
    if visibility is Visibility.OWNED:
        return actor.role is not Role.AGENT
    return True  # PERSONAL and TICKETS: anyone signed in


def may_change(visibility: Visibility, actor: Actor, record: Any) -> bool:
    """Whether `actor` may update or delete `record` (which they can already see)."""
    if actor.role is Role.ADMIN:
        return True
    if visibility in (Visibility.REFERENCE, Visibility.AUDIT):
        return False
    if visibility is Visibility.TICKETS:
        return actor.role in (Role.AGENT, Role.MANAGER) or record.owner_id == actor.user_id
    if visibility is Visibility.PERSONAL:
        return bool(record.owner_id == actor.user_id)
    if actor.role is Role.MANAGER:
        return True  # visible to a manager means it is in their team or territory
    return bool(record.owner_id == actor.user_id)
