"""The ports the engine talks through, and the records that cross them.

The engine never imports a database or queue library: a store adapter
(:mod:`statefleet.store`) implements :class:`Store`, a queue adapter implements
:class:`Dispatcher`. Records are plain dataclasses holding JSON values and
timezone-aware UTC datetimes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "BatchRecord",
    "ChainSource",
    "Checkpoint",
    "DeadLetterRecord",
    "DefinitionRecord",
    "Dispatcher",
    "ExecutionFilter",
    "ExecutionRecord",
    "HistoryEntry",
    "HistoryRecord",
    "LinkRecord",
    "MessageRecord",
    "Store",
    "WaitRecord",
    "WaitStatus",
    "correlation_text",
    "new_id",
]


#: The RFC 4122 variant nibble (binary 10xx) for a random hex digit.
_VARIANT: Final = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


#: Random 80-bit hex texts for :func:`new_id`, read from ``os.urandom`` 512 at a time: a
#: system call per id cost more than the rest of the id (and let other threads take the
#: interpreter's lock each time). A forked child starts with none of its parent's.
_RANDOM: list[str] = []
os.register_at_fork(after_in_child=_RANDOM.clear)


def _draw_random() -> str:
    text = os.urandom(10 * 512).hex()
    _RANDOM[:] = [text[i : i + 20] for i in range(20, len(text), 20)]
    return text[:20]


def new_id() -> str:
    """A time-ordered UUID (version 7 layout): ids sort by creation time, for keyset paging.

    48 bits of Unix milliseconds, the version (7), 74 random bits around the variant bits,
    written straight as hex text (no integer arithmetic: one is made per execution)."""
    millis = f"{time.time_ns() // 1_000_000:012x}"
    try:
        rand = _RANDOM.pop()
    except IndexError:
        rand = _draw_random()
    return f"{millis[:8]}-{millis[8:]}-7{rand[:3]}-{_VARIANT[rand[3]]}{rand[4:7]}-{rand[7:19]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionFilter:
    """Which executions to list, count or stream. Every field narrows the selection.

    ``status`` takes one status or several. ``input_contains``/``output_contains`` test
    JSON containment (PostgreSQL ``@>``; on SQLite only objects of scalar values).
    ``after`` is a keyset cursor: the id of the last execution of the previous page;
    ``before`` bounds the ids from above (ids are time-ordered: "created before").
    """

    state_machine_id: str | None = None
    status: str | Sequence[str] | None = None
    name_prefix: str | None = None
    batch_id: str | None = None
    current_state: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    ended_after: datetime | None = None
    ended_before: datetime | None = None
    input_contains: Any = None
    output_contains: Any = None
    limit: int | None = None
    after: str | None = None
    before: str | None = None

    def statuses(self) -> tuple[str, ...] | None:
        if self.status is None:
            return None
        if isinstance(self.status, str):
            return (self.status,)
        return tuple(self.status)


@dataclass(slots=True, kw_only=True)
class DefinitionRecord:
    """One version of a state machine definition."""

    id: str
    name: str
    version: str
    definition: Any
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class ExecutionRecord:
    """One execution as persisted. ``data`` is the effective input of ``current_state``."""

    id: str
    state_machine_id: str
    version: str
    name: str
    status: str
    input: Any = None
    batch_id: str | None = None
    current_state: str | None = None
    data: Any = None
    variables: dict[str, Any] = field(default_factory=dict)
    output: Any = None
    error: str | None = None
    cause: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    row_version: int = 0
    history_seq: int = 0
    redrive_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: When a parked (WAITING) execution's Wait ends.
    wake_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class HistoryRecord:
    """One state entered and left (or failed) by an execution."""

    execution_id: str
    sequence: int
    state: str
    type: str
    status: str
    input: Any = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    attempt: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None


class HistoryEntry(NamedTuple):
    """A history row as the engine hands it to the store in a :class:`Checkpoint`: a
    :class:`HistoryRecord` with its times as epoch seconds, as the engine's clock gives them
    (the store converts each once, to what its columns take, instead of the engine making a
    datetime of each)."""

    sequence: int
    state: str
    type: str
    status: str
    input: Any
    output: Any
    error: str | None
    cause: str | None
    attempt: int
    started_at: float
    ended_at: float


class ChainSource(NamedTuple):
    """What a chained batch reads of a source execution (:meth:`Store.stream_chain_sources`):
    ``output`` is read only when asked for, else None."""

    id: str
    state_machine_id: str
    status: str
    output: Any = None


@dataclass(slots=True, kw_only=True)
class LinkRecord:
    """A chained execution: ``target`` took its input from ``source`` (or one of its states)."""

    source_execution_id: str
    source_machine_id: str
    source_state: str | None
    transformer: str | None
    target_execution_id: str
    target_machine_id: str
    created_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class BatchRecord:
    """A named group of executions created together."""

    id: str
    state_machine_id: str
    name: str
    status: str
    options: dict[str, Any] = field(default_factory=dict)
    total: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class Checkpoint:
    """The state of an execution after a step, written atomically with its history rows.

    Applied only if the row still has ``expected_version`` (and, when ``owner`` is
    set, is still leased to ``owner``); the row's version then becomes
    ``expected_version + 1``.
    """

    execution_id: str
    expected_version: int
    owner: str | None
    status: str
    current_state: str | None
    data: Any
    variables: dict[str, Any]
    history: Sequence[HistoryRecord | HistoryEntry] = field(default_factory=list)
    output: Any = None
    error: str | None = None
    cause: str | None = None
    ended_at: datetime | None = None
    lease_expires_at: datetime | None = None
    release_lease: bool = False
    redrive_count: int | None = None
    #: The execution's wake time (parked WAITING executions); every checkpoint sets it.
    wake_at: datetime | None = None
    #: When the execution started running: set by the first checkpoint that gives it
    #: (a row's ``started_at`` never changes once set).
    started_at: datetime | None = None
    #: A callback wait whose answer this checkpoint's state took: marked consumed with it.
    consumed_wait: str | None = None


@dataclass(slots=True, kw_only=True)
class DeadLetterRecord:
    """A queue job given up on: its tries are exhausted, its error is not retryable or its
    payload does not parse. Kept until purged explicitly."""

    id: str
    execution_id: str | None
    state_machine_id: str | None = None
    batch_id: str | None = None
    queue: str | None = None
    job_id: str | None = None
    error: str
    cause: str | None = None
    tries: int = 0
    payload: str | None = None
    created_at: datetime | None = None


class WaitStatus:
    """Statuses of a :class:`WaitRecord`: open (``WAITING``) or how it was answered."""

    WAITING = "WAITING"
    SUCCEEDED = "SUCCEEDED"  # send_task_success
    FAILED = "FAILED"  # send_task_failure
    RECEIVED = "RECEIVED"  # a matching message
    TIMED_OUT = "TIMED_OUT"  # TimeoutSeconds / HeartbeatSeconds passed (error says which)
    CANCELLED = "CANCELLED"  # the state was left another way (a new wait replaced it)


def correlation_text(value: Any) -> str:
    """A correlation value as canonical JSON text: equal JSON values, equal text (the
    store matches messages to waits on it)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"correlation value is not JSON: {exc}") from None


@dataclass(slots=True, kw_only=True)
class WaitRecord:
    """An execution parked at a state until the outside world answers: a
    ``.waitForTaskToken`` Task (``kind="task"``, answered by its ``token``) or a Message
    state (``kind="message"``, answered by a message with its correlation key and value).

    Answering is one guarded update of a ``WAITING`` row, so exactly one answer wins.
    ``consumed_at`` is set when the state took the answer (with the checkpoint that moved
    the execution on). ``attempt``/``retry_counts`` carry the state's Retry bookkeeping
    across the park."""

    id: str
    execution_id: str
    state_machine_id: str
    state: str
    kind: str
    status: str = WaitStatus.WAITING
    token: str | None = None
    correlation_key: str | None = None
    correlation_value: Any = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    attempt: int = 0
    retry_counts: list[int] = field(default_factory=list)
    queue: str | None = None
    heartbeat_seconds: int | None = None
    created_at: datetime | None = None
    timeout_at: datetime | None = None
    heartbeat_at: datetime | None = None
    answered_at: datetime | None = None
    consumed_at: datetime | None = None

    def deadline(self) -> datetime | None:
        """When the wait times out (the earlier of its timeout and heartbeat deadlines)."""
        times = [t for t in (self.timeout_at, self.heartbeat_at) if t is not None]
        return min(times) if times else None


@dataclass(slots=True, kw_only=True)
class MessageRecord:
    """A message nothing waited for, kept until ``expires_at`` for a late Message state."""

    id: str
    correlation_key: str
    correlation_value: Any
    payload: Any = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    consumed_at: datetime | None = None
    consumed_by: str | None = None


@runtime_checkable
class Store(Protocol):
    """Persistence of definitions, executions, history, links and batches."""

    # definitions
    async def save_definition(self, record: DefinitionRecord) -> DefinitionRecord: ...
    async def get_definition(
        self, machine_id: str, version: str | None = None
    ) -> DefinitionRecord | None: ...
    async def list_definitions(self) -> list[DefinitionRecord]: ...
    async def definition_versions(self, machine_id: str) -> list[DefinitionRecord]: ...

    # executions
    async def create_executions(
        self, executions: Sequence[ExecutionRecord], links: Sequence[LinkRecord] = ()
    ) -> None: ...
    async def get_execution(self, execution_id: str) -> ExecutionRecord | None: ...
    async def get_execution_by_name(self, machine_id: str, name: str) -> ExecutionRecord | None: ...
    async def list_executions(self, filter: ExecutionFilter) -> list[ExecutionRecord]: ...
    async def count_executions(self, filter: ExecutionFilter) -> int: ...
    async def count_by_status(self, filter: ExecutionFilter) -> dict[str, int]: ...
    def stream_executions(
        self, filter: ExecutionFilter, *, page_size: int = 1000
    ) -> AsyncIterator[ExecutionRecord]: ...
    def stream_unlinked(
        self,
        filter: ExecutionFilter,
        *,
        target_machine_id: str,
        source_state: str | None,
        transformer: str | None,
        batch_id: str | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[ExecutionRecord]:
        """Sources with no link to ``target_machine_id`` with the same source state and
        transformer; with ``batch_id``, only links to executions of that batch count."""
        ...

    def stream_chain_sources(
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
        """The sources of :meth:`stream_unlinked`, only what chaining reads of them (the
        output only ``with_output``)."""
        ...

    async def history(self, execution_id: str) -> list[HistoryRecord]: ...
    async def state_output(self, execution_id: str, state: str) -> tuple[bool, Any]: ...
    async def links_from(self, execution_id: str) -> list[LinkRecord]: ...
    async def links_to(self, execution_id: str) -> list[LinkRecord]: ...

    # running
    async def claim(
        self, execution_id: str, owner: str, lease_expires_at: datetime, now: datetime
    ) -> ExecutionRecord | None: ...
    async def claim_many(
        self,
        execution_ids: Sequence[str],
        owner: str,
        lease_expires_at: datetime,
        now: datetime,
    ) -> dict[str, ExecutionRecord]: ...
    async def renew_lease(
        self, execution_id: str, owner: str, lease_expires_at: datetime
    ) -> bool: ...
    async def renew_leases(
        self, execution_ids: Sequence[str], owner: str, lease_expires_at: datetime
    ) -> set[str]: ...
    async def write_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> list[bool]: ...
    def begin_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> Awaitable[list[bool]]: ...
    async def abort_executions(
        self,
        *,
        execution_ids: Sequence[str] = (),
        batch_id: str | None = None,
        error: str | None = None,
        cause: str | None = None,
        now: datetime,
    ) -> int: ...

    # batches
    async def create_batch(self, record: BatchRecord) -> BatchRecord: ...
    async def get_batch(self, batch_id: str) -> BatchRecord | None: ...
    async def get_batch_by_name(self, machine_id: str, name: str) -> BatchRecord | None: ...
    async def list_batches(
        self, machine_id: str | None = None, limit: int = 100
    ) -> list[BatchRecord]: ...
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
    ) -> bool: ...

    # dead letters and retention
    async def add_dead_letters(self, records: Sequence[DeadLetterRecord]) -> None: ...
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
        ...

    async def delete_dead_letters(self, ids: Sequence[str]) -> int: ...
    async def purge_executions(self, *, ended_before: datetime) -> int:
        """Delete ended executions (with their history and links) that ended before, except
        those a dead letter names."""
        ...

    async def purge_messages(self, *, now: datetime) -> int:
        """Delete kept messages (taken or not) whose time to be kept ran out before ``now``."""
        ...

    # callbacks: task tokens and messages
    async def open_wait(self, record: WaitRecord, *, now: datetime) -> WaitRecord:
        """Save a new wait; the execution's earlier unconsumed waits are consumed (open ones
        CANCELLED). A message wait takes a kept message that matches at once (RECEIVED)."""
        ...

    async def get_wait(
        self, *, token: str | None = None, wait_id: str | None = None
    ) -> WaitRecord | None: ...
    async def resumable_wait(self, execution_id: str, state: str) -> WaitRecord | None:
        """The execution's newest unconsumed wait, if it is at ``state``."""
        ...

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
        """Answer an open wait of an execution that has not ended, in one guarded update;
        None if it was already answered (or its execution ended)."""
        ...

    async def answer_messages(
        self, correlation_key: str, correlation_value: Any, payload: Any, *, now: datetime
    ) -> list[WaitRecord]:
        """Answer every open message wait with this key and value (RECEIVED), in one
        guarded update; returns those this call answered."""
        ...

    async def heartbeat_wait(self, token: str, *, now: datetime) -> WaitRecord | None:
        """Push an open task wait's heartbeat deadline to ``now + heartbeat_seconds``."""
        ...

    async def list_waits(
        self,
        *,
        status: str | None = WaitStatus.WAITING,
        execution_id: str | None = None,
        state_machine_id: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[WaitRecord]: ...
    async def keep_message(self, record: MessageRecord) -> None: ...
    async def list_messages(
        self, *, correlation_key: str | None = None, limit: int = 100
    ) -> list[MessageRecord]: ...

    async def close(self) -> None: ...


class Dispatcher(Protocol):
    """Runs (or enqueues) executions that already exist in the store."""

    async def dispatch(
        self, execution_ids: Sequence[str], *, priority: str = "default"
    ) -> None: ...
