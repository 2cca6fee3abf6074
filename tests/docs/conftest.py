"""Helpers of the docs suite: the reference generator (docs/gen.py) loaded as a module, and
the services that stand in for the ones the pages show."""

from __future__ import annotations

import importlib.util
import socket
import uuid
from pathlib import Path
from types import ModuleType

import pytest
import redis

from tests.docs.shell import DOC_DATABASE_URL, DOC_REDIS_URL
from tests.services import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parents[2]


def load_gen() -> ModuleType:
    """docs/gen.py (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("statefleet_docs_gen", ROOT / "docs" / "gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def services(postgres_server: PostgresServer, redis_server: RedisServer) -> dict[str, str]:
    """Substitutions for the pages' service addresses: a fresh database of the session's
    PostgreSQL and an emptied database of its Redis."""
    database = postgres_server.create_database(f"docs_{uuid.uuid4().hex[:12]}")
    redis_url = redis_server.url(7)
    redis.Redis.from_url(redis_url).flushdb()
    return {
        DOC_DATABASE_URL: postgres_server.url(database).replace("+asyncpg", ""),
        DOC_REDIS_URL: redis_url,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
