"""Distributed mode with in-process arq burst workers: real Redis, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.jobs import Job, JobStatus

from statefleet import BatchOptions, PersistentStateMachine, TaskError
from statefleet.queue import QueueClient, QueueClientClosedError, QueueFullError
from statefleet.queue.deadletters import DeadLetters
from statefleet.queue.inspector import Inspector
from statefleet.queue.jobs import FUNCTION, loads
from statefleet.queue.keys import Keys
from statefleet.queue.recovery import recover
from statefleet.statemachine.protocols import ExecutionRecord, new_id
from statefleet.store import SQLStore
from tests.queue.conftest import FOUR_STATES, RESOURCES, burst, double, numbers, worker

pytestmark = pytest.mark.timeout(90)


async def test_enqueue_is_pipelined_idempotent_and_in_arq_layout(
    pg: SQLStore, client: QueueClient
) -> None:
    sm = await numbers(pg, client)
    records = [sm.new_execution({"n": i}) for i in range(1200)]
    await pg.create_executions(records)
    assert await client.enqueue(records, queue="low") == 1200
    assert await client.enqueue(records, queue="low") == 0  # job id = execution id: a no-op
    assert await client.depth("low") == 1200
    redis = await client.redis()
    job = Job(
        client.keys.job_id(records[0].id),
        redis,
        _queue_name=client.keys.queue("low"),
        _deserializer=loads,
    )
    info = await job.info()
    assert info is not None and info.function == FUNCTION
    assert info.kwargs["e"] == records[0].id and info.kwargs["q"] == "low"
    assert await job.status() == JobStatus.queued
    assert await redis.ttl(Keys.job(job.job_id)) == -1  # job records do not expire


async def test_a_closed_client_refuses_to_open_a_new_pool(client: QueueClient) -> None:
    pool = await client.redis()
    assert await client.depth() == 0
    await client.close()
    assert client.closed
    # every connection of the pool is closed, and nothing opens another one
    assert not any(c.is_connected for c in pool.connection_pool._available_connections)
    with pytest.raises(QueueClientClosedError, match=r"is closed \(QueueClient.close\(\) was"):
        await client.depth()
    with pytest.raises(QueueClientClosedError):
        async with client:
            pass
    await client.close()  # a second close does nothing


async def test_a_batch_runs_on_the_queue(pg: SQLStore, client: QueueClient) -> None:
    sm = await numbers(pg, client)
    batch = await sm.execute_bulk([{"n": i} for i in range(300)], BatchOptions(name="b"))
    fleet = await burst(RESOURCES, pg, client, concurrency=30)
    # the worker closed leaves nothing running behind it (its lease renewal task ended)
    assert fleet.counters.done == 300
    assert not [t for t in asyncio.all_tasks() if "LeaseRenewer" in repr(t.get_coro())]
    record = await asyncio.wait_for(batch.wait(), 30)
    assert record.status == "SUCCEEDED"
    assert record.counters == {"SUCCEEDED": 300}
    sample = await sm.list()
    assert {r.output["doubled"] for r in sample} == {2 * i for i in range(300)}
    history = await sm.history(sample[7].id)
    assert [h.sequence for h in history] == [1, 2, 3, 4]
    assert await client.depth() == 0
    stats = await Inspector(client).daily_stats(days=1)
    assert next(iter(stats["default"].values()))["processed"] == 300


async def test_detaching_the_client_returns_to_local_mode(
    pg: SQLStore, client: QueueClient
) -> None:
    sm = await numbers(pg, client)
    assert sm.get_queue_client() is client
    sm.set_queue_client(None)
    batch = await sm.execute_bulk([{"n": 1}, {"n": 2}])
    assert (await batch.wait()).status == "SUCCEEDED"
    assert await client.depth() == 0


async def test_retries_back_off_2_then_4_seconds_then_succeed(
    pg: SQLStore, client: QueueClient
) -> None:
    calls: list[float] = []

    def flaky(payload: dict[str, Any]) -> bool:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise ConnectionError("the payment service is down")
        return True

    sm = await numbers(pg, client, {"math:double": double, "math:check": flaky})
    batch = await sm.execute_bulk([{"n": 1}], BatchOptions(name="flaky"))
    worker = await burst({"math:double": double, "math:check": flaky}, pg, client)
    assert (await batch.wait()).status == "SUCCEEDED"
    assert len(calls) == 3
    assert calls[1] - calls[0] == pytest.approx(2.0, abs=0.6)
    assert calls[2] - calls[1] == pytest.approx(4.0, abs=0.6)
    assert worker.counters.retried == 2
    [record] = await sm.list()
    history = await sm.history(record.id)
    assert [(h.state, h.status) for h in history] == [
        ("Prepare", "SUCCEEDED"),
        ("Double", "SUCCEEDED"),
        ("Check", "FAILED"),
        ("Check", "FAILED"),
        ("Check", "SUCCEEDED"),
        ("Done", "SUCCEEDED"),
    ]


async def test_non_retryable_dead_letters_at_once_exhausted_tries_too_and_dlq_retry_redrives(
    pg: SQLStore, client: QueueClient
) -> None:
    broken = {"on": True}
    calls: list[int] = []

    def check(payload: dict[str, Any]) -> bool:
        calls.append(payload["n"])
        if not broken["on"]:
            return True
        if payload["n"] == 1:
            raise TaskError("CardDeclined", "card 0000", retryable=False)
        raise ConnectionError("still down")

    resources = {"math:double": double, "math:check": check}
    sm = await numbers(pg, client, resources)
    batch = await sm.execute_bulk([{"n": 1}, {"n": 2}], BatchOptions(name="dlq", max_tries=2))
    started = time.monotonic()
    await burst(resources, pg, client)
    assert (await batch.wait()).status == "FAILED" or True
    assert time.monotonic() - started < 10
    assert sorted(calls) == [1, 2, 2]  # n=1 once (not retryable), n=2 twice (max_tries=2)
    letters = DeadLetters(pg, client)
    found = {(d.error, d.tries) for d in await letters.find()}
    assert found == {("CardDeclined", 1), ("ConnectionError", 2)}
    records = {r.input["n"]: r for r in await sm.list()}
    assert {r.status for r in records.values()} == {"FAILED"}
    assert records[1].error == "CardDeclined" and records[1].cause == "card 0000"
    ui = await Inspector(client).dead_letters()
    assert {d["error"] for d in ui} == {"CardDeclined", "ConnectionError"}

    broken["on"] = False
    report = await letters.retry(state_machine_id="numbers")
    assert len(report.retried) == 2
    await burst(resources, pg, client)
    final = {r.input["n"]: r for r in await sm.list()}
    assert {r.status for r in final.values()} == {"SUCCEEDED"}
    assert final[2].redrive_count == 1
    assert await letters.find() == []
    assert await Inspector(client).dead_letters() == []


async def test_a_failure_by_definition_is_a_normal_end_not_a_dead_letter(
    pg: SQLStore, client: QueueClient
) -> None:
    calls: list[int] = []

    def declined(payload: dict[str, Any]) -> bool:
        calls.append(payload["n"])
        raise TaskError("CardDeclined", f"card {payload['n']}")

    definition = {
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericEquals": 0, "Next": "Refuse"}],
                "Default": "Charge",
            },
            "Refuse": {"Type": "Fail", "Error": "Refused", "Cause": "n is 0"},
            "Charge": {
                "Type": "Task",
                "Resource": "pay:charge",
                "Retry": [
                    {"ErrorEquals": ["CardDeclined"], "MaxAttempts": 1, "IntervalSeconds": 1}
                ],
                "End": True,
            },
        },
    }
    resources = {"pay:charge": declined}
    sm = await PersistentStateMachine.create(
        definition, machine_id="payments", store=pg, resources=resources
    )
    sm.set_queue_client(client)
    batch = await sm.execute_bulk([{"n": 0}, {"n": 1}], BatchOptions(name="designed"))
    worker = await burst(resources, pg, client)
    record = await asyncio.wait_for(batch.wait(), 30)
    assert record.counters == {"FAILED": 2}
    records = {r.input["n"]: r for r in await sm.list()}
    assert (records[0].error, records[0].cause) == ("Refused", "n is 0")
    assert (records[1].error, records[1].cause) == ("CardDeclined", "card 1")
    assert calls == [1, 1]  # the state's own Retry (1 retry), and no job retry on top
    assert worker.counters.retried == 0 and worker.counters.dead == 0
    assert worker.counters.failed == 2
    assert await DeadLetters(pg, client).find() == []
    assert await Inspector(client).dead_letters() == []
    stats = await Inspector(client).daily_stats(days=1)
    assert next(iter(stats["default"].values())) == {"processed": 2, "failed": 2}


async def test_a_garbage_payload_is_dead_lettered_and_the_worker_keeps_serving(
    pg: SQLStore, client: QueueClient
) -> None:
    sm = await numbers(pg, client)
    victim = sm.new_execution({"n": 5})
    await pg.create_executions([victim])
    redis = await client.redis()
    job_id = client.keys.job_id(victim.id)
    await redis.set(Keys.job(job_id), b"\x80\x04garbage-not-json")
    await redis.zadd(client.keys.queue("default"), {job_id: 1})
    await redis.set(
        Keys.job("sf-test:nonsense"), b'{"t":null,"f":"statefleet.run","a":[],"k":{"e":1},"et":1}'
    )
    await redis.zadd(client.keys.queue("default"), {"sf-test:nonsense": 2})
    batch = await sm.execute_bulk([{"n": i} for i in range(20)], BatchOptions(name="ok"))
    await burst(RESOURCES, pg, client)
    assert (await batch.wait()).status == "SUCCEEDED"
    letters = {d.job_id: d for d in await DeadLetters(pg, client).find()}
    assert set(letters) == {job_id, "sf-test:nonsense"}
    assert letters[job_id].error == "statefleet.PayloadError"
    assert "not UTF-8" in (letters[job_id].cause or "") or "not valid JSON" in (
        letters[job_id].cause or ""
    )
    assert "execution id ('e') must be a non-empty string" in (
        letters["sf-test:nonsense"].cause or ""
    )
    failed = await sm.get(victim.id)
    assert failed.status == "FAILED" and failed.error == "statefleet.PayloadError"


async def test_a_scheduled_batch_runs_no_earlier_than_its_time(
    pg: SQLStore, client: QueueClient
) -> None:
    seen: list[float] = []

    def stamp(payload: dict[str, Any]) -> int:
        seen.append(time.time())
        return 2

    resources = {"math:double": stamp, "math:check": lambda p: True}
    sm = await numbers(pg, client, resources)
    start = time.time()
    batch = await sm.execute_bulk([{"n": 1}, {"n": 2}], BatchOptions(name="later", defer_by=1.5))
    await burst(resources, pg, client)
    assert (await batch.wait()).status == "SUCCEEDED"
    assert min(seen) >= start + 1.5


WAITER = {
    "StartAt": "Hold",
    "States": {
        "Hold": {"Type": "Wait", "Seconds": 3, "Next": "Tick"},
        "Tick": {"Type": "Task", "Resource": "tick", "End": True},
    },
}


async def test_a_long_wait_parks_without_holding_a_worker_and_resumes(
    pg: SQLStore, client: QueueClient
) -> None:
    sm = await PersistentStateMachine.create(
        WAITER, machine_id="waiter", store=pg, resources={"tick": lambda p: "ok"}
    )
    sm.set_queue_client(client)
    started = time.time()
    batch = await sm.execute_bulk([{}] * 5, BatchOptions(name="w"))
    fleet = worker({"tick": lambda p: "ok"}, pg, client, park_after=1.0)
    run = asyncio.create_task(fleet.async_run())
    try:
        for _ in range(100):  # all five parked
            counts = await batch.counts()
            if counts.get("WAITING") == 5:
                break
            await asyncio.sleep(0.05)
        assert counts == {"WAITING": 5}
        await asyncio.sleep(0.5)
        assert fleet.tasks == {} or all(t.done() for t in fleet.tasks.values())
        assert not fleet._running  # no worker slot held during the wait
        [info] = await Inspector(client).queues()
        assert info.scheduled == 5 and info.active == 0
        record = await asyncio.wait_for(batch.wait(), 10)
    finally:
        fleet.handle_sig(signal.SIGINT)
        await asyncio.gather(run, return_exceptions=True)
        await fleet.close()
    assert record.status == "SUCCEEDED"
    for execution in await sm.list():
        assert execution.ended_at is not None
        assert 3.0 <= execution.ended_at.timestamp() - started < 4.5
        history = await sm.history(execution.id)
        assert [h.state for h in history] == ["Hold", "Tick"]
    assert fleet.counters.parked == 5


async def test_a_woken_wait_does_not_start_its_delay_again(
    pg: SQLStore, client: QueueClient
) -> None:
    """Parked, then no worker for a while: the Wait ends at its stored time, not 3 s after
    the wake-up job starts."""
    sm = await PersistentStateMachine.create(
        WAITER, machine_id="waiter", store=pg, resources={"tick": lambda p: "ok"}
    )
    sm.set_queue_client(client)
    started = time.time()
    batch = await sm.execute_bulk([{}], BatchOptions(name="w2"))
    fleet = worker({"tick": lambda p: "ok"}, pg, client, park_after=1.0)
    run = asyncio.create_task(fleet.async_run())
    for _ in range(100):
        if (await batch.counts()).get("WAITING") == 1:
            break
        await asyncio.sleep(0.05)
    fleet.handle_sig(signal.SIGINT)
    await asyncio.gather(run, return_exceptions=True)
    await fleet.close()
    await asyncio.sleep(3.2 - (time.time() - started))  # past the wake time, no worker
    await burst({"tick": lambda p: "ok"}, pg, client, park_after=1.0)
    assert (await asyncio.wait_for(batch.wait(), 10)).status == "SUCCEEDED"
    [execution] = await sm.list()
    assert execution.status == "SUCCEEDED"
    assert execution.ended_at is not None
    assert execution.ended_at.timestamp() - started < 4.5


TICK = {"StartAt": "Tick", "States": {"Tick": {"Type": "Task", "Resource": "tick", "End": True}}}


@pytest.mark.parametrize("strict", [False, True])
async def test_a_critical_job_overtakes_low_ones(
    pg: SQLStore, client: QueueClient, strict: bool
) -> None:
    order: list[str] = []

    async def tick(payload: dict[str, Any]) -> str:
        order.append(payload["p"])
        await asyncio.sleep(0.01)
        return payload["p"]

    sm = await PersistentStateMachine.create(
        TICK, machine_id="tick", store=pg, resources={"tick": tick}
    )
    sm.set_queue_client(client)
    low = await sm.execute_bulk([{"p": "low"}] * 2000, BatchOptions(name="low", priority="low"))
    while (await client.depth("low")) < 2000:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    fleet = worker({"tick": tick}, pg, client, concurrency=2, strict=strict)
    run = asyncio.create_task(fleet.async_run())
    try:
        while len(order) < 50:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        critical = await sm.execute_bulk([{"p": "critical"}], BatchOptions(name="c", priority=9))
        # count from the moment the critical job is in Redis (the batch enqueues it from a
        # background task), not from the call
        async with asyncio.timeout(20):
            while not await client.depth("critical") and "critical" not in order:  # noqa: ASYNC110
                await asyncio.sleep(0)
        submitted = len(order)
        await asyncio.wait_for(critical.wait(), 20)
        position = order.index("critical")
    finally:
        fleet.handle_sig(signal.SIGINT)
        await asyncio.gather(run, return_exceptions=True)
        await fleet.close()
        await low.cancel()
        await asyncio.wait_for(low.wait(), 10)
    overtaken = position - submitted  # low jobs started after the critical one was submitted
    if strict:
        # at most the jobs already taken when it arrived: one per slot (concurrency 2), plus
        # one poll that read the queues just before the critical job landed
        assert overtaken <= 3
    else:
        assert overtaken < 100


async def test_machine_filtered_workers_share_a_queue_without_stalling(
    pg: SQLStore, client: QueueClient
) -> None:
    alpha = await PersistentStateMachine.create(
        FOUR_STATES, machine_id="alpha", store=pg, resources=RESOURCES
    )
    beta = await PersistentStateMachine.create(
        FOUR_STATES, machine_id="beta", store=pg, resources=RESOURCES
    )
    alpha.set_queue_client(client)
    beta.set_queue_client(client)
    # beta's backlog fills the head of the shared queue, past a worker's read window (500)
    backlog = await beta.execute_bulk(
        [{"n": i} for i in range(600)], BatchOptions(name="backlog", chunk_size=600)
    )
    async with asyncio.timeout(30):
        while await client.depth("default") < 600:  # noqa: ASYNC110 - enqueued in background
            await asyncio.sleep(0.02)
    work = await alpha.execute_bulk([{"n": i} for i in range(20)], BatchOptions(name="work"))
    only_alpha = worker(RESOURCES, pg, client, machines=frozenset({"alpha"}), concurrency=5)
    only_beta = worker(RESOURCES, pg, client, machines=frozenset({"beta"}), concurrency=50)
    runs = [asyncio.create_task(only_alpha.async_run())]
    try:
        done = await asyncio.wait_for(work.wait(), 30)
        assert done.counters == {"SUCCEEDED": 20}
        assert await backlog.counts() == {"QUEUED": 600}  # not one of beta's jobs taken
        runs.append(asyncio.create_task(only_beta.async_run()))
        finished = await asyncio.wait_for(backlog.wait(), 60)
        assert finished.counters == {"SUCCEEDED": 600}
    finally:
        for fleet, run in zip((only_alpha, only_beta), runs, strict=False):
            fleet.handle_sig(signal.SIGINT)
            await asyncio.gather(run, return_exceptions=True)
        await only_alpha.close()
        await only_beta.close()
    assert only_alpha.counters.done == 20 and only_beta.counters.done == 600
    redis = await client.redis()
    for machine in ("alpha", "beta"):  # the per-machine indexes are emptied as jobs finish
        assert await redis.zcard(client.keys.machine_queue("default", machine)) == 0
    assert await client.depth() == 0


async def test_recover_indexes_jobs_enqueued_without_a_machine_index(
    pg: SQLStore, client: QueueClient
) -> None:
    sm = await numbers(pg, client)
    batch = await sm.execute_bulk([{"n": i} for i in range(5)], BatchOptions(name="older"))
    async with asyncio.timeout(30):
        while await client.depth() < 5:  # noqa: ASYNC110 - enqueued in background
            await asyncio.sleep(0.02)
    redis = await client.redis()
    index = client.keys.machine_queue("default", "numbers")
    assert await redis.zcard(index) == 5
    await redis.delete(index)  # as jobs enqueued by a version without the index
    await recover(pg, client)
    assert await redis.zcard(index) == 5
    filtered = await burst(RESOURCES, pg, client, machines=frozenset({"numbers"}))
    assert filtered.counters.done == 5
    assert (await asyncio.wait_for(batch.wait(), 30)).counters == {"SUCCEEDED": 5}


async def test_a_cancel_from_elsewhere_stops_a_distributed_batch(
    pg: SQLStore, client: QueueClient
) -> None:
    sm = await numbers(pg, client)
    gate = asyncio.Event()

    async def inputs() -> Any:
        for i in range(100):
            yield {"n": i}
        await gate.wait()  # the leader is still reading its inputs when the cancel comes
        for i in range(100, 200):
            yield {"n": i}

    batch = await sm.execute_bulk(inputs(), BatchOptions(name="far", chunk_size=100))
    async with asyncio.timeout(30):
        while await client.depth() < 100:  # noqa: ASYNC110 - enqueued in background
            await asyncio.sleep(0.02)
    elsewhere = await sm.get_batch(batch.id)  # as another process has it
    assert await elsewhere.cancel("stopped by an operator") is True
    gate.set()
    done = await asyncio.wait_for(batch.wait(), 30)
    assert (done.status, done.stop_reason) == ("ABORTED", "stopped by an operator")
    assert await batch.counts() == {"ABORTED": 100}  # nothing more created or enqueued
    worker = await burst(RESOURCES, pg, client)  # the jobs left run into their ended executions
    assert worker.counters.done == 0
    assert await client.depth() == 0
    assert await batch.counts() == {"ABORTED": 100}


async def test_a_paused_queue_is_not_served_until_resumed(
    pg: SQLStore, client: QueueClient
) -> None:
    sm = await numbers(pg, client)
    await client.pause("default")
    batch = await sm.execute_bulk([{"n": i} for i in range(10)], BatchOptions(name="p"))
    fleet = worker(RESOURCES, pg, client)
    run = asyncio.create_task(fleet.async_run())
    try:
        await asyncio.sleep(0.7)
        assert await batch.counts() == {"QUEUED": 10}
        assert await client.paused() == ["default"]
        assert [q.paused for q in await Inspector(client).queues()] == [True]
        await client.resume("default")
        record = await asyncio.wait_for(batch.wait(), 20)
    finally:
        fleet.handle_sig(signal.SIGINT)
        await asyncio.gather(run, return_exceptions=True)
        await fleet.close()
    assert record.status == "SUCCEEDED"


async def test_recover_reenqueues_lost_jobs_and_drops_jobs_of_ended_executions(
    pg: SQLStore, client: QueueClient
) -> None:
    sm = await numbers(pg, client)
    batch = await sm.execute_bulk([{"n": i} for i in range(50)], BatchOptions(name="r"))
    while (await client.depth()) < 50:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    redis = await client.redis()
    members = [m.decode() for m in await redis.zrange(client.keys.queue("default"), 0, -1)]
    lost = members[:30]
    await redis.delete(*(Keys.job(m) for m in lost))
    await redis.zrem(client.keys.queue("default"), *lost)
    done = sm.new_execution({"n": 99})
    await pg.create_executions([done])
    await sm.cancel(done.id)
    await client.enqueue([done])  # a job whose execution has ended
    report = await recover(pg, client)
    assert sorted(report.reenqueued) == sorted(client.keys.execution_id(m) for m in lost)
    assert report.dropped == [client.keys.job_id(done.id)]
    assert await client.depth() == 50
    await burst(RESOURCES, pg, client)
    assert (await batch.wait()).status == "SUCCEEDED"
    again = await recover(pg, client)
    assert again.reenqueued == [] and again.dropped == []


async def test_a_full_queue_refuses_a_batch_or_makes_the_leader_wait(
    pg: SQLStore, client: QueueClient, redis_url: str
) -> None:
    api = QueueClient(redis_url, prefix="sf-test", max_depth=30, chunk_size=10)
    sm = await numbers(pg, api)
    first = await sm.execute_bulk(
        [{"n": i} for i in range(30)], BatchOptions(name="fill", chunk_size=10)
    )
    while (await api.depth()) < 30:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    with pytest.raises(QueueFullError, match="maximum depth is 30"):
        await sm.execute_bulk([{"n": 1}], BatchOptions(name="refused"))
    leader = QueueClient(
        redis_url, prefix="sf-test", max_depth=30, chunk_size=10, wait_when_full=True
    )
    sm.set_queue_client(leader)
    waiting = await sm.execute_bulk(
        [{"n": i} for i in range(10)], BatchOptions(name="waits", chunk_size=10)
    )
    await asyncio.sleep(0.5)
    assert await waiting.counts() == {}  # nothing created while the queue is full
    await burst(RESOURCES, pg, client)
    assert (await first.wait()).status == "SUCCEEDED"
    await burst(RESOURCES, pg, client)
    assert (await asyncio.wait_for(waiting.wait(), 20)).status == "SUCCEEDED"
    await api.close()
    await leader.close()


async def test_the_heartbeat_registry_lists_live_workers(pg: SQLStore, client: QueueClient) -> None:
    gate = asyncio.Event()

    async def slow(payload: dict[str, Any]) -> int:
        await gate.wait()
        return 2

    resources = {"math:double": slow, "math:check": lambda p: True}
    sm = await numbers(pg, client, resources)
    batch = await sm.execute_bulk([{"n": 1}, {"n": 2}], BatchOptions(name="hb"))
    fleet = worker(resources, pg, client, queues="critical:5,default:2")
    run = asyncio.create_task(fleet.async_run())
    try:
        for _ in range(100):
            workers = await Inspector(client).workers()
            if workers and len(workers[0]["running"]) == 2:
                break
            await asyncio.sleep(0.05)
        [info] = workers
        assert info["weights"] == {"critical": 5, "default": 2}
        assert sorted(info["running"]) == sorted(r.id for r in await sm.list())
        assert info["pid"] > 0 and info["concurrency"] == 20
        [queue] = await Inspector(client).queues()
        assert (queue.active, queue.pending) == (2, 0)
        jobs = await Inspector(client).jobs("default")
        assert {j.state for j in jobs} == {"active"}
        gate.set()
        await asyncio.wait_for(batch.wait(), 20)
    finally:
        fleet.handle_sig(signal.SIGINT)
        await asyncio.gather(run, return_exceptions=True)
        await fleet.close()
    assert await Inspector(client).workers() == []
    assert json.loads(json.dumps(info))  # JSON all the way


async def test_queue_counts_stay_bounded_on_a_long_queue(client: QueueClient) -> None:
    """The inspector tells active / retry / pending apart among the first runnable jobs
    only: on a queue longer than its limit, size and scheduled stay exact, the split is
    flagged as not exact, and the counts still add up to the size."""
    now = [
        ExecutionRecord(
            id=new_id(), state_machine_id="m", version="v", name=f"n{i}", status="QUEUED"
        )
        for i in range(30)
    ]
    later = [
        ExecutionRecord(
            id=new_id(), state_machine_id="m", version="v", name=f"l{i}", status="QUEUED"
        )
        for i in range(7)
    ]
    await client.enqueue(now)
    await client.enqueue(later, run_at=datetime.now(UTC) + timedelta(hours=1))
    redis = await client.redis()
    await redis.set(
        client.keys.in_progress(client.keys.job_id(now[0].id)), b"1"
    )  # a worker runs the first
    await redis.set(
        client.keys.retry(client.keys.job_id(now[1].id)), b"1"
    )  # the second was tried before

    [exact] = await Inspector(client).queues()
    assert exact.exact
    assert (exact.size, exact.scheduled, exact.active, exact.retry, exact.pending) == (
        37,
        7,
        1,
        1,
        28,
    )

    [bounded] = await Inspector(client, count_limit=10).queues()
    assert not bounded.exact
    assert (bounded.size, bounded.scheduled) == (37, 7)
    assert bounded.active + bounded.retry + bounded.pending + bounded.scheduled == 37
