"""Load: a 100,000-execution batch through two worker subprocesses while the UI's REST API
is polled every second (``statefleet ui`` in its own process). It must complete, every
execution SUCCEEDED once; the API must keep answering; the workers' memory must stay flat.
The figures (throughput, API latency p50/p99, worker RSS) are printed, for the issue note
and docs/guarantees.md.

Full size only (``make test-reliability``); ``STATEFLEET_LOAD_EXECUTIONS`` sets the size
(default 100,000).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from statefleet import BatchOptions
from statefleet.queue import QueueClient
from statefleet.store import SQLStore
from tests.reliability.conftest import Fleet, eventually, finished, numbers, record_figures
from tests.services import free_port

pytestmark = [pytest.mark.full, pytest.mark.timeout(3600)]

N = int(os.environ.get("STATEFLEET_LOAD_EXECUTIONS", "100000"))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(pid)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def test_a_large_batch_completes_with_the_api_answering_and_flat_worker_memory(
    pg: SQLStore,
    client: QueueClient,
    task_log: asyncpg.Connection,
    fleet: Fleet,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    ui = fleet.ui(port)
    try:
        workers = [fleet.worker("--concurrency", "100") for _ in range(2)]
        sm = await numbers(pg, client)
        started = time.monotonic()
        batch = await sm.execute_bulk(
            ({"n": i} for i in range(N)), BatchOptions(name="load", chunk_size=2000)
        )
        latencies: dict[str, list[float]] = {}
        errors: list[str] = []
        memory: list[tuple[int, float, float]] = []  # (done, rss worker 0, rss worker 1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            async def ui_up() -> bool:
                try:
                    return (await http.get("/health")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ui_up, 60, "the UI to answer", fleet)

            async def poll() -> None:
                while True:
                    for path in ("/api/overview", f"/api/batches/{batch.id}", "/api/workers"):
                        before = time.perf_counter()
                        try:
                            response = await http.get(path)
                            if response.status_code != 200:
                                errors.append(f"{path}: {response.status_code}")
                        except httpx.HTTPError as exc:
                            errors.append(f"{path}: {exc!r}")
                        key = path.replace(batch.id, "{id}")
                        latencies.setdefault(key, []).append(time.perf_counter() - before)
                    done = await task_log.fetchval(
                        "SELECT count(*) FROM task_log WHERE state = 'Check'"
                    )
                    memory.append((int(done), *(rss_mib(w.pid) for w in workers)))
                    await asyncio.sleep(1)

            poller = asyncio.create_task(poll())
            try:
                record = await finished(batch, 3000, fleet)
            finally:
                poller.cancel()
        elapsed = time.monotonic() - started
    finally:
        ui.terminate()
        await asyncio.to_thread(ui.wait, 30)
    assert record.status == "SUCCEEDED", fleet.logs()
    assert record.counters == {"SUCCEEDED": N}
    async with pg.engine.connect() as conn:
        wrong = await conn.execute(
            text(
                "SELECT count(*) FROM executions WHERE state_machine_id = 'numbers' "
                "AND ((output->>'doubled')::bigint <> 2 * (input->>'n')::bigint "
                "OR history_seq <> 4)"
            )
        )
        assert wrong.scalar_one() == 0
    assert await task_log.fetchval("SELECT max(runs) FROM task_log") == 1
    assert errors == [], errors[:10]
    assert all(w.poll() is None for w in workers), fleet.logs()
    # memory: after warm-up (a fifth of the batch) it must not keep growing with the work
    warm = [m for m in memory if m[0] >= N // 5]
    assert len(warm) >= 3, memory
    late = [m for m in memory if m[0] >= 4 * N // 5] or warm[-1:]
    growth = [max(m[i] for m in late) / warm[0][i] for i in (1, 2)]
    every = [value for values in latencies.values() for value in values]
    figures: dict[str, Any] = {
        "executions": N,
        "seconds": round(elapsed, 1),
        "executions_per_s": round(N / elapsed, 1),
        "api_requests": len(every),
        "api_p50_ms": round(statistics.median(every) * 1000, 1),
        "api_p99_ms": round(percentile(every, 0.99) * 1000, 1),
        "api_max_ms": round(max(every) * 1000, 1),
        "api_p99_ms_by_path": {
            path: round(percentile(values, 0.99) * 1000, 1) for path, values in latencies.items()
        },
        "worker_rss_mib_at_20pct": [round(warm[0][i], 1) for i in (1, 2)],
        "worker_rss_mib_max_after_80pct": [round(max(m[i] for m in late), 1) for i in (1, 2)],
    }
    with capsys.disabled():
        record_figures("load", figures)
    assert max(growth) < 1.5, figures
