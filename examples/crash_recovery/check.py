"""Check a crash-recovery batch: nothing lost, no completed state run twice.

    python -m examples.crash_recovery.check BATCH_NAME --wait-done 100   # until 100 ended
    python -m examples.crash_recovery.check BATCH_NAME --expect 400 --max-reruns 20

The first form returns once the batch has that many ended executions (to kill a worker
mid-batch). The second checks the ended batch against the store and the task log:

- every one of the ``--expect`` executions SUCCEEDED, none missing;
- each execution's history is gapless: Reserve, Charge, Ship, Done, sequences 1-4;
- the only task runs logged twice are states that were running when the worker was
  killed (at most ``--max-reruns``, the victim's concurrency): a state whose result was
  checkpointed never runs again. Exit status 1 (and the reason) if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

from examples.crash_recovery.app import LOG, app
from statefleet import ExecutionFilter, open_store
from statefleet.store import SQLStore

MACHINE = "crash-orders"
STATES = ["Reserve", "Charge", "Ship", "Done"]


async def _batch_id(store: SQLStore, name: str) -> str:
    record = await store.get_batch_by_name(MACHINE, name)
    if record is None:
        raise SystemExit(f"check: no batch {name!r} of {MACHINE}")
    return record.id


async def wait_done(name: str, count: int, timeout: float) -> None:  # noqa: ASYNC109
    store = await open_store(app.settings.database_url, create=False)
    try:
        deadline = time.monotonic() + timeout
        ended_statuses = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
        while True:
            record = await store.get_batch_by_name(MACHINE, name)
            ended = 0
            if record is not None:
                ended = await store.count_executions(
                    ExecutionFilter(batch_id=record.id, status=ended_statuses)
                )
            if ended >= count:
                print(f"{name}: {ended} executions ended")
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"check: only {ended} of {count} ended after {timeout:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await store.close()


def task_runs() -> Counter[str]:
    """How many times each (execution, state, attempt) line is in the task log."""
    log = Path(LOG)
    return Counter(log.read_text(encoding="utf-8").splitlines() if log.exists() else [])


async def check(name: str, expect: int, max_reruns: int) -> list[str]:
    problems: list[str] = []
    store = await open_store(app.settings.database_url, create=False)
    try:
        batch_id = await _batch_id(store, name)
        executions = await store.list_executions(ExecutionFilter(batch_id=batch_id))
        statuses = Counter(e.status for e in executions)
        print(f"{name}: {len(executions)} executions {dict(statuses)}")
        if len(executions) != expect or statuses != Counter({"SUCCEEDED": expect}):
            problems.append(f"expected {expect} SUCCEEDED executions, found {dict(statuses)}")
        for execution in executions:
            history = await store.history(execution.id)
            path = [(h.sequence, h.state) for h in history]
            if path != list(enumerate(STATES, 1)):
                problems.append(f"{execution.id}: history {path} is not {STATES}")
                break
    finally:
        await store.close()
    runs = task_runs()
    reruns = sum(1 for n in runs.values() if n > 1)
    print(f"task runs logged: {sum(runs.values())}; states run twice: {reruns}")
    if reruns > max_reruns:
        problems.append(f"{reruns} states ran twice: more than the {max_reruns} in flight")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the batch name given to the leader")
    parser.add_argument("--wait-done", type=int, help="wait until this many have ended")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--expect", type=int, help="executions the batch must have")
    parser.add_argument("--max-reruns", type=int, default=0)
    args = parser.parse_args(argv)
    if args.wait_done is not None:
        asyncio.run(wait_done(args.name, args.wait_done, args.timeout))
        return 0
    problems = asyncio.run(check(args.name, args.expect, args.max_reruns))
    for problem in problems:
        print(f"check: {problem}", file=sys.stderr)
    print("nothing lost" if not problems else "FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
