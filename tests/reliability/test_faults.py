"""Faults during a batch: killed, stopped and frozen workers, a killed leader, a Redis
restart, a PostgreSQL outage. Real PostgreSQL, real Redis (AOF, fsync every second),
``statefleet`` subprocesses. Each test ends with the same proof: every execution SUCCEEDED
with the right output, each source chained once, every history gapless (4 rows, 1..4), and
no state that had completed ran again (``task_log``).

docs/guarantees.md states what these tests show; the sizes there are the full ones
(``make test-reliability``); ``make test`` runs the short forms.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from statefleet import ExecutionFilter
from statefleet.queue import QueueClient
from statefleet.store import SQLStore
from tests.queue.test_fleet import assert_complete, dsn
from tests.reliability.conftest import (
    FULL,
    PREFIX,
    Fleet,
    chained_batch,
    eventually,
    finished,
    numbers,
    record_figures,
    size,
    sources,
)
from tests.services import PostgresServer, RedisServer

pytestmark = pytest.mark.timeout(900 if FULL else 180)


async def in_flight(store: SQLStore) -> set[tuple[str, str]]:
    """(execution, current state) of every leased RUNNING execution: the states that may
    run again if their worker dies now. An execution with no checkpoint yet is at Double:
    Prepare, a Pass, is not checkpointed on its own (it is folded into the next step)."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, current_state FROM executions WHERE state_machine_id = 'numbers' "
                "AND status = 'RUNNING' AND lease_expires_at > now()"
            )
        )
        return {(row[0], row[1] or "Double") for row in rows}


async def reruns(task_log: asyncpg.Connection) -> set[tuple[str, str]]:
    rows = await task_log.fetch("SELECT execution_id, state FROM task_log WHERE runs > 1")
    return {(row["execution_id"], row["state"]) for row in rows}


async def logged(task_log: asyncpg.Connection) -> int:
    return int(await task_log.fetchval("SELECT count(*) FROM task_log"))


async def dead_letters(store: SQLStore) -> list[Any]:
    return list(await store.list_dead_letters())


async def resumed_after(task_log: asyncpg.Connection, fleet: Fleet) -> float:
    """Seconds until the task log grows again (the fleet is making progress)."""
    start = time.monotonic()
    before = await logged(task_log)

    async def grew() -> bool:
        return await logged(task_log) > before

    await eventually(grew, 120, "progress after the fault", fleet, interval=0.1)
    return round(time.monotonic() - start, 1)


# ---------------------------------------------------------------- workers killed


async def test_workers_killed_again_and_again_lose_nothing(
    pg: SQLStore, client: QueueClient, task_log: asyncpg.Connection, fleet: Fleet
) -> None:
    """kill -9 one of two workers every ~2 s (restarting it each time) during the batch."""
    n = size(1000, 5000)
    await sources(pg, n)
    workers = [fleet.worker(TASK_DELAY="0.02") for _ in range(2)]
    sm, batch = await chained_batch(pg, client, "kill-9", max_tries=10)
    exposed: set[tuple[str, str]] = set()  # what was in flight at each kill
    kills = 0
    started = time.monotonic()
    await eventually(lambda: _at_least(task_log, n // 10), 60, "progress", fleet)
    deadline = time.monotonic() + (600 if FULL else 120)
    while kills < (1000 if FULL else 1):
        if kills:
            await asyncio.sleep(2)
        if await batch.counts() == {"SUCCEEDED": n}:
            break
        victim = workers[kills % 2]
        # freeze it first: what it holds cannot move while we look
        fleet.signal(victim, signal.SIGSTOP)
        exposed |= await in_flight(pg)
        fleet.kill(victim)
        workers[kills % 2] = fleet.worker(TASK_DELAY="0.02")
        kills += 1
        assert time.monotonic() < deadline, f"still killing after {kills} kills\n{fleet.logs()}"
    record = await finished(batch, 600 if FULL else 120, fleet)
    assert record.status == "SUCCEEDED", fleet.logs()
    await assert_complete(pg, sm, n)
    assert await reruns(task_log) <= exposed  # only in-flight states ran again
    assert await dead_letters(pg) == []
    assert kills >= 1 and exposed, "no kill happened mid-batch"
    record_figures("kill -9", {"executions": n, "kills": kills, "seconds": _since(started)})


# ---------------------------------------------------------------- Redis restarted


async def test_a_redis_restart_mid_batch_loses_nothing(
    pg: SQLStore,
    client: QueueClient,
    task_log: asyncpg.Connection,
    fleet: Fleet,
    aof_redis: RedisServer,
) -> None:
    """SHUTDOWN after an AOF rewrite, start again: the jobs are all there, the workers
    reconnect, the batch completes."""
    n = size(1000, 5000)
    await sources(pg, n)
    sm, batch = await chained_batch(pg, client, "redis-restart")
    raw = aioredis.from_url(aof_redis.url())
    try:
        await eventually(
            lambda: _queued_all(raw, n), 60, f"{n} jobs queued", fleet
        )  # the enqueue is done: the jobs live in Redis only
    finally:
        await raw.aclose()
    workers = [fleet.worker(TASK_DELAY="0.01") for _ in range(2)]
    await eventually(lambda: _at_least(task_log, n // 5), 60, "progress", fleet)
    await asyncio.to_thread(aof_redis.restart)
    resumed = await resumed_after(task_log, fleet)
    record = await finished(batch, 300 if FULL else 120, fleet)
    assert record.status == "SUCCEEDED", fleet.logs()
    await assert_complete(pg, sm, n)
    assert await dead_letters(pg) == []
    assert all(w.poll() is None for w in workers), fleet.logs()  # they rode it out
    record_figures("redis restart", {"executions": n, "progress_again_after_s": resumed})


async def _queued_all(raw: aioredis.Redis, n: int) -> bool:
    return int(await raw.zcard(f"{PREFIX}:queue:default")) >= n


async def _at_least(task_log: asyncpg.Connection, count: int) -> bool:
    return await logged(task_log) >= count


# ---------------------------------------------------------------- PostgreSQL down


async def test_a_postgres_outage_is_waited_out_without_dead_letters(
    pg: SQLStore,
    client: QueueClient,
    task_log: asyncpg.Connection,
    fleet: Fleet,
    fault_postgres: PostgresServer,
) -> None:
    """PostgreSQL stopped for 10 s mid-batch: workers back off and retry, nothing is
    dead-lettered for it, the batch completes."""
    n = size(1000, 5000)
    await sources(pg, n)
    sm, batch = await chained_batch(pg, client, "pg-outage")
    workers = [fleet.worker(TASK_DELAY="0.01") for _ in range(2)]
    await eventually(lambda: _at_least(task_log, n // 5), 60, "progress", fleet)
    await task_log.close()
    await asyncio.to_thread(fault_postgres.halt)
    try:
        await asyncio.sleep(10)
    finally:
        await asyncio.to_thread(fault_postgres.start_again)
    task_log = await asyncpg.connect(dsn(str(pg.url)))
    try:
        resumed = await resumed_after(task_log, fleet)
    finally:
        await task_log.close()
    record = await finished(batch, 300 if FULL else 150, fleet)
    assert record.status == "SUCCEEDED", fleet.logs()
    await assert_complete(pg, sm, n)
    assert await dead_letters(pg) == [], fleet.logs()
    assert all(w.poll() is None for w in workers), fleet.logs()  # they rode it out
    outage = "".join(fleet.log_of(w) for w in workers)
    assert "database unreachable" in outage  # they did see it, and backed off
    record_figures("postgres outage 10 s", {"executions": n, "progress_again_after_s": resumed})


async def test_a_worker_started_while_postgres_is_down_waits_for_it(
    pg: SQLStore,
    client: QueueClient,
    task_log: asyncpg.Connection,
    fleet: Fleet,
    fault_postgres: PostgresServer,
) -> None:
    """A worker that starts before PostgreSQL is reachable (a deployment's start order, or
    an outage) waits for it instead of exiting, then serves the batch."""
    n = 50
    await sources(pg, n)
    sm, batch = await chained_batch(pg, client, "pg-down-at-start")

    async def enqueued() -> bool:
        return batch.counters.created == n

    await eventually(enqueued, 60, "the batch to be enqueued")
    await task_log.close()
    await asyncio.to_thread(fault_postgres.halt)
    try:
        worker = fleet.worker()

        async def waiting() -> bool:
            return "database unreachable at start" in fleet.log_of(worker)

        await eventually(waiting, 60, "the worker to wait for the database", fleet)
        assert worker.poll() is None, fleet.logs()
    finally:
        await asyncio.to_thread(fault_postgres.start_again)
    record = await finished(batch, 120, fleet)
    assert record.status == "SUCCEEDED", fleet.logs()
    await assert_complete(pg, sm, n)


# ---------------------------------------------------------------- SIGTERM to all


async def test_sigterm_to_every_worker_then_new_workers_lose_nothing(
    pg: SQLStore, client: QueueClient, task_log: asyncpg.Connection, fleet: Fleet
) -> None:
    n = size(1000, 5000)
    await sources(pg, n)
    sm, batch = await chained_batch(pg, client, "sigterm-all")
    first = [fleet.worker("--grace", "0.5", TASK_DELAY="0.05") for _ in range(2)]
    await eventually(lambda: _at_least(task_log, n // 5), 60, "progress", fleet)
    for proc in first:
        fleet.signal(proc, signal.SIGTERM)
    for proc in first:
        assert await asyncio.to_thread(proc.wait, 60) == 0, fleet.logs()  # clean exits
    assert (await batch.counts()).get("SUCCEEDED", 0) < n  # stopped mid-batch
    exposed = await in_flight(pg)
    assert exposed == set(), "a stopped worker left leases behind"
    for _ in range(2):
        fleet.worker("--burst")
    resumed = await resumed_after(task_log, fleet)
    record = await finished(batch, 300 if FULL else 120, fleet)
    assert record.status == "SUCCEEDED", fleet.logs()
    await assert_complete(pg, sm, n)
    assert await dead_letters(pg) == []
    record_figures("sigterm all", {"executions": n, "new_workers_progress_after_s": resumed})


# ---------------------------------------------------------------- leader killed


async def test_a_leader_killed_while_enqueueing_is_resumed_by_running_it_again(
    pg: SQLStore, client: QueueClient, task_log: asyncpg.Connection, fleet: Fleet
) -> None:
    """kill -9 the leader in the middle of enqueueing; the same command again (same batch
    name) completes the batch with exactly one execution per source."""
    n = size(2000, 20000)
    await sources(pg, n)
    await numbers(pg, None)
    command = ("--machine", "numbers", "--source-machine", "intake", "--name", "big")
    command += ("--recover-every", "0", "--json")
    # with no worker running, a bounded queue holds the leader mid-enqueue
    leader = fleet.leader(*command, STATEFLEET_QUEUE_MAX_DEPTH=str(n // 4))

    async def halfway() -> bool:
        return await sm_count(pg) >= n // 4

    await eventually(halfway, 120, "the leader to enqueue a quarter", fleet)
    fleet.kill(leader)
    created = await sm_count(pg)
    assert created < n, "the leader finished enqueueing before it was killed"
    workers = [fleet.worker() for _ in range(2)]
    started = time.monotonic()
    again = fleet.leader(*command)
    deadline = 600 if FULL else 150
    code = await asyncio.to_thread(again.wait, deadline)
    assert code == 0, fleet.logs()
    sm = await numbers(pg, None)
    executions = await assert_complete(pg, sm, n)
    assert len({e.id for e in executions}) == n
    batches = await sm.list_batches()
    assert [b.name for b in batches] == ["big"]
    assert await dead_letters(pg) == []
    assert all(w.poll() is None for w in workers)
    record_figures(
        "leader killed",
        {"executions": n, "created_before_kill": created, "rerun_s": _since(started)},
    )


def _since(start: float) -> float:
    return round(time.monotonic() - start, 1)


async def sm_count(store: SQLStore) -> int:
    return await store.count_executions(ExecutionFilter(state_machine_id="numbers"))


# ---------------------------------------------------------------- lease expiry


async def test_a_frozen_worker_past_its_lease_cannot_overwrite_the_takeover(
    pg: SQLStore, client: QueueClient, task_log: asyncpg.Connection, fleet: Fleet
) -> None:
    """SIGSTOP a worker past its lease (and its jobs' locks); another worker takes its
    executions over; SIGCONT: its writes are refused by the version guard, and it says so."""
    n = size(200, 1000)
    await sources(pg, n)
    frozen = fleet.worker("--concurrency", "10", TASK_DELAY="0.3")
    sm, batch = await chained_batch(pg, client, "frozen")
    await eventually(lambda: _at_least(task_log, 10), 60, "the first worker to start", fleet)
    fleet.signal(frozen, signal.SIGSTOP)
    held = await in_flight(pg)
    assert held, "the frozen worker held nothing"
    held_ids = {execution_id for execution_id, _ in held}
    fleet.worker(TASK_DELAY="0.01")
    frozen_at = time.monotonic()

    async def taken_over() -> bool:  # past the lease (2 s) and the job locks (30 s)
        rows = await sm.list(ExecutionFilter(state_machine_id="numbers", status="SUCCEEDED"))
        return held_ids <= {r.id for r in rows}

    await eventually(taken_over, 120, "the executions to be taken over", fleet)
    record_figures("frozen worker", {"held": len(held), "taken_over_after_s": _since(frozen_at)})
    fleet.signal(frozen, signal.SIGCONT)
    record = await finished(batch, 120, fleet)
    assert record.status == "SUCCEEDED", fleet.logs()
    await assert_complete(pg, sm, n)

    async def refused() -> bool:
        return "checkpoint refused" in fleet.log_of(frozen)

    await eventually(refused, 30, "the frozen worker to log the refused write", fleet)
    assert await reruns(task_log) <= held
    assert frozen.poll() is None  # it lives on, and serves the next jobs
