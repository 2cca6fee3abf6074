"""URLs and async engines for the two backends.

SQLite (``aiosqlite``) connections are set up for safe durability: WAL journal with
``synchronous=FULL`` (a committed checkpoint survives a power loss, not only a process
crash), foreign keys on, and a busy timeout so that writers wait for each other instead of
failing. The driver's own transaction handling is switched off and statefleet emits
``BEGIN`` itself: ``BEGIN IMMEDIATE`` for transactions that write (so that two writers never
deadlock upgrading a read lock) and a plain deferred ``BEGIN`` for reads.

PostgreSQL (``asyncpg``) gets a JSON serializer that keeps floats floats through ``JSONB``
(which stores numbers as ``numeric``: ``1e+16`` would come back as the integer
``10000000000000000``).

Both backends write and read JSON with ``orjson`` (a C codec, ~10x the standard library's
speed on the small documents a batch writes by the thousand), falling back to the ``json``
module wherever the two would differ, so that what is stored and read back is exactly what
the ``json`` module would give: values orjson does not take (sets, tuples of subclasses,
integers beyond 64 bits, nesting deeper than 254 levels...), NaN and infinities (orjson
writes them as ``null``; they are refused), numbers of 19 or more digits when reading
(orjson would read a big integer as a float).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from pathlib import Path
from typing import Any, Final

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from statefleet.store.constants import DEFAULT_URL

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_CACHE_KIB",
    "WRITE",
    "create_engine",
    "json_dumps",
    "json_loads",
    "normalize_url",
    "pg_json_dumps",
    "rows_document",
]

#: How long a SQLite writer waits for another one before failing.
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000

#: SQLite's page cache per connection, in KiB (SQLite's default is 2 MiB). A batch touches
#: the tail of every index of ``executions`` on each write; with 2 MiB those pages are read
#: back from the OS again and again (checkpoint UPDATEs took 1.5x the CPU). Memory is taken
#: only as pages are used.
SQLITE_CACHE_KIB: Final = 65_536

#: Execution option marking a connection whose transaction will write (SQLite: BEGIN IMMEDIATE).
WRITE: Final = "statefleet_write"

_ASYNC_DRIVERS: Final = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_SYNC_DRIVERS: Final = {"pysqlite", "psycopg2", "psycopg2cffi", "pg8000"}


def normalize_url(url: str | URL | None) -> URL:
    """The SQLAlchemy async URL for ``url``: ``sqlite://`` and ``postgresql://`` (or
    ``postgres://``) get their async driver; ``None`` is the embedded SQLite default."""
    parsed = make_url(url if url is not None else DEFAULT_URL)
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
            "statefleet stores executions in SQLite (sqlite:///path.db) or PostgreSQL "
            "(postgresql://user@host/db)"
        )
    if not driver or driver in _SYNC_DRIVERS:
        driver = _ASYNC_DRIVERS[backend]
    return parsed.set(drivername=f"{backend}+{driver}")


_compact = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

#: Types orjson would write but the json module refuses or writes differently (subclasses
#: of str, int, dict and list; dataclasses; datetimes) go to the json module.
_ORJSON_OPTIONS: Final = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)
_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_OrjsonDecodeError = orjson.JSONDecodeError

#: A run of 19 digits: an integer that may not fit 64 bits (orjson reads it as a float).
_LONG_NUMBER: Final = re.compile(r"\d{19}")


def json_dumps(value: Any) -> str:
    """Compact JSON, as ``json.dumps(value, separators=(",", ":"), allow_nan=False)`` reads
    it back; NaN and infinities are refused (they are not JSON)."""
    if value is None:
        return "null"
    try:
        data = _orjson_dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # not a plain JSON value (or too big or too deep): the json module
        return _compact(value)  # writes it or raises its usual error
    if b"null" in data and _has_non_finite(value):  # orjson wrote a NaN / infinity as null
        return _compact(value)  # the json module refuses it, with its message
    return data.decode()


def _has_non_finite(value: Any) -> bool:
    """Whether a NaN or an infinity is somewhere in ``value`` (dicts, lists, tuples)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            stack.extend(item.values())
        elif type(item) is list or type(item) is tuple:
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return True
    return False


def rows_document(rows: list[list[Any]]) -> str:
    """The JSON text of rows of column values that are already plain: text (JSON columns
    serialised), integers, booleans, None. Unlike :func:`json_dumps` no check for NaN (no
    floats), so the many nulls of such rows keep the fast path."""
    try:
        return _orjson_dumps(rows).decode()
    except TypeError:
        return _compact(rows)


def json_loads(text: str | bytes) -> Any:
    """``json.loads``, faster: orjson unless the text may hold an integer beyond 64 bits
    or something orjson refuses (``NaN``, ``1e400``...), which the json module reads."""
    if _LONG_NUMBER.search(text if isinstance(text, str) else text.decode()) is None:
        try:
            return _orjson_loads(text)
        except _OrjsonDecodeError:
            pass
    return json.loads(text)


def pg_json_dumps(value: Any) -> str:
    """JSON for a ``JSONB`` column: like :func:`json_dumps`, but a float written with a
    positive exponent (``1e+16``) is written out in full with a ``.0`` so that PostgreSQL's
    ``numeric`` keeps a fractional digit and it reads back as a float."""
    text = json_dumps(value)
    if "e+" not in text:
        return text
    return _encode_pg(value)


def _encode_pg(value: Any) -> str:
    if isinstance(value, float):
        if math.isfinite(value) and "e+" in repr(value):
            return f"{value:.1f}"
        return _compact(value)
    if isinstance(value, dict):
        items = (f"{_compact(_key(k))}:{_encode_pg(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode_pg(v) for v in value) + "]"
    return _compact(value)


def _key(key: Any) -> str:
    """A dict key as the json module writes it."""
    if isinstance(key, str):
        return key
    result: str = _compact(key)  # bool -> true/false, None -> null, numbers as numbers
    return result


def create_engine(url: str | URL | None = None, **options: Any) -> AsyncEngine:
    """An async engine for ``url`` (see :func:`normalize_url`), set up as the module says."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, options)
    options.setdefault("json_serializer", pg_json_dumps)
    options.setdefault("json_deserializer", json_loads)
    return create_async_engine(parsed, **options)


def _set_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried while the file is locked: switching a new file
    to WAL needs an exclusive lock, which SQLite does not wait for with the busy timeout,
    and another process may be creating the same store at that moment."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_engine(url: URL, options: dict[str, Any]) -> AsyncEngine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    options.setdefault("json_serializer", json_dumps)
    options.setdefault("json_deserializer", json_loads)
    engine = create_async_engine(url, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # statefleet emits BEGIN itself (see _on_begin); the driver must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
            _set_wal(cursor)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB:d}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
