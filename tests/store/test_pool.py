"""The PostgreSQL connection pool's size comes from STATEFLEET_DATABASE_POOL_SIZE."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from statefleet import Settings, open_store


async def test_the_pool_size_setting_bounds_the_connections_to_postgresql(
    store_postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATEFLEET_DATABASE_POOL_SIZE", "2")
    settings = Settings(database_url=store_postgresql_url)
    assert settings.store_options() == {"pool_size": 2, "max_overflow": 4}
    store = await open_store(settings.database_url, create=False, **settings.store_options())
    held = asyncio.Event()
    release = asyncio.Event()
    opened = 0

    async def hold() -> None:
        nonlocal opened
        async with store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            opened += 1
            if opened == 6:
                held.set()
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(7)]
    try:
        await asyncio.wait_for(held.wait(), 10)
        await asyncio.sleep(0.2)
        assert opened == 6  # 2 kept + 4 at a peak; the seventh waits for one of them
        assert store.engine.pool.checkedout() == 6
        release.set()
        await asyncio.wait_for(asyncio.gather(*holders), 10)
        assert opened == 7
        assert store.engine.pool.checkedin() == 2  # back to the two it keeps
    finally:
        release.set()
        await asyncio.gather(*holders, return_exceptions=True)
        await store.close()


def test_sqlite_takes_no_pool_options_and_a_bad_size_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(database_url="sqlite:///./x.db").store_options() == {}
    monkeypatch.setenv("STATEFLEET_DATABASE_POOL_SIZE", "0")
    with pytest.raises(ValidationError, match="database_pool_size"):
        Settings()
