"""Store fixtures shared by every suite: each test that takes ``store`` runs on SQLite and on
PostgreSQL, with the same assertions.

Isolation is cheap: SQLite tests copy a database file migrated once per session; PostgreSQL
tests share one database (``statefleet_store``, migrated once per session) that is emptied
with ``TRUNCATE`` before each test.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text

from statefleet.store import SQLStore, open_store, upgrade
from statefleet.store.constants import TABLES
from tests.services import PostgresServer

BACKENDS = ["sqlite", "postgresql"]
STORE_DATABASE = "statefleet_store"

T = TypeVar("T")


def run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop in another thread (session
    fixtures are set up while a test's event loop is already running)."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


@pytest.fixture(scope="session")
def store_postgresql_url(postgres_server: PostgresServer) -> str:
    """A database for the store suite, migrated to the newest revision."""
    postgres_server.drop_database(STORE_DATABASE)
    url = postgres_server.url(postgres_server.create_database(STORE_DATABASE))
    run_in_thread(upgrade(url))
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database file migrated to the newest revision, copied by each test."""
    path = tmp_path_factory.mktemp("store-template") / "template.db"
    run_in_thread(upgrade(f"sqlite:///{path}"))
    return path


async def truncate(store: SQLStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(reversed(TABLES))}"))


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLStore]:
    """An empty, migrated store on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "store.db"
        shutil.copyfile(template, path)
        opened = await open_store(f"sqlite:///{path}", create=False)
    else:
        url: str = request.getfixturevalue("store_postgresql_url")
        opened = await open_store(url, create=False)
        await truncate(opened)
    try:
        yield opened
    finally:
        await opened.close()
