"""Worker subprocesses (``statefleet worker``): two workers share a batch, one is killed,
one is stopped with SIGTERM. Real PostgreSQL, real Redis, real arq."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from statefleet import BatchOptions, ExecutionFilter, PersistentStateMachine
from statefleet.queue import QueueClient
from statefleet.queue.inspector import Inspector
from statefleet.statemachine.protocols import ExecutionRecord
from statefleet.store import SQLStore
from statefleet.ui.queueops import QueueOps
from tests.queue.conftest import FOUR_STATES

pytestmark = pytest.mark.timeout(120)

#: Task callables that log every completed state in a table with a unique key on
#: (execution, state, attempt): a state that completes twice counts a second run.
APP = """
import asyncio, os
import asyncpg
from statefleet import App

DSN = os.environ["TASK_LOG_DSN"]
DELAY = float(os.environ.get("TASK_DELAY", "0"))
_pool = None

async def pool():
    global _pool
    if _pool is None:
        _pool = await asyncpg.create_pool(DSN, min_size=1, max_size=5)
    return _pool

async def log(context, value):
    if DELAY:
        await asyncio.sleep(DELAY)
    p = await pool()
    await p.execute(
        "INSERT INTO task_log (execution_id, state, attempt, runs) VALUES ($1, $2, $3, 1) "
        "ON CONFLICT (execution_id, state, attempt) DO UPDATE SET runs = task_log.runs + 1",
        context.execution_id, context.state_name, context.attempt)
    return value

async def double(payload, context):
    return await log(context, int(payload["n"]) * 2)

async def check(payload, context):
    return await log(context, payload["doubled"] == payload["n"] * 2)

app = App(resources={"math:double": double, "math:check": check})
"""


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
async def task_log(pg: SQLStore, store_postgresql_url: str) -> Any:
    conn = await asyncpg.connect(dsn(store_postgresql_url))
    await conn.execute(
        "DROP TABLE IF EXISTS task_log; CREATE TABLE task_log (execution_id text, state text, "
        "attempt int, runs int, PRIMARY KEY (execution_id, state, attempt))"
    )
    try:
        yield conn
    finally:
        await conn.close()


async def sources(pg: SQLStore, n: int) -> None:
    """n SUCCEEDED executions of machine "intake" to chain from."""
    intake = await PersistentStateMachine.create(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        machine_id="intake",
        store=pg,
    )
    records = []
    for i in range(n):
        record = intake.new_execution({"n": i})
        record.status = "SUCCEEDED"
        record.output = {"n": i}
        records.append(record)
    await pg.create_executions(records)


async def wait_for(condition: Callable[[], Any], timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def chained_batch(pg: SQLStore, client: QueueClient, name: str) -> Any:
    sm = await PersistentStateMachine.create(FOUR_STATES, machine_id="numbers", store=pg)
    sm.set_queue_client(client)
    return sm, await sm.execute_batch(
        ExecutionFilter(state_machine_id="intake", status="SUCCEEDED"),
        options=BatchOptions(name=name, chunk_size=500),
    )


async def assert_complete(
    pg: SQLStore, sm: PersistentStateMachine, n: int
) -> list[ExecutionRecord]:
    executions = await sm.list()
    assert len(executions) == n
    assert {e.status for e in executions} == {"SUCCEEDED"}
    assert sorted(e.output["doubled"] for e in executions) == [2 * i for i in range(n)]
    async with pg.engine.connect() as conn:
        from sqlalchemy import text

        linked = (
            await conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT source_execution_id) FROM linked_executions "
                    "WHERE target_machine_id = 'numbers'"
                )
            )
        ).one()
        assert tuple(linked) == (n, n)  # every source linked once
        gaps = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT execution_id, count(*) c, max(sequence) m, "
                    "min(sequence) s FROM state_history h JOIN executions e ON e.id = "
                    "h.execution_id WHERE e.state_machine_id = 'numbers' GROUP BY execution_id) "
                    "t WHERE c <> 4 OR m <> 4 OR s <> 1"
                )
            )
        ).scalar_one()
        assert gaps == 0  # history gapless: Prepare, Double, Check, Done
    return executions


def worker_env(store_postgresql_url: str, **extra: str) -> dict[str, str]:
    return {"TASK_LOG_DSN": dsn(store_postgresql_url), **extra}


async def test_two_workers_finish_a_chained_batch_of_2000(
    pg: SQLStore,
    client: QueueClient,
    task_log: Any,
    app_module: Callable[[str], str],
    spawn: Callable[..., subprocess.Popen[bytes]],
    store_postgresql_url: str,
) -> None:
    await sources(pg, 2000)
    app = app_module(APP)
    env = worker_env(store_postgresql_url)
    workers = [spawn(app, "--concurrency", "50", "--burst", env=env) for _ in range(2)]
    sm, batch = await chained_batch(pg, client, "two")
    record = await asyncio.wait_for(batch.wait(), 90)
    assert record.status == "SUCCEEDED"
    assert record.counters == {"SUCCEEDED": 2000}
    await assert_complete(pg, sm, 2000)
    assert await task_log.fetchval("SELECT max(runs) FROM task_log") == 1
    for proc in workers:
        assert proc.wait(timeout=30) == 0


async def test_a_killed_worker_loses_nothing_and_no_completed_state_runs_twice(
    pg: SQLStore,
    client: QueueClient,
    task_log: Any,
    app_module: Callable[[str], str],
    spawn: Callable[..., subprocess.Popen[bytes]],
    store_postgresql_url: str,
) -> None:
    n = 600
    await sources(pg, n)
    app = app_module(APP)
    env = worker_env(store_postgresql_url, TASK_DELAY="0.02")
    victim = spawn(app, "--concurrency", "20", env=env)
    survivor = spawn(app, "--concurrency", "20", "--burst", env=env)
    sm, batch = await chained_batch(pg, client, "kill")

    async def progressed() -> bool:
        return bool(await task_log.fetchval("SELECT count(*) FROM task_log") >= 150)

    await wait_for(progressed, 60)
    held = {  # what the victim had in flight (leased) when it died
        r.id for r in await sm.list(ExecutionFilter(status="RUNNING")) if r.lease_owner
    }
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    record = await asyncio.wait_for(batch.wait(), 90)
    assert record.status == "SUCCEEDED"
    await assert_complete(pg, sm, n)
    rerun = {
        row["execution_id"] for row in await task_log.fetch("SELECT * FROM task_log WHERE runs > 1")
    }
    assert rerun <= held  # only states in flight at the kill ran again, never a checkpointed one
    assert survivor.wait(timeout=30) == 0


async def test_sigterm_lets_running_executions_finish_or_hands_them_over(
    pg: SQLStore,
    client: QueueClient,
    task_log: Any,
    app_module: Callable[[str], str],
    spawn: Callable[..., subprocess.Popen[bytes]],
    store_postgresql_url: str,
) -> None:
    n = 200
    await sources(pg, n)
    app = app_module(APP)
    first = spawn(
        app,
        "--concurrency",
        "20",
        "--grace",
        "0.3",
        env=worker_env(store_postgresql_url, TASK_DELAY="0.2"),
    )
    sm, batch = await chained_batch(pg, client, "term")

    async def started() -> bool:
        return bool(await task_log.fetchval("SELECT count(*) FROM task_log") >= 20)

    await wait_for(started, 60)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0  # a clean exit
    counts = await batch.counts()
    assert counts.get("SUCCEEDED", 0) < n
    handed = await sm.list(ExecutionFilter(status="RUNNING"))
    assert all(
        r.lease_expires_at is None or r.lease_expires_at.timestamp() < time.time() + 1
        for r in handed
    )  # released, not left leased
    second = spawn(app, "--concurrency", "50", "--burst", env=worker_env(store_postgresql_url))
    record = await asyncio.wait_for(batch.wait(), 60)
    assert record.status == "SUCCEEDED"
    await assert_complete(pg, sm, n)
    assert second.wait(timeout=30) == 0


async def test_a_paused_worker_finishes_what_it_holds_and_takes_nothing_until_resumed(
    pg: SQLStore,
    client: QueueClient,
    task_log: Any,
    app_module: Callable[[str], str],
    spawn: Callable[..., subprocess.Popen[bytes]],
    store_postgresql_url: str,
) -> None:
    app = app_module(APP)
    spawn(app, "--concurrency", "5", env=worker_env(store_postgresql_url, TASK_DELAY="0.5"))
    inspector = Inspector(client)

    async def listed() -> bool:
        return len(await inspector.workers()) == 1

    await wait_for(listed, 30)
    [info] = await inspector.workers()
    assert info["paused"] is False
    sm = await PersistentStateMachine.create(FOUR_STATES, machine_id="numbers", store=pg)
    sm.set_queue_client(client)
    held = await sm.execute_bulk([{"n": 0}], BatchOptions(name="held"))

    async def running() -> bool:
        return bool(await task_log.fetchval("SELECT count(*) FROM task_log") >= 1)

    await wait_for(running, 30)  # the worker holds that job now
    await QueueOps(client).pause_workers([info["id"]], paused=True)

    async def paused() -> bool:
        return bool((await inspector.workers())[0]["paused"])

    await wait_for(paused, 30)
    waiting = await sm.execute_bulk([{"n": i} for i in range(1, 6)], BatchOptions(name="waiting"))
    done = await asyncio.wait_for(held.wait(), 30)
    assert done.status == "SUCCEEDED"  # the job it held when paused finished
    await asyncio.sleep(1.5)  # several polls and heartbeats of the paused worker
    assert await waiting.counts() == {"QUEUED": 5}
    assert await client.depth() == 5

    await QueueOps(client).pause_workers([info["id"]], paused=False)
    record = await asyncio.wait_for(waiting.wait(), 60)
    assert record.counters == {"SUCCEEDED": 5}
    assert (await inspector.workers())[0]["paused"] is False
