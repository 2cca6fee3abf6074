"""SQLite's writer connection: the bulk writes of a store (creations, group commits) run as
one round trip each to one held connection. It recovers when that connection breaks, its
errors are translated like any other, and two stores (processes) on one file still take
turns through SQLite's lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from statefleet.errors import InfrastructureError
from statefleet.statemachine.protocols import ExecutionFilter, MessageRecord, new_id
from statefleet.store import DuplicateExecutionName, SQLStore, open_store
from tests.store.conftest import execution, finished


async def test_a_broken_writer_connection_fails_one_write_and_is_replaced(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        first = execution()
        await store.create_executions([first])
        driver = await store._writer_driver()
        await driver.close()  # the connection dies under the store

        lost = execution()
        with pytest.raises(InfrastructureError):
            await store.create_executions([lost])
        assert await store.get_execution(lost.id) is None

        again = execution()
        await store.create_executions([again])  # a fresh writer connection
        assert await store.write_checkpoints([finished(again.id)]) == [True]
        got = await store.get_execution(again.id)
        assert got is not None and got.status == "SUCCEEDED"
        assert [h.sequence for h in await store.history(again.id)] == [1, 2]
    finally:
        await store.close()


async def test_writer_errors_are_translated_and_roll_back(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'e.db'}")
    try:
        taken = execution("m", "taken")
        await store.create_executions([taken])
        fresh = execution("m", "fresh")
        with pytest.raises(DuplicateExecutionName) as caught:
            await store.create_executions([fresh, execution("m", "taken")])
        assert caught.value.names == ("taken",)
        assert await store.get_execution(fresh.id) is None  # the whole call rolled back
        await store.create_executions([fresh])  # and the writer goes on
        assert await store.get_execution(fresh.id) is not None
    finally:
        await store.close()


async def test_two_stores_on_one_file_take_turns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    stores: list[SQLStore] = [await open_store(url), await open_store(url)]
    try:

        async def work(store: SQLStore, n: int) -> None:
            for round_ in range(20):
                records = [execution(f"m{n}", f"{round_}-{i}") for i in range(50)]
                await store.create_executions(records)
                applied = await store.write_checkpoints([finished(r.id) for r in records])
                assert applied == [True] * 50

        await asyncio.gather(*(work(store, n) for n, store in enumerate(stores)))
        for n in range(2):
            counts = await stores[0].count_by_status(ExecutionFilter(state_machine_id=f"m{n}"))
            assert counts == {"SUCCEEDED": 1000}
    finally:
        for store in stores:
            await store.close()


async def test_the_log_is_copied_into_the_database_file_in_the_background(
    tmp_path: Path,
) -> None:
    """The writer connection leaves checkpoints to the store's checkpointer thread: what it
    commits reaches the database file itself (read here without its log) while the store
    is open, and the thread ends with the store."""
    path = tmp_path / "c.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        records = [execution() for _ in range(300)]
        await store.create_executions(records)
        driver = await store._writer_driver()
        async with driver.execute("PRAGMA wal_autocheckpoint") as cursor:
            assert await cursor.fetchone() == (0,)  # not in the committing connection
        assert (tmp_path / "c.db-wal").exists()  # still open: the log is in use
        copy = tmp_path / "copy.db"
        async with asyncio.timeout(10):
            while True:  # only the database file, without the log
                copy.write_bytes(path.read_bytes())
                try:
                    count = sqlite3.connect(copy).execute("SELECT count(*) FROM executions")
                    if count.fetchone() == (300,):
                        break
                except sqlite3.DatabaseError:  # no such table yet in the file
                    pass
                await asyncio.sleep(0.05)
        names = [thread.name for thread in threading.enumerate()]
        assert "statefleet-wal-checkpoint" in names
        # idle, it sleeps; a commit (on the writer, or through SQLAlchemy) wakes it
        checkpointer = store._checkpointer
        assert checkpointer is not None
        await asyncio.sleep(checkpointer.interval * 3)
        rounds = checkpointer.rounds
        await store.count_executions(ExecutionFilter())  # a read wakes nothing
        await asyncio.sleep(checkpointer.interval * 5)
        assert checkpointer.rounds == rounds
        for write in (
            store.create_executions([execution()]),
            store.keep_message(
                MessageRecord(id=new_id(), correlation_key="k", correlation_value=1)
            ),
        ):
            await write
            async with asyncio.timeout(10):
                while checkpointer.rounds == rounds:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            rounds = checkpointer.rounds
    finally:
        await store.close()
    names = [thread.name for thread in threading.enumerate()]
    assert "statefleet-wal-checkpoint" not in names
    assert not (tmp_path / "c.db-wal").exists()  # the last connection closed it


@pytest.mark.parametrize("count", [1, 255, 256, 257, 700])
async def test_rows_go_in_through_multi_row_statements_whatever_their_number(
    tmp_path: Path, count: int
) -> None:
    """Creations and history rows are inserted by statements of 256, 64, 16, 4 and 1 rows:
    every row arrives once, with its values, whatever the count."""
    store = await open_store(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        records = [execution("m", f"e{i:04d}", input={"i": i}) for i in range(count)]
        await store.create_executions(records)
        assert await store.count_executions(ExecutionFilter(state_machine_id="m")) == count
        stored = await store.list_executions(ExecutionFilter(state_machine_id="m", limit=count))
        assert {r.name: r.input for r in stored} == {r.name: r.input for r in records}
        applied = await store.write_checkpoints([finished(r.id, states=3) for r in records])
        assert applied == [True] * count
        for record in (records[0], records[-1]):
            assert [h.sequence for h in await store.history(record.id)] == [1, 2, 3]
    finally:
        await store.close()
