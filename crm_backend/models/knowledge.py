"""The knowledge base: articles agents write and the assistant answers from, and their search vectors."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from crm_backend.models.base import (
    Base,
    IdMixin,
    SoftDeleteMixin,
    TimestampMixin,
    UtcDateTime,
    VersionMixin,
    enum_column,
    utcnow,
)


class KnowledgeArticle(IdMixin, TimestampMixin, VersionMixin, SoftDeleteMixin, Base):
    """A help article; only published ones are shown to readers and used for answers."""

    __tablename__ = "knowledge_articles"

    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    published: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), index=True)


class PassageKind(enum.StrEnum):
    """What part of an article a vector stands for (see `crm_backend.services.knowledge.passages`)."""

    ARTICLE = "article"  # title, tags and body
    TITLE = "title"  # title and tags
    SENTENCE = "sentence"  # one body sentence under the title
    PAIR = "pair"  # two neighbouring body sentences under the title
    QUOTE = "quote"  # one bare body sentence: chooses what a hit quotes, never ranks


class KnowledgeEmbedding(IdMixin, Base):
    """One passage's vector of an article (derived data: rewritten whenever the article's text or the
    embedding model changes, so `content_hash` and `model` say what it was computed from)."""

    __tablename__ = "knowledge_embeddings"
    __table_args__ = (UniqueConstraint("article_id", "passage", name="article_passage"),)

    article_id: Mapped[int] = mapped_column(ForeignKey("knowledge_articles.id", ondelete="CASCADE"), index=True)
    passage: Mapped[int] = mapped_column(Integer)  # 0, 1, … in the order `passages()` makes them
    kind: Mapped[PassageKind] = mapped_column(enum_column(PassageKind, 10))
    model: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 of title, body and tags
    vector: Mapped[list[float]] = mapped_column(JSON)  # unit length
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
