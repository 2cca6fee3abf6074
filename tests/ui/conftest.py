"""Fixtures of the UI suite: real PostgreSQL and Redis (FLUSHDB per test), filled by real
executions and real in-process arq burst workers; the app served in-process (httpx) or
by uvicorn on a free loopback port (for the browser tests)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette

from statefleet import App, BatchOptions, PersistentStateMachine, Settings, TaskError
from statefleet.queue import QueueClient
from statefleet.queue.priorities import QueueSelection, parse_queues
from statefleet.queue.worker import FleetWorker, WorkerOptions, run_worker
from statefleet.store import SQLStore, open_store
from statefleet.ui import create_app
from tests.queue.conftest import end_leftover_tasks
from tests.store_fixtures import truncate

PREFIX = "sf-ui"

#: A machine with a Choice, a Catch and a Map: the graph has every kind of edge.
ORDERS = {
    "Comment": "orders for the UI tests",
    "StartAt": "Validate",
    "States": {
        "Validate": {
            "Type": "Task",
            "Resource": "ui:validate",
            "Catch": [{"ErrorEquals": ["Invalid"], "ResultPath": "$.error", "Next": "Rejected"}],
            "Next": "Lines",
        },
        "Lines": {
            "Type": "Map",
            "ItemsPath": "$.lines",
            "ResultPath": "$.priced",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Price",
                "States": {"Price": {"Type": "Pass", "Result": 1, "End": True}},
            },
            "Next": "Big?",
        },
        "Big?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericGreaterThan": 100, "Next": "Review"}],
            "Default": "Ship",
        },
        "Review": {"Type": "Pass", "Next": "Ship"},
        "Ship": {"Type": "Task", "Resource": "ui:ship", "End": True},
        "Rejected": {"Type": "Fail", "Error": "Rejected", "Cause": "invalid order"},
    },
}

#: One task that fails while ``BROKEN`` is set: dead letters that a retry then fixes.
FLAKY = {
    "StartAt": "Work",
    "States": {
        "Work": {"Type": "Task", "Resource": "ui:work", "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}

BROKEN: set[str] = set()


def validate(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("n", 0) < 0:
        raise TaskError("Invalid", f"n={payload['n']} is negative")
    return payload


def ship(payload: dict[str, Any]) -> dict[str, Any]:
    return {"shipped": payload.get("n")}


def work(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("key") in BROKEN:
        raise RuntimeError(f"work {payload.get('key')} is broken")
    return {"done": payload.get("key")}


RESOURCES = {"ui:validate": validate, "ui:ship": ship, "ui:work": work}


@pytest.fixture(autouse=True)
def _clean_broken() -> None:
    BROKEN.clear()


@pytest.fixture
async def pg(store_postgresql_url: str) -> AsyncIterator[SQLStore]:
    store = await open_store(store_postgresql_url, create=False)
    await truncate(store)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[QueueClient]:
    raw = aioredis.from_url(redis_url)
    await raw.flushdb()
    await raw.aclose()
    client = QueueClient(redis_url, prefix=PREFIX, follow_interval=0.05)
    try:
        yield client
    finally:
        await end_leftover_tasks()
        await client.close()


def settings_for(store: SQLStore, redis_url: str | None, **extra: Any) -> Settings:
    return Settings(
        database_url=str(store.url),
        redis_url=redis_url,
        queue_prefix=PREFIX,
        lease_seconds=2.0,
        **extra,
    )


def worker_options(**overrides: Any) -> WorkerOptions:
    return WorkerOptions(
        selection=QueueSelection(tuple(parse_queues("critical:6,default:3,low:1"))),
        concurrency=20,
        burst=overrides.pop("burst", True),
        poll_delay=0.01,
        heartbeat_interval=0.2,
        lock_ttl=2.0,
        job_timeout=20.0,
        jitter=False,
        handle_signals=False,
        grace=0,
        **overrides,
    )


async def enqueued(client: QueueClient, count: int) -> None:
    """Until the queues hold ``count`` jobs (batches enqueue from a background task)."""
    for _ in range(250):
        if await client.depth() >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the queues hold {await client.depth()} jobs, not {count}")


async def burst(
    store: SQLStore,
    client: QueueClient,
    *,
    expect: int = 0,
    timeout: float = 60.0,  # noqa: ASYNC109
    **overrides: Any,
) -> FleetWorker:
    """An in-process arq burst worker, until the (unpaused) queues are empty; first,
    until they hold ``expect`` jobs."""
    await enqueued(client, expect)
    app = App(resources=RESOURCES, settings=settings_for(store, None))
    assert client.redis_settings is not None
    own = QueueClient(client.redis_settings, prefix=PREFIX)
    async with asyncio.timeout(timeout):
        return await run_worker(app, worker_options(**overrides), client=own, store=store)


async def stop(*batches: Any) -> None:
    """Stop following batches that will not end in this test (before the store closes)."""
    for batch in batches:
        task = batch._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@dataclass
class Fleet:
    """What a test filled: the machines and the store/queue behind them."""

    store: SQLStore
    client: QueueClient
    orders: PersistentStateMachine
    flaky: PersistentStateMachine


async def machines(store: SQLStore, client: QueueClient | None) -> tuple[Any, Any]:
    orders = await PersistentStateMachine.create(
        ORDERS, machine_id="orders", store=store, resources=RESOURCES
    )
    flaky = await PersistentStateMachine.create(
        FLAKY, machine_id="flaky", store=store, resources=RESOURCES
    )
    orders.set_queue_client(client)
    flaky.set_queue_client(client)
    return orders, flaky


async def fill(store: SQLStore, client: QueueClient) -> Fleet:
    """Orders (3 succeed, 1 rejected, 1 big one reviewed) and flaky work (2 of 5 dead),
    run by a real burst worker."""
    orders, flaky = await machines(store, client)
    inputs = [{"n": n, "lines": [{"sku": i} for i in range(n % 3 + 1)]} for n in (1, 2, 3, -1, 500)]
    first = await orders.execute_bulk(inputs, BatchOptions(name="orders-1", queue="default"))
    BROKEN.update({"k1", "k3"})
    second = await flaky.execute_bulk(
        [{"key": f"k{i}"} for i in range(5)],
        BatchOptions(name="flaky-1", queue="critical", max_tries=1),
    )
    await burst(store, client, expect=10)
    await first.wait()
    await second.wait()
    return Fleet(store=store, client=client, orders=orders, flaky=flaky)


@pytest.fixture
async def filled(pg: SQLStore, queue: QueueClient) -> Fleet:
    return await fill(pg, queue)


class UI:
    """The app and an httpx client on it (in-process), with the session's CSRF token."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.app = app
        self.http = client
        self.csrf = ""

    async def session(self) -> str:
        page = await self.http.get("/", headers={"accept": "text/html"})
        assert page.status_code == 200, page.text
        found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page.text)
        assert found is not None
        self.csrf = found.group(1)
        return self.csrf

    async def get(self, path: str, **kwargs: Any) -> Any:
        response = await self.http.get(path, **kwargs)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response.json()

    async def post(self, path: str, json: Any = None, *, status: int = 200) -> Any:
        if not self.csrf:
            await self.session()
        response = await self.http.post(path, json=json or {}, headers={"x-csrf-token": self.csrf})
        assert response.status_code == status, (path, response.status_code, response.text[:500])
        return response.json()


@pytest.fixture
def make_ui() -> Callable[..., Any]:
    """``async with make_ui(store, client, **create_app kwargs) as ui``."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(
        store: SQLStore,
        client: QueueClient | None,
        *,
        peer: str = "127.0.0.1",
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[UI]:
        app = create_app(
            settings or settings_for(store, None),
            store=store,
            redis=client,
            app=App(resources=RESOURCES, settings=settings or settings_for(store, None)),
            **kwargs,
        )
        transport = httpx.ASGITransport(app=app, client=(peer, 51234))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
        ):
            yield UI(app, http)

    return make


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(autouse=True)
def _collect_garbage() -> Any:
    """Collect after each test, so that a leaked connection is blamed on the test that
    leaked it (not on whichever test the garbage collector happens to run in)."""
    yield
    import gc

    gc.collect()
