"""The interpreter under generated definitions and inputs: it only ever refuses a definition
with :class:`DefinitionError`, or runs it to an end — SUCCEEDED, or FAILED with an ASL
error name. Never an unhandled exception, never a hang.

Definitions are drawn as a chain of states whose transitions only go forward (so every
run ends), of every type, with paths, intrinsic functions and comparisons drawn from pools
that mix good and bad references; now and then a field gets an arbitrary JSON value, so
the validator's refusals are exercised too. (tests/statemachine/test_validation.py fuzzes
the validator alone on mutated definitions.)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statefleet import DefinitionError, StateMachine, TaskError
from statefleet.statemachine.machine import RunResult

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)
inputs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"a": json_values, "b": st.lists(json_values, max_size=4), "s": st.text(max_size=12)}
    ),
)

PATHS = ["$", "$.a", "$.b", "$.b[0]", "$.s", "$.missing", "$.a.deep", "$$.Execution.Id", "$$.State"]
INTRINSICS = [
    "States.Format('{} and {}', $.a, $.s)",
    "States.ArrayLength($.b)",
    "States.MathAdd($.a, 1)",
    "States.StringToJson($.s)",
    "States.JsonToString($)",
    "States.Array($.a, $.b)",
    "States.ArrayGetItem($.b, 0)",
    "States.Hash($.s, 'SHA-256')",
    "States.UUID()",
]
RESULT_PATHS = ["$", "$.r", "$.a.r", "$.b[0]", None]
COMPARISONS = [
    ("NumericEquals", st.integers(-3, 3)),
    ("NumericGreaterThan", st.integers(-3, 3)),
    ("StringEquals", st.text(max_size=3)),
    ("BooleanEquals", st.booleans()),
    ("IsPresent", st.booleans()),
    ("IsNull", st.booleans()),
    ("StringMatches", st.sampled_from(["*", "a*", "*b"])),
]


def boom(payload: Any) -> Any:
    raise ValueError("boom")


def fail_named(payload: Any) -> Any:
    raise TaskError("Custom.Error", "told to fail")


def echo(payload: Any) -> Any:
    return payload


def half(payload: Any) -> Any:
    return payload["a"] / 2  # KeyError, TypeError, ZeroDivision... all task failures


RESOURCES = {"echo": echo, "boom": boom, "fail": fail_named, "half": half}
#: What the resources above may fail with (an exception's class name is its error name),
#: and the Fail states' own name.
TASK_ERRORS = {"ValueError", "KeyError", "TypeError", "ZeroDivisionError", "IndexError"}
TASK_ERRORS |= {"Custom.Error", "Fuzz.Failed"}


@st.composite
def transitions(draw: st.DrawFn, index: int, count: int) -> dict[str, Any]:
    """Next to a later state, or End."""
    if index == count - 1 or (draw(st.booleans()) and draw(st.booleans())):
        return {"End": True}
    return {"Next": f"S{draw(st.integers(index + 1, count - 1))}"}


@st.composite
def paths(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in ("InputPath", "OutputPath"):
        if draw(st.integers(0, 3)) == 0:
            out[field] = draw(st.sampled_from([*PATHS, None]))
    if draw(st.integers(0, 2)) == 0:
        out["ResultPath"] = draw(st.sampled_from(RESULT_PATHS))
    if draw(st.integers(0, 2)) == 0:
        out["Parameters"] = {
            "p.$": draw(st.sampled_from(PATHS + INTRINSICS)),
            "fixed": draw(json_values),
        }
    return out


SIMPLE = {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "End": True}}}


@st.composite
def state(draw: st.DrawFn, index: int, count: int) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(["Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Map", "Parallel"])
    )
    if kind == "Succeed":
        return {"Type": "Succeed"}
    if kind == "Fail":
        if draw(st.booleans()):
            return {"Type": "Fail", "ErrorPath": draw(st.sampled_from(PATHS))}
        return {"Type": "Fail", "Error": "Fuzz.Failed", "Cause": draw(st.text(max_size=8))}
    if kind == "Choice" and index < count - 1:
        name, values = draw(st.sampled_from(COMPARISONS))
        later = st.integers(index + 1, count - 1).map(lambda i: f"S{i}")
        rule = {"Variable": draw(st.sampled_from(PATHS)), name: draw(values), "Next": draw(later)}
        choice: dict[str, Any] = {"Type": "Choice", "Choices": [rule]}
        if draw(st.booleans()):
            choice["Default"] = draw(later)
        return choice
    body: dict[str, Any] = {"Type": "Pass" if kind == "Choice" else kind}
    body |= draw(transitions(index, count))
    if kind == "Task":
        body["Resource"] = draw(st.sampled_from(sorted(RESOURCES)))
        if index < count - 1 and draw(st.booleans()):
            body["Catch"] = [
                {
                    "ErrorEquals": [draw(st.sampled_from(["States.ALL", "Custom.Error"]))],
                    "Next": f"S{draw(st.integers(index + 1, count - 1))}",
                    "ResultPath": draw(st.sampled_from(RESULT_PATHS)),
                }
            ]
        if draw(st.booleans()):
            body["Retry"] = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}]
        if draw(st.booleans()):
            body["ResultSelector"] = {"v.$": draw(st.sampled_from(PATHS))}
    elif kind == "Wait":
        body |= draw(
            st.sampled_from([{"Seconds": 0}, {"SecondsPath": "$.a"}, {"TimestampPath": "$.s"}])
        )
    elif kind == "Map":
        body["ItemsPath"] = draw(st.sampled_from(PATHS))
        body["ItemProcessor"] = SIMPLE
        body["MaxConcurrency"] = draw(st.integers(0, 3))
    elif kind == "Parallel":
        body["Branches"] = [SIMPLE] * draw(st.integers(1, 2))
    if kind != "Wait":
        body |= draw(paths())
    return body


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 6))
    states = {f"S{i}": draw(state(i, count)) for i in range(count)}
    for name, spec in states.items():  # nested machines need unique state names
        if spec["Type"] in ("Map", "Parallel"):
            inner = {"StartAt": f"{name}i", "States": {f"{name}i": {"Type": "Pass", "End": True}}}
            if spec["Type"] == "Map":
                spec["ItemProcessor"] = inner
            else:
                spec["Branches"] = [
                    {
                        "StartAt": f"{name}b{k}",
                        "States": {f"{name}b{k}": {"Type": "Pass", "End": True}},
                    }
                    for k in range(len(spec["Branches"]))
                ]
    states = {name: spec for name, spec in states.items() if name in reachable(states)}
    if draw(st.integers(0, 4)) == 0:  # now and then, garbage in one field
        victim = draw(st.sampled_from(list(states.values())))
        field = draw(st.sampled_from([*sorted(victim), "Extra"]))
        victim[field] = draw(json_values)
    return {"StartAt": "S0", "States": states}


def reachable(states: dict[str, Any]) -> set[str]:
    """The states reachable from S0 (the validator refuses the others)."""
    seen, todo = set(), ["S0"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        spec = states[name]
        targets = [spec.get("Next"), spec.get("Default")]
        targets += [rule["Next"] for rule in spec.get("Choices", [])]
        targets += [catcher["Next"] for catcher in spec.get("Catch", [])]
        todo += [t for t in targets if t is not None]
    return seen


def _fail_errors(value: Any) -> set[str]:
    """The Error of every Fail state in a definition (nested ones included)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if value.get("Type") == "Fail" and isinstance(value.get("Error"), str):
            found.add(value["Error"])
        for sub in value.values():
            found |= _fail_errors(sub)
    elif isinstance(value, list):
        for sub in value:
            found |= _fail_errors(sub)
    return found


class VirtualClock:
    """Time that a Wait skips at once: a generated Wait may legitimately last a year (a
    garbage ``Seconds``, a ``SecondsPath`` onto a big number), and the fuzz tests what the
    engine decides, not its patience. ``now`` still moves forward with the real clock."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def now(self) -> float:
        return time.time() + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)
        await asyncio.sleep(0)


async def _run(definition: dict[str, Any], value: Any) -> RunResult | None:
    try:
        machine = StateMachine.from_definition(definition)
    except DefinitionError as exc:
        assert exc.problems, "a DefinitionError names its problems"
        return None
    async with asyncio.timeout(10):
        return await machine.run(value, resources=RESOURCES, clock=VirtualClock())


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions(), inputs)
def test_the_interpreter_ends_every_run_or_refuses_the_definition(
    definition: dict[str, Any], value: Any
) -> None:
    result = asyncio.run(_run(definition, value))
    if result is None:
        return
    assert result.status in ("SUCCEEDED", "FAILED"), result
    if result.status == "FAILED":
        assert isinstance(result.error, str), result
        known = (
            result.error.startswith("States.")
            or result.error in TASK_ERRORS
            or result.error in _fail_errors(definition)  # a Fail state's own Error (even "")
        )
        # an ErrorPath may name any string (even ""): then it is the definition's own name
        assert known or "ErrorPath" in str(definition), result
