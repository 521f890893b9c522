"""Contacts: reporting lines without loops, and duplicate detection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from crm_backend.errors import ValidationFailed
from crm_backend.models.contacts import Contact
from crm_backend.services import records
from crm_backend.services.matching import normal_email, normal_phone, similar_names
from crm_backend.store import UnitOfWork


def _check_manager(uow: UnitOfWork, contact: Contact, reports_to_id: int | None) -> None:
    seen = {contact.id} if contact.id else set()
    current = reports_to_id
    while current is not None:
        if current in seen:
            raise ValidationFailed({"reports_to_id": "that would make the reporting line a loop"})
        seen.add(current)
        current = uow.session.scalar(select(Contact.reports_to_id).where(Contact.id == current))


def before_create(uow: UnitOfWork, contact: Contact, values: dict[str, Any]) -> None:
    _check_manager(uow, contact, values.get("reports_to_id"))


def before_update(uow: UnitOfWork, contact: Contact, changes: dict[str, tuple[Any, Any]]) -> None:
    if "reports_to_id" in changes:
        _check_manager(uow, contact, changes["reports_to_id"][1])


def find_duplicates(uow: UnitOfWork, contact: Contact) -> list[dict[str, Any]]:
    actor = uow.require_actor()
    email, phone = normal_email(contact.email), normal_phone(contact.phone)
    clauses = [Contact.last_name.ilike(contact.last_name)]
    if email:
        clauses.append(Contact.email.ilike(email))
    if phone:
        clauses.append(Contact.phone.like(f"%{phone[-4:]}"))
    name = f"{contact.first_name} {contact.last_name}"
    found = []
    for other in uow.session.scalars(
        records.scoped(records.resource("contacts"), actor).where(or_(*clauses)).limit(200)
    ):
        if email and normal_email(other.email) == email:
            reason = "same email"
        elif phone and normal_phone(other.phone) == phone:
            reason = "same phone"
        elif other.account_id == contact.account_id and similar_names(name, f"{other.first_name} {other.last_name}"):
            reason = "similar name at the same account"
        else:
            continue
        found.append(
            {
                "id": other.id,
                "name": f"{other.first_name} {other.last_name}",
                "email": other.email,
                "account_id": other.account_id,
                "reason": reason,
            }
        )
    return found
