"""Fail and Succeed: the two terminal state types.

Sources: the ASL specification (states-language.net, "Fail State", "Succeed State"), the
AWS developer guide pages "Fail workflow state" and "Succeed workflow state"
(amazon-states-language-fail-state.md, amazon-states-language-succeed-state.md), and
AWS-recorded executions in shared/asl-cases.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.statemachine.conftest import failure_of, machine, output_of, run

# --------------------------------------------------------------------------- Fail


async def test_aws_fail_example() -> None:
    # AWS guide, Fail state example: Cause "Invalid response.", Error "ErrorA".
    definition = machine(
        {"Type": "Fail", "Cause": "Invalid response.", "Error": "ErrorA"}, name="FailState"
    )
    result = await run(definition, {"anything": 1})
    assert (result.status, result.error, result.cause, result.output) == (
        "FAILED",
        "ErrorA",
        "Invalid response.",
        None,
    )
    [event] = result.history
    assert (event.state, event.type, event.status, event.error, event.cause) == (
        "FailState",
        "Fail",
        "FAILED",
        "ErrorA",
        "Invalid response.",
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"Error": "E"}, ("E", None)),
        ({"Cause": "C"}, (None, "C")),
        ({}, (None, None)),
    ],
)
async def test_error_and_cause_are_optional(
    spec: dict[str, Any], expected: tuple[Any, Any]
) -> None:
    # Spec, Fail State: Error and Cause are both optional. AWS records no error name for a
    # Fail without Error (shared/asl-cases, base_scenarios__fail_cause_jsonata).
    assert await failure_of(machine({"Type": "Fail", **spec}), {}) == expected


async def test_aws_error_path_and_cause_path() -> None:
    # AWS guide, Fail state: "ErrorPath": "$$.State.Name", "CausePath": "$.Cause".
    definition = machine(
        {"Type": "Fail", "ErrorPath": "$$.State.Name", "CausePath": "$.Cause"}, name="FailState"
    )
    assert await failure_of(definition, {"Cause": "the reason"}) == ("FailState", "the reason")


async def test_cause_path_with_an_intrinsic_function() -> None:
    # AWS guide, Fail state: CausePath may be an intrinsic function, e.g.
    # States.Format('This is a custom error message for {}, caused by {}.', $.Error, $.Cause).
    definition = machine(
        {
            "Type": "Fail",
            "ErrorPath": "$.Error",
            "CausePath": (
                "States.Format('This is a custom error message for {}, caused by {}.', "
                "$.Error, $.Cause)"
            ),
        }
    )
    error, cause = await failure_of(definition, {"Error": "Boom", "Cause": "a bad input"})
    assert error == "Boom"
    assert cause == "This is a custom error message for Boom, caused by a bad input."


async def test_error_path_to_a_missing_field_is_a_runtime_error() -> None:
    # AWS guide, Fail state: ErrorPath is a reference path into the input; selecting nothing
    # is States.Runtime.
    error, cause = await failure_of(machine({"Type": "Fail", "ErrorPath": "$.missing"}), {})
    assert error == "States.Runtime"
    assert cause is not None
    assert "$.missing" in cause


@pytest.mark.parametrize("value", [42, None, {"a": 1}, ["x"], True])
async def test_error_path_must_select_a_string(value: Any) -> None:
    # AWS guide, Fail state: ErrorPath must resolve to a string.
    error, _ = await failure_of(machine({"Type": "Fail", "ErrorPath": "$.e"}), {"e": value})
    assert error == "States.Runtime"


async def test_fail_stops_the_machine() -> None:
    # Spec, Fail State: "terminates the machine and marks it as a failure".
    definition = {
        "StartAt": "Before",
        "States": {
            "Before": {"Type": "Pass", "Next": "Stop"},
            "Stop": {"Type": "Fail", "Error": "Stopped"},
        },
    }
    result = await run(definition, {})
    assert (result.status, result.error) == ("FAILED", "Stopped")
    assert [(e.state, e.status) for e in result.history] == [
        ("Before", "SUCCEEDED"),
        ("Stop", "FAILED"),
    ]


# --------------------------------------------------------------------------- Succeed


async def test_succeed_outputs_its_input() -> None:
    # Spec, Succeed State: "terminates a state machine successfully"; its output is its input.
    data = {"a": [1, 2], "b": None}
    assert await output_of(machine({"Type": "Succeed"}, name="SuccessState"), data) == data


async def test_succeed_with_input_path_and_output_path() -> None:
    # AWS guide, "Common state fields": Succeed takes InputPath and OutputPath.
    definition = machine({"Type": "Succeed", "InputPath": "$.inner", "OutputPath": "$.keep"})
    assert await output_of(definition, {"inner": {"keep": 5, "drop": 6}}) == 5


async def test_succeed_as_a_choice_target_ends_the_execution() -> None:
    # AWS guide, Succeed state: "useful as the target of a Choice state branch that does
    # nothing but stop the state machine".
    definition = {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": "Done"}],
                "Default": "More",
            },
            "More": {"Type": "Pass", "Result": {"done": True}, "Next": "Check"},
            "Done": {"Type": "Succeed"},
        },
    }
    result = await run(definition, {"done": False})
    assert (result.status, result.output) == ("SUCCEEDED", {"done": True})
    assert [e.state for e in result.history] == ["Check", "More", "Check", "Done"]
