"""Record builders of the store contract suite (the ``store`` fixture itself, which runs
each test on SQLite and on PostgreSQL, is in ``tests/store_fixtures.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from statefleet.statemachine.protocols import Checkpoint, ExecutionRecord, HistoryRecord, new_id

#: A fixed instant the tests build times from (timezone-aware UTC).
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def execution(
    machine: str = "m1",
    name: str | None = None,
    *,
    status: str = "QUEUED",
    **fields: Any,
) -> ExecutionRecord:
    """A new execution record (not saved)."""
    execution_id = fields.pop("id", None) or new_id()
    fields.setdefault("version", "v1")
    fields.setdefault("input", {})
    fields.setdefault("created_at", T0)
    return ExecutionRecord(
        id=execution_id,
        state_machine_id=machine,
        name=name or execution_id,
        status=status,
        **fields,
    )


def history(
    execution_id: str, sequence: int, state: str = "S", *, status: str = "SUCCEEDED", **kw: Any
) -> HistoryRecord:
    kw.setdefault("type", "Task")
    kw.setdefault("input", {"seq": sequence})
    kw.setdefault("started_at", T0 + timedelta(seconds=sequence))
    kw.setdefault("ended_at", T0 + timedelta(seconds=sequence, milliseconds=500))
    return HistoryRecord(
        execution_id=execution_id, sequence=sequence, state=state, status=status, **kw
    )


def finished(execution_id: str, output: Any = None, states: int = 2) -> Checkpoint:
    """The checkpoint that ends a new (version 0, not leased) execution SUCCEEDED, with
    ``states`` history rows (A, B, ...); ``output`` defaults to ``{"ok": True}``."""
    return Checkpoint(
        execution_id=execution_id,
        expected_version=0,
        owner=None,
        status="SUCCEEDED",
        current_state=None,
        data={},
        variables={},
        output={"ok": True} if output is None else output,
        history=[history(execution_id, i + 1, "ABCDEFGH"[i]) for i in range(states)],
    )
