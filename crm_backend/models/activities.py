"""Activities, reminders, recurring activities and calendar bookings: the rep's time."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from crm_backend.models.base import (
    Base,
    IdMixin,
    OwnedMixin,
    SoftDeleteMixin,
    TimestampMixin,
    UtcDateTime,
    VersionMixin,
    enum_column,
)


class RelatedRecordsMixin:
    """Links to any of a lead, account, contact and deal."""

    @declared_attr
    def lead_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("leads.id"), index=True)

    @declared_attr
    def account_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("accounts.id"), index=True)

    @declared_attr
    def contact_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("contacts.id"), index=True)

    @declared_attr
    def deal_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("deals.id"), index=True)


class ActivityType(enum.StrEnum):
    CALL = "Call"
    EMAIL = "Email"
    MEETING = "Meeting"
    TASK = "Task"
    NOTE = "Note"


class ActivityStatus(enum.StrEnum):
    NOT_STARTED = "Not Started"
    IN_PROGRESS = "In Progress"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"


class Priority(enum.StrEnum):
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"
    URGENT = "Urgent"


class Activity(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, RelatedRecordsMixin, SoftDeleteMixin, Base):
    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint("completion_percent >= 0 AND completion_percent <= 100", name="completion_range"),
        CheckConstraint("duration_minutes IS NULL OR duration_minutes >= 0", name="duration_not_negative"),
        # A series creates each occurrence once, however often it is expanded.
        UniqueConstraint("recurring_activity_id", "start_at", name="occurrence"),
    )

    type: Mapped[ActivityType] = mapped_column(enum_column(ActivityType))
    subject: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(String(10000))
    status: Mapped[ActivityStatus] = mapped_column(enum_column(ActivityStatus), default=ActivityStatus.NOT_STARTED)
    priority: Mapped[Priority] = mapped_column(enum_column(Priority), default=Priority.MEDIUM)
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    end_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    completion_percent: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    recurring_activity_id: Mapped[int | None] = mapped_column(ForeignKey("recurring_activities.id"), index=True)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ReminderChannel(enum.StrEnum):
    EMAIL = "Email"
    SMS = "SMS"
    PUSH = "Push"
    IN_APP = "In-app"


class ReminderStatus(enum.StrEnum):
    PENDING = "Pending"
    SENT = "Sent"
    FAILED = "Failed"


class Reminder(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, RelatedRecordsMixin, Base):
    __tablename__ = "reminders"

    message: Mapped[str] = mapped_column(String(1000))
    type: Mapped[ReminderChannel] = mapped_column(enum_column(ReminderChannel), default=ReminderChannel.IN_APP)
    status: Mapped[ReminderStatus] = mapped_column(enum_column(ReminderStatus), default=ReminderStatus.PENDING)
    remind_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    recurrence: Mapped[str | None] = mapped_column(String(500))  # RFC 5545 RRULE
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))


class RecurrencePattern(enum.StrEnum):
    DAILY = "Daily"
    WEEKLY = "Weekly"
    MONTHLY = "Monthly"
    YEARLY = "Yearly"


class RecurringActivity(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, RelatedRecordsMixin, Base):
    __tablename__ = "recurring_activities"
    __table_args__ = (CheckConstraint("interval >= 1", name="interval_positive"),)

    subject: Mapped[str] = mapped_column(String(300))
    activity_type: Mapped[ActivityType] = mapped_column(enum_column(ActivityType), default=ActivityType.TASK)
    pattern: Mapped[RecurrencePattern] = mapped_column(enum_column(RecurrencePattern))
    interval: Mapped[int] = mapped_column(Integer, default=1)
    weekdays: Mapped[list[str]] = mapped_column(JSON, default=list)  # MO, TU, …
    month_days: Mapped[list[int]] = mapped_column(JSON, default=list)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    count: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    rrule: Mapped[str] = mapped_column(String(500))
    next_occurrence_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    occurrences_created: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class BookingType(enum.StrEnum):
    MEETING = "Meeting"
    CALL = "Call"
    DEMO = "Demo"
    PRESENTATION = "Presentation"


class BookingStatus(enum.StrEnum):
    SCHEDULED = "Scheduled"
    CONFIRMED = "Confirmed"
    CANCELLED = "Cancelled"
    COMPLETED = "Completed"


class LocationType(enum.StrEnum):
    PHYSICAL = "Physical"
    VIRTUAL = "Virtual"


class CalendarBooking(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, RelatedRecordsMixin, Base):
    """A meeting on the calendar; `owner_id` is the organizer."""

    __tablename__ = "calendar_bookings"
    __table_args__ = (CheckConstraint("end_at > start_at", name="ends_after_start"),)

    title: Mapped[str] = mapped_column(String(300))
    type: Mapped[BookingType] = mapped_column(enum_column(BookingType), default=BookingType.MEETING)
    status: Mapped[BookingStatus] = mapped_column(enum_column(BookingStatus), default=BookingStatus.SCHEDULED)
    start_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    end_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    location_type: Mapped[LocationType] = mapped_column(enum_column(LocationType), default=LocationType.VIRTUAL)
    location: Mapped[str | None] = mapped_column(String(300))
    meeting_url: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(String(2000))

    attendees: Mapped[list[BookingAttendee]] = relationship(
        cascade="all, delete-orphan", order_by="BookingAttendee.id", lazy="selectin"
    )


class BookingAttendee(IdMixin, Base):
    """One attendee: a CRM user, a contact, or just an email address; required or optional."""

    __tablename__ = "booking_attendees"

    booking_id: Mapped[int] = mapped_column(ForeignKey("calendar_bookings.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    response: Mapped[str] = mapped_column(String(20), default="Pending")
