"""Table, constraint and index names of the store: one place, shared by models, migrations,
the repository and the tests."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BATCHES",
    "DEAD_LETTERS",
    "DEFAULT_URL",
    "EXECUTIONS",
    "KEPT_MESSAGES",
    "LINKED_EXECUTIONS",
    "MIGRATION_LOCK_KEY",
    "PK_LINKED_EXECUTIONS",
    "PK_STATE_HISTORY",
    "STATE_HISTORY",
    "STATE_MACHINES",
    "TABLES",
    "UQ_BATCH_NAME",
    "UQ_EXECUTION_NAME",
    "UQ_WAIT_TOKEN",
    "VERSION_TABLE",
    "WAITS",
]

#: Where the embedded default keeps its data.
DEFAULT_URL: Final = "sqlite+aiosqlite:///./statefleet.db"

STATE_MACHINES: Final = "state_machines"
EXECUTIONS: Final = "executions"
STATE_HISTORY: Final = "state_history"
LINKED_EXECUTIONS: Final = "linked_executions"
BATCHES: Final = "batches"
DEAD_LETTERS: Final = "dead_letters"
WAITS: Final = "waits"
KEPT_MESSAGES: Final = "kept_messages"

#: Every table, parents before children (the order to create; reverse it to drop).
TABLES: Final = (
    STATE_MACHINES,
    BATCHES,
    EXECUTIONS,
    STATE_HISTORY,
    LINKED_EXECUTIONS,
    DEAD_LETTERS,
    WAITS,
    KEPT_MESSAGES,
)

#: Alembic's version table, named for statefleet so that it can share a database with an
#: application that runs Alembic migrations of its own.
VERSION_TABLE: Final = "statefleet_alembic_version"

# Constraints whose violation the repository turns into a clear error.
UQ_EXECUTION_NAME: Final = "uq_executions_state_machine_id_name"
UQ_BATCH_NAME: Final = "uq_batches_state_machine_id_name"
PK_LINKED_EXECUTIONS: Final = "pk_linked_executions"
PK_STATE_HISTORY: Final = "pk_state_history"
UQ_WAIT_TOKEN: Final = "uq_waits_token"

#: pg_advisory_xact_lock key held while migrating, so that concurrent upgrades serialise.
MIGRATION_LOCK_KEY: Final = 0x5374_6174_6566  # "Statef"
