"""Streaming 100,000 executions keeps memory bounded by one page, on both backends."""

from __future__ import annotations

import gc
import tracemalloc

from statefleet.statemachine.protocols import ExecutionFilter
from statefleet.store import SQLStore
from tests.store.conftest import execution

ROWS = 100_000
PAGE = 1000


async def test_stream_100k_executions_in_bounded_memory(store: SQLStore) -> None:
    records = [
        execution(
            "bulk",
            f"e{i:06d}",
            status="SUCCEEDED",
            input={"i": i, "payload": "x" * 64},
            output={"i": i, "ok": True},
        )
        for i in range(ROWS)
    ]
    await store.create_executions(records)
    expected_last = max(r.id for r in records)
    del records
    gc.collect()

    # What one page of records costs, to size the bound.
    tracemalloc.start()
    try:
        page = await store.list_executions(ExecutionFilter(state_machine_id="bulk", limit=PAGE))
        page_bytes, _ = tracemalloc.get_traced_memory()
        del page
        gc.collect()

        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        count = 0
        last = ""
        async for record in store.stream_executions(
            ExecutionFilter(state_machine_id="bulk"), page_size=PAGE
        ):
            assert record.id > last
            last = record.id
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == ROWS and last == expected_last
    full_list = page_bytes * (ROWS // PAGE)  # what list_executions of everything would hold
    used = peak - base
    assert used < full_list / 10, (used, full_list)
    assert used < 8 * page_bytes + 4_000_000, (used, page_bytes)
