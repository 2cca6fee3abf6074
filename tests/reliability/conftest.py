"""Fixtures of the reliability suite: faults against real services and real processes.

The suite gets its own servers, so that stopping them harms no other suite: a PostgreSQL
cluster (stopped and started again by the outage test) and a Redis server with an
append-only file synced every second (``appendfsync everysec``, as in production; restarted
by the Redis test). Workers and leaders are ``statefleet`` subprocesses (:class:`Fleet`),
their task callables log every run in a ``task_log`` table with a unique key on
(execution, state, attempt), so a state that runs twice is seen.

Sizes: the default run (``make test``) uses short forms (1,000 executions, one fault
cycle); ``STATEFLEET_RELIABILITY=full`` (``make test-reliability``) runs the sizes the
guarantees are stated for, and the tests marked ``full`` (the load test).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from statefleet import BatchOptions, ExecutionFilter, PersistentStateMachine
from statefleet.queue import QueueClient
from statefleet.statemachine.batch import Batch
from statefleet.store import SQLStore, upgrade
from tests.queue.conftest import FOUR_STATES, app_module, client, pg
from tests.queue.test_fleet import APP, dsn
from tests.services import PostgresServer, RedisServer, start_postgres, start_redis
from tests.store_fixtures import run_in_thread

__all__ = ["app_module", "client", "pg"]  # the queue suite's fixtures, on our servers

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("STATEFLEET_RELIABILITY", "").lower() == "full"
PREFIX = "sf-test"


def size(short: int, full: int) -> int:
    """The short size in the default run, the full one under ``make test-reliability``."""
    return full if FULL else short


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if FULL:
        return
    skip = pytest.mark.skip(reason="full size only: make test-reliability")
    for item in items:
        if "full" in item.keywords and str(item.path).startswith(str(Path(__file__).parent)):
            item.add_marker(skip)


# ---------------------------------------------------------------- servers of this suite


@pytest.fixture(scope="session")
def fault_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of this suite's own (the outage test stops it)."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def store_postgresql_url(fault_postgres: PostgresServer) -> str:
    url = fault_postgres.url(fault_postgres.create_database("statefleet_faults"))
    run_in_thread(upgrade(url))
    return url


@pytest.fixture(scope="session")
def aof_redis() -> Iterator[RedisServer]:
    """Redis with an append-only file, fsync every second (the restart test restarts it)."""
    server = start_redis(aof=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(aof_redis: RedisServer) -> str:
    return aof_redis.url(0)


# ---------------------------------------------------------------- the task log


@pytest.fixture
async def task_log(pg: SQLStore, store_postgresql_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The table the task callables of :data:`APP` log into (one row per execution, state
    and attempt; ``runs`` counts how often that one attempt ran)."""
    conn = await asyncpg.connect(dsn(store_postgresql_url))
    await conn.execute(
        "DROP TABLE IF EXISTS task_log; CREATE TABLE task_log (execution_id text, state text, "
        "attempt int, runs int, PRIMARY KEY (execution_id, state, attempt))"
    )
    try:
        yield conn
    finally:
        await conn.close()


# ---------------------------------------------------------------- processes


class Fleet:
    """``statefleet worker`` / ``statefleet leader`` subprocesses of one test, with their
    logs (each failure message of the suite ends with them)."""

    def __init__(self, tmp_path: Path, app: str, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.app = app
        self.env = env
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def _start(
        self, kind: str, args: tuple[str, ...], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{kind}-{len(self.processes)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "statefleet.cli", kind, "--app", self.app, *args],
                cwd=self.tmp_path,
                env={**self.env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append((proc, log))
        return proc

    def worker(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """A worker (50 jobs at once unless ``--concurrency`` says otherwise)."""
        if "--concurrency" not in args:
            args = ("--concurrency", "50", *args)
        return self._start("worker", args, env)

    def leader(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return self._start("leader", args, env)

    def ui(self, port: int) -> subprocess.Popen[bytes]:
        """``statefleet ui`` on loopback (no credentials needed there)."""
        return self._start("ui", ("--port", str(port), "--log-level", "warning"), {})

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        for known, path in self.processes:
            if known is proc:
                return path.read_text(errors="replace")
        raise LookupError(proc)

    def logs(self, lines: int = 25) -> str:
        parts = []
        for proc, path in self.processes:
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(
                f"--- {path.name} (pid {proc.pid}, exit {proc.poll()})\n" + "\n".join(text)
            )
        return "\n".join(parts)

    @staticmethod
    def signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL, and reap it."""
        self.signal(proc, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc, _ in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def fleet(
    tmp_path: Path,
    app_module: Callable[[str], str],
    store_postgresql_url: str,
    redis_url: str,
) -> Iterator[Fleet]:
    """Subprocesses running the task-logging app :data:`APP` (killed at the end)."""
    app = app_module(APP)
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "STATEFLEET_DATABASE_URL": store_postgresql_url,
        "STATEFLEET_REDIS_URL": redis_url,
        "STATEFLEET_QUEUE_PREFIX": PREFIX,
        "STATEFLEET_LEASE_SECONDS": "2",
        "TASK_LOG_DSN": dsn(store_postgresql_url),
    }
    processes = Fleet(tmp_path, app, env)
    try:
        yield processes
    finally:
        processes.stop_all()


def record_figures(name: str, figures: dict[str, Any]) -> None:
    """Print measured figures and append them to ``$STATEFLEET_RELIABILITY_REPORT``."""
    line = f"{name}: {figures}"
    print(line)
    report = os.environ.get("STATEFLEET_RELIABILITY_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(line + "\n")


# ---------------------------------------------------------------- batches


async def sources(store: SQLStore, n: int) -> None:
    """n SUCCEEDED executions of machine "intake" (output ``{"n": i}``) to chain from."""
    intake = await PersistentStateMachine.create(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        machine_id="intake",
        store=store,
    )
    for start in range(0, n, 5000):
        records = []
        for i in range(start, min(n, start + 5000)):
            record = intake.new_execution({"n": i})
            record.status = "SUCCEEDED"
            record.output = {"n": i}
            records.append(record)
        await store.create_executions(records)


async def numbers(store: SQLStore, client: QueueClient | None) -> PersistentStateMachine:
    """Machine "numbers": Prepare (Pass), Double and Check (Tasks of :data:`APP`), Done."""
    sm = await PersistentStateMachine.create(FOUR_STATES, machine_id="numbers", store=store)
    sm.set_queue_client(client)
    return sm


async def chained_batch(
    store: SQLStore, client: QueueClient, name: str, **options: Any
) -> tuple[PersistentStateMachine, Batch]:
    """A batch of "numbers" chained over every "intake" execution, onto the queue."""
    sm = await numbers(store, client)
    batch = await sm.execute_batch(
        ExecutionFilter(state_machine_id="intake", status="SUCCEEDED"),
        options=BatchOptions(name=name, chunk_size=500, **options),
    )
    return sm, batch


async def eventually(
    condition: Callable[[], Awaitable[Any]],
    timeout: float,  # noqa: ASYNC109
    what: str,
    fleet: Fleet | None = None,
    *,
    interval: float = 0.2,
) -> Any:
    """Poll until ``condition()`` is truthy; fail after ``timeout`` s naming ``what``,
    with the processes' logs."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = fleet.logs() if fleet is not None else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{logs}")
        await asyncio.sleep(interval)


async def finished(batch: Batch, timeout: float, fleet: Fleet) -> Any:  # noqa: ASYNC109
    """The batch's final record; fails after ``timeout`` s with its counts and the logs."""
    try:
        return await asyncio.wait_for(batch.wait(), timeout)
    except TimeoutError:
        counts = await batch.counts()
        pytest.fail(
            f"batch {batch.name} not finished after {timeout:g} s: {counts}\n{fleet.logs()}"
        )
