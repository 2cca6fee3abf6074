# ruff: noqa: ASYNC110, ASYNC220, E501
"""Distributed mode against raw arq, side by side in one run.

    python bench/distributed.py                 # 20,000 executions, 1 and 2 workers
    python bench/distributed.py -n 5000         # smaller

Measures, on PostgreSQL (default durability: fsync, synchronous_commit, full_page_writes
on) and Redis (defaults) started from `tests.services`:

  statefleet      a chained batch of N executions of bench/machines.py's FOUR_STATE (Pass,
                  Task no-op, Choice, Succeed) with full history, through W `statefleet
                  worker --concurrency 100` processes: end to end, from the batch's start
                  to its last execution ended; p50/p99 execution latency (started -> its final write)
  arq tuned       N no-op jobs through W arq burst workers, max_jobs=100, poll_delay=0.01
  arq defaults    N/4 no-op jobs through W arq burst workers at arq's defaults
  enqueue         QueueClient.enqueue of N jobs (Lua, 1,000 per call) vs a loop of
                  ArqRedis.enqueue_job; and a batch's create-in-PostgreSQL + enqueue rate

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402
from arq.connections import RedisSettings, create_pool  # noqa: E402

from statefleet import BatchOptions, ExecutionFilter, PersistentStateMachine  # noqa: E402
from statefleet.queue import QueueClient  # noqa: E402
from statefleet.store import open_store  # noqa: E402
from tests.services import start_postgres, start_redis  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machines import DURABLE_POSTGRES, FOUR_STATE, PASS_ONLY, percentile, source_input  # noqa: E402

APP = """
from machines import noop
from statefleet import App
app = App(resources={"noop": noop})
"""

ARQ_WORKER = """
import sys
from arq.connections import RedisSettings
from arq.worker import Worker
async def noop(ctx):
    return None
tuned = sys.argv[2] == "tuned"
options = dict(max_jobs=100, poll_delay=0.01) if tuned else {}
w = Worker(functions=[noop], redis_settings=RedisSettings.from_dsn(sys.argv[1]), burst=True,
           handle_signals=False, log_results=False, **options)
w.run()
"""


async def flush(url: str) -> None:
    r = aioredis.from_url(url)
    await r.flushdb()
    await r.aclose()


def run_procs(cmds: list[list[str]], env: dict[str, str], cwd: str) -> None:
    procs = [
        subprocess.Popen(c, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for c in cmds
    ]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"worker failed: {' '.join(p.args)}")  # type: ignore[arg-type]


async def bench_arq(redis_url: str, n: int, workers: int, tuned: bool, tmp: str) -> float:
    await flush(redis_url)
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    for start in range(0, n, 500):
        await asyncio.gather(*(pool.enqueue_job("noop") for _ in range(start, min(n, start + 500))))
    await pool.aclose()
    script = Path(tmp) / "arq_worker.py"
    script.write_text(ARQ_WORKER)
    began = time.perf_counter()
    cmd = [sys.executable, str(script), redis_url, "tuned" if tuned else "defaults"]
    await asyncio.to_thread(run_procs, [cmd] * workers, dict(os.environ), tmp)
    return n / (time.perf_counter() - began)


async def bench_enqueue(redis_url: str, n: int) -> tuple[float, float]:
    await flush(redis_url)
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    began = time.perf_counter()
    for i in range(min(n, 10000)):
        await pool.enqueue_job("noop", _job_id=f"loop-{i}")
    loop_rate = min(n, 10000) / (time.perf_counter() - began)
    await pool.aclose()
    from statefleet.statemachine.protocols import ExecutionRecord, new_id

    records = [
        ExecutionRecord(
            id=new_id(), state_machine_id="m", version="v", name=str(i), status="QUEUED"
        )
        for i in range(n)
    ]
    client = QueueClient(redis_url, prefix="bench")
    await client.redis()
    began = time.perf_counter()
    await client.enqueue(records)
    ours = n / (time.perf_counter() - began)
    await client.close()
    return ours, loop_rate


async def bench_statefleet(
    pg_url: str, redis_url: str, n: int, workers: int, tmp: str
) -> dict[str, float]:
    """Rate end to end, rate of batch creation + enqueue, p50/p99 execution latency (ms)."""
    await flush(redis_url)
    store = await open_store(pg_url)
    async with store.engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text("TRUNCATE executions, batches, state_machines, dead_letters CASCADE")
        )
    intake = await PersistentStateMachine.create(PASS_ONLY, machine_id="intake", store=store)
    sources = []
    for i in range(n):
        record = intake.new_execution(source_input(i))
        record.status, record.output = "SUCCEEDED", source_input(i)
        sources.append(record)
    for start in range(0, n, 5000):
        await store.create_executions(sources[start : start + 5000])
    sm = await PersistentStateMachine.create(FOUR_STATE, machine_id="four", store=store)
    client = QueueClient(redis_url, prefix="bench", follow_interval=0.1)
    sm.set_queue_client(client)
    (Path(tmp) / "bench_app.py").write_text(APP)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([tmp, str(ROOT), str(ROOT / "bench")]),
        "STATEFLEET_DATABASE_URL": pg_url,
        "STATEFLEET_REDIS_URL": redis_url,
        "STATEFLEET_QUEUE_PREFIX": "bench",
    }
    cmd = [
        sys.executable,
        "-m",
        "statefleet.cli",
        "worker",
        "--app",
        "bench_app:app",
        "--concurrency",
        "100",
        "--log-level",
        "WARNING",
    ]
    began = time.perf_counter()
    batch = await sm.execute_batch(
        ExecutionFilter(state_machine_id="intake", status="SUCCEEDED"),
        options=BatchOptions(name=f"bench-{workers}", chunk_size=2000),
    )
    procs = [
        subprocess.Popen(
            cmd, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    while batch.counters.created < n:
        await asyncio.sleep(0.01)
    created = n / (time.perf_counter() - began)
    record = await batch.wait()
    elapsed = time.perf_counter() - began
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()
    assert record.status == "SUCCEEDED" and record.counters == {"SUCCEEDED": n}, record
    latencies = sorted(
        [
            (rec.updated_at - rec.started_at).total_seconds() * 1000
            async for rec in store.stream_executions(ExecutionFilter(state_machine_id="four"))
            if rec.updated_at and rec.started_at
        ]
    )
    await client.close()
    await store.close()
    return {
        "rate": n / elapsed,
        "created": created,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20_000)
    args = parser.parse_args()
    n = args.n
    pg = start_postgres(extra_settings=DURABLE_POSTGRES)
    rd = start_redis()
    rows: list[tuple[str, str]] = []
    try:
        pg_url = pg.url(pg.create_database("bench"))
        redis_url = rd.url()
        with tempfile.TemporaryDirectory() as tmp:
            ours, loop = await bench_enqueue(redis_url, n)
            rows.append(
                (f"enqueue {n:,} jobs: QueueClient (Lua, 1,000/call)", f"{ours:,.0f} jobs/s")
            )
            rows.append(("enqueue: loop of ArqRedis.enqueue_job", f"{loop:,.0f} jobs/s"))
            results = {}
            for workers in (1, 2):
                got = await bench_statefleet(pg_url, redis_url, n, workers, tmp)
                sf, created = got["rate"], got["created"]
                tuned = await bench_arq(redis_url, n, workers, True, tmp)
                default = await bench_arq(redis_url, max(1000, n // 4), workers, False, tmp)
                results[workers] = (sf, tuned, default)
                rows.append(
                    (
                        f"batch create + enqueue ({workers} worker run)",
                        f"{created:,.0f} executions/s",
                    )
                )
                rows.append(
                    (
                        f"execution latency p50 / p99 ({workers} worker run)",
                        f"{got['p50_ms']:,.1f} / {got['p99_ms']:,.1f} ms",
                    )
                )
        print()
        print(
            f"| workers | statefleet, {n:,} chained 4-state executions (PG, full history) "
            "| raw arq no-op, tuned | raw arq no-op, defaults | statefleet / tuned arq |"
        )
        print("|---|---|---|---|---|")
        for workers, (sf, tuned, default) in results.items():
            print(
                f"| {workers} | {sf:,.0f}/s | {tuned:,.0f}/s | {default:,.0f}/s | {sf / tuned:.2f}x |"
            )
        print()
        print("| measure | rate |")
        print("|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
    finally:
        pg.stop()
        rd.stop()


if __name__ == "__main__":
    asyncio.run(main())
