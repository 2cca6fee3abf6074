"""Redis reads and actions the pages need beyond :class:`statefleet.queue.inspector.Inspector`:
paging and finding jobs, completed jobs (arq results), latency and memory of a queue, run
now / delete, deleting an empty queue, Redis INFO, the worker registry with the workers
that are gone, and pausing workers.

Everything goes through the fleet's :class:`~statefleet.queue.keys.Keys`; nothing here
writes a key the queue package does not know.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from statefleet.queue import jobs
from statefleet.queue.client import QueueClient, aw
from statefleet.queue.inspector import Inspector, JobInfo
from statefleet.queue.keys import Keys

__all__ = [
    "JOB_STATES",
    "QUEUE_STATES",
    "JobView",
    "QueueOps",
    "paused_workers_key",
]

#: The tabs of a queue: states a job is in (as the inspector classifies them), then dead
#: letters and completed jobs (arq results kept for ``queue_keep_result`` seconds).
QUEUE_STATES = ("active", "pending", "scheduled", "retry")
JOB_STATES = (*QUEUE_STATES, "dead", "completed")

#: Workers stay listed as gone this long after their last heartbeat.
GONE_KEPT_S = 24 * 3600
#: How many arq result keys a scan reads at most (the rest is reported as truncated).
RESULT_SCAN_LIMIT = 20_000


def paused_workers_key(prefix: str) -> str:
    """SET of worker ids asked to stop taking jobs (``Keys.paused_workers``)."""
    return Keys(prefix).paused_workers


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(float(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass
class JobView:
    """One job as a page shows it (any tab)."""

    job_id: str
    queue: str
    state: str
    execution_id: str | None = None
    function: str | None = None
    args: Any = None
    enqueued_at: datetime | None = None
    runnable_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    tries: int = 0
    max_tries: int | None = None
    success: bool | None = None
    result: Any = None
    error: str | None = None
    cause: str | None = None
    machine_id: str | None = None
    dead_letter_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def view_of(info: JobInfo) -> JobView:
    payload = info.payload
    kwargs = payload.get("k") if isinstance(payload.get("k"), dict) else {}
    assert isinstance(kwargs, dict)
    return JobView(
        job_id=info.job_id,
        queue=info.queue,
        state=info.state,
        execution_id=info.execution_id,
        function=payload.get("f"),
        args=payload,
        enqueued_at=_ms(payload.get("et")),
        runnable_at=info.runnable_at,
        tries=info.tries,
        max_tries=kwargs.get("n") if isinstance(kwargs.get("n"), int) else None,
        machine_id=kwargs.get("m") if isinstance(kwargs.get("m"), str) else None,
    )


def _result_view(job_id: str, data: Any, keys_prefix: str) -> JobView | None:
    if not isinstance(data, dict):
        return None
    kwargs = data.get("k") if isinstance(data.get("k"), dict) else {}
    assert isinstance(kwargs, dict)
    result = data.get("r")
    error = None
    if isinstance(result, dict) and "$error" in result:
        error = f"{result.get('$error')}: {result.get('message')}"
    head = f"{keys_prefix}:"
    return JobView(
        job_id=job_id,
        queue=str(kwargs.get("q") or data.get("q") or "?"),
        state="completed",
        execution_id=job_id[len(head) :] if job_id.startswith(head) else None,
        function=data.get("f"),
        args={key: data.get(key) for key in ("t", "f", "a", "k", "et")},
        enqueued_at=_ms(data.get("et")),
        started_at=_ms(data.get("st")),
        finished_at=_ms(data.get("ft")),
        tries=int(data.get("t") or 0),
        success=bool(data.get("s")),
        result=result,
        error=error,
        machine_id=kwargs.get("m") if isinstance(kwargs.get("m"), str) else None,
    )


class QueueOps:
    """What the queue pages read and do, on top of one :class:`Inspector`."""

    def __init__(self, client: QueueClient, inspector: Inspector | None = None) -> None:
        self.client = client
        self.inspector = inspector or Inspector(client)
        self.keys = client.keys
        self._results_cache: tuple[float, list[JobView], bool] | None = None

    # ------------------------------------------------------------------ queues

    async def queue_names(self) -> list[str]:
        return sorted(set(await self.client.queue_names()) | set(await self.client.paused()))

    async def latency(self, queue: str) -> float:
        """Seconds the oldest runnable, not running job has waited (0 if none)."""
        redis = await self.client.redis()
        now_ms = time.time() * 1000
        members = await aw(
            redis.zrangebyscore(
                self.keys.queue(queue), "-inf", now_ms, start=0, num=50, withscores=True
            )
        )
        if not members:
            return 0.0
        async with redis.pipeline(transaction=False) as pipe:
            for job_id, _ in members:
                pipe.exists(self.keys.in_progress(_text(job_id)))
            locked = await pipe.execute()
        for (_, score), busy in zip(members, locked, strict=True):
            if not busy:
                return max(0.0, (now_ms - float(score)) / 1000)
        return 0.0

    async def memory(self, queue: str) -> int | None:
        """Bytes of the queue's ZSET (``MEMORY USAGE``; job records not counted)."""
        redis = await self.client.redis()
        try:
            value = await aw(redis.memory_usage(self.keys.queue(queue)))
        except Exception:
            return None
        return int(value) if value is not None else None

    async def dead_by_queue(self) -> dict[str, int]:
        """Dead letters per queue, from the Redis index."""
        redis = await self.client.redis()
        out: dict[str, int] = {}
        async for _, raw in redis.hscan_iter(self.keys.dead_info):
            try:
                queue = json.loads(raw).get("queue") or "?"
            except (ValueError, AttributeError):
                queue = "?"
            out[queue] = out.get(queue, 0) + 1
        return out

    async def results(self, *, max_age: float = 5.0) -> tuple[list[JobView], bool]:
        """Completed jobs (arq results still kept), newest first, and whether the scan was
        cut at :data:`RESULT_SCAN_LIMIT`. Cached ``max_age`` seconds (dashboards poll)."""
        cached = self._results_cache
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1], cached[2]
        redis = await self.client.redis()
        names: list[str] = []
        truncated = False
        async for key in redis.scan_iter(match=self.keys.result_pattern(), count=1000):
            names.append(_text(key))
            if len(names) >= RESULT_SCAN_LIMIT:
                truncated = True
                break
        views: list[JobView] = []
        prefix_len = len(self.keys.result(""))
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            values = await aw(redis.mget(chunk))
            for key, raw in zip(chunk, values, strict=True):
                if raw is None:
                    continue
                try:
                    data = jobs.loads(raw)
                except ValueError:
                    continue
                view = _result_view(key[prefix_len:], data, self.keys.prefix)
                if view is not None:
                    views.append(view)
        epoch = datetime.fromtimestamp(0, UTC)
        views.sort(key=lambda v: v.finished_at or epoch, reverse=True)
        self._results_cache = (time.monotonic(), views, truncated)
        return views, truncated

    async def completed_by_queue(self) -> tuple[dict[str, int], bool]:
        views, truncated = await self.results()
        out: dict[str, int] = {}
        for view in views:
            out[view.queue] = out.get(view.queue, 0) + 1
        return out, truncated

    async def summaries(self) -> list[dict[str, Any]]:
        """Per queue: the inspector's counts plus latency, memory, dead, completed, error
        rate (today's failed / processed)."""
        infos = await self.inspector.queues()
        dead = await self.dead_by_queue()
        completed, truncated = await self.completed_by_queue()
        out = []
        for info in infos:
            processed = info.processed_today
            out.append(
                {
                    "name": info.name,
                    "state": "paused" if info.paused else "running",
                    "paused": info.paused,
                    "size": info.size,
                    "active": info.active,
                    "pending": info.pending,
                    "scheduled": info.scheduled,
                    "retry": info.retry,
                    "counts_exact": info.exact,
                    "dead": dead.get(info.name, 0),
                    "completed": completed.get(info.name, 0),
                    "completed_truncated": truncated,
                    "latency_seconds": await self.latency(info.name),
                    "memory_bytes": await self.memory(info.name),
                    "processed_today": processed,
                    "failed_today": info.failed_today,
                    "error_rate": (info.failed_today / processed) if processed else 0.0,
                }
            )
        return out

    async def daily(self, days: int) -> dict[str, Any]:
        """Processed and failed per day (oldest first), per queue and summed."""
        stats = await self.inspector.daily_stats(days=days)
        all_days = sorted({day for per_day in stats.values() for day in per_day})
        total = {
            day: {
                "processed": sum(
                    per_day.get(day, {}).get("processed", 0) for per_day in stats.values()
                ),
                "failed": sum(per_day.get(day, {}).get("failed", 0) for per_day in stats.values()),
            }
            for day in all_days
        }
        return {
            "days": all_days,
            "total": [{"day": day, **total[day]} for day in all_days],
            "queues": {
                name: [
                    {"day": day, **per_day.get(day, {"processed": 0, "failed": 0})}
                    for day in all_days
                ]
                for name, per_day in stats.items()
            },
        }

    # ------------------------------------------------------------------ jobs

    async def jobs_in(
        self, queue: str, state: str, *, offset: int = 0, limit: int = 20
    ) -> list[JobView]:
        """Jobs of one of :data:`QUEUE_STATES` or ``completed`` (dead letters come from
        the store), ``offset``/``limit`` paging."""
        if state == "completed":
            views, _ = await self.results()
            mine = [v for v in views if v.queue == queue]
            return mine[offset : offset + limit]
        found = await self.inspector.jobs(queue, state=state, limit=offset + limit)
        return [view_of(info) for info in found[offset : offset + limit]]

    async def job(self, queue: str, job_id: str) -> JobView | None:
        """One job of the queue, in whatever state it is (None if it is nowhere)."""
        redis = await self.client.redis()
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zscore(self.keys.queue(queue), job_id)
            pipe.exists(self.keys.in_progress(job_id))
            pipe.get(self.keys.retry(job_id))
            pipe.get(self.keys.job(job_id))
            pipe.get(self.keys.result(job_id))
            score, locked, tries, raw, result = await pipe.execute()
        if score is not None:
            now_ms = time.time() * 1000
            tries = int(tries or 0)
            if locked:
                state = "active"
            elif score > now_ms:
                state = "scheduled"
            elif tries:
                state = "retry"
            else:
                state = "pending"
            try:
                payload = jobs.loads(raw) if raw is not None else {}
            except ValueError:
                payload = {"unreadable": _text(raw)[:200]}
            return view_of(
                JobInfo(
                    job_id=job_id,
                    execution_id=self.keys.execution_id(job_id),
                    queue=queue,
                    state=state,
                    runnable_at=datetime.fromtimestamp(float(score) / 1000, UTC),
                    tries=tries,
                    payload=payload if isinstance(payload, dict) else {"value": payload},
                )
            )
        if result is not None:
            try:
                return _result_view(job_id, jobs.loads(result), self.keys.prefix)
            except ValueError:
                return None
        return None

    def job_id_of(self, text: str) -> str:
        """A job id from what a user typed: a job id, or an execution id."""
        text = text.strip()
        if self.keys.execution_id(text) is not None:
            return text
        return self.keys.job_id(text)

    async def run_now(self, queue: str, job_ids: list[str]) -> int:
        """Make scheduled or retrying jobs runnable now; returns how many moved."""
        if not job_ids:
            return 0
        redis = await self.client.redis()
        now_ms = int(time.time() * 1000)
        moved = 0
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.zscore(self.keys.queue(queue), job_id)
            scores = await pipe.execute()
        later = [
            job_id
            for job_id, score in zip(job_ids, scores, strict=True)
            if score is not None and float(score) > now_ms
        ]
        machines = await self._machines_of(later)
        async with redis.pipeline(transaction=True) as pipe:
            for job_id in later:
                pipe.zadd(self.keys.queue(queue), {job_id: now_ms}, xx=True)
                machine = machines.get(job_id)
                if machine is not None:  # machine-filtered workers read this index
                    pipe.zadd(self.keys.machine_queue(queue, machine), {job_id: now_ms}, xx=True)
                moved += 1
            await pipe.execute()
        return moved

    async def _machines_of(self, job_ids: list[str]) -> dict[str, str]:
        """The machine each job names (from its record in Redis), where it can be read."""
        if not job_ids:
            return {}
        redis = await self.client.redis()
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.get(self.keys.job(job_id))
            raws = await pipe.execute()
        machines: dict[str, str] = {}
        for job_id, raw in zip(job_ids, raws, strict=True):
            if raw is None:
                continue
            try:
                machines[job_id] = jobs.parse_payload(jobs.loads(raw)["k"]).machine_id
            except (ValueError, TypeError, KeyError, jobs.PayloadError):
                continue  # a record that does not parse names no machine index
        return machines

    async def drop_jobs(self, queue: str, job_ids: list[str]) -> list[str]:
        """Remove jobs that are not running from the queue, with their records; returns
        the ids removed (running ones are left alone)."""
        if not job_ids:
            return []
        redis = await self.client.redis()
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(self.keys.in_progress(job_id))
            locked = await pipe.execute()
        removable = [j for j, busy in zip(job_ids, locked, strict=True) if not busy]
        if not removable:
            return []
        machines = await self._machines_of(removable)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.keys.queue(queue), *removable)
            for job_id in removable:
                pipe.delete(self.keys.job(job_id), self.keys.retry(job_id))
                machine = machines.get(job_id)
                if machine is not None:
                    pipe.zrem(self.keys.machine_queue(queue, machine), job_id)
            await pipe.execute()
        return removable

    async def delete_results(self, job_ids: list[str]) -> int:
        if not job_ids:
            return 0
        redis = await self.client.redis()
        count = int(await aw(redis.delete(*[self.keys.result(j) for j in job_ids])))
        self._results_cache = None
        return count

    async def delete_queue(self, queue: str) -> bool:
        """Forget an empty queue (False, and nothing done, if it holds jobs)."""
        redis = await self.client.redis()
        if int(await aw(redis.zcard(self.keys.queue(queue)))):
            return False
        indexes = [
            key
            async for key in redis.scan_iter(
                match=self.keys.machine_queue_pattern(queue), count=1000
            )
        ]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.srem(self.keys.queues, queue)
            pipe.srem(self.keys.paused, queue)
            pipe.delete(self.keys.queue(queue), *indexes)
            await pipe.execute()
        return True

    # ------------------------------------------------------------------ workers

    async def workers(self) -> list[dict[str, Any]]:
        """Every worker in the registry: live ones from their heartbeats, and those whose
        heartbeat expired as ``gone`` (kept :data:`GONE_KEPT_S`)."""
        redis = await self.client.redis()
        entries = await aw(redis.zrange(self.keys.workers, 0, -1, withscores=True))
        paused = {_text(w) for w in await aw(redis.smembers(paused_workers_key(self.keys.prefix)))}
        now_ms = time.time() * 1000
        out: list[dict[str, Any]] = []
        expired: list[str] = []
        for raw_id, score in entries:
            worker_id = _text(raw_id)
            raw = await redis.get(self.keys.worker(worker_id))
            if raw is None:
                if now_ms - float(score) > GONE_KEPT_S * 1000:
                    expired.append(worker_id)
                    continue
                seen = _ms(score)
                out.append(
                    {
                        "id": worker_id,
                        "status": "gone",
                        "last_seen": seen.isoformat() if seen else None,
                        "running": [],
                        "paused": worker_id in paused,
                    }
                )
                continue
            try:
                info = json.loads(raw)
            except ValueError:
                info = {"id": worker_id}
            info["status"] = "stopping" if info.get("stopping") else "live"
            info["paused"] = worker_id in paused
            if info["paused"] and info["status"] == "live":
                info["status"] = "paused"
            out.append(info)
        if expired:
            await aw(redis.zrem(self.keys.workers, *expired))
        order = {"live": 0, "paused": 1, "stopping": 2, "gone": 3}
        out.sort(key=lambda w: (order.get(w.get("status", ""), 9), str(w.get("id"))))
        return out

    async def pause_workers(self, worker_ids: list[str], *, paused: bool) -> None:
        if not worker_ids:
            return
        redis = await self.client.redis()
        key = paused_workers_key(self.keys.prefix)
        if paused:
            await aw(redis.sadd(key, *worker_ids))
        else:
            await aw(redis.srem(key, *worker_ids))

    # ------------------------------------------------------------------ redis

    async def redis_info(self) -> dict[str, Any]:
        redis = await self.client.redis()
        info = await redis.info("all")
        sections: dict[str, dict[str, Any]] = {}
        for name in (
            "server",
            "clients",
            "memory",
            "persistence",
            "stats",
            "replication",
            "cpu",
            "keyspace",
        ):
            try:
                sections[name] = dict(await redis.info(name))
            except Exception:
                sections[name] = {}
        raw_lines = []
        for name, values in sections.items():
            raw_lines.append(f"# {name.capitalize()}")
            raw_lines.extend(f"{key}:{_flat(value)}" for key, value in values.items())
            raw_lines.append("")
        return {
            "version": info.get("redis_version"),
            "mode": info.get("redis_mode"),
            "uptime_seconds": info.get("uptime_in_seconds"),
            "connected_clients": info.get("connected_clients"),
            "connected_replicas": info.get("connected_slaves"),
            "used_memory": info.get("used_memory"),
            "used_memory_human": info.get("used_memory_human"),
            "used_memory_peak_human": info.get("used_memory_peak_human"),
            "fragmentation_ratio": info.get("mem_fragmentation_ratio"),
            "last_save": info.get("rdb_last_save_time"),
            "changes_since_save": info.get("rdb_changes_since_last_save"),
            "keyspace": sections.get("keyspace", {}),
            "raw": "\n".join(raw_lines),
        }


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)
