"""Callbacks in distributed mode: real PostgreSQL, Redis and arq workers (in-process burst
workers; subprocesses for the kill). A parked execution holds no worker: its job is gone or
deferred to its deadline, and an answer (re)creates or brings it forward."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from statefleet import (
    Batch,
    BatchOptions,
    PersistentStateMachine,
    QueueClient,
    send_message,
    send_task_failure,
    send_task_heartbeat,
    send_task_success,
)
from statefleet.queue.recovery import recover
from statefleet.queue.worker import FleetWorker
from statefleet.statemachine.protocols import ExecutionFilter, ExecutionRecord
from statefleet.store import SQLStore
from tests.callbacks.machines import Inbox, approval, open_wait_of, payment, until_status
from tests.queue.conftest import burst, worker

_BATCHES: list[Batch] = []


@pytest.fixture(autouse=True)
async def batches_followed(pg: SQLStore) -> AsyncIterator[None]:
    """Each test's batches have ended (their follower tasks done) before its store closes."""
    yield
    pending, _BATCHES[:] = list(_BATCHES), []
    for batch in pending:
        if batch._task is not None and not batch._task.done():
            batch._task.cancel()
            await asyncio.gather(batch._task, return_exceptions=True)


async def queued(
    store: SQLStore, client: QueueClient, definition: Any, inputs: list[Any], name: str
) -> tuple[PersistentStateMachine, list[ExecutionRecord]]:
    """Create the executions on the queue (a bulk batch) and return them, not yet run."""
    sm = await PersistentStateMachine.create(definition, machine_id=name, store=store)
    sm.set_queue_client(client)
    batch = await sm.execute_bulk(inputs, BatchOptions(name=name))
    _BATCHES.append(batch)
    records: list[ExecutionRecord] = []
    async with asyncio.timeout(20):
        while len(records) < len(inputs):
            await asyncio.sleep(0.02)
            records = await sm.list(ExecutionFilter(batch_id=batch.id))
    return sm, records


@asynccontextmanager
async def running(
    resources: dict[str, Any], store: SQLStore, client: QueueClient
) -> AsyncIterator[FleetWorker]:
    """An in-process worker running (not in burst mode) for the block."""
    fleet = worker(resources, store, client)
    task = asyncio.create_task(fleet.async_run())
    try:
        yield fleet
    finally:
        fleet.handle_sig(signal.SIGINT)
        await asyncio.gather(task, return_exceptions=True)
        await fleet.close()


async def test_approve_and_reject_by_token_on_the_queue(pg: SQLStore, client: QueueClient) -> None:
    inbox = Inbox()
    resources = {"lambda:invoke": inbox}
    _, records = await queued(pg, client, approval(), [{"order": 1}, {"order": 2}], "approvals")
    worker = await burst(resources, pg, client)
    assert worker.counters.parked == 2
    assert await client.depth() == 0  # parked without a deadline: no job held
    for record in records:
        assert (await pg.get_execution(record.id)).status == "WAITING"  # type: ignore[union-attr]
    first = await open_wait_of(pg, records[0].id)
    second = await open_wait_of(pg, records[1].id)
    assert first.queue == "default"

    ok = await send_task_success(first.token, {"by": "ada"}, store=pg, client=client)  # type: ignore[arg-type]
    assert ok.outcome == "queued"
    no = await send_task_failure(second.token, "Rejected", "no", store=pg, client=client)  # type: ignore[arg-type]
    assert no.outcome == "queued"
    again = await send_task_success(first.token, 1, store=pg, client=client)  # type: ignore[arg-type]
    assert again.outcome == "already_answered"
    assert await client.depth() == 2

    await burst(resources, pg, client)
    approved = await pg.get_execution(records[0].id)
    refused = await pg.get_execution(records[1].id)
    assert approved is not None and refused is not None
    assert (approved.status, approved.output["outcome"]) == ("SUCCEEDED", "approved")
    assert approved.output["approval"] == {"by": "ada"}
    assert (refused.status, refused.output["outcome"]) == ("SUCCEEDED", "refused")
    assert refused.output["rejection"] == {"Error": "Rejected", "Cause": "no"}


async def test_heartbeat_timeout_through_a_deferred_job(pg: SQLStore, client: QueueClient) -> None:
    inbox = Inbox()
    definition = approval(heartbeat=1, timeout=60)
    _, records = await queued(pg, client, definition, [{"order": 3}, {"order": 4}], "beats")
    beating = asyncio.Event()

    async def heartbeats() -> None:  # keeps the second one alive, then approves it
        wait = None
        while wait is None:
            waits = await pg.list_waits(execution_id=records[1].id)
            wait = waits[0] if waits else None
            await asyncio.sleep(0.05)
        assert wait.token is not None
        for _ in range(8):
            assert (await send_task_heartbeat(wait.token, store=pg)).outcome == "heartbeat"
            await asyncio.sleep(0.3)
        beating.set()
        await send_task_success(wait.token, "fine", store=pg, client=client)

    beat = asyncio.create_task(heartbeats())
    # one burst: parks both, runs the first's deferred job at its heartbeat deadline, the
    # second's job each time it comes due (re-parked to the pushed deadline), then its answer
    await burst({"lambda:invoke": inbox}, pg, client)
    await beat
    assert beating.is_set()
    timed_out = await until_status(pg, records[0].id, "SUCCEEDED")
    assert timed_out.output["timeout"]["Error"] == "States.HeartbeatTimeout"
    # its job stayed deferred (re-parked at each pushed deadline) until the answer woke it
    alive = await pg.get_execution(records[1].id)
    assert alive is not None and alive.status == "SUCCEEDED"
    assert alive.output["outcome"] == "approved"
    assert alive.output["approval"] == "fine"


async def test_message_before_and_after_timeout(pg: SQLStore, client: QueueClient) -> None:
    definition = payment(timeout=1)
    _, records = await queued(pg, client, definition, [{"order": 5}], "late")
    await burst({}, pg, client)  # parks, then its deferred job takes the TimeoutPath
    late = await pg.get_execution(records[0].id)
    assert late is not None and late.output == {"order": 5, "outcome": "late"}
    refused = await send_message("payment", 5, {"amount": 1}, store=pg, client=client)
    assert refused.outcome == "no_waiter"

    async with running({}, pg, client) as fleet:
        _, on_time = await queued(pg, client, payment(timeout=600), [{"order": 6}], "on-time")
        await until_status(pg, on_time[0].id, "WAITING")
        assert await client.depth() == 1  # its timeout job, deferred ten minutes
        for _ in range(100):  # the job returns just after its WAITING checkpoint
            if not fleet._running:
                break
            await asyncio.sleep(0.05)
        assert not fleet._running  # no worker slot held meanwhile
        sent = await send_message("payment", 6, {"amount": 2}, store=pg, client=client)
        assert sent.outcome == "queued"  # the timeout job is brought forward: it resumes now
        paid = await until_status(pg, on_time[0].id, "SUCCEEDED")
    assert paid.output == {"order": 6, "payment": {"amount": 2}, "outcome": "paid"}
    assert await client.depth() == 0


async def test_racing_senders_on_the_queue(pg: SQLStore, client: QueueClient) -> None:
    """50 concurrent senders, 5 per value, on 10 waiting executions: exactly 10 resumes."""
    inputs = [{"order": n} for n in range(10)]
    async with running({}, pg, client):
        _, records = await queued(pg, client, payment(timeout=600), inputs, "race")
        for record in records:
            await until_status(pg, record.id, "WAITING")

        async def sender(n: int) -> Any:
            return await send_message("payment", n % 10, {"sender": n}, store=pg, client=client)

        results = await asyncio.gather(*(sender(n) for n in range(50)))
        assert sorted(r.outcome for r in results) == ["no_waiter"] * 40 + ["queued"] * 10
        assert sorted(r.execution_ids[0] for r in results if r.execution_ids) == sorted(
            r.id for r in records
        )
        for record in records:
            await until_status(pg, record.id, "SUCCEEDED", "FAILED")
    for record in records:
        done = await pg.get_execution(record.id)
        assert done is not None and done.status == "SUCCEEDED"
        assert done.output["payment"]["sender"] % 10 == record.input["order"]
        assert [h.state for h in await pg.history(record.id)] == ["AwaitPayment", "Paid"]


async def test_answer_sent_from_inside_the_task(pg: SQLStore, client: QueueClient) -> None:
    async def instant(payload: dict[str, Any]) -> None:
        await send_task_success(payload["token"], "at once", store=pg, client=client)

    _, records = await queued(pg, client, approval(), [{"order": 7}], "instant")
    await burst({"lambda:invoke": instant}, pg, client)
    done = await until_status(pg, records[0].id, "SUCCEEDED")
    assert done.output["approval"] == "at once"


APP = """
from statefleet import App

def ask(payload):
    return None  # the test reads the token from the store

app = App(resources={"lambda:invoke": ask})
"""


async def test_a_worker_killed_while_an_execution_waits_loses_nothing(
    pg: SQLStore,
    client: QueueClient,
    app_module: Callable[[str], str],
    spawn: Callable[..., subprocess.Popen[bytes]],
) -> None:
    app = app_module(APP)
    victim = spawn(app, "--concurrency", "5")
    _, records = await queued(pg, client, approval(timeout=600), [{"order": 8}], "killed")
    parked = await until_status(pg, records[0].id, "WAITING")
    assert parked.lease_owner is None  # no worker holds it
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    wait = await open_wait_of(pg, records[0].id)
    assert wait.token is not None
    result = await send_task_success(wait.token, {"by": "ops"}, store=pg, client=client)
    assert result.outcome == "queued"
    survivor = spawn(app, "--concurrency", "5", "--burst")
    assert survivor.wait(timeout=60) == 0
    done = await until_status(pg, records[0].id, "SUCCEEDED", limit=5)
    assert done.output["approval"] == {"by": "ops"}
    assert [h.state for h in await pg.history(records[0].id)] == ["Ask", "Approved"]


async def test_recover_leaves_unanswered_waits_alone_and_wakes_answered_ones(
    pg: SQLStore, client: QueueClient
) -> None:
    inbox = Inbox()
    _, records = await queued(pg, client, approval(), [{"order": 9}], "recover")
    await burst({"lambda:invoke": inbox}, pg, client)
    report = await recover(pg, client)
    assert records[0].id not in report.reenqueued  # waits for its token: no job needed
    assert await client.depth() == 0
    # answered while its wake could not reach Redis (here: no queue client given)
    answered = await send_task_success(inbox.tokens[0], "late but fine", store=pg)
    assert answered.outcome == "answered"
    report = await recover(pg, client)
    assert report.reenqueued == [records[0].id]
    await burst({"lambda:invoke": inbox}, pg, client)
    done = await until_status(pg, records[0].id, "SUCCEEDED")
    assert done.output["approval"] == "late but fine"
