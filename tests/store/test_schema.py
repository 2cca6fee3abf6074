"""Migrations: they build exactly the schema the models describe, run idempotently and
concurrently, and the embedded SQLite default sets itself up on first use."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from statefleet.statemachine.protocols import ExecutionFilter, LinkRecord
from statefleet.store import open_store, upgrade
from statefleet.store.constants import DEFAULT_URL, TABLES, VERSION_TABLE
from statefleet.store.engine import create_engine, normalize_url
from statefleet.store.migrate import (
    alembic_config,
    head_revision,
    include_object_for,
    upgrade_engine,
)
from statefleet.store.models import metadata
from statefleet.store.repository import SQLStore
from tests.services import PostgresServer
from tests.store.conftest import execution, finished


@pytest.fixture
async def empty_pg_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"schema_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


def _autogenerate_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "version_table": VERSION_TABLE,
            "include_object": include_object_for(connection.dialect.name),
            "compare_type": True,
            "target_metadata": metadata,
        },
    )
    return list(compare_metadata(context, metadata))


def _pg_schema(connection: Connection) -> dict[str, Any]:
    """Every column (with type, nullability, default, collation), constraint and index."""
    columns = connection.execute(
        text(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, "
            "collation_name FROM information_schema.columns WHERE table_schema = 'public' "
            "ORDER BY table_name, column_name"
        )
    ).all()
    indexes = connection.execute(
        text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    ).all()
    constraints = connection.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace"
        )
    ).all()
    return {
        "columns": [tuple(r) for r in columns],
        "indexes": sorted(tuple(r) for r in indexes),
        "constraints": sorted(tuple(r) for r in constraints),
    }


def _sqlite_schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    schema: dict[str, Any] = {}
    for table in TABLES:
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
        }
    return schema


async def test_postgresql_migrations_match_the_models(
    empty_pg_database: str, postgres_server: PostgresServer
) -> None:
    assert await upgrade(empty_pg_database) == head_revision()

    migrated = create_engine(empty_pg_database)
    try:
        async with migrated.connect() as conn:
            assert await conn.run_sync(_autogenerate_diff) == []
            from_migrations = await conn.run_sync(_pg_schema)
    finally:
        await migrated.dispose()

    # The same schema built straight from the models, compared object by object (this
    # also covers what autogenerate does not look at: GIN, operator classes, predicates).
    name = f"models_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    from_models_engine = create_engine(postgres_server.url(name))
    try:
        async with from_models_engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            from_models = await conn.run_sync(_pg_schema)
    finally:
        await from_models_engine.dispose()
        postgres_server.drop_database(name)

    from_migrations["indexes"] = [
        i for i in from_migrations["indexes"] if not i[0].startswith(VERSION_TABLE)
    ]
    from_migrations["columns"] = [c for c in from_migrations["columns"] if c[0] != VERSION_TABLE]
    from_migrations["constraints"] = [
        c for c in from_migrations["constraints"] if not c[0].startswith(VERSION_TABLE)
    ]
    assert from_migrations == from_models
    index_names = {i[0] for i in from_models["indexes"]}
    assert {"ix_executions_input_gin", "ix_executions_output_gin"} <= index_names
    assert any("jsonb_path_ops" in i[1] for i in from_models["indexes"])


async def test_sqlite_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    await upgrade(url)
    migrated = create_engine(url)
    from_models_engine = create_engine(f"sqlite:///{tmp_path / 'models.db'}")
    try:
        async with migrated.connect() as conn:
            assert await conn.run_sync(_autogenerate_diff) == []
            from_migrations = await conn.run_sync(_sqlite_schema)
        async with from_models_engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            from_models = await conn.run_sync(_sqlite_schema)
    finally:
        await migrated.dispose()
        await from_models_engine.dispose()
    assert from_migrations == from_models
    # JSON is kept as TEXT (a column declared JSON would have NUMERIC affinity).
    assert ("input", "TEXT", False) in from_models["executions"]["columns"]
    assert not any("gin" in i[0] for i in from_models["executions"]["indexes"])


async def test_upgrade_is_idempotent_and_safe_concurrently(
    empty_pg_database: str, tmp_path: Path
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'concurrent.db'}"
    for url in (empty_pg_database, sqlite_url):
        revisions = await asyncio.gather(*(upgrade(url) for _ in range(4)))
        assert revisions == [head_revision()] * 4
        assert await upgrade(url) == head_revision()
        store = await open_store(url)
        try:
            await store.create_executions([execution()])
            assert await store.count_executions(ExecutionFilter()) == 1
        finally:
            await store.close()


UPGRADE_SCRIPT = (
    "import asyncio, sys; from statefleet.store import upgrade; "
    "print(asyncio.run(upgrade(sys.argv[1])))"
)
ROOT = Path(__file__).resolve().parents[2]


async def test_upgrade_from_concurrent_processes(empty_pg_database: str, tmp_path: Path) -> None:
    """Several processes (workers starting at once) upgrade one fresh database: the advisory
    lock (PostgreSQL) or BEGIN IMMEDIATE (SQLite) lets one migrate and the others wait."""
    for url in (empty_pg_database, f"sqlite:///{tmp_path / 'processes.db'}"):
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                UPGRADE_SCRIPT,
                url,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(3)
        ]
        outputs = [await p.communicate() for p in processes]
        for process, (out, err) in zip(processes, outputs, strict=True):
            assert process.returncode == 0, err.decode()
            assert out.decode().strip() == head_revision()


async def test_the_embedded_default_sets_itself_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store()
    try:
        assert store.dialect == "sqlite"
        assert await store.revision() == head_revision()
        await store.create_executions([execution("m", "one")])
        async with store.engine.connect() as conn:
            journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            synchronous = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
            foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
        assert (journal, synchronous, foreign_keys) == ("wal", 2, 1)  # 2 = FULL
        assert busy > 0
    finally:
        await store.close()
    assert (tmp_path / "statefleet.db").is_file()

    again = await open_store()  # already at head: nothing to do, data kept
    try:
        assert await again.get_execution_by_name("m", "one") is not None
    finally:
        await again.close()


async def test_open_store_without_create_does_not_migrate(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'bare.db'}", create=False)
    try:
        assert await store.revision() is None
        await store.upgrade()
        assert await store.revision() == head_revision()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, DEFAULT_URL),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+pysqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("postgresql://u@h:5/db", "postgresql+asyncpg://u@h:5/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_urls_get_an_async_driver(given: str | None, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


def test_unsupported_urls_are_refused() -> None:
    with pytest.raises(ValueError, match=r"SQLite .* or PostgreSQL"):
        normalize_url("mysql://u@h/db")


def _foreign_keys(connection: Connection) -> dict[str, list[str]]:
    inspector = inspect(connection)
    return {
        table: sorted(fk["constrained_columns"][0] for fk in inspector.get_foreign_keys(table))
        for table in ("state_history", "linked_executions")
    }


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection=connection), revision)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_0003_drops_the_history_and_link_foreign_keys_and_keeps_the_rows(
    backend: str, tmp_path: Path, empty_pg_database: str
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else empty_pg_database
    engine = create_engine(url)
    store = SQLStore(engine)
    try:
        await upgrade_engine(engine, "0002")
        source = execution("intake", status="SUCCEEDED", output={"n": 1})
        target = execution("orders")
        await store.create_executions([source])
        await store.create_executions(
            [target],
            [
                LinkRecord(
                    source_execution_id=source.id,
                    source_machine_id="intake",
                    source_state=None,
                    transformer=None,
                    target_execution_id=target.id,
                    target_machine_id="orders",
                )
            ],
        )
        assert await store.write_checkpoints([finished(target.id)]) == [True]
        async with engine.connect() as conn:
            before = await conn.run_sync(_foreign_keys)
        assert before == {
            "state_history": ["execution_id"],
            "linked_executions": ["source_execution_id", "target_execution_id"],
        }

        await upgrade_engine(engine)

        async with engine.connect() as conn:
            assert await conn.run_sync(_foreign_keys) == {
                "state_history": [],
                "linked_executions": [],
            }
        assert [h.sequence for h in await store.history(target.id)] == [1, 2]
        assert [link.target_execution_id for link in await store.links_from(source.id)] == [
            target.id
        ]

        # Down again: rows whose execution is gone are dropped, the keys come back.
        async with engine.begin() as conn:
            await conn.execute(text(f"DELETE FROM executions WHERE id = '{source.id}'"))
            await conn.run_sync(_downgrade, "0002")
        async with engine.connect() as conn:
            assert await conn.run_sync(_foreign_keys) == before
        assert await store.links_to(target.id) == []
        assert [h.sequence for h in await store.history(target.id)] == [1, 2]
    finally:
        await store.close()
