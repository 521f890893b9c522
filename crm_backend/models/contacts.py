"""Contacts: the people at accounts, their roles, reporting lines and communication preferences."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import (
    Base,
    IdMixin,
    OwnedMixin,
    SoftDeleteMixin,
    TimestampMixin,
    VersionMixin,
    enum_column,
)


class ContactType(enum.StrEnum):
    PRIMARY = "Primary"
    SECONDARY = "Secondary"
    EMERGENCY = "Emergency"


class ContactRole(enum.StrEnum):
    DECISION_MAKER = "Decision Maker"
    ECONOMIC_BUYER = "Economic Buyer"
    TECHNICAL_BUYER = "Technical Buyer"
    CHAMPION = "Champion"
    INFLUENCER = "Influencer"
    END_USER = "End User"
    OTHER = "Other"


class ContactMethod(enum.StrEnum):
    EMAIL = "Email"
    PHONE = "Phone"
    SMS = "SMS"
    VIDEO = "Video"
    IN_PERSON = "In Person"


class ContactFrequency(enum.StrEnum):
    WEEKLY = "Weekly"
    BIWEEKLY = "Biweekly"
    MONTHLY = "Monthly"
    QUARTERLY = "Quarterly"
    AS_NEEDED = "As Needed"


class Contact(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, SoftDeleteMixin, Base):
    __tablename__ = "contacts"

    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    mobile: Mapped[str | None] = mapped_column(String(40))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    type: Mapped[ContactType] = mapped_column(enum_column(ContactType), default=ContactType.PRIMARY)
    role: Mapped[ContactRole | None] = mapped_column(enum_column(ContactRole))
    job_title: Mapped[str | None] = mapped_column(String(150))
    department: Mapped[str | None] = mapped_column(String(150))
    reports_to_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    preferred_method: Mapped[ContactMethod] = mapped_column(enum_column(ContactMethod), default=ContactMethod.EMAIL)
    contact_frequency: Mapped[ContactFrequency | None] = mapped_column(enum_column(ContactFrequency))
    language: Mapped[str] = mapped_column(String(10), default="en")
    email_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    call_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
