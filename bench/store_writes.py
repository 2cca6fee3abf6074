"""Store write throughput on PostgreSQL and SQLite: bulk inserts and group-committed checkpoints.

    python bench/store_writes.py            # 10,000 executions, 1,000 checkpoints, 3 runs each
    python bench/store_writes.py --quick    # 1 run each

Measures, on a fresh database per backend (PostgreSQL from `tests.services.start_postgres()`,
started with fsync off like the test server; SQLite in WAL mode with synchronous=FULL on the
local disk):

  create_executions   one call inserting N executions (one transaction)
  write_checkpoints   one call applying 1,000 checkpoints of 1,000 running executions, each
                      with 2 history rows (one transaction)
  checkpoints 1-by-1  the same 1,000 checkpoints, one call (one transaction) each

Each figure is the median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from statefleet.statemachine.protocols import (
    Checkpoint,
    ExecutionRecord,
    HistoryRecord,
    new_id,
)
from statefleet.store import SQLStore, open_store
from tests.services import start_postgres

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def executions(n: int, tag: str, *, running: bool = False) -> list[ExecutionRecord]:
    return [
        ExecutionRecord(
            id=new_id(),
            state_machine_id="bench",
            version="v1",
            name=f"{tag}-{i:07d}",
            status="RUNNING" if running else "QUEUED",
            input={"order": i, "customer": f"c{i % 977}", "lines": [1, 2, 3], "total": i * 1.5},
            lease_owner="w1" if running else None,
            lease_expires_at=T0 + timedelta(minutes=5) if running else None,
            row_version=1 if running else 0,
            created_at=T0,
        )
        for i in range(n)
    ]


def checkpoints(records: list[ExecutionRecord], version: int) -> list[Checkpoint]:
    result = []
    for r in records:
        seq = (version - 1) * 2
        result.append(
            Checkpoint(
                execution_id=r.id,
                expected_version=version,
                owner="w1",
                status="RUNNING",
                current_state="Charge",
                data={"order": r.input["order"], "validated": True},
                variables={},
                history=[
                    HistoryRecord(
                        execution_id=r.id,
                        sequence=seq + 1,
                        state="Prepare",
                        type="Pass",
                        status="SUCCEEDED",
                        input=r.input,
                        output={"order": r.input["order"]},
                        started_at=T0,
                        ended_at=T0,
                    ),
                    HistoryRecord(
                        execution_id=r.id,
                        sequence=seq + 2,
                        state="Validate",
                        type="Task",
                        status="SUCCEEDED",
                        input={"order": r.input["order"]},
                        output={"validated": True},
                        started_at=T0,
                        ended_at=T0,
                    ),
                ],
            )
        )
    return result


async def bench(store: SQLStore, inserts: int, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"insert": [], "group": [], "single": []}
    for run in range(runs):
        batch = executions(inserts, f"ins{run}")
        start = time.perf_counter()
        await store.create_executions(batch)
        times["insert"].append(time.perf_counter() - start)

        running = executions(1000, f"cp{run}", running=True)
        await store.create_executions(running)
        group = checkpoints(running, 1)
        start = time.perf_counter()
        applied = await store.write_checkpoints(group)
        times["group"].append(time.perf_counter() - start)
        assert all(applied)

        singles = checkpoints(running, 2)
        start = time.perf_counter()
        for cp in singles:
            assert await store.write_checkpoints([cp]) == [True]
        times["single"].append(time.perf_counter() - start)
    return times


def report(backend: str, inserts: int, times: dict[str, list[float]]) -> None:
    def line(label: str, seconds: list[float], count: int) -> None:
        median = statistics.median(seconds)
        print(f"{backend:<11} {label:<34} {median * 1000:9.0f} ms  {count / median:10,.0f} rows/s")

    line(f"create_executions({inserts:,})", times["insert"], inserts)
    line("write_checkpoints(1,000) x1 call", times["group"], 1000)
    line("write_checkpoints([cp]) x1,000", times["single"], 1000)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--inserts", type=int, default=10_000)
    args = parser.parse_args()
    runs = 1 if args.quick else 3

    pg = start_postgres()
    try:
        store = await open_store(pg.url(pg.create_database("bench")))
        try:
            report("postgresql", args.inserts, await bench(store, args.inserts, runs))
        finally:
            await store.close()
    finally:
        pg.stop()

    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        store = await open_store(f"sqlite:///{tmp}/bench.db")
        try:
            report("sqlite", args.inserts, await bench(store, args.inserts, runs))
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
