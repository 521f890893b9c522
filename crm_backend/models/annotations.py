"""What can be attached to any record: tags, notes, and typed custom field definitions."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import Base, IdMixin, OwnedMixin, TimestampMixin, VersionMixin, enum_column


class Tag(IdMixin, TimestampMixin, Base):
    __tablename__ = "tags"

    name: Mapped[str] = mapped_column(String(60), unique=True)
    color: Mapped[str | None] = mapped_column(String(7))


class Tagging(IdMixin, TimestampMixin, Base):
    __tablename__ = "taggings"
    __table_args__ = (UniqueConstraint("tag_id", "entity_type", "entity_id", name="tag_entity"),)

    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), index=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int] = mapped_column(Integer)


class Note(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, Base):
    __tablename__ = "notes"

    entity_type: Mapped[str] = mapped_column(String(40), index=True)
    entity_id: Mapped[int] = mapped_column(Integer, index=True)
    body: Mapped[str] = mapped_column(Text)


class CustomFieldType(enum.StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    CHOICE = "choice"


class CustomFieldDefinition(IdMixin, TimestampMixin, VersionMixin, Base):
    """A typed extra field on one entity type; values live in that record's `custom_fields`."""

    __tablename__ = "custom_field_definitions"
    __table_args__ = (UniqueConstraint("entity_type", "name", name="entity_field"),)

    entity_type: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(120))
    field_type: Mapped[CustomFieldType] = mapped_column(enum_column(CustomFieldType, 16))
    choices: Mapped[list[str]] = mapped_column(JSON, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
