"""``SQLStore``: the engine's :class:`~statefleet.statemachine.protocols.Store` over SQLAlchemy 2
(async Core), on PostgreSQL (asyncpg) and SQLite (aiosqlite).

Every method is one transaction. Values always travel as bound parameters.

JSON ``null`` and "no value"
    JSON columns store Python ``None`` as JSON ``null``. ``executions.output`` (and
    ``state_history.output``) is SQL ``NULL`` unless the execution (the state) SUCCEEDED;
    then it holds the JSON value, ``null`` included. Records carry ``None`` for both: read
    ``status`` to tell them apart (``state_output`` returns ``(found, value)``).

Bulk writes
    ``create_executions`` inserts everything in one transaction: executemany on SQLite; on
    PostgreSQL ``INSERT ... SELECT FROM unnest(<one array per column>)`` in chunks of 5,000
    rows (one fixed statement, JSON serialised once and cast to JSONB server-side).

Checkpoints
    ``write_checkpoints`` applies a whole list in one transaction. On PostgreSQL it is one
    ``UPDATE executions ... FROM unnest(<arrays>) AS v(...) ... RETURNING id`` for the whole
    list (a fixed statement: one array parameter per column, whatever the list's length), then
    one insert of the history rows of the checkpoints that applied. On SQLite each checkpoint
    is one ``UPDATE``, inside the same transaction. A checkpoint applies only if the row still
    has ``expected_version`` (and, when it names an owner, is still leased to it); a stale
    checkpoint writes nothing, its history rows included.

Errors
    A duplicate execution name raises :class:`DuplicateExecutionName`, a duplicate batch name
    :class:`DuplicateBatchName`, a second source link for one target :class:`DuplicateLink`;
    every other database or driver failure raises
    :class:`~statefleet.errors.InfrastructureError` with the original as ``__cause__``. A value
    that is not JSON raises ``ValueError``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import asyncpg
from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    ColumnElement,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    column,
    delete,
    event,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, Row
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from statefleet.errors import InfrastructureError, NotFoundError, StatefleetError
from statefleet.statemachine.lifecycle import ExecutionStatus
from statefleet.statemachine.protocols import (
    BatchRecord,
    ChainSource,
    Checkpoint,
    DeadLetterRecord,
    DefinitionRecord,
    ExecutionFilter,
    ExecutionRecord,
    HistoryEntry,
    HistoryRecord,
    LinkRecord,
    MessageRecord,
    WaitRecord,
    WaitStatus,
    correlation_text,
)
from statefleet.store import constants as c
from statefleet.store.engine import (
    WRITE,
    create_engine,
    json_dumps,
    json_loads,
    normalize_url,
    pg_json_dumps,
    rows_document,
)
from statefleet.store.migrate import current_revision, head_revision, upgrade_engine
from statefleet.store.models import (
    BatchRow,
    DeadLetterRow,
    DefinitionRow,
    ExecutionRow,
    HistoryRow,
    KeptMessageRow,
    LinkRow,
    UTCDateTime,
    WaitRow,
)

if TYPE_CHECKING:
    from statefleet.statemachine.protocols import Store

__all__ = [
    "DuplicateBatchName",
    "DuplicateExecutionName",
    "DuplicateLink",
    "SQLStore",
    "open_store",
    "upgrade",
]

logger = logging.getLogger(__name__)

DEFINITIONS = cast(Table, DefinitionRow.__table__)
EXECUTIONS = cast(Table, ExecutionRow.__table__)
HISTORY = cast(Table, HistoryRow.__table__)
LINKS = cast(Table, LinkRow.__table__)
BATCHES = cast(Table, BatchRow.__table__)
DEAD_LETTERS = cast(Table, DeadLetterRow.__table__)
WAITS = cast(Table, WaitRow.__table__)
KEPT_MESSAGES = cast(Table, KeptMessageRow.__table__)

SUCCEEDED: Final = ExecutionStatus.SUCCEEDED.value
RUNNING: Final = ExecutionStatus.RUNNING.value
ABORTED: Final = ExecutionStatus.ABORTED.value
#: Statuses an execution can still move on from without a redrive.
ACTIVE: Final = (
    ExecutionStatus.QUEUED.value,
    ExecutionStatus.RUNNING.value,
    ExecutionStatus.WAITING.value,
)

#: Ids per ``IN (...)`` list (SQLite allows 32,766 parameters per statement).
_IN_CHUNK: Final = 1000
#: Rows per COPY when inserting (PostgreSQL).
_INSERT_CHUNK: Final = 5000
#: The largest integer SQLite can compare (containment filters).
_SQLITE_INT_RANGE: Final = (-(2**63), 2**63 - 1)

_DEFINITION_COLUMNS = [DEFINITIONS.c[name] for name in DefinitionRecord.__slots__]
_HISTORY_COLUMNS = [HISTORY.c[name] for name in HistoryRecord.__slots__]


class DuplicateExecutionName(StatefleetError):
    """An execution name is already taken for its state machine (names are unique per machine)."""

    def __init__(self, machine_id: str | None, names: Sequence[str] = (), detail: str = "") -> None:
        self.machine_id = machine_id
        self.names = tuple(names)
        shown = ", ".join(repr(n) for n in self.names[:5])
        more = f" and {len(self.names) - 5} more" if len(self.names) > 5 else ""
        which = f" {shown}{more}" if shown else ""
        machine = f" of state machine {machine_id!r}" if machine_id else ""
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"duplicate execution name{which}{machine}{suffix}")


class DuplicateBatchName(StatefleetError):
    """A batch name is already taken for its state machine."""

    def __init__(self, machine_id: str | None = None, name: str | None = None) -> None:
        self.machine_id = machine_id
        self.name = name
        if machine_id is None or name is None:
            super().__init__("duplicate batch name")
        else:
            super().__init__(f"state machine {machine_id!r} already has a batch named {name!r}")


class DuplicateLink(StatefleetError):
    """A target execution already has its source link (an execution has one source)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(value: datetime) -> ColumnElement[datetime]:
    """A datetime bound as the store's UTC type (for use inside expressions)."""
    return literal(value, UTCDateTime())


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _output_value(status: str, value: Any) -> Any:
    """What goes into an output column: the JSON value once SUCCEEDED, else SQL NULL."""
    return value if status == SUCCEEDED else null()


def _prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (code point
    order, which is the byte order of UTF-8); None when there is none."""
    chars = list(prefix)
    while chars:
        point = ord(chars[-1]) + 1
        if 0xD800 <= point <= 0xDFFF:  # surrogates cannot be stored
            point = 0xE000
        if point <= 0x10FFFF:
            chars[-1] = chr(point)
            return "".join(chars)
        chars.pop()
    return None


# ---------------------------------------------------------------- record conversion


def _execution(row: Row[Any]) -> ExecutionRecord:
    return ExecutionRecord(**row._mapping)


def _history(row: Row[Any]) -> HistoryRecord:
    return HistoryRecord(**row._mapping)


def _definition(row: Row[Any]) -> DefinitionRecord:
    return DefinitionRecord(**row._mapping)


def _batch(row: Row[Any]) -> BatchRecord:
    return BatchRecord(**row._mapping)


def _link(row: Row[Any]) -> LinkRecord:
    m = row._mapping
    return LinkRecord(
        source_execution_id=m["source_execution_id"],
        source_machine_id=m["source_machine_id"],
        source_state=m["source_state"] or None,
        transformer=m["transformer"] or None,
        target_execution_id=m["target_execution_id"],
        target_machine_id=m["target_machine_id"],
        created_at=m["created_at"],
    )


def _wait(row: Row[Any]) -> WaitRecord:
    values = dict(row._mapping)
    text = values.get("correlation_value")
    values["correlation_value"] = None if text is None else json.loads(text)
    values["retry_counts"] = list(values.get("retry_counts") or [])
    return WaitRecord(**values)


def _kept_message(row: Row[Any]) -> MessageRecord:
    values = dict(row._mapping)
    values["correlation_value"] = json.loads(values["correlation_value"])
    return MessageRecord(**values)


#: The columns of ``executions`` in table order, as :func:`_execution_row` builds rows.
_EXECUTION_ROW: Final = (
    "id",
    "state_machine_id",
    "version",
    "name",
    "batch_id",
    "status",
    "current_state",
    "input",
    "data",
    "variables",
    "output",
    "error",
    "cause",
    "started_at",
    "ended_at",
    "lease_owner",
    "lease_expires_at",
    "row_version",
    "history_seq",
    "redrive_count",
    "created_at",
    "updated_at",
    "wake_at",
)
if tuple(col.name for col in EXECUTIONS.c) != _EXECUTION_ROW:  # pragma: no cover
    raise RuntimeError("executions columns changed: update _execution_row")


def _execution_row(
    record: ExecutionRecord,
    now: datetime,
    json_text: Callable[[Any], str | None],
    timestamp: Callable[[datetime | None], Any],
) -> tuple[Any, ...]:
    """A new execution's row in table order, JSON and datetimes converted for the driver."""
    status = record.status
    try:
        return (
            record.id,
            record.state_machine_id,
            record.version,
            record.name,
            record.batch_id,
            status,
            record.current_state,
            json_text(record.input),
            json_text(record.data),
            json_text(record.variables if record.variables is not None else {}),
            json_text(record.output if status == SUCCEEDED else _SQL_NULL),
            record.error,
            record.cause,
            timestamp(record.started_at),
            timestamp(record.ended_at),
            record.lease_owner,
            timestamp(record.lease_expires_at),
            record.row_version,
            record.history_seq,
            record.redrive_count,
            timestamp(record.created_at or now),
            timestamp(record.updated_at or now),
            timestamp(record.wake_at),
        )
    except _NotJSON:
        raise
    except (TypeError, ValueError) as exc:
        raise _NotJSON(f"cannot store a value as JSON: {exc}") from exc


#: The columns of ``state_history`` in table order, as :func:`_history_tuples` builds rows.
_HISTORY_ROW: Final = (
    "execution_id",
    "sequence",
    "state",
    "type",
    "status",
    "input",
    "output",
    "error",
    "cause",
    "attempt",
    "started_at",
    "ended_at",
)
if tuple(col.name for col in HISTORY.c) != _HISTORY_ROW:  # pragma: no cover
    raise RuntimeError("state_history columns changed: update _history_tuples")


def _history_tuples(
    checkpoints: Sequence[Checkpoint],
    applied: Sequence[bool],
    json_text: Callable[[Any], str | None],
    timestamp: Callable[[datetime | None], Any],
    epoch: Callable[[float], Any],
) -> list[tuple[Any, ...]]:
    """The history rows of the applied checkpoints as tuples in table order, JSON and
    times converted for the driver (no dict per row: four rows per execution): datetimes
    of :class:`HistoryRecord` by ``timestamp``, epoch seconds of :class:`HistoryEntry` by
    ``epoch``."""
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    try:
        for cp, ok in zip(checkpoints, applied, strict=True):
            if not ok:
                continue
            execution_id = cp.execution_id
            for r in cp.history:
                if isinstance(r, HistoryEntry):
                    started, ended = epoch(r.started_at), epoch(r.ended_at)
                else:
                    started, ended = timestamp(r.started_at), timestamp(r.ended_at)
                append(
                    (
                        execution_id,
                        r.sequence,
                        r.state,
                        r.type,
                        r.status,
                        json_text(r.input),
                        json_text(r.output if r.status == SUCCEEDED else _SQL_NULL),
                        r.error,
                        r.cause,
                        r.attempt,
                        started,
                        ended,
                    )
                )
    except _NotJSON:
        raise
    except (TypeError, ValueError) as exc:
        raise _NotJSON(f"cannot store a value as JSON: {exc}") from exc
    return rows


def _check_link_ends(
    links: Sequence[LinkRecord], created: dict[str, str | None], sources: set[str]
) -> None:
    """Refuse links whose source or target execution does not exist: ``created`` holds the
    executions created by the call and the targets found in the store, ``sources`` the
    sources found in the store."""
    for link in links:
        if link.target_execution_id not in created:
            raise NotFoundError(
                f"cannot link to execution {link.target_execution_id!r}: it does not exist"
            )
        source = link.source_execution_id
        if source not in sources and source not in created:
            raise NotFoundError(f"cannot link from execution {source!r}: it does not exist")


def _link_values(record: LinkRecord, now: datetime, target_batch_id: str | None) -> dict[str, Any]:
    return {
        "target_batch_id": target_batch_id,
        "source_execution_id": record.source_execution_id,
        "source_machine_id": record.source_machine_id,
        "source_state": record.source_state or "",
        "transformer": record.transformer or "",
        "target_execution_id": record.target_execution_id,
        "target_machine_id": record.target_machine_id,
        "created_at": record.created_at or now,
    }


# ---------------------------------------------------------------- errors


def _unique_violation(exc: IntegrityError) -> str | None:
    """The name of the unique constraint ``exc`` violated, if it is one of ours."""
    cause = getattr(exc.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)  # asyncpg
    if isinstance(name, str):
        return name
    message = str(exc.orig)  # SQLite: "UNIQUE constraint failed: table.col, table.col"
    marker = "UNIQUE constraint failed: "
    if marker not in message:
        return None
    columns = message.split(marker, 1)[1].strip()
    if columns == f"{c.EXECUTIONS}.state_machine_id, {c.EXECUTIONS}.name":
        return c.UQ_EXECUTION_NAME
    if columns == f"{c.BATCHES}.state_machine_id, {c.BATCHES}.name":
        return c.UQ_BATCH_NAME
    if columns.startswith(f"{c.LINKED_EXECUTIONS}."):
        return c.PK_LINKED_EXECUTIONS
    return None


def _duplicate(constraint: str | None, detail: str) -> BaseException | None:
    """The statefleet error for a violation of one of our unique constraints, else None."""
    if constraint == c.UQ_EXECUTION_NAME:
        return DuplicateExecutionName(None, detail=detail)
    if constraint == c.UQ_BATCH_NAME:
        return DuplicateBatchName()
    if constraint == c.PK_LINKED_EXECUTIONS:
        return DuplicateLink(
            "a target execution already has a source link" + (f" ({detail})" if detail else "")
        )
    return None


def _translate(exc: BaseException) -> BaseException:
    """The statefleet exception for a SQLAlchemy/driver exception."""
    if isinstance(exc, IntegrityError):
        detail = str(getattr(getattr(exc.orig, "__cause__", None), "detail", "") or "")
        duplicate = _duplicate(_unique_violation(exc), detail)
        return duplicate or InfrastructureError(f"store constraint violated: {exc.orig}")
    if (
        isinstance(exc, StatementError)
        and not isinstance(exc, DBAPIError)
        and isinstance(exc.orig, TypeError | ValueError)
    ):
        return ValueError(f"cannot store a value as JSON: {exc.orig}")
    if isinstance(exc, DBAPIError):
        return InfrastructureError(f"store error: {exc.orig}")
    return InfrastructureError(f"store error: {exc}")


def _translate_driver(exc: BaseException) -> BaseException:
    """:func:`_translate` for an asyncpg exception raised outside SQLAlchemy (COPY)."""
    name = getattr(exc, "constraint_name", None)
    if getattr(exc, "sqlstate", None) == "23505" and isinstance(name, str):
        duplicate = _duplicate(name, str(getattr(exc, "detail", "") or ""))
        if duplicate is not None:
            return duplicate
    if isinstance(exc, asyncpg.DataError):  # a value the column's codec refused
        return ValueError(f"cannot store a value: {exc}")
    return InfrastructureError(f"store error: {exc}")


# ---------------------------------------------------------------- the store


class SQLStore:
    """The store on one SQLAlchemy async engine (see the module docstring).

    Filters: lists are ordered by id (creation order); ``started_after``/``ended_after`` are
    inclusive (``>=``), ``started_before``/``ended_before`` exclusive (``<``); ``after`` and
    ``before`` are exclusive id bounds; counts honour every field but ``limit``.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        self._sqlite = self.dialect == "sqlite"
        self._claim_statement = self._build_claim_statement()
        #: SQLite: the connection held for :meth:`_sqlite_transaction` (opened on first use).
        self._writer: AsyncConnection | None = None
        #: the writer's aiosqlite connection once open (see _sqlite_begin)
        self._writer_open: Any = None
        self._writer_opening: asyncio.Lock | None = None
        #: SQLite: the thread that copies the write-ahead log into the database file
        self._checkpointer: WalCheckpointer | None = None

    @property
    def url(self) -> URL:
        return self.engine.url

    def __repr__(self) -> str:
        return f"SQLStore({self.engine.url.render_as_string(hide_password=True)!r})"

    async def __aenter__(self) -> SQLStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._drop_writer()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None
        await self.engine.dispose()

    async def upgrade(self) -> None:
        """Run the migrations up to the newest revision (idempotent)."""
        try:
            await upgrade_engine(self.engine)
        except (SQLAlchemyError, OSError) as exc:
            raise InfrastructureError(f"cannot upgrade the store schema: {exc}") from exc

    async def revision(self) -> str | None:
        """The schema revision of the database (None: never migrated)."""
        try:
            return await current_revision(self.engine)
        except (SQLAlchemyError, OSError) as exc:
            raise InfrastructureError(f"cannot read the store schema revision: {exc}") from exc

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        """One transaction (SQLite: BEGIN IMMEDIATE when it will write), errors translated."""
        try:
            async with self.engine.connect() as connection:
                if write and self._sqlite:
                    await connection.execution_options(**{WRITE: True})
                async with connection.begin():
                    yield connection
        except (SQLAlchemyError, OSError) as exc:
            raise _translate(exc) from exc

    async def _sqlite_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """SQLite: run ``work`` (plain ``sqlite3`` calls, no awaits) as one write transaction
        on this store's writer connection, in that connection's thread.

        Through SQLAlchemy's aiosqlite adapter every statement, cursor and commit is a round
        trip to a connection's thread, each resumed behind whatever the event loop runs, and
        two writers on two connections wait for SQLite's lock with the busy handler (which
        sleeps 1, 2, 5 ... 100 ms). Here a whole transaction is one round trip, and the bulk
        writes of this process (group commits of checkpoints, batch creations) queue on one
        thread in order instead of waiting for each other's lock."""
        driver = await self._writer_driver()
        write = _sqlite_write(driver, work, self._committed())
        return await self._sqlite_result(driver._execute(write))

    def _sqlite_begin(self, work: Callable[[sqlite3.Connection], T]) -> Awaitable[T]:
        """:meth:`_sqlite_transaction`, handed to the writer's thread before this returns
        when the writer connection is open (the thread starts on it while the caller goes
        on); the result (or the error) is awaited from what this returns."""
        driver = self._writer_open
        if driver is None or not driver._running or driver._connection is None:
            return self._sqlite_transaction(work)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        write = _sqlite_write(driver, work, self._committed())
        driver._tx.put_nowait((future, write))  # what aiosqlite's _execute does
        return self._sqlite_result(future)

    def _committed(self) -> Callable[[], None] | None:
        """What the writer's thread calls after each commit (wakes the log checkpointer)."""
        return self._checkpointer.written if self._checkpointer is not None else None

    async def _sqlite_result(self, pending: Awaitable[T]) -> T:
        """The result of a write transaction on the writer's thread, errors translated (a
        connection that failed is dropped: the next write opens a fresh one)."""
        try:
            result: T = await pending
        except sqlite3.IntegrityError as exc:
            raise _translate(DBAPIError.instance(None, None, exc, sqlite3.Error)) from exc
        except sqlite3.Error as exc:
            await self._drop_writer(broken=True)  # the next write opens a fresh connection
            raise _translate(DBAPIError.instance(None, None, exc, sqlite3.Error)) from exc
        except ValueError as exc:  # aiosqlite: the connection was closed
            await self._drop_writer(broken=True)
            raise InfrastructureError(f"store error: {exc}") from exc
        return result

    async def _writer_driver(self) -> Any:
        """The ``aiosqlite`` connection of the writer, opened (from the pool) on first use."""
        if self._writer is None:
            if self._writer_opening is None:
                self._writer_opening = asyncio.Lock()
            async with self._writer_opening:
                if self._writer is None:
                    try:
                        connection = await self.engine.connect()
                        raw = await connection.get_raw_connection()
                        database = self.engine.url.database
                        if _sqlite_file(database):
                            # this connection writes: the checkpointer copies its log
                            driver = cast(Any, raw.driver_connection)
                            cursor = await driver.execute("PRAGMA wal_autocheckpoint=0")
                            await cursor.close()
                            if self._checkpointer is None:
                                self._checkpointer = checkpointer = WalCheckpointer(str(database))
                                # write transactions through SQLAlchemy wake it too
                                event.listen(
                                    self.engine.sync_engine,
                                    "commit",
                                    functools.partial(_wake_after_write, checkpointer),
                                )
                    except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
                        raise _translate(exc) from exc
                    self._writer = connection
        raw = await self._writer.get_raw_connection()
        self._writer_open = raw.driver_connection
        return raw.driver_connection

    async def _drop_writer(self, *, broken: bool = False) -> None:
        """Give the writer connection back (``broken``: discard it, never to be reused)."""
        writer, self._writer = self._writer, None
        self._writer_open = None
        if writer is not None:
            try:
                if broken:
                    await writer.invalidate()
                await writer.close()
            except Exception:  # already broken: nothing to give back
                logger.debug("closing the SQLite writer connection failed", exc_info=True)

    async def _insert(
        self,
        conn: AsyncConnection,
        table: Table,
        rows: Sequence[dict[str, Any]],
        json_text: Callable[[Any], str | None] | None = None,
    ) -> None:
        """Insert many rows, per chunk: on SQLite the driver's ``executemany`` of one
        prepared ``INSERT`` over plain tuples; on PostgreSQL a binary ``COPY`` in the
        transaction."""
        if json_text is None:
            json_text = _memo_json(_sqlite_json_text if self._sqlite else _pg_json_text)
        convert = {"json": json_text, "timestamp": self._timestamp}
        plan = [(name, convert.get(kind)) for name, kind in _table_columns(table)]
        await self._insert_tuples(conn, table, _row_tuples(plan, rows))

    @property
    def _epoch(self) -> Callable[[float], Any]:
        """Epoch seconds as the driver takes them (see :attr:`_timestamp`)."""
        return _sqlite_epoch if self._sqlite else _pg_epoch

    @property
    def _timestamp(self) -> Callable[[datetime | None], Any]:
        """A datetime as the driver takes it: SQLite, the text SQLAlchemy's DATETIME
        writes; PostgreSQL, an aware UTC datetime."""
        return _sqlite_timestamp if self._sqlite else _utc

    async def _insert_tuples(
        self, conn: AsyncConnection, table: Table, records: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert rows given as tuples in the table's column order, values converted."""
        if self._sqlite:
            for sql, values in _sqlite_inserts(table, records):
                await conn.exec_driver_sql(sql, values)
            return
        for chunk in _chunks(records, _INSERT_CHUNK):
            await self._pg_copy(conn, table, chunk)

    @staticmethod
    async def _pg_copy(
        conn: AsyncConnection, table: Table, records: Sequence[tuple[Any, ...]]
    ) -> None:
        """PostgreSQL: ``COPY table (...) FROM STDIN (FORMAT binary)`` of ``records`` on the
        connection's driver, inside its transaction. Each value goes through asyncpg's
        codec for its column (JSON as text: SQLAlchemy's JSONB codec takes text), with none
        of the per-element checks asyncpg makes on array parameters, and the server takes
        the rows as COPY does (no per-row statement, multi-row heap inserts)."""
        raw = await conn.get_raw_connection()
        driver = cast(Any, raw.driver_connection)
        if not driver.is_in_transaction():  # SQLAlchemy sends BEGIN with its first statement
            await conn.exec_driver_sql("SELECT 1")
        try:
            await driver.copy_records_to_table(
                table.name, records=records, columns=[name for name, _ in _table_columns(table)]
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate_driver(exc) from exc

    # ------------------------------------------------------------ definitions

    async def save_definition(self, record: DefinitionRecord) -> DefinitionRecord:
        """Save one version (a no-op for its content if ``(id, version)`` exists) and make it
        the latest of its id."""
        now = _now()
        t = DEFINITIONS
        async with self._transaction(write=True) as conn:
            if not self._sqlite:  # serialise savers of one id (SQLite: BEGIN IMMEDIATE does)
                await conn.execute(
                    select(func.pg_advisory_xact_lock(func.hashtextextended(record.id, 0)))
                )
            await conn.execute(
                update(t)
                .where(t.c.id == record.id, t.c.is_latest, t.c.version != record.version)
                .values(is_latest=False)
            )
            updated = await conn.execute(
                update(t)
                .where(t.c.id == record.id, t.c.version == record.version)
                .values(name=record.name, is_latest=True, updated_at=now)
            )
            if updated.rowcount == 0:
                await conn.execute(
                    insert(t).values(
                        id=record.id,
                        version=record.version,
                        name=record.name,
                        definition=record.definition,
                        is_latest=True,
                        created_at=record.created_at or now,
                        updated_at=now,
                    )
                )
            row = (
                await conn.execute(
                    select(*_DEFINITION_COLUMNS).where(
                        t.c.id == record.id, t.c.version == record.version
                    )
                )
            ).one()
        return _definition(row)

    async def get_definition(
        self, machine_id: str, version: str | None = None
    ) -> DefinitionRecord | None:
        t = DEFINITIONS
        which = t.c.is_latest if version is None else t.c.version == version
        async with self._transaction(write=False) as conn:
            row = (
                await conn.execute(select(*_DEFINITION_COLUMNS).where(t.c.id == machine_id, which))
            ).first()
        return _definition(row) if row is not None else None

    async def list_definitions(self) -> list[DefinitionRecord]:
        """The latest version of every state machine, by id."""
        t = DEFINITIONS
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(
                select(*_DEFINITION_COLUMNS).where(t.c.is_latest).order_by(t.c.id)
            )
            return [_definition(row) for row in rows]

    async def definition_versions(self, machine_id: str) -> list[DefinitionRecord]:
        """Every version of a state machine, newest first."""
        t = DEFINITIONS
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(
                select(*_DEFINITION_COLUMNS)
                .where(t.c.id == machine_id)
                .order_by(t.c.created_at.desc(), t.c.version)
            )
            return [_definition(row) for row in rows]

    # ------------------------------------------------------------ executions

    async def create_executions(
        self, executions: Sequence[ExecutionRecord], links: Sequence[LinkRecord] = ()
    ) -> None:
        """Insert executions and their links in one transaction (executemany batches)."""
        if not executions and not links:
            return
        seen: set[tuple[str, str]] = set()
        for record in executions:
            key = (record.state_machine_id, record.name)
            if key in seen:
                raise DuplicateExecutionName(record.state_machine_id, [record.name])
            seen.add(key)
        now = _now()
        json_text = _memo_json(_sqlite_json_text if self._sqlite else _pg_json_text)
        timestamp = self._timestamp
        rows = [_execution_row(record, now, json_text, timestamp) for record in executions]
        batch_of = {record.id: record.batch_id for record in executions}
        try:
            if self._sqlite and all(link.target_execution_id in batch_of for link in links):
                await self._create_sqlite_direct(rows, links, batch_of, now)
                return
            async with self._transaction(write=True) as conn:
                await self._insert_tuples(conn, EXECUTIONS, rows)
                if links:
                    await self._add_batches_of(
                        conn, [link.target_execution_id for link in links], batch_of
                    )
                    _check_link_ends(
                        links, batch_of, await self._existing_sources(conn, links, batch_of)
                    )
                    link_rows = [
                        _link_values(link, now, batch_of.get(link.target_execution_id))
                        for link in links
                    ]
                    await self._insert(conn, LINKS, link_rows)
        except DuplicateExecutionName as exc:
            taken = await self._taken_names(executions)
            machines = {machine for machine, _ in taken}
            machine = machines.pop() if len(machines) == 1 else None
            raise DuplicateExecutionName(
                machine, [name for _, name in taken], detail=str(exc)
            ) from exc.__cause__

    async def _create_sqlite_direct(
        self,
        executions: Sequence[tuple[Any, ...]],
        links: Sequence[LinkRecord],
        batch_of: dict[str, str | None],
        now: datetime,
    ) -> None:
        """SQLite: :meth:`create_executions` whose links all point at executions of the same
        call, as one round trip to the writer (rows converted here, ``executemany`` there)."""
        link_rows = _row_tuples(
            _sqlite_plan(LINKS, _sqlite_json_text),
            [_link_values(link, now, batch_of.get(link.target_execution_id)) for link in links],
        )

        sources = [
            i
            for i in dict.fromkeys(link.source_execution_id for link in links)
            if i not in batch_of
        ]

        def work(db: sqlite3.Connection) -> None:
            found: set[str] = set()
            for chunk in _chunks(sources, _IN_CHUNK):
                marks = ", ".join("?" * len(chunk))
                query = f"SELECT id FROM executions WHERE id IN ({marks})"
                found.update(execution_id for (execution_id,) in db.execute(query, chunk))
            _check_link_ends(links, batch_of, found)
            _sqlite_insert_rows(db, EXECUTIONS, executions)
            _sqlite_insert_rows(db, LINKS, link_rows)

        await self._sqlite_transaction(work)

    @staticmethod
    async def _existing_sources(
        conn: AsyncConnection, links: Sequence[LinkRecord], created: dict[str, str | None]
    ) -> set[str]:
        """Which link sources not created by this call exist (links have no foreign key)."""
        wanted = [
            i for i in dict.fromkeys(link.source_execution_id for link in links) if i not in created
        ]
        found: set[str] = set()
        for chunk in _chunks(wanted, _IN_CHUNK):
            rows = await conn.execute(select(EXECUTIONS.c.id).where(EXECUTIONS.c.id.in_(chunk)))
            found.update(execution_id for (execution_id,) in rows)
        return found

    @staticmethod
    async def _add_batches_of(
        conn: AsyncConnection, execution_ids: Sequence[str], batch_of: dict[str, str | None]
    ) -> None:
        """Add the batch of the executions not in ``batch_of`` (link targets created earlier)."""
        missing = [i for i in dict.fromkeys(execution_ids) if i not in batch_of]
        for chunk in _chunks(missing, _IN_CHUNK):
            rows = await conn.execute(
                select(EXECUTIONS.c.id, EXECUTIONS.c.batch_id).where(EXECUTIONS.c.id.in_(chunk))
            )
            batch_of.update((execution_id, batch) for execution_id, batch in rows)

    async def _taken_names(self, executions: Sequence[ExecutionRecord]) -> list[tuple[str, str]]:
        """Which of these (machine, name) pairs exist (to name them in an error)."""
        by_machine: dict[str, list[str]] = {}
        for record in executions:
            by_machine.setdefault(record.state_machine_id, []).append(record.name)
        taken: list[tuple[str, str]] = []
        t = EXECUTIONS
        try:
            async with self._transaction(write=False) as conn:
                for machine, names in by_machine.items():
                    for chunk in _chunks(names, _IN_CHUNK):
                        rows = await conn.execute(
                            select(t.c.name).where(
                                t.c.state_machine_id == machine, t.c.name.in_(chunk)
                            )
                        )
                        taken.extend((machine, name) for (name,) in rows)
        except InfrastructureError:  # only for the message: never hide the duplicate
            logger.warning("could not look up the duplicate execution names", exc_info=True)
        return taken

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        async with self._transaction(write=False) as conn:
            row = (
                await conn.execute(select(EXECUTIONS).where(EXECUTIONS.c.id == execution_id))
            ).first()
        return _execution(row) if row is not None else None

    async def get_execution_by_name(self, machine_id: str, name: str) -> ExecutionRecord | None:
        t = EXECUTIONS
        async with self._transaction(write=False) as conn:
            row = (
                await conn.execute(
                    select(t).where(t.c.state_machine_id == machine_id, t.c.name == name)
                )
            ).first()
        return _execution(row) if row is not None else None

    def _conditions(self, filter: ExecutionFilter) -> list[ColumnElement[bool]]:
        """The WHERE conditions of ``filter`` (all but ``limit``)."""
        t = EXECUTIONS
        where: list[ColumnElement[bool]] = []
        if filter.state_machine_id is not None:
            where.append(t.c.state_machine_id == filter.state_machine_id)
        statuses = filter.statuses()
        if statuses is not None:
            where.append(
                t.c.status == statuses[0] if len(statuses) == 1 else t.c.status.in_(statuses)
            )
        if filter.name_prefix:
            # Names are byte-ordered on both backends: a prefix is a range of the
            # (state_machine_id, name) index.
            where.append(t.c.name >= filter.name_prefix)
            upper = _prefix_upper_bound(filter.name_prefix)
            if upper is not None:
                where.append(t.c.name < upper)
        if filter.batch_id is not None:
            where.append(t.c.batch_id == filter.batch_id)
        if filter.current_state is not None:
            where.append(t.c.current_state == filter.current_state)
        if filter.started_after is not None:
            where.append(t.c.started_at >= filter.started_after)
        if filter.started_before is not None:
            where.append(t.c.started_at < filter.started_before)
        if filter.ended_after is not None:
            where.append(t.c.ended_at >= filter.ended_after)
        if filter.ended_before is not None:
            where.append(t.c.ended_at < filter.ended_before)
        if filter.input_contains is not None:
            where.append(self._contains(t.c.input, filter.input_contains, "input_contains"))
        if filter.output_contains is not None:
            where.append(self._contains(t.c.output, filter.output_contains, "output_contains"))
        if filter.after is not None:
            where.append(t.c.id > filter.after)
        if filter.before is not None:
            where.append(t.c.id < filter.before)
        return where

    def _contains(self, col: ColumnElement[Any], value: Any, what: str) -> ColumnElement[bool]:
        if not self._sqlite:
            return type_coerce(col, JSONB(none_as_null=False)).contains(value)
        return _sqlite_contains(col, value, what)

    def select_executions(
        self,
        filter: ExecutionFilter,
        *extra: ColumnElement[bool],
        limit: int | None = None,
        columns: Sequence[Any] = (EXECUTIONS,),
    ) -> Any:
        """The SELECT that lists ``filter`` (public for ``bench/store_explain.py``)."""
        statement = (
            select(*columns).where(*self._conditions(filter), *extra).order_by(EXECUTIONS.c.id)
        )
        limit = filter.limit if limit is None else limit
        return statement if limit is None else statement.limit(limit)

    def count_statement(self, filter: ExecutionFilter) -> Any:
        return select(func.count()).select_from(EXECUTIONS).where(*self._conditions(filter))

    def count_by_status_statement(self, filter: ExecutionFilter) -> Any:
        return (
            select(EXECUTIONS.c.status, func.count())
            .where(*self._conditions(filter))
            .group_by(EXECUTIONS.c.status)
        )

    @staticmethod
    def unlinked_condition(
        target_machine_id: str,
        source_state: str | None,
        transformer: str | None,
        batch_id: str | None = None,
        *,
        after: str | None = None,
        before: str | None = None,
    ) -> ColumnElement[bool]:
        """No link from the execution to ``target_machine_id`` with this state and
        transformer (with ``batch_id``: to a target execution of that batch).

        ``after``/``before`` repeat the keyset bounds on the links' side: redundant, but
        PostgreSQL does not carry ``id > after`` over the join, and without it a merge anti
        join reads the link index from its start on every page."""
        link = LINKS
        linked = exists().where(
            link.c.source_execution_id == EXECUTIONS.c.id,
            link.c.target_machine_id == target_machine_id,
            link.c.source_state == (source_state or ""),
            link.c.transformer == (transformer or ""),
        )
        if after is not None:
            linked = linked.where(link.c.source_execution_id > after)
        if before is not None:
            linked = linked.where(link.c.source_execution_id < before)
        if batch_id is not None:
            linked = linked.where(link.c.target_batch_id == batch_id)
        return ~linked

    def select_unlinked(
        self,
        filter: ExecutionFilter,
        target_machine_id: str,
        source_state: str | None,
        transformer: str | None,
        batch_id: str | None = None,
        limit: int | None = None,
        columns: Sequence[Any] = (EXECUTIONS,),
    ) -> Any:
        """The SELECT of one page of :meth:`stream_unlinked`."""
        condition = self.unlinked_condition(
            target_machine_id,
            source_state,
            transformer,
            batch_id,
            after=filter.after,
            before=filter.before,
        )
        return self.select_executions(filter, condition, limit=limit, columns=columns)

    async def list_executions(self, filter: ExecutionFilter) -> list[ExecutionRecord]:
        """Executions matching ``filter``, by id (creation order); ``after``/``limit`` page."""
        return await self._fetch(self.select_executions(filter))

    async def _fetch(self, statement: Any) -> list[ExecutionRecord]:
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(statement)
            return [_execution(row) for row in rows]

    async def _fetch_tuples(self, statement: Any, make: Callable[..., T]) -> list[T]:
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(statement)
            return [make(*row) for row in rows]

    async def count_executions(self, filter: ExecutionFilter) -> int:
        """How many executions match ``filter`` (``after`` applies, ``limit`` does not)."""
        async with self._transaction(write=False) as conn:
            return int((await conn.execute(self.count_statement(filter))).scalar_one())

    async def count_by_status(self, filter: ExecutionFilter) -> dict[str, int]:
        """Matching executions per status (statuses with none are left out)."""
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(self.count_by_status_statement(filter))
            return {status: int(count) for status, count in rows}

    async def stream_executions(
        self, filter: ExecutionFilter, *, page_size: int = 1000
    ) -> AsyncIterator[ExecutionRecord]:
        """Every execution matching ``filter`` (up to ``filter.limit``), in keyset pages of
        ``page_size``: memory stays bounded by one page, each page is its own transaction."""

        def page(page_filter: ExecutionFilter, size: int) -> Any:
            return self.select_executions(page_filter, limit=size)

        async for record in self._stream(filter, page, page_size):
            yield record

    async def stream_unlinked(
        self,
        filter: ExecutionFilter,
        *,
        target_machine_id: str,
        source_state: str | None,
        transformer: str | None,
        batch_id: str | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[ExecutionRecord]:
        """Like :meth:`stream_executions`, only the executions not yet linked to
        ``target_machine_id`` with this ``source_state`` and ``transformer``; with
        ``batch_id`` only links to executions of that batch count."""

        def page(page_filter: ExecutionFilter, size: int) -> Any:
            return self.select_unlinked(
                page_filter, target_machine_id, source_state, transformer, batch_id, size
            )

        async for record in self._stream(filter, page, page_size):
            yield record

    async def stream_chain_sources(
        self,
        filter: ExecutionFilter,
        *,
        target_machine_id: str,
        source_state: str | None,
        transformer: str | None,
        batch_id: str | None = None,
        with_output: bool = True,
        page_size: int = 1000,
    ) -> AsyncIterator[ChainSource]:
        """The sources of :meth:`stream_unlinked`, only the columns chaining reads: no
        record with its JSON documents and datetimes to decode per source."""
        e = EXECUTIONS.c
        columns = (e.id, e.state_machine_id, e.status) + ((e.output,) if with_output else ())

        def page(page_filter: ExecutionFilter, size: int) -> Any:
            return self.select_unlinked(
                page_filter, target_machine_id, source_state, transformer, batch_id, size, columns
            )

        async for source in self._stream(
            filter, page, page_size, lambda statement: self._fetch_tuples(statement, ChainSource)
        ):
            yield source

    async def _stream(
        self,
        filter: ExecutionFilter,
        select_page: Callable[[ExecutionFilter, int], Any],
        page_size: int,
        fetch: Callable[[Any], Awaitable[list[Any]]] | None = None,
    ) -> AsyncIterator[Any]:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}")
        fetch = fetch or self._fetch
        remaining = filter.limit
        after = filter.after
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            page = await fetch(select_page(replace(filter, after=after), size))
            for record in page:
                yield record
            if len(page) < size:
                return
            after = page[-1].id
            if remaining is not None:
                remaining -= len(page)
            del page

    async def history(self, execution_id: str) -> list[HistoryRecord]:
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(
                select(*_HISTORY_COLUMNS)
                .where(HISTORY.c.execution_id == execution_id)
                .order_by(HISTORY.c.sequence)
            )
            return [_history(row) for row in rows]

    async def state_output(self, execution_id: str, state: str) -> tuple[bool, Any]:
        """``(True, output)`` of the last SUCCEEDED history row of ``state``, else
        ``(False, None)``."""
        h = HISTORY
        async with self._transaction(write=False) as conn:
            row = (
                await conn.execute(
                    select(h.c.output)
                    .where(h.c.execution_id == execution_id, h.c.state == state)
                    .where(h.c.status == SUCCEEDED)
                    .order_by(h.c.sequence.desc())
                    .limit(1)
                )
            ).first()
        return (True, row[0]) if row is not None else (False, None)

    async def links_from(self, execution_id: str) -> list[LinkRecord]:
        return await self._links(LINKS.c.source_execution_id == execution_id)

    async def links_to(self, execution_id: str) -> list[LinkRecord]:
        return await self._links(LINKS.c.target_execution_id == execution_id)

    async def _links(self, condition: ColumnElement[bool]) -> list[LinkRecord]:
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(
                select(LINKS)
                .where(condition)
                .order_by(LINKS.c.created_at, LINKS.c.target_execution_id)
            )
            return [_link(row) for row in rows]

    # ------------------------------------------------------------ running

    async def claim(
        self, execution_id: str, owner: str, lease_expires_at: datetime, now: datetime
    ) -> ExecutionRecord | None:
        """Take the lease of a QUEUED/RUNNING/WAITING execution whose lease is free, expired
        or already ``owner``'s, in one ``UPDATE ... RETURNING``; the execution becomes
        RUNNING and its version moves on. None if it is leased to someone else, ended or
        missing."""
        claimed = await self.claim_many([execution_id], owner, lease_expires_at, now)
        return claimed.get(execution_id)

    async def claim_many(
        self,
        execution_ids: Sequence[str],
        owner: str,
        lease_expires_at: datetime,
        now: datetime,
    ) -> dict[str, ExecutionRecord]:
        """:meth:`claim` for many executions in one statement; returns those taken, by id."""
        if not execution_ids:
            return {}
        params = {
            "owner": owner,
            "lease_expires_at": lease_expires_at,
            "now": now,
        }
        taken: dict[str, ExecutionRecord] = {}
        async with self._transaction(write=True) as conn:
            for chunk in _chunks(list(dict.fromkeys(execution_ids)), 1000):
                result = await conn.execute(self._claim_statement, {**params, "ids": list(chunk)})
                for row in result:
                    record = _execution(row)
                    taken[record.id] = record
        return taken

    @staticmethod
    def _build_claim_statement() -> Any:
        t = EXECUTIONS
        now = bindparam("now", type_=UTCDateTime())
        owner = bindparam("owner", type_=String())
        return (
            update(t)
            .where(
                t.c.id.in_(bindparam("ids", expanding=True)),
                or_(*(t.c.status == status for status in ACTIVE)),
                or_(
                    t.c.lease_owner.is_(None),
                    t.c.lease_expires_at.is_(None),
                    t.c.lease_expires_at < now,
                    t.c.lease_owner == owner,
                ),
            )
            .values(
                status=RUNNING,
                lease_owner=owner,
                lease_expires_at=bindparam("lease_expires_at", type_=UTCDateTime()),
                started_at=func.coalesce(t.c.started_at, now),
                row_version=t.c.row_version + 1,
                updated_at=now,
            )
            .returning(*t.c)
        )

    async def renew_lease(self, execution_id: str, owner: str, lease_expires_at: datetime) -> bool:
        """Extend the lease if ``owner`` still holds it (the version does not change)."""
        t = EXECUTIONS
        async with self._transaction(write=True) as conn:
            result = await conn.execute(
                update(t)
                .where(t.c.id == execution_id, t.c.lease_owner == owner, t.c.status.in_(ACTIVE))
                .values(lease_expires_at=lease_expires_at)
            )
        return bool(result.rowcount == 1)

    async def renew_leases(
        self, execution_ids: Sequence[str], owner: str, lease_expires_at: datetime
    ) -> set[str]:
        """:meth:`renew_lease` for many executions in one statement (per 1,000 ids): returns
        the ids ``owner`` still holds. An expiry in the past releases them."""
        if not execution_ids:
            return set()
        t = EXECUTIONS
        held: set[str] = set()
        async with self._transaction(write=True) as conn:
            for chunk in _chunks(list(dict.fromkeys(execution_ids)), _IN_CHUNK):
                result = await conn.execute(
                    update(t)
                    .where(t.c.id.in_(chunk), t.c.lease_owner == owner, t.c.status.in_(ACTIVE))
                    .values(lease_expires_at=lease_expires_at)
                    .returning(t.c.id)
                )
                held.update(row[0] for row in result)
        return held

    async def write_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> list[bool]:
        """Apply checkpoints in one transaction; for each, whether it applied (False: stale).

        Checkpoints of one execution apply in list order (the second expects the version
        the first wrote)."""
        return await self.begin_checkpoints(checkpoints)

    def begin_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> Awaitable[list[bool]]:
        """:meth:`write_checkpoints`, started before this returns where the store can: on
        SQLite the rows are prepared and the transaction handed to the writer's thread,
        which commits it while the caller goes on (a group of checkpoints is then being
        written while the next group forms). Await what it returns for the result."""
        if not checkpoints:
            return _done([])
        if self._sqlite:
            # One memo for the whole write: a checkpoint's data and output are mostly the
            # objects its last history rows hold.
            json_text = _memo_json(_sqlite_json_text)
            return self._checkpoints_sqlite(checkpoints, _now(), json_text)
        return self._checkpoints_pg(checkpoints)

    async def _checkpoints_pg(self, checkpoints: Sequence[Checkpoint]) -> list[bool]:
        now = _now()
        json_text = _memo_json(_pg_json_text)
        async with self._transaction(write=True) as conn:
            applied = await self._checkpoints_bulk(conn, checkpoints, now, json_text)
            history = _history_tuples(checkpoints, applied, json_text, self._timestamp, self._epoch)
            await self._insert_tuples(conn, HISTORY, history)
            consumed = [
                cp.consumed_wait
                for cp, ok in zip(checkpoints, applied, strict=True)
                if ok and cp.consumed_wait is not None
            ]
            for chunk in _chunks(consumed, _IN_CHUNK):
                await conn.execute(
                    update(WAITS)
                    .where(WAITS.c.id.in_(chunk), WAITS.c.consumed_at.is_(None))
                    .values(consumed_at=now)
                )
        return applied

    def _checkpoints_sqlite(
        self,
        checkpoints: Sequence[Checkpoint],
        now: datetime,
        json_text: Callable[[Any], str | None],
    ) -> Awaitable[list[bool]]:
        """SQLite: :meth:`write_checkpoints` as one round trip to the writer: every
        parameter is prepared here; there, one ``UPDATE ... FROM <rows of a JSON document>``
        per round (see :func:`_rounds`) with the version and lease guard in its WHERE
        clause, then the history rows of the checkpoints that applied and the waits they
        consumed, then the commit."""
        guard_sql, update_sql, constants = _sqlite_checkpoint_sql()
        now_text = _sqlite_timestamp(now)
        rounds = [
            (
                round_,
                {
                    **constants,
                    "now": now_text,
                    "rows": _checkpoints_document(checkpoints, round_, json_text),
                },
            )
            for round_ in _rounds(checkpoints)
        ]
        history = [
            _history_tuples([cp], (True,), json_text, _sqlite_timestamp, _sqlite_epoch)
            for cp in checkpoints
        ]
        ids = [cp.execution_id for cp in checkpoints]
        waits = [cp.consumed_wait for cp in checkpoints]

        def work(db: sqlite3.Connection) -> list[bool]:
            applied = [False] * len(ids)
            for round_, params in rounds:
                [(found,)] = db.execute(guard_sql, params).fetchall()
                done = set(json_loads(found))
                db.execute(update_sql, params)
                for index in round_:
                    applied[index] = ids[index] in done
            rows = [row for index, ok in enumerate(applied) if ok for row in history[index]]
            _sqlite_insert_rows(db, HISTORY, rows)
            consumed = [wait for wait, ok in zip(waits, applied, strict=True) if ok and wait]
            for chunk in _chunks(consumed, _IN_CHUNK):
                marks = ", ".join("?" * len(chunk))
                db.execute(
                    f'UPDATE "{WAITS.name}" SET consumed_at = ? '
                    f"WHERE consumed_at IS NULL AND id IN ({marks})",
                    (now_text, *chunk),
                )
            return applied

        return self._sqlite_begin(work)

    async def _checkpoints_bulk(
        self,
        conn: AsyncConnection,
        checkpoints: Sequence[Checkpoint],
        now: datetime,
        json_text: Callable[[Any], str | None],
    ) -> list[bool]:
        """PostgreSQL: one UPDATE ... FROM unnest(arrays) per round; a round holds at most
        one checkpoint per execution, so repeated executions apply in order."""
        applied = [False] * len(checkpoints)
        for round_ in _rounds(checkpoints):
            rows = [_checkpoint_row(checkpoints[index], json_text, _utc) for index in round_]
            params = dict(zip(_BULK_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
            result = await conn.execute(_BULK_CHECKPOINT, {**params, "now": now})
            done = {row[0] for row in result}
            for index in round_:
                applied[index] = checkpoints[index].execution_id in done
        return applied

    async def abort_executions(
        self,
        *,
        execution_ids: Sequence[str] = (),
        batch_id: str | None = None,
        error: str | None = None,
        cause: str | None = None,
        now: datetime,
    ) -> int:
        """Abort the named executions and/or the executions of ``batch_id`` that have not
        ended: ABORTED, ended now, lease released, version moved on (so that their runners'
        next checkpoints are stale). Returns how many were aborted."""
        if not execution_ids and batch_id is None:
            return 0
        t = EXECUTIONS
        statement = (
            update(t)
            .where(t.c.status.in_(ACTIVE))
            .values(
                status=ABORTED,
                ended_at=now,
                error=error,
                cause=cause,
                output=null(),
                lease_owner=None,
                lease_expires_at=None,
                row_version=t.c.row_version + 1,
                updated_at=now,
            )
        )
        count = 0
        async with self._transaction(write=True) as conn:
            for chunk in _chunks(list(dict.fromkeys(execution_ids)), _IN_CHUNK):
                result = await conn.execute(statement.where(t.c.id.in_(chunk)))
                count += result.rowcount
            if batch_id is not None:
                result = await conn.execute(statement.where(t.c.batch_id == batch_id))
                count += result.rowcount
        return count

    # ------------------------------------------------------------ callbacks

    async def open_wait(self, record: WaitRecord, *, now: datetime) -> WaitRecord:
        """Save a new wait. The execution's earlier unconsumed waits are consumed (open ones
        CANCELLED): an execution waits for one thing at a time. A message wait first takes
        a kept message with its key and value (the oldest unexpired one), and is then saved
        already RECEIVED."""
        w = WAITS
        stored = replace(record, created_at=record.created_at or now)
        async with self._transaction(write=True) as conn:
            await conn.execute(
                update(w)
                .where(w.c.execution_id == record.execution_id, w.c.consumed_at.is_(None))
                .values(
                    consumed_at=now,
                    status=case(
                        (w.c.status == WaitStatus.WAITING, WaitStatus.CANCELLED),
                        else_=w.c.status,
                    ),
                )
            )
            if record.kind == "message" and record.correlation_key is not None:
                payload = await self._take_kept_message(conn, record, now)
                if payload is not _NOTHING:
                    stored.status = WaitStatus.RECEIVED
                    stored.output = payload
                    stored.answered_at = now
            await conn.execute(insert(w).values(_wait_values(stored)))
        return stored

    async def _take_kept_message(
        self, conn: AsyncConnection, record: WaitRecord, now: datetime
    ) -> Any:
        m = KEPT_MESSAGES
        value = correlation_text(record.correlation_value)
        candidates = await conn.execute(
            select(m.c.id)
            .where(
                m.c.correlation_key == record.correlation_key,
                m.c.correlation_value == value,
                m.c.consumed_at.is_(None),
                m.c.expires_at > _ts(now),
            )
            .order_by(m.c.id)
            .limit(5)
        )
        for (message_id,) in candidates.all():
            taken = await conn.execute(
                update(m)
                .where(m.c.id == message_id, m.c.consumed_at.is_(None))
                .values(consumed_at=now, consumed_by=record.execution_id)
                .returning(m.c.payload)
            )
            row = taken.first()
            if row is not None:
                return row[0]
        return _NOTHING

    async def get_wait(
        self, *, token: str | None = None, wait_id: str | None = None
    ) -> WaitRecord | None:
        """One wait by its task token or its id."""
        if (token is None) == (wait_id is None):
            raise ValueError("get_wait takes a token or a wait_id")
        w = WAITS
        condition = w.c.token == token if token is not None else w.c.id == wait_id
        async with self._transaction(write=False) as conn:
            row = (await conn.execute(select(w).where(condition))).first()
        return None if row is None else _wait(row)

    async def resumable_wait(self, execution_id: str, state: str) -> WaitRecord | None:
        """The execution's newest unconsumed wait, if it is at ``state``."""
        w = WAITS
        async with self._transaction(write=False) as conn:
            row = (
                await conn.execute(
                    select(w)
                    .where(w.c.execution_id == execution_id, w.c.consumed_at.is_(None))
                    .order_by(w.c.id.desc())
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        record = _wait(row)
        return record if record.state == state else None

    def _live_execution(self) -> ColumnElement[bool]:
        t = EXECUTIONS
        return exists().where(t.c.id == WAITS.c.execution_id, t.c.status.in_(ACTIVE))

    async def answer_wait(
        self,
        wait_id: str,
        *,
        status: str,
        output: Any = None,
        error: str | None = None,
        cause: str | None = None,
        now: datetime,
    ) -> WaitRecord | None:
        """Answer an open wait (its execution not ended) in one guarded ``UPDATE ...
        WHERE status = 'WAITING' ... RETURNING``: of two racing answers exactly one gets
        the row; the other gets None."""
        w = WAITS
        async with self._transaction(write=True) as conn:
            row = (
                await conn.execute(
                    update(w)
                    .where(
                        w.c.id == wait_id,
                        w.c.status == WaitStatus.WAITING,
                        self._live_execution(),
                    )
                    .values(
                        status=status,
                        output=output if status in _ANSWERS_WITH_OUTPUT else null(),
                        error=error,
                        cause=cause,
                        answered_at=now,
                    )
                    .returning(*w.c)
                )
            ).first()
        return None if row is None else _wait(row)

    async def answer_messages(
        self, correlation_key: str, correlation_value: Any, payload: Any, *, now: datetime
    ) -> list[WaitRecord]:
        """Answer (RECEIVED) every open message wait with this key and value, in one guarded
        update; returns the waits this call answered (none if another message got there
        first)."""
        w = WAITS
        value = correlation_text(correlation_value)
        async with self._transaction(write=True) as conn:
            rows = await conn.execute(
                update(w)
                .where(
                    w.c.correlation_key == correlation_key,
                    w.c.correlation_value == value,
                    w.c.status == WaitStatus.WAITING,
                    w.c.kind == "message",
                    self._live_execution(),
                )
                .values(status=WaitStatus.RECEIVED, output=payload, answered_at=now)
                .returning(*w.c)
            )
            return [_wait(row) for row in rows]

    async def heartbeat_wait(self, token: str, *, now: datetime) -> WaitRecord | None:
        """Push an open task wait's heartbeat deadline to ``now + heartbeat_seconds``
        (a no-op for a wait without HeartbeatSeconds); None if it is not open."""
        w = WAITS
        async with self._transaction(write=True) as conn:
            row = (
                await conn.execute(
                    select(w).where(
                        w.c.token == token, w.c.status == WaitStatus.WAITING, self._live_execution()
                    )
                )
            ).first()
            if row is None:
                return None
            record = _wait(row)
            if record.heartbeat_seconds:
                record.heartbeat_at = now + timedelta(seconds=record.heartbeat_seconds)
                await conn.execute(
                    update(w)
                    .where(w.c.id == record.id, w.c.status == WaitStatus.WAITING)
                    .values(heartbeat_at=record.heartbeat_at)
                )
        return record

    async def list_waits(
        self,
        *,
        status: str | None = WaitStatus.WAITING,
        execution_id: str | None = None,
        state_machine_id: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[WaitRecord]:
        """Waits, newest first; by default the open ones of executions that have not ended."""
        w = WAITS
        conditions: list[ColumnElement[bool]] = []
        if status is not None:
            conditions.append(w.c.status == status)
            if status == WaitStatus.WAITING:
                conditions.append(self._live_execution())
        if execution_id is not None:
            conditions.append(w.c.execution_id == execution_id)
        if state_machine_id is not None:
            conditions.append(w.c.state_machine_id == state_machine_id)
        if kind is not None:
            conditions.append(w.c.kind == kind)
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(
                select(w).where(*conditions).order_by(w.c.id.desc()).limit(limit)
            )
            return [_wait(row) for row in rows]

    async def keep_message(self, record: MessageRecord) -> None:
        """Keep a message nothing waited for, until ``record.expires_at``; expired ones are
        deleted on the way."""
        now = _now()
        m = KEPT_MESSAGES
        async with self._transaction(write=True) as conn:
            await conn.execute(delete(m).where(m.c.expires_at < _ts(now)))
            await conn.execute(
                insert(m),
                [
                    {
                        "id": record.id,
                        "correlation_key": record.correlation_key,
                        "correlation_value": correlation_text(record.correlation_value),
                        "payload": record.payload,
                        "created_at": record.created_at or now,
                        "expires_at": record.expires_at or now,
                        "consumed_at": None,
                        "consumed_by": None,
                    }
                ],
            )

    async def purge_messages(self, *, now: datetime) -> int:
        """Delete kept messages (taken or not) whose time to be kept ran out before ``now``
        (``keep_message`` also does it on its way; this is for ``statefleet purge``)."""
        m = KEPT_MESSAGES
        async with self._transaction(write=True) as conn:
            result = await conn.execute(delete(m).where(m.c.expires_at < _ts(now)))
            return int(result.rowcount)

    async def list_messages(
        self, *, correlation_key: str | None = None, limit: int = 100
    ) -> list[MessageRecord]:
        """Kept messages not yet taken nor expired, oldest first."""
        m = KEPT_MESSAGES
        conditions = [m.c.consumed_at.is_(None), m.c.expires_at > _ts(_now())]
        if correlation_key is not None:
            conditions.append(m.c.correlation_key == correlation_key)
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(select(m).where(*conditions).order_by(m.c.id).limit(limit))
            return [_kept_message(row) for row in rows]

    # ------------------------------------------------------------ batches

    async def create_batch(self, record: BatchRecord) -> BatchRecord:
        """Insert a batch; :class:`DuplicateBatchName` if its machine has one of that name."""
        stored = replace(
            record,
            created_at=record.created_at or _now(),
            options=dict(record.options),
            counters=dict(record.counters),
        )
        values = {name: getattr(stored, name) for name in BatchRecord.__slots__}
        try:
            async with self._transaction(write=True) as conn:
                await conn.execute(insert(BATCHES).values(**values))
        except DuplicateBatchName as exc:
            raise DuplicateBatchName(record.state_machine_id, record.name) from exc.__cause__
        return stored

    async def get_batch(self, batch_id: str) -> BatchRecord | None:
        return await self._one_batch(BATCHES.c.id == batch_id)

    async def get_batch_by_name(self, machine_id: str, name: str) -> BatchRecord | None:
        return await self._one_batch(
            and_(BATCHES.c.state_machine_id == machine_id, BATCHES.c.name == name)
        )

    async def _one_batch(self, condition: ColumnElement[bool]) -> BatchRecord | None:
        async with self._transaction(write=False) as conn:
            row = (await conn.execute(select(BATCHES).where(condition))).first()
        return _batch(row) if row is not None else None

    async def list_batches(
        self, machine_id: str | None = None, limit: int = 100
    ) -> list[BatchRecord]:
        """Batches, newest first."""
        t = BATCHES
        condition = t.c.state_machine_id == machine_id if machine_id is not None else true()
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(
                select(t)
                .where(condition)
                .order_by(t.c.created_at.desc(), t.c.id.desc())
                .limit(limit)
            )
            return [_batch(row) for row in rows]

    async def update_batch(
        self,
        batch_id: str,
        *,
        status: str | None = None,
        total: int | None = None,
        counters: dict[str, int] | None = None,
        stop_reason: str | None = None,
        finished_at: datetime | None = None,
        expected_status: str | None = None,
        reopen: bool = False,
    ) -> bool:
        """Set the given fields (those left None keep their value). With
        ``expected_status``, only if the batch has that status now (a cancel and the end of
        a run race: whichever writes first wins). ``reopen`` also clears the stop reason
        and the end time (a batch resumed). Returns whether the batch was updated."""
        given = {
            "status": status,
            "total": total,
            "counters": counters,
            "stop_reason": stop_reason,
            "finished_at": finished_at,
        }
        values: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
        if reopen:
            values.update(stop_reason=None, finished_at=None)
        if not values:
            return False
        statement = update(BATCHES).where(BATCHES.c.id == batch_id)
        if expected_status is not None:
            statement = statement.where(BATCHES.c.status == expected_status)
        async with self._transaction(write=True) as conn:
            result = await conn.execute(statement.values(**values))
        return bool(result.rowcount == 1)

    # ------------------------------------------------------------ dead letters, retention

    async def add_dead_letters(self, records: Sequence[DeadLetterRecord]) -> None:
        if not records:
            return
        now = _now()
        rows = [
            {
                name: (getattr(r, name) if name != "created_at" else r.created_at or now)
                for name in DeadLetterRecord.__slots__
            }
            for r in records
        ]
        async with self._transaction(write=True) as conn:
            await conn.execute(insert(DEAD_LETTERS), rows)

    async def list_dead_letters(
        self,
        *,
        ids: Sequence[str] = (),
        state_machine_id: str | None = None,
        batch_id: str | None = None,
        error: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[DeadLetterRecord]:
        """Dead letters by id (creation order), narrowed by every argument given."""
        t = DEAD_LETTERS
        where: list[ColumnElement[bool]] = []
        if ids:
            where.append(t.c.id.in_(list(ids)))
        if state_machine_id is not None:
            where.append(t.c.state_machine_id == state_machine_id)
        if batch_id is not None:
            where.append(t.c.batch_id == batch_id)
        if error is not None:
            where.append(t.c.error == error)
        if after is not None:
            where.append(t.c.id > after)
        statement = select(t).where(*where).order_by(t.c.id)
        if limit is not None:
            statement = statement.limit(limit)
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(statement)
            return [DeadLetterRecord(**row._mapping) for row in rows]

    async def delete_dead_letters(self, ids: Sequence[str]) -> int:
        count = 0
        async with self._transaction(write=True) as conn:
            for chunk in _chunks(list(dict.fromkeys(ids)), _IN_CHUNK):
                result = await conn.execute(
                    delete(DEAD_LETTERS).where(DEAD_LETTERS.c.id.in_(chunk))
                )
                count += result.rowcount
        return count

    async def purge_executions(self, *, ended_before: datetime) -> int:
        """Delete ended executions that ended before ``ended_before``, with their history
        and links (in the same transaction; their waits go by ON DELETE CASCADE). Dead
        letters are kept, and so are the executions they name (a dead letter is retried by
        redriving its execution)."""
        t = EXECUTIONS
        d = DEAD_LETTERS
        terminal = [s.value for s in ExecutionStatus if s.value not in ACTIVE]
        lettered = exists().where(d.c.execution_id == t.c.id)
        purged = (t.c.status.in_(terminal), t.c.ended_at < ended_before, ~lettered)
        async with self._transaction(write=True) as conn:
            if self._sqlite:  # the transaction is the only writer: the same rows each time
                ids = select(t.c.id).where(*purged)
                await conn.execute(delete(HISTORY).where(HISTORY.c.execution_id.in_(ids)))
                await conn.execute(delete(LINKS).where(LINKS.c.source_execution_id.in_(ids)))
                await conn.execute(delete(LINKS).where(LINKS.c.target_execution_id.in_(ids)))
                result = await conn.execute(delete(t).where(*purged))
                return int(result.rowcount)
            # PostgreSQL: one statement, so that history and links go with exactly the
            # executions deleted (one redriven meanwhile is neither).
            gone = delete(t).where(*purged).returning(t.c.id).cte("gone")
            gone_ids = select(gone.c.id)
            statement = (
                select(func.count())
                .select_from(gone)
                .add_cte(
                    delete(HISTORY).where(HISTORY.c.execution_id.in_(gone_ids)).cte("history"),
                    delete(LINKS).where(LINKS.c.source_execution_id.in_(gone_ids)).cte("sources"),
                    delete(LINKS).where(LINKS.c.target_execution_id.in_(gone_ids)).cte("targets"),
                )
            )
            return int((await conn.execute(statement)).scalar_one())


# ---------------------------------------------------------------- wait helpers

_NOTHING: Any = object()
_ANSWERS_WITH_OUTPUT = frozenset({WaitStatus.SUCCEEDED, WaitStatus.RECEIVED})


def _wait_values(record: WaitRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "execution_id": record.execution_id,
        "state_machine_id": record.state_machine_id,
        "state": record.state,
        "kind": record.kind,
        "status": record.status,
        "token": record.token,
        "correlation_key": record.correlation_key,
        "correlation_value": (
            None if record.correlation_key is None else correlation_text(record.correlation_value)
        ),
        "output": record.output if record.status in _ANSWERS_WITH_OUTPUT else null(),
        "error": record.error,
        "cause": record.cause,
        "attempt": record.attempt,
        "retry_counts": list(record.retry_counts),
        "queue": record.queue,
        "heartbeat_seconds": record.heartbeat_seconds,
        "created_at": record.created_at,
        "timeout_at": record.timeout_at,
        "heartbeat_at": record.heartbeat_at,
        "answered_at": record.answered_at,
        "consumed_at": record.consumed_at,
    }


# ---------------------------------------------------------------- checkpoint helpers

_SQL_NULL = null()


def _checkpoint_row(
    cp: Checkpoint,
    json_text: Callable[[Any], str | None],
    timestamp: Callable[[datetime | None], Any],
) -> list[Any]:
    """A checkpoint's values in :data:`_CHECKPOINT_COLUMNS` order, JSON and datetimes
    converted for the driver (no dict per checkpoint)."""
    release = cp.release_lease
    history = cp.history
    try:
        return [
            cp.execution_id,
            cp.expected_version,
            cp.owner,
            cp.status,
            cp.current_state,
            json_text(cp.data),
            json_text(cp.variables if cp.variables is not None else {}),
            json_text(cp.output if cp.status == SUCCEEDED else _SQL_NULL),
            cp.error,
            cp.cause,
            timestamp(cp.ended_at),
            max(h.sequence for h in history) if history else None,
            cp.lease_expires_at is None and not release,
            timestamp(cp.lease_expires_at),
            release,
            cp.redrive_count,
            timestamp(cp.wake_at),
            timestamp(cp.started_at),
        ]
    except _NotJSON:
        raise
    except (TypeError, ValueError) as exc:
        raise _NotJSON(f"cannot store a value as JSON: {exc}") from exc


def _checkpoints_document(
    checkpoints: Sequence[Checkpoint],
    indexes: Sequence[int],
    json_text: Callable[[Any], str | None],
) -> str:
    """SQLite: the rows of these checkpoints as the JSON document :func:`_sqlite_rows_select`
    unpacks (JSON columns as their text)."""
    return rows_document(
        [_checkpoint_row(checkpoints[index], json_text, _sqlite_timestamp) for index in indexes]
    )


def _rounds(checkpoints: Sequence[Checkpoint]) -> list[list[int]]:
    """Split positions into rounds holding each execution at most once, in order."""
    rounds: list[list[int]] = []
    last_round: dict[str, int] = {}
    for index, cp in enumerate(checkpoints):
        number = last_round.get(cp.execution_id, -1) + 1
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(index)
        last_round[cp.execution_id] = number
    return rounds


# ---------------------------------------------------------------- SQLite bulk writes
#
# Inserts go through the driver's ``executemany`` of one prepared statement over plain
# tuples (JSON already serialised, datetimes as text): the per-row loop runs in C, and no
# per-value processing happens in Python beyond one conversion per JSON and datetime value.
# The checkpoint UPDATE needs RETURNING (which rows passed the version and lease guard), so
# it passes its rows as ONE bound parameter instead: a JSON array of rows, each an array of
# column values, which SQLite unpacks itself with ``json_each``. (On PostgreSQL, arrays per
# column are cheaper for the server; PostgreSQL inserts use COPY: see SQLStore._pg_copy.)

#: The columns of ``v`` in the checkpoint UPDATE, with their kinds (``_checkpoint_row`` builds
#: each checkpoint's values in this order: change both together).
_CHECKPOINT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("execution_id", "text"),
    ("expected_version", "int"),
    ("owner", "text"),
    ("status", "text"),
    ("current_state", "text"),
    ("data", "json"),
    ("variables", "json"),
    ("output", "json"),
    ("error", "text"),
    ("cause", "text"),
    ("ended_at", "timestamp"),
    ("history_seq", "int"),
    ("keep_expiry", "bool"),
    ("lease_expires_at", "timestamp"),
    ("release", "bool"),
    ("redrive_count", "int"),
    ("wake_at", "timestamp"),
    ("started_at", "timestamp"),
)


def _column_kind(col: Any) -> str:
    if isinstance(col.type, UTCDateTime):
        return "timestamp"
    if isinstance(col.type, JSON):
        return "json"
    if isinstance(col.type, Integer):
        return "int"
    if isinstance(col.type, Boolean):
        return "bool"
    return "text"


@functools.cache
def _table_columns(table: Table) -> tuple[tuple[str, str], ...]:
    return tuple((col.name, _column_kind(col)) for col in table.c)


@functools.cache
def _sqlite_rows_select(columns: tuple[tuple[str, str], ...]) -> Any:
    """``SELECT json_extract(e.value, '$[i]') AS <column i>, ... FROM json_each(:rows) AS e``.

    A JSON value travels as its text in a JSON string (``null`` for SQL NULL), so the text
    stored is exactly what the column's type would have written."""
    value = func.json_each(bindparam("rows", type_=Text())).table_valued("value").alias("e")
    return select(
        *(
            func.json_extract(value.c.value, literal_column(f"'$[{index}]'")).label(name)
            for index, (name, _) in enumerate(columns)
        )
    )


def _sqlite_file(database: str | None) -> bool:
    """Whether a SQLite URL's database is a file (not in memory)."""
    return bool(database) and database != ":memory:" and "mode=memory" not in str(database)


class WalCheckpointer:
    """SQLite: copies the write-ahead log into the database file from a thread of its own,
    every ``interval`` seconds (``PRAGMA wal_checkpoint(PASSIVE)``: it never waits for, nor
    blocks, a reader or a writer).

    SQLite's own automatic checkpoint runs in the connection that commits, after its
    commit, once the log holds 1,000 pages: the store's writer thread would stop every few
    group commits to copy megabytes (and checksum and sync them) while the executions whose
    checkpoints queue behind it wait. The store's writer connection runs with
    ``wal_autocheckpoint=0`` while this thread does that work, off its path. The log is
    still checkpointed, and removed, when the last connection to the file closes.

    The thread sleeps while nothing is written: each commit of the writer calls
    :meth:`written`, and a checkpoint follows within ``interval`` (at most one per
    ``interval`` however many commits)."""

    interval = 0.1

    def __init__(self, path: str) -> None:
        self._path = path
        self._stopping = threading.Event()
        self._written = threading.Event()
        #: checkpoints run (for tests and diagnostics)
        self.rounds = 0
        self._thread = threading.Thread(
            target=self._run, name="statefleet-wal-checkpoint", daemon=True
        )
        self._thread.start()

    def written(self) -> None:
        """Something was committed: checkpoint it soon (cheap; from any thread)."""
        if not self._written.is_set():
            self._written.set()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            logger.warning("cannot open %s to checkpoint its log", self._path, exc_info=True)
            return
        try:
            while True:
                self._written.wait()
                if self._stopping.wait(self.interval):  # let commits gather meanwhile
                    break
                self._written.clear()
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # busy, or the file went away: the next round tries
                    logger.debug("checkpoint of %s failed", self._path, exc_info=True)
                    self._written.set()
                self.rounds += 1
        finally:
            db.close()

    def stop(self) -> None:
        """Stop the thread (and wait for it: at most one checkpoint in progress)."""
        self._stopping.set()
        self._written.set()
        self._thread.join()


def _wake_after_write(checkpointer: WalCheckpointer, connection: Any) -> None:
    """SQLAlchemy's ``commit`` event: wake the checkpointer if the transaction wrote."""
    if connection.get_execution_options().get(WRITE):
        checkpointer.written()


async def _done(value: T) -> T:
    return value


def _sqlite_write(
    driver: Any,
    work: Callable[[sqlite3.Connection], T],
    committed: Callable[[], None] | None = None,
) -> Callable[[], T]:
    """``work`` as one write transaction on the aiosqlite connection's own ``sqlite3``
    connection, for its thread to run (then ``committed``, after the commit)."""

    def transaction() -> T:
        db: sqlite3.Connection = driver._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if committed is not None:
            committed()
        return result

    return transaction


#: "YYYY-MM-DD HH:MM:SS" per whole second since the epoch (see _sqlite_timestamp).
_SECOND_TEXT: dict[int, str] = {}
_SECONDS_2100: Final = 4_102_444_800.0


def _sqlite_timestamp(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DATETIME stores (naive UTC, always with microseconds).

    The text of a whole second is cached: the datetimes of one write fall in a few
    seconds, and formatting only the microseconds takes half the time of ``isoformat``.
    (Between 1970 and 2100 ``timestamp()`` is exact enough for its whole second.)"""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    seconds = value.timestamp()
    if not 0.0 <= seconds < _SECONDS_2100:
        return value.isoformat(" ", "microseconds")[:26]  # without "+00:00"
    return f"{_second_text(int(seconds))}.{value.microsecond:06d}"


def _second_text(whole: int) -> str:
    """ "YYYY-MM-DD HH:MM:SS" of a whole second since the epoch (1970-2100), cached."""
    text = _SECOND_TEXT.get(whole)
    if text is None:
        if len(_SECOND_TEXT) >= 4096:
            _SECOND_TEXT.clear()
        text = _SECOND_TEXT[whole] = datetime.fromtimestamp(whole, UTC).isoformat(" ")[:19]
    return text


class _NotJSON(ValueError):
    """A value the store cannot write as JSON (raised once, with the json module's reason)."""


def _sqlite_epoch(seconds: float) -> str:
    """:func:`_sqlite_timestamp` of ``datetime.fromtimestamp(seconds, UTC)``, without making
    the datetime: the microseconds rounded half to even as ``fromtimestamp`` rounds them,
    the text of the whole second cached."""
    whole = math.floor(seconds)
    micro = round((seconds - whole) * 1e6)
    if micro >= 1_000_000:
        whole += 1
        micro -= 1_000_000
    if not 0 <= whole < _SECONDS_2100:
        return _sqlite_timestamp(datetime.fromtimestamp(seconds, UTC)) or ""
    return f"{_second_text(whole)}.{micro:06d}"


def _pg_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _sqlite_json_text(value: Any) -> str | None:
    return None if value is _SQL_NULL else json_dumps(value)


def _memo_json(encode: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    """``encode`` that serialises each dict or list object once: the history of an execution
    shares objects between rows (a state's output is the next state's input) and with its
    checkpoint (the final output is also the data), so one group of rows holds far fewer
    distinct values than JSON cells. Keyed by ``id()``; the memo keeps each object alive, so
    an id cannot be reused by another object while the memo exists. Use it within one write
    (the values must not change meanwhile)."""
    memo: dict[int, tuple[Any, str | None]] = {}

    def memo_encode(value: Any) -> str | None:
        if type(value) is dict or type(value) is list:
            key = id(value)
            hit = memo.get(key)
            if hit is None:
                hit = memo[key] = (value, encode(value))
            return hit[1]
        return encode(value)

    return memo_encode


def _checkpoint_guard(v: Any) -> tuple[Any, ...]:
    """Which rows a checkpoint of ``v`` applies to: its execution, at the version it
    expects, still leased to its owner when it names one."""
    t = EXECUTIONS
    return (
        t.c.id == v.c.execution_id,
        t.c.row_version == v.c.expected_version,
        or_(v.c.owner.is_(None), t.c.lease_owner == v.c.owner),
    )


def _checkpoint_update(v: Any, json_value: Callable[[Any], Any], *, returning: bool = True) -> Any:
    """``UPDATE executions SET ... FROM v WHERE <version and lease guard> RETURNING id``,
    ``v`` being one row per checkpoint (columns of :data:`_CHECKPOINT_COLUMNS`);
    ``json_value`` turns a JSON column of ``v`` into the value to store."""
    t = EXECUTIONS
    statement = (
        update(t)
        .where(*_checkpoint_guard(v))
        .values(
            status=v.c.status,
            current_state=v.c.current_state,
            data=json_value(v.c.data),
            variables=json_value(v.c.variables),
            output=json_value(v.c.output),
            error=v.c.error,
            cause=v.c.cause,
            ended_at=v.c.ended_at,
            history_seq=func.coalesce(v.c.history_seq, t.c.history_seq),
            row_version=v.c.expected_version + 1,
            lease_expires_at=case(
                (v.c.keep_expiry, t.c.lease_expires_at), else_=v.c.lease_expires_at
            ),
            lease_owner=case((v.c.release, null()), else_=t.c.lease_owner),
            redrive_count=func.coalesce(v.c.redrive_count, t.c.redrive_count),
            wake_at=v.c.wake_at,
            started_at=func.coalesce(t.c.started_at, v.c.started_at),
            updated_at=bindparam("now", type_=UTCDateTime()),
        )
    )
    return statement.returning(t.c.id) if returning else statement


def _sqlite_checkpoint_statements() -> tuple[Any, Any]:
    """SQLite, the rows of the checkpoints from one JSON document (JSON stored as text):
    ``SELECT json_group_array(id)`` of the rows the checkpoints apply to, and the UPDATE
    that applies them (inside one write transaction the two see the same rows). Each is
    one step of the driver, which lets go of the interpreter's lock while SQLite works;
    with RETURNING it would take the lock back once per row."""
    v = _sqlite_rows_select(_CHECKPOINT_COLUMNS).subquery("v")
    t = EXECUTIONS
    guard = select(func.json_group_array(t.c.id)).select_from(
        v.join(t, and_(*_checkpoint_guard(v)))
    )
    return guard, _checkpoint_update(v, lambda value: value, returning=False)


@functools.cache
def _sqlite_checkpoint_sql() -> tuple[str, str, dict[str, Any]]:
    """The statements of :func:`_sqlite_checkpoint_statements` as SQL text for the driver,
    with their constant parameters (the rows document and ``now`` are bound per call)."""
    texts = []
    constants: dict[str, Any] = {}
    for statement in _sqlite_checkpoint_statements():
        compiled = statement.compile(dialect=_SQLITE_NAMED)
        constants.update((k, v) for k, v in compiled.params.items() if k not in ("rows", "now"))
        texts.append(compiled.string)
    return texts[0], texts[1], constants


_SQLITE_NAMED: Final = sqlite_dialect.dialect(paramstyle="named")


def _sqlite_plan(
    table: Table, json_text: Callable[[Any], str | None]
) -> list[tuple[str, Callable[[Any], Any] | None]]:
    """The conversion of each column of ``table`` for the SQLite driver, in table order."""
    convert = {"json": json_text, "timestamp": _sqlite_timestamp}
    return [(name, convert.get(kind)) for name, kind in _table_columns(table)]


#: Rows per multi-row INSERT statement, largest first (see _sqlite_insert_rows).
_ROWS_PER_STATEMENT: Final = (256, 64, 16, 4, 1)


@functools.cache
def _sqlite_insert_values(table: Table, rows: int) -> str:
    """``INSERT INTO table (...) VALUES (?, ...), (?, ...) ...`` for ``rows`` rows."""
    columns = _table_columns(table)
    names = ", ".join(f'"{name}"' for name, _ in columns)
    row = "(" + ", ".join("?" for _ in columns) + ")"
    return f'INSERT INTO "{table.name}" ({names}) VALUES ' + ", ".join([row] * rows)


def _sqlite_inserts(
    table: Table, rows: Sequence[Sequence[Any]]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """The multi-row INSERT statements (and their values) that insert ``rows`` (tuples in
    table order, converted for the driver): statements of a few fixed sizes, each prepared
    once and then cached by the driver.

    ``executemany`` steps once per row, and the driver lets go of the interpreter's lock
    for every step and must take it back from the event loop's thread each time; here it
    is once per statement of up to 256 rows."""
    start = 0
    total = len(rows)
    for size in _ROWS_PER_STATEMENT:
        while total - start >= size:
            sql = _sqlite_insert_values(table, size)
            yield sql, tuple(value for row in rows[start : start + size] for value in row)
            start += size


def _sqlite_insert_rows(
    db: sqlite3.Connection, table: Table, rows: Sequence[Sequence[Any]]
) -> None:
    """Insert rows with :func:`_sqlite_inserts`, on the writer's thread."""
    for sql, values in _sqlite_inserts(table, rows):
        db.execute(sql, values)


def _row_tuples(
    plan: Sequence[tuple[str, Callable[[Any], Any] | None]], rows: Sequence[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """Rows as tuples in ``plan``'s column order, each value through its conversion."""
    try:
        return [
            tuple([row[name] if fn is None else fn(row[name]) for name, fn in plan]) for row in rows
        ]
    except _NotJSON:
        raise
    except (TypeError, ValueError) as exc:
        raise _NotJSON(f"cannot store a value as JSON: {exc}") from exc


#: The SQL types of the checkpoint columns' arrays in the PostgreSQL UPDATE (JSON as text).
_PG_ARRAY_TYPES: Final[dict[str, Any]] = {
    "int": Integer(),
    "bool": Boolean(),
    "timestamp": DateTime(timezone=True),
    "json": Text(),
    "text": Text(),
}
_BULK_COLUMNS: Final = tuple(name for name, _ in _CHECKPOINT_COLUMNS)


def _bulk_checkpoint_statement() -> Any:
    """PostgreSQL: the checkpoint UPDATE ``FROM unnest(:arrays) AS v(...)``, JSON cast from
    text to JSONB."""
    columns = [(name, _PG_ARRAY_TYPES[kind]) for name, kind in _CHECKPOINT_COLUMNS]
    v = (
        func.unnest(*(bindparam(name, type_=ARRAY(type_)) for name, type_ in columns))
        .table_valued(*(column(name, type_) for name, type_ in columns))
        .render_derived(name="v")
    )
    jsonb = JSONB(none_as_null=False)
    return _checkpoint_update(v, lambda value: value.cast(jsonb))


_BULK_CHECKPOINT = _bulk_checkpoint_statement()


# ---------------------------------------------------------------- PostgreSQL JSON


def _pg_json_text(value: Any) -> str | None:
    """JSON text for a JSONB parameter (None for SQL NULL)."""
    if value is _SQL_NULL:
        return None
    try:
        return pg_json_dumps(value)
    except _NotJSON:
        raise
    except (TypeError, ValueError) as exc:
        raise _NotJSON(f"cannot store a value as JSON: {exc}") from exc


# ---------------------------------------------------------------- SQLite JSON containment


def _sqlite_contains(col: ColumnElement[Any], value: Any, what: str) -> ColumnElement[bool]:
    """``col`` contains ``value`` for a flat object of scalars, with ``json_extract``."""
    limitation = (
        f"{what} on SQLite supports only an object of scalar values (strings, numbers, "
        "booleans, null) under plain keys; use PostgreSQL for nested containment"
    )
    if not isinstance(value, dict):
        raise ValueError(f"{limitation}; got {type(value).__name__}")
    conditions: list[ColumnElement[bool]] = [func.json_type(col) == "object"]
    for key, expected in value.items():
        if not isinstance(key, str) or '"' in key or "\\" in key:
            raise ValueError(f"{limitation}; key {key!r} cannot be matched")
        path = f'$."{key}"'
        kind = func.json_type(col, path)
        if expected is None:
            conditions.append(kind == "null")
        elif isinstance(expected, bool):
            conditions.append(kind == ("true" if expected else "false"))
        elif isinstance(expected, int | float):
            low, high = _SQLITE_INT_RANGE
            if isinstance(expected, int) and not low <= expected <= high:
                raise ValueError(f"{limitation}; {expected} is out of SQLite's integer range")
            conditions.append(kind.in_(("integer", "real")))
            conditions.append(func.json_extract(col, path) == expected)
        elif isinstance(expected, str):
            conditions.append(kind == "text")
            conditions.append(func.json_extract(col, path) == expected)
        else:
            raise ValueError(f"{limitation}; the value of {key!r} is a {type(expected).__name__}")
    return and_(*conditions)


# ---------------------------------------------------------------- opening


async def open_store(
    url: str | URL | None = None, *, create: bool = True, **options: Any
) -> SQLStore:
    """Open the store at ``url`` (SQLAlchemy URL; ``sqlite://``/``postgresql://`` get their
    async driver; None: ``sqlite+aiosqlite:///./statefleet.db``).

    With ``create`` (the default) the schema is migrated to the newest revision first
    (idempotent, safe from concurrent processes): the embedded SQLite default thus sets
    itself up on first use. ``options`` go to ``create_async_engine`` (``pool_size``, ...).
    """
    try:
        engine = create_engine(url, **options)
    except (SQLAlchemyError, ImportError) as exc:
        raise InfrastructureError(f"cannot open the store {url!r}: {exc}") from exc
    store = SQLStore(engine)
    if create:
        try:
            await store.upgrade()
        except BaseException:
            await engine.dispose()
            raise
    return store


async def upgrade(url: str | URL | None = None) -> str:
    """Migrate the database at ``url`` to the newest schema; returns the revision it is at."""
    store = SQLStore(create_engine(normalize_url(url)))
    try:
        await store.upgrade()
        return (await store.revision()) or head_revision()
    finally:
        await store.close()


if TYPE_CHECKING:

    def _implements_the_protocol(store: SQLStore) -> Store:  # checked by mypy
        return store
