"""Callbacks: waits (task tokens and message correlations) and kept messages.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Column types are spelled out here, as in 0001, so that this revision keeps describing the
schema it created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def json_type() -> sa.types.TypeEngine[Any]:
    jsonb = postgresql.JSONB()
    return sa.JSON().with_variant(jsonb, "postgresql").with_variant(sa.Text(), "sqlite")


def key_type() -> sa.types.TypeEngine[str]:
    """Ids: byte-ordered (collation "C") on PostgreSQL."""
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "waits",
        sa.Column("id", key_type(), nullable=False),
        sa.Column("execution_id", key_type(), nullable=False),
        sa.Column("state_machine_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("token", sa.String(), nullable=True),
        sa.Column("correlation_key", sa.String(), nullable=True),
        sa.Column("correlation_value", sa.Text(), nullable=True),
        sa.Column("output", json_type(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("retry_counts", json_type(), nullable=False),
        sa.Column("queue", sa.String(), nullable=True),
        sa.Column("heartbeat_seconds", sa.Integer(), nullable=True),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("timeout_at", timestamp(), nullable=True),
        sa.Column("heartbeat_at", timestamp(), nullable=True),
        sa.Column("answered_at", timestamp(), nullable=True),
        sa.Column("consumed_at", timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name="fk_waits_execution_id_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_waits"),
        sa.UniqueConstraint("token", name="uq_waits_token"),
    )
    for name, columns in (
        ("ix_waits_correlation", ["correlation_key", "correlation_value", "status"]),
        ("ix_waits_execution_id_id", ["execution_id", "id"]),
        ("ix_waits_status_id", ["status", "id"]),
    ):
        op.create_index(name, "waits", columns)

    op.create_table(
        "kept_messages",
        sa.Column("id", key_type(), nullable=False),
        sa.Column("correlation_key", sa.String(), nullable=False),
        sa.Column("correlation_value", sa.Text(), nullable=False),
        sa.Column("payload", json_type(), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("expires_at", timestamp(), nullable=False),
        sa.Column("consumed_at", timestamp(), nullable=True),
        sa.Column("consumed_by", key_type(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_kept_messages"),
    )
    op.create_index(
        "ix_kept_messages_correlation",
        "kept_messages",
        ["correlation_key", "correlation_value", "id"],
    )
    op.create_index("ix_kept_messages_expires_at", "kept_messages", ["expires_at"])


def downgrade() -> None:
    op.drop_table("kept_messages")
    op.drop_table("waits")
