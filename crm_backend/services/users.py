"""Teams and users: created by administrators (or the CLI acting as the system)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import func, select

from crm_backend.errors import Conflict, NotFound
from crm_backend.models.users import Role, Team, User
from crm_backend.services.validation import validated
from crm_backend.store import UnitOfWork


class UserCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    username: str = Field(min_length=2, max_length=64, pattern=r"^[a-z0-9._-]+$")
    full_name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    role: Role = Role.REP
    team_id: int | None = None


def create_team(uow: UnitOfWork, name: str) -> Team:
    team = Team(name=name.strip())
    uow.session.add(team)
    uow.session.flush()
    return team


def create_user(uow: UnitOfWork, data: UserCreate | dict[str, object]) -> User:
    payload = validated(UserCreate, data)
    taken = uow.session.scalar(
        select(func.count())
        .select_from(User)
        .where((User.username == payload.username) | (User.email == payload.email))
    )
    if taken:
        raise Conflict(f"A user named {payload.username!r} or with that email already exists.")
    if payload.team_id is not None and uow.session.get(Team, payload.team_id) is None:
        raise NotFound("No such team.")
    user = User(**payload.model_dump())
    uow.session.add(user)
    uow.session.flush()
    return user


def get_user_by_username(uow: UnitOfWork, username: str) -> User:
    user = uow.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user named {username!r}.")
    return user


def count_users(uow: UnitOfWork) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(User)) or 0)


def voice_replies(uow: UnitOfWork) -> bool:
    """Whether the acting user wants voice messages answered with a voice note too."""
    user = uow.session.get(User, uow.require_actor().user_id)
    return bool(user is not None and user.voice_replies)


def set_voice_replies(uow: UnitOfWork, enabled: bool) -> None:
    """The acting user's own choice; nobody else's."""
    user = uow.session.get(User, uow.require_actor().user_id)
    if user is None:
        raise NotFound("This user no longer exists.")
    user.voice_replies = enabled


def active_reps(uow: UnitOfWork, *where: Any) -> list[int]:
    """Ids of active reps matching `where` (e.g. `User.territory_id == 3`), lowest first: who a record can
    be handed to by rotation."""
    stmt = select(User.id).where(User.is_active.is_(True), User.role == Role.REP, *where).order_by(User.id)
    return list(uow.session.scalars(stmt))
