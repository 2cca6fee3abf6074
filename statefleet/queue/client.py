"""``QueueClient``: the distributed mode's entry point, and its batch dispatcher.

::

    client = QueueClient.from_settings(Settings())          # or QueueClient("redis://...")
    sm.set_queue_client(client)                             # sm.set_queue_client(None): local
    batch = await sm.execute_batch(filter, options=BatchOptions(priority="critical"))
    await batch.wait()                                      # follows the store

With a client attached, a batch creates its executions QUEUED in bulk (a chunk per
transaction) and enqueues one arq job per execution. Enqueueing does not go through
``ArqRedis.enqueue_job`` (a WATCH/MULTI round trip per job: ~4,400 jobs/s): one Lua script
call (:data:`ENQUEUE`) writes a whole chunk (1,000 jobs by default) — for each job
``SET arq:job:<id> <payload> NX`` and, if that set it, ``ZADD <queue> <score> <id>``: exactly
arq's layout (see :mod:`statefleet.queue.keys`), so arq's worker and ``Job`` read it — and
``ZADD P:mqueue:<queue>:<machine> <score> <id>``, the index ``--machines`` workers read.
``NX`` makes enqueueing idempotent: the job id is the execution's, and an execution whose job
is pending or running is not enqueued again. Job records get no TTL (arq gives them a day
past their start time): a job scheduled far ahead, or parked for a week, does not expire.

The batch's ``_drive`` task then follows the store until every execution of the batch has
ended, applying ``stop_on_error`` and the tolerated failures by aborting what has not started.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlparse

from arq.connections import ArqRedis, RedisSettings, create_pool

from statefleet.errors import InfrastructureError, StatefleetError
from statefleet.queue import jobs
from statefleet.queue.keys import ARQ_JOB, Keys
from statefleet.queue.priorities import queue_for
from statefleet.settings import Settings
from statefleet.statemachine.lifecycle import ExecutionStatus
from statefleet.statemachine.protocols import ExecutionFilter, ExecutionRecord

if TYPE_CHECKING:
    from statefleet.statemachine.batch import Batch, BatchOptions, Source
    from statefleet.statemachine.persistent import PersistentStateMachine

__all__ = [
    "ENQUEUE",
    "WAKE",
    "QueueClient",
    "QueueClientClosedError",
    "QueueFullError",
    "aw",
    "redis_settings_from_url",
]

logger = logging.getLogger(__name__)

S = ExecutionStatus
ACTIVE = (S.QUEUED.value, S.RUNNING.value, S.WAITING.value)
FAILURES = (S.FAILED.value, S.TIMED_OUT.value, S.ABORTED.value)

#: KEYS[1] = queue zset, KEYS[2] = queue registry set.
#: ARGV[1] = arq job key prefix, ARGV[2] = queue name, then (job id, score, payload) triples.
ENQUEUE = """
local added = 0
for i = 4, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call('SET', ARGV[1] .. id, ARGV[i + 2], 'NX') then
    redis.call('ZADD', KEYS[1], ARGV[i + 1], id)
    redis.call('ZADD', ARGV[3] .. ARGV[i + 3], ARGV[i + 1], id)
    added = added + 1
  end
end
redis.call('SADD', KEYS[2], ARGV[2])
return added
"""


#: Wake one execution's job now. KEYS[1] = queue zset, KEYS[2] = queue registry set.
#: ARGV[1] = job key, ARGV[2] = job id, ARGV[3] = score (now, ms), ARGV[4] = payload,
#: ARGV[5] = queue name. Creates the job if it has none; re-scores a deferred one (a timeout
#: or a heartbeat deadline) to now. 1 = created, 2 = brought forward, 3 = already due,
#: 0 = its job exists but is not in this queue.
WAKE = """
if redis.call('SET', ARGV[1], ARGV[4], 'NX') then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[5])
  return 1
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score then
  return 0
end
if tonumber(score) > tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  return 2
end
return 3
"""


class QueueClientClosedError(StatefleetError):
    """The queue client was closed and is used again."""


class QueueFullError(StatefleetError):
    """The queue is at its maximum depth: the batch is refused (nothing is dropped)."""


def redis_settings_from_url(url: str) -> RedisSettings:
    """arq's RedisSettings for ``redis://``, ``rediss://`` (TLS), ``unix://`` and
    ``redis+sentinel://[:password@]host:port[,host:port...]/<master>[/<db>]``
    (``rediss+sentinel://`` for TLS)."""
    parsed = urlparse(url)
    if parsed.scheme in ("redis+sentinel", "rediss+sentinel"):
        netloc = parsed.netloc.rpartition("@")[2]
        hosts: list[tuple[str, int]] = []
        for item in netloc.split(","):
            host, _, port = item.partition(":")
            hosts.append((host or "localhost", int(port or 26379)))
        parts = [p for p in parsed.path.split("/") if p]
        query_db = parse_qs(parsed.query).get("db")
        database = int(query_db[0]) if query_db else int(parts[1]) if len(parts) > 1 else 0
        return RedisSettings(
            host=hosts,
            sentinel=True,
            sentinel_master=parts[0] if parts else "mymaster",
            ssl=parsed.scheme.startswith("rediss"),
            password=unquote(parsed.password) if parsed.password else None,
            username=unquote(parsed.username) if parsed.username else None,
            database=database,
        )
    return RedisSettings.from_dsn(url)


@dataclass(frozen=True, slots=True)
class _Defaults:
    max_tries: int
    max_depth: int | None
    wait_when_full: bool
    chunk_size: int
    follow_interval: float


class QueueClient:
    """Enqueues executions as arq jobs and dispatches distributed batches."""

    def __init__(
        self,
        redis: str | RedisSettings | ArqRedis,
        *,
        prefix: str = "statefleet",
        max_tries: int = 3,
        max_depth: int | None = None,
        wait_when_full: bool = False,
        chunk_size: int = 1000,
        follow_interval: float = 0.25,
    ) -> None:
        if isinstance(redis, ArqRedis):
            self._redis: ArqRedis | None = redis
            self._settings: RedisSettings | None = None
        else:
            self._redis = None
            self._settings = redis if isinstance(redis, RedisSettings) else None
            if isinstance(redis, str):
                self._settings = redis_settings_from_url(redis)
        self.keys = Keys(prefix)
        if max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {max_tries}")
        self.defaults = _Defaults(max_tries, max_depth, wait_when_full, chunk_size, follow_interval)
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> QueueClient:
        """The client the settings describe (``STATEFLEET_REDIS_URL`` or ``REDIS_*``)."""
        settings = settings or Settings()
        url = settings.resolved_redis_url()
        if url is None:
            raise StatefleetError(
                "no Redis configured: set STATEFLEET_REDIS_URL (or REDIS_URL / REDIS_HOST)"
            )
        options: dict[str, Any] = {
            "prefix": settings.queue_prefix,
            "max_tries": settings.queue_max_tries,
            "max_depth": settings.queue_max_depth,
        }
        options.update(overrides)
        return cls(url, **options)

    def __repr__(self) -> str:
        return f"<QueueClient prefix={self.keys.prefix!r}>"

    @property
    def redis_settings(self) -> RedisSettings | None:
        return self._settings

    async def redis(self) -> ArqRedis:
        """The connection pool (opened on first use, with arq's JSON (de)serialiser set).

        Raises `QueueClientClosedError` once `close` was called: a pool opened then (by a
        batch still enqueueing, say) would have no one left to close it."""
        if self._redis is None:
            async with self._lock:
                if self._closed:
                    raise QueueClientClosedError(
                        f"{self!r} is closed (QueueClient.close() was called): "
                        "open a new QueueClient to reach Redis again"
                    )
                if self._redis is None:
                    self._redis = await create_pool(
                        self._settings,
                        job_serializer=jobs.dumps,
                        job_deserializer=jobs.loads,
                    )
        return self._redis

    async def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._closed = True
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> QueueClient:
        await self.redis()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- enqueueing

    async def enqueue(
        self,
        records: Sequence[ExecutionRecord],
        *,
        queue: str = "default",
        max_tries: int | None = None,
        run_at: datetime | float | None = None,
    ) -> int:
        """Enqueue one job per execution (chunked, one script call per chunk); returns how
        many were new. ``run_at`` (datetime or epoch seconds) defers them; a WAITING
        execution's job is deferred to its wake time."""
        if not records:
            return 0
        redis = await self.redis()
        tries = max_tries or self.defaults.max_tries
        now_ms = int(time.time() * 1000)
        default_score = now_ms if run_at is None else _epoch_ms(run_at)
        added = 0
        keys = [self.keys.queue(queue), self.keys.queues]
        size = max(1, self.defaults.chunk_size)
        for start in range(0, len(records), size):
            args: list[Any] = [ARQ_JOB, queue, self.keys.machine_queue(queue, "")]
            for record in records[start : start + size]:
                payload = jobs.JobPayload(
                    record.id, record.state_machine_id, record.version, queue, tries
                )
                score = default_score
                if record.wake_at is not None:
                    score = max(score, _epoch_ms(record.wake_at))
                args += [
                    self.keys.job_id(record.id),
                    score,
                    jobs.encode_job(payload, now_ms),
                    record.state_machine_id,
                ]
            added += int(await aw(redis.eval(ENQUEUE, 2, *keys, *args)))
        return added

    async def wake(
        self, record: ExecutionRecord, *, queue: str | None = None, max_tries: int | None = None
    ) -> int:
        """Run a parked execution's job now: its job is created if it has none (it parked
        without a deadline) or brought forward if it is deferred (to a timeout). Returns
        the :data:`WAKE` script's code (0: its job is in another queue than ``queue``)."""
        redis = await self.redis()
        name = queue or "default"
        now_ms = int(time.time() * 1000)
        payload = jobs.JobPayload(
            record.id,
            record.state_machine_id,
            record.version,
            name,
            max_tries or self.defaults.max_tries,
        )
        job_id = self.keys.job_id(record.id)
        keys = [self.keys.queue(name), self.keys.queues]
        args: list[Any] = [ARQ_JOB + job_id, job_id, now_ms, jobs.encode_job(payload, now_ms), name]
        return int(await aw(redis.eval(WAKE, 2, *keys, *args)))

    async def depth(self, queue: str | None = None) -> int:
        """Jobs in one queue, or in every queue of this fleet."""
        redis = await self.redis()
        names = [queue] if queue else await self.queue_names()
        if not names:
            return 0
        async with redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcard(self.keys.queue(name))
            sizes = await pipe.execute()
        return sum(int(size) for size in sizes)

    async def queue_names(self) -> list[str]:
        redis = await self.redis()
        names = await aw(redis.smembers(self.keys.queues))
        return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    # ---------------------------------------------------------------- pause

    async def pause(self, *queues: str) -> None:
        """Workers stop taking jobs from these queues (running ones finish)."""
        if queues:
            await aw((await self.redis()).sadd(self.keys.paused, *queues))

    async def resume(self, *queues: str) -> None:
        if queues:
            await aw((await self.redis()).srem(self.keys.paused, *queues))

    async def paused(self) -> list[str]:
        names = await aw((await self.redis()).smembers(self.keys.paused))
        return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    # ---------------------------------------------------------------- the dispatcher

    def batch_queue(self, options: BatchOptions) -> str:
        return queue_for(options.priority, options.queue)

    async def admit(self, machine: PersistentStateMachine, options: BatchOptions) -> None:
        """Refuse a batch at once (:class:`QueueFullError`) if its queue is already full and
        this client does not wait for room."""
        limit = self.defaults.max_depth
        if limit is None or self.defaults.wait_when_full:
            return
        queue = self.batch_queue(options)
        depth = await self.depth(queue)
        if depth >= limit:
            raise QueueFullError(
                f"queue {queue!r} holds {depth} jobs, its maximum depth is {limit}: "
                "batch refused (start it later, or from the leader, which waits for room)"
            )

    async def _room(self, queue: str, wanted: int, batch: Batch) -> None:
        limit = self.defaults.max_depth
        if limit is None:
            return
        delay = 0.1
        while True:
            depth = await self.depth(queue)
            if depth + wanted <= limit or (depth == 0 and wanted > limit):
                return
            if not self.defaults.wait_when_full:
                raise QueueFullError(
                    f"queue {queue!r} holds {depth} jobs; {wanted} more would pass its maximum "
                    f"depth {limit}: the rest of batch {batch.name!r} is refused"
                )
            logger.info("queue %s is full (%d/%d): waiting for room", queue, depth, limit)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _run_at(self, options: BatchOptions) -> float | None:
        if options.defer_by is not None:
            return time.time() + options.defer_by
        if isinstance(options.defer_until, datetime):
            return options.defer_until.timestamp()
        return None

    async def run_batch(
        self,
        machine: PersistentStateMachine,
        batch: Batch,
        options: BatchOptions,
        source: Source,
        resume: bool,
    ) -> None:
        """Create the batch's executions, enqueue their jobs, then follow the store until
        every one has ended (called by the batch's ``_drive`` task)."""
        store = machine.store
        queue = self.batch_queue(options)
        run_at = self._run_at(options)
        tries = options.max_tries or self.defaults.max_tries
        counters = batch.counters
        if resume:
            await self._enqueue_unfinished(machine, batch.id, queue, tries, run_at)
        async for chunk in source:
            if batch._stopping is not None or await batch.cancelled_elsewhere():
                break
            records = [record for record, _ in chunk]
            links = [link for _, link in chunk if link is not None]
            for record in records:  # workers claim them: no lease, not started
                record.lease_owner = None
                record.lease_expires_at = None
                record.started_at = None
            try:
                await self._room(queue, len(records), batch)
            except QueueFullError as exc:
                batch._stopping = str(exc)
                break
            await store.create_executions(records, links)
            await self.enqueue(records, queue=queue, max_tries=tries, run_at=run_at)
            counters.created += len(records)
        await self.follow(machine, batch, options)

    async def _enqueue_unfinished(
        self,
        machine: PersistentStateMachine,
        batch_id: str,
        queue: str,
        tries: int,
        run_at: float | None,
    ) -> None:
        page: list[ExecutionRecord] = []
        async for record in machine.store.stream_executions(
            ExecutionFilter(batch_id=batch_id, status=ACTIVE)
        ):
            page.append(record)
            if len(page) >= self.defaults.chunk_size:
                await self.enqueue(page, queue=queue, max_tries=tries, run_at=run_at)
                page = []
        await self.enqueue(page, queue=queue, max_tries=tries, run_at=run_at)

    async def follow(
        self, machine: PersistentStateMachine, batch: Batch, options: BatchOptions
    ) -> None:
        """Wait until every execution of the batch has ended, as the store says; past
        ``stop_on_error`` or the tolerated failures, abort those that have not started."""
        store = machine.store
        counters = batch.counters
        interval = self.defaults.follow_interval
        unreachable = 0
        while True:
            try:
                counts = await store.count_by_status(ExecutionFilter(batch_id=batch.id))
            except InfrastructureError as exc:  # a database outage: wait it out
                unreachable += 1
                if unreachable == 1:
                    logger.warning(
                        "batch %s: cannot read its progress (%s); retrying", batch.id, exc
                    )
                await asyncio.sleep(min(5.0, interval * 2 ** min(unreachable, 10)))
                continue
            unreachable = 0
            counters.by_status = {s: n for s, n in counts.items() if s not in ACTIVE}
            counters.running = counts.get(S.RUNNING.value, 0)
            if batch._stopping is None:
                reason = _stop_reason(options, counts, max(counters.created, sum(counts.values())))
                if reason is not None:
                    batch._stopping = reason
                    logger.info("batch %s stops: %s", batch.id, reason)
                    await self._abort_unstarted(machine, batch.id, reason)
                    continue
            if not any(counts.get(status, 0) for status in ACTIVE):
                return
            await asyncio.sleep(interval)

    async def _abort_unstarted(
        self, machine: PersistentStateMachine, batch_id: str, reason: str
    ) -> None:
        ids = [
            record.id
            async for record in machine.store.stream_executions(
                ExecutionFilter(batch_id=batch_id, status=S.QUEUED.value)
            )
        ]
        await machine.store.abort_executions(
            execution_ids=ids,
            error="States.Aborted",
            cause=f"not started: {reason}",
            now=datetime.now(UTC),
        )


def _stop_reason(options: BatchOptions, counts: dict[str, int], created: int) -> str | None:
    failed = sum(counts.get(status, 0) for status in FAILURES)
    if not failed:
        return None
    if options.stop_on_error:
        return f"stop_on_error: {failed} execution(s) ended unsuccessfully"
    limit = options.tolerated_failure_count
    if limit is not None and failed > limit:
        return f"{failed} failed executions exceed the tolerated failure count {limit}"
    pct = options.tolerated_failure_percentage
    if pct is not None and created and failed * 100.0 / created > pct:
        return f"{failed} failed of {created} exceeds the tolerated failure percentage {pct}"
    return None


async def aw(value: Any) -> Any:
    """Await a redis-py call (its stubs type commands as ``Awaitable[T] | T``)."""
    return await value


def _epoch_ms(moment: datetime | float) -> int:
    if isinstance(moment, datetime):
        return int(moment.timestamp() * 1000)
    return int(moment * 1000)
