"""Every example runs, exactly as its README says (tests/docs/shell.py runs the README's
```sh blocks), at a smaller size where the README's takes long. The distributed examples run
real workers and a leader as subprocesses on the session's PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from statefleet import ExecutionFilter, open_store
from tests.docs.shell import DOC_DATABASE_URL, ROOT, run_page

EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.timeout(240)


def readme(name: str) -> Path:
    return EXAMPLES / name / "README.md"


async def statuses(url: str, machine_id: str) -> Counter[str]:
    store = await open_store(url, create=False)
    try:
        records = await store.list_executions(ExecutionFilter(state_machine_id=machine_id))
        return Counter(r.status for r in records)
    finally:
        await store.close()


def test_hello(tmp_path: Path) -> None:
    ran = run_page(readme("hello"), tmp_path)
    assert ran.returncode == 0, ran.explain()
    assert '"greeting": "Hello, Ada!"' in ran.stdout
    assert "SUCCEEDED {'greeting': 'Hello, Ada!'" in ran.stdout


def test_order_processing(tmp_path: Path) -> None:
    ran = run_page(readme("order_processing"), tmp_path)
    assert ran.returncode == 0, ran.explain()
    # the in-memory run: card 4000 timed out once and was retried
    assert '"charged": 21.0' in ran.stdout and '"attempt": 1' in ran.stdout
    # the CLI batch, then the listing of its failures: one declined, one rejected
    listing = ran.stdout.split("executions   5", 1)[1]
    assert listing.count("FAILED") == 2 + 2  # batch counts line, then two rows
    assert "Declined" in listing and "Rejected" in listing
    # run.py: one more execution and a batch of five
    assert "one order: SUCCEEDED, charged 21.0" in ran.stdout
    assert "A-1003: CardDeclined" in ran.stdout and "A-1004: InvalidOrder" in ran.stdout
    url = f"sqlite+aiosqlite:///{tmp_path / 'statefleet.db'}"
    assert asyncio.run(statuses(url, "orders")) == {"SUCCEEDED": 7, "FAILED": 4}


def test_chained_batch(tmp_path: Path) -> None:
    ran = run_page(readme("chained_batch"), tmp_path, substitutions={"--size 10000": "--size 400"})
    assert ran.returncode == 0, ran.explain()
    assert "{'FAILED': 8, 'SUCCEEDED': 392}" in ran.stdout  # every 50th parcel refused
    assert "fulfilment batch-" in ran.stdout and "{'SUCCEEDED': 392}" in ran.stdout
    assert "re-run     batch-" in ran.stdout and "nothing to do" in ran.stdout
    assert "executions   0" in ran.stdout  # the CLI's --unique batch started nothing
    url = f"sqlite+aiosqlite:///{tmp_path / 'statefleet.db'}"
    assert asyncio.run(statuses(url, "fulfilment")) == {"SUCCEEDED": 392}


def test_distributed_queue(tmp_path: Path, services: dict[str, str]) -> None:
    ran = run_page(
        readme("distributed_queue"),
        tmp_path,
        substitutions={**services, "inputs 2000": "inputs 300"},
        env={"TASK_DELAY": "0.005"},
    )
    assert ran.returncode == 0, ran.explain()
    url = services[DOC_DATABASE_URL]
    assert asyncio.run(statuses(url, "fleet-orders")) == {"SUCCEEDED": 300}
    assert "fleet-batch-1" in ran.stdout  # batch list
    assert "critical" in ran.stdout  # queue list


def test_crash_recovery(tmp_path: Path, services: dict[str, str]) -> None:
    ran = run_page(readme("crash_recovery"), tmp_path, substitutions=services, timeout=200)
    assert ran.returncode == 0, ran.explain()
    assert "crash-1: 400 executions {'SUCCEEDED': 400}" in ran.stdout
    assert "nothing lost" in ran.stdout
    runs = (tmp_path / "crash-tasks.log").read_text().splitlines()
    assert len(set(runs)) == 400 * 3  # every Task of every execution ran
