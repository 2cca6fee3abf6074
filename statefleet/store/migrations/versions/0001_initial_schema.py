"""Initial schema: state machines, executions, history, links, batches and dead letters.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

The column types are spelled out here rather than imported from the models, so that this
revision keeps describing the schema it created when the models move on. JSON columns are
``JSONB`` on PostgreSQL and ``TEXT`` on SQLite (see ``statefleet.store.models``); GIN indexes
exist on PostgreSQL only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def json_type() -> sa.types.TypeEngine[Any]:
    jsonb = postgresql.JSONB()
    return sa.JSON().with_variant(jsonb, "postgresql").with_variant(sa.Text(), "sqlite")


def key_type() -> sa.types.TypeEngine[str]:
    """Ids and execution names: byte-ordered (collation "C") on PostgreSQL."""
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def zero() -> sa.TextClause:
    return sa.text("0")


def upgrade() -> None:
    op.create_table(
        "state_machines",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("definition", json_type(), nullable=False),
        sa.Column("is_latest", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", "version", name="pk_state_machines"),
    )
    op.create_index(
        "uq_state_machines_latest",
        "state_machines",
        ["id"],
        unique=True,
        postgresql_where=sa.text("is_latest"),
        sqlite_where=sa.text("is_latest"),
    )

    op.create_table(
        "batches",
        sa.Column("id", key_type(), nullable=False),
        sa.Column("state_machine_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("options", json_type(), nullable=False),
        sa.Column("total", sa.Integer(), server_default=zero(), nullable=False),
        sa.Column("counters", json_type(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("finished_at", timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.UniqueConstraint("state_machine_id", "name", name="uq_batches_state_machine_id_name"),
    )
    op.create_index("ix_batches_created_at", "batches", ["created_at"])
    op.create_index(
        "ix_batches_state_machine_id_created_at", "batches", ["state_machine_id", "created_at"]
    )

    op.create_table(
        "executions",
        sa.Column("id", key_type(), nullable=False),
        sa.Column("state_machine_id", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("name", key_type(), nullable=False),
        sa.Column("batch_id", key_type(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("current_state", sa.String(), nullable=True),
        sa.Column("input", json_type(), nullable=False),
        sa.Column("data", json_type(), nullable=False),
        sa.Column("variables", json_type(), nullable=False),
        sa.Column("output", json_type(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("started_at", timestamp(), nullable=True),
        sa.Column("ended_at", timestamp(), nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_expires_at", timestamp(), nullable=True),
        sa.Column("row_version", sa.Integer(), server_default=zero(), nullable=False),
        sa.Column("history_seq", sa.Integer(), server_default=zero(), nullable=False),
        sa.Column("redrive_count", sa.Integer(), server_default=zero(), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.Column("wake_at", timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_executions"),
        sa.UniqueConstraint("state_machine_id", "name", name="uq_executions_state_machine_id_name"),
    )
    for name, columns in (
        ("ix_executions_state_machine_id_id", ["state_machine_id", "id"]),
        ("ix_executions_state_machine_id_status_id", ["state_machine_id", "status", "id"]),
        ("ix_executions_batch_id_status_id", ["batch_id", "status", "id"]),
        ("ix_executions_status_id", ["status", "id"]),
        ("ix_executions_current_state", ["current_state"]),
        ("ix_executions_started_at", ["started_at"]),
        ("ix_executions_ended_at", ["ended_at"]),
        ("ix_executions_status_lease_expires_at", ["status", "lease_expires_at"]),
    ):
        op.create_index(name, "executions", columns)
    if op.get_bind().dialect.name == "postgresql":
        for column in ("input", "output"):
            op.create_index(
                f"ix_executions_{column}_gin",
                "executions",
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "jsonb_path_ops"},
            )

    op.create_table(
        "state_history",
        sa.Column("execution_id", key_type(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("input", json_type(), nullable=False),
        sa.Column("output", json_type(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default=zero(), nullable=False),
        sa.Column("started_at", timestamp(), nullable=True),
        sa.Column("ended_at", timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name="fk_state_history_execution_id_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", "sequence", name="pk_state_history"),
    )

    op.create_table(
        "linked_executions",
        sa.Column("target_execution_id", key_type(), nullable=False),
        sa.Column("target_machine_id", sa.String(), nullable=False),
        sa.Column("target_batch_id", key_type(), nullable=True),
        sa.Column("source_execution_id", key_type(), nullable=False),
        sa.Column("source_machine_id", sa.String(), nullable=False),
        sa.Column("source_state", sa.String(), server_default=sa.text("''"), nullable=False),
        sa.Column("transformer", sa.String(), server_default=sa.text("''"), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_execution_id"],
            ["executions.id"],
            name="fk_linked_executions_source_execution_id_executions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_execution_id"],
            ["executions.id"],
            name="fk_linked_executions_target_execution_id_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("target_execution_id", name="pk_linked_executions"),
    )
    op.create_index(
        "ix_linked_executions_source",
        "linked_executions",
        [
            "source_execution_id",
            "target_machine_id",
            "source_state",
            "transformer",
            "target_batch_id",
        ],
    )

    op.create_table(
        "dead_letters",
        sa.Column("id", key_type(), nullable=False),
        sa.Column("execution_id", key_type(), nullable=True),
        sa.Column("state_machine_id", sa.String(), nullable=True),
        sa.Column("batch_id", key_type(), nullable=True),
        sa.Column("queue", sa.String(), nullable=True),
        sa.Column("job_id", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("tries", sa.Integer(), server_default=zero(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    for name, columns in (
        ("ix_dead_letters_state_machine_id_id", ["state_machine_id", "id"]),
        ("ix_dead_letters_batch_id_id", ["batch_id", "id"]),
        ("ix_dead_letters_execution_id", ["execution_id"]),
    ):
        op.create_index(name, "dead_letters", columns)


def downgrade() -> None:
    for table in (
        "dead_letters",
        "linked_executions",
        "state_history",
        "executions",
        "batches",
        "state_machines",
    ):
        op.drop_table(table)
