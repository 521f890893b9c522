"""voice: transcripts in the audit log, a per-user voice-replies setting; sentiment on conversation turns

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 09:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voice_replies", sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transcript", sa.Text(), nullable=True))
    with op.batch_alter_table("conversation_turns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sentiment_label", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("sentiment_score", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation_turns", schema=None) as batch_op:
        batch_op.drop_column("sentiment_score")
        batch_op.drop_column("sentiment_label")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("transcript")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("voice_replies")
