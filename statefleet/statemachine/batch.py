"""Batches: many executions of one machine, created together and run with bounded concurrency.

A batch has a producer and a dispatcher. The producer streams its sources (source
executions of a filter, for ``execute_batch``; the given inputs, for ``execute_bulk``),
creates the executions in bulk, a chunk per transaction, and hands them to the
dispatcher. The local dispatcher advances them as asyncio tasks in this process; the
queue dispatcher (distributed mode) enqueues one job per execution instead.

Nothing is accumulated in memory: sources are streamed, executions created a chunk at
a time, and results read back from the store.

Execution names are deterministic (``<prefix><source id>`` for a chain,
``<prefix><index>`` for bulk inputs), so running a batch again under the same name
resumes it without creating or chaining anything twice.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from statefleet.errors import InfrastructureError, StatefleetError
from statefleet.statemachine.gc_tuning import relaxed_gc, short_switches
from statefleet.statemachine.lifecycle import TERMINAL, ExecutionStatus
from statefleet.statemachine.protocols import (
    BatchRecord,
    ExecutionFilter,
    ExecutionRecord,
    LinkRecord,
    new_id,
)

if TYPE_CHECKING:
    from statefleet.statemachine.persistent import PersistentStateMachine

__all__ = ["Batch", "BatchOptions", "BatchStatus", "priority_name"]

logger = logging.getLogger(__name__)

S = ExecutionStatus


class BatchStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"


PRIORITIES = ("low", "default", "critical")


def priority_name(priority: str | int) -> str:
    """``critical``/``default``/``low``, or a number 0-10 (0-3 low, 4-7 default, 8-10 critical)."""
    if isinstance(priority, bool):
        raise ValueError(f"priority must be a name or a number 0-10, not {priority!r}")
    if isinstance(priority, int):
        if not 0 <= priority <= 10:
            raise ValueError(f"priority number must be between 0 and 10, got {priority}")
        return "low" if priority <= 3 else "default" if priority <= 7 else "critical"
    if priority not in PRIORITIES:
        raise ValueError(
            f"priority must be one of {', '.join(PRIORITIES)} or 0-10, not {priority!r}"
        )
    return priority


Callback = Callable[["Batch"], Any]


@dataclass(frozen=True, kw_only=True)
class BatchOptions:
    """How a batch runs. Every field has a sane default."""

    #: A batch name is idempotent: starting a batch whose name exists resumes it (a
    #: cancelled one stays cancelled: nothing runs; ``resume_batch(id)`` resumes it).
    name: str | None = None
    #: Prefix of the executions' names (default: the batch name and a dash).
    name_prefix: str | None = None
    #: Executions running at once (local mode) — the bound holds at every moment.
    concurrency: int = 64
    #: Start no new execution after the first failure; running ones finish.
    stop_on_error: bool = False
    on_start: Callback | None = None
    on_complete: Callback | None = None
    #: Queue priority in distributed mode: critical/default/low or 0-10.
    priority: str | int = "default"
    #: Past this share (0-100) or number of failed executions the batch stops, FAILED.
    tolerated_failure_percentage: float | None = None
    tolerated_failure_count: int | None = None
    #: Executions created per transaction.
    chunk_size: int = 500
    #: Distributed mode: the queue (default: the priority's name), the tries of each job
    #: (default: the queue client's, 3), and when the batch may start (``defer_until``, a
    #: datetime or ISO-8601 text, or ``defer_by`` seconds from its start).
    queue: str | None = None
    max_tries: int | None = None
    defer_until: datetime | str | None = None
    defer_by: float | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")
        pct = self.tolerated_failure_percentage
        if pct is not None and not 0 <= pct <= 100:
            raise ValueError(f"tolerated_failure_percentage must be 0-100, got {pct}")
        count = self.tolerated_failure_count
        if count is not None and count < 0:
            raise ValueError(f"tolerated_failure_count must be >= 0, got {count}")
        priority_name(self.priority)
        if self.max_tries is not None and self.max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {self.max_tries}")
        if self.defer_until is not None and self.defer_by is not None:
            raise ValueError("give defer_until or defer_by, not both")
        if isinstance(self.defer_until, str):
            moment = datetime.fromisoformat(self.defer_until)
            object.__setattr__(self, "defer_until", moment)
        if isinstance(self.defer_until, datetime) and self.defer_until.tzinfo is None:
            raise ValueError("defer_until must be timezone-aware")

    def as_record(self) -> dict[str, Any]:
        """The JSON-ready options stored with the batch (callbacks left out)."""
        out = asdict(self)
        out.pop("on_start")
        out.pop("on_complete")
        if isinstance(self.defer_until, datetime):
            out["defer_until"] = self.defer_until.isoformat()
        return out


@dataclass(slots=True)
class _Counters:
    created: int = 0
    running: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def ended(self, status: str) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1

    @property
    def failed(self) -> int:
        return sum(n for s, n in self.by_status.items() if s != S.SUCCEEDED)

    @property
    def done(self) -> int:
        return sum(self.by_status.values())


class Batch:
    """A handle on a running (or finished) batch."""

    def __init__(self, machine: PersistentStateMachine, record: BatchRecord) -> None:
        self.machine = machine
        self.record = record
        self.counters = _Counters()
        self._task: asyncio.Task[BatchRecord] | None = None
        self._stopping: str | None = None
        self._cancelled = False

    def __repr__(self) -> str:
        return f"<Batch {self.name!r} {self.status}>"

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def done(self) -> bool:
        return self.record.status != BatchStatus.RUNNING

    async def counts(self) -> dict[str, int]:
        """Executions of this batch by status, as the store has them now."""
        return await self.machine.store.count_by_status(ExecutionFilter(batch_id=self.id))

    async def wait(self) -> BatchRecord:
        """Wait until the batch has ended; return its final record."""
        if self._task is not None:
            return await asyncio.shield(self._task)
        while True:
            record = await self.machine.store.get_batch(self.id)
            if record is not None:
                self.record = record
                if record.status != BatchStatus.RUNNING:
                    return record
            await asyncio.sleep(0.2)

    async def cancel(self, cause: str = "batch cancelled") -> bool:
        """Cancel the batch, from this process or any other (a handle from ``get_batch``,
        the CLI, the UI): it is ABORTED in the store at once, its executions that have not
        ended end ABORTED (running ones at their next checkpoint), and the process running
        it starts nothing more and leaves it ABORTED.

        Returns False, and changes nothing, if the batch had already ended (the reason is
        logged: "batch NAME already SUCCEEDED")."""
        store = self.machine.store
        now = _now()
        cancelled = await store.update_batch(
            self.id,
            status=BatchStatus.ABORTED,
            stop_reason=cause,
            finished_at=now,
            expected_status=BatchStatus.RUNNING,
        )
        if not cancelled:
            record = await store.get_batch(self.id)
            if record is not None:
                self.record = record
            logger.info("batch %s already %s: nothing to cancel", self.name, self.record.status)
            return False
        self._cancelled = True
        self._stopping = cause
        self.record.status = BatchStatus.ABORTED
        self.record.stop_reason = cause
        self.record.finished_at = now
        await store.abort_executions(batch_id=self.id, error="States.Aborted", cause=cause, now=now)
        return True

    async def cancelled_elsewhere(self) -> bool:
        """Whether the batch was cancelled (by another process, or another handle): its
        stored status is ABORTED. Then this handle stops too."""
        if self._cancelled:
            return True
        record = await self.machine.store.get_batch(self.id)
        if record is not None and record.status == BatchStatus.ABORTED:
            self._cancelled = True
            self._stopping = record.stop_reason or "batch cancelled"
            logger.info("batch %s was cancelled: %s", self.id, self._stopping)
        return self._cancelled

    async def results(self, *, page_size: int = 1000) -> AsyncIterator[ExecutionRecord]:
        """The ended executions of this batch, streamed from the store (constant memory)."""
        statuses = tuple(s.value for s in TERMINAL)
        async for record in self.machine.store.stream_executions(
            ExecutionFilter(batch_id=self.id, status=statuses), page_size=page_size
        ):
            yield record


def _now() -> datetime:
    return datetime.now(UTC)


async def _call(callback: Callback | None, batch: Batch) -> None:
    if callback is None:
        return
    result = callback(batch)
    if inspect.isawaitable(result):
        await result


# ------------------------------------------------------------------------ sources

Prepared = tuple[ExecutionRecord, LinkRecord | None]
Source = AsyncIterator[list[Prepared]]


async def _aiter(inputs: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(inputs, AsyncIterable):
        async for item in inputs:
            yield item
    else:
        for item in inputs:
            yield item


async def bulk_source(
    machine: PersistentStateMachine,
    batch: Batch,
    inputs: Iterable[Any] | AsyncIterable[Any],
    prefix: str,
    chunk_size: int,
    skip: int,
) -> Source:
    """Chunks of new executions, one per input; the first ``skip`` inputs exist already."""
    chunk: list[Prepared] = []
    index = -1
    async for value in _aiter(inputs):
        index += 1
        if index < skip:
            continue
        record = machine.new_execution(
            value, name=f"{prefix}{index:08d}", batch_id=batch.id, owner=machine.owner
        )
        record.status = S.QUEUED
        record.started_at = None  # set when it really starts
        chunk.append((record, None))
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def chain_source(
    machine: PersistentStateMachine,
    batch: Batch,
    filter: ExecutionFilter,
    source_state: str | None,
    transformer: str | None,
    unique: bool,
    prefix: str,
    chunk_size: int,
) -> Source:
    """Chunks of new executions chained from the sources the filter selects."""
    store = machine.store
    # Only sources older than the batch: never the batch's own new executions.
    filter = replace(filter, limit=None, before=batch.id)
    sources = store.stream_chain_sources(
        filter,
        target_machine_id=machine.machine_id,
        source_state=source_state,
        transformer=transformer,
        batch_id=None if unique else batch.id,
        with_output=source_state is None,  # else the state's output is read per source
    )
    chunk: list[Prepared] = []
    async for source in sources:
        value = await machine.chained_input(source, source_state, transformer)
        record = machine.new_execution(
            value, name=f"{prefix}{source.id}", batch_id=batch.id, owner=machine.owner
        )
        record.status = S.QUEUED
        record.started_at = None  # set when it really starts
        chunk.append((record, machine.link(source, source_state, transformer, record.id)))
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ------------------------------------------------------------------------ running


class LocalRunner:
    """Runs a batch in this process: a producer and ``concurrency`` asyncio workers.

    The executions it creates are leased to this process (``machine.owner``) from the
    start; one :class:`~statefleet.statemachine.persistent.LeaseRenewer` keeps the leases of
    those running. A cancel from elsewhere is seen when a running execution's checkpoint is
    refused (it was aborted), and at the latest within ``watch_interval`` seconds. If the
    run is itself cancelled (Ctrl-C), it stops its workers at once and releases the leases
    of everything it held, so the batch can be resumed at once.
    """

    watch_interval = 1.0

    def __init__(self, machine: PersistentStateMachine, batch: Batch, options: BatchOptions):
        self.machine = machine
        self.batch = batch
        self.options = options
        self.queue: asyncio.Queue[ExecutionRecord | None] = asyncio.Queue(
            maxsize=options.concurrency * 2
        )
        self.leftover: list[str] = []
        #: Executions leased to this runner: created or claimed, not yet ended.
        self.holding: set[str] = set()
        self._ended = asyncio.Event()
        #: executions that parked on a callback (WAITING) instead of ending
        self.parked = 0

    def _stop(self, reason: str) -> None:
        if self.batch._stopping is None:
            self.batch._stopping = reason
            logger.info("batch %s stops: %s", self.batch.id, reason)

    def _account(self, record: ExecutionRecord) -> None:
        counters = self.batch.counters
        if record.status == S.WAITING:  # parked on a callback: followed once the run ends
            self.parked += 1
            return
        counters.ended(record.status)
        if record.status == S.SUCCEEDED:
            return
        options = self.options
        if options.stop_on_error:
            self._stop(f"stop_on_error: execution {record.name} ended {record.status}")
        failed = counters.failed
        if options.tolerated_failure_count is not None and failed > options.tolerated_failure_count:
            self._stop(
                f"{failed} failed executions exceed the tolerated failure count "
                f"{options.tolerated_failure_count}"
            )
        pct = options.tolerated_failure_percentage
        if pct is not None and counters.created and failed * 100.0 / counters.created > pct:
            self._stop(
                f"{failed} failed of {counters.created} exceeds the tolerated failure "
                f"percentage {pct}"
            )

    async def worker(self) -> None:
        machine = self.machine
        counters = self.batch.counters
        while True:
            record = await self.queue.get()
            if record is None:
                return
            if self.batch._stopping is not None:
                self.leftover.append(record.id)
                self.holding.discard(record.id)
                continue
            counters.running += 1
            try:
                result = await machine.advance(record)
            except StatefleetError:
                logger.exception("execution %s could not run", record.id)
                result = await machine.get(record.id)
            finally:
                counters.running -= 1
            self.holding.discard(record.id)
            if result.status == S.ABORTED and self.batch._stopping is None:
                await self.batch.cancelled_elsewhere()  # aborted: was the batch cancelled?
            self._account(result)

    async def watch(self) -> None:
        """Notice a cancel from another process even while nothing checkpoints. (It ends
        when told to, never cancelled in the middle of a query.)"""
        while not self.batch._cancelled:
            try:
                await asyncio.wait_for(self._ended.wait(), self.watch_interval)
                return
            except TimeoutError:
                pass
            try:
                await self.batch.cancelled_elsewhere()
            except Exception:  # the next round tries again
                logger.warning("batch %s: could not read its status", self.batch.id)

    async def _put(self, record: ExecutionRecord) -> None:
        self.holding.add(record.id)
        await self.queue.put(record)

    async def produce(self, source: Source) -> None:
        store = self.machine.store
        counters = self.batch.counters
        async for chunk in source:
            if self.batch._stopping is not None:
                break
            records = [record for record, _ in chunk]
            links = [link for _, link in chunk if link is not None]
            await store.create_executions(records, links)
            self.holding.update(record.id for record in records)
            counters.created += len(records)
            for record in records:
                await self._put(record)

    async def resume_existing(self) -> None:
        """Claim and run the executions of this batch that exist but have not ended; those
        leased to a dead process of this host are taken over at once (others when their
        lease expires)."""
        machine = self.machine
        statuses = (S.QUEUED.value, S.RUNNING.value, S.WAITING.value)
        pending = [
            r
            async for r in machine.store.stream_executions(
                ExecutionFilter(batch_id=self.batch.id, status=statuses)
            )
        ]
        await machine.take_over_dead(pending)
        for record in pending:
            claimed = await machine.claim(record.id)
            if claimed is not None:
                await self._put(claimed)

    async def run(self, source: Source, resume: bool) -> None:
        with relaxed_gc(), short_switches():
            await self._run(source, resume)

    async def _run(self, source: Source, resume: bool) -> None:
        workers = [asyncio.create_task(self.worker()) for _ in range(self.options.concurrency)]
        watcher = asyncio.create_task(self.watch())
        try:
            if resume:
                await self.resume_existing()
            await self.produce(source)
            for _ in workers:  # the workers are alive and take from the queue
                await self.queue.put(None)
            await asyncio.gather(*workers)
        except BaseException:
            # Cancelled (Ctrl-C) or failed: stop the workers now — never wait on a full
            # queue nobody reads — and release every lease held, so that the batch can be
            # resumed at once from the executions' last checkpoints.
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.shield(self._release())
            raise
        finally:
            self._ended.set()
            await asyncio.gather(watcher, return_exceptions=True)
        if self.leftover:
            await self.machine.store.abort_executions(
                execution_ids=self.leftover,
                error="States.Aborted",
                cause=f"not started: {self.batch._stopping}",
                now=_now(),
            )

    async def _release(self) -> None:
        try:
            await self.machine.renewer.release(self.holding)
        except Exception:
            logger.warning("batch %s: could not release its leases", self.batch.id, exc_info=True)
        self.holding.clear()


async def run_batch(
    machine: PersistentStateMachine,
    options: BatchOptions,
    make_source: Callable[[Batch, str, int], Source],
    kind: dict[str, Any],
) -> Batch:
    """Create (or resume, by name) a batch and start it; return its handle at once."""
    store = machine.store
    name = options.name or f"batch-{new_id()}"
    existing = await store.get_batch_by_name(machine.machine_id, name)
    if existing is not None and existing.status == BatchStatus.ABORTED:
        # cancelled by someone: starting it again by name (a restarted leader, a rerun
        # script) does not undo that; ``resume_batch(id)`` does, on purpose
        logger.info(
            "batch %s was cancelled (%s): starting it by name runs nothing",
            name,
            existing.stop_reason,
        )
        ended = Batch(machine, existing)
        ended._cancelled = True
        ended._stopping = existing.stop_reason
        return ended
    dispatcher = machine.get_queue_client()
    if dispatcher is not None:  # distributed mode: refuse at once if the queue is full
        await dispatcher.admit(machine, options)
    resume = existing is not None
    if existing is None:
        record = await store.create_batch(
            BatchRecord(
                id=new_id(),
                state_machine_id=machine.machine_id,
                name=name,
                status=BatchStatus.RUNNING,
                options={**options.as_record(), "name": name, **kind},
                created_at=_now(),
            )
        )
    else:
        record = existing
        if record.status != BatchStatus.RUNNING:
            await store.update_batch(
                record.id,
                status=BatchStatus.RUNNING,
                reopen=True,
                expected_status=record.status,
            )
            record.status = BatchStatus.RUNNING
            record.stop_reason = None
            record.finished_at = None
    batch = Batch(machine, record)
    prefix = options.name_prefix if options.name_prefix is not None else f"{name}-"
    skip = await store.count_executions(ExecutionFilter(batch_id=record.id)) if resume else 0
    source = make_source(batch, prefix, skip)
    batch._task = asyncio.create_task(_drive(machine, batch, options, source, resume))
    return batch


async def _follow_parked(
    machine: PersistentStateMachine, batch: Batch, interval: float = 0.25
) -> None:
    """Local mode: executions that parked on a callback (a task token, a message) end when
    they are answered, in whichever process resumes them; the batch ends with the last.
    The counters follow the store meanwhile, and a database outage is waited out."""
    active = (S.QUEUED.value, S.RUNNING.value, S.WAITING.value)
    unreachable = 0
    while batch._stopping is None:
        try:
            counts = await machine.store.count_by_status(ExecutionFilter(batch_id=batch.id))
        except InfrastructureError as exc:
            unreachable += 1
            if unreachable == 1:
                logger.warning("batch %s: cannot read its progress (%s); retrying", batch.id, exc)
            await asyncio.sleep(min(5.0, interval * 2 ** min(unreachable, 10)))
            continue
        unreachable = 0
        batch.counters.by_status = {s: n for s, n in counts.items() if s not in active}
        if not any(counts.get(status, 0) for status in active):
            return
        await asyncio.sleep(interval)


async def _drive(
    machine: PersistentStateMachine,
    batch: Batch,
    options: BatchOptions,
    source: Source,
    resume: bool,
) -> BatchRecord:
    store = machine.store
    await _call(options.on_start, batch)
    dispatcher = machine.get_queue_client()
    try:
        if dispatcher is None:
            runner = LocalRunner(machine, batch, options)
            await runner.run(source, resume)
            if runner.parked:
                await _follow_parked(machine, batch)
        else:
            await dispatcher.run_batch(machine, batch, options, source, resume)
    except BaseException as exc:
        what = "interrupted" if isinstance(exc, asyncio.CancelledError) else "crashed"
        reason = f"batch {what}: {type(exc).__name__}: {exc}".rstrip(": ")
        await asyncio.shield(
            store.update_batch(
                batch.id,
                status=BatchStatus.FAILED,
                stop_reason=reason,
                finished_at=_now(),
                expected_status=BatchStatus.RUNNING,
            )
        )
        batch.record.status = BatchStatus.FAILED
        batch.record.stop_reason = reason
        raise
    stop_reason: str | None
    if batch._cancelled:
        status = BatchStatus.ABORTED
    elif batch._stopping is not None:
        status = BatchStatus.FAILED
    else:
        status = BatchStatus.SUCCEEDED
    stop_reason = batch._stopping
    counts = await store.count_by_status(ExecutionFilter(batch_id=batch.id))
    total = sum(counts.values())
    finished = _now()
    ended = await store.update_batch(
        batch.id,
        status=status,
        total=total,
        counters=counts,
        stop_reason=stop_reason,
        finished_at=finished,
        expected_status=BatchStatus.RUNNING,
    )
    if not ended:  # cancelled meanwhile (elsewhere): the cancel wins
        current = await store.get_batch(batch.id)
        if current is not None:
            status = BatchStatus(current.status)
            stop_reason = current.stop_reason
        if status == BatchStatus.ABORTED:
            await store.abort_executions(
                batch_id=batch.id, error="States.Aborted", cause=stop_reason, now=finished
            )
            counts = await store.count_by_status(ExecutionFilter(batch_id=batch.id))
            total = sum(counts.values())
        await store.update_batch(batch.id, total=total, counters=counts, finished_at=finished)
    batch.record.status = status
    batch.record.total = total
    batch.record.counters = counts
    batch.record.stop_reason = stop_reason
    batch.record.finished_at = finished
    await _call(options.on_complete, batch)
    return batch.record
