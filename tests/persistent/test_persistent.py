"""PersistentStateMachine on both stores: execute, chain, resume, redrive, cancel, races."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from statefleet import ChainingError, DefinitionError, ExecutionFilter, TaskError
from statefleet.statemachine.persistent import (
    JobControl,
    PersistentStateMachine,
    default_owner,
    owner_is_dead,
)
from statefleet.store import SQLStore

FOUR_STATES = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "Double"},
        "Double": {
            "Type": "Task",
            "Resource": "math:double",
            "ResultPath": "$.doubled",
            "Next": "Check",
        },
        "Check": {
            "Type": "Task",
            "Resource": "math:check",
            "ResultPath": "$.checked",
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


def double(payload: dict[str, Any]) -> int:
    return int(payload["n"]) * 2


class Checker:
    """Fails while ``broken`` is set: for redrive tests."""

    def __init__(self) -> None:
        self.broken = False
        self.calls = 0

    def __call__(self, payload: dict[str, Any]) -> bool:
        self.calls += 1
        if self.broken:
            raise TaskError("CheckFailed", "the checker is broken")
        return payload["doubled"] == payload["n"] * 2


async def make(store: SQLStore, **kwargs: Any) -> PersistentStateMachine:
    checker = kwargs.pop("checker", Checker())
    return await PersistentStateMachine.create(
        FOUR_STATES,
        machine_id="numbers",
        store=store,
        resources={"math:double": double, "math:check": checker},
        **kwargs,
    )


async def test_execute_persists_output_and_gapless_history(store: SQLStore) -> None:
    sm = await make(store)
    record = await sm.execute({"n": 21}, name="twenty-one")
    assert record.status == "SUCCEEDED"
    assert record.output == {"n": 21, "doubled": 42, "checked": True}
    saved = await sm.get(record.id)
    assert saved.status == "SUCCEEDED"
    assert saved.output == record.output
    assert saved.name == "twenty-one"
    assert saved.lease_owner is None
    history = await sm.history(record.id)
    assert [h.sequence for h in history] == [1, 2, 3, 4]
    assert [h.state for h in history] == ["Prepare", "Double", "Check", "Done"]
    assert history[1].output == {"n": 21, "doubled": 42}


async def test_definition_is_versioned(store: SQLStore) -> None:
    sm = await make(store)
    changed = dict(FOUR_STATES, Comment="v2")
    sm2 = await PersistentStateMachine.create(
        changed,
        machine_id="numbers",
        store=store,
        resources={"math:double": double, "math:check": Checker()},
    )
    assert sm2.version != sm.version
    versions = await store.definition_versions("numbers")
    assert {v.version for v in versions} == {sm.version, sm2.version}
    loaded = await PersistentStateMachine.load("numbers", store=store)
    assert loaded.version == sm2.version


async def test_invalid_definition_is_refused_and_nothing_saved(store: SQLStore) -> None:
    with pytest.raises(DefinitionError):
        await PersistentStateMachine.create(
            {"StartAt": "Nope", "States": {}}, machine_id="bad", store=store
        )
    assert await store.get_definition("bad") is None


async def test_failure_is_recorded_and_redrive_reruns_only_the_failed_state(
    store: SQLStore,
) -> None:
    checker = Checker()
    checker.broken = True
    sm = await make(store, checker=checker)
    failed = await sm.execute({"n": 5})
    assert (failed.status, failed.error, failed.cause) == (
        "FAILED",
        "CheckFailed",
        "the checker is broken",
    )
    assert failed.current_state == "Check"
    calls_before = checker.calls
    checker.broken = False
    redriven = await sm.redrive(failed.id)
    assert redriven.status == "SUCCEEDED"
    assert redriven.output == {"n": 5, "doubled": 10, "checked": True}
    assert checker.calls == calls_before + 1
    saved = await sm.get(failed.id)
    assert saved.redrive_count == 1
    history = await sm.history(failed.id)
    assert [(h.state, h.status) for h in history] == [
        ("Prepare", "SUCCEEDED"),
        ("Double", "SUCCEEDED"),
        ("Check", "FAILED"),
        ("Check", "SUCCEEDED"),
        ("Done", "SUCCEEDED"),
    ]
    assert [h.sequence for h in history] == [1, 2, 3, 4, 5]


async def test_redrive_of_a_succeeded_execution_is_refused(store: SQLStore) -> None:
    from statefleet.statemachine.lifecycle import IllegalTransition

    sm = await make(store)
    done = await sm.execute({"n": 1})
    with pytest.raises(IllegalTransition):
        await sm.redrive(done.id)


async def test_chaining_from_output_state_output_and_transformer(store: SQLStore) -> None:
    sm = await make(store)
    source = await sm.execute({"n": 3})
    target = await PersistentStateMachine.create(
        {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}},
        machine_id="echo",
        store=store,
        transformers={"only_n": lambda value: {"n": value["n"]}},
    )
    from_output = await target.execute(source_execution=source.id)
    assert from_output.output == {"n": 3, "doubled": 6, "checked": True}
    from_state = await target.execute(source_execution=source.id, source_state="Double")
    assert from_state.output == {"n": 3, "doubled": 6}
    transformed = await target.execute(source_execution=source.id, transformer="only_n")
    assert transformed.output == {"n": 3}
    links = await store.links_from(source.id)
    assert {(link.source_state, link.transformer) for link in links} == {
        (None, None),
        ("Double", None),
        (None, "only_n"),
    }


async def test_chaining_refuses_missing_sources_with_clear_errors(store: SQLStore) -> None:
    sm = await make(store)
    source = await sm.execute({"n": 3})
    with pytest.raises(ChainingError, match="does not exist"):
        await sm.execute(source_execution="no-such-id")
    with pytest.raises(ChainingError, match="no output of state 'Nope'"):
        await sm.execute(source_execution=source.id, source_state="Nope")
    with pytest.raises(ChainingError, match="no input transformer 'nope'"):
        await sm.execute(source_execution=source.id, transformer="nope")
    assert await sm.count(ExecutionFilter(state_machine_id="numbers")) == 1


async def test_two_runners_race_exactly_one_advances(store: SQLStore) -> None:
    """Two processes' runners claim the same QUEUED execution: one runs it, once."""
    calls: list[str] = []

    async def slow_double(payload: dict[str, Any]) -> int:
        calls.append("double")
        await asyncio.sleep(0.05)
        return int(payload["n"]) * 2

    resources = {"math:double": slow_double, "math:check": Checker()}
    first = await PersistentStateMachine.create(
        FOUR_STATES, machine_id="numbers", store=store, resources=resources, owner="one"
    )
    second = await PersistentStateMachine.load(
        "numbers", store=store, resources=resources, owner="two"
    )
    record = first.new_execution({"n": 4})
    await store.create_executions([record])
    claims = await asyncio.gather(first.claim(record.id), second.claim(record.id))
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    runner = first if claims[0] is not None else second
    final = await runner.advance(winners[0])
    assert final.status == "SUCCEEDED"
    assert calls == ["double"]
    history = await store.history(record.id)
    assert [h.sequence for h in history] == [1, 2, 3, 4]


async def test_stale_runner_cannot_overwrite(store: SQLStore) -> None:
    """A runner whose lease was taken over is refused by the version guard and stops."""
    started = asyncio.Event()
    release = asyncio.Event()

    async def blocking_double(payload: dict[str, Any]) -> int:
        started.set()
        await release.wait()
        return int(payload["n"]) * 2

    stale = await PersistentStateMachine.create(
        FOUR_STATES,
        machine_id="numbers",
        store=store,
        owner="stale",
        lease_seconds=0.2,
        resources={"math:double": blocking_double, "math:check": Checker()},
    )
    fresh = await PersistentStateMachine.load(
        "numbers",
        store=store,
        owner="fresh",
        resources={"math:double": double, "math:check": Checker()},
    )
    record = stale.new_execution({"n": 7}, owner="stale")
    record.lease_expires_at = record.created_at  # already expired: free to take over
    await store.create_executions([record])
    stale_run = asyncio.create_task(stale.advance(record))
    await started.wait()
    claimed = await fresh.claim(record.id)
    assert claimed is not None
    done = await fresh.advance(claimed)
    assert done.status == "SUCCEEDED"
    release.set()
    after = await stale_run
    assert after.status == "SUCCEEDED"  # what the store has: the fresh runner's result
    history = await store.history(record.id)
    assert [h.sequence for h in history] == [1, 2, 3, 4]


async def test_cancel_aborts_at_the_next_checkpoint(store: SQLStore) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def blocking_double(payload: dict[str, Any]) -> int:
        started.set()
        await release.wait()
        return 2

    sm = await PersistentStateMachine.create(
        FOUR_STATES,
        machine_id="numbers",
        store=store,
        resources={"math:double": blocking_double, "math:check": Checker()},
    )
    running = asyncio.create_task(sm.execute({"n": 1}))
    await started.wait()
    [record] = await sm.list()
    assert await sm.cancel(record.id)
    release.set()
    final = await running
    assert final.status == "ABORTED"
    assert not await sm.cancel(record.id)  # already ended


async def test_resume_continues_from_the_checkpoint(store: SQLStore) -> None:
    """A run interrupted after its first Task resumes without running that Task again."""
    calls: list[str] = []

    def counting_double(payload: dict[str, Any]) -> int:
        calls.append("double")
        return int(payload["n"]) * 2

    class Crash(BaseException):
        pass

    def crashing_check(payload: dict[str, Any]) -> bool:
        raise Crash

    crashing = await PersistentStateMachine.create(
        FOUR_STATES,
        machine_id="numbers",
        store=store,
        lease_seconds=0.1,
        resources={"math:double": counting_double, "math:check": crashing_check},
    )
    with pytest.raises(Crash):
        await crashing.execute({"n": 8})
    [record] = await crashing.list()
    assert record.status == "RUNNING"
    assert record.current_state == "Check"
    await asyncio.sleep(0.15)  # the dead runner's lease expires
    healthy = await PersistentStateMachine.load(
        "numbers",
        store=store,
        resources={"math:double": counting_double, "math:check": Checker()},
    )
    final = await healthy.resume(record.id)
    assert final.status == "SUCCEEDED"
    assert final.output == {"n": 8, "doubled": 16, "checked": True}
    assert calls == ["double"]


async def test_machine_timeout_keeps_the_history_of_the_interrupted_state(
    store: SQLStore,
) -> None:
    calls = 0

    async def flaky_then_slow(payload: dict[str, Any]) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TaskError("Flaky", "first try fails")
        await asyncio.sleep(10)
        return 0

    definition = {
        "TimeoutSeconds": 1,
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": "work",
                "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                "End": True,
            }
        },
    }
    sm = await PersistentStateMachine.create(
        definition, machine_id="slow", store=store, resources={"work": flaky_then_slow}
    )
    record = await sm.execute({})
    assert record.status == "TIMED_OUT"
    history = await sm.history(record.id)
    assert [(h.state, h.status, h.error) for h in history] == [("Work", "FAILED", "Flaky")]


@pytest.mark.parametrize(
    ("inner", "handed_back"),
    [
        ({"Type": "Fail", "Error": "Refused"}, False),  # failed by its definition
        (  # a Retry of the item's state that ran out: the definition's decision too
            {
                "Type": "Task",
                "Resource": "boom",
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1, "IntervalSeconds": 1}],
                "End": True,
            },
            False,
        ),
        ({"Type": "Task", "Resource": "boom", "End": True}, True),  # nothing covers it
    ],
)
async def test_a_queue_worker_retries_only_failures_the_definition_did_not_decide(
    store: SQLStore, inner: dict[str, Any], handed_back: bool
) -> None:
    def boom(payload: Any) -> Any:
        raise TaskError("Boom", "down")

    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "Item", "States": {"Item": inner}},
                "End": True,
            }
        },
    }
    sm = await PersistentStateMachine.create(
        definition, machine_id="mapped", store=store, resources={"boom": boom}
    )
    record = sm.new_execution({"items": [1]}, owner=sm.owner)
    await store.create_executions([record])
    control = JobControl(retry_failures=True)
    final = await sm.advance(record, control)
    assert control.handed_back is handed_back
    assert final.status == ("RUNNING" if handed_back else "FAILED")


def test_only_a_dead_process_of_this_host_counts_as_a_dead_lease_owner() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its PID no longer exists
    host = default_owner().rsplit(":", 2)[0]
    assert owner_is_dead(f"{host}:{child.pid}:0123abcd")
    assert not owner_is_dead(f"{host}:{os.getpid()}:0123abcd")  # this process
    assert not owner_is_dead(f"{host}:1:0123abcd")  # alive
    assert not owner_is_dead(f"another-host:{child.pid}:0123abcd")  # cannot be known
    assert not owner_is_dead("w1") and not owner_is_dead("")
