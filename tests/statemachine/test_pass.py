"""Pass state: input to output, an optional fixed Result, and the data-flow fields.

Sources: the ASL specification (states-language.net, "Pass State") and the AWS
developer guide page "Pass workflow state" (amazon-states-language-pass-state.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.statemachine.conftest import machine, output_of, run


async def test_pass_without_result_passes_its_input_through() -> None:
    # Spec, Pass State: "passes its input to its output, performing no work".
    data = {"a": 1, "b": [True, None, "x"]}
    assert await output_of(machine({"Type": "Pass"}), data) == data


async def test_aws_example_pass_injects_coords() -> None:
    # AWS guide, "Pass State Example": Result placed at ResultPath $.coords.
    definition = machine(
        {
            "Type": "Pass",
            "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
            "ResultPath": "$.coords",
        },
        name="No-op",
    )
    assert await output_of(definition, {"georefOf": "Home"}) == {
        "georefOf": "Home",
        "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
    }


async def test_aws_hello_world_pass() -> None:
    # AWS guide, "State machine structure": the Hello World Pass example.
    definition = {
        "Comment": "A Hello World example of the Amazon States Language using a Pass state",
        "StartAt": "HelloWorld",
        "States": {"HelloWorld": {"Type": "Pass", "Result": "Hello World!", "End": True}},
    }
    assert await output_of(definition, {"ignored": True}) == "Hello World!"


@pytest.mark.parametrize("result", [0, False, None, "", [], {}, 3.5, [1, {"a": None}]])
async def test_result_replaces_input_whatever_its_json_type(result: Any) -> None:
    # Spec, Pass State: Result "is treated as the output of a virtual task"; the default
    # ResultPath "$" replaces the whole input with it (falsy values included).
    assert await output_of(machine({"Type": "Pass", "Result": result}), {"in": 1}) == result


async def test_result_is_not_interpreted_as_a_template() -> None:
    # Spec, Pass State: Result is a fixed value; ".$" keys in it are left alone.
    result = {"literal.$": "$.in", "path": "$.in"}
    assert await output_of(machine({"Type": "Pass", "Result": result}), {"in": 1}) == result


async def test_parameters_shape_the_passed_input() -> None:
    # AWS guide, Pass state: "Parameters: create a collection of key-value pairs that
    # will be passed as input"; with no Result that is what the state outputs.
    definition = machine(
        {"Type": "Pass", "Parameters": {"static": "s", "picked.$": "$.deep.value"}}
    )
    assert await output_of(definition, {"deep": {"value": 7}}) == {"static": "s", "picked": 7}


async def test_result_wins_over_parameters() -> None:
    # Spec, Pass State: the Result is the virtual task's output regardless of its input.
    definition = machine({"Type": "Pass", "Parameters": {"p.$": "$.x"}, "Result": "fixed"})
    assert await output_of(definition, {"x": 1}) == "fixed"


async def test_pass_chain_follows_next_and_records_history() -> None:
    # Spec, "Transitions": each state names its Next; End: true ends the execution.
    definition = {
        "StartAt": "One",
        "States": {
            "One": {"Type": "Pass", "Result": 1, "ResultPath": "$.one", "Next": "Two"},
            "Two": {"Type": "Pass", "Result": 2, "ResultPath": "$.two", "Next": "Three"},
            "Three": {"Type": "Pass", "End": True},
        },
    }
    result = await run(definition, {})
    assert result.status == "SUCCEEDED"
    assert result.output == {"one": 1, "two": 2}
    assert [(e.sequence, e.state, e.type, e.status) for e in result.history] == [
        (1, "One", "Pass", "SUCCEEDED"),
        (2, "Two", "Pass", "SUCCEEDED"),
        (3, "Three", "Pass", "SUCCEEDED"),
    ]
    assert result.history[1].input == {"one": 1}
    assert result.history[1].output == {"one": 1, "two": 2}


async def test_state_input_is_not_mutated() -> None:
    # Spec, "Data": states pass JSON values along; placing a result builds a new value.
    data = {"nested": {"keep": True}}
    await output_of(machine({"Type": "Pass", "Result": 1, "ResultPath": "$.nested.added"}), data)
    assert data == {"nested": {"keep": True}}


async def test_history_off_records_nothing() -> None:
    # statefleet's run(history=False): the execution runs the same, without history.
    from statefleet import StateMachine

    sm = StateMachine.from_definition(machine({"Type": "Pass"}))
    result = await sm.run({"a": 1}, history=False)
    assert result.status == "SUCCEEDED"
    assert result.output == {"a": 1}
    assert result.history == []


@pytest.mark.parametrize(
    "text",
    [
        '{"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"v": 1}, "End": true}}}',
        "StartAt: P\nStates:\n  P:\n    Type: Pass\n    Result: {v: 1}\n    End: true\n",
    ],
    ids=["json", "yaml"],
)
async def test_definition_as_json_or_yaml_text(text: str) -> None:
    # Spec, "Structure of a State Machine": a JSON object (statefleet also reads YAML).
    assert await output_of(text, None) == {"v": 1}
