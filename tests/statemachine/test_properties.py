"""Properties of the data flow and of the interpreter, checked on generated inputs.

Sources: the ASL specification (states-language.net, "Reference Paths", "Input and
Output Processing": ResultPath places the result at a reference path in the raw input,
creating what is missing, and fails with States.ResultPathMatchFailure when it cannot;
InputPath/OutputPath select with a path) and the AWS developer guide page
"Input and Output Processing" (amazon-states-language-input-output-processing.md).
"""

from __future__ import annotations

import asyncio
import json
import string
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from statefleet import DefinitionError, StateMachine
from tests.statemachine.conftest import FakeClock, machine

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=6)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False, width=32),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=8,
)
plain_keys = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_letters + "_"),
    st.text(alphabet=string.ascii_letters + string.digits + "_", max_size=6),
)
odd_keys = st.text(alphabet=string.ascii_letters + string.digits + " -.:", min_size=1, max_size=8)
keys = plain_keys | odd_keys


def path_text(path: list[str]) -> str:
    """A reference path: dot notation where it can, bracket notation otherwise."""
    parts = ["$"]
    for key in path:
        if key.isidentifier():
            parts.append(f".{key}")
        else:
            parts.append(f"['{key}']")
    return "".join(parts)


def nest(path: list[str], value: Any) -> Any:
    for key in reversed(path):
        value = {key: value}
    return value


def placeable(data: Any, path: list[str]) -> bool | None:
    """Whether ResultPath can place a value at ``path`` in ``data`` (None: null on the way)."""
    node = data
    for key in path:
        if not isinstance(node, dict):
            return False
        if key not in node:
            return True
        node = node[key]
        if node is None:
            return None
    return True


def execute(definition: Any, data: Any) -> Any:
    sm = StateMachine.from_definition(definition)
    return asyncio.run(sm.run(data, clock=FakeClock()))


@SETTINGS
@given(
    data=st.dictionaries(keys, json_values, max_size=4),
    path=st.lists(keys, min_size=1, max_size=4),
    result=json_values,
)
def test_result_path_then_output_path_gives_back_the_result(
    data: Any, path: list[str], result: Any
) -> None:
    # A Pass with ResultPath P and OutputPath P outputs its Result, whenever P can be
    # placed in the input; otherwise the state fails with States.ResultPathMatchFailure.
    ok = placeable(data, path)
    assume(ok is not None)
    text = path_text(path)
    outcome = execute(
        machine({"Type": "Pass", "Result": result, "ResultPath": text, "OutputPath": text}), data
    )
    if ok:
        assert (outcome.status, outcome.output) == ("SUCCEEDED", result)
    else:
        assert (outcome.status, outcome.error) == ("FAILED", "States.ResultPathMatchFailure")


@SETTINGS
@given(
    data=st.dictionaries(keys, json_values, max_size=4),
    path=st.lists(keys, min_size=1, max_size=3),
    result=json_values,
)
def test_result_path_leaves_the_rest_of_the_input_alone(
    data: Any, path: list[str], result: Any
) -> None:
    # AWS guide, "ResultPath": only the item at the path is added or overwritten.
    assume(placeable(data, path))
    outcome = execute(
        machine({"Type": "Pass", "Result": result, "ResultPath": path_text(path)}), data
    )
    assert outcome.status == "SUCCEEDED"
    output = outcome.output
    for key, value in data.items():
        if key != path[0]:
            assert output[key] == value
    assert set(output) == set(data) | {path[0]}


@SETTINGS
@given(
    path=st.lists(keys, min_size=1, max_size=4),
    value=json_values,
    noise=st.dictionaries(keys, json_values, max_size=3),
)
def test_input_path_selects_what_was_nested(
    path: list[str], value: Any, noise: dict[str, Any]
) -> None:
    # AWS guide, "InputPath": the path selects that part of the input.
    data = {**noise, **nest(path, value)}
    outcome = execute(machine({"Type": "Pass", "InputPath": path_text(path)}), data)
    assert (outcome.status, outcome.output) == ("SUCCEEDED", value)


@SETTINGS
@given(data=json_values, result=json_values)
def test_identity_fields(data: Any, result: Any) -> None:
    # ResultPath null keeps the input; "$" paths select everything; Parameters "$" wraps it.
    assert (
        execute(machine({"Type": "Pass", "Result": result, "ResultPath": None}), data).output
        == data
    )
    assert (
        execute(machine({"Type": "Pass", "InputPath": "$", "OutputPath": "$"}), data).output == data
    )
    assert execute(machine({"Type": "Pass", "Parameters": {"v.$": "$"}}), data).output == {
        "v": data
    }
    assert execute(machine({"Type": "Pass", "Result": result}), data).output == result


# --------------------------------------------------------------------------- generated machines

OPERATORS: list[tuple[str, Any]] = [
    ("NumericEquals", st.integers(-3, 3)),
    ("NumericLessThan", st.integers(-3, 3) | st.floats(-3, 3, allow_nan=False)),
    ("StringEquals", st.text(max_size=2)),
    ("StringMatches", st.text(alphabet="ab*", max_size=3)),
    ("BooleanEquals", st.booleans()),
    ("IsPresent", st.booleans()),
    ("IsNull", st.booleans()),
    ("TimestampLessThan", st.just("2020-01-01T00:00:00Z")),
    ("NumericEqualsPath", st.sampled_from(["$.v", "$.w"])),
    ("NumericEquals", json_scalars),  # sometimes an operand of the wrong type
]
VARIABLES = ["$.v", "$.w", "$.v.x", "$[0]"]


@st.composite
def rules(draw: Any, depth: int = 0) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(["leaf", "leaf", "leaf"] + (["and", "or", "not"] if depth < 2 else []))
    )
    if kind == "leaf":
        operator, operand = draw(st.sampled_from(OPERATORS))
        return {"Variable": draw(st.sampled_from(VARIABLES)), operator: draw(operand)}
    if kind == "not":
        return {"Not": draw(rules(depth + 1))}
    return {kind.capitalize(): draw(st.lists(rules(depth + 1), min_size=1, max_size=3))}


@st.composite
def machines(draw: Any) -> dict[str, Any]:
    """Pass and Choice states S0..Sn whose transitions only go forward (so runs end);
    now and then a transition to a state that does not exist."""
    count = draw(st.integers(1, 6))
    names = [f"S{i}" for i in range(count)]

    def target(index: int) -> str | None:
        later = names[index + 1 :]
        if draw(st.integers(0, 15)) == 0:
            return "Nowhere"
        return draw(st.sampled_from(later)) if later else None

    states: dict[str, Any] = {}
    for index, name in enumerate(names):
        following = target(index)
        if following is not None and draw(st.booleans()):
            choices = [
                {**draw(rules()), "Next": target(index) or following}
                for _ in range(draw(st.integers(1, 3)))
            ]
            state: dict[str, Any] = {"Type": "Choice", "Choices": choices}
            if draw(st.booleans()):
                state["Default"] = following
        else:
            state = {"Type": "Pass"}
            if draw(st.booleans()):
                state["Result"] = draw(json_values)
            for field, options in (
                ("ResultPath", ["$", "$.r", "$.v.x", None]),
                ("InputPath", ["$", "$.v", None]),
                ("OutputPath", ["$", "$.r", None]),
            ):
                if draw(st.booleans()):
                    state[field] = draw(st.sampled_from(options))
            if following is None:
                state["End"] = True
            else:
                state["Next"] = following
        states[name] = state
    return {"StartAt": "S0", "States": states}


ALLOWED_ERRORS = {"States.Runtime", "States.NoChoiceMatched", "States.ResultPathMatchFailure"}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    definition=machines(),
    data=json_values | st.fixed_dictionaries({"v": json_values}, optional={"w": json_values}),
)
def test_generated_machines_end_well_or_are_rejected(definition: dict[str, Any], data: Any) -> None:
    # Whatever Pass/Choice machine and input: either the definition is rejected with a
    # DefinitionError, or the run ends SUCCEEDED with JSON output or FAILED with one of the
    # States.* errors these states can raise. Nothing else escapes.
    try:
        sm = StateMachine.from_definition(definition)
    except DefinitionError as exc:
        assert exc.problems
        return
    result = asyncio.run(sm.run(data, clock=FakeClock()))
    assert result.status in {"SUCCEEDED", "FAILED"}
    if result.status == "SUCCEEDED":
        json.dumps(result.output)
        assert result.error is None
    else:
        assert result.error in ALLOWED_ERRORS, (result.error, result.cause)
        assert result.cause
