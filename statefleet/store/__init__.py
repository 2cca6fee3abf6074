"""The SQL store: executions, history, links, definitions and batches in PostgreSQL (asyncpg)
or SQLite (aiosqlite), behind the engine's ``Store`` protocol.

::

    store = await open_store("postgresql://user@host/db")   # or sqlite:///path.db, or None
    ...
    await store.close()

``open_store`` migrates the schema to the newest revision (Alembic, shipped in
``statefleet/store/migrations``); ``await upgrade(url)`` does only that (``statefleet db
upgrade``).
"""

from statefleet.store.repository import (
    DuplicateBatchName,
    DuplicateExecutionName,
    DuplicateLink,
    SQLStore,
    open_store,
    upgrade,
)

__all__ = [
    "DuplicateBatchName",
    "DuplicateExecutionName",
    "DuplicateLink",
    "SQLStore",
    "open_store",
    "upgrade",
]
