"""Alembic environment for statefleet's schema.

Run programmatically (see :mod:`statefleet.store.migrate`): either on a connection handed
over in ``config.attributes["connection"]`` (inside a transaction the caller commits), or on
a new async engine for ``sqlalchemy.url``. Offline (``--sql``) mode renders the SQL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from statefleet.store.constants import VERSION_TABLE
from statefleet.store.engine import WRITE, create_engine
from statefleet.store.migrate import configure_context, lock_for_migration
from statefleet.store.models import metadata

config = context.config


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    configure_context(context, connection)
    with context.begin_transaction():
        lock_for_migration(connection)
        context.run_migrations()


async def run_on_new_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execution_options(**{WRITE: True})
            async with connection.begin():
                await connection.run_sync(run_on)
    finally:
        await engine.dispose()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("statefleet migrations need a connection or sqlalchemy.url")
    asyncio.run(run_on_new_engine(url))


if context.is_offline_mode():
    run_offline()
else:
    run_online()
