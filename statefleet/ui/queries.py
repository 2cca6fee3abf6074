"""Read queries the pages need that the :class:`~statefleet.statemachine.protocols.Store`
protocol does not offer: counts grouped by machine, by state and by error, executions
newest first, and the durations of executions that ended lately.

They run on :class:`~statefleet.store.SQLStore`'s engine (the outer ring may know SQL);
on any other store they fall back to the protocol's methods, more slowly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import SQLAlchemyError

from statefleet.errors import InfrastructureError
from statefleet.statemachine.lifecycle import ExecutionStatus
from statefleet.statemachine.protocols import ExecutionFilter, ExecutionRecord, Store
from statefleet.store import SQLStore
from statefleet.store.repository import DEAD_LETTERS, EXECUTIONS

__all__ = [
    "ACTIVE",
    "FAILURES",
    "counts_by_machine",
    "durations_since",
    "errors_of",
    "executions_page",
    "state_counts",
]

S = ExecutionStatus
ACTIVE = (S.QUEUED.value, S.RUNNING.value, S.WAITING.value)
FAILURES = (S.FAILED.value, S.TIMED_OUT.value, S.ABORTED.value)


async def _rows(store: SQLStore, statement: Any) -> list[Any]:
    try:
        async with store.engine.connect() as conn:
            return list(await conn.execute(statement))
    except (SQLAlchemyError, OSError) as exc:
        raise InfrastructureError(f"store query failed: {exc}") from exc


async def counts_by_machine(store: Store) -> dict[str, dict[str, int]]:
    """{machine id: {status: count}} over every execution."""
    out: dict[str, dict[str, int]] = {}
    if isinstance(store, SQLStore):
        t = EXECUTIONS
        statement = select(t.c.state_machine_id, t.c.status, func.count()).group_by(
            t.c.state_machine_id, t.c.status
        )
        for machine, status, count in await _rows(store, statement):
            out.setdefault(machine, {})[status] = int(count)
        return out
    for definition in await store.list_definitions():
        out[definition.id] = await store.count_by_status(
            ExecutionFilter(state_machine_id=definition.id)
        )
    return out


async def state_counts(
    store: Store, machine_id: str, *, batch_id: str | None = None
) -> dict[str, dict[str, int]]:
    """{state: {"active": n, "failed": n}}: executions now in each (top-level) state, and
    executions that ended unsuccessfully there. QUEUED executions not yet started are
    counted under the empty state name."""
    out: dict[str, dict[str, int]] = {}
    base = ExecutionFilter(state_machine_id=machine_id, batch_id=batch_id)
    if isinstance(store, SQLStore):
        t = EXECUTIONS
        where = [t.c.state_machine_id == machine_id]
        if batch_id is not None:
            where.append(t.c.batch_id == batch_id)
        statement = (
            select(t.c.current_state, t.c.status, func.count())
            .where(*where, t.c.status.in_(ACTIVE + FAILURES))
            .group_by(t.c.current_state, t.c.status)
        )
        for state, status, count in await _rows(store, statement):
            kind = "active" if status in ACTIVE else "failed"
            entry = out.setdefault(state or "", {"active": 0, "failed": 0})
            entry[kind] += int(count)
        return out
    async for record in store.stream_executions(replace(base, status=ACTIVE + FAILURES)):
        kind = "active" if record.status in ACTIVE else "failed"
        entry = out.setdefault(record.current_state or "", {"active": 0, "failed": 0})
        entry[kind] += 1
    return out


async def errors_of(
    store: Store, *, batch_id: str | None = None, machine_id: str | None = None
) -> list[tuple[str, int]]:
    """Unsuccessful executions by error name, most frequent first."""
    counts: dict[str, int] = {}
    if isinstance(store, SQLStore):
        t = EXECUTIONS
        where: list[ColumnElement[bool]] = [t.c.status.in_(FAILURES)]
        if batch_id is not None:
            where.append(t.c.batch_id == batch_id)
        if machine_id is not None:
            where.append(t.c.state_machine_id == machine_id)
        statement = select(t.c.error, func.count()).where(*where).group_by(t.c.error)
        for error, count in await _rows(store, statement):
            counts[error or "(none)"] = int(count)
    else:
        selection = ExecutionFilter(batch_id=batch_id, state_machine_id=machine_id, status=FAILURES)
        async for record in store.stream_executions(selection):
            key = record.error or "(none)"
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


async def executions_page(
    store: Store, selection: ExecutionFilter, *, limit: int, newer: bool = False
) -> list[ExecutionRecord]:
    """One page of executions, newest first. ``selection.before`` (an id) pages to older
    ones; with ``newer=True``, ``selection.after`` pages to newer ones."""
    if isinstance(store, SQLStore):
        t = EXECUTIONS
        statement = store.select_executions(replace(selection, limit=None)).order_by(None)
        if newer:
            statement = statement.order_by(t.c.id).limit(limit)
            return list(reversed(await _records(store, statement)))
        return await _records(store, statement.order_by(t.c.id.desc()).limit(limit))
    # any store: ascending pages only; read them all (small stores) and cut
    records = await store.list_executions(replace(selection, limit=None))
    records.reverse()
    return records[:limit]


async def _records(store: SQLStore, statement: Any) -> list[ExecutionRecord]:
    from statefleet.store.repository import _execution

    return [_execution(row) for row in await _rows(store, statement)]


async def durations_since(
    store: Store, watermark: datetime, *, limit: int = 50_000
) -> tuple[list[tuple[str, float]], datetime]:
    """(machine id, seconds) of executions that ended after ``watermark`` (in end order,
    at most ``limit``), and the new watermark."""
    if not isinstance(store, SQLStore):
        return [], watermark
    t = EXECUTIONS
    statement = (
        select(t.c.state_machine_id, t.c.started_at, t.c.ended_at)
        .where(t.c.ended_at > watermark)
        .order_by(t.c.ended_at)
        .limit(limit)
    )
    rows = await _rows(store, statement)
    out: list[tuple[str, float]] = []
    last = watermark
    for machine, started, ended in rows:
        if ended is None:
            continue
        last = max(last, ended)
        if started is not None:
            out.append((machine, max(0.0, (ended - started).total_seconds())))
    return out, last


async def dead_letter_errors(store: Store) -> list[tuple[str, int]]:
    """Dead letters by error name, most frequent first."""
    if not isinstance(store, SQLStore):
        counts: dict[str, int] = {}
        for letter in await store.list_dead_letters():
            counts[letter.error] = counts.get(letter.error, 0) + 1
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    t = DEAD_LETTERS
    statement = select(t.c.error, func.count()).group_by(t.c.error)
    rows = [(str(error), int(count)) for error, count in await _rows(store, statement)]
    return sorted(rows, key=lambda item: (-item[1], item[0]))


async def dead_letter_page(
    store: Store,
    *,
    state_machine_id: str | None = None,
    batch_id: str | None = None,
    error: str | None = None,
    queue: str | None = None,
    before: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Any], int]:
    """One page of dead letters (newest first) and how many match."""
    if not isinstance(store, SQLStore):
        letters = await store.list_dead_letters(
            state_machine_id=state_machine_id, batch_id=batch_id, error=error
        )
        if queue is not None:
            letters = [d for d in letters if d.queue == queue]
        letters.reverse()
        if before is not None:
            letters = [d for d in letters if d.id < before]
        return letters[offset : offset + limit], len(letters)
    from statefleet.statemachine.protocols import DeadLetterRecord

    t = DEAD_LETTERS
    where: list[Any] = []
    for column, value in (
        (t.c.state_machine_id, state_machine_id),
        (t.c.batch_id, batch_id),
        (t.c.error, error),
        (t.c.queue, queue),
    ):
        if value is not None:
            where.append(column == value)
    total = (await _rows(store, select(func.count()).select_from(t).where(*where)))[0][0]
    if before is not None:
        where.append(t.c.id < before)
    statement = select(t).where(*where).order_by(t.c.id.desc()).limit(limit).offset(offset)
    letters = [DeadLetterRecord(**row._mapping) for row in await _rows(store, statement)]
    return letters, int(total)


async def dead_letters_where(
    store: Store,
    *,
    execution_id: str | None = None,
    queue: str | None = None,
    job_ids: Sequence[str] = (),
) -> list[Any]:
    """Dead letters of one execution, or of a queue (optionally only these job ids)."""
    from statefleet.statemachine.protocols import DeadLetterRecord

    if not isinstance(store, SQLStore):
        wanted = set(job_ids)
        return [
            d
            for d in await store.list_dead_letters()
            if (execution_id is None or d.execution_id == execution_id)
            and (queue is None or d.queue == queue)
            and (not wanted or d.job_id in wanted or d.id in wanted)
        ]
    t = DEAD_LETTERS
    where: list[ColumnElement[bool]] = []
    if execution_id is not None:
        where.append(t.c.execution_id == execution_id)
    if queue is not None:
        where.append(t.c.queue == queue)
    if job_ids:
        ids = list(job_ids)
        where.append(t.c.job_id.in_(ids) | t.c.id.in_(ids))
    statement = select(t).where(*where).order_by(t.c.id)
    return [DeadLetterRecord(**row._mapping) for row in await _rows(store, statement)]
