"""The tables of the store, as SQLAlchemy 2 declarative models, and the column types they use.

The models describe the schema (the Alembic migrations create it, and a test checks that the
two agree); the repository queries the tables with SQLAlchemy Core.

Column types:

* :data:`JSONValue` holds any JSON value, not only objects: ``JSONB`` on PostgreSQL, a
  ``TEXT`` column on SQLite (a column declared ``JSON`` there has NUMERIC affinity, which
  would turn the text ``1.0`` into the integer ``1``). Python ``None`` is stored as JSON
  ``null``; ``sqlalchemy.null()`` stores SQL ``NULL`` ("no value").
* :class:`UTCDateTime` reads and writes timezone-aware UTC datetimes on both backends
  (SQLite keeps them as naive UTC text, which sorts chronologically).
* :data:`IdType` holds the uuid strings of executions and batches, and execution names; on
  PostgreSQL it uses the ``C`` collation, so that comparing and sorting is a plain byte
  comparison (as on SQLite) and a btree index serves name prefixes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import TypeCompiler
from sqlalchemy.types import TypeDecorator

from statefleet.store import constants as c

__all__ = [
    "Base",
    "BatchRow",
    "DeadLetterRow",
    "DefinitionRow",
    "ExecutionRow",
    "HistoryRow",
    "IdType",
    "JSONValue",
    "KeptMessageRow",
    "LinkRow",
    "UTCDateTime",
    "WaitRow",
    "metadata",
    "postgresql_only",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class SQLiteJSONText(sqlite.JSON):
    """SQLite's JSON type, declared as ``TEXT`` so that SQLite never converts the stored text."""


@compiles(SQLiteJSONText, "sqlite")
def _render_sqlite_json(type_: SQLiteJSONText, compiler: TypeCompiler, **kw: Any) -> str:
    return "TEXT"


#: Any JSON value. ``None`` is JSON ``null``; bind ``sqlalchemy.null()`` for SQL ``NULL``.
JSONValue = (
    JSON(none_as_null=False)
    .with_variant(JSONB(none_as_null=False), "postgresql")
    .with_variant(SQLiteJSONText(none_as_null=False), "sqlite")
)

#: Execution and batch ids (uuid strings) and execution names: byte-ordered on PostgreSQL too.
IdType = String().with_variant(String(collation="C"), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    Aware values are converted to UTC; naive values are taken to be UTC already. SQLite
    stores naive UTC text; values read back always carry ``tzinfo=UTC``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def postgresql_only(index: Index) -> Index:
    """Mark an index that exists on PostgreSQL only (GIN, operator classes)."""
    index.info["dialects"] = ("postgresql",)
    return index.ddl_if(dialect="postgresql")


metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata


class DefinitionRow(Base):
    """One version of a state machine definition; ``is_latest`` marks the newest per id."""

    __tablename__ = c.STATE_MACHINES

    id: Mapped[str] = mapped_column(String())
    version: Mapped[str] = mapped_column(String())
    name: Mapped[str] = mapped_column(String())
    definition: Mapped[Any] = mapped_column(JSONValue)
    is_latest: Mapped[bool] = mapped_column(Boolean(), server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        PrimaryKeyConstraint("id", "version", name="pk_state_machines"),
        # At most one latest version per machine id.
        Index(
            "uq_state_machines_latest",
            "id",
            unique=True,
            postgresql_where=text("is_latest"),
            sqlite_where=text("is_latest"),
        ),
    )


class BatchRow(Base):
    """A named group of executions created together."""

    __tablename__ = c.BATCHES

    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    state_machine_id: Mapped[str] = mapped_column(String())
    name: Mapped[str] = mapped_column(String())
    status: Mapped[str] = mapped_column(String())
    options: Mapped[Any] = mapped_column(JSONValue)
    total: Mapped[int] = mapped_column(Integer(), server_default=text("0"))
    counters: Mapped[Any] = mapped_column(JSONValue)
    stop_reason: Mapped[str | None] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("state_machine_id", "name", name=c.UQ_BATCH_NAME),
        Index("ix_batches_state_machine_id_created_at", "state_machine_id", "created_at"),
        Index("ix_batches_created_at", "created_at"),
    )


class ExecutionRow(Base):
    """One execution. ``output`` is SQL NULL unless the execution SUCCEEDED."""

    __tablename__ = c.EXECUTIONS

    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    state_machine_id: Mapped[str] = mapped_column(String())
    version: Mapped[str] = mapped_column(String())
    name: Mapped[str] = mapped_column(IdType)
    batch_id: Mapped[str | None] = mapped_column(IdType)
    status: Mapped[str] = mapped_column(String())
    current_state: Mapped[str | None] = mapped_column(String())
    input: Mapped[Any] = mapped_column(JSONValue)
    data: Mapped[Any] = mapped_column(JSONValue)
    variables: Mapped[Any] = mapped_column(JSONValue)
    output: Mapped[Any | None] = mapped_column(JSONValue, nullable=True)
    error: Mapped[str | None] = mapped_column(Text())
    cause: Mapped[str | None] = mapped_column(Text())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    row_version: Mapped[int] = mapped_column(Integer(), server_default=text("0"))
    history_seq: Mapped[int] = mapped_column(Integer(), server_default=text("0"))
    redrive_count: Mapped[int] = mapped_column(Integer(), server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # Names are unique per machine; being byte-ordered, this index also serves name
        # prefixes (a range name >= prefix AND name < successor(prefix)) on both backends.
        UniqueConstraint("state_machine_id", "name", name=c.UQ_EXECUTION_NAME),
        # Keyset pages (ORDER BY id) of one machine, with or without a status.
        Index("ix_executions_state_machine_id_id", "state_machine_id", "id"),
        Index("ix_executions_state_machine_id_status_id", "state_machine_id", "status", "id"),
        Index("ix_executions_batch_id_status_id", "batch_id", "status", "id"),
        Index("ix_executions_status_id", "status", "id"),
        Index("ix_executions_current_state", "current_state"),
        Index("ix_executions_started_at", "started_at"),
        Index("ix_executions_ended_at", "ended_at"),
        # Recovery scans: running executions whose lease has expired.
        Index("ix_executions_status_lease_expires_at", "status", "lease_expires_at"),
        # JSON containment (@>).
        postgresql_only(
            Index(
                "ix_executions_input_gin",
                "input",
                postgresql_using="gin",
                postgresql_ops={"input": "jsonb_path_ops"},
            )
        ),
        postgresql_only(
            Index(
                "ix_executions_output_gin",
                "output",
                postgresql_using="gin",
                postgresql_ops={"output": "jsonb_path_ops"},
            )
        ),
    )


class HistoryRow(Base):
    """One state entered and left by an execution; ``sequence`` is gapless per execution."""

    __tablename__ = c.STATE_HISTORY

    execution_id: Mapped[str] = mapped_column(IdType)
    sequence: Mapped[int] = mapped_column(Integer())
    state: Mapped[str] = mapped_column(String())
    type: Mapped[str] = mapped_column(String())
    status: Mapped[str] = mapped_column(String())
    input: Mapped[Any] = mapped_column(JSONValue)
    output: Mapped[Any | None] = mapped_column(JSONValue, nullable=True)
    error: Mapped[str | None] = mapped_column(Text())
    cause: Mapped[str | None] = mapped_column(Text())
    attempt: Mapped[int] = mapped_column(Integer(), server_default=text("0"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # No foreign key to executions (a check per row inserted): rows are written only in the
    # transaction of their execution's applied checkpoint, and purged with it.
    __table_args__ = (PrimaryKeyConstraint("execution_id", "sequence", name=c.PK_STATE_HISTORY),)


class LinkRow(Base):
    """A chained execution: the target took its input from the source (one source per
    target). ``source_state``/``transformer`` hold '' for "none", and ``target_batch_id``
    repeats the target's (immutable) batch, so that "not yet linked (in this batch)" is one
    probe of one index."""

    __tablename__ = c.LINKED_EXECUTIONS

    target_execution_id: Mapped[str] = mapped_column(IdType)
    target_machine_id: Mapped[str] = mapped_column(String())
    target_batch_id: Mapped[str | None] = mapped_column(IdType)
    source_execution_id: Mapped[str] = mapped_column(IdType)
    source_machine_id: Mapped[str] = mapped_column(String())
    source_state: Mapped[str] = mapped_column(String(), server_default=text("''"))
    transformer: Mapped[str] = mapped_column(String(), server_default=text("''"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # No foreign keys (two checks per link): links are written with their target, after
    # create_executions checked that both executions exist, and purged with either.
    __table_args__ = (
        PrimaryKeyConstraint("target_execution_id", name=c.PK_LINKED_EXECUTIONS),
        # links_from, and the NOT EXISTS of unlinked sources (index-only).
        Index(
            "ix_linked_executions_source",
            "source_execution_id",
            "target_machine_id",
            "source_state",
            "transformer",
            "target_batch_id",
        ),
    )


class DeadLetterRow(Base):
    """A queue job given up on (tries exhausted, non-retryable error, unparseable payload).
    No foreign key: a garbage job may name no execution, and dead letters outlive purges."""

    __tablename__ = c.DEAD_LETTERS

    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    execution_id: Mapped[str | None] = mapped_column(IdType)
    state_machine_id: Mapped[str | None] = mapped_column(String())
    batch_id: Mapped[str | None] = mapped_column(IdType)
    queue: Mapped[str | None] = mapped_column(String())
    job_id: Mapped[str | None] = mapped_column(String())
    error: Mapped[str] = mapped_column(Text())
    cause: Mapped[str | None] = mapped_column(Text())
    tries: Mapped[int] = mapped_column(Integer(), server_default=text("0"))
    payload: Mapped[str | None] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_dead_letters_state_machine_id_id", "state_machine_id", "id"),
        Index("ix_dead_letters_batch_id_id", "batch_id", "id"),
        Index("ix_dead_letters_execution_id", "execution_id"),
    )


class WaitRow(Base):
    """An execution parked until the outside world answers: a task token or a message
    correlation. ``correlation_value`` is canonical JSON text (equal values, equal text);
    ``status`` is WAITING until one guarded update answers it."""

    __tablename__ = c.WAITS

    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    execution_id: Mapped[str] = mapped_column(IdType)
    state_machine_id: Mapped[str] = mapped_column(String())
    state: Mapped[str] = mapped_column(String())
    kind: Mapped[str] = mapped_column(String())
    status: Mapped[str] = mapped_column(String())
    token: Mapped[str | None] = mapped_column(String())
    correlation_key: Mapped[str | None] = mapped_column(String())
    correlation_value: Mapped[str | None] = mapped_column(Text())
    output: Mapped[Any | None] = mapped_column(JSONValue, nullable=True)
    error: Mapped[str | None] = mapped_column(Text())
    cause: Mapped[str | None] = mapped_column(Text())
    attempt: Mapped[int] = mapped_column(Integer(), server_default=text("0"))
    retry_counts: Mapped[Any] = mapped_column(JSONValue)
    queue: Mapped[str | None] = mapped_column(String())
    heartbeat_seconds: Mapped[int | None] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    timeout_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        ForeignKeyConstraint(["execution_id"], [f"{c.EXECUTIONS}.id"], ondelete="CASCADE"),
        UniqueConstraint("token", name=c.UQ_WAIT_TOKEN),
        # send_message: the open waits of one key and value.
        Index("ix_waits_correlation", "correlation_key", "correlation_value", "status"),
        # resuming: an execution's newest wait; listing: open waits by age.
        Index("ix_waits_execution_id_id", "execution_id", "id"),
        Index("ix_waits_status_id", "status", "id"),
    )


class KeptMessageRow(Base):
    """A message nothing waited for, kept until ``expires_at`` for a Message state that
    starts waiting later (``send_message(..., keep_for=...)``)."""

    __tablename__ = c.KEPT_MESSAGES

    id: Mapped[str] = mapped_column(IdType, primary_key=True)
    correlation_key: Mapped[str] = mapped_column(String())
    correlation_value: Mapped[str] = mapped_column(Text())
    payload: Mapped[Any] = mapped_column(JSONValue)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consumed_by: Mapped[str | None] = mapped_column(IdType)

    __table_args__ = (
        Index("ix_kept_messages_correlation", "correlation_key", "correlation_value", "id"),
        Index("ix_kept_messages_expires_at", "expires_at"),
    )
