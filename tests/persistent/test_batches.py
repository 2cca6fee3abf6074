"""Local batches on both stores: chained and bulk, concurrency bound, stop rules, cancel,
resume by name — exact counts, nothing chained twice."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from statefleet import (
    Batch,
    BatchOptions,
    ChainingError,
    ExecutionFilter,
    PersistentStateMachine,
    TaskError,
)
from statefleet.store import SQLStore

ROOT = Path(__file__).resolve().parents[2]

INTAKE = {
    "StartAt": "Normalise",
    "States": {
        "Normalise": {
            "Type": "Pass",
            "Parameters": {"id.$": "$.id", "qty.$": "$.qty"},
            "Next": "Price",
        },
        "Price": {"Type": "Task", "Resource": "shop:price", "ResultPath": "$.total", "End": True},
    },
}

FULFIL = {
    "StartAt": "Ship",
    "States": {"Ship": {"Type": "Task", "Resource": "shop:ship", "End": True}},
}


def price(order: dict[str, Any]) -> int:
    return int(order["qty"]) * 10


def ship(order: dict[str, Any]) -> dict[str, Any]:
    return {"shipped": order["id"], "total": order.get("total")}


async def intake(store: SQLStore, **resources: Any) -> PersistentStateMachine:
    return await PersistentStateMachine.create(
        INTAKE, machine_id="intake", store=store, resources={"shop:price": price, **resources}
    )


async def fulfil(store: SQLStore, **kwargs: Any) -> PersistentStateMachine:
    return await PersistentStateMachine.create(
        FULFIL,
        machine_id="fulfil",
        store=store,
        resources={"shop:ship": kwargs.pop("ship", ship)},
        transformers={"id_only": lambda order: {"id": order["id"]}},
        **kwargs,
    )


def held_until(gate: asyncio.Event, task: Callable[[dict[str, Any]], Any]) -> Any:
    """``task`` as a resource that runs only once ``gate`` is set."""

    async def held(order: dict[str, Any]) -> Any:
        await gate.wait()
        return task(order)

    return held


async def until_running(batch: Batch, count: int) -> None:
    """Until ``count`` of the batch's executions run at once (its live counters)."""
    async with asyncio.timeout(30):
        while batch.counters.running < count:  # noqa: ASYNC110 - polling the live counters
            await asyncio.sleep(0.01)


async def test_chained_batch_links_every_source_once(store: SQLStore) -> None:
    source = await intake(store)
    bulk = await source.execute_bulk(
        ({"id": i, "qty": i % 7} for i in range(1000)), BatchOptions(name="orders")
    )
    done = await bulk.wait()
    assert (done.status, done.total, done.counters) == ("SUCCEEDED", 1000, {"SUCCEEDED": 1000})

    target = await fulfil(store)
    chained = await target.execute_batch(
        ExecutionFilter(state_machine_id="intake", status="SUCCEEDED"),
        unique=True,
        options=BatchOptions(name="ship-all", concurrency=32),
    )
    finished = await chained.wait()
    assert (finished.status, finished.total) == ("SUCCEEDED", 1000)
    outputs = {}
    async for record in chained.results():
        links = await store.links_to(record.id)
        assert len(links) == 1
        outputs[links[0].source_execution_id] = record.output
    assert len(outputs) == 1000
    sources = {r.id: r for r in await source.list(ExecutionFilter(limit=2000))}
    for source_id, output in outputs.items():
        assert output == {
            "shipped": sources[source_id].input["id"],
            "total": sources[source_id].output["total"],
        }

    again = await target.execute_batch(
        ExecutionFilter(state_machine_id="intake", status="SUCCEEDED"),
        unique=True,
        options=BatchOptions(name="ship-again"),
    )
    assert (await again.wait()).total == 0


async def test_chain_from_state_output_with_transformer(store: SQLStore) -> None:
    source = await intake(store)
    await (await source.execute_bulk([{"id": i, "qty": 1} for i in range(20)])).wait()
    target = await fulfil(store)
    batch = await target.execute_batch(
        ExecutionFilter(state_machine_id="intake"),
        source_state="Normalise",
        transformer="id_only",
        options=BatchOptions(name="from-state"),
    )
    await batch.wait()
    shipped = sorted([r.output["shipped"] async for r in batch.results()])
    assert shipped == list(range(20))
    outputs = [r.output async for r in batch.results()]
    assert all(o["total"] is None for o in outputs)  # the transformer kept only the id


async def test_bulk_async_generator_never_exceeds_concurrency(store: SQLStore) -> None:
    running = 0
    peak = 0

    async def slow_price(order: dict[str, Any]) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return 1

    sm = await PersistentStateMachine.create(
        INTAKE, machine_id="intake", store=store, resources={"shop:price": slow_price}
    )

    async def inputs() -> AsyncIterator[dict[str, Any]]:
        for i in range(5000):
            yield {"id": i, "qty": 1}

    batch = await sm.execute_bulk(inputs(), BatchOptions(name="bulk", concurrency=50))
    done = await batch.wait()
    assert (done.total, done.counters) == (5000, {"SUCCEEDED": 5000})
    assert await sm.count(ExecutionFilter(batch_id=batch.id)) == 5000
    assert 1 < peak <= 50


def failing_price(bad: set[int]) -> Any:
    def price_or_fail(order: dict[str, Any]) -> int:
        if order["id"] in bad:
            raise TaskError("OutOfStock", f"item {order['id']} is out of stock")
        return 1

    return price_or_fail


async def test_stop_on_error_starts_nothing_after_the_first_failure(store: SQLStore) -> None:
    sm = await PersistentStateMachine.create(
        INTAKE,
        machine_id="intake",
        store=store,
        resources={"shop:price": failing_price({10})},
    )
    batch = await sm.execute_bulk(
        ({"id": i, "qty": 1} for i in range(2000)),
        BatchOptions(name="careful", stop_on_error=True, concurrency=4, chunk_size=50),
    )
    done = await batch.wait()
    assert done.status == "FAILED"
    assert done.stop_reason is not None and "stop_on_error" in done.stop_reason
    counts = done.counters
    assert counts.get("FAILED") == 1
    assert counts.get("SUCCEEDED", 0) < 100  # stopped early
    # everything created but not started was aborted, nothing is left pending
    assert set(counts) <= {"SUCCEEDED", "FAILED", "ABORTED"}
    assert sum(counts.values()) == done.total == await sm.count(ExecutionFilter(batch_id=done.id))


async def test_tolerated_failure_percentage(store: SQLStore) -> None:
    bad = set(range(0, 1000, 4))  # 25 % fail
    sm = await PersistentStateMachine.create(
        INTAKE, machine_id="intake", store=store, resources={"shop:price": failing_price(bad)}
    )
    tolerant = await sm.execute_bulk(
        ({"id": i, "qty": 1} for i in range(1000)),
        BatchOptions(name="tolerant", tolerated_failure_percentage=30),
    )
    done = await tolerant.wait()
    assert done.status == "SUCCEEDED"
    assert done.counters == {"SUCCEEDED": 750, "FAILED": 250}

    strict = await sm.execute_bulk(
        ({"id": i, "qty": 1} for i in range(1000)),
        BatchOptions(name="strict", tolerated_failure_percentage=10, concurrency=8, chunk_size=50),
    )
    stopped = await strict.wait()
    assert stopped.status == "FAILED"
    assert "tolerated failure percentage" in (stopped.stop_reason or "")
    assert stopped.counters.get("SUCCEEDED", 0) < 750


async def test_cancel_aborts_the_rest(store: SQLStore) -> None:
    gate = asyncio.Event()
    sm = await intake(store, **{"shop:price": held_until(gate, lambda order: 1)})
    batch = await sm.execute_bulk(
        ({"id": i, "qty": 1} for i in range(500)),
        BatchOptions(name="doomed", concurrency=10, chunk_size=50),
    )
    await until_running(batch, 10)
    await batch.cancel()
    gate.set()
    done = await batch.wait()
    assert done.status == "ABORTED"
    assert set(done.counters) == {"ABORTED"}
    assert done.total == await sm.count(ExecutionFilter(batch_id=done.id))


async def test_same_name_resumes_instead_of_duplicating(store: SQLStore) -> None:
    sm = await intake(store)
    first = await sm.execute_bulk(
        ({"id": i, "qty": 1} for i in range(300)), BatchOptions(name="nightly")
    )
    await first.wait()
    again = await sm.execute_bulk(
        ({"id": i, "qty": 1} for i in range(300)), BatchOptions(name="nightly")
    )
    assert again.id == first.id
    done = await again.wait()
    assert done.total == 300
    assert await sm.count(ExecutionFilter(batch_id=first.id)) == 300
    listed = await sm.list_batches()
    assert [b.name for b in listed] == ["nightly"]


async def test_callbacks_and_options_validation(store: SQLStore) -> None:
    seen: list[str] = []

    async def started(batch: Any) -> None:
        seen.append(f"start {batch.name}")

    def completed(batch: Any) -> None:
        seen.append(f"done {batch.status}")

    sm = await intake(store)
    batch = await sm.execute_bulk(
        [{"id": 1, "qty": 1}],
        BatchOptions(name="cb", on_start=started, on_complete=completed),
    )
    await batch.wait()
    assert seen == ["start cb", "done SUCCEEDED"]
    with pytest.raises(ValueError, match="concurrency"):
        BatchOptions(concurrency=0)
    with pytest.raises(ValueError, match="priority"):
        BatchOptions(priority=11)
    with pytest.raises(ValueError, match="tolerated_failure_percentage"):
        BatchOptions(tolerated_failure_percentage=120)


def _url(store: SQLStore) -> str:
    return store.url.render_as_string(hide_password=False)


async def _cli(*args: str) -> tuple[int, str, str]:
    """``statefleet ...`` in a process of its own."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "statefleet.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_cancel_from_another_process_wins(store: SQLStore) -> None:
    gate = asyncio.Event()
    started: list[str] = []

    async def gated_price(order: dict[str, Any], ctx: Any) -> int:
        started.append(ctx.execution_id)
        await gate.wait()
        return 1

    sm = await PersistentStateMachine.create(
        INTAKE, machine_id="intake", store=store, resources={"shop:price": gated_price}
    )
    batch = await sm.execute_bulk(
        ({"id": i, "qty": 1} for i in range(200)),
        BatchOptions(name="cancelled-elsewhere", concurrency=4, chunk_size=20),
    )
    async with asyncio.timeout(30):
        while len(started) < 4:  # noqa: ASYNC110 - polling the task callable's log
            await asyncio.sleep(0.01)
    code, out, err = await _cli("batch", "cancel", batch.id, "--database-url", _url(store))
    assert code == 0, err
    assert "ABORTED" in out
    gate.set()
    async with asyncio.timeout(30):
        done = await batch.wait()
    assert done.status == "ABORTED"
    assert done.stop_reason == "cancelled from the command line"
    stored = await store.get_batch(batch.id)
    assert stored is not None and stored.status == "ABORTED"
    assert len(started) == 4  # only those running at the cancel ever started
    counts = await store.count_by_status(ExecutionFilter(batch_id=batch.id))
    assert set(counts) == {"ABORTED"}
    assert stored.counters == counts and stored.total == sum(counts.values())


async def test_cancel_of_an_ended_batch_changes_nothing(store: SQLStore) -> None:
    sm = await intake(store)
    batch = await sm.execute_bulk([{"id": 1, "qty": 2}], BatchOptions(name="finished"))
    record = await batch.wait()
    assert record.status == "SUCCEEDED"
    other = await sm.get_batch(batch.id)  # a handle as another process has it
    assert await other.cancel() is False
    assert other.status == "SUCCEEDED"
    stored = await store.get_batch(batch.id)
    assert stored is not None
    assert (stored.status, stored.stop_reason) == ("SUCCEEDED", None)
    assert stored.finished_at == record.finished_at
    assert await store.count_by_status(ExecutionFilter(batch_id=batch.id)) == {"SUCCEEDED": 1}
    code, _, err = await _cli("batch", "cancel", batch.id, "--database-url", _url(store))
    assert code == 1
    assert "batch finished already SUCCEEDED" in err


async def test_interrupting_a_batch_ends_at_once_and_leaves_it_resumable(store: SQLStore) -> None:
    started: list[str] = []

    async def stuck_price(order: dict[str, Any], ctx: Any) -> int:
        started.append(ctx.execution_id)
        await asyncio.Event().wait()  # never returns: only a cancellation ends it
        return 0

    inputs = [{"id": i, "qty": 1} for i in range(100)]
    sm = await PersistentStateMachine.create(
        INTAKE, machine_id="intake", store=store, resources={"shop:price": stuck_price}
    )
    batch = await sm.execute_bulk(
        inputs, BatchOptions(name="interrupted", concurrency=2, chunk_size=20)
    )
    async with asyncio.timeout(30):
        while len(started) < 2 or batch.counters.created < 20:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the producer fills the runner's queue and waits on it
    task = batch._task
    assert task is not None
    task.cancel()  # what Ctrl-C does to the batch's task
    async with asyncio.timeout(10):  # a hang guard: the old runner never returned here
        await asyncio.wait([task])
    stored = await store.get_batch(batch.id)
    assert stored is not None and stored.status == "FAILED"
    assert (stored.stop_reason or "").startswith("batch interrupted")
    executions = await sm.list(ExecutionFilter(batch_id=batch.id, limit=1000))
    now = datetime.now(UTC)
    assert executions
    assert all(r.lease_expires_at is None or r.lease_expires_at < now for r in executions)

    # Resumed by another runner at once (no lease to wait out), nothing run twice.
    again = await intake(store)
    assert again.owner != sm.owner
    resumed = await again.execute_bulk(inputs, BatchOptions(name="interrupted", concurrency=8))
    async with asyncio.timeout(30):
        done = await resumed.wait()
    assert done.status == "SUCCEEDED"
    assert done.counters == {"SUCCEEDED": 100}
    stored = await store.get_batch(batch.id)
    assert stored is not None
    assert (stored.status, stored.stop_reason) == ("SUCCEEDED", None)  # not "interrupted"
    assert stored.finished_at is not None and stored.finished_at >= done.created_at


async def test_a_cancelled_batch_stays_cancelled_when_started_again_by_name(
    store: SQLStore,
) -> None:
    gate = asyncio.Event()
    sources = await intake(store)
    first = await sources.execute_bulk(({"id": i, "qty": 1} for i in range(40)), BatchOptions())
    await first.wait()
    sm = await fulfil(store, ship=held_until(gate, lambda order: {"shipped": order["id"]}))
    batch = await sm.execute_batch(
        ExecutionFilter(state_machine_id="intake"),
        options=BatchOptions(name="nightly", concurrency=4, chunk_size=10),
    )
    await until_running(batch, 4)
    await batch.cancel("stopped by the operator")
    gate.set()
    cancelled = await batch.wait()
    assert cancelled.status == "ABORTED"
    created = await sm.count(ExecutionFilter(batch_id=batch.id))
    assert created < 40

    # a restarted leader starting "nightly" again: nothing runs, the cancel stands
    again = await sm.execute_batch(
        ExecutionFilter(state_machine_id="intake"), options=BatchOptions(name="nightly")
    )
    assert again.id == batch.id
    record = await asyncio.wait_for(again.wait(), 10)
    assert (record.status, record.stop_reason) == ("ABORTED", "stopped by the operator")
    assert await sm.count(ExecutionFilter(batch_id=batch.id)) == created
    assert set(await again.counts()) == {"ABORTED"}

    # resuming it by id is deliberate: it chains the sources it had not reached, none twice
    resumed = await sm.resume_batch(batch.id)
    done = await asyncio.wait_for(resumed.wait(), 30)
    assert (done.status, done.stop_reason) == ("SUCCEEDED", None)
    counts = await resumed.counts()
    assert counts["SUCCEEDED"] == 40 - created and sum(counts.values()) == 40
    targets = await sm.list(ExecutionFilter(batch_id=batch.id, limit=100))
    linked = [(await store.links_to(t.id))[0].source_execution_id for t in targets]
    assert len(set(linked)) == len(linked) == 40


async def test_a_cancelled_bulk_batch_is_resumed_by_id_with_its_inputs(store: SQLStore) -> None:
    gate = asyncio.Event()
    sm = await intake(store, **{"shop:price": held_until(gate, lambda order: 1)})
    inputs = [{"id": i, "qty": 1} for i in range(60)]
    batch = await sm.execute_bulk(inputs, BatchOptions(name="bulk", concurrency=3, chunk_size=10))
    await until_running(batch, 3)
    await batch.cancel()
    gate.set()
    assert (await batch.wait()).status == "ABORTED"
    created = await sm.count(ExecutionFilter(batch_id=batch.id))
    with pytest.raises(ChainingError, match="'bulk' was started from inputs: give the same"):
        await sm.resume_batch(batch.id)
    assert (await store.get_batch(batch.id)).status == "ABORTED"  # type: ignore[union-attr]
    resumed = await sm.resume_batch(batch.id, inputs=iter(inputs))
    done = await asyncio.wait_for(resumed.wait(), 30)
    assert (done.id, done.status) == (batch.id, "SUCCEEDED")
    assert await resumed.counts() == {"ABORTED": created, "SUCCEEDED": 60 - created}
    names = [r.name for r in await sm.list(ExecutionFilter(batch_id=batch.id, limit=100))]
    assert len(set(names)) == len(names) == 60  # each input once


async def test_started_at_is_when_an_execution_starts_running(store: SQLStore) -> None:
    async def slow_price(order: dict[str, Any]) -> int:
        await asyncio.sleep(0.02)
        return 1

    sm = await PersistentStateMachine.create(
        INTAKE, machine_id="intake", store=store, resources={"shop:price": slow_price}
    )
    batch = await sm.execute_bulk(
        [{"id": i, "qty": 1} for i in range(5)], BatchOptions(name="one-at-a-time", concurrency=1)
    )
    await batch.wait()
    records = sorted(await sm.list(ExecutionFilter(batch_id=batch.id)), key=lambda r: r.name)
    for record in records:
        assert record.created_at is not None and record.started_at is not None
        assert record.ended_at is not None
        assert record.created_at <= record.started_at <= record.ended_at
    # one at a time: each started once the one before it had ended (all were created at once)
    for before, after in itertools.pairwise(records):
        assert before.ended_at is not None and after.started_at is not None
        assert after.started_at >= before.ended_at
        assert after.created_at is not None and records[0].ended_at is not None
        assert after.created_at < records[0].ended_at  # created together, before any ended


async def test_one_lease_renewer_renews_every_running_execution_in_one_statement(
    store: SQLStore,
) -> None:
    rounds: list[int] = []
    singles: list[str] = []
    all_held = asyncio.Event()
    renew_leases = store.renew_leases

    async def counting_renew_leases(ids: Any, owner: str, until: Any) -> set[str]:
        rounds.append(len(ids))
        if len(ids) == 10:
            all_held.set()
        return await renew_leases(ids, owner, until)

    async def counting_renew_lease(execution_id: str, owner: str, until: Any) -> bool:
        singles.append(execution_id)
        return False

    async def held_price(order: dict[str, Any]) -> int:
        await asyncio.wait_for(all_held.wait(), 30)
        return 1

    store.renew_leases = counting_renew_leases  # type: ignore[method-assign]
    store.renew_lease = counting_renew_lease  # type: ignore[method-assign]
    sm = await PersistentStateMachine.create(
        INTAKE,
        machine_id="intake",
        store=store,
        resources={"shop:price": held_price},
        lease_seconds=0.3,
    )
    batch = await sm.execute_bulk(
        [{"id": i, "qty": 1} for i in range(10)], BatchOptions(name="leases", concurrency=10)
    )
    done = await asyncio.wait_for(batch.wait(), 60)
    assert done.counters == {"SUCCEEDED": 10}  # no lease was lost
    assert all_held.is_set() and max(rounds) == 10
    assert singles == []
