"""Scale of a local batch on PostgreSQL: peak RSS as the sources grow, and executions/s.

    python bench/scale.py                         # RSS 10,000 vs 1,000,000; rate 10k -> 100k
    python bench/scale.py --rss 10000,100000 --growth 10000 --json

Two measurements, on PostgreSQL started here with its default durability (fsync,
synchronous_commit, full_page_writes on), each batch on a fresh database:

  rss     N succeeded source executions are inserted straight into the store
          (``store.create_executions``, 5,000 per transaction), then a fresh process
          starts ``execute_batch`` chaining one execution of a Pass-only machine per
          source (concurrency 256, chunks of 1,000) and runs it to the end — or for
          ``--time-limit`` seconds, after which it reports how far it got and cancels.
          Its peak RSS (VmHWM) is the figure; issue 4 wants the 1,000,000-source
          batch within 1.5x of the 10,000-source one.
  growth  the same, with the 4-state machine (Pass -> Task (no-op) -> Choice -> Succeed)
          and full history, for batches of 10,000 and 100,000: executions/s and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machines import DURABLE_POSTGRES, FOUR_STATE, PASS_ONLY, noop  # noqa: E402

LOAD_CHUNK = 5_000


def vm_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB. The peak is not ``ru_maxrss``:
    Linux carries that over from the parent across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def load_sources(url: str, size: int) -> dict[str, Any]:
    """Insert `size` SUCCEEDED executions of machine `source`, 5,000 per transaction."""
    from statefleet import PersistentStateMachine, open_store
    from statefleet.statemachine.protocols import ExecutionRecord, new_id

    store = await open_store(url)
    source = await PersistentStateMachine.create(
        PASS_ONLY, machine_id="source", store=store, resources={}
    )
    version = source.version
    started = time.perf_counter()
    moment = datetime.now(UTC)
    for first in range(0, size, LOAD_CHUNK):
        records = []
        for i in range(first, min(size, first + LOAD_CHUNK)):
            value = {"order": f"o-{i}", "amount": i % 250}
            records.append(
                ExecutionRecord(
                    id=new_id(),
                    state_machine_id="source",
                    version=version,
                    name=f"src-{i:08d}",
                    status="SUCCEEDED",
                    input=value,
                    output=value,
                    current_state="Copy",
                    started_at=moment,
                    ended_at=moment,
                    history_seq=1,
                )
            )
        await store.create_executions(records)
    elapsed = time.perf_counter() - started
    await store.close()
    return {"inserted": size, "seconds": elapsed, "rows_per_s": size / elapsed}


async def run_batch(url: str, kind: str, size: int, time_limit: float) -> dict[str, Any]:
    from statefleet import BatchOptions, ExecutionFilter, PersistentStateMachine, open_store

    store = await open_store(url)
    definition = PASS_ONLY if kind == "pass" else FOUR_STATE
    sm = await PersistentStateMachine.create(
        definition, machine_id="target", store=store, resources={"noop": noop}
    )
    rss_samples: list[float] = []

    async def sample() -> None:
        while True:
            rss_samples.append(vm_mb("VmRSS"))
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    batch = await sm.execute_batch(
        ExecutionFilter(state_machine_id="source"),
        options=BatchOptions(concurrency=256, chunk_size=1000),
    )
    finished = True
    try:
        record = await asyncio.wait_for(asyncio.shield(batch.wait()), time_limit)
        done = record.total
    except TimeoutError:
        finished = False
    elapsed = time.perf_counter() - started
    peak = vm_mb("VmHWM")
    sampler.cancel()
    if not finished:
        done = await store.count_executions(
            ExecutionFilter(state_machine_id="target", status="SUCCEEDED")
        )
        await batch.cancel("time limit of the benchmark")
        await batch.wait()
    else:
        succeeded = await store.count_executions(
            ExecutionFilter(state_machine_id="target", status="SUCCEEDED")
        )
        assert succeeded == size, (succeeded, size)
    await store.close()
    return {
        "kind": kind,
        "size": size,
        "finished": finished,
        "done": done,
        "seconds": elapsed,
        "rate": done / elapsed,
        "rss_mb": peak,
        "rss_samples_mb": [round(x, 1) for x in rss_samples[:: max(1, len(rss_samples) // 20)]],
    }


def child(args: list[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise SystemExit(f"scale child {args[:3]} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(server: Any, kind: str, size: int, time_limit: float, tag: str) -> dict[str, Any]:
    """Fresh database, load `size` sources (one process), run the batch (another)."""
    name = server.create_database(f"scale_{tag}")
    url = server.url(name)
    try:
        loaded = child(["--child", "load", "--url", url, "--size", str(size)], 3600)
        result = child(
            [
                "--child",
                "run",
                "--url",
                url,
                "--size",
                str(size),
                "--kind",
                kind,
                "--time-limit",
                str(time_limit),
            ],
            time_limit + 600,
        )
    finally:
        server.drop_database(name)
    result["load_rows_per_s"] = loaded["rows_per_s"]
    return result


def run_all(
    rss_sizes: list[int], growth_sizes: list[int], time_limit: float, log: Any = None
) -> dict[str, Any]:
    from tests.services import start_postgres

    server = start_postgres(extra_settings=DURABLE_POSTGRES)
    out: dict[str, Any] = {"rss": [], "growth": [], "time_limit_s": time_limit}
    try:
        for size in rss_sizes:
            out["rss"].append(measure(server, "pass", size, time_limit, f"rss_{size}"))
            if log:
                log(f"scale rss {size:,}: {out['rss'][-1]}")
        for size in growth_sizes:
            out["growth"].append(measure(server, "four", size, time_limit, f"growth_{size}"))
            if log:
                log(f"scale growth {size:,}: {out['growth'][-1]}")
    finally:
        server.stop()
    return out


def sizes(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss", default="10000,1000000", help="source counts for peak RSS")
    parser.add_argument("--growth", default="10000,100000", help="batch sizes for the rate")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds per batch")
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    parser.add_argument("--child", choices=["load", "run"])
    parser.add_argument("--url")
    parser.add_argument("--size", type=int)
    parser.add_argument("--kind", choices=["pass", "four"])
    args = parser.parse_args()
    if args.child == "load":
        print(json.dumps(asyncio.run(load_sources(args.url, args.size))))
        return
    if args.child == "run":
        result = asyncio.run(run_batch(args.url, args.kind, args.size, args.time_limit))
        print(json.dumps(result))
        return
    out = run_all(sizes(args.rss), sizes(args.growth), args.time_limit)
    if args.json:
        print(json.dumps(out))
        return
    print("| batch | sources | done | executions/s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for row in out["rss"] + out["growth"]:
        machine = "Pass-only" if row["kind"] == "pass" else "4-state"
        print(
            f"| {machine} | {row['size']:,} | {row['done']:,} | {row['rate']:,.0f} | "
            f"{row['rss_mb']:,.0f} |"
        )


if __name__ == "__main__":
    main()
