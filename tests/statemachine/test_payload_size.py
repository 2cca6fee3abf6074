"""The payload size check (256 KiB in Step Functions): ``exceeds`` agrees with the exact
size of the JSON text for every value and limit, on both sides of the boundary."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from statefleet.statemachine.states.base import PAYLOAD_LIMIT, data_size, exceeds

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN, infinities, exponents written differently by orjson and json
    | st.text(),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(values, st.integers(-40, 40))
def test_agrees_with_the_exact_size_around_the_limit(value: Any, delta: int) -> None:
    size = data_size(value)
    for limit in (max(0, size + delta), max(0, size * 2 + delta), max(0, size // 2 + delta)):
        assert exceeds(value, limit) == (size > limit), limit


def test_values_orjson_cannot_write_are_measured_by_walking() -> None:
    assert not exceeds({1: "a", 2: ["b"]}, 100)  # integer keys
    assert exceeds({1: "x" * 200}, 100)
    assert not exceeds({"s": "\ud800"}, 100)  # a lone surrogate
    assert exceeds(["\ud800" * 100], 100)


def test_big_payloads() -> None:
    assert not exceeds("x" * (PAYLOAD_LIMIT - 2), PAYLOAD_LIMIT)
    assert exceeds("x" * (PAYLOAD_LIMIT - 1), PAYLOAD_LIMIT)
    many = [1.5e-7] * (PAYLOAD_LIMIT // 7)  # json writes 1.5e-07: one byte more each
    assert exceeds(many, PAYLOAD_LIMIT) == (data_size(many) > PAYLOAD_LIMIT)
    assert exceeds([float("inf")] * (PAYLOAD_LIMIT // 6), PAYLOAD_LIMIT)
