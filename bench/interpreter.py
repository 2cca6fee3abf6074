"""In-memory interpreter throughput: executions per second in one process.

    python bench/interpreter.py            # full: 3 runs of ~20,000 executions each
    python bench/interpreter.py --quick    # smaller runs

Machines:
  four-state  Pass -> Task (no-op) -> Choice -> Succeed, history recorded
  map-100     a Map over 100 items, each item a Pass, history recorded

Each figure is the median of 3 runs with min-max. Executions run one after
another in one event loop (the cost of the interpreter itself, not of concurrency).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machines import FOUR_STATE, MAP_100, noop

from statefleet import StateMachine


async def measure(machine: StateMachine, inputs: list[Any], count: int) -> float:
    resources = {"noop": noop}
    started = time.perf_counter()
    for i in range(count):
        result = await machine.run(inputs[i % len(inputs)], resources=resources)
        if result.status != "SUCCEEDED":
            raise SystemExit(f"unexpected result: {result}")
    return count / (time.perf_counter() - started)


def summarise(rates: list[float]) -> str:
    return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    args = parser.parse_args()
    four = StateMachine.from_definition(FOUR_STATE)
    mapped = StateMachine.from_definition(MAP_100)
    four_inputs = [{"order": f"o-{i}", "amount": i * 7 % 250} for i in range(100)]
    map_inputs = [{"items": list(range(100))}]
    n_four = 5_000 if args.quick else 20_000
    n_map = 100 if args.quick else 500
    rows = []
    for label, machine, inputs, count in (
        ("four-state (Pass, Task, Choice, Succeed)", four, four_inputs, n_four),
        ("map-100 (Map over 100 items of Pass)", mapped, map_inputs, n_map),
    ):
        asyncio.run(measure(machine, inputs, max(10, count // 20)))  # warm-up
        rates = [asyncio.run(measure(machine, inputs, count)) for _ in range(3)]
        rows.append((label, count, summarise(rates)))
    print(f"statefleet interpreter, Python {platform.python_version()}, {platform.machine()}")
    print()
    print("| machine | executions per run | executions/s, median (min-max) of 3 |")
    print("|---|---:|---:|")
    for label, count, figure in rows:
        print(f"| {label} | {count:,} | {figure} |")


if __name__ == "__main__":
    main()
