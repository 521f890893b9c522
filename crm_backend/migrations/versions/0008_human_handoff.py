"""human handoff: conversation state, escalation details on tickets

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_backend.models.base import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATES = ("bot", "waiting", "agent", "closed")


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "handoff_state",
                sa.Enum(*STATES, name="handoffstate", native_enum=False, length=10),
                server_default="bot",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("ticket_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("agent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("address", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
        batch_op.add_column(sa.Column("fallback_streak", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("negative_streak", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_conversations_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_conversations_ticket_id_tickets"), "tickets", ["ticket_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_conversations_agent_id_users"), "users", ["agent_id"], ["id"])
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalation_reason", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("sentiment_trend", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column("bant", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
        batch_op.add_column(sa.Column("first_agent_reply_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handback_note", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("csat", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("agent_thread", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_tickets_agent_thread"), ["agent_thread"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_agent_thread"))
        for column in (
            "agent_thread",
            "csat",
            "handback_note",
            "first_agent_reply_at",
            "bant",
            "sentiment_trend",
            "escalation_reason",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_conversations_agent_id_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_conversations_ticket_id_tickets"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_conversations_ticket_id"))
        for column in ("negative_streak", "fallback_streak", "address", "agent_id", "ticket_id", "handoff_state"):
            batch_op.drop_column(column)
