"""Alembic, run programmatically: the migrations ship inside the package
(``statefleet/store/migrations``), so ``statefleet db upgrade`` works from an installed wheel
without an ``alembic.ini``.

Upgrading is idempotent (``upgrade head``) and safe to run from several processes at once:
on PostgreSQL the migration transaction holds an advisory lock, on SQLite it is a
``BEGIN IMMEDIATE`` transaction, so a second upgrader waits and then finds nothing to do.

A new revision is written the usual way, from Python::

    from alembic import command
    command.revision(alembic_config(url), autogenerate=True, message="...")
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from statefleet.store.constants import MIGRATION_LOCK_KEY, VERSION_TABLE
from statefleet.store.engine import WRITE, normalize_url

__all__ = [
    "SCRIPT_LOCATION",
    "alembic_config",
    "configure_context",
    "current_revision",
    "head_revision",
    "include_object_for",
    "lock_for_migration",
    "upgrade_engine",
]

SCRIPT_LOCATION = "statefleet.store:migrations"


def alembic_config(url: str | URL | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config for statefleet's migrations: on ``connection`` if given (it must be
    inside a transaction), else on a new engine for ``url``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def include_object_for(dialect_name: str) -> Any:
    """Alembic's ``include_object`` filter for one dialect: it skips the indexes that the
    models mark for other dialects (see :func:`statefleet.store.models.postgresql_only`)."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        dialects = getattr(obj, "info", {}).get("dialects")
        if dialects and not reflected:
            return dialect_name in dialects
        return True

    return include


def configure_context(context: Any, connection: Connection) -> None:
    """``context.configure`` as statefleet's ``env.py`` does it (shared with the tests)."""
    from statefleet.store.models import metadata

    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=include_object_for(connection.dialect.name),
        compare_type=True,
    )


def lock_for_migration(connection: Connection) -> None:
    """Serialise concurrent upgraders (PostgreSQL: an advisory lock held until commit)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


# Alembic keeps the running migration's context in module globals (``alembic.context``), so
# two upgrades must not interleave in one process: a per-event-loop asyncio lock keeps
# tasks apart, and a thread lock keeps event loops in different threads apart.
_LOOP_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
_THREAD_LOCK = threading.Lock()


def _upgrade(connection: Connection, revision: str) -> None:
    with _THREAD_LOCK:
        command.upgrade(alembic_config(connection=connection), revision)


def _current(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` on ``engine``, in one transaction."""
    lock = _LOOP_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock, engine.connect() as connection:
        await connection.execution_options(**{WRITE: True})
        async with connection.begin():
            await connection.run_sync(_upgrade, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def head_revision() -> str:
    """The newest revision shipped with this version of statefleet."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
