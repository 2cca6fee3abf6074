"""Reconciliation between the database (the truth) and Redis (the jobs), and retention.

``recover`` (``statefleet recover``; the leader runs it periodically):

* every execution that has not ended (QUEUED, RUNNING, WAITING) and has no job record in
  Redis — and is not held by a live lease — gets its job again (a WAITING one deferred to
  its wake time; one parked on a callback without a deadline has no job by design, and gets
  one only once its wait is answered); a job record whose queue entry is missing is put
  back in its queue;
* every job in this fleet's queues whose execution has ended, or does not exist, is dropped
  (unless it is running).

``purge`` deletes ended executions (with their history and links) and arq job results older
than the retention; dead letters are kept until purged explicitly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from statefleet.queue import jobs
from statefleet.queue.client import QueueClient, aw
from statefleet.statemachine.lifecycle import ExecutionStatus
from statefleet.statemachine.protocols import (
    ExecutionFilter,
    ExecutionRecord,
    Store,
    WaitStatus,
)

__all__ = ["PurgeReport", "RecoveryReport", "purge", "recover"]

logger = logging.getLogger(__name__)

S = ExecutionStatus
ACTIVE = (S.QUEUED.value, S.RUNNING.value, S.WAITING.value)
PAGE = 1000


@dataclass
class RecoveryReport:
    """What ``recover`` found and did."""

    checked: int = 0
    reenqueued: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    leased: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"checked {self.checked} unfinished executions: {len(self.reenqueued)} re-enqueued "
            f"(job gone), {len(self.requeued)} put back in their queue, {len(self.leased)} "
            f"left to their live lease; dropped {len(self.dropped)} jobs of ended executions"
        )


async def recover(
    store: Store,
    client: QueueClient,
    *,
    queue_of: dict[str, str] | None = None,
    dry_run: bool = False,
) -> RecoveryReport:
    """Reconcile (see the module docstring). ``queue_of`` maps batch ids to queue names
    (default: each batch's stored ``queue``/``priority`` options)."""
    report = RecoveryReport()
    redis = await client.redis()
    keys = client.keys
    now = datetime.now(UTC)
    queues: dict[str | None, str] = {}
    page: list[ExecutionRecord] = []

    async def queue_for_batch(batch_id: str | None) -> str:
        if queue_of and batch_id in queue_of:
            return queue_of[batch_id]
        if batch_id not in queues:
            name = "default"
            if batch_id is not None:
                batch = await store.get_batch(batch_id)
                if batch is not None:
                    options = batch.options
                    name = options.get("queue") or _priority(options.get("priority", "default"))
            queues[batch_id] = name
        return queues[batch_id]

    async def flush() -> None:
        async with redis.pipeline(transaction=False) as pipe:
            for record in page:
                pipe.get(keys.job(keys.job_id(record.id)))
            raws = await pipe.execute()
        missing: dict[str, list[ExecutionRecord]] = {}
        for record, raw in zip(page, raws, strict=True):
            job_id = keys.job_id(record.id)
            if raw is not None:
                queue = _payload_queue(raw)
                if queue is not None and await aw(redis.zscore(keys.queue(queue), job_id)) is None:
                    report.requeued.append(record.id)
                    if not dry_run:
                        score = _score(record)
                        await aw(redis.zadd(keys.queue(queue), {job_id: score}))
                        index = keys.machine_queue(queue, record.state_machine_id)
                        await aw(redis.zadd(index, {job_id: score}))
                continue
            if (
                record.status == S.RUNNING
                and record.lease_owner is not None
                and record.lease_expires_at is not None
                and record.lease_expires_at > now
            ):
                report.leased.append(record.id)
                continue
            if await _waits_for_a_callback(store, record):
                continue  # no deadline, no answer yet: its answer will create its job
            missing.setdefault(await queue_for_batch(record.batch_id), []).append(record)
        for queue, records in missing.items():
            report.reenqueued.extend(r.id for r in records)
            if not dry_run:
                await client.enqueue(records, queue=queue)
        page.clear()

    async for record in store.stream_executions(ExecutionFilter(status=ACTIVE)):
        report.checked += 1
        page.append(record)
        if len(page) >= PAGE:
            await flush()
    if page:
        await flush()
    await _drop_ended(store, client, report, dry_run)
    logger.info("recovery: %s", report.summary())
    return report


async def _drop_ended(
    store: Store, client: QueueClient, report: RecoveryReport, dry_run: bool
) -> None:
    redis = await client.redis()
    keys = client.keys
    for name in await client.queue_names():
        queue_key = keys.queue(name)
        members = [
            m.decode() if isinstance(m, bytes) else str(m)
            for m in await aw(redis.zrange(queue_key, 0, -1))
        ]
        for start in range(0, len(members), PAGE):
            chunk = members[start : start + PAGE]
            async with redis.pipeline(transaction=False) as pipe:
                for job_id in chunk:
                    pipe.exists(keys.in_progress(job_id))
                running = await pipe.execute()
            live: list[tuple[str, str]] = []  # (job id, machine id)
            for job_id, busy in zip(chunk, running, strict=True):
                if busy:
                    continue
                execution_id = keys.execution_id(job_id)
                record = await store.get_execution(execution_id) if execution_id else None
                if record is not None and record.status in ACTIVE:
                    live.append((job_id, record.state_machine_id))
                    continue
                report.dropped.append(job_id)
                if not dry_run:
                    async with redis.pipeline(transaction=True) as pipe:
                        pipe.zrem(queue_key, job_id)
                        pipe.delete(keys.job(job_id), keys.retry(job_id))
                        await pipe.execute()
            if live and not dry_run:
                await _index(redis, keys, name, live)


async def _index(redis: Any, keys: Any, queue: str, live: list[tuple[str, str]]) -> None:
    """Put live jobs missing from their machine's index (``P:mqueue``: jobs enqueued by an
    older version) into it, so that ``--machines`` workers see them."""
    async with redis.pipeline(transaction=False) as pipe:
        for job_id, _ in live:
            pipe.zscore(keys.queue(queue), job_id)
        scores = await pipe.execute()
    async with redis.pipeline(transaction=False) as pipe:
        for (job_id, machine_id), score in zip(live, scores, strict=True):
            if score is not None:
                pipe.zadd(keys.machine_queue(queue, machine_id), {job_id: score}, nx=True)
        await pipe.execute()


async def _waits_for_a_callback(store: Store, record: ExecutionRecord) -> bool:
    """Is the execution parked on a callback (task token, message) without a deadline and
    not yet answered? Such an execution has no job by design."""
    if record.status != S.WAITING or record.wake_at is not None or record.current_state is None:
        return False
    wait = await store.resumable_wait(record.id, record.current_state)
    return wait is not None and wait.status == WaitStatus.WAITING


def _priority(value: Any) -> str:
    from statefleet.queue.priorities import priority_name

    try:
        return priority_name(value)
    except ValueError:
        return "default"


def _payload_queue(raw: bytes) -> str | None:
    try:
        data = jobs.loads(raw)
        return jobs.parse_payload(data["k"]).queue
    except Exception:
        return None


def _score(record: ExecutionRecord) -> int:
    moment = record.wake_at or datetime.now(UTC)
    return int(moment.timestamp() * 1000)


@dataclass
class PurgeReport:
    executions: int = 0
    results: int = 0
    messages: int = 0


async def purge(store: Store, client: QueueClient | None, *, older_than: timedelta) -> PurgeReport:
    """Delete ended executions and arq job results older than ``older_than``, and the kept
    messages whose own time to be kept has run out."""
    now = datetime.now(UTC)
    cutoff = now - older_than
    report = PurgeReport(
        executions=await store.purge_executions(ended_before=cutoff),
        messages=await store.purge_messages(now=now),
    )
    if client is None:
        return report
    redis = await client.redis()
    cutoff_ms = int(cutoff.timestamp() * 1000)
    async for key in redis.scan_iter(match=client.keys.result_pattern(), count=1000):
        raw = await redis.get(key)
        try:
            finished = int(jobs.loads(raw)["ft"]) if raw is not None else 0
        except Exception:
            finished = 0
        if finished < cutoff_ms:
            report.results += int(await redis.delete(key))
    return report
