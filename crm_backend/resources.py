"""The CRM's collections: every entity the seeds name, with its schemas, visibility and rules.

Importing this module registers them all in `crm_backend.services.records.REGISTRY`, which the
REST API, the OpenAPI document, the importer and the permission tests are generated from.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from crm_backend import models as m
from crm_backend.macros import hooks as macro_hooks
from crm_backend.models.base import Base
from crm_backend.schemas import schemas_for
from crm_backend.scoring import rules as scoring_rules
from crm_backend.services import (
    accounts,
    calendar,
    contacts,
    currencies,
    deals,
    documents,
    integrations,
    leads,
)
from crm_backend.services.records import Resource, check_linked_entity, register
from crm_backend.services.scopes import Visibility

PERCENT = (int, Field(ge=0, le=100))


def money(digits: int = 14) -> tuple[Any, Any]:
    return (Decimal, Field(ge=0, max_digits=digits, decimal_places=2))


# Rules a column type cannot express, applied wherever a field of that name appears.
COMMON_OVERRIDES: dict[str, tuple[Any, Any]] = {
    "email": (EmailStr, Field()),
    "currency": (str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD")),
    "country": (str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, e.g. DE")),
    "score": PERCENT,
    "probability": PERCENT,
    "health_score": PERCENT,
    "completion_percent": PERCENT,
    "employees": (int, Field(ge=0)),
    "amount": money(),
    "budget": money(),
    "annual_revenue": money(16),
    "forecast_amount": money(16),
    "actual_amount": money(16),
    "actual_cost": money(),
    "expected_revenue": money(),
    "average_deal_size": money(16),
    "duration_minutes": (int, Field(ge=0)),
    "interval": (int, Field(ge=1, le=1000)),
    "count": (int, Field(ge=1, le=10000)),
    "name": (str, Field(min_length=1, max_length=300)),
    "subject": (str, Field(min_length=1, max_length=300)),
    "last_name": (str, Field(min_length=1, max_length=100)),
}
OWNER_FIELDS = frozenset({"owner_id"})


def _overrides(model: type[Base], extra: dict[str, tuple[Any, Any]] | None = None) -> dict[str, tuple[Any, Any]]:
    columns = set(model.__table__.columns.keys())
    out = {k: v for k, v in COMMON_OVERRIDES.items() if k in columns}
    out.update(extra or {})
    return out


def add(
    name: str,
    model: type[Base],
    visibility: Visibility,
    *,
    read_only: frozenset[str] = frozenset(),
    hidden: frozenset[str] = frozenset(),
    overrides: dict[str, tuple[Any, Any]] | None = None,
    extra_create: dict[str, tuple[Any, Any]] | None = None,
    extra_read: dict[str, tuple[Any, Any]] | None = None,
    **options: Any,
) -> Resource:
    optional = OWNER_FIELDS if hasattr(model, "owner_id") else frozenset()
    create, update, read = schemas_for(
        model,
        read_only=read_only,
        hidden=hidden,
        optional=optional,
        overrides=_overrides(model, overrides),
        extra_create=extra_create,
        # Write-only extras (credentials, file content, attendees) may be changed by PATCH too.
        extra_update={k: (t | None, Field(default=None)) for k, (t, _f) in (extra_create or {}).items()},
        extra_read=extra_read,
    )
    return register(
        Resource(
            name=name,
            model=model,
            create_schema=create,
            update_schema=update,
            read_schema=read,
            visibility=visibility,
            **options,
        )
    )


class RuleWeight(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_id: int
    weight: float = Field(default=1.0, gt=0, le=100)


def _forecast_variance(f: Any) -> dict[str, Any]:
    if f.actual_amount is None:
        return {"variance": None, "variance_percent": None}
    variance = f.actual_amount - f.forecast_amount
    pct = (variance / f.forecast_amount * 100).quantize(Decimal("0.1")) if f.forecast_amount else None
    return {"variance": str(variance), "variance_percent": str(pct) if pct is not None else None}


VARIANCE: dict[str, tuple[Any, Any]] = {
    "variance": (str | None, Field(default=None, description="actual - forecast")),
    "variance_percent": (str | None, Field(default=None)),
}


def _rule_set_prepare(uow: Any, values: dict[str, Any]) -> dict[str, Any]:
    rules = values.pop("rules", None)
    if rules is not None:
        values["members"] = [
            m.ScoringRuleSetMember(
                rule_id=r["rule_id"] if isinstance(r, dict) else r.rule_id,
                weight=r["weight"] if isinstance(r, dict) else r.weight,
            )
            for r in rules
        ]
    return values


def _territory_prepare(uow: Any, values: dict[str, Any]) -> dict[str, Any]:
    manager_ids = values.pop("manager_ids", None)
    if manager_ids is not None:
        from sqlalchemy import select

        users = list(uow.session.scalars(select(m.User).where(m.User.id.in_(manager_ids))))
        if len(users) != len(set(manager_ids)):
            from crm_backend.errors import ValidationFailed

            raise ValidationFailed({"manager_ids": "every manager must be an existing user"})
        values["managers"] = users
    return values


def _attendees(b: Any) -> dict[str, Any]:
    return {
        "attendees": [
            {
                "user_id": a.user_id,
                "contact_id": a.contact_id,
                "email": a.email,
                "required": a.required,
                "response": a.response,
            }
            for a in b.attendees
        ]
    }


TEXT_FIELDS = ("created_at", "updated_at", "id")

add(
    "leads",
    m.Lead,
    Visibility.OWNED,
    label="lead",
    read_only=frozenset({"dedup_key", "converted_at", "converted_account_id", "converted_contact_id"}),
    hidden=frozenset({"email_key", "phone_key", "company_key"}),
    search=("first_name", "last_name", "email", "company"),
    filters=(
        "status",
        "source",
        "owner_id",
        "territory_id",
        "score",
        "campaign_id",
        "industry",
        "country",
        "created_at",
    ),
    sort=(*TEXT_FIELDS, "score", "last_name", "company"),
    before_create=leads.before_create,
    before_update=leads.before_update,
    find_duplicates=leads.find_duplicates,
)
add(
    "accounts",
    m.Account,
    Visibility.OWNED,
    label="account",
    read_only=frozenset({"churn_risk", "health_explanation", "health_updated_at", "segment"}),
    search=("name", "industry", "city", "website"),
    filters=("type", "industry", "owner_id", "territory_id", "parent_id", "country", "health_score"),
    sort=(*TEXT_FIELDS, "name", "annual_revenue", "employees", "health_score"),
    before_create=accounts.before_create,
    before_update=accounts.before_update,
    find_duplicates=accounts.find_duplicates,
)
add(
    "contacts",
    m.Contact,
    Visibility.OWNED,
    label="contact",
    search=("first_name", "last_name", "email", "job_title", "department"),
    filters=("account_id", "type", "role", "owner_id", "territory_id", "email_opt_out", "language"),
    sort=(*TEXT_FIELDS, "last_name", "first_name"),
    before_create=contacts.before_create,
    before_update=contacts.before_update,
    find_duplicates=contacts.find_duplicates,
)
add(
    "deals",
    m.Deal,
    Visibility.OWNED,
    label="deal",
    read_only=frozenset({"closed_at", "stage_changed_at"}),
    search=("name", "description"),
    filters=(
        "stage",
        "type",
        "owner_id",
        "account_id",
        "contact_id",
        "territory_id",
        "currency",
        "amount",
        "expected_close_date",
        "probability",
    ),
    sort=(*TEXT_FIELDS, "name", "amount", "expected_close_date", "probability"),
    before_create=deals.before_create,
    before_update=deals.before_update,
)
add(
    "sales-forecasts",
    m.SalesForecast,
    Visibility.OWNED,
    label="sales forecast",
    search=("name", "notes"),
    filters=("period_type", "method", "period_start", "owner_id", "territory_id"),
    sort=(*TEXT_FIELDS, "period_start", "forecast_amount"),
    serialize_extra=_forecast_variance,
    extra_read=VARIANCE,
)
add(
    "territory-forecasts",
    m.TerritoryForecast,
    Visibility.OWNED,
    label="territory forecast",
    overrides={"territory_id": (int, Field())},
    filters=("territory_id", "period_type", "method", "period_start", "owner_id"),
    sort=(*TEXT_FIELDS, "period_start", "forecast_amount"),
    serialize_extra=_forecast_variance,
    extra_read=VARIANCE,
)
add(
    "territories",
    m.Territory,
    Visibility.REFERENCE,
    label="territory",
    extra_create={"manager_ids": (list[int] | None, Field(default=None))},
    extra_read={"manager_ids": (list[int], Field(default_factory=list))},
    search=("name", "city", "state", "industry", "product_line"),
    filters=("type", "parent_id", "country", "state"),
    sort=(*TEXT_FIELDS, "name"),
    prepare=_territory_prepare,
    serialize_extra=lambda t: {"manager_ids": sorted(u.id for u in t.managers)},
)
add(
    "macros",
    m.Macro,
    Visibility.OWNED,
    label="macro",
    read_only=frozenset({"execution_count", "last_executed_at", "last_status", "next_run_at", "state"}),
    search=("name", "description"),
    filters=("entity_type", "is_active", "owner_id"),
    sort=(*TEXT_FIELDS, "name"),
    before_create=macro_hooks.before_create,
    before_update=macro_hooks.before_update,
)
add(
    "feeds",
    m.FeedItem,
    Visibility.PERSONAL,
    label="feed item",
    search=("title",),
    filters=("type", "is_read", "is_important", "entity_type", "entity_id"),
    sort=(*TEXT_FIELDS,),
    before_create=check_linked_entity,
)
add(
    "sales-signals",
    m.SalesSignal,
    Visibility.OWNED,
    label="sales signal",
    read_only=frozenset({"dedupe_key"}),
    search=("title", "signal_type"),
    filters=("entity_type", "entity_id", "category", "processed", "account_id"),
    sort=(*TEXT_FIELDS, "confidence"),
    before_create=check_linked_entity,
)
add(
    "documents",
    m.Document,
    Visibility.OWNED,
    label="document",
    hidden=frozenset({"storage_path"}),
    read_only=frozenset({"size_bytes", "sha256", "file_version", "previous_version_id"}),
    extra_create={"content_base64": (str | None, Field(default=None, description="the file, base64-encoded"))},
    search=("name", "category", "description"),
    filters=("type", "category", "access_level", "is_public", "account_id", "deal_id", "owner_id"),
    sort=(*TEXT_FIELDS, "name"),
    prepare=documents.prepare,
    before_update=documents.before_update,
)
add(
    "activities",
    m.Activity,
    Visibility.OWNED,
    label="activity",
    search=("subject", "description"),
    filters=(
        "type",
        "status",
        "priority",
        "owner_id",
        "lead_id",
        "account_id",
        "contact_id",
        "deal_id",
        "due_at",
        "start_at",
    ),
    sort=(*TEXT_FIELDS, "due_at", "start_at", "priority"),
)
add(
    "reminders",
    m.Reminder,
    Visibility.OWNED,
    label="reminder",
    read_only=frozenset({"attempts", "sent_at", "last_error"}),
    search=("message",),
    filters=("status", "type", "remind_at", "owner_id", "activity_id"),
    sort=(*TEXT_FIELDS, "remind_at"),
    prepare=calendar.check_reminder_recurrence,
)
add(
    "recurring-activities",
    m.RecurringActivity,
    Visibility.OWNED,
    label="recurring activity",
    read_only=frozenset({"rrule", "next_occurrence_at", "occurrences_created"}),
    search=("subject",),
    filters=("pattern", "is_active", "owner_id", "activity_type"),
    sort=(*TEXT_FIELDS, "next_occurrence_at"),
    before_create=calendar.recurring_before_create,
    before_update=calendar.recurring_before_update,
)
add(
    "calendar-bookings",
    m.CalendarBooking,
    Visibility.OWNED,
    label="calendar booking",
    extra_create={"attendees": (list[calendar.AttendeeIn] | None, Field(default=None))},
    extra_read={"attendees": (list[dict[str, Any]], Field(default_factory=list))},
    search=("title", "location", "description"),
    filters=("type", "status", "owner_id", "start_at", "end_at", "account_id", "deal_id"),
    sort=(*TEXT_FIELDS, "start_at"),
    prepare=calendar.prepare_booking,
    before_create=calendar.check_booking_times,
    before_update=calendar.check_booking_update,
    serialize_extra=_attendees,
)
add(
    "currencies",
    m.Currency,
    Visibility.REFERENCE,
    label="currency",
    read_only=frozenset({"rate_updated_at"}),
    overrides={
        "code": (str, Field(pattern=r"^[A-Za-z]{3}$")),
        "rate_to_base": (Decimal, Field(gt=0, max_digits=20, decimal_places=10)),
    },
    search=("code", "name"),
    filters=("is_active", "is_base", "code"),
    sort=(*TEXT_FIELDS, "code"),
    before_create=currencies.before_create,
    before_update=currencies.before_update,
    default_sort="code",
)
add(
    "social-integrations",
    m.SocialIntegration,
    Visibility.OWNED,
    label="social integration",
    read_only=frozenset({"last_sync_at"}),
    extra_create={
        name: (str | None, Field(default=None, max_length=2000, description="write-only"))
        for name in integrations.SECRET_FIELDS
    },
    extra_read={f"has_{name}": (bool, Field(default=False)) for name in integrations.SECRET_FIELDS},
    search=("name", "account_handle"),
    filters=("platform", "is_active", "owner_id"),
    sort=(*TEXT_FIELDS, "name"),
    prepare=integrations.prepare,
    serialize_extra=integrations.configured,
)
add(
    "scoring-rules",
    m.ScoringRule,
    Visibility.REFERENCE,
    label="scoring rule",
    overrides={"points": (int, Field(ge=-100, le=100))},
    search=("name", "description"),
    filters=("entity_type", "is_active"),
    sort=(*TEXT_FIELDS, "name", "points"),
    before_create=scoring_rules.before_rule_create,
    before_update=scoring_rules.before_rule_update,
)
add(
    "multiple-scoring-rules",
    m.ScoringRuleSet,
    Visibility.REFERENCE,
    label="scoring rule set",
    extra_create={"rules": (list[RuleWeight] | None, Field(default=None))},
    extra_read={"rules": (list[dict[str, Any]], Field(default_factory=list))},
    search=("name", "description"),
    filters=("entity_type", "is_active"),
    sort=(*TEXT_FIELDS, "name"),
    prepare=_rule_set_prepare,
    before_create=scoring_rules.before_rule_set_create,
    before_update=scoring_rules.before_rule_set_update,
    serialize_extra=lambda s: {"rules": [{"rule_id": x.rule_id, "weight": x.weight} for x in s.members]},
)
add(
    "tickets",
    m.Ticket,
    Visibility.TICKETS,
    label="ticket",
    read_only=frozenset({"resolved_at"}),
    search=("subject", "description"),
    filters=(
        "status",
        "priority",
        "assignee_id",
        "account_id",
        "contact_id",
        "lead_id",
        "channel",
        "owner_id",
        "sla_due_at",
        "conversation_id",
    ),
    sort=(*TEXT_FIELDS, "sla_due_at", "priority"),
)
add(
    "campaigns",
    m.Campaign,
    Visibility.OWNED,
    label="campaign",
    search=("name", "description"),
    filters=("type", "status", "start_date", "owner_id"),
    sort=(*TEXT_FIELDS, "name", "start_date", "budget"),
)
add(
    "users",
    m.User,
    Visibility.REFERENCE,
    label="user",
    overrides={"username": (str, Field(min_length=2, max_length=64, pattern=r"^[a-z0-9._-]+$"))},
    search=("username", "full_name", "email"),
    filters=("role", "team_id", "territory_id", "is_active"),
    sort=(*TEXT_FIELDS, "username", "full_name"),
)
add("teams", m.Team, Visibility.REFERENCE, label="team", search=("name",), sort=(*TEXT_FIELDS, "name"))
add(
    "audit-log",
    m.AuditLog,
    Visibility.AUDIT,
    label="audit entry",
    writable=False,
    filters=("entity_type", "entity_id", "user_id", "channel", "action", "at"),
    sort=("id", "at"),
)
add("tags", m.Tag, Visibility.REFERENCE, label="tag", search=("name",), sort=(*TEXT_FIELDS, "name"))
add(
    "notes",
    m.Note,
    Visibility.OWNED,
    label="note",
    search=("body",),
    filters=("entity_type", "entity_id", "owner_id"),
    sort=(*TEXT_FIELDS,),
    before_create=check_linked_entity,
)
add(
    "custom-fields",
    m.CustomFieldDefinition,
    Visibility.REFERENCE,
    label="custom field",
    overrides={"name": (str, Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_]*$"))},
    filters=("entity_type", "field_type"),
    sort=(*TEXT_FIELDS, "name"),
)
