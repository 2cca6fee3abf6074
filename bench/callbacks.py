"""Callbacks: how fast executions park on a task token and resume when answered, and how
exactly-once holds under racing answers. One process, local mode, PostgreSQL (started here
on loopback) and SQLite (a file).

    python bench/callbacks.py [--n 1000] [--racers 3]

For each backend: ``n`` executions of a one-Task machine (``.waitForTaskToken``) are
started 64 at a time and park WAITING; then every token is answered by ``racers``
concurrent ``send_task_success`` calls (64 tokens at a time), each resuming its execution
in this process. Printed: parks/s, answered-and-resumed executions/s, and the check that
exactly ``n`` answers won (the others got ``already_answered``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from statefleet import PersistentStateMachine, open_store, send_task_success  # noqa: E402

MACHINE = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "ask.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token", "n.$": "$.n"},
            "ResultPath": "$.answer",
            "End": True,
        }
    },
}


async def in_groups(calls: list[Any], size: int = 64) -> list[Any]:
    results: list[Any] = []
    for start in range(0, len(calls), size):
        results.extend(await asyncio.gather(*calls[start : start + size]))
    return results


async def measure(url: str, n: int, racers: int) -> dict[str, Any]:
    store = await open_store(url)
    tokens: list[str] = []
    try:
        sm = await PersistentStateMachine.create(
            MACHINE,
            machine_id="bench",
            store=store,
            resources={"ask": lambda p: tokens.append(p["token"])},
        )
        started = time.perf_counter()
        parked = await in_groups([sm.execute({"n": i}) for i in range(n)])
        park_s = time.perf_counter() - started
        assert {r.status for r in parked} == {"WAITING"}
        started = time.perf_counter()
        results = await in_groups(
            [
                send_task_success(token, {"ok": r}, store=store, machine=sm)
                for token in tokens
                for r in range(racers)
            ],
            size=64 * racers,
        )
        answer_s = time.perf_counter() - started
        outcomes = Counter(r.outcome for r in results)
        ended = await store.count_by_status(__import__("statefleet").ExecutionFilter())
        return {
            "parks_per_s": n / park_s,
            "resumes_per_s": n / answer_s,
            "outcomes": dict(outcomes),
            "statuses": ended,
        }
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--racers", type=int, default=3)
    args = parser.parse_args()
    from tests.services import start_postgres

    server = start_postgres()
    try:
        url_pg = server.url(server.create_database("bench_callbacks"))
        with tempfile.TemporaryDirectory() as tmp:
            urls = {"postgresql": url_pg, "sqlite": f"sqlite+aiosqlite:///{tmp}/bench.db"}
            print("| backend | n | parks/s | answered+resumed/s | winners | refused |")
            print("|---|---|---|---|---|---|")
            for backend, url in urls.items():
                got = asyncio.run(measure(url, args.n, args.racers))
                outcomes = got["outcomes"]
                assert outcomes.get("resumed") == args.n, outcomes
                assert got["statuses"] == {"SUCCEEDED": args.n}, got["statuses"]
                print(
                    f"| {backend} | {args.n} | {got['parks_per_s']:.0f} | "
                    f"{got['resumes_per_s']:.0f} | {outcomes.get('resumed', 0)} | "
                    f"{outcomes.get('already_answered', 0)} |"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
