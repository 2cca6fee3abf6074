"""The statefleet worker: arq's ``Worker`` serving several queues, one execution per job.

Per job (:meth:`FleetWorker.run_execution`): validate the payload, load the definition by
machine id and version (cached per process), claim the execution with a lease (renewed
while it runs by ``advance``), advance it from its checkpoint, release it. Then:

* ended -> the job finishes (a raised error that ended it FAILED is dead-lettered);
* parked at a long Wait -> the job is re-scored to the wake time (tries reset): the same
  job id wakes it, no worker is held meanwhile;
* a failure the state's Retry/Catch did not handle, or an infrastructure failure (lease
  lost, job timeout) -> arq ``Retry`` after ``2^try`` s capped at 30 s, with full jitter;
  on the last try the execution is FAILED and dead-lettered;
* the database unreachable (connection refused or lost, server shutting down or starting)
  -> the job is re-scored after the same backoff (counted per job by this worker) without
  counting a try: an outage of the database is nobody's last try;
* leased by another runner (a job delivered twice, a takeover before the lease expired) ->
  re-scored to the lease's expiry without counting a try.

What arq's worker keeps: its job records and retry counters, ``run_job`` (timeouts,
``Retry``, results), signals. What this subclass replaces: the dequeue (several queues,
weighted or strict, pause, ``--machines``, in one Lua script: see
:mod:`statefleet.queue.priorities`), the finish (re-scoring parked jobs, daily counters),
the health check (a heartbeat registry per worker that also renews the in-progress locks of
its running jobs, so a killed worker's jobs are free again within ``lock_ttl``), and
shutdown (SIGTERM: stop taking jobs, let running ones finish within ``grace``, then
cancel the rest: their leases are released and their tries given back, so another worker
continues them from their checkpoints at once).

Redis unreachable (a restart, a failover): the main loop logs it, backs off (up to 5 s) and
goes on; a job whose finish could not be written keeps its Redis record and runs again
once its in-progress lock expires (it then finds its execution ended, or continues it from
its checkpoint).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from signal import Signals
from typing import Any

from arq.jobs import SerializationError, deserialize_job_raw, serialize_result
from arq.utils import args_to_string, ms_to_datetime, poll, timestamp_ms
from arq.worker import JobExecutionFailed, Retry, RetryJob, Worker, func, no_result
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from statefleet.app import App
from statefleet.errors import InfrastructureError, NotFoundError
from statefleet.queue import jobs
from statefleet.queue.client import QueueClient, aw
from statefleet.queue.deadletters import record_dead_letter
from statefleet.queue.inspector import job_duration_fields
from statefleet.queue.keys import ARQ_IN_PROGRESS, ARQ_JOB, ARQ_RETRY, Keys, today
from statefleet.queue.priorities import DEQUEUE, QueueSelection, parse_queues
from statefleet.settings import Settings
from statefleet.statemachine.gc_tuning import relaxed_gc
from statefleet.statemachine.lifecycle import TERMINAL, ExecutionStatus
from statefleet.statemachine.persistent import (
    CheckpointWriter,
    GroupWriter,
    JobControl,
    LeaseRenewer,
    PersistentStateMachine,
    default_owner,
)
from statefleet.statemachine.protocols import Store, WaitStatus
from statefleet.statemachine.runtime import ResourceRegistry, SystemClock
from statefleet.store import open_store

__all__ = ["FleetWorker", "WorkerOptions", "backoff", "run_worker", "store_unreachable"]

logger = logging.getLogger(__name__)
#: run_job logs under arq's name, as arq's own run_job does.
arq_logger = logging.getLogger("arq.worker")

S = ExecutionStatus
STATS_TTL_S = 90 * 86400
#: Redis failures the main loop outlives (the server restarting, a network blip).
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError)
REDIS_BACKOFF_CAP_S = 5.0
#: How long a release waits for the writes already sent for its execution (see _release).
RELEASE_SETTLE_S = 5.0
#: Driver errors that mean "the database cannot be reached now" (asyncpg's names).
_UNREACHABLE = frozenset(
    {
        "AdminShutdownError",
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CrashShutdownError",
    }
)


def backoff(job_try: int, *, jitter: bool = True, cap: float = 30.0) -> float:
    """Seconds before try ``job_try + 1``: ``2^job_try`` capped at ``cap``, full jitter."""
    delay = min(cap, 2.0 ** max(1, job_try))
    return random.uniform(0, delay) if jitter else delay


def store_unreachable(exc: BaseException) -> bool:
    """Whether a store failure means the database cannot be reached (connection refused or
    lost, server shutting down or starting up), rather than a failure of this job."""
    if not isinstance(exc, InfrastructureError):
        return False
    seen: set[int] = set()
    current: BaseException | None = exc.__cause__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | ConnectionError) and not isinstance(current, TimeoutError):
            return True
        if getattr(current, "connection_invalidated", False):  # SQLAlchemy: a disconnect
            return True
        if type(current).__name__ in _UNREACHABLE:
            return True
        orig = getattr(current, "orig", None)
        current = (
            current.__cause__
            or (orig if isinstance(orig, BaseException) else None)
            or current.__context__
        )
    return False


@dataclass(frozen=True, kw_only=True)
class WorkerOptions:
    """How a worker runs (``statefleet worker`` options; defaults from :class:`Settings`)."""

    selection: QueueSelection = field(default_factory=QueueSelection)
    concurrency: int = 50
    burst: bool = False
    machines: frozenset[str] | None = None
    poll_delay: float = 0.05
    heartbeat_interval: float = 2.0
    #: TTL of a running job's ``arq:in-progress`` lock; each heartbeat renews it.
    lock_ttl: float = 30.0
    job_timeout: float = 300.0
    park_after: float = 5.0
    grace: float = 30.0
    jitter: bool = True
    backoff_cap: float = 30.0
    keep_result: float = 3600.0
    handle_signals: bool = True
    read_window: int | None = None
    worker_id: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerOptions:
        base = cls(
            selection=QueueSelection(tuple(parse_queues(settings.worker_queues))),
            concurrency=settings.worker_concurrency,
            job_timeout=settings.queue_job_timeout,
            park_after=settings.queue_park_after,
            grace=settings.worker_grace,
            keep_result=settings.queue_keep_result,
        )
        return replace(base, **overrides)


@dataclass(slots=True)
class _Outcome:
    """What the job function decided, for :meth:`FleetWorker.finish_job`."""

    reschedule_ms: int | None = None
    reset_tries: bool = False
    failed: bool = False
    #: parked on a callback wait: once the job is settled, wake it if already answered
    wait: str | None = None


@dataclass(slots=True)
class _Finish:
    """One job to settle in Redis (see :meth:`FleetWorker.finish_job`)."""

    job_id: str
    queue_key: str
    queue: str
    index: str | None  # the job's per-machine queue index
    machine_id: str | None
    seconds: float | None  # its run time, for the histogram
    outcome: _Outcome | None
    finish: bool
    result_data: bytes | None
    result_px: int | None  # result TTL in ms; None: keep forever; 0: do not keep
    incr_score: int | None


@dataclass(slots=True)
class _Counters:
    done: int = 0
    failed: int = 0
    retried: int = 0
    parked: int = 0
    dead: int = 0
    started: float = field(default_factory=time.time)


class FleetWorker(Worker):
    """arq's worker, serving statefleet's queues (see the module docstring)."""

    def __init__(
        self,
        app: App,
        client: QueueClient,
        options: WorkerOptions | None = None,
        *,
        store: Store | None = None,
    ) -> None:
        self.app = app
        self.client = client
        self.options = options = options or WorkerOptions.from_settings(app.settings)
        self.keys: Keys = client.keys
        self.store_: Store | None = store
        self._own_store = store is None
        self.worker_id = options.worker_id or default_owner()
        self.owner = self.worker_id
        self.selection = options.selection
        self.queue_keys = [self.keys.queue(name) for name in self.selection.names]
        self.window = options.read_window or max(options.concurrency * 10, 500)
        self.registry = ResourceRegistry(app.resources)
        self.counters = _Counters()
        self._machines: dict[str, PersistentStateMachine] = {}
        self._machine_lock = asyncio.Lock()
        self._writer: CheckpointWriter | None = None
        self._renewer: LeaseRenewer | None = None  # one for every machine this worker runs
        self._job_queue: dict[str, tuple[str, str]] = {}
        #: job id -> (its record, its try), read by the dequeue script (see run_job)
        self._taken: dict[str, tuple[bytes | None, int]] = {}
        self._job_machine: dict[str, str] = {}  # job id -> machine id (its P:mqueue index)
        self._job_seconds: dict[str, float] = {}  # job id -> how long its run took
        # Jobs ending together are settled in one MULTI/EXEC (see finish_job).
        self._finisher: GroupWriter[_Finish, None] = GroupWriter(self._finish_group, max_batch=500)
        self._outcomes: dict[str, _Outcome] = {}
        self._running: dict[str, str] = {}  # job id -> execution id
        self._outages: dict[str, int] = {}  # job id -> tries deferred for an unreachable store
        self._redis_failures = 0
        self._stopping = False
        #: Paused from the UI (``P:workers:paused``): take no new jobs, finish those held.
        self._paused = False
        self._machine_filter = (
            "," + ",".join(sorted(options.machines)) + "," if options.machines else ""
        )
        super().__init__(
            functions=[
                func(
                    self.run_execution,
                    name=jobs.FUNCTION,
                    max_tries=1_000_000,  # tries are counted by run_execution itself
                    timeout=options.job_timeout + 60,  # a backstop: run_execution times out first
                )
            ],
            queue_name=self.queue_keys[0],
            redis_settings=client.redis_settings,
            burst=options.burst,
            handle_signals=options.handle_signals,
            job_completion_wait=options.grace,  # type: ignore[arg-type]
            max_jobs=options.concurrency,
            keep_result=options.keep_result,
            poll_delay=options.poll_delay,
            max_tries=1_000_000,
            health_check_interval=options.heartbeat_interval,
            health_check_key=self.keys.worker(self.worker_id),
            job_serializer=jobs.dumps,
            job_deserializer=jobs.loads,
            on_startup=self._startup,
            on_shutdown=self._shutdown,
            log_results=False,
        )

    # ---------------------------------------------------------------- lifecycle

    @property
    def store(self) -> Store:
        if self.store_ is None:
            raise InfrastructureError("the worker has not started: no store yet")
        return self.store_

    async def _open_store(self) -> Store:
        """Open the store, waiting for a database that cannot be reached yet (a worker
        started before PostgreSQL, or during an outage) instead of exiting; any other
        failure (a bad URL, a schema error) ends the start at once."""
        delay = 0.5
        while True:
            try:
                settings = self.app.settings
                return await open_store(settings.database_url, **settings.store_options())
            except InfrastructureError as exc:
                if self._stopping or not store_unreachable(exc):
                    raise
                logger.warning(
                    "worker %s: database unreachable at start (%s); retrying in %.1f s",
                    self.worker_id,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _startup(self, ctx: dict[str, Any]) -> None:
        if self.store_ is None:
            self.store_ = await self._open_store()
        self._writer = CheckpointWriter(self.store_)
        self._renewer = LeaseRenewer(
            self.store_, self.owner, self.app.settings.lease_seconds, SystemClock()
        )
        self._dequeue = self.pool.register_script(DEQUEUE)
        # the client shares the worker's pool (dead letters, self-healing re-enqueues)
        if self.client._redis is None:
            self.client._redis = self.pool
        logger.info(
            "worker %s serving %s%s, %d at once",
            self.worker_id,
            ", ".join(f"{n}:{w}" for n, w in self.selection.queues),
            " (strict)" if self.selection.strict else "",
            self.max_jobs,
        )
        self._last_health_check = 0
        await self.record_health()

    async def _shutdown(self, ctx: dict[str, Any]) -> None:
        try:
            async with self.pool.pipeline(transaction=False) as pipe:
                pipe.delete(self.keys.worker(self.worker_id))
                pipe.zrem(self.keys.workers, self.worker_id)
                await pipe.execute()
        finally:
            if self.client._redis is self.pool:
                self.client._redis = None
            if self._renewer is not None:
                await self._renewer.close()
            if self._own_store and self.store_ is not None:
                await self.store_.close()
                self.store_ = None

    def handle_sig(self, signum: Signals) -> None:
        self._stopping = True
        super().handle_sig(signum)

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        self._stopping = True
        super().handle_sig_wait_for_completion(signum)

    async def close(self) -> None:
        """arq's close, with redis-py 5's ``aclose``."""
        if not self._handle_signals:
            self.handle_sig(Signals.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        await self.pool.aclose(close_connection_pool=True)
        self._pool = None

    async def main(self) -> None:
        """arq's main loop, with a burst check over every served queue."""
        if self._pool is None:
            from arq.connections import create_pool

            self._pool = await create_pool(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.queue_name,
            )
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        with relaxed_gc():
            await self._serve()

    async def _serve(self) -> None:
        async for _ in poll(self.poll_delay_s):
            try:
                await self._poll_iteration()
                if self.burst and not self.tasks and await self._queued() == 0:
                    return
            except REDIS_DOWN as exc:
                await self._redis_down(exc)
            else:
                if self._redis_failures:
                    logger.warning("worker %s: Redis is back", self.worker_id)
                    self._redis_failures = 0

    async def _redis_down(self, exc: BaseException) -> None:
        """Redis is unreachable: say so (once per outage), wait, and let the loop retry."""
        self._redis_failures += 1
        delay = min(REDIS_BACKOFF_CAP_S, 0.1 * 2 ** min(self._redis_failures, 10))
        if self._redis_failures == 1:
            logger.warning(
                "worker %s: Redis unreachable (%s: %s); retrying every %.1f s at most",
                self.worker_id,
                type(exc).__name__,
                exc,
                REDIS_BACKOFF_CAP_S,
            )
        await asyncio.sleep(delay)

    async def _queued(self) -> int:
        paused = {p.decode() for p in await aw(self.pool.smembers(self.keys.paused))}
        async with self.pool.pipeline(transaction=False) as pipe:
            for name, key in zip(self.selection.names, self.queue_keys, strict=True):
                if name not in paused:
                    pipe.zcard(key)
            sizes = await pipe.execute()
        return sum(int(size) for size in sizes)

    # ---------------------------------------------------------------- dequeue

    async def _poll_iteration(self) -> None:
        free = self.max_jobs - self.job_counter
        if self.allow_pick_jobs and free > 0 and not self._stopping and not self._paused:
            await self._take(free)
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                try:
                    task.result()
                except REDIS_DOWN as exc:
                    # its Redis record stays: it runs again once its in-progress lock expires
                    logger.warning("job %s: Redis unreachable while it ran (%s)", job_id, exc)
        await self.heart_beat()

    async def _take(self, free: int) -> None:
        names = self.selection.names
        draws = [d + 1 for d in self.selection.draws(free)]
        args: list[Any] = [
            timestamp_ms(),
            ARQ_IN_PROGRESS,
            int(self.options.lock_ttl * 1000),
            self.window,
            self.keys.machine_queue_prefix,
            self._machine_filter,
            ARQ_JOB,
            ARQ_RETRY,
            len(names),
            *names,
            *draws,
        ]
        taken = await self._dequeue(keys=[self.keys.paused, *self.queue_keys], args=args)
        for index in range(0, len(taken), 5):
            queue_index = int(taken[index]) - 1
            job_id = taken[index + 1]
            job_id = job_id.decode() if isinstance(job_id, bytes) else str(job_id)
            score = int(float(taken[index + 2]))
            await self.sem.acquire()  # never waits: no more jobs than free slots
            self.job_counter += 1
            self._job_queue[job_id] = (self.queue_keys[queue_index], names[queue_index])
            self._taken[job_id] = (taken[index + 3], int(taken[index + 4]))
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    # ---------------------------------------------------------------- run

    async def run_job(self, job_id: str, score: int) -> None:
        """arq's ``run_job`` for a job the dequeue script took: the script already read the
        job's record and counted its try (arq does that in a MULTI/EXEC of its own per job),
        so the job starts without a round trip. The rest is arq's: logging, the timeout,
        ``Retry`` and cancellation, the result, ``finish_job``."""
        taken = self._taken.pop(job_id, None)
        if taken is None or self.allow_abort_jobs:
            await super().run_job(job_id, score)
            return
        raw, job_try = taken
        start_ms = timestamp_ms()
        function_name, enqueue_time_ms = "<unknown>", 0
        args: tuple[Any, ...] = ()
        kwargs: dict[Any, Any] = {}

        def serialized(success: bool, result: Any, finished_ms: int) -> bytes | None:
            return serialize_result(
                function_name,
                args,
                kwargs,
                job_try,
                enqueue_time_ms,
                success,
                result,
                start_ms,
                finished_ms,
                f"{job_id}:{function_name}",
                self.queue_name,
                job_id=job_id,
                serializer=self.job_serializer,
            )

        async def job_failed(exc: BaseException) -> None:
            self.jobs_failed += 1
            result_data = serialized(False, exc, timestamp_ms())
            await asyncio.shield(self.finish_failed_job(job_id, result_data))

        if not raw:
            arq_logger.warning("job %s expired", job_id)
            await job_failed(JobExecutionFailed("job expired"))
            return
        try:
            function_name, args, kwargs, enqueue_job_try, enqueue_time_ms = deserialize_job_raw(
                raw, deserializer=self.job_deserializer
            )
        except SerializationError as exc:
            arq_logger.exception("deserializing job %s failed", job_id)
            await job_failed(exc)
            return
        function = self.functions.get(function_name)
        if function is None:
            arq_logger.warning("job %s, function %r not found", job_id, function_name)
            await job_failed(JobExecutionFailed(f"function {function_name!r} not found"))
            return
        ref = f"{job_id}:{function_name}"
        if enqueue_job_try and enqueue_job_try > job_try:
            job_try = enqueue_job_try
            await self.pool.setex(self.keys.retry(job_id), 88400, str(job_try))
        max_tries = self.max_tries if function.max_tries is None else function.max_tries
        if job_try > max_tries:
            arq_logger.warning("%s max retries %d exceeded", ref, max_tries)
            await job_failed(JobExecutionFailed(f"max {max_tries} retries exceeded"))
            return

        result: Any = no_result
        finish = False
        success = False
        timeout_s = self.job_timeout_s if function.timeout_s is None else function.timeout_s
        incr_score: int | None = None
        ctx = {
            **self.ctx,
            "job_id": job_id,
            "job_try": job_try,
            "enqueue_time": ms_to_datetime(enqueue_time_ms),
            "score": score,
        }
        if self.on_job_start:
            await self.on_job_start(ctx)
        start_ms = timestamp_ms()
        if arq_logger.isEnabledFor(logging.INFO):
            extra = f" try={job_try}" if job_try > 1 else ""
            if start_ms - score > 1200:
                extra += f" delayed={(start_ms - score) / 1000:0.2f}s"
            arq_logger.info(
                "%6.2fs → %s(%s)%s",
                (start_ms - enqueue_time_ms) / 1000,
                ref,
                args_to_string(args, kwargs),
                extra,
            )
        try:
            self.job_tasks[job_id] = task = self.loop.create_task(
                function.coroutine(ctx, *args, **kwargs)
            )
            try:
                result = await asyncio.wait_for(task, timeout_s)
            finally:
                del self.job_tasks[job_id]
        except (Exception, asyncio.CancelledError) as exc:
            finished_ms = timestamp_ms()
            t = (finished_ms - start_ms) / 1000
            if self.retry_jobs and isinstance(exc, Retry):
                incr_score = exc.defer_score
                arq_logger.info(
                    "%6.2fs ↻ %s retrying job in %0.2fs", t, ref, (exc.defer_score or 0) / 1000
                )
                if exc.defer_score:
                    incr_score = exc.defer_score + (timestamp_ms() - score)
                self.jobs_retried += 1
            elif self.retry_jobs and isinstance(exc, (asyncio.CancelledError, RetryJob)):
                arq_logger.info("%6.2fs ↻ %s cancelled, will be run again", t, ref)
                self.jobs_retried += 1
            else:
                arq_logger.exception(
                    "%6.2fs ! %s failed, %s: %s", t, ref, exc.__class__.__name__, exc
                )
                result = exc
                finish = True
                self.jobs_failed += 1
        else:
            success = True
            finished_ms = timestamp_ms()
            arq_logger.info("%6.2fs ← %s ●", (finished_ms - start_ms) / 1000, ref)
            finish = True
            self.jobs_complete += 1

        keep_result_forever = (
            self.keep_result_forever
            if function.keep_result_forever is None
            else function.keep_result_forever
        )
        result_timeout_s = (
            self.keep_result_s if function.keep_result_s is None else function.keep_result_s
        )
        result_data = None
        if result is not no_result and (keep_result_forever or result_timeout_s > 0):
            result_data = serialized(success, result, finished_ms)
        if self.on_job_end:
            await self.on_job_end(ctx)
        await asyncio.shield(
            self.finish_job(
                job_id,
                finish,
                result_data,
                result_timeout_s,
                keep_result_forever,
                incr_score,
                None,
            )
        )
        if self.after_job_end:
            await self.after_job_end(ctx)

    # ---------------------------------------------------------------- finish

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """Settle a job that ran. Jobs ending at the same time share one MULTI/EXEC: their
        keys deleted together, one ZREM per queue, the run time histogram and the daily
        counters added up once per group. (arq's own finish_job is a transaction per job.)"""
        queue_key, queue = self._job_queue.pop(job_id, (self.queue_name, "?"))
        outcome = self._outcomes.pop(job_id, None)
        machine_id = self._job_machine.pop(job_id, None)
        keep = bool(result_data) and (keep_result_forever or (result_timeout_s or 0) > 0)
        px = None if keep_result_forever else int((result_timeout_s or 0) * 1000)
        await self._finisher.submit(
            _Finish(
                job_id=job_id,
                queue_key=queue_key,
                queue=queue,
                index=None if machine_id is None else self.keys.machine_queue(queue, machine_id),
                machine_id=machine_id,
                seconds=self._job_seconds.pop(job_id, None),
                outcome=outcome,
                finish=finish,
                result_data=result_data if keep else None,
                result_px=px,
                incr_score=incr_score,
            )
        )
        if outcome is not None and outcome.wait is not None:
            await self._wake_if_answered(job_id, outcome.wait, queue)

    async def _finish_group(self, items: list[_Finish]) -> list[None]:
        """One MULTI/EXEC for a group of finished jobs (see :meth:`finish_job`)."""
        removed: dict[str, list[str]] = {}
        counts: dict[str, int] = {}
        sums: dict[str, float] = {}
        done: dict[tuple[str, str], int] = {}
        async with self.pool.pipeline(transaction=True) as tr:
            for item in items:
                job_id = item.job_id
                if item.seconds is not None:  # the job run time histogram (P:stats:jobtime)
                    bucket, total, count = job_duration_fields(
                        item.queue, item.machine_id or "?", item.seconds
                    )
                    counts[bucket] = counts.get(bucket, 0) + 1
                    counts[count] = counts.get(count, 0) + 1
                    sums[total] = sums.get(total, 0.0) + item.seconds
                outcome = item.outcome
                if outcome is not None and outcome.reschedule_ms is not None:
                    tr.delete(self.keys.in_progress(job_id))
                    tr.zadd(item.queue_key, {job_id: outcome.reschedule_ms})
                    if item.index is not None:
                        tr.zadd(item.index, {job_id: outcome.reschedule_ms})
                    if outcome.reset_tries:
                        tr.delete(self.keys.retry(job_id))
                    else:
                        tr.decr(self.keys.retry(job_id))
                elif item.finish:
                    if item.result_data is not None:
                        tr.set(self.keys.result(job_id), item.result_data, px=item.result_px)
                    tr.delete(
                        self.keys.in_progress(job_id),
                        self.keys.retry(job_id),
                        self.keys.job(job_id),
                    )
                    removed.setdefault(item.queue_key, []).append(job_id)
                    if item.index is not None:
                        removed.setdefault(item.index, []).append(job_id)
                    kinds = (
                        ("processed", "failed") if outcome and outcome.failed else ("processed",)
                    )
                    for kind in kinds:
                        done[kind, item.queue] = done.get((kind, item.queue), 0) + 1
                elif item.incr_score:
                    tr.delete(self.keys.in_progress(job_id))
                    tr.zincrby(item.queue_key, item.incr_score, job_id)
                elif self._stopping:  # cancelled by a shutdown: not the job's fault
                    tr.delete(self.keys.in_progress(job_id))
                    tr.decr(self.keys.retry(job_id))
                else:
                    tr.delete(self.keys.in_progress(job_id))
            for key, job_ids in removed.items():
                tr.zrem(key, *job_ids)
            for name, number in counts.items():
                tr.hincrby(self.keys.job_durations, name, number)
            for name, seconds in sums.items():
                tr.hincrbyfloat(self.keys.job_durations, name, seconds)
            day = today()
            for (kind, queue), number in done.items():
                key = self.keys.stats(kind, queue, day)
                tr.incrby(key, number)
                tr.expire(key, STATS_TTL_S)
            await tr.execute()
        return [None] * len(items)

    async def _wake_if_answered(self, job_id: str, wait_id: str, queue: str) -> None:
        """A callback answered while its execution was parking (after the runner looked,
        before the job was settled here) may have found the job still running and its
        wake overwritten: look again now that the job is settled."""
        try:
            wait = await self.store.get_wait(wait_id=wait_id)
            if wait is None or wait.status == WaitStatus.WAITING:
                return
            record = await self.store.get_execution(wait.execution_id)
            if record is not None and record.status not in TERMINAL:
                await self.client.wake(record, queue=queue)
        except Exception:
            logger.warning("job %s: could not check its callback wait", job_id, exc_info=True)

    def _count(self, pipe: Any, queue: str, *, failed: bool) -> None:
        day = today()
        for kind in ("processed", "failed") if failed else ("processed",):
            key = self.keys.stats(kind, queue, day)
            pipe.incr(key)
            pipe.expire(key, STATS_TTL_S)

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """arq failed the job without running it (payload unreadable, function unknown,
        job record gone): dead-letter it, or re-create a lost job record."""
        queue_key, queue = self._job_queue.get(job_id, (self.queue_name, "?"))
        raw = await self.pool.get(self.keys.job(job_id))
        async with self.pool.pipeline(transaction=True) as tr:
            tr.delete(self.keys.retry(job_id), self.keys.in_progress(job_id), self.keys.job(job_id))
            tr.zrem(queue_key, job_id)
            self._count(tr, queue, failed=raw is not None)
            await tr.execute()
        self._job_queue.pop(job_id, None)
        try:
            await self._unreadable(job_id, queue, raw, result_data)
        except Exception:
            logger.exception("job %s: could not dead-letter it", job_id)

    async def _unreadable(
        self, job_id: str, queue: str, raw: bytes | None, result_data: bytes | None
    ) -> None:
        execution_id = self.keys.execution_id(job_id)
        if raw is None:  # the job record was deleted: re-create it if the execution is alive
            if execution_id is None:
                return
            record = await self.store.get_execution(execution_id)
            if record is not None and record.status not in TERMINAL:
                logger.warning("job %s lost its record: enqueued again", job_id)
                await self.client.enqueue([record], queue=queue)
            return
        reason = jobs.describe_payload_error(raw)
        try:
            result = jobs.loads(result_data) if result_data else {}
            message = result.get("r", {}).get("message") if isinstance(result, dict) else None
        except ValueError:
            message = None
        if message and "not found" in message:
            reason = f"{message}; {reason}"
        self.counters.dead += 1
        self.counters.failed += 1
        await record_dead_letter(
            self.store,
            self.client,
            execution_id=execution_id,
            error=jobs.PayloadError.error,
            cause=reason,
            job_id=job_id,
            queue=queue,
            tries=1,
            payload=raw.decode("utf-8", "replace")[:10_000],
        )

    # ---------------------------------------------------------------- heartbeat

    async def record_health(self) -> None:
        """Heartbeat: this worker's entry in the registry, and the locks of its jobs."""
        now = time.time()
        if now - self._last_health_check < self.health_check_interval:
            return
        self._last_health_check = now
        ttl_ms = int((self.health_check_interval * 3 + 1) * 1000)
        running = sorted(self._running.values())
        info = {
            "id": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.selection.names,
            "weights": dict(self.selection.queues),
            "strict": self.selection.strict,
            "machines": sorted(self.options.machines) if self.options.machines else None,
            "concurrency": self.max_jobs,
            "running": running,
            "done": self.counters.done,
            "failed": self.counters.failed,
            "retried": self.counters.retried,
            "parked": self.counters.parked,
            "dead": self.counters.dead,
            "started": datetime.fromtimestamp(self.counters.started, UTC).isoformat(),
            "last_seen": datetime.fromtimestamp(now, UTC).isoformat(),
            "stopping": self._stopping,
            "paused": self._paused,
        }
        lock_ms = int(self.options.lock_ttl * 1000)
        paused = bool(await aw(self.pool.sismember(self.keys.paused_workers, self.worker_id)))
        if paused != self._paused:
            logger.info("worker %s %s", self.worker_id, "paused" if paused else "resumed")
            self._paused = paused
            info["paused"] = paused
        async with self.pool.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.worker(self.worker_id), json.dumps(info), px=ttl_ms)
            pipe.zadd(self.keys.workers, {self.worker_id: int(now * 1000)})
            for job_id, task in self.tasks.items():
                if not task.done():
                    pipe.pexpire(self.keys.in_progress(job_id), lock_ms)
            await pipe.execute()

    # ---------------------------------------------------------------- the job

    async def machine(self, machine_id: str, version: str) -> PersistentStateMachine:
        found = self._machines.get(machine_id)
        if found is not None:
            return found
        async with self._machine_lock:
            found = self._machines.get(machine_id)
            if found is None:
                found = await PersistentStateMachine.load(
                    machine_id,
                    store=self.store,
                    version=version,
                    resources=self.registry,
                    transformers=self.app.transformers,
                    owner=self.owner,
                    lease_seconds=self.app.settings.lease_seconds,
                    writer=self._writer,
                    renewer=self._renewer,
                )
                self._machines[machine_id] = found
        return found

    async def run_execution(self, ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """The arq job function: run one execution (see the module docstring)."""
        started = time.monotonic()
        try:
            return await self._execution_job(ctx, *args, **kwargs)
        finally:
            self._job_seconds[ctx["job_id"]] = time.monotonic() - started

    async def _execution_job(self, ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        job_id: str = ctx["job_id"]
        job_try: int = ctx["job_try"]
        queue = self._job_queue.get(job_id, ("", "?"))[1]
        try:
            if args:
                raise jobs.PayloadError("statefleet jobs take no positional arguments")
            payload = jobs.parse_payload(kwargs)
            if self.keys.execution_id(job_id) != payload.execution_id:
                raise jobs.PayloadError(
                    f"job id {job_id!r} does not match its execution {payload.execution_id!r}"
                )
        except jobs.PayloadError as exc:
            await self._dead(
                job_id,
                self.keys.execution_id(job_id),
                jobs.PayloadError.error,
                str(exc),
                job_try,
                queue,
                payload=jobs.dumps({"a": list(args), "k": kwargs}).decode(),
            )
            return {"outcome": "dead-letter", "error": str(exc)}
        self._job_machine[job_id] = payload.machine_id
        if payload.execution_id in self._running.values():  # delivered twice to this process
            self._outcomes[job_id] = _Outcome(reschedule_ms=timestamp_ms() + 1000)
            return {"outcome": "deferred"}
        self._running[job_id] = payload.execution_id
        try:
            return await self._run(job_id, job_try, payload)
        finally:
            self._running.pop(job_id, None)

    async def _dead(
        self,
        job_id: str,
        execution_id: str | None,
        error: str,
        cause: str | None,
        tries: int,
        queue: str,
        *,
        payload: str | None = None,
    ) -> None:
        self.counters.dead += 1
        self.counters.failed += 1
        self._outcomes[job_id] = _Outcome(failed=True)
        await record_dead_letter(
            self.store,
            self.client,
            execution_id=execution_id,
            error=error,
            cause=cause,
            job_id=job_id,
            queue=queue,
            tries=tries,
            payload=payload,
        )

    def _retry(self, job_try: int, reason: str, execution_id: str) -> Retry:
        delay = backoff(job_try, jitter=self.options.jitter, cap=self.options.backoff_cap)
        self.counters.retried += 1
        logger.info(
            "execution %s: try %d failed (%s); retrying in %.1f s",
            execution_id,
            job_try,
            reason,
            delay,
            extra={"execution_id": execution_id},
        )
        return Retry(defer=delay)

    async def _run(self, job_id: str, job_try: int, payload: jobs.JobPayload) -> Any:
        execution_id = payload.execution_id
        if job_try > payload.max_tries:
            await self._dead(
                job_id,
                execution_id,
                "statefleet.MaxTriesExceeded",
                f"the job was tried {job_try - 1} time(s) without finishing (its worker was "
                "lost, it timed out, or the database was unreachable)",
                job_try - 1,
                payload.queue,
            )
            return {"outcome": "dead-letter"}
        last_try = job_try >= payload.max_tries
        try:
            machine = await self.machine(payload.machine_id, payload.version)
            record = await machine.claim(execution_id)
            self._outages.pop(job_id, None)
            if record is None:
                return await self._not_claimed(job_id, execution_id)
        except NotFoundError as exc:
            await self._dead(
                job_id,
                execution_id,
                "statefleet.DefinitionNotFound",
                str(exc),
                job_try,
                payload.queue,
            )
            return {"outcome": "dead-letter"}
        except InfrastructureError as exc:
            return await self._infrastructure(job_id, job_try, payload, exc, last_try)
        control = JobControl(
            park_after=self.options.park_after, retry_failures=not last_try, queue=payload.queue
        )
        try:
            async with asyncio.timeout(self.options.job_timeout):
                final = await machine.advance(record, control)
        except asyncio.CancelledError:
            await asyncio.shield(self._release(execution_id))
            raise
        except TimeoutError:
            await self._release(execution_id)
            reason = f"the job timed out after {self.options.job_timeout:g} s"
            return await self._infrastructure(
                job_id, job_try, payload, TimeoutError(reason), last_try
            )
        except Exception as exc:
            await self._release(execution_id)
            return await self._infrastructure(job_id, job_try, payload, exc, last_try)
        return await self._settle(job_id, job_try, payload, final.status, control)

    async def _settle(
        self,
        job_id: str,
        job_try: int,
        payload: jobs.JobPayload,
        status: str,
        control: JobControl,
    ) -> Any:
        execution_id = payload.execution_id
        if status == S.WAITING and control.wait is not None:  # a callback: no deadline, no job
            self.counters.parked += 1
            until = control.parked_until
            self._outcomes[job_id] = _Outcome(
                reschedule_ms=None if until is None else int(until * 1000),
                reset_tries=True,
                wait=control.wait,
            )
            return {"outcome": "parked", "until": until, "wait": control.wait}
        if status == S.WAITING and control.parked_until is not None:
            self.counters.parked += 1
            self._outcomes[job_id] = _Outcome(
                reschedule_ms=int(control.parked_until * 1000), reset_tries=True
            )
            return {"outcome": "parked", "until": control.parked_until}
        failure = control.failure
        if control.handed_back and failure is not None:
            raise self._retry(job_try, f"{failure.error}: {failure.cause}", execution_id)
        self.counters.done += 1
        if status == S.FAILED and failure is not None and failure.retryable is not None:
            tries = "is not retryable" if not failure.retryable else f"failed {job_try} tries"
            self.counters.dead += 1
            self.counters.failed += 1
            self._outcomes[job_id] = _Outcome(failed=True)
            await record_dead_letter(
                self.store,
                self.client,
                execution_id=execution_id,
                error=failure.error,
                cause=failure.cause,
                job_id=job_id,
                queue=payload.queue,
                tries=job_try,
            )
            logger.info("execution %s %s: dead-lettered", execution_id, tries)
            return {"outcome": "dead-letter", "error": failure.error}
        if status != S.SUCCEEDED:
            self.counters.failed += 1
            self._outcomes[job_id] = _Outcome(failed=status in TERMINAL)
        return {"outcome": status}

    async def _not_claimed(self, job_id: str, execution_id: str) -> Any:
        current = await self.store.get_execution(execution_id)
        if current is None:
            logger.warning("job %s: execution %s does not exist; dropped", job_id, execution_id)
            return {"outcome": "missing"}
        if current.status in TERMINAL:
            return {"outcome": f"already {current.status}"}
        # leased by another runner: try again when its lease expires, without counting a try
        expires = current.lease_expires_at or datetime.now(UTC)
        at = max(expires, datetime.now(UTC) + timedelta(seconds=0.5))
        jitter = random.uniform(0, 0.5)
        self._outcomes[job_id] = _Outcome(reschedule_ms=int((at.timestamp() + jitter) * 1000))
        return {"outcome": "leased elsewhere"}

    async def _infrastructure(
        self,
        job_id: str,
        job_try: int,
        payload: jobs.JobPayload,
        exc: BaseException,
        last_try: bool,
    ) -> Any:
        reason = f"{type(exc).__name__}: {exc}"
        if store_unreachable(exc):
            return self._wait_for_store(job_id, payload.execution_id, reason)
        if not last_try:
            raise self._retry(job_try, reason, payload.execution_id) from exc
        logger.error("execution %s: last try failed: %s", payload.execution_id, reason)
        await self._dead(
            job_id,
            payload.execution_id,
            "statefleet.InfrastructureError"
            if isinstance(exc, InfrastructureError)
            else f"statefleet.{type(exc).__name__}",
            reason,
            job_try,
            payload.queue,
        )
        return {"outcome": "dead-letter"}

    def _wait_for_store(self, job_id: str, execution_id: str, reason: str) -> Any:
        """The database is unreachable: run the job again after a backoff, without counting
        the try (its lease, if it had one, expires meanwhile)."""
        deferred = self._outages[job_id] = self._outages.get(job_id, 0) + 1
        delay = backoff(deferred, jitter=self.options.jitter, cap=self.options.backoff_cap)
        self.counters.retried += 1
        logger.warning(
            "execution %s: database unreachable (%s); retrying in %.1f s, the try not counted",
            execution_id,
            reason,
            delay,
            extra={"execution_id": execution_id},
        )
        self._outcomes[job_id] = _Outcome(reschedule_ms=timestamp_ms() + int(delay * 1000))
        return {"outcome": "store unreachable", "retry_in": delay}

    async def _release(self, execution_id: str) -> None:
        """Give the lease up (expire it now) so that another runner continues at once.

        First let the checkpoint and the lease renewal already sent for it land (a job
        cancelled while its checkpoint was in a shared transaction still has it written):
        either would otherwise extend the lease again after this release."""
        try:
            if self._writer is not None:
                await self._writer.settle(RELEASE_SETTLE_S)
            if self._renewer is not None:
                await self._renewer.settle(RELEASE_SETTLE_S)
            await self.store.renew_lease(
                execution_id, self.owner, datetime.now(UTC) - timedelta(seconds=1)
            )
        except Exception:
            logger.warning("execution %s: could not release its lease", execution_id)


async def run_worker(
    app: App,
    options: WorkerOptions | None = None,
    *,
    client: QueueClient | None = None,
    store: Store | None = None,
) -> FleetWorker:
    """Run a worker until it is stopped (SIGTERM/SIGINT) or, in burst mode, until its queues
    are empty; returns it (with its counters)."""
    client = client or QueueClient.from_settings(app.settings)
    worker = FleetWorker(app, client, options, store=store)
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        if not worker._stopping:
            raise
    finally:
        await worker.close()
    return worker


def machines_option(values: Iterable[str] | None) -> frozenset[str] | None:
    names = frozenset(v.strip() for value in values or () for v in value.split(",") if v.strip())
    return names or None


__all__ += ["machines_option"]
