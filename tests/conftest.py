"""Session fixtures for the real services the tests talk to.

Servers start lazily: a test session that requests none of these fixtures starts nothing.
Each server is started once per session (see `tests/services.py`) and stopped at the end,
whether the tests passed or not.

Fixtures:
    postgres_server  PostgresServer  the running server (host, port, user, dsn(), url(), ...)
    postgresql_url   str             postgresql+asyncpg://postgres@127.0.0.1:PORT/statefleet_test,
                                     a database created fresh for the session
    redis_server     RedisServer     the running server (host, port, url())
    redis_url        str             redis://127.0.0.1:PORT/0
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import PostgresServer, RedisServer, start_postgres, start_redis

TEST_DATABASE = "statefleet_test"

pytest_plugins = ["tests.store_fixtures"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgresql_url(postgres_server: PostgresServer) -> str:
    return postgres_server.url(postgres_server.create_database(TEST_DATABASE))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url(0)
