"""The store contract: the same assertions on SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from statefleet.errors import InfrastructureError, NotFoundError
from statefleet.statemachine.protocols import (
    BatchRecord,
    ChainSource,
    Checkpoint,
    DefinitionRecord,
    ExecutionFilter,
    ExecutionRecord,
    HistoryEntry,
    HistoryRecord,
    LinkRecord,
    Store,
    new_id,
)
from statefleet.store import (
    DuplicateBatchName,
    DuplicateExecutionName,
    DuplicateLink,
    SQLStore,
    open_store,
)
from statefleet.store.repository import EXECUTIONS, HISTORY
from tests.store.conftest import T0, execution, history

LEASE = timedelta(seconds=30)


def same(a: Any, b: Any) -> bool:
    """Equal JSON values of the same types all the way down (1 is not 1.0, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def checkpoint(record: ExecutionRecord, version: int, **fields: Any) -> Checkpoint:
    fields.setdefault("owner", None)
    fields.setdefault("status", "RUNNING")
    fields.setdefault("current_state", "S")
    fields.setdefault("data", {"v": version})
    fields.setdefault("variables", {})
    return Checkpoint(execution_id=record.id, expected_version=version, **fields)


async def claimed(store: SQLStore, record: ExecutionRecord, owner: str = "w1") -> ExecutionRecord:
    result = await store.claim(record.id, owner, T0 + LEASE, T0)
    assert result is not None
    return result


async def ids(store: SQLStore, filter: ExecutionFilter) -> list[str]:
    return [r.id for r in await store.list_executions(filter)]


# ---------------------------------------------------------------- basics


async def test_implements_the_protocol(store: SQLStore) -> None:
    assert isinstance(store, Store)


async def test_definitions_keep_every_version(store: SQLStore) -> None:
    v1 = await store.save_definition(
        DefinitionRecord(id="orders", name="Orders", version="h1", definition={"StartAt": "A"})
    )
    assert v1.created_at is not None and v1.created_at.tzinfo is UTC
    await store.save_definition(
        DefinitionRecord(id="orders", name="Orders", version="h2", definition={"StartAt": "B"})
    )
    await store.save_definition(
        DefinitionRecord(id="other", name="Other", version="x", definition=[1, 2.5, None])
    )

    latest = await store.get_definition("orders")
    assert latest is not None and latest.version == "h2"
    assert latest.definition == {"StartAt": "B"}
    first = await store.get_definition("orders", "h1")
    assert first is not None and first.definition == {"StartAt": "A"}
    assert await store.get_definition("orders", "nope") is None
    assert await store.get_definition("missing") is None
    assert [d.version for d in await store.definition_versions("orders")] == ["h2", "h1"]
    assert [(d.id, d.version) for d in await store.list_definitions()] == [
        ("orders", "h2"),
        ("other", "x"),
    ]
    other = await store.get_definition("other")
    assert other is not None and same(other.definition, [1, 2.5, None])

    # Saving an existing version again makes it the latest; its content is not duplicated.
    again = await store.save_definition(
        DefinitionRecord(id="orders", name="Orders", version="h1", definition={"StartAt": "A"})
    )
    assert again.created_at == v1.created_at
    latest = await store.get_definition("orders")
    assert latest is not None and latest.version == "h1"
    assert len(await store.definition_versions("orders")) == 2


async def test_concurrent_definition_saves_leave_one_latest(store: SQLStore) -> None:
    await asyncio.gather(
        *(
            store.save_definition(
                DefinitionRecord(id="m", name="m", version=f"v{i}", definition={"i": i})
            )
            for i in range(8)
        )
    )
    versions = await store.definition_versions("m")
    assert len(versions) == 8
    latest = await store.get_definition("m")
    assert latest is not None
    assert [d.id for d in await store.list_definitions()] == ["m"]


async def test_create_and_get_round_trips_every_field(store: SQLStore) -> None:
    paris = timezone(timedelta(hours=1))
    record = execution(
        "m1",
        "first",
        status="RUNNING",
        batch_id=new_id(),
        current_state="Work",
        input={"order": 7},
        data={"order": 7, "step": 1},
        variables={"x": [1, 2]},
        error=None,
        cause=None,
        started_at=datetime(2025, 1, 1, 13, 0, 0, 123456, tzinfo=paris),
        lease_owner="w1",
        lease_expires_at=T0 + LEASE,
        row_version=3,
        history_seq=2,
        redrive_count=1,
        updated_at=T0,
    )
    await store.create_executions([record])
    got = await store.get_execution(record.id)
    assert got is not None
    # Datetimes come back timezone-aware, in UTC, to the microsecond.
    assert got.started_at == datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert got.started_at.tzinfo is UTC
    assert got == replace(record, started_at=got.started_at)
    by_name = await store.get_execution_by_name("m1", "first")
    assert by_name == got
    assert await store.get_execution_by_name("m2", "first") is None
    assert await store.get_execution(new_id()) is None


async def test_create_fills_timestamps(store: SQLStore) -> None:
    record = execution(created_at=None)
    await store.create_executions([record])
    got = await store.get_execution(record.id)
    assert got is not None and got.created_at is not None and got.updated_at is not None
    assert got.created_at.tzinfo is UTC
    assert abs(got.created_at - datetime.now(UTC)) < timedelta(minutes=1)


# ---------------------------------------------------------------- JSON values

JSON_VALUES = [
    pytest.param({"a": 1, "b": [True, False, None], "c": {"d": "e"}}, id="object"),
    pytest.param([1, "two", 3.0, None, {"x": []}], id="array"),
    pytest.param("just a string", id="string"),
    pytest.param('ünïcødé ✓ 漢字 𝄞 "quotes" \\ back\nslash', id="unicode"),
    pytest.param("", id="empty-string"),
    pytest.param(42, id="int"),
    pytest.param(-(2**70), id="bigint"),
    pytest.param(0, id="zero"),
    pytest.param(1.0, id="float-integral"),
    pytest.param(2.5, id="float"),
    pytest.param(1e-7, id="float-small"),
    pytest.param(1e16, id="float-1e16"),
    pytest.param(-1.5e300, id="float-huge"),
    pytest.param(123456789.123456789, id="float-digits"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(None, id="null"),
    pytest.param({}, id="empty-object"),
    pytest.param([], id="empty-array"),
    pytest.param({"n": None, "f": 1.0, "i": 1, "deep": [[[{"z": 0.5}]]]}, id="nested"),
]


@pytest.mark.parametrize("value", JSON_VALUES)
async def test_json_values_round_trip(store: SQLStore, value: Any) -> None:
    record = execution(status="SUCCEEDED", input=value, data=value, output=value)
    await store.create_executions([record])
    got = await store.get_execution(record.id)
    assert got is not None
    for field in ("input", "data", "output"):
        assert same(getattr(got, field), value), (field, getattr(got, field))

    done = execution(status="QUEUED", input=None)
    await store.create_executions([done])
    running = await claimed(store, done)
    step = history(done.id, 1, input=value, output=value)
    assert await store.write_checkpoints(
        [
            checkpoint(
                running,
                running.row_version,
                status="SUCCEEDED",
                data=value,
                output=value,
                variables={"v": value},
                history=[step],
            )
        ]
    ) == [True]
    got = await store.get_execution(done.id)
    assert got is not None
    assert same(got.output, value) and same(got.data, value)
    assert same(got.variables, {"v": value})
    [row] = await store.history(done.id)
    assert same(row.input, value) and same(row.output, value)
    assert await store.state_output(done.id, "S") == (True, value)


async def test_output_null_is_not_missing_output(store: SQLStore) -> None:
    """A SUCCEEDED execution whose output is JSON null keeps a value; a running one has none."""
    succeeded = execution(status="SUCCEEDED", output=None)
    running = execution(status="RUNNING", output={"ignored": True})
    await store.create_executions([succeeded, running])
    later = execution(status="QUEUED")
    await store.create_executions([later])
    lease = await claimed(store, later)
    await store.write_checkpoints(
        [checkpoint(lease, lease.row_version, status="SUCCEEDED", output=None)]
    )
    failed = execution(status="QUEUED")
    await store.create_executions([failed])
    lease = await claimed(store, failed)
    await store.write_checkpoints(
        [checkpoint(lease, lease.row_version, status="FAILED", output={"x": 1}, error="E")]
    )

    t = EXECUTIONS
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(t.c.id, t.c.output.is_(None)))
        sql_null = dict(tuple(row) for row in rows)
    assert sql_null == {succeeded.id: False, running.id: True, later.id: False, failed.id: True}
    got = await store.get_execution(running.id)
    assert got is not None and got.output is None


async def test_history_output_null_is_not_missing(store: SQLStore) -> None:
    record = execution(status="QUEUED")
    await store.create_executions([record])
    lease = await claimed(store, record)
    steps = [
        history(record.id, 1, "A", output=None),
        history(record.id, 2, "B", status="FAILED", output=None, error="E", cause="c"),
    ]
    await store.write_checkpoints([checkpoint(lease, lease.row_version, history=steps)])
    h = HISTORY
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(h.c.state, h.c.output.is_(None)))
        assert dict(tuple(row) for row in rows) == {"A": False, "B": True}
    assert await store.state_output(record.id, "A") == (True, None)
    assert await store.state_output(record.id, "B") == (False, None)


async def test_non_json_values_are_refused(store: SQLStore) -> None:
    with pytest.raises(ValueError, match="JSON"):
        await store.create_executions([execution(input={"bad": {1, 2}})])
    with pytest.raises(ValueError, match="JSON"):
        await store.create_executions([execution(input=float("nan"))])
    assert await store.count_executions(ExecutionFilter()) == 0


# ---------------------------------------------------------------- unique names


async def test_execution_names_are_unique_per_machine(store: SQLStore) -> None:
    await store.create_executions([execution("m1", "a"), execution("m1", "b")])
    await store.create_executions([execution("m2", "a")])  # another machine: fine

    with pytest.raises(DuplicateExecutionName) as caught:
        await store.create_executions([execution("m1", "c"), execution("m1", "b")])
    assert caught.value.names == ("b",)
    assert caught.value.machine_id == "m1"
    assert "'b'" in str(caught.value) and "'m1'" in str(caught.value)
    assert caught.value.__cause__ is not None  # the driver's IntegrityError
    # Nothing of the failed call was written.
    assert await store.get_execution_by_name("m1", "c") is None

    with pytest.raises(DuplicateExecutionName):
        await store.create_executions([execution("m1", "x"), execution("m1", "x")])
    assert await store.get_execution_by_name("m1", "x") is None
    assert await store.count_executions(ExecutionFilter()) == 3


# ---------------------------------------------------------------- filters


@pytest.fixture
async def population(store: SQLStore) -> list[ExecutionRecord]:
    """48 executions over two machines, two batches, every status and a spread of times."""
    statuses = ["QUEUED", "RUNNING", "WAITING", "SUCCEEDED", "FAILED", "ABORTED"]
    batches = [new_id(), new_id()]
    records = []
    for i in range(48):
        status = statuses[i % 6]
        ended = status in {"SUCCEEDED", "FAILED", "ABORTED"}
        records.append(
            execution(
                "alpha" if i % 2 else "beta",
                f"{'order' if i % 3 else 'refund'}-{i:03d}",
                status=status,
                batch_id=batches[i % 4 // 2] if i < 40 else None,
                current_state=["Validate", "Charge", "Ship"][i % 3],
                input={"n": i, "region": "eu" if i % 4 else "us", "vip": i % 5 == 0},
                output={"total": i * 10, "ok": True} if status == "SUCCEEDED" else None,
                started_at=T0 + timedelta(minutes=i) if status != "QUEUED" else None,
                ended_at=T0 + timedelta(minutes=i, seconds=30) if ended else None,
            )
        )
    await store.create_executions(records)
    return records


def expect(records: list[ExecutionRecord], predicate: Any) -> list[str]:
    return sorted(r.id for r in records if predicate(r))


async def test_every_filter_field(store: SQLStore, population: list[ExecutionRecord]) -> None:
    recs = population
    batch = recs[0].batch_id
    t10, t20 = T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)
    cases: list[tuple[ExecutionFilter, Any]] = [
        (ExecutionFilter(), lambda r: True),
        (ExecutionFilter(before=recs[20].id), lambda r: r.id < recs[20].id),
        (
            ExecutionFilter(after=recs[5].id, before=recs[30].id, status="FAILED"),
            lambda r: recs[5].id < r.id < recs[30].id and r.status == "FAILED",
        ),
        (ExecutionFilter(state_machine_id="alpha"), lambda r: r.state_machine_id == "alpha"),
        (ExecutionFilter(status="FAILED"), lambda r: r.status == "FAILED"),
        (
            ExecutionFilter(status=["QUEUED", "WAITING"]),
            lambda r: r.status in {"QUEUED", "WAITING"},
        ),
        (
            ExecutionFilter(state_machine_id="beta", status=("SUCCEEDED",)),
            lambda r: r.state_machine_id == "beta" and r.status == "SUCCEEDED",
        ),
        (ExecutionFilter(name_prefix="refund-"), lambda r: r.name.startswith("refund-")),
        (ExecutionFilter(name_prefix="order-01"), lambda r: r.name.startswith("order-01")),
        (
            ExecutionFilter(state_machine_id="alpha", name_prefix="order"),
            lambda r: r.state_machine_id == "alpha" and r.name.startswith("order"),
        ),
        (ExecutionFilter(name_prefix="zzz"), lambda r: False),
        (ExecutionFilter(batch_id=batch), lambda r: r.batch_id == batch),
        (
            ExecutionFilter(batch_id=batch, status="RUNNING"),
            lambda r: r.batch_id == batch and r.status == "RUNNING",
        ),
        (ExecutionFilter(current_state="Charge"), lambda r: r.current_state == "Charge"),
        (
            ExecutionFilter(started_after=t10),
            lambda r: r.started_at is not None and r.started_at >= t10,
        ),
        (
            ExecutionFilter(started_before=t10),
            lambda r: r.started_at is not None and r.started_at < t10,
        ),
        (
            ExecutionFilter(started_after=t10, started_before=t20),
            lambda r: r.started_at is not None and t10 <= r.started_at < t20,
        ),
        (
            ExecutionFilter(ended_after=t20),
            lambda r: r.ended_at is not None and r.ended_at >= t20,
        ),
        (
            ExecutionFilter(ended_before=t20),
            lambda r: r.ended_at is not None and r.ended_at < t20,
        ),
        (
            ExecutionFilter(input_contains={"region": "us"}),
            lambda r: r.input["region"] == "us",
        ),
        (
            ExecutionFilter(input_contains={"region": "eu", "vip": True}),
            lambda r: r.input["region"] == "eu" and r.input["vip"],
        ),
        (ExecutionFilter(input_contains={"n": 7}), lambda r: r.input["n"] == 7),
        (ExecutionFilter(input_contains={"n": 7.0}), lambda r: r.input["n"] == 7),
        (ExecutionFilter(input_contains={"vip": False, "n": 3}), lambda r: r.input["n"] == 3),
        (ExecutionFilter(input_contains={}), lambda r: True),
        (ExecutionFilter(input_contains={"missing": None}), lambda r: False),
        (
            ExecutionFilter(output_contains={"ok": True}),
            lambda r: r.status == "SUCCEEDED",
        ),
        (
            ExecutionFilter(output_contains={"total": 30}),
            lambda r: r.output is not None and r.output["total"] == 30,
        ),
        (
            ExecutionFilter(state_machine_id="alpha", current_state="Ship", status="SUCCEEDED"),
            lambda r: (
                r.state_machine_id == "alpha"
                and r.current_state == "Ship"
                and r.status == "SUCCEEDED"
            ),
        ),
    ]
    for filter, predicate in cases:
        wanted = expect(recs, predicate)
        assert await ids(store, filter) == wanted, filter
        assert await store.count_executions(filter) == len(wanted), filter
        by_status: dict[str, int] = {}
        for r in recs:
            if r.id in wanted:
                by_status[r.status] = by_status.get(r.status, 0) + 1
        assert await store.count_by_status(filter) == by_status, filter


async def test_name_prefix_is_literal_and_case_sensitive(store: SQLStore) -> None:
    names = ["a_b", "a%b", "axb", "A_b", "ä-1", "ä-2", "äb", "a", "a\U0010ffff", "b"]
    await store.create_executions([execution("m", name) for name in names])

    async def names_with(prefix: str) -> list[str]:
        found = await store.list_executions(ExecutionFilter(name_prefix=prefix))
        return sorted(r.name for r in found)

    assert await names_with("a_") == ["a_b"]
    assert await names_with("a%") == ["a%b"]
    assert await names_with("A") == ["A_b"]
    assert await names_with("ä-") == ["ä-1", "ä-2"]
    assert await names_with("a") == sorted(["a_b", "a%b", "axb", "a", "a\U0010ffff"])
    assert await names_with("a\U0010ffff") == ["a\U0010ffff"]


async def test_containment_beyond_flat_objects(store: SQLStore) -> None:
    record = execution(input={"customer": {"id": 7, "tags": ["x", "y"]}, "n": 1})
    await store.create_executions([record, execution(input={"customer": {"id": 8}})])
    nested = ExecutionFilter(input_contains={"customer": {"tags": ["y"]}})
    if store.dialect == "sqlite":
        with pytest.raises(ValueError, match="SQLite"):
            await store.list_executions(nested)
        with pytest.raises(ValueError, match="SQLite"):
            await store.count_executions(ExecutionFilter(output_contains=[1]))
    else:
        assert await ids(store, nested) == [record.id]
        assert await store.count_executions(ExecutionFilter(input_contains={"n": 1})) == 1


async def test_keyset_pagination(store: SQLStore, population: list[ExecutionRecord]) -> None:
    everything = sorted(r.id for r in population)
    seen: list[str] = []
    after = None
    while True:
        page = await ids(store, ExecutionFilter(limit=7, after=after))
        assert len(page) <= 7
        if not page:
            break
        seen.extend(page)
        after = page[-1]
    assert seen == everything

    alpha = sorted(r.id for r in population if r.state_machine_id == "alpha")
    first = await ids(store, ExecutionFilter(state_machine_id="alpha", limit=5))
    second = await ids(store, ExecutionFilter(state_machine_id="alpha", limit=5, after=first[-1]))
    assert first + second == alpha[:10]
    assert await store.count_executions(ExecutionFilter(after=everything[9])) == 38
    assert await ids(store, ExecutionFilter(limit=0)) == []


async def test_stream_executions_pages(store: SQLStore, population: list[ExecutionRecord]) -> None:
    everything = sorted(r.id for r in population)
    streamed = [r.id async for r in store.stream_executions(ExecutionFilter(), page_size=5)]
    assert streamed == everything
    limited = ExecutionFilter(limit=12, after=everything[3])
    assert [r.id async for r in store.stream_executions(limited, page_size=5)] == everything[4:16]
    failed = ExecutionFilter(status="FAILED")
    got = [r.id async for r in store.stream_executions(failed, page_size=1)]
    assert got == expect(population, lambda r: r.status == "FAILED")
    with pytest.raises(ValueError):
        [r async for r in store.stream_executions(failed, page_size=0)]


# ---------------------------------------------------------------- links


def link(
    source: ExecutionRecord,
    target: ExecutionRecord,
    state: str | None = None,
    transformer: str | None = None,
) -> LinkRecord:
    return LinkRecord(
        source_execution_id=source.id,
        source_machine_id=source.state_machine_id,
        source_state=state,
        transformer=transformer,
        target_execution_id=target.id,
        target_machine_id=target.state_machine_id,
        created_at=T0,
    )


async def test_links_and_unlinked_sources(store: SQLStore) -> None:
    sources = [execution("intake", f"s{i}", status="SUCCEEDED", output={"i": i}) for i in range(6)]
    await store.create_executions(sources)
    t1, t2, t3 = execution("orders"), execution("orders"), execution("orders")
    t4 = execution("billing")
    await store.create_executions(
        [t1, t2, t3, t4],
        [
            link(sources[0], t1),
            link(sources[1], t2, "Validate"),
            link(sources[2], t3, None, "shrink"),
            link(sources[3], t4),
        ],
    )
    assert await store.links_from(sources[0].id) == [link(sources[0], t1)]
    assert await store.links_to(t2.id) == [link(sources[1], t2, "Validate")]
    assert await store.links_from(t1.id) == []

    async def unlinked(state: str | None, transformer: str | None, **kw: Any) -> list[str]:
        filter = ExecutionFilter(state_machine_id="intake", **kw)
        stream = store.stream_unlinked(
            filter,
            target_machine_id="orders",
            source_state=state,
            transformer=transformer,
            page_size=2,
        )
        return [r.name async for r in stream]

    def names(*numbers: int) -> list[str]:
        by_name = {s.name: s.id for s in sources}
        return sorted((f"s{n}" for n in numbers), key=by_name.__getitem__)

    assert await unlinked(None, None) == names(1, 2, 3, 4, 5)
    assert await unlinked("Validate", None) == names(0, 2, 3, 4, 5)
    assert await unlinked(None, "shrink") == names(0, 1, 3, 4, 5)
    assert await unlinked("Validate", "shrink") == names(0, 1, 2, 3, 4, 5)
    assert len(await unlinked(None, None, limit=3)) == 3
    stream = store.stream_unlinked(
        ExecutionFilter(state_machine_id="intake"),
        target_machine_id="billing",
        source_state=None,
        transformer=None,
    )
    assert [r.name async for r in stream] == names(0, 1, 2, 4, 5)

    # A source can be chained again to the same machine (another batch, unique=False)...
    t5 = execution("orders", batch_id="b2")
    await store.create_executions([t5], [link(sources[0], t5)])
    assert [x.target_execution_id for x in await store.links_from(sources[0].id)] == [t1.id, t5.id]
    # ... but a target has one source.
    with pytest.raises(DuplicateLink):
        await store.create_executions([execution("orders")], [link(sources[1], t5)])

    # With batch_id, only links into that batch count.
    async def unlinked_in(batch: str) -> list[str]:
        stream = store.stream_unlinked(
            ExecutionFilter(state_machine_id="intake"),
            target_machine_id="orders",
            source_state=None,
            transformer=None,
            batch_id=batch,
        )
        return [r.name async for r in stream]

    assert await unlinked_in("b2") == names(1, 2, 3, 4, 5)
    assert await unlinked_in("b3") == names(0, 1, 2, 3, 4, 5)
    # A link whose target was created by an earlier call.
    t6 = execution("orders", batch_id="b3")
    await store.create_executions([t6])
    await store.create_executions([], [link(sources[4], t6)])
    assert await unlinked_in("b3") == names(0, 1, 2, 3, 5)
    assert await store.links_to(t6.id) == [link(sources[4], t6)]

    # What a chained batch streams: the same sources, only the columns chaining reads.
    for state, transformer, batch in [
        (None, None, None),
        ("Validate", None, "b3"),
        (None, "shrink", None),
    ]:
        filter = ExecutionFilter(state_machine_id="intake")
        expected = [
            r
            async for r in store.stream_unlinked(
                filter,
                target_machine_id="orders",
                source_state=state,
                transformer=transformer,
                batch_id=batch,
            )
        ]
        for with_output in (True, False):
            got = [
                s
                async for s in store.stream_chain_sources(
                    filter,
                    target_machine_id="orders",
                    source_state=state,
                    transformer=transformer,
                    batch_id=batch,
                    with_output=with_output,
                    page_size=2,
                )
            ]
            assert got == [
                ChainSource(r.id, r.state_machine_id, r.status, r.output if with_output else None)
                for r in expected
            ]
    limited = store.stream_chain_sources(
        ExecutionFilter(state_machine_id="intake", limit=3),
        target_machine_id="orders",
        source_state=None,
        transformer=None,
        page_size=2,
    )
    assert len([s async for s in limited]) == 3


# ---------------------------------------------------------------- claims and leases


async def test_links_need_both_executions(store: SQLStore) -> None:
    source = execution("intake", status="SUCCEEDED", output={})
    earlier = execution("orders")
    await store.create_executions([source, earlier])
    ghost = execution("intake")  # never created
    target = execution("orders")
    # A source that does not exist, with the target created by the same call (SQLite's
    # one-round-trip path) and with a target created earlier: nothing is written.
    with pytest.raises(NotFoundError, match=f"cannot link from execution '{ghost.id}'"):
        await store.create_executions([target], [link(ghost, target)])
    assert await store.get_execution(target.id) is None
    with pytest.raises(NotFoundError, match=f"cannot link from execution '{ghost.id}'"):
        await store.create_executions([], [link(ghost, earlier)])
    # A target that does not exist.
    with pytest.raises(NotFoundError, match=f"cannot link to execution '{target.id}'"):
        await store.create_executions([], [link(source, target)])
    assert await store.links_from(source.id) == []
    # Both ends exist: a source created by the same call, or earlier.
    first = execution("orders")
    await store.create_executions([target, first], [link(source, target), link(target, first)])
    await store.create_executions([], [link(source, earlier)])
    assert {x.target_execution_id for x in await store.links_from(source.id)} == {
        target.id,
        earlier.id,
    }
    assert await store.links_from(target.id) == [link(target, first)]


async def test_purge_deletes_history_and_links_with_their_executions(store: SQLStore) -> None:
    day = timedelta(days=1)
    parent = execution("intake", status="SUCCEEDED", ended_at=T0 + day, output={})
    old = execution("orders", status="QUEUED")
    kept = execution("orders", status="QUEUED")
    child = execution("billing")
    await store.create_executions([parent])
    await store.create_executions(
        [old, kept, child], [link(parent, old), link(parent, kept), link(old, child)]
    )
    for record, ended in ((old, T0), (kept, T0 + 2 * day)):
        done = checkpoint(
            record,
            0,
            status="SUCCEEDED",
            current_state=None,
            output={},
            ended_at=ended,
            history=[history(record.id, 1, "A"), history(record.id, 2, "B")],
        )
        assert await store.write_checkpoints([done]) == [True]

    assert await store.purge_executions(ended_before=T0 + day / 2) == 1

    assert await store.get_execution(old.id) is None
    assert await store.history(old.id) == []
    assert await store.links_to(old.id) == [] and await store.links_from(old.id) == []
    assert await store.links_to(child.id) == []  # the link from the purged source
    assert [h.sequence for h in await store.history(kept.id)] == [1, 2]
    assert await store.links_to(kept.id) == [link(parent, kept)]
    assert await store.get_execution(child.id) is not None
    assert await store.get_execution(parent.id) is not None


async def test_claim_takes_a_free_lease(store: SQLStore) -> None:
    record = execution(status="QUEUED")
    await store.create_executions([record])
    got = await store.claim(record.id, "w1", T0 + LEASE, T0)
    assert got is not None
    assert (got.status, got.lease_owner, got.lease_expires_at) == ("RUNNING", "w1", T0 + LEASE)
    assert got.started_at == T0 and got.row_version == 1
    assert await store.get_execution(record.id) == got

    # A live lease belongs to its owner; the owner may claim again (started_at stays).
    later = T0 + timedelta(seconds=10)
    assert await store.claim(record.id, "w2", later + LEASE, later) is None
    again = await store.claim(record.id, "w1", later + LEASE, later)
    assert again is not None and again.row_version == 2 and again.started_at == T0

    # Once expired, anyone can take it over.
    expired = later + LEASE + timedelta(seconds=1)
    taken = await store.claim(record.id, "w2", expired + LEASE, expired)
    assert taken is not None and taken.lease_owner == "w2" and taken.row_version == 3


async def test_claim_refuses_ended_and_missing(store: SQLStore) -> None:
    ended = [execution(status=s) for s in ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")]
    waiting = execution(status="WAITING", lease_owner="old", lease_expires_at=T0)
    await store.create_executions([*ended, waiting])
    for record in ended:
        assert await store.claim(record.id, "w1", T0 + LEASE, T0) is None
    assert await store.claim(new_id(), "w1", T0 + LEASE, T0) is None
    woken = await store.claim(waiting.id, "w1", T0 + LEASE, T0 + timedelta(seconds=1))
    assert woken is not None and woken.status == "RUNNING"


async def test_racing_claims_have_one_winner(store: SQLStore) -> None:
    records = [execution(status="QUEUED") for _ in range(5)]
    await store.create_executions(records)
    for record in records:
        results = await asyncio.gather(
            *(store.claim(record.id, f"w{i}", T0 + LEASE, T0) for i in range(6))
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        got = await store.get_execution(record.id)
        assert got is not None and got.lease_owner == winners[0].lease_owner
        assert got.row_version == 1


async def test_renew_lease(store: SQLStore) -> None:
    record = execution(status="QUEUED")
    await store.create_executions([record])
    lease = await claimed(store, record, "w1")
    later = T0 + timedelta(minutes=5)
    assert await store.renew_lease(record.id, "w1", later) is True
    got = await store.get_execution(record.id)
    assert got is not None and got.lease_expires_at == later
    assert got.row_version == lease.row_version  # renewing is not a write of the execution
    assert await store.renew_lease(record.id, "w2", later) is False
    assert await store.renew_lease(new_id(), "w1", later) is False
    await store.abort_executions(execution_ids=[record.id], now=T0)
    assert await store.renew_lease(record.id, "w1", later) is False


# ---------------------------------------------------------------- checkpoints


async def test_checkpoint_applies_and_writes_history(store: SQLStore) -> None:
    record = execution(status="QUEUED")
    await store.create_executions([record])
    lease = await claimed(store, record)
    steps = [history(record.id, 1, "A"), history(record.id, 2, "B", output={"b": 2})]
    assert await store.write_checkpoints(
        [
            checkpoint(
                lease,
                1,
                owner="w1",
                current_state="C",
                data={"at": "C"},
                variables={"k": 1},
                history=steps,
            )
        ]
    ) == [True]
    got = await store.get_execution(record.id)
    assert got is not None
    assert (got.status, got.current_state, got.data, got.variables) == (
        "RUNNING",
        "C",
        {"at": "C"},
        {"k": 1},
    )
    assert (got.row_version, got.history_seq, got.lease_owner) == (2, 2, "w1")
    assert got.lease_expires_at == T0 + LEASE  # kept: the checkpoint gave none
    assert await store.history(record.id) == steps

    end = T0 + timedelta(minutes=1)
    final = history(record.id, 3, "C", output={"done": True})
    assert await store.write_checkpoints(
        [
            checkpoint(
                got,
                2,
                owner="w1",
                status="SUCCEEDED",
                current_state=None,
                output={"done": True},
                ended_at=end,
                release_lease=True,
                history=[final],
            )
        ]
    ) == [True]
    got = await store.get_execution(record.id)
    assert got is not None
    assert (got.status, got.output, got.ended_at, got.history_seq) == (
        "SUCCEEDED",
        {"done": True},
        end,
        3,
    )
    assert (got.lease_owner, got.lease_expires_at, got.row_version) == (None, None, 3)
    assert [h.sequence for h in await store.history(record.id)] == [1, 2, 3]
    assert await store.state_output(record.id, "B") == (True, {"b": 2})


async def test_history_entries_with_epoch_times(store: SQLStore) -> None:
    """The engine hands history over as HistoryEntry (times in epoch seconds): they read back
    as the HistoryRecords of the same datetimes, mixed with HistoryRecords in one write."""
    record = execution(status="QUEUED")
    await store.create_executions([record])
    start = T0.timestamp() + 0.1234565  # a tie at the microsecond
    entries = [
        HistoryEntry(
            1, "A", "Pass", "SUCCEEDED", {"a": 1}, {"b": 2}, None, None, 0, start, start + 0.5
        ),
        HistoryEntry(
            2, "B", "Task", "FAILED", {"b": 2}, None, "E", "why", 1, start + 1, start + 1.9999996
        ),
    ]
    done = checkpoint(record, 0, history=[*entries, history(record.id, 3, "C")])
    assert await store.write_checkpoints([done]) == [True]
    got = await store.history(record.id)
    assert got[2] == history(record.id, 3, "C")
    for entry, row in zip(entries, got, strict=False):
        assert row == HistoryRecord(
            execution_id=record.id,
            sequence=entry.sequence,
            state=entry.state,
            type=entry.type,
            status=entry.status,
            input=entry.input,
            output=entry.output if entry.status == "SUCCEEDED" else None,
            error=entry.error,
            cause=entry.cause,
            attempt=entry.attempt,
            started_at=datetime.fromtimestamp(entry.started_at, UTC),
            ended_at=datetime.fromtimestamp(entry.ended_at, UTC),
        )
    current = await store.get_execution(record.id)
    assert current is not None and current.history_seq == 3


async def test_stale_checkpoint_is_refused_without_history(store: SQLStore) -> None:
    record = execution(status="QUEUED")
    await store.create_executions([record])
    lease = await claimed(store, record, "w1")
    ok = checkpoint(lease, 1, owner="w1", history=[history(record.id, 1, "A")])
    assert await store.write_checkpoints([ok]) == [True]

    # The same version again (a stale runner), or a wrong owner: refused, no history.
    stale = checkpoint(lease, 1, owner="w1", history=[history(record.id, 2, "Stale")])
    thief = checkpoint(lease, 2, owner="w2", history=[history(record.id, 2, "Thief")])
    assert await store.write_checkpoints([stale, thief]) == [False, False]
    got = await store.get_execution(record.id)
    assert got is not None and got.row_version == 2 and got.history_seq == 1
    assert [h.state for h in await store.history(record.id)] == ["A"]

    # owner=None skips the owner test, not the version test.
    assert await store.write_checkpoints([checkpoint(lease, 2)]) == [True]


async def test_checkpoints_mix_applied_and_stale(store: SQLStore) -> None:
    records = [execution(status="QUEUED") for _ in range(4)]
    await store.create_executions(records)
    leases = [await claimed(store, r, "w1") for r in records]
    batch = [
        checkpoint(leases[0], 1, owner="w1", history=[history(records[0].id, 1)]),
        checkpoint(leases[1], 7, owner="w1", history=[history(records[1].id, 1)]),  # stale
        checkpoint(leases[2], 1, owner="w1", history=[history(records[2].id, 1)]),
        checkpoint(leases[3], 1, owner="w9", history=[history(records[3].id, 1)]),  # not owner
        Checkpoint(
            execution_id=new_id(),
            expected_version=0,
            owner=None,
            status="RUNNING",
            current_state="S",
            data=None,
            variables={},
            history=[history(new_id(), 1)],
        ),  # missing execution
    ]
    assert await store.write_checkpoints(batch) == [True, False, True, False, False]
    assert [len(await store.history(r.id)) for r in records] == [1, 0, 1, 0]


async def test_checkpoints_of_one_execution_apply_in_order(store: SQLStore) -> None:
    record = execution(status="QUEUED")
    await store.create_executions([record])
    lease = await claimed(store, record, "w1")
    batch = [
        checkpoint(lease, 1, owner="w1", current_state="B", history=[history(record.id, 1)]),
        checkpoint(lease, 2, owner="w1", current_state="C", history=[history(record.id, 2)]),
        checkpoint(lease, 2, owner="w1", current_state="X", history=[history(record.id, 3)]),
        checkpoint(lease, 3, owner="w1", current_state="D", history=[history(record.id, 3)]),
    ]
    assert await store.write_checkpoints(batch) == [True, True, False, True]
    got = await store.get_execution(record.id)
    assert got is not None and (got.current_state, got.row_version) == ("D", 4)
    assert [h.sequence for h in await store.history(record.id)] == [1, 2, 3]


async def test_history_sequence_is_unique(store: SQLStore) -> None:
    record = execution(status="QUEUED")
    await store.create_executions([record])
    lease = await claimed(store, record, "w1")
    assert await store.write_checkpoints(
        [checkpoint(lease, 1, history=[history(record.id, 1)])]
    ) == [True]
    # A checkpoint that passes the version guard but repeats a sequence number is a bug:
    # the whole transaction fails and nothing of it is written.
    other = execution(status="QUEUED")
    await store.create_executions([other])
    other_lease = await claimed(store, other, "w1")
    with pytest.raises(InfrastructureError) as caught:
        await store.write_checkpoints(
            [
                checkpoint(other_lease, 1, history=[history(other.id, 1)]),
                checkpoint(lease, 2, history=[history(record.id, 1, "Again")]),
            ]
        )
    assert caught.value.__cause__ is not None
    got = await store.get_execution(record.id)
    assert got is not None and got.row_version == 2
    assert await store.history(other.id) == []


async def test_racing_checkpoints_have_one_winner(store: SQLStore) -> None:
    record = execution(status="QUEUED")
    await store.create_executions([record])
    lease = await claimed(store, record, "w1")
    results = await asyncio.gather(
        *(
            store.write_checkpoints(
                [checkpoint(lease, 1, current_state=f"S{i}", history=[history(record.id, 1)])]
            )
            for i in range(6)
        )
    )
    assert sorted(r[0] for r in results) == [False] * 5 + [True]
    assert len(await store.history(record.id)) == 1


async def test_checkpoint_lease_and_redrive_fields(store: SQLStore) -> None:
    record = execution(status="QUEUED")
    await store.create_executions([record])
    lease = await claimed(store, record, "w1")
    until = T0 + timedelta(hours=1)
    assert await store.write_checkpoints(
        [checkpoint(lease, 1, owner="w1", status="WAITING", lease_expires_at=until)]
    ) == [True]
    got = await store.get_execution(record.id)
    assert got is not None and (got.lease_owner, got.lease_expires_at) == ("w1", until)

    ended = T0 + timedelta(minutes=2)
    assert await store.write_checkpoints(
        [
            checkpoint(
                got,
                2,
                owner="w1",
                status="FAILED",
                error="States.TaskFailed",
                cause="boom",
                ended_at=ended,
                release_lease=True,
            )
        ]
    ) == [True]
    got = await store.get_execution(record.id)
    assert got is not None
    assert (got.status, got.error, got.cause, got.ended_at) == (
        "FAILED",
        "States.TaskFailed",
        "boom",
        ended,
    )
    assert (got.lease_owner, got.lease_expires_at, got.redrive_count) == (None, None, 0)

    # A redrive: back to RUNNING, error and end cleared, redrive count moved on.
    assert await store.write_checkpoints(
        [checkpoint(got, 3, lease_expires_at=until, redrive_count=1)]
    ) == [True]
    got = await store.get_execution(record.id)
    assert got is not None
    assert (got.status, got.error, got.ended_at, got.redrive_count) == ("RUNNING", None, None, 1)
    assert got.lease_expires_at == until and got.history_seq == 0
    assert await store.claim(record.id, "w2", T0 + LEASE, T0) is not None


async def test_a_thousand_checkpoints_in_one_call(store: SQLStore) -> None:
    records = [execution(status="RUNNING", lease_owner="w1", row_version=1) for _ in range(1000)]
    await store.create_executions(records)
    batch = [
        checkpoint(
            r,
            1 if i % 10 else 0,  # every tenth is stale
            owner="w1",
            data={"i": i},
            history=[history(r.id, 1, "A"), history(r.id, 2, "B", output=i)],
        )
        for i, r in enumerate(records)
    ]
    applied = await store.write_checkpoints(batch)
    assert applied == [bool(i % 10) for i in range(1000)]
    assert await store.count_executions(ExecutionFilter(current_state="S")) == 900
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(HISTORY.c.execution_id))).scalars().all()
    assert len(rows) == 1800
    assert set(rows) == {r.id for i, r in enumerate(records) if i % 10}
    got = await store.get_execution(records[11].id)
    assert got is not None and got.data == {"i": 11} and got.row_version == 2


# ---------------------------------------------------------------- abort


async def test_abort_makes_later_checkpoints_stale(store: SQLStore) -> None:
    batch_id = new_id()
    running = execution(status="QUEUED", batch_id=batch_id)
    queued = execution(status="QUEUED", batch_id=batch_id)
    done = execution(status="SUCCEEDED", batch_id=batch_id, output=1)
    elsewhere = execution(status="QUEUED")
    await store.create_executions([running, queued, done, elsewhere])
    lease = await claimed(store, running, "w1")

    now = T0 + timedelta(minutes=3)
    count = await store.abort_executions(
        batch_id=batch_id, error="States.Aborted", cause="stop", now=now
    )
    assert count == 2
    got = await store.get_execution(running.id)
    assert got is not None
    assert (got.status, got.error, got.cause, got.ended_at) == (
        "ABORTED",
        "States.Aborted",
        "stop",
        now,
    )
    assert (got.lease_owner, got.row_version) == (None, lease.row_version + 1)
    finished = await store.get_execution(done.id)
    assert finished is not None and finished.status == "SUCCEEDED" and finished.output == 1

    # The runner that still holds its old version writes nothing.
    late = checkpoint(lease, lease.row_version, owner="w1", history=[history(running.id, 1)])
    assert await store.write_checkpoints([late]) == [False]
    assert await store.history(running.id) == []
    assert await store.claim(running.id, "w1", T0 + LEASE, now) is None

    assert await store.abort_executions(execution_ids=[elsewhere.id, done.id], now=now) == 1
    assert await store.abort_executions(execution_ids=[elsewhere.id], now=now) == 0
    assert await store.abort_executions(now=now) == 0
    assert await store.count_by_status(ExecutionFilter()) == {"ABORTED": 3, "SUCCEEDED": 1}


# ---------------------------------------------------------------- history and outputs


async def test_history_and_state_output(store: SQLStore) -> None:
    record = execution(status="QUEUED")
    await store.create_executions([record])
    lease = await claimed(store, record, "w1")
    steps = [
        history(record.id, 1, "Fetch", output={"page": 1}),
        history(record.id, 2, "Work", status="FAILED", error="E", output=None),
        history(record.id, 3, "Work", output={"try": 2}),
        history(record.id, 4, "Fetch", output={"page": 2}),
        history(record.id, 5, "Fetch", status="FAILED", error="E"),
    ]
    await store.write_checkpoints([checkpoint(lease, 1, history=steps)])
    assert [h.sequence for h in await store.history(record.id)] == [1, 2, 3, 4, 5]
    assert await store.history(record.id) == steps
    assert await store.state_output(record.id, "Fetch") == (True, {"page": 2})
    assert await store.state_output(record.id, "Work") == (True, {"try": 2})
    assert await store.state_output(record.id, "Nope") == (False, None)
    assert await store.state_output(new_id(), "Fetch") == (False, None)


# ---------------------------------------------------------------- batches


def batch(machine: str = "m1", name: str = "b", **kw: Any) -> BatchRecord:
    return BatchRecord(id=new_id(), state_machine_id=machine, name=name, status="RUNNING", **kw)


async def test_batches(store: SQLStore) -> None:
    first = await store.create_batch(
        batch(name="nightly", options={"concurrency": 64, "ratio": 0.5}, total=10, created_at=T0)
    )
    assert first.created_at == T0
    second = await store.create_batch(batch(name="second", created_at=T0 + timedelta(hours=1)))
    other = await store.create_batch(batch("m2", "nightly", created_at=T0 + timedelta(hours=2)))
    assert second.created_at is not None and second.created_at.tzinfo is UTC

    got = await store.get_batch(first.id)
    assert got == first and same(got.options, {"concurrency": 64, "ratio": 0.5})
    assert await store.get_batch_by_name("m1", "nightly") == first
    assert await store.get_batch_by_name("m2", "nightly") == other
    assert await store.get_batch_by_name("m3", "nightly") is None
    assert await store.get_batch(new_id()) is None

    assert [b.id for b in await store.list_batches()] == [other.id, second.id, first.id]
    assert [b.id for b in await store.list_batches("m1")] == [second.id, first.id]
    assert [b.id for b in await store.list_batches(limit=1)] == [other.id]

    finished = T0 + timedelta(hours=3)
    await store.update_batch(
        first.id, status="SUCCEEDED", counters={"SUCCEEDED": 9, "FAILED": 1}, finished_at=finished
    )
    await store.update_batch(first.id, stop_reason="done", total=11)
    await store.update_batch(first.id)
    got = await store.get_batch(first.id)
    assert got is not None
    assert (got.status, got.counters, got.finished_at, got.stop_reason, got.total) == (
        "SUCCEEDED",
        {"SUCCEEDED": 9, "FAILED": 1},
        finished,
        "done",
        11,
    )
    assert got.options == {"concurrency": 64, "ratio": 0.5}

    with pytest.raises(DuplicateBatchName) as caught:
        await store.create_batch(batch(name="nightly"))
    assert "'nightly'" in str(caught.value) and caught.value.__cause__ is not None


# ---------------------------------------------------------------- failures


async def test_driver_errors_are_infrastructure_errors(tmp_path: Any) -> None:
    from tests.services import free_port

    url = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    with pytest.raises(InfrastructureError) as caught:
        await open_store(url)
    assert caught.value.__cause__ is not None

    store = await open_store(f"sqlite:///{tmp_path / 'x.db'}", create=False)
    try:
        with pytest.raises(InfrastructureError) as caught:  # no tables: never migrated
            await store.get_execution("x")
        assert "no such table" in str(caught.value)
        assert caught.value.__cause__ is not None
    finally:
        await store.close()
