"""The words a speech recogniser should expect from this user: names of the records they may see.

Passed to the recogniser as hotwords / a phrase list so that "Nimbus" and "Globex" are heard as such.
Only records visible to the acting user are read (the same scopes as every list), so one user's
vocabulary never reveals another's records.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import desc

from crm_backend.models.accounts import Account
from crm_backend.models.contacts import Contact
from crm_backend.models.deals import Deal
from crm_backend.models.leads import Lead
from crm_backend.services import records
from crm_backend.store import UnitOfWork

PER_KIND = 40


def record_names(uow: UnitOfWork, per_kind: int = PER_KIND) -> list[str]:
    """Account, deal, contact and lead names the acting user may see, most recently changed first."""
    actor = uow.require_actor()
    names: list[str] = []

    def newest(resource: str, model: Any) -> list[Any]:
        stmt = records.scoped(records.resource(resource), actor)
        stmt = stmt.order_by(desc(model.updated_at)).limit(per_kind)
        return list(uow.session.scalars(stmt))

    for account in newest("accounts", Account):
        names.append(account.name)
    for deal in newest("deals", Deal):
        names.append(deal.name)
    for contact in newest("contacts", Contact):
        names.append(f"{contact.first_name} {contact.last_name}")
    for lead in newest("leads", Lead):
        person = " ".join(p for p in (lead.first_name, lead.last_name) if p)
        names.append(person)
        if lead.company:
            names.append(lead.company)
    seen: set[str] = set()
    unique = []
    for name in names:
        key = name.strip().lower()
        if key and key not in seen:
            seen.add(key)
            unique.append(name.strip())
    return unique
