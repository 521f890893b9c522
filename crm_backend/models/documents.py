"""The document library: files kept under var/, with type, versions and access level."""

from __future__ import annotations

import enum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
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


class DocumentType(enum.StrEnum):
    PROPOSAL = "Proposal"
    CONTRACT = "Contract"
    PRESENTATION = "Presentation"
    QUOTE = "Quote"
    CASE_STUDY = "Case Study"
    OTHER = "Other"


class AccessLevel(enum.StrEnum):
    PRIVATE = "Private"
    TEAM = "Team"
    ORGANIZATION = "Organization"


class Document(IdMixin, TimestampMixin, VersionMixin, OwnedMixin, SoftDeleteMixin, Base):
    __tablename__ = "documents"

    name: Mapped[str] = mapped_column(String(300))
    type: Mapped[DocumentType] = mapped_column(enum_column(DocumentType), default=DocumentType.OTHER)
    category: Mapped[str | None] = mapped_column(String(100))
    storage_path: Mapped[str | None] = mapped_column(String(500))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    mime_type: Mapped[str | None] = mapped_column(String(150))
    sha256: Mapped[str | None] = mapped_column(String(64))
    file_version: Mapped[int] = mapped_column(Integer, default=1)
    previous_version_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    access_level: Mapped[AccessLevel] = mapped_column(enum_column(AccessLevel), default=AccessLevel.PRIVATE)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"), index=True)
    description: Mapped[str | None] = mapped_column(String(2000))
