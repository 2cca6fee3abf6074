"""Persisted executions per second: one process, PostgreSQL and SQLite, default durability.

    python bench/persistence.py            # full: 3 runs per figure, 20,000-execution batches
    python bench/persistence.py --quick    # 1 run per figure, smaller sizes

Scenarios, each on PostgreSQL (started here on loopback with its default durability:
fsync, synchronous_commit and full_page_writes on) and on SQLite (a file, WAL,
synchronous=FULL):

  sequential    execute() one after another (a checkpoint waits for its own commit)
  concurrent    64 execute() calls at a time (checkpoints share transactions)
  local batch   execute_batch chaining N new executions from N sources, concurrency 512
                (and 256: half as many in flight, so each commit waits for the loop)

The machine is the 4-state one (Pass -> Task (no-op) -> Choice -> Succeed) with full
history. Each scenario runs in a fresh process (for its peak RSS) on an empty database.
Prints a markdown table; figures are medians of the runs with min-max.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machines import DURABLE_POSTGRES, FOUR_STATE, noop, percentile, source_input  # noqa: E402

#: Executions in flight in the local batch: twice a group commit's worth (EAGER_GROUP), so
#: that one group commits while the loop runs the executions of the next.
BATCH_CONCURRENCY = 512


async def scenario(url: str, kind: str, size: int) -> dict[str, Any]:
    from statefleet import BatchOptions, ExecutionFilter, PersistentStateMachine, open_store

    store = await open_store(url)
    sm = await PersistentStateMachine.create(
        FOUR_STATE, machine_id="four", store=store, resources={"noop": noop}
    )
    inputs = (source_input(i) for i in range(size))
    started = time.perf_counter()
    if kind == "sequential":
        for value in inputs:
            await sm.execute(value)
    elif kind == "concurrent":
        gate = asyncio.Semaphore(64)

        async def one(value: Any) -> None:
            async with gate:
                await sm.execute(value)

        await asyncio.gather(*(one(v) for v in inputs))
    else:
        source = await PersistentStateMachine.create(
            FOUR_STATE, machine_id="source", store=store, resources={"noop": noop}
        )
        await (await source.execute_bulk(inputs, BatchOptions(concurrency=256))).wait()
        started = time.perf_counter()
        concurrency = 256 if kind == "batch256" else BATCH_CONCURRENCY
        batch = await sm.execute_batch(
            ExecutionFilter(state_machine_id="source"),
            options=BatchOptions(concurrency=concurrency, chunk_size=1000),
        )
        record = await batch.wait()
        assert record.total == size, record
    elapsed = time.perf_counter() - started
    latencies = []
    async for rec in store.stream_executions(ExecutionFilter(state_machine_id="four")):
        if rec.updated_at and rec.started_at:  # start -> its final write (durable end)
            latencies.append((rec.updated_at - rec.started_at).total_seconds())
    count = await store.count_executions(
        ExecutionFilter(state_machine_id="four", status="SUCCEEDED")
    )
    await store.close()
    assert count == size, (count, size)
    latencies.sort()
    return {
        "rate": size / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that over from
    the parent across fork + exec, so a child of a big parent reports the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(url: str, kind: str, size: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--size", str(size)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} on {url.split(':')[0]} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summary(values: list[float], fmt: str = "{:,.0f}") -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return fmt.format(median)
    return f"{fmt.format(median)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--size", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(scenario(args.url, args.child, args.size))))
        return

    from tests.services import start_postgres

    runs = 1 if args.quick else 3
    sizes = (
        {"sequential": 300, "concurrent": 3000, "batch": 5000}
        if args.quick
        else {"sequential": 1000, "concurrent": 10000, "batch": 20000}
    )
    server = start_postgres(extra_settings=DURABLE_POSTGRES)
    rows = []
    try:
        counter = 0
        for kind in ("sequential", "concurrent", "batch"):
            for backend in ("postgresql", "sqlite"):
                results = []
                for _ in range(runs):
                    counter += 1
                    if backend == "postgresql":
                        url = server.url(server.create_database(f"bench_{counter}"))
                    else:
                        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
                    results.append(run_child(url, kind, sizes[kind]))
                rows.append((kind, backend, sizes[kind], results))
    finally:
        server.stop()
    print(
        f"statefleet persisted executions, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, runs per figure: {runs}"
    )
    print()
    print("| scenario | store | executions | executions/s | p50 ms | p99 ms | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for kind, backend, size, results in rows:
        print(
            f"| {kind} | {backend} | {size:,} | {summary([r['rate'] for r in results])} | "
            f"{summary([r['p50_ms'] for r in results], '{:.1f}')} | "
            f"{summary([r['p99_ms'] for r in results], '{:.1f}')} | "
            f"{summary([r['rss_mb'] for r in results])} |"
        )


if __name__ == "__main__":
    main()
