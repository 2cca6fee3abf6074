"""What the UI shows of Redis: queues and their jobs, workers, dead letters, daily counters.

A thin, read-only layer (the UI renders what it returns), plus pause/resume through the
client. Job states, as arq leaves them in a queue ZSET:

* ``active``    — has an ``arq:in-progress`` lock (a worker runs it);
* ``pending``   — runnable now (score <= now), not locked, never tried;
* ``retry``     — not locked, tried before (``arq:retry`` >= 1): waiting for its backoff;
* ``scheduled`` — score in the future (a deferred batch, a parked execution's wake).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from statefleet.queue import jobs
from statefleet.queue.client import QueueClient, aw

__all__ = [
    "JOB_DURATION_BUCKETS",
    "Inspector",
    "JobDurations",
    "JobInfo",
    "QueueInfo",
    "job_duration_fields",
]

#: Upper bounds (seconds) of the job run time histogram's buckets.
JOB_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def job_duration_fields(queue: str, machine: str, seconds: float) -> tuple[str, str, str]:
    """The fields of ``P:stats:jobtime`` one job run adds to: its bucket (``queue TAB machine
    TAB index``, index ``len(JOB_DURATION_BUCKETS)`` past the last bound), sum and count.
    Buckets are stored per bound, not cumulative: a worker writes three fields per job."""
    index = next(
        (i for i, bound in enumerate(JOB_DURATION_BUCKETS) if seconds <= bound),
        len(JOB_DURATION_BUCKETS),
    )
    head = f"{queue}\t{machine}\t"
    return f"{head}{index}", f"{head}sum", f"{head}count"


@dataclass(frozen=True, slots=True)
class JobDurations:
    """The run time histogram of one queue and machine, over every worker since the
    counters began: cumulative counts per bound of :data:`JOB_DURATION_BUCKETS`, sum, count."""

    queue: str
    machine: str
    buckets: tuple[int, ...]
    sum: float
    count: int


#: Counts a queue's members by state on the server, in O(log N + limit): the size and the
#: scheduled (future score) count come from the ZSET itself; active / retry / pending are
#: told apart by looking at the first ``limit`` runnable members (those workers take
#: first), so a queue of a million jobs does not block Redis for a dashboard poll. Past
#: the limit, the rest of the runnable members count as pending (``exact`` is 0).
COUNT = """
local total = redis.call('ZCARD', KEYS[1])
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[4])
local scheduled = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
local runnable = total - scheduled
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
local active, retry = 0, 0
for i = 1, #members do
  local id = members[i]
  if redis.call('EXISTS', ARGV[2] .. id) == 1 then
    active = active + 1
  elseif redis.call('EXISTS', ARGV[3] .. id) == 1 then
    retry = retry + 1
  end
end
local exact = 0
if runnable <= limit then exact = 1 end
return {active, runnable - active - retry, retry, scheduled, exact}
"""

#: How many runnable members of a queue :meth:`Inspector.queues` looks at one by one.
COUNT_LIMIT = 5_000


@dataclass
class QueueInfo:
    name: str
    size: int
    active: int
    pending: int
    retry: int
    scheduled: int
    paused: bool
    processed_today: int
    failed_today: int
    #: False when the queue held more runnable jobs than the inspector looks at one by one
    #: (:data:`COUNT_LIMIT`): size and scheduled stay exact, active and retry count those
    #: among the first runnable jobs (where workers take from), the rest count as pending.
    exact: bool = True


@dataclass
class JobInfo:
    job_id: str
    execution_id: str | None
    queue: str
    state: str
    runnable_at: datetime
    tries: int
    payload: dict[str, Any] = field(default_factory=dict)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Inspector:
    """Read-only views of one fleet's Redis."""

    def __init__(self, client: QueueClient, *, count_limit: int = COUNT_LIMIT) -> None:
        self.client = client
        self.keys = client.keys
        self.count_limit = count_limit

    async def queues(self) -> list[QueueInfo]:
        redis = await self.client.redis()
        names = sorted(set(await self.client.queue_names()) | set(await self.client.paused()))
        paused = set(await self.client.paused())
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        out = []
        for name in names:
            active, pending, retry, scheduled, exact = await aw(
                redis.eval(
                    COUNT,
                    1,
                    self.keys.queue(name),
                    str(int(time.time() * 1000)),
                    self.keys.in_progress(""),
                    self.keys.retry(""),
                    str(self.count_limit),
                )
            )
            processed = await redis.get(self.keys.stats("processed", name, day))
            failed = await redis.get(self.keys.stats("failed", name, day))
            out.append(
                QueueInfo(
                    name=name,
                    size=int(active) + int(pending) + int(retry) + int(scheduled),
                    active=int(active),
                    pending=int(pending),
                    retry=int(retry),
                    scheduled=int(scheduled),
                    paused=name in paused,
                    processed_today=int(processed or 0),
                    failed_today=int(failed or 0),
                    exact=bool(exact),
                )
            )
        return out

    async def jobs(
        self, queue: str, *, state: str | None = None, limit: int = 100
    ) -> list[JobInfo]:
        """The first ``limit`` jobs of a queue (in score order), optionally of one state."""
        redis = await self.client.redis()
        now = time.time() * 1000
        out: list[JobInfo] = []
        start = 0
        while len(out) < limit:
            members = await aw(
                redis.zrange(self.keys.queue(queue), start, start + 499, withscores=True)
            )
            if not members:
                break
            start += len(members)
            async with redis.pipeline(transaction=False) as pipe:
                for job_id, _ in members:
                    job_id = _text(job_id)
                    pipe.exists(self.keys.in_progress(job_id))
                    pipe.get(self.keys.retry(job_id))
                    pipe.get(self.keys.job(job_id))
                found = await pipe.execute()
            for index, (job_id, score) in enumerate(members):
                job_id = _text(job_id)
                locked, tries, raw = found[3 * index : 3 * index + 3]
                tries = int(tries or 0)
                if locked:
                    kind = "active"
                elif score > now:
                    kind = "scheduled"
                elif tries:
                    kind = "retry"
                else:
                    kind = "pending"
                if state is not None and kind != state:
                    continue
                try:
                    payload = jobs.loads(raw) if raw is not None else {}
                except ValueError:
                    payload = {"unreadable": _text(raw)[:200]}
                out.append(
                    JobInfo(
                        job_id=job_id,
                        execution_id=self.keys.execution_id(job_id),
                        queue=queue,
                        state=kind,
                        runnable_at=datetime.fromtimestamp(score / 1000, UTC),
                        tries=tries,
                        payload=payload if isinstance(payload, dict) else {"value": payload},
                    )
                )
                if len(out) >= limit:
                    break
        return out

    async def workers(self) -> list[dict[str, Any]]:
        """Live workers, from their heartbeats (entries past their TTL are cleaned up)."""
        redis = await self.client.redis()
        ids = [_text(i) for i in await aw(redis.zrange(self.keys.workers, 0, -1))]
        out = []
        gone = []
        for worker_id in ids:
            raw = await redis.get(self.keys.worker(worker_id))
            if raw is None:
                gone.append(worker_id)
                continue
            out.append(json.loads(raw))
        if gone:
            await aw(redis.zrem(self.keys.workers, *gone))
        return out

    async def job_durations(self) -> list[JobDurations]:
        """How long jobs ran on the workers (``P:stats:jobtime``), per queue and machine."""
        redis = await self.client.redis()
        raw = await aw(redis.hgetall(self.keys.job_durations))
        found: dict[tuple[str, str], dict[str, float]] = {}
        for key, value in raw.items():
            parts = _text(key).split("\t")
            if len(parts) != 3:
                continue
            found.setdefault((parts[0], parts[1]), {})[parts[2]] = float(_text(value))
        out = []
        for (queue, machine), fields in sorted(found.items()):
            running = 0
            buckets = []
            for index in range(len(JOB_DURATION_BUCKETS)):
                running += int(fields.get(str(index), 0))
                buckets.append(running)
            out.append(
                JobDurations(
                    queue=queue,
                    machine=machine,
                    buckets=tuple(buckets),
                    sum=fields.get("sum", 0.0),
                    count=int(fields.get("count", 0)),
                )
            )
        return out

    async def dead_letters(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """The newest dead letters, from the Redis index (the database has them all)."""
        redis = await self.client.redis()
        ids = [_text(i) for i in await aw(redis.zrevrange(self.keys.dead, 0, limit - 1))]
        if not ids:
            return []
        values = await aw(redis.hmget(self.keys.dead_info, ids))
        return [json.loads(v) for v in values if v is not None]

    async def daily_stats(self, *, days: int = 7) -> dict[str, dict[str, dict[str, int]]]:
        """{queue: {day: {"processed": n, "failed": n}}} for the last ``days`` days."""
        redis = await self.client.redis()
        today = datetime.now(UTC).date()
        out: dict[str, dict[str, dict[str, int]]] = {}
        for name in await self.client.queue_names():
            per_day: dict[str, dict[str, int]] = {}
            for back in range(days):
                day = (today - timedelta(days=back)).isoformat()
                processed = await redis.get(self.keys.stats("processed", name, day))
                failed = await redis.get(self.keys.stats("failed", name, day))
                per_day[day] = {"processed": int(processed or 0), "failed": int(failed or 0)}
            out[name] = per_day
        return out
