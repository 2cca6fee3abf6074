"""The test services are real servers that answer."""

from __future__ import annotations

import uuid

import redis.asyncio as redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services import PostgresServer, RedisServer


async def test_postgresql_answers(postgresql_url: str, postgres_server: PostgresServer) -> None:
    host, port = postgres_server.host, postgres_server.port
    assert postgresql_url == f"postgresql+asyncpg://postgres@{host}:{port}/statefleet_test"
    engine = create_async_engine(postgresql_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("select 1"))).scalar_one() == 1
            await conn.execute(text("create temp table smoke (id int primary key, name text)"))
            await conn.execute(
                text("insert into smoke (id, name) values (:id, :name)"),
                [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}],
            )
            rows = (await conn.execute(text("select id, name from smoke order by id"))).all()
            assert [tuple(row) for row in rows] == [(1, "one"), (2, "two")]
            version = (await conn.execute(text("show server_version_num"))).scalar_one()
            assert int(version) >= 130000
    finally:
        await engine.dispose()


async def test_redis_answers(redis_url: str, redis_server: RedisServer) -> None:
    assert redis_url == f"redis://{redis_server.host}:{redis_server.port}/0"
    client = redis.Redis.from_url(redis_url)
    try:
        key = f"smoke:{uuid.uuid4()}"
        assert await client.set(key, "value", ex=60)
        assert await client.get(key) == b"value"
        assert await client.delete(key) == 1
    finally:
        await client.aclose()
