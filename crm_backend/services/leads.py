"""Leads: duplicate detection, BANT qualification and conversion into account, contact and deal."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select

from crm_backend.errors import Conflict, ValidationFailed
from crm_backend.models.accounts import Account, AccountType
from crm_backend.models.automation import EntityScore, EntityType
from crm_backend.models.base import utcnow
from crm_backend.models.leads import Lead, LeadSource, LeadStatus
from crm_backend.scoring.engine import stored_score
from crm_backend.services import records
from crm_backend.services.matching import dedup_key, normal_company, normal_email, normal_phone, similar_names
from crm_backend.services.validation import validated
from crm_backend.store import UnitOfWork


def _full_name(first: str | None, last: str | None) -> str:
    return " ".join(p for p in (first, last) if p)


def set_keys(lead: Lead, email: str | None, phone: str | None, company: str | None) -> None:
    lead.dedup_key = dedup_key(email, phone, company)
    lead.email_key, lead.phone_key, lead.company_key = normal_email(email), normal_phone(phone), normal_company(company)


def before_create(uow: UnitOfWork, lead: Lead, values: dict[str, Any]) -> None:
    set_keys(lead, lead.email, lead.phone, lead.company)


def before_update(uow: UnitOfWork, lead: Lead, changes: dict[str, tuple[Any, Any]]) -> None:
    if changes.keys() & {"email", "phone", "company"}:
        merged = {k: changes[k][1] if k in changes else getattr(lead, k) for k in ("email", "phone", "company")}
        set_keys(lead, merged["email"], merged["phone"], merged["company"])
    if "status" in changes and changes["status"][1] is LeadStatus.CONVERTED and lead.converted_at is None:
        raise ValidationFailed({"status": "convert a lead with POST /leads/{id}/convert"})


def twin_clauses(email_key: str | None, phone_key: str | None, company_key: str | None) -> list[Any]:
    """Conditions matching leads that may be the same person: the same email, phone or company (normalised)."""
    clauses = []
    if email_key:
        clauses.append(Lead.email_key == email_key)
    if phone_key:
        clauses.append(Lead.phone_key == phone_key)
    if company_key:
        clauses.append(Lead.company_key == company_key)
    return clauses


def twin_reason(
    email_key: str | None, phone_key: str | None, company_key: str | None, name: str, other: Lead
) -> str | None:
    """Why `other` may be the same person as a lead with these normalised keys and full name (None if not):
    the same email, the same phone, or a similar name at the same company."""
    if email_key and other.email_key == email_key:
        return "same email"
    if phone_key and other.phone_key == phone_key:
        return "same phone"
    same_company = bool(company_key and name and other.company_key == company_key)
    if same_company and similar_names(name, _full_name(other.first_name, other.last_name)):
        return "similar name at the same company"
    return None


def find_duplicates(uow: UnitOfWork, lead: Lead) -> list[dict[str, Any]]:
    """Visible leads with the same email or phone, or a similar name at the same company."""
    actor = uow.require_actor()
    email, phone, company = lead.email_key, lead.phone_key, lead.company_key
    clauses = twin_clauses(email, phone, company)
    if not clauses:
        return []
    found = []
    name = _full_name(lead.first_name, lead.last_name)
    for other in uow.session.scalars(records.scoped(records.resource("leads"), actor).where(or_(*clauses)).limit(200)):
        reason = twin_reason(email, phone, company, name, other)
        if reason is None:
            continue
        found.append(
            {
                "id": other.id,
                "name": _full_name(other.first_name, other.last_name),
                "company": other.company,
                "email": other.email,
                "reason": reason,
            }
        )
    return found


class Qualification(BaseModel):
    """BANT answers; a lead with all four known is Qualified."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    budget: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    has_authority: bool | None = None
    need: str | None = Field(default=None, max_length=1000)
    timeline: str | None = Field(default=None, max_length=100)
    version: int | None = None


def qualify(uow: UnitOfWork, lead_id: int, data: Qualification | dict[str, Any]) -> Lead:
    answers = validated(Qualification, data)
    values = answers.model_dump(exclude_unset=True, exclude={"version"})
    res = records.resource("leads")
    lead: Lead = records.get_record(uow, res, lead_id)
    if lead.status in (LeadStatus.CONVERTED, LeadStatus.LOST):
        raise Conflict(f"This lead is {lead.status.value}; it can no longer be qualified.")
    merged = {k: values.get(k, getattr(lead, k)) for k in ("budget", "has_authority", "need", "timeline")}
    if all(v is not None and v != "" for v in merged.values()):
        values["status"] = LeadStatus.QUALIFIED
    elif lead.status is LeadStatus.NEW:
        values["status"] = LeadStatus.CONTACTED
    updated: Lead = records.update_record(uow, res, lead_id, values, answers.version)
    return updated


class Conversion(BaseModel):
    """How to convert: into an existing account or a new one, with or without a deal."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    account_id: int | None = None
    account_name: str | None = Field(default=None, max_length=200)
    create_deal: bool = True
    deal_name: str | None = Field(default=None, max_length=200)
    amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    expected_close_date: date | None = None
    version: int | None = None


def convert(uow: UnitOfWork, lead_id: int, data: Conversion | dict[str, Any]) -> dict[str, Any]:
    """Lead → account (existing or new) + contact (+ deal), lead marked Converted; one transaction."""
    options = validated(Conversion, data)
    leads = records.resource("leads")
    lead: Lead = records.get_record(uow, leads, lead_id)
    if lead.status is LeadStatus.CONVERTED:
        raise Conflict("This lead was already converted.")
    if lead.status is LeadStatus.LOST:
        raise Conflict("This lead is marked Lost; reopen it before converting.")
    if options.version is not None and options.version != lead.version:
        raise Conflict(f"This lead is at version {lead.version}, not {options.version}: reload it and try again.")
    owner = {"owner_id": lead.owner_id}
    if options.account_id is not None:
        account: Account = records.get_record(uow, records.resource("accounts"), options.account_id)
    else:
        name = options.account_name or lead.company
        if not name:
            raise ValidationFailed({"account_name": "the lead has no company; name the account"})
        account = records.create_record(
            uow,
            records.resource("accounts"),
            {
                "name": name,
                "type": AccountType.PROSPECT,
                "industry": lead.industry,
                "employees": lead.employees,
                "country": lead.country,
                "territory_id": lead.territory_id,
                **owner,
            },
            allow_duplicate=True,
        )
    contact = records.create_record(
        uow,
        records.resource("contacts"),
        {
            "first_name": lead.first_name or "",
            "last_name": lead.last_name,
            "email": lead.email,
            "phone": lead.phone,
            "job_title": lead.title,
            "account_id": account.id,
            "territory_id": lead.territory_id,
            **owner,
        },
        allow_duplicate=True,
    )
    deal = None
    if options.create_deal:
        deal = records.create_record(
            uow,
            records.resource("deals"),
            {
                "name": options.deal_name or f"{account.name} - {lead.need or 'New business'}"[:200],
                "account_id": account.id,
                "contact_id": contact.id,
                "lead_id": lead.id,
                "amount": options.amount if options.amount is not None else (lead.budget or Decimal(0)),
                "currency": options.currency,
                "expected_close_date": options.expected_close_date,
                "territory_id": lead.territory_id,
                **owner,
            },
        )
    lead.status = LeadStatus.CONVERTED
    lead.converted_at = utcnow()
    lead.converted_account_id = account.id
    lead.converted_contact_id = contact.id
    uow.session.flush()
    return {
        "lead_id": lead.id,
        "account_id": account.id,
        "contact_id": contact.id,
        "deal_id": deal.id if deal is not None else None,
    }


OPEN_LEAD_STATUSES = (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED)


class LeadQuery(BaseModel):
    """Filters of a lead list; a list never holds more than the acting user may see."""

    model_config = ConfigDict(frozen=True)

    statuses: tuple[LeadStatus, ...] = OPEN_LEAD_STATUSES
    source: LeadSource | None = None
    min_score: int | None = None
    max_score: int | None = None  # inclusive
    created_from: datetime | None = None
    created_before: datetime | None = None  # exclusive


def find_leads(uow: UnitOfWork, query: LeadQuery, limit: int = 8) -> tuple[list[Lead], int]:
    """The first `limit` visible leads matching `query`, highest score first (newest on ties), and how
    many match in all."""
    stmt = records.scoped(records.resource("leads"), uow.require_actor())
    if query.statuses:
        stmt = stmt.where(Lead.status.in_(query.statuses))
    if query.source is not None:
        stmt = stmt.where(Lead.source == query.source)
    if query.min_score is not None:
        stmt = stmt.where(Lead.score >= query.min_score)
    if query.max_score is not None:
        stmt = stmt.where(Lead.score <= query.max_score)
    if query.created_from is not None:
        stmt = stmt.where(Lead.created_at >= query.created_from)
    if query.created_before is not None:
        stmt = stmt.where(Lead.created_at < query.created_before)
    total = int(uow.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)
    leads = uow.session.scalars(stmt.order_by(Lead.score.desc(), Lead.created_at.desc(), Lead.id.desc()).limit(limit))
    return list(leads), total


def lead_score(uow: UnitOfWork, lead_id: int) -> tuple[Lead, EntityScore | None]:
    """The lead (NotFound unless visible) and its stored score with explanation, None when never scored."""
    lead: Lead = records.get_record(uow, records.resource("leads"), lead_id)
    return lead, stored_score(uow, EntityType.LEAD, lead.id)
