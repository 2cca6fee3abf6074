"""How values are written for the drivers: the datetime text of SQLite bulk writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from statefleet.store.repository import _sqlite_timestamp

#: What SQLAlchemy's SQLite DATETIME writes for a naive datetime (the ORM path's text).
_SQLALCHEMY = sqlite.DATETIME().bind_processor(sqlite.dialect())


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 23, 0, 0, 0, 0, UTC),
        datetime(2026, 11, 23, 0, 0, 0, 999_999, UTC),
        datetime(2026, 11, 22, 23, 59, 59, 999_999, UTC),
        datetime(1970, 1, 1, 0, 0, 0, 1, UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, UTC),  # before the epoch
        datetime(2099, 12, 31, 23, 59, 59, 999_999, UTC),
        datetime(2100, 1, 1, 0, 0, 0, 5, UTC),  # past the cached range
        datetime(9999, 12, 31, 23, 59, 59, 999_999, UTC),
        datetime(1, 1, 1, 0, 0, 0, 0, UTC),
        datetime(2026, 11, 23, 1, 30, 0, 250_000, timezone(timedelta(hours=2))),  # other zone
        datetime(2026, 11, 23, 1, 30, 0, 250_000),  # naive: taken as UTC
    ],
)
def test_sqlite_datetime_text_is_what_sqlalchemy_writes(value: datetime) -> None:
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    expected = _SQLALCHEMY(utc.replace(tzinfo=None))
    assert _sqlite_timestamp(value) == expected
    assert _sqlite_timestamp(value) == expected  # the cached second gives the same text


def test_sqlite_datetime_text_over_a_run_of_microseconds() -> None:
    start = datetime(2026, 11, 23, 0, 0, 58, 0, UTC)
    for step in range(0, 3_000_000, 997):  # crosses whole seconds
        value = start + timedelta(microseconds=step)
        assert _sqlite_timestamp(value) == _SQLALCHEMY(value.replace(tzinfo=None))
    assert _sqlite_timestamp(None) is None
