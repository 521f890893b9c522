"""Accounts: creation and visibility."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select

from crm_backend.errors import NotFound
from crm_backend.models.accounts import Account
from crm_backend.models.users import User
from crm_backend.services.scopes import owned_by_visible_user
from crm_backend.services.validation import validated
from crm_backend.store import Actor, UnitOfWork


class AccountCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    industry: str | None = Field(default=None, max_length=100)
    owner_id: int | None = Field(default=None, description="Defaults to the acting user.")


def visible_accounts(actor: Actor) -> Select[Account]:
    return select(Account).where(owned_by_visible_user(Account.owner_id, actor))


def create_account(uow: UnitOfWork, data: AccountCreate | dict[str, object]) -> Account:
    payload = validated(AccountCreate, data)
    owner_id = payload.owner_id
    if owner_id is None:
        owner_id = uow.require_actor().user_id
    if uow.session.get(User, owner_id) is None:
        raise NotFound("No such owner.")
    account = Account(name=payload.name, industry=payload.industry, owner_id=owner_id)
    uow.session.add(account)
    uow.session.flush()
    return account
