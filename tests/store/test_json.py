"""The store's JSON codec (orjson with the json module as the reference): what is written
reads back exactly as the json module would write and read it, and what the json module
refuses is refused with its error."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statefleet.store.engine import json_dumps, json_loads, pg_json_dumps

_reference = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # surrogates, controls, U+2028 ...
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_reads_back_what_the_json_module_reads_back(value: Any) -> None:
    expected = json.loads(_reference(value))
    text = json_dumps(value)
    assert json_loads(text) == expected
    assert json.loads(text) == expected
    assert json_loads(_reference(value)) == expected


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_reads_any_json_text_as_the_json_module(value: Any) -> None:
    text = json.dumps(value, indent=1)
    assert json_loads(text) == json.loads(text)
    assert json_loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    "value",
    [
        2**64,
        -(2**63) - 1,
        123456789012345678901234567890,
        {"n": [10**30, 1]},
        {1: "a", None: "b", False: "c", 2.5: "d"},  # keys the json module turns into text
        OrderedDict(a=1),
        (1, (2, 3)),
        "\ud800",  # a lone surrogate (not UTF-8)
        [[[[[[[[[[1]]]]]]]]]] * 2,
        1e16,
        1.5e-7,
        -0.0,
    ],
    ids=repr,
)
def test_values_orjson_does_not_write_alike(value: Any) -> None:
    text = json_dumps(value)
    assert json_loads(text) == json.loads(_reference(value))


def test_deep_nesting_beyond_orjson() -> None:
    value: Any = 1
    for _ in range(600):
        value = [value]
    text = json_dumps(value)
    assert text == _reference(value)
    assert json_loads(text) == value


def test_big_integers_read_back_as_integers() -> None:
    assert json_loads('{"a":123456789012345678901234567890}') == {
        "a": 123456789012345678901234567890
    }
    assert json_loads("[18446744073709551616,-9223372036854775809]") == [
        2**64,
        -(2**63) - 1,
    ]
    assert type(json_loads("9223372036854775807")) is int


def test_what_orjson_refuses_to_read_is_read_as_json_does() -> None:
    assert json_loads("[1e400]") == [math.inf]
    assert math.isnan(json_loads("NaN"))
    with pytest.raises(json.JSONDecodeError):
        json_loads('{"a": ')


class _Subclass(str):
    pass


@dataclasses.dataclass
class _Point:
    x: int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "Out of range float values are not JSON compliant"),
        ({"a": [1, float("inf")]}, "Out of range float values are not JSON compliant"),
        ({"a": None, "b": (None, float("-inf"))}, "Out of range float values"),
        ([None, {"c": [float("nan")]}], "Out of range float values are not JSON compliant"),
        ({1, 2}, "Object of type set is not JSON serializable"),
        (_Point(1), "Object of type _Point is not JSON serializable"),
        (datetime(2026, 1, 1, tzinfo=UTC), "Object of type datetime is not JSON serializable"),
        (object(), "Object of type object is not JSON serializable"),
    ],
    ids=[
        "nan",
        "inf",
        "inf-beside-null",
        "nan-beside-null",
        "set",
        "dataclass",
        "datetime",
        "object",
    ],
)
def test_refuses_what_the_json_module_refuses(value: Any, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        json_dumps(value)
    with pytest.raises((ValueError, TypeError), match=message):
        pg_json_dumps(value)


def test_nulls_written_as_the_json_module_writes_them() -> None:
    for value in (None, {"a": None}, [None, 1.5, {"b": (None, 2)}], {"x": [{"y": None}]}):
        assert json_dumps(value) == json.dumps(value, separators=(",", ":"), allow_nan=False)


def test_subclasses_written_as_the_json_module_writes_them() -> None:
    assert json_dumps(_Subclass("x")) == '"x"'
    assert json_dumps({"k": _Subclass("v")}) == '{"k":"v"}'


def test_pg_floats_with_a_positive_exponent_keep_a_fraction() -> None:
    text = pg_json_dumps({"big": 1e16, "small": 1.5e-7, "n": 3})
    assert '"big":10000000000000000.0' in text
    assert json_loads(text) == {"big": 1e16, "small": 1.5e-7, "n": 3}
