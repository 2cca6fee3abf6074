"""``PersistentStateMachine``: executions that survive crashes, chained over the store.

An execution advances state by state. After each step its row is checkpointed —
current state, the effective data, variables and the new history rows in one
transaction — guarded by the row's version and the runner's lease, so a stale
runner can never overwrite a newer one and a state is never advanced twice.
States without side effects (Pass, Choice) are folded into the next checkpoint;
on a resume they simply run again.

Checkpoints of executions running concurrently in one process are grouped into
shared transactions by :class:`CheckpointWriter` (group commit).
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import logging
import os
import socket
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar

from statefleet.errors import (
    ChainingError,
    ErrorName,
    NotFoundError,
    StaleExecutionError,
)
from statefleet.statemachine.batch import (
    Batch,
    BatchOptions,
    BatchStatus,
    bulk_source,
    chain_source,
    run_batch,
)
from statefleet.statemachine.definition import Machine
from statefleet.statemachine.interpreter import YIELD_EVERY
from statefleet.statemachine.lifecycle import TERMINAL, ExecutionStatus, check_move
from statefleet.statemachine.machine import StateMachine
from statefleet.statemachine.protocols import (
    BatchRecord,
    ChainSource,
    Checkpoint,
    DefinitionRecord,
    ExecutionFilter,
    ExecutionRecord,
    HistoryEntry,
    HistoryRecord,
    LinkRecord,
    Store,
    WaitStatus,
    new_id,
)
from statefleet.statemachine.runtime import (
    Clock,
    HistoryEvent,
    ResourceRegistry,
    Run,
    Scope,
    SystemClock,
)
from statefleet.statemachine.states.base import PAYLOAD_LIMIT, exceeds
from statefleet.statemachine.steps import End, Failed, Next, Parked

__all__ = [
    "CheckpointWriter",
    "JobControl",
    "LeaseRenewer",
    "PersistentStateMachine",
    "default_owner",
    "owner_is_dead",
]

logger = logging.getLogger(__name__)

S = ExecutionStatus

#: State types whose step has no effect outside the execution: folded into the next
#: checkpoint (they run again on a resume, with the same result).
FOLDABLE = frozenset({"Pass", "Choice"})
#: State types that may run with the progress since the last checkpoint still unwritten:
#: the foldable ones, and the terminal ones (their end is written at once). Any other
#: state (Task, Wait, Map, Parallel, ...) is entered only once everything before it is
#: durable, so a resume never repeats a state with effects outside the execution; the
#: write after the last such state is then the final one.
DEFERRABLE = FOLDABLE | {"Succeed", "Fail"}

DEFAULT_LEASE_SECONDS = 60.0

T = TypeVar("T")
R = TypeVar("R")


def _host() -> str:
    """This host's name, with the id of this process's PID namespace where there is one
    (``host/4026531836``): two containers sharing a host name do not share their PIDs."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return socket.gethostname()
    digits = "".join(c for c in namespace if c.isdigit())
    return f"{socket.gethostname()}/{digits}" if digits else socket.gethostname()


def default_owner() -> str:
    """A lease owner name unique to this process: ``host:pid:random`` (see :func:`_host`)."""
    return f"{_host()}:{os.getpid()}:{new_id()[-8:]}"


def owner_is_dead(owner: str) -> bool:
    """True only if ``owner`` (a :func:`default_owner` name) is a process of this host (and
    PID namespace) that no longer exists. An owner on another machine, or a PID now taken
    by another process, counts as alive: its lease is then waited out, never taken early."""
    host, _, rest = owner.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != _host() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (owned by another user)
        return False
    return False


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class GroupWriter(Generic[T, R]):
    """Runs the concurrent calls of one store write as shared transactions (group commit).

    ``submit`` returns once its item is committed. While ``parallel`` transactions are in
    flight the next items queue up and go together in the following one, so a process
    running many executions commits hundreds of writes per transaction, and a lone caller
    pays no delay. With ``parallel`` > 1 (for writes whose transactions never touch the same
    rows) one group is prepared and sent while another commits. If a shared transaction
    fails, its items are retried one by one so that each caller gets its own result or error.

    With ``begin`` (a write that starts before it returns: the store hands it to its writer
    thread) a group starts from ``submit`` itself once ``eager`` items wait and a slot is
    free, instead of when the event loop next gets to a flushing task, which is after every
    caller ready to run has run (and submitted): so while one group commits, the callers of
    the previous one run and the next group forms, instead of all of them waiting together.
    """

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_batch: int = 2000,
        parallel: int = 1,
        begin: Callable[[list[T]], Awaitable[list[R]]] | None = None,
        eager: int = 64,
    ) -> None:
        self._write = write
        self._begin = begin or write
        self._eager = eager if begin is not None else max_batch + 1
        self._max_batch = max_batch
        self._parallel = parallel
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self._writing = 0  # groups taken and being written
        self._scheduled = False  # a task that will take a group when the loop runs it

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writing < self._parallel:
            if len(self._pending) >= self._eager:
                self._start()
            elif not self._scheduled:
                self._scheduled = True
                self._spawn(self._later())
        return await future

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._flushers.add(task)  # a reference until it ends
        task.add_done_callback(self._flushers.discard)

    async def _later(self) -> None:
        self._scheduled = False
        if self._pending and self._writing < self._parallel:
            self._start()

    def _start(self) -> None:
        """Take a group from the pending items and start writing it."""
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        self._writing += 1
        items = [item for item, _ in batch]
        try:
            writing = self._begin(items)
        except Exception as exc:  # failed while preparing: the group's callers learn it
            writing = _raise(exc)
        self._spawn(self._finish(batch, writing))

    async def _finish(
        self, batch: list[tuple[T, asyncio.Future[R]]], writing: Awaitable[list[R]]
    ) -> None:
        try:
            try:
                results = await writing
            except asyncio.CancelledError:
                for _, future in batch:
                    if not future.done():
                        future.cancel()
                raise
            except Exception as exc:
                if len(batch) == 1:
                    if not batch[0][1].done():
                        batch[0][1].set_exception(exc)
                else:
                    await self._one_by_one(batch)
            else:
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._writing -= 1
        if self._pending and self._writing < self._parallel:
            self._start()  # what queued meanwhile goes at once

    async def settle(self, within: float) -> None:
        """Wait (at most ``within`` seconds) until the items submitted so far are written,
        including those whose caller stopped waiting (a cancelled caller's item is still
        written by the flush that holds it)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            flushing = [task for task in self._flushers if not task.done()]
            remaining = deadline - asyncio.get_running_loop().time()
            if not flushing or remaining <= 0:
                return
            await asyncio.wait(flushing, timeout=remaining)

    async def _one_by_one(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        for item, future in batch:
            try:
                [result] = await self._write([item])
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)


async def _raise(exc: Exception) -> Any:
    raise exc


#: Checkpoints waiting that start a group at once (see GroupWriter): about what one SQLite
#: commit takes at the cost of a few (each commit rewrites the hot pages of every index it
#: touches, so much smaller groups cost more per checkpoint). A batch running more than
#: twice as many executions at once keeps one group committing while the next forms.
EAGER_GROUP: Final = 256


class CheckpointWriter:
    """Checkpoints of concurrently running executions, committed in shared transactions."""

    def __init__(self, store: Store, *, max_batch: int = 2000) -> None:
        # Checkpoints of different executions never touch the same rows (an execution waits
        # for its checkpoint before it writes the next), so two groups may be in flight: one
        # is prepared and sent while the other commits. (SQLite runs the transactions of a
        # store one after the other on its writer connection: the second group waits there
        # with its rows ready, and the writer never waits for this thread to prepare them.)
        parallel = 2
        self._checkpoints: GroupWriter[Checkpoint, bool] = GroupWriter(
            store.write_checkpoints,
            max_batch=max_batch,
            parallel=parallel,
            begin=store.begin_checkpoints,
            eager=EAGER_GROUP,
        )

        async def create(items: list[tuple[ExecutionRecord, LinkRecord | None]]) -> list[None]:
            await store.create_executions(
                [record for record, _ in items], [link for _, link in items if link is not None]
            )
            return [None] * len(items)

        self._creations: GroupWriter[tuple[ExecutionRecord, LinkRecord | None], None] = GroupWriter(
            create, max_batch=max_batch
        )

        async def claim(
            items: list[tuple[str, str, datetime, datetime]],
        ) -> list[ExecutionRecord | None]:
            taken: dict[str, ExecutionRecord] = {}
            owners: dict[str, list[tuple[str, str, datetime, datetime]]] = {}
            for item in items:
                owners.setdefault(item[1], []).append(item)
            for owner, group in owners.items():
                expires = max(item[2] for item in group)
                now = max(item[3] for item in group)
                taken.update(
                    await store.claim_many([item[0] for item in group], owner, expires, now)
                )
            return [taken.pop(item[0], None) for item in items]

        self._claims: GroupWriter[tuple[str, str, datetime, datetime], ExecutionRecord | None] = (
            GroupWriter(claim, max_batch=max_batch)
        )

    async def claim(
        self, execution_id: str, owner: str, lease_expires_at: datetime, now: datetime
    ) -> ExecutionRecord | None:
        """Take an execution's lease, sharing a statement with concurrent claims."""
        return await self._claims.submit((execution_id, owner, lease_expires_at, now))

    async def write(self, checkpoint: Checkpoint) -> bool:
        """Commit a checkpoint; False if the version guard refused it (stale)."""
        return await self._checkpoints.submit(checkpoint)

    async def create(self, record: ExecutionRecord, link: LinkRecord | None = None) -> None:
        """Create one execution (and its source link), sharing a transaction with others."""
        await self._creations.submit((record, link))

    async def settle(self, within: float) -> None:
        """Wait (at most ``within`` seconds) for the checkpoints already submitted."""
        await self._checkpoints.settle(within)


class LeaseRenewer:
    """Keeps the leases of every execution one runner (one owner) is advancing: a single
    task renews them all, in one statement per interval (``lease_seconds / 3``), while
    any is held; it stops when none is. A lease the store no longer gives to the owner
    (taken over, cancelled) is dropped with a warning; the version guard stops its runner
    at its next checkpoint."""

    def __init__(self, store: Store, owner: str, lease_seconds: float, clock: Clock) -> None:
        self.store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.held: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._renewing: asyncio.Future[None] | None = None

    def hold(self, execution_id: str) -> None:
        self.held.add(execution_id)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    def drop(self, execution_id: str) -> None:
        self.held.discard(execution_id)

    async def release(self, execution_ids: Iterable[str]) -> None:
        """Give these leases up now (expired), so that any runner continues at once."""
        ids = list(execution_ids)
        for execution_id in ids:
            self.held.discard(execution_id)
        if ids:
            past = utc(self.clock.now() - 1)
            await self.store.renew_leases(ids, self.owner, past)

    async def settle(self, within: float) -> None:
        """Wait (at most ``within`` seconds) for a renewal already sent: it may still
        extend a lease that was dropped after it was sent."""
        renewing = self._renewing
        if renewing is not None and not renewing.done():
            await asyncio.wait([renewing], timeout=within)

    async def close(self) -> None:
        """Stop renewing (a runner shutting down): the renewal task ends now, not at its
        next wake-up; the leases still held lapse as they would if the process died."""
        self.held.clear()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        interval = max(0.05, self.lease_seconds / 3)
        while self.held:
            await asyncio.sleep(interval)
            ids = list(self.held)
            if not ids:
                break
            until = utc(self.clock.now() + self.lease_seconds)
            self._renewing = renewing = asyncio.get_running_loop().create_future()
            try:
                still = await self.store.renew_leases(ids, self.owner, until)
            except Exception:  # retried next round; the version guard protects meanwhile
                logger.warning("lease renewal of %d execution(s) failed", len(ids), exc_info=True)
                continue
            finally:
                if not renewing.done():
                    renewing.set_result(None)
            for execution_id in ids:
                if execution_id not in still and execution_id in self.held:
                    self.held.discard(execution_id)
                    logger.warning(
                        "execution %s: lease lost (taken over or cancelled)",
                        execution_id,
                        extra={"execution_id": execution_id},
                    )
        self._task = None


@dataclass(slots=True)
class JobControl:
    """How a queue worker has :meth:`PersistentStateMachine.advance` run one execution, and
    what came of it. Local mode passes none: Waits sleep, failures are written as FAILED.

    ``park_after``: a top-level Wait longer than this many seconds parks the execution
    (WAITING, its wake time stored, lease released) and ``advance`` returns; the worker
    schedules a job for ``parked_until``.
    ``retry_failures``: a failure a state raised (``Failed.retryable``) is not written as
    FAILED; the execution is checkpointed at the failed state, RUNNING and unleased, and
    ``handed_back`` is set so that the worker retries the job.
    """

    park_after: float | None = None
    retry_failures: bool = False
    parked_until: float | None = None
    failure: Failed | None = None
    handed_back: bool = False
    #: the queue the job runs on (kept with callback waits, to wake the job there)
    queue: str | None = None
    #: the callback wait (task token, message) the execution parked on, if any
    wait: str | None = None


@dataclass(slots=True)
class _Progress:
    """What the runner knows of its execution row between checkpoints."""

    record: ExecutionRecord
    row_version: int
    history_seq: int
    pending: list[HistoryEvent]
    consumed_wait: str | None = None


class PersistentStateMachine:
    """A state machine whose executions are persisted in a :class:`Store`."""

    def __init__(
        self,
        machine_id: str,
        statemachine: StateMachine,
        store: Store,
        *,
        resources: Mapping[str, Callable[..., Any]] | ResourceRegistry | None = None,
        transformers: Mapping[str, Callable[..., Any]] | None = None,
        clock: Clock | None = None,
        owner: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        writer: CheckpointWriter | None = None,
        renewer: LeaseRenewer | None = None,
    ) -> None:
        self.machine_id = machine_id
        self.statemachine = statemachine
        self.store = store
        self.resources = (
            resources if isinstance(resources, ResourceRegistry) else ResourceRegistry(resources)
        )
        self.transformers: dict[str, Callable[..., Any]] = dict(transformers or {})
        self.clock = clock or SystemClock()
        self.owner = owner or default_owner()
        self.lease_seconds = lease_seconds
        self.writer = writer or CheckpointWriter(store)
        self.renewer = renewer or LeaseRenewer(store, self.owner, lease_seconds, self.clock)
        self._versions: dict[str, StateMachine] = {statemachine.version: statemachine}
        self._queue_client: Any = None
        #: local mode: timers that resume parked callback waits at their deadline
        self._timers: dict[str, asyncio.Task[None]] = {}

    # ---------------------------------------------------------------- creation

    @classmethod
    async def create(
        cls,
        definition: Any,
        *,
        machine_id: str,
        store: Store,
        name: str | None = None,
        resources: Mapping[str, Callable[..., Any]] | ResourceRegistry | None = None,
        transformers: Mapping[str, Callable[..., Any]] | None = None,
        **options: Any,
    ) -> PersistentStateMachine:
        """Validate ``definition``, save it under ``machine_id`` (a new version if it
        changed) and return the machine. Raises ``DefinitionError`` listing every problem."""
        statemachine = StateMachine.from_definition(definition, name=machine_id)
        await store.save_definition(
            DefinitionRecord(
                id=machine_id,
                name=name or machine_id,
                version=statemachine.version,
                definition=statemachine.document,
            )
        )
        return cls(
            machine_id,
            statemachine,
            store,
            resources=resources,
            transformers=transformers,
            **options,
        )

    @classmethod
    async def load(
        cls,
        machine_id: str,
        *,
        store: Store,
        version: str | None = None,
        resources: Mapping[str, Callable[..., Any]] | ResourceRegistry | None = None,
        transformers: Mapping[str, Callable[..., Any]] | None = None,
        **options: Any,
    ) -> PersistentStateMachine:
        """The machine as saved in the store (its latest version unless one is named)."""
        record = await store.get_definition(machine_id, version)
        if record is None:
            which = f" version {version}" if version else ""
            raise NotFoundError(f"no state machine {machine_id!r}{which} in the store")
        statemachine = StateMachine.from_definition(record.definition, name=machine_id)
        return cls(
            machine_id,
            statemachine,
            store,
            resources=resources,
            transformers=transformers,
            **options,
        )

    @property
    def version(self) -> str:
        return self.statemachine.version

    def set_queue_client(self, client: Any) -> None:
        """Attach a queue client (distributed mode); ``None`` returns to local mode."""
        self._queue_client = client

    def get_queue_client(self) -> Any:
        return self._queue_client

    # ---------------------------------------------------------------- reading

    async def get(self, execution_id: str) -> ExecutionRecord:
        record = await self.store.get_execution(execution_id)
        if record is None:
            raise NotFoundError(f"no execution {execution_id!r}")
        return record

    async def list(self, filter: ExecutionFilter | None = None) -> builtins.list[ExecutionRecord]:
        return await self.store.list_executions(self._own(filter))

    async def count(self, filter: ExecutionFilter | None = None) -> int:
        return await self.store.count_executions(self._own(filter))

    async def history(self, execution_id: str) -> builtins.list[HistoryRecord]:
        return await self.store.history(execution_id)

    def _own(self, filter: ExecutionFilter | None) -> ExecutionFilter:
        if filter is None:
            return ExecutionFilter(state_machine_id=self.machine_id)
        if filter.state_machine_id is None:
            from dataclasses import replace

            return replace(filter, state_machine_id=self.machine_id)
        return filter

    # ---------------------------------------------------------------- running

    async def execute(
        self,
        input: Any = None,
        *,
        name: str | None = None,
        source_execution: str | None = None,
        source_state: str | None = None,
        transformer: str | None = None,
    ) -> ExecutionRecord:
        """Create an execution, run it to its end in this process and return its record.

        With ``source_execution`` the input comes from that execution's output (or from
        the output of its state ``source_state``), passed through the named input
        ``transformer``; the two executions are linked.
        """
        self.statemachine.check_resources(self.resources)
        link = None
        if source_execution is not None:
            source = await self.get_source(source_execution)
            input = await self.chained_input(source, source_state, transformer)
            link = self.link(source, source_state, transformer, "")
        elif source_state is not None or transformer is not None:
            raise ChainingError("source_state and transformer need a source_execution")
        record = self.new_execution(input, name=name, owner=self.owner)
        if link is not None:
            link.target_execution_id = record.id
        await self.writer.create(record, link)
        return await self.advance(record)

    def new_execution(
        self,
        input: Any,
        *,
        name: str | None = None,
        batch_id: str | None = None,
        owner: str | None = None,
    ) -> ExecutionRecord:
        """A new execution row (not yet saved). With ``owner`` it starts RUNNING and
        leased to that owner, ready for :meth:`advance`; without, QUEUED."""
        now = utc(self.clock.now())
        execution_id = new_id()
        return ExecutionRecord(
            id=execution_id,
            state_machine_id=self.machine_id,
            version=self.version,
            name=name or execution_id,
            status=S.RUNNING if owner else S.QUEUED,
            input=input,
            batch_id=batch_id,
            current_state=None,
            data=None,
            variables={},
            started_at=now if owner else None,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=self.lease_seconds) if owner else None,
            row_version=0,
            history_seq=0,
            created_at=now,
            updated_at=now,
        )

    async def get_source(self, execution_id: str) -> ExecutionRecord:
        source = await self.store.get_execution(execution_id)
        if source is None:
            raise ChainingError(f"source execution {execution_id!r} does not exist")
        return source

    async def chained_input(
        self,
        source: ExecutionRecord | ChainSource,
        source_state: str | None,
        transformer: str | None,
    ) -> Any:
        """The input a chained execution takes from ``source``."""
        if source_state is None:
            if source.status != S.SUCCEEDED:
                raise ChainingError(
                    f"source execution {source.id!r} is {source.status}, not SUCCEEDED: "
                    "it has no output to chain from (name a source_state to use a state's output)"
                )
            value = source.output
        else:
            found, value = await self.store.state_output(source.id, source_state)
            if not found:
                raise ChainingError(
                    f"source execution {source.id!r} has no output of state {source_state!r}"
                )
        if transformer is not None:
            function = self.transformers.get(transformer)
            if function is None:
                known = ", ".join(sorted(self.transformers)) or "none"
                raise ChainingError(f"no input transformer {transformer!r} (registered: {known})")
            value = function(value)
            if inspect.isawaitable(value):
                value = await value
        return value

    def link(
        self,
        source: ExecutionRecord | ChainSource,
        source_state: str | None,
        transformer: str | None,
        target_id: str,
    ) -> LinkRecord:
        return LinkRecord(
            source_execution_id=source.id,
            source_machine_id=source.state_machine_id,
            source_state=source_state,
            transformer=transformer,
            target_execution_id=target_id,
            target_machine_id=self.machine_id,
            created_at=utc(self.clock.now()),
        )

    async def resume(self, execution_id: str) -> ExecutionRecord:
        """Continue an execution from its last checkpoint (after a crash, or a QUEUED one)."""
        record = await self.get(execution_id)
        if record.status in TERMINAL:
            return record
        claimed = await self.claim(execution_id)
        if claimed is None and await self.take_over_dead([record]):
            claimed = await self.claim(execution_id)
        if claimed is None:
            raise StaleExecutionError(
                f"execution {execution_id!r} is leased to {record.lease_owner!r} "
                f"until {record.lease_expires_at}; it cannot be resumed now"
            )
        return await self.advance(claimed)

    async def take_over_dead(self, records: Iterable[ExecutionRecord]) -> int:
        """Free the unexpired leases of these executions whose owner is a dead process of
        this host (:func:`owner_is_dead`: a batch or runner process that crashed), so that
        they can be claimed now rather than when the lease expires. Leases of owners on
        other hosts are left to expire. Returns how many were freed."""
        now = self.clock.now()
        verdicts: dict[str, bool] = {}
        dead: dict[str, list[str]] = {}
        for record in records:
            owner = record.lease_owner
            expires = record.lease_expires_at
            if owner is None or owner == self.owner or expires is None:
                continue
            if expires.timestamp() <= now or record.status in TERMINAL:
                continue
            if owner not in verdicts:
                verdicts[owner] = owner_is_dead(owner)
            if verdicts[owner]:
                dead.setdefault(owner, []).append(record.id)
        freed = 0
        for owner, ids in dead.items():
            logger.info("taking over %d execution(s) of dead runner %s", len(ids), owner)
            freed += len(await self.store.renew_leases(ids, owner, utc(now - 1)))
        return freed

    async def claim(self, execution_id: str) -> ExecutionRecord | None:
        """Take the execution's lease for this runner (None if another holds it or it ended)."""
        now = self.clock.now()
        return await self.writer.claim(
            execution_id,
            self.owner,
            utc(now + self.lease_seconds),
            utc(now),
        )

    async def redrive(self, execution_id: str) -> ExecutionRecord:
        """Run a FAILED, TIMED_OUT or ABORTED execution again from the state that failed,
        keeping its history and the results of the states that succeeded."""
        await self.prepare_redrive(execution_id)
        claimed = await self.claim(execution_id)
        if claimed is None:
            raise StaleExecutionError(f"execution {execution_id!r} was taken by another runner")
        return await self.advance(claimed)

    async def prepare_redrive(self, execution_id: str) -> ExecutionRecord:
        """Move a FAILED, TIMED_OUT or ABORTED execution back to RUNNING at its failed state,
        unleased, for any runner to claim (a queue worker, or :meth:`redrive`)."""
        record = await self.get(execution_id)
        check_move(record.status, S.RUNNING, redrive=True)
        now = self.clock.now()
        applied = await self.writer.write(
            Checkpoint(
                execution_id=record.id,
                expected_version=record.row_version,
                owner=None,
                status=S.RUNNING,
                current_state=record.current_state,
                data=record.data,
                variables=record.variables,
                lease_expires_at=utc(now + self.lease_seconds),
                redrive_count=record.redrive_count + 1,
            )
        )
        if not applied:
            raise StaleExecutionError(f"execution {execution_id!r} changed while redriving it")
        return await self.get(execution_id)

    async def cancel(self, execution_id: str, cause: str | None = None) -> bool:
        """Abort an execution that has not ended. A runner advancing it stops at its next
        checkpoint. Returns False if it had already ended."""
        count = await self.store.abort_executions(
            execution_ids=[execution_id],
            error="States.Aborted",
            cause=cause or "cancelled",
            now=utc(self.clock.now()),
        )
        return count > 0

    # ---------------------------------------------------------------- batches

    async def execute_batch(
        self,
        filter: ExecutionFilter,
        *,
        source_state: str | None = None,
        transformer: str | None = None,
        unique: bool = False,
        options: BatchOptions | None = None,
    ) -> Batch:
        """Start one execution of this machine per source execution the filter selects,
        its input taken from the source's output (or ``source_state``'s output), passed
        through ``transformer``. ``unique=True`` skips sources already chained to this
        machine with the same source state and transformer. Returns at once."""
        options = options or BatchOptions()
        if self._queue_client is None:  # on the queue, the workers hold the resources
            self.statemachine.check_resources(self.resources)
        if transformer is not None and transformer not in self.transformers:
            known = ", ".join(sorted(self.transformers)) or "none"
            raise ChainingError(f"no input transformer {transformer!r} (registered: {known})")
        kind = {
            "kind": "chain",
            "filter": _filter_record(filter),
            "source_state": source_state,
            "transformer": transformer,
            "unique": unique,
        }

        def source(batch: Batch, prefix: str, skip: int) -> Any:
            return chain_source(
                self, batch, filter, source_state, transformer, unique, prefix, options.chunk_size
            )

        return await run_batch(self, options, source, kind)

    async def execute_bulk(
        self,
        inputs: Iterable[Any] | AsyncIterable[Any],
        options: BatchOptions | None = None,
    ) -> Batch:
        """Start one execution per input (any iterable or async iterable, streamed).
        Returns at once; running the same named batch again resumes it."""
        options = options or BatchOptions()
        if self._queue_client is None:  # on the queue, the workers hold the resources
            self.statemachine.check_resources(self.resources)

        def source(batch: Batch, prefix: str, skip: int) -> Any:
            return bulk_source(self, batch, inputs, prefix, options.chunk_size, skip)

        return await run_batch(self, options, source, {"kind": "bulk"})

    async def get_batch(self, batch_id: str) -> Batch:
        record = await self.store.get_batch(batch_id)
        if record is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        return Batch(self, record)

    async def list_batches(self, limit: int = 100) -> builtins.list[BatchRecord]:
        return await self.store.list_batches(self.machine_id, limit)

    async def resume_batch(
        self,
        batch_id: str,
        options: BatchOptions | None = None,
        *,
        inputs: Iterable[Any] | AsyncIterable[Any] | None = None,
    ) -> Batch:
        """Resume a batch interrupted by a crash: run its unfinished executions and start
        the ones it had not reached — none twice. A chained batch chains the sources it had
        not reached; a bulk batch needs the same ``inputs`` again (those it had created are
        skipped). A cancelled batch is taken up again only this way (started again by
        name, it stays cancelled)."""
        record = await self.store.get_batch(batch_id)
        if record is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        stored = record.options
        chained = stored.get("kind") == "chain"
        if chained and inputs is not None:
            raise ChainingError(f"batch {record.name!r} is chained: it takes no inputs")
        if not chained and inputs is None:
            raise ChainingError(
                f"batch {record.name!r} was started from inputs: give the same inputs again "
                "(resume_batch(batch_id, inputs=...))"
            )
        if record.status == BatchStatus.ABORTED:
            await self.store.update_batch(
                record.id,
                status=BatchStatus.RUNNING,
                reopen=True,
                expected_status=BatchStatus.ABORTED,
            )
        base = options or BatchOptions()
        options = replace_options(base, stored, record.name)
        if inputs is not None:
            return await self.execute_bulk(inputs, options)
        return await self.execute_batch(
            filter_from_record(stored["filter"]),
            source_state=stored.get("source_state"),
            transformer=stored.get("transformer"),
            unique=bool(stored.get("unique")),
            options=options,
        )

    # ---------------------------------------------------------------- the step loop

    async def _load_version(self, version: str) -> StateMachine:
        found = self._versions.get(version)
        if found is not None:
            return found
        record = await self.store.get_definition(self.machine_id, version)
        if record is None:
            raise NotFoundError(f"definition version {version} of {self.machine_id!r} is missing")
        found = StateMachine.from_definition(record.definition, name=self.machine_id)
        self._versions[version] = found
        return found

    async def advance(
        self, record: ExecutionRecord, control: JobControl | None = None
    ) -> ExecutionRecord:
        """Run an execution this runner has claimed, from its checkpoint to its end.

        Returns the final record; if the version guard refuses a write (another runner
        took the execution over, or it was cancelled) it stops and returns the record as
        the store has it. A queue worker passes a :class:`JobControl`: the execution may
        then also come back parked (WAITING) or handed back after a retryable failure.
        """
        statemachine = await self._load_version(record.version)
        self.renewer.hold(record.id)
        try:
            return await self._advance(statemachine, record, control)
        except StaleExecutionError as exc:
            logger.warning(
                "execution %s: %s; stopping without writing",
                record.id,
                exc,
                extra={"execution_id": record.id},
            )
            return await self.get(record.id)
        finally:
            self.renewer.drop(record.id)

    async def _advance(
        self, statemachine: StateMachine, record: ExecutionRecord, control: JobControl | None
    ) -> ExecutionRecord:
        machine: Machine = statemachine.machine
        if record.started_at is None:  # it starts now (the first checkpoint stores it)
            record.started_at = utc(self.clock.now())
        started = record.started_at.timestamp()
        run = Run(
            resources=self.resources,
            clock=self.clock,
            execution_id=record.id,
            execution_name=record.name,
            machine_id=f"arn:aws:states:local:000000000000:stateMachine:{self.machine_id}",
            machine_name=self.machine_id,
            input=record.input,
            start_time=started,
            redrive_count=record.redrive_count,
            execution_arn=(
                f"arn:aws:states:local:000000000000:execution:{self.machine_id}:{record.name}"
            ),
            park_after=control.park_after if control is not None else None,
            wake_at=(
                record.wake_at.timestamp()
                if record.wake_at is not None and record.current_state is not None
                else None
            ),
            store=self.store,
            queue=control.queue if control is not None else None,
        )
        if statemachine.has_callbacks and record.current_state is not None:
            run.resume_wait = await self.store.resumable_wait(record.id, record.current_state)
        timer = self._timers.pop(record.id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        scope = Scope(dict(record.variables or {}))
        progress = _Progress(record, record.row_version, record.history_seq, [])
        name = record.current_state or machine.start_at
        data = record.data if record.current_state is not None else record.input
        timeout = machine.timeout_seconds
        deadline = None if timeout is None else started + timeout
        if record.current_state is None and exceeds(record.input, PAYLOAD_LIMIT):
            return await self._finish(  # as Step Functions: the input itself is refused
                progress,
                S.FAILED,
                None,
                None,
                scope,
                error=ErrorName.DATA_LIMIT_EXCEEDED,
                cause="The execution input exceeds the maximum number of bytes service limit.",
            )
        unsaved = False  # a state with effects ended since the last checkpoint
        steps = 0
        while True:
            state = machine.states[name]
            if unsaved and state.type_name not in DEFERRABLE:
                await self._checkpoint(progress, S.RUNNING, name, data, scope)
                unsaved = False
            try:
                if deadline is None:
                    step = await state.enter(run, scope, data)
                else:
                    remaining = deadline - self.clock.now()
                    if remaining <= 0:
                        raise TimeoutError
                    async with asyncio.timeout(remaining):
                        step = await state.enter(run, scope, data)
            except TimeoutError:
                progress.pending.extend(run.history)  # what the interrupted state recorded
                return await self._finish(
                    progress,
                    S.TIMED_OUT,
                    name,
                    data,
                    scope,
                    error=ErrorName.TIMEOUT,
                    cause=None,
                )
            progress.pending.extend(run.history)
            del run.history[:]
            if run.consumed_wait is not None:
                progress.consumed_wait, run.consumed_wait = run.consumed_wait, None
            match step:
                case Next(state=next_name, output=output):
                    unsaved = unsaved or state.type_name not in FOLDABLE
                    steps += 1
                    if steps % YIELD_EVERY == 0:  # a cycle of states that never wait must
                        await asyncio.sleep(0)  # not hold the event loop (timeouts, cancel)
                    name, data = next_name, output
                case End(output=output):
                    return await self._finish(
                        progress, S.SUCCEEDED, None, None, scope, output=output
                    )
                case Failed(error=error, cause=cause, retryable=retryable):
                    if control is not None:
                        control.failure = step
                        if control.retry_failures and retryable:
                            control.handed_back = True
                            return await self._release(progress, S.RUNNING, name, data, scope)
                    return await self._finish(
                        progress, S.FAILED, name, data, scope, error=error, cause=cause
                    )
                case Parked(until=until, wait=wait_id):
                    if wait_id is not None and deadline is not None:  # the machine's timeout
                        until = deadline if until is None else min(until, deadline)
                    if control is not None:
                        control.parked_until = until
                        control.wait = wait_id
                    parked = await self._release(
                        progress, S.WAITING, name, data, scope, wake_at=until
                    )
                    if wait_id is None:
                        return parked
                    return await self._after_park(statemachine, parked, wait_id, until, control)
            run.wake_at = None  # only the state the run resumed at takes it
            run.resume_wait = None

    async def _after_park(
        self,
        statemachine: StateMachine,
        parked: ExecutionRecord,
        wait_id: str,
        until: float | None,
        control: JobControl | None,
    ) -> ExecutionRecord:
        """An answer may have come while the execution was parking (before the WAITING
        checkpoint committed, when its sender could not claim it): look once more, and go
        on at once if so. A queue worker re-schedules the job to now; local mode claims
        the execution again (if the sender has not). Otherwise, in local mode, a timer
        resumes it at its deadline while this process runs."""
        wait = await self.store.get_wait(wait_id=wait_id)
        answered = wait is not None and wait.status != WaitStatus.WAITING
        if control is not None:
            if answered:
                control.parked_until = self.clock.now()
            return parked
        if answered:
            claimed = await self.claim(parked.id)
            if claimed is None:
                return parked
            return await self._advance(statemachine, claimed, None)
        if until is not None:
            self._schedule_wake(parked.id, until)
        return parked

    def _schedule_wake(self, execution_id: str, until: float) -> None:
        async def wake() -> None:
            await self.clock.sleep(until - self.clock.now())
            try:
                await self.resume(execution_id)
            except Exception:  # another runner has it, or the store is down: logged
                logger.warning(
                    "execution %s: could not resume it at its callback deadline",
                    execution_id,
                    exc_info=True,
                    extra={"execution_id": execution_id},
                )
            finally:
                if self._timers.get(execution_id) is asyncio.current_task():
                    del self._timers[execution_id]

        previous = self._timers.pop(execution_id, None)
        if previous is not None:
            previous.cancel()
        self._timers[execution_id] = asyncio.create_task(wake())

    def _history_records(self, progress: _Progress) -> builtins.list[HistoryEntry]:
        sequence = progress.history_seq
        records = []
        for event in progress.pending:
            sequence += 1
            records.append(
                HistoryEntry(
                    sequence,
                    event.state,
                    event.type,
                    event.status,
                    event.input,
                    event.output,
                    event.error,
                    event.cause,
                    event.attempt,
                    event.started_at,
                    event.ended_at,
                )
            )
        progress.history_seq = sequence
        progress.pending = []
        return records

    async def _checkpoint(
        self,
        progress: _Progress,
        status: str,
        current_state: str | None,
        data: Any,
        scope: Scope,
        *,
        output: Any = None,
        error: str | None = None,
        cause: str | None = None,
        final: bool = False,
        release: bool = False,
        wake_at: float | None = None,
    ) -> None:
        before = progress.history_seq
        history = self._history_records(progress)
        now = self.clock.now()
        checkpoint = Checkpoint(
            execution_id=progress.record.id,
            expected_version=progress.row_version,
            owner=self.owner,
            status=status,
            current_state=current_state,
            data=data,
            variables=dict(scope.variables),
            history=history,
            output=output,
            error=None if error is None else str(error),
            cause=cause,
            ended_at=utc(now) if final else None,
            lease_expires_at=None if final or release else utc(now + self.lease_seconds),
            release_lease=final or release,
            wake_at=None if wake_at is None else utc(wake_at),
            started_at=progress.record.started_at,
            consumed_wait=progress.consumed_wait,
        )
        if not await self.writer.write(checkpoint):
            progress.history_seq = before
            raise StaleExecutionError(
                f"checkpoint refused: the row is no longer at version {progress.row_version}"
            )
        progress.row_version += 1
        progress.consumed_wait = None

    async def _release(
        self,
        progress: _Progress,
        status: str,
        current_state: str,
        data: Any,
        scope: Scope,
        *,
        wake_at: float | None = None,
    ) -> ExecutionRecord:
        """Checkpoint a run that stops before the end (parked, or handed back to the queue)
        and release its lease, for any runner to continue."""
        await self._checkpoint(
            progress, status, current_state, data, scope, release=True, wake_at=wake_at
        )
        record = progress.record
        record.status = status
        record.current_state = current_state
        record.data = data
        record.variables = dict(scope.variables)
        record.lease_owner = None
        record.lease_expires_at = None
        record.wake_at = None if wake_at is None else utc(wake_at)
        record.row_version = progress.row_version
        record.history_seq = progress.history_seq
        return record

    async def _finish(
        self,
        progress: _Progress,
        status: str,
        current_state: str | None,
        data: Any,
        scope: Scope,
        *,
        output: Any = None,
        error: str | None = None,
        cause: str | None = None,
    ) -> ExecutionRecord:
        await self._checkpoint(
            progress,
            status,
            current_state,
            data,
            scope,
            output=output,
            error=error,
            cause=cause,
            final=True,
        )
        record = progress.record
        record.status = status
        record.current_state = current_state
        record.data = data
        record.variables = dict(scope.variables)
        record.output = output if status == S.SUCCEEDED else None
        record.error = None if error is None else str(error)
        record.cause = cause
        record.ended_at = utc(self.clock.now())
        record.lease_owner = None
        record.lease_expires_at = None
        record.wake_at = None
        record.row_version = progress.row_version
        record.history_seq = progress.history_seq
        return record


def _filter_record(filter: ExecutionFilter) -> dict[str, Any]:
    """The filter as JSON-ready data (stored with a batch, to resume it)."""
    out: dict[str, Any] = {}
    for name in ExecutionFilter.__dataclass_fields__:
        value = getattr(filter, name)
        if value is None:
            continue
        if isinstance(value, datetime):
            value = {"$datetime": value.isoformat()}
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def filter_from_record(data: Mapping[str, Any]) -> ExecutionFilter:
    values: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict) and "$datetime" in value:
            value = datetime.fromisoformat(value["$datetime"])
        values[name] = value
    return ExecutionFilter(**values)


def replace_options(base: BatchOptions, stored: Mapping[str, Any], name: str) -> BatchOptions:
    """Options to resume a batch: the stored ones, with callbacks and overrides from ``base``."""
    from dataclasses import replace as dc_replace

    known = {f for f in BatchOptions.__dataclass_fields__ if f not in ("on_start", "on_complete")}
    values = {k: v for k, v in stored.items() if k in known}
    values["name"] = name
    return dc_replace(BatchOptions(**values), on_start=base.on_start, on_complete=base.on_complete)
