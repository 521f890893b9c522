"""Who may see what: one scope per aggregate, applied by every list, count and get.

A rep sees records they own; a manager sees records owned by anyone in their team;
an admin sees everything. Keeping the rule here means list, search and get cannot disagree.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import InstrumentedAttribute

from crm_backend.models.users import Role, User
from crm_backend.store import Actor


def owned_by_visible_user(owner_column: InstrumentedAttribute[int], actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause limiting rows whose owner is `owner_column` to what `actor` may see."""
    if actor.role is Role.ADMIN:
        return true()
    if actor.role is Role.MANAGER and actor.team_id is not None:
        team_members = select(User.id).where(User.team_id == actor.team_id)
        return owner_column.in_(team_members)
    return owner_column == actor.user_id
