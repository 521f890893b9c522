"""knowledge base: articles (title, body, tags, published) and their passages' search vectors

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:05:22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_backend.models.base import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "knowledge_articles",
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("published", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_articles")),
    )
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_knowledge_articles_published"), ["published"], unique=False)

    op.create_table(
        "knowledge_embeddings",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("passage", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("article", "title", "sentence", "pair", "quote", name="passagekind", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.JSON(), nullable=False),
        sa.Column("computed_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["knowledge_articles.id"],
            name=op.f("fk_knowledge_embeddings_article_id_knowledge_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_embeddings")),
        sa.UniqueConstraint("article_id", "passage", name="article_passage"),
    )
    with op.batch_alter_table("knowledge_embeddings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_knowledge_embeddings_article_id"), ["article_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("knowledge_embeddings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_knowledge_embeddings_article_id"))
    op.drop_table("knowledge_embeddings")
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_knowledge_articles_published"))
    op.drop_table("knowledge_articles")
