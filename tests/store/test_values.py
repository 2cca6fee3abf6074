"""How values are written for the drivers: the datetime text of SQLite bulk writes (from
datetimes, and from the epoch seconds of the engine's history entries)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from statefleet.store.repository import _sqlite_epoch, _sqlite_timestamp

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


@settings(max_examples=2000, deadline=None)
@given(
    st.floats(min_value=-1e9, max_value=5e9, allow_nan=False)
    | st.integers(0, 4_000_000_000).map(lambda s: s + 0.0000005)  # a tie at the microsecond
    | st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999996)  # rounds up to a second
)
def test_sqlite_text_of_epoch_seconds_is_that_of_their_datetime(seconds: float) -> None:
    expected = _sqlite_timestamp(datetime.fromtimestamp(seconds, UTC))
    assert _sqlite_epoch(seconds) == expected
    assert _sqlite_epoch(seconds) == expected  # from the cached second
