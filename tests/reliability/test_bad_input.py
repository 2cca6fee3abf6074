"""Bad input: each gets a clear error naming the problem and where, and corrupts nothing
(no row written for a refused input, other executions unaffected, the store intact)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from statefleet import (
    App,
    BatchOptions,
    ChainingError,
    DefinitionError,
    ExecutionFilter,
    PersistentStateMachine,
    Settings,
    StateMachine,
)
from statefleet.errors import InfrastructureError, ResourceNotFoundError
from statefleet.queue import QueueClient
from statefleet.queue.deadletters import DeadLetters
from statefleet.queue.keys import Keys
from statefleet.queue.worker import store_unreachable
from statefleet.store import SQLStore, open_store
from statefleet.ui.app import create_app
from tests.queue.conftest import FOUR_STATES, RESOURCES, burst, numbers
from tests.services import free_port

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
ONE_PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


# ---------------------------------------------------------------- hostile definitions


def deep_json(depth: int) -> str:
    nested = '{"a":' * depth + "1" + "}" * depth
    return '{"StartAt":"P","States":{"P":{"Type":"Pass","Result":' + nested + ',"End":true}}}'


def chain_of(n: int) -> dict[str, Any]:
    states: dict[str, Any] = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(n - 1)}
    states[f"S{n - 1}"] = {"Type": "Succeed"}
    return {"StartAt": "S0", "States": states}


def nested_parallel(depth: int) -> dict[str, Any]:
    machine: dict[str, Any] = ONE_PASS
    for level in range(depth):
        state = {"Type": "Parallel", "Branches": [machine], "End": True}
        machine = {"StartAt": f"L{level}", "States": {f"L{level}": state}}
    return machine


HOSTILE = {
    "JSON nested 100,000 deep": (deep_json(100_000), "/: the JSON document is nested too deeply"),
    "a cycle with no end": (
        {
            "StartAt": "A",
            "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}},
        },
        "/States: no state ends this state machine",
    ),
    "a 1 MB state name": (
        {"StartAt": "A" * 1_000_000, "States": {"A" * 1_000_000: {"Type": "Pass", "End": True}}},
        "/States/AAAA",
    ),
    "Next to a missing state": (
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}},
        "/States/A/Next",
    ),
    "not JSON at all": ("{not json", "/: malformed JSON at line 1, column 2"),
    "an array": ("[1, 2]", "/: a state machine definition must be a JSON object"),
    "a YAML alias bomb": (
        "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
        '/: a state machine definition needs "StartAt" and "States"',
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_a_hostile_definition_is_refused_with_where_and_stored_nowhere(
    case: str, store: SQLStore
) -> None:
    definition, message = HOSTILE[case]
    with pytest.raises(DefinitionError) as caught:
        await PersistentStateMachine.create(definition, machine_id="hostile", store=store)
    assert message in str(caught.value)
    assert await store.list_definitions() == []


def test_yaml_nested_too_deeply_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="the YAML document is nested too deeply"):
        StateMachine.from_definition("StartAt: " + "[" * 5_000 + "]" * 5_000)


async def test_big_but_legal_definitions_are_accepted_and_run() -> None:
    """10,000 states, 300 nested Parallels, a 10 MB Comment: valid, so they run."""
    for definition in (
        chain_of(10_000),
        nested_parallel(300),
        {**ONE_PASS, "Comment": "x" * 10_000_000},
    ):
        result = await StateMachine.from_definition(definition).run({"k": 1})
        assert result.status == "SUCCEEDED"


CYCLE = {
    "StartAt": "A",
    "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.stop", "IsPresent": True, "Next": "C"}],
            "Default": "A",
        },
        "C": {"Type": "Succeed"},
    },
}


async def test_a_cycle_that_never_ends_is_bounded_and_never_holds_the_event_loop(
    store: SQLStore,
) -> None:
    """A loop of Pass and Choice states never waits: TimeoutSeconds still ends it, and
    without one it can be cancelled (a worker's heartbeats and other jobs go on)."""
    bounded = {**CYCLE, "TimeoutSeconds": 1}
    memory = await asyncio.wait_for(StateMachine.from_definition(bounded).run({}), 30)
    assert (memory.status, memory.error) == ("TIMED_OUT", "States.Timeout")
    sm = await PersistentStateMachine.create(bounded, machine_id="cycle", store=store)
    persisted = await asyncio.wait_for(sm.execute({}), 30)
    assert (persisted.status, persisted.error) == ("TIMED_OUT", "States.Timeout")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(StateMachine.from_definition(CYCLE).run({}), 0.5)
    ticker.cancel()
    assert ticks > 1  # the loop kept turning meanwhile


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "Object of type set is not JSON serializable"),
        (float("nan"), "Out of range float values are not JSON compliant"),
        ({"when": object()}, "Object of type object is not JSON serializable"),
    ],
    ids=["set", "nan", "object"],
)
async def test_input_that_is_not_json_is_refused_before_anything_is_written(
    store: SQLStore, value: Any, message: str
) -> None:
    sm = await PersistentStateMachine.create(ONE_PASS, machine_id="m", store=store)
    with pytest.raises(ValueError, match="cannot store a value as JSON") as caught:
        await sm.execute(value)
    assert message in str(caught.value)
    assert await sm.list() == []


def test_the_cli_names_input_that_is_not_json(tmp_path: Path) -> None:
    definition = tmp_path / "m.json"
    definition.write_text(json.dumps(ONE_PASS))
    done = subprocess.run(
        [sys.executable, "-m", "statefleet.cli", "run", str(definition), "--input", "{bad"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 2
    assert "--input is not valid JSON" in done.stderr
    assert "line 1, column 2" in done.stderr


async def test_input_over_256_kib_fails_the_execution_with_data_limit_exceeded(
    store: SQLStore,
) -> None:
    sm = await PersistentStateMachine.create(ONE_PASS, machine_id="m", store=store)
    small = await sm.execute({"x": "y"})
    big = await sm.execute({"x": "y" * (256 * 1024)})
    assert big.status == "FAILED"
    assert big.error == "States.DataLimitExceeded"
    assert big.cause == "The execution input exceeds the maximum number of bytes service limit."
    assert await sm.history(big.id) == []  # no state ran on it
    assert (await sm.get(small.id)).status == "SUCCEEDED"
    memory = await StateMachine.from_definition(ONE_PASS).run({"x": "y" * (256 * 1024)})
    assert (memory.status, memory.error, memory.cause) == ("FAILED", big.error, big.cause)


async def test_an_unknown_resource_is_named_with_its_state_and_nothing_runs(
    store: SQLStore,
) -> None:
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": "nope:x", "End": True}},
    }
    sm = await PersistentStateMachine.create(definition, machine_id="m", store=store)
    with pytest.raises(ResourceNotFoundError) as caught:
        await sm.execute({})
    assert "'nope:x' at /States/T" in str(caught.value)
    with pytest.raises(ResourceNotFoundError):
        await sm.execute_bulk([{}, {}])
    assert await sm.list() == []


async def test_an_unknown_resource_on_the_queue_fails_its_executions_clearly(
    pg: SQLStore, client: QueueClient
) -> None:
    """The leader holds no resources; the worker that lacks one fails the execution with
    an error naming it, and serves the next jobs."""
    sm = await numbers(pg, client)
    batch = await sm.execute_bulk([{"n": i} for i in range(3)], BatchOptions(name="nores"))
    worker = await burst({"math:double": RESOURCES["math:double"]}, pg, client)
    record = await batch.wait()
    assert record.counters == {"FAILED": 3}
    failed = await sm.list()
    assert {r.error for r in failed} == {"States.Runtime"}
    assert all(
        "state 'Check'" in (r.cause or "") and "no resource registered for 'math:check'" in r.cause
        for r in failed
    )
    assert worker.counters.failed == 3


async def test_a_transformer_that_does_not_exist_is_named_with_those_that_do(
    store: SQLStore,
) -> None:
    sm = await PersistentStateMachine.create(
        ONE_PASS, machine_id="m", store=store, transformers={"upper": lambda v: v}
    )
    with pytest.raises(ChainingError, match=r"no input transformer 'lower' \(registered: upper\)"):
        await sm.execute_batch(ExecutionFilter(state_machine_id="m"), transformer="lower")
    assert await sm.list_batches() == []


# ---------------------------------------------------------------- filters shaped like SQL

INJECTIONS = [
    "x' OR '1'='1",
    "'; DROP TABLE executions; --",
    "%",
    "_",
    '" OR 1=1 --',
    "\\",
    "\x00",
]


async def test_filter_values_shaped_like_sql_match_literally(store: SQLStore) -> None:
    sm = await PersistentStateMachine.create(ONE_PASS, machine_id="m", store=store)
    done = await sm.execute({"n": 1}, name="plain")
    for value in INJECTIONS:
        for filter in (
            ExecutionFilter(state_machine_id=value),
            ExecutionFilter(name_prefix=value),
            ExecutionFilter(status=value),
            ExecutionFilter(current_state=value),
            ExecutionFilter(batch_id=value),
        ):
            try:
                found = await store.list_executions(filter)
            except (ValueError, InfrastructureError) as exc:  # refused, never run as SQL
                assert "\x00" in value, exc
                continue
            assert found == [], (value, filter)
    assert [r.id for r in await sm.list()] == [done.id]  # the table is intact


async def test_the_api_treats_sql_shaped_filters_as_values(pg: SQLStore) -> None:
    sm = await PersistentStateMachine.create(ONE_PASS, machine_id="m", store=pg)
    await sm.execute({"n": 1})
    settings = Settings(database_url=str(pg.url))
    app = create_app(settings, store=pg, app=App(settings=settings))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 51234))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
    ):
        for value in INJECTIONS[:5]:
            for param in ("machine", "name", "state", "batch"):
                response = await http.get("/api/executions", params={param: value})
                assert response.status_code == 200, response.text
                assert response.json()["executions"] == [], (param, value)
        everything = await http.get("/api/executions")
        assert len(everything.json()["executions"]) == 1
    async with pg.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM executions"))).scalar_one() == 1


# ---------------------------------------------------------------- job payloads in Redis


GARBAGE = {
    "pickle": b"\x80\x04\x95garbage",
    "truncated": b'{"t":null,"f":"statefleet.run","a":[],"k":{"e":"',
    "empty": b"",
    "array": b"[1,2,3]",
    "other function": b'{"t":null,"f":"os.system","a":["rm -rf /"],"k":{},"et":1}',
    "extra fields": (
        b'{"t":null,"f":"statefleet.run","a":[],"k":{"e":"x","m":"m","v":"v","zz":1},"et":1}'
    ),
}


async def test_garbage_and_truncated_jobs_are_dead_lettered_and_the_batch_still_runs(
    pg: SQLStore, client: QueueClient
) -> None:
    sm = await numbers(pg, client)
    redis = await client.redis()
    ids = {}
    for position, (label, raw) in enumerate(GARBAGE.items()):
        job_id = f"sf-test:garbage-{position}"
        ids[job_id] = label
        await redis.set(Keys.job(job_id), raw)
        await redis.zadd(client.keys.queue("default"), {job_id: position + 1})
    batch = await sm.execute_bulk([{"n": i} for i in range(30)], BatchOptions(name="ok"))
    await burst(RESOURCES, pg, client)
    assert (await batch.wait()).counters == {"SUCCEEDED": 30}
    letters = {d.job_id: d for d in await DeadLetters(pg, client).find()}
    assert set(letters) == set(ids)
    causes = {ids[job_id]: letter.cause or "" for job_id, letter in letters.items()}
    assert {letter.error for letter in letters.values()} == {"statefleet.PayloadError"}
    assert "not UTF-8" in causes["pickle"] or "not valid JSON" in causes["pickle"]
    assert "not valid JSON" in causes["truncated"]
    assert "not valid JSON" in causes["empty"]
    assert "must be a JSON object" in causes["array"]
    assert "'os.system'" in causes["other function"]
    assert "unknown fields ['zz']" in causes["extra fields"]
    assert await client.depth() == 0  # nothing left to loop on


# ---------------------------------------------------------------- definition changed


async def test_a_definition_changed_mid_batch_leaves_running_executions_on_their_version(
    pg: SQLStore, client: QueueClient
) -> None:
    old = await numbers(pg, client)
    batch = await old.execute_bulk([{"n": i} for i in range(20)], BatchOptions(name="v1"))
    while await client.depth() < 20:  # noqa: ASYNC110 - the batch enqueues in the background
        await asyncio.sleep(0.02)
    changed = json.loads(json.dumps(FOUR_STATES))
    changed["States"]["Double"]["ResultPath"] = "$.twice"
    changed["States"]["Check"]["Resource"] = "math:twice"
    new = await PersistentStateMachine.create(changed, machine_id="numbers", store=pg)
    new.set_queue_client(client)
    assert new.version != old.version
    later = await new.execute_bulk([{"n": i} for i in range(5)], BatchOptions(name="v2"))
    resources = {**RESOURCES, "math:twice": lambda p: p["twice"] == p["n"] * 2}
    await burst(resources, pg, client)
    first, second = await batch.wait(), await later.wait()
    assert first.counters == {"SUCCEEDED": 20} and second.counters == {"SUCCEEDED": 5}
    for record in await old.list(ExecutionFilter(batch_id=batch.id)):
        assert record.version == old.version
        assert record.output["doubled"] == 2 * record.input["n"]
        assert "twice" not in record.output
    for record in await new.list(ExecutionFilter(batch_id=later.id)):
        assert record.version == new.version
        assert record.output["twice"] == 2 * record.input["n"]


# ---------------------------------------------------------------- outage classification


async def test_an_unreachable_database_is_told_from_a_failing_job() -> None:
    port = free_port()
    store = await open_store(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x", create=False)
    try:
        with pytest.raises(InfrastructureError) as refused:
            await store.get_execution("e")
    finally:
        await store.close()
    assert store_unreachable(refused.value)
    assert not store_unreachable(InfrastructureError("store constraint violated: x"))
    assert not store_unreachable(TimeoutError("the job timed out after 300 s"))
    assert not store_unreachable(ValueError("cannot store a value as JSON"))
