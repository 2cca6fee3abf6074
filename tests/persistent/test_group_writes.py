"""Group commit (GroupWriter) and the interpreter settings of bulk runs (relaxed_gc,
short_switches)."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Awaitable, Sequence

import pytest

from statefleet.statemachine.gc_tuning import (
    DEFAULT_GC_THRESHOLD,
    DEFAULT_SWITCH_INTERVAL,
    gc_threshold,
    relaxed_gc,
    short_switches,
)
from statefleet.statemachine.persistent import CheckpointWriter, GroupWriter
from statefleet.statemachine.protocols import Checkpoint, ExecutionRecord
from statefleet.store import SQLStore
from tests.store.conftest import execution, finished


class Recorder:
    """A write callable that records its groups and how many ran at once."""

    def __init__(self, fail_when: int | None = None) -> None:
        self.groups: list[list[int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail_when = fail_when
        self.release = asyncio.Event()

    async def write(self, items: list[int]) -> list[int]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.groups.append(list(items))
            await asyncio.sleep(0.01)
            if self.fail_when is not None and self.fail_when in items and len(items) > 1:
                raise RuntimeError("a shared transaction failed")
            if self.fail_when is not None and items == [self.fail_when]:
                raise ValueError(f"item {self.fail_when} is bad")
            return [item * 10 for item in items]
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("parallel", [1, 2, 3])
async def test_every_item_gets_its_result_and_groups_stay_within_parallel(parallel: int) -> None:
    recorder = Recorder()
    writer: GroupWriter[int, int] = GroupWriter(recorder.write, max_batch=50, parallel=parallel)
    results = await asyncio.gather(*(writer.submit(i) for i in range(500)))
    assert results == [i * 10 for i in range(500)]
    assert sorted(item for group in recorder.groups for item in group) == list(range(500))
    assert max(len(group) for group in recorder.groups) <= 50
    assert recorder.most_in_flight == parallel
    assert len(recorder.groups) < 500  # items were grouped


async def test_a_lone_caller_after_a_burst_is_written() -> None:
    """The flush counter is back to zero once the writers end: a later item still goes."""
    recorder = Recorder()
    writer: GroupWriter[int, int] = GroupWriter(recorder.write, parallel=2)
    await asyncio.gather(*(writer.submit(i) for i in range(20)))
    assert await asyncio.wait_for(writer.submit(99), 5) == 990


async def test_a_group_starts_from_submit_once_eager_items_wait() -> None:
    """With ``begin`` the group starts inside the ``submit`` that makes it ``eager`` items
    long (while a slot is free), not after every runnable caller has submitted: here the
    first two groups start before the lazy flusher gets to run."""
    recorder = Recorder()
    begun: list[list[int]] = []

    def begin(items: list[int]) -> Awaitable[list[int]]:
        begun.append(list(items))
        return recorder.write(items)

    writer: GroupWriter[int, int] = GroupWriter(recorder.write, parallel=2, begin=begin, eager=4)
    results = await asyncio.gather(*(writer.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert begun == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]

    lazy: GroupWriter[int, int] = GroupWriter(recorder.write, parallel=2)
    recorder.groups.clear()
    await asyncio.gather(*(lazy.submit(i) for i in range(10)))
    assert recorder.groups == [list(range(10))]  # without begin: all of them, later


async def test_a_failed_group_is_retried_one_by_one() -> None:
    recorder = Recorder(fail_when=7)
    writer: GroupWriter[int, int] = GroupWriter(recorder.write, parallel=2)
    outcomes = await asyncio.gather(*(writer.submit(i) for i in range(20)), return_exceptions=True)
    assert isinstance(outcomes[7], ValueError) and "item 7 is bad" in str(outcomes[7])
    assert [o for i, o in enumerate(outcomes) if i != 7] == [i * 10 for i in range(20) if i != 7]


async def test_two_checkpoint_groups_in_flight_each_write_exactly_its_own(
    store: SQLStore,
) -> None:
    """While one group commits the next is sent (on SQLite it waits on the writer
    connection): never more than two in flight, and every checkpoint applied once."""
    records = [execution(status="RUNNING") for _ in range(300)]
    await store.create_executions(records)
    in_flight = most = calls = 0
    begin = store.begin_checkpoints

    def counting(checkpoints: Sequence[Checkpoint]) -> Awaitable[list[bool]]:
        nonlocal in_flight, most, calls
        in_flight += 1
        calls += 1
        most = max(most, in_flight)
        started = begin(checkpoints)

        async def written() -> list[bool]:
            nonlocal in_flight
            try:
                return await started
            finally:
                in_flight -= 1

        return written()

    store.begin_checkpoints = counting  # type: ignore[method-assign]
    writer = CheckpointWriter(store)

    async def finish(record: ExecutionRecord, delay: float) -> bool:
        await asyncio.sleep(delay)
        return await writer.write(finished(record.id, {"i": record.name}, states=1))

    applied = await asyncio.gather(*(finish(r, (i % 30) / 1000) for i, r in enumerate(records)))
    assert applied == [True] * len(records)
    assert most == 2 and calls < len(records)  # grouped, two at a time
    for record in records:
        got = await store.get_execution(record.id)
        assert got is not None and (got.status, got.output, got.row_version) == (
            "SUCCEEDED",
            {"i": record.name},
            1,
        )
        assert [h.sequence for h in await store.history(record.id)] == [1]


def test_relaxed_gc_raises_the_threshold_and_restores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STATEFLEET_GC_THRESHOLD", raising=False)
    before = gc.get_threshold()
    with relaxed_gc():
        assert gc.get_threshold()[0] == max(DEFAULT_GC_THRESHOLD, before[0])
        with relaxed_gc():  # nested (two batches at once): the outer one restores
            pass
        assert gc.get_threshold()[0] == max(DEFAULT_GC_THRESHOLD, before[0])
    assert gc.get_threshold() == before


def test_relaxed_gc_restores_on_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEFLEET_GC_THRESHOLD", "50000")
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), relaxed_gc():
        assert gc.get_threshold()[0] == max(50_000, before[0])
        raise RuntimeError("boom")
    assert gc.get_threshold() == before


def test_relaxed_gc_zero_leaves_the_collector_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEFLEET_GC_THRESHOLD", "0")
    before = gc.get_threshold()
    with relaxed_gc():
        assert gc.get_threshold() == before


@pytest.mark.parametrize("text", ["lots", "-5", "1.5"])
def test_a_bad_gc_threshold_names_the_variable(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("STATEFLEET_GC_THRESHOLD", text)
    with pytest.raises(ValueError, match="STATEFLEET_GC_THRESHOLD"):
        gc_threshold()


async def test_settle_waits_for_the_item_of_a_cancelled_caller() -> None:
    """A worker releasing a cancelled job's lease first settles the writer: the job's
    checkpoint, already in a shared transaction, is still written, and must land before
    the release (or it would extend the lease again)."""
    written: list[str] = []
    gate = asyncio.Event()

    async def write(items: list[str]) -> list[None]:
        await gate.wait()
        written.extend(items)
        return [None] * len(items)

    writer: GroupWriter[str, None] = GroupWriter(write)
    caller = asyncio.create_task(writer.submit("checkpoint"))
    await asyncio.sleep(0)
    caller.cancel()
    settling = asyncio.create_task(writer.settle(5.0))
    await asyncio.sleep(0.05)
    assert not settling.done() and written == []
    gate.set()
    await settling
    assert written == ["checkpoint"]
    await writer.settle(5.0)  # nothing in flight: returns at once


def test_short_switches_lowers_the_interval_and_restores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STATEFLEET_SWITCH_INTERVAL", raising=False)
    before = sys.getswitchinterval()
    with short_switches():
        assert sys.getswitchinterval() == pytest.approx(min(DEFAULT_SWITCH_INTERVAL, before))
        with short_switches():  # nested (two batches at once): the outer one restores
            pass
        assert sys.getswitchinterval() == pytest.approx(min(DEFAULT_SWITCH_INTERVAL, before))
    assert sys.getswitchinterval() == before
    with pytest.raises(RuntimeError), short_switches():
        raise RuntimeError("the batch failed")
    assert sys.getswitchinterval() == before


def test_short_switches_never_lengthens_and_zero_leaves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = sys.getswitchinterval()
    monkeypatch.setenv("STATEFLEET_SWITCH_INTERVAL", "0.5")
    with short_switches():
        assert sys.getswitchinterval() == before  # only ever shorter
    monkeypatch.setenv("STATEFLEET_SWITCH_INTERVAL", "0")
    with short_switches():
        assert sys.getswitchinterval() == before


@pytest.mark.parametrize("text", ["fast", "-0.001", "nan"])
def test_short_switches_refuses_a_bad_setting(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("STATEFLEET_SWITCH_INTERVAL", text)
    with pytest.raises(ValueError, match="STATEFLEET_SWITCH_INTERVAL"), short_switches():
        pass
