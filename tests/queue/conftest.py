"""Fixtures of the queue suite: real PostgreSQL, real Redis (FLUSHDB per test), real arq
workers — in-process burst workers for the fast tests, subprocesses for kills and signals."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from statefleet import App, PersistentStateMachine, Settings
from statefleet.queue import QueueClient
from statefleet.queue.priorities import QueueSelection, parse_queues
from statefleet.queue.worker import FleetWorker, WorkerOptions, run_worker
from statefleet.store import SQLStore, open_store
from tests.store_fixtures import truncate

ROOT = Path(__file__).resolve().parents[2]

FOUR_STATES = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "Double"},
        "Double": {
            "Type": "Task",
            "Resource": "math:double",
            "ResultPath": "$.doubled",
            "Next": "Check",
        },
        "Check": {
            "Type": "Task",
            "Resource": "math:check",
            "ResultPath": "$.checked",
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


def double(payload: dict[str, Any]) -> int:
    return int(payload["n"]) * 2


def check(payload: dict[str, Any]) -> bool:
    return bool(payload["doubled"] == payload["n"] * 2)


RESOURCES = {"math:double": double, "math:check": check}


@pytest.fixture
async def pg(store_postgresql_url: str) -> AsyncIterator[SQLStore]:
    """An empty PostgreSQL store."""
    store = await open_store(store_postgresql_url, create=False)
    await truncate(store)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[QueueClient]:
    """A queue client on an emptied Redis."""
    raw = aioredis.from_url(redis_url)
    await raw.flushdb()
    await raw.aclose()
    queue = QueueClient(redis_url, prefix="sf-test", chunk_size=500, follow_interval=0.05)
    try:
        yield queue
    finally:
        await end_leftover_tasks()
        await queue.close()


async def end_leftover_tasks() -> None:
    """Cancel and await the tasks a test left running (the background task of a batch it did
    not wait for): one still talking to Redis as its client closes could open a connection
    that outlives the pool, and the test's event loop."""
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)


def settings(store_postgresql_url: str, redis_url: str, **extra: Any) -> Settings:
    return Settings(
        database_url=store_postgresql_url,
        redis_url=redis_url,
        queue_prefix="sf-test",
        lease_seconds=extra.pop("lease_seconds", 2.0),
        **extra,
    )


def fast_options(**overrides: Any) -> WorkerOptions:
    """Burst, quick polls and heartbeats, no jitter."""
    base = WorkerOptions(
        selection=QueueSelection(
            tuple(parse_queues(overrides.pop("queues", None))),
            strict=overrides.pop("strict", False),
        ),
        concurrency=overrides.pop("concurrency", 20),
        burst=True,
        poll_delay=0.01,
        heartbeat_interval=0.2,
        lock_ttl=2.0,
        job_timeout=overrides.pop("job_timeout", 20.0),
        park_after=overrides.pop("park_after", 1.0),
        grace=0,
        jitter=False,
        handle_signals=False,
    )
    from dataclasses import replace

    return replace(base, **overrides)


async def burst(
    resources: dict[str, Callable[..., Any]],
    store: SQLStore,
    client: QueueClient,
    *,
    timeout: float = 60.0,  # noqa: ASYNC109
    **overrides: Any,
) -> FleetWorker:
    """Run an in-process burst worker until the queues are empty (once something is
    queued: a batch enqueues from a background task)."""
    for _ in range(100):
        if await client.depth():
            break
        await asyncio.sleep(0.03)
    app = App(
        resources=resources,
        settings=Settings(
            database_url=str(store.url), queue_prefix=client.keys.prefix, lease_seconds=2.0
        ),
    )
    assert client.redis_settings is not None
    worker_client = QueueClient(client.redis_settings, prefix=client.keys.prefix)
    async with asyncio.timeout(timeout):
        return await run_worker(app, fast_options(**overrides), client=worker_client, store=store)


def worker(
    resources: dict[str, Callable[..., Any]],
    store: SQLStore,
    client: QueueClient,
    **overrides: Any,
) -> FleetWorker:
    """A (non-burst) in-process worker, not started."""
    app = App(
        resources=resources,
        settings=Settings(
            database_url=str(store.url), queue_prefix=client.keys.prefix, lease_seconds=2.0
        ),
    )
    assert client.redis_settings is not None
    worker_client = QueueClient(client.redis_settings, prefix=client.keys.prefix)
    overrides.setdefault("burst", False)
    return FleetWorker(app, worker_client, fast_options(**overrides), store=store)


async def numbers(
    store: SQLStore,
    client: QueueClient | None,
    resources: dict[str, Callable[..., Any]] | None = None,
) -> PersistentStateMachine:
    sm = await PersistentStateMachine.create(
        FOUR_STATES, machine_id="numbers", store=store, resources=resources or RESOURCES
    )
    sm.set_queue_client(client)
    return sm


# ---------------------------------------------------------------- worker subprocesses


@pytest.fixture
def app_module(tmp_path: Path) -> Callable[[str], str]:
    """Write an app module into tmp_path; returns ``module:app``."""

    def write(source: str, name: str = "fleet_app") -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return f"{name}:app"

    return write


@pytest.fixture
def spawn(
    tmp_path: Path, store_postgresql_url: str, redis_url: str
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``statefleet worker`` subprocesses (killed at the end of the test)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(app: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        environment = {
            **os.environ,
            "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
            "STATEFLEET_DATABASE_URL": store_postgresql_url,
            "STATEFLEET_REDIS_URL": redis_url,
            "STATEFLEET_QUEUE_PREFIX": "sf-test",
            "STATEFLEET_LEASE_SECONDS": "2",
            **(env or {}),
        }
        with open(tmp_path / f"worker-{len(started)}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "statefleet.cli", "worker", "--app", app, *args],
                cwd=tmp_path,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
