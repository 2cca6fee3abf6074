"""History rows and links without foreign keys to their executions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

A foreign key check runs for every row inserted: on PostgreSQL a trigger that reads and
share-locks the referenced execution row (dirtying its page), four times per execution for
its history and twice per link. The store keeps the integrity itself: history rows are
written in the transaction of their execution's version-guarded checkpoint (only when it
applied), links in the transaction that creates their target, after checking that their
executions exist, and purging an execution deletes its history and links with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, constraint, column) as 0001 created them (ON DELETE CASCADE).
FOREIGN_KEYS = (
    ("state_history", "fk_state_history_execution_id_executions", "execution_id"),
    (
        "linked_executions",
        "fk_linked_executions_source_execution_id_executions",
        "source_execution_id",
    ),
    (
        "linked_executions",
        "fk_linked_executions_target_execution_id_executions",
        "target_execution_id",
    ),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a constraint: batch mode rebuilds the table without it.
        for table in ("state_history", "linked_executions"):
            with op.batch_alter_table(table, recreate="always") as batch:
                for name in [fk for t, fk, _ in FOREIGN_KEYS if t == table]:
                    batch.drop_constraint(name, type_="foreignkey")
        return
    for table, name, _ in FOREIGN_KEYS:
        op.drop_constraint(name, table, type_="foreignkey")


def downgrade() -> None:
    bind = op.get_bind()
    for table, _, column in FOREIGN_KEYS:
        # Rows whose execution is gone would fail the constraint: they go first.
        op.execute(
            sa.text(
                f"DELETE FROM {table} WHERE NOT EXISTS "
                f"(SELECT 1 FROM executions WHERE executions.id = {table}.{column})"
            )
        )
    if bind.dialect.name == "sqlite":
        for table in ("state_history", "linked_executions"):
            with op.batch_alter_table(table, recreate="always") as batch:
                for _, name, column in [fk for fk in FOREIGN_KEYS if fk[0] == table]:
                    batch.create_foreign_key(
                        name, "executions", [column], ["id"], ondelete="CASCADE"
                    )
        return
    for table, name, column in FOREIGN_KEYS:
        op.create_foreign_key(name, table, "executions", [column], ["id"], ondelete="CASCADE")
