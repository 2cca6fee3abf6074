"""Workflow variables: Assign, "$name" references and their scopes.

Sources: the AWS developer guide page "Passing data between states with variables"
(workflow-variables.md: Assign on Pass, Task, Map, Parallel, Choice and Wait; "$name"
references; assignments evaluated together with the values at state entry; the outer
scope of the top-level states and the inner scopes of Map and Parallel) and
AWS-recorded executions in shared/asl-cases (group "variables").
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from statefleet import DefinitionError
from tests.statemachine.conftest import Script, fails, machine, output_of, run


def chain(*states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """States run one after the other, the last one ending the machine."""
    spec: dict[str, Any] = {}
    for (name, state), following in zip(states, [*states[1:], None], strict=True):
        state = dict(state)
        if following is None:
            state["End"] = True
        else:
            state["Next"] = following[0]
        spec[name] = state
    return {"StartAt": states[0][0], "States": spec}


async def test_assign_then_reference_later() -> None:
    # AWS guide, variables: "Using workflow variables, you can store data in a step and
    # retrieve that data in future steps" — step 1 stores, step 5 reads.
    definition = chain(
        (
            "Step1",
            {"Type": "Pass", "Assign": {"productName": "product1", "count": 42, "available": True}},
        ),
        ("Step2", {"Type": "Pass", "Result": "unrelated"}),
        ("Step3", {"Type": "Pass", "Result": {"other": 1}}),
        ("Step4", {"Type": "Pass"}),
        (
            "Step5",
            {
                "Type": "Pass",
                "Parameters": {"name.$": "$productName", "count.$": "$count", "ok.$": "$available"},
            },
        ),
    )
    assert await output_of(definition, {}) == {"name": "product1", "count": 42, "ok": True}


async def test_assign_does_not_change_the_state_output() -> None:
    # AWS-recorded (shared/asl-cases, assign_reference_variables__assign_from_value_
    # BASE_ASSIGN_FROM_RESULT): {"theAnswer.$": "$.answer"} stores from the result and the
    # output stays {"answer": 42}.
    definition = machine(
        {"Type": "Pass", "Result": {"answer": 42}, "Assign": {"theAnswer.$": "$.answer"}}
    )
    assert await output_of(definition, {}) == {"answer": 42}


async def test_assign_from_the_result() -> None:
    # AWS guide, variables: in JSONPath states "$" in Assign is the state's result.
    definition = chain(
        (
            "Store",
            {"Type": "Pass", "Result": {"answer": 42}, "Assign": {"theAnswer.$": "$.answer"}},
        ),
        ("Read", {"Type": "Pass", "Parameters": {"a.$": "$theAnswer"}}),
    )
    assert await output_of(definition, {}) == {"a": 42}


async def test_variable_paths_reach_into_values() -> None:
    # AWS guide, variables: "$name" starts a path like "$"; fields and indexes follow.
    definition = chain(
        (
            "Store",
            {
                "Type": "Pass",
                "Assign": {"order": {"items": [{"sku": "A-1"}, {"sku": "B-2"}], "id": 9}},
            },
        ),
        (
            "Read",
            {
                "Type": "Pass",
                "Parameters": {"second.$": "$order.items[1].sku", "id.$": "$order.id"},
            },
        ),
    )
    assert await output_of(definition, {}) == {"second": "B-2", "id": 9}


async def test_assignments_see_the_values_at_state_entry() -> None:
    # AWS guide, variables, "Evaluation of assignments": all of a state's assignments are
    # evaluated with the values the variables had when the state was entered, then set.
    definition = chain(
        ("First", {"Type": "Pass", "Assign": {"x": 1}}),
        ("Swap", {"Type": "Pass", "Assign": {"x": 2, "previous.$": "$x"}}),
        ("Read", {"Type": "Pass", "Parameters": {"x.$": "$x", "previous.$": "$previous"}}),
    )
    assert await output_of(definition, {}) == {"x": 2, "previous": 1}


async def test_aws_evaluation_order_example() -> None:
    # AWS-recorded (shared/asl-cases, assign_reference_variables__state_assign_evaluation_
    # order_BASE_EVALUATION_ORDER_PASS_STATE): InputPath "$answer" and OutputPath "$answer"
    # both read 42 though the same state assigns "answer" a new value.
    definition = chain(
        (
            "State0",
            {
                "Type": "Pass",
                "Result": {
                    "theQuestion": "What is the answer to life the universe and everything?"
                },
                "Assign": {"question.$": "$.theQuestion", "answer": 42},
            },
        ),
        (
            "State1",
            {
                "Type": "Pass",
                "InputPath": "$answer",
                "ResultPath": "$.theAnswer",
                "OutputPath": "$answer",
                "Assign": {"answer": "<omitted>"},
            },
        ),
    )
    assert await output_of(definition, {}) == 42


async def test_assign_in_a_task_reads_the_selected_result() -> None:
    # AWS guide, variables: in a Task, Assign is evaluated on the result (after
    # ResultSelector), before ResultPath and OutputPath shape the output.
    definition = chain(
        (
            "Call",
            {
                "Type": "Task",
                "Resource": "t",
                "ResultSelector": {"price.$": "$.Payload.current_price"},
                "Assign": {"currentPrice.$": "$.price"},
                "ResultPath": None,
            },
        ),
        ("Read", {"Type": "Pass", "Parameters": {"input.$": "$", "price.$": "$currentPrice"}}),
    )
    resources = {"t": lambda _: {"Payload": {"current_price": 9.5}}}
    assert await output_of(definition, {"in": 1}, resources=resources) == {
        "input": {"in": 1},
        "price": 9.5,
    }


async def test_variables_in_task_parameters() -> None:
    # AWS-recorded (shared/asl-cases, assign_reference_variables__variables_in_lambda_task_
    # BASE_ASSIGN_FROM_LAMBDA_TASK_RESULT): "Payload.$": "$inputData" in a Task.
    call = Script(lambda payload: payload)
    definition = chain(
        ("Pass", {"Type": "Pass", "Assign": {"inputData": {"foo": "oof", "bar": "rab"}}}),
        ("Task", {"Type": "Task", "Resource": "t", "Parameters": {"Payload.$": "$inputData"}}),
    )
    assert await output_of(definition, {}, resources={"t": call}) == {
        "Payload": {"foo": "oof", "bar": "rab"}
    }


async def test_assign_in_wait_and_choice() -> None:
    # AWS guide, variables: "The following state types support Assign: Pass, Task, Map,
    # Parallel, Choice, Wait." A Choice rule may carry its own Assign.
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Seconds": 0, "Assign": {"waited": True}, "Next": "Choose"},
            "Choose": {
                "Type": "Choice",
                "Choices": [
                    {
                        "Variable": "$.n",
                        "NumericGreaterThan": 10,
                        "Next": "Read",
                        "Assign": {"size": "big"},
                    }
                ],
                "Default": "Read",
                "Assign": {"size": "small"},
            },
            "Read": {
                "Type": "Pass",
                "Parameters": {"waited.$": "$waited", "size.$": "$size"},
                "End": True,
            },
        },
    }
    assert await output_of(definition, {"n": 11}) == {"waited": True, "size": "big"}
    assert await output_of(definition, {"n": 1}) == {"waited": True, "size": "small"}


async def test_assign_in_catch_reads_the_error_output() -> None:
    # AWS guide, variables: a catcher's Assign runs on the error output ({"Error", "Cause"}).
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "t",
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "ResultPath": None,
                        "Assign": {"lastError.$": "$.Error", "why.$": "$.Cause"},
                        "Next": "Report",
                    }
                ],
                "End": True,
            },
            "Report": {
                "Type": "Pass",
                "Parameters": {"error.$": "$lastError", "why.$": "$why", "input.$": "$"},
                "End": True,
            },
        },
    }
    output = await output_of(definition, {"in": 1}, resources={"t": Script(fails("Boom", "bad"))})
    assert output == {"error": "Boom", "why": "bad", "input": {"in": 1}}


async def test_a_caught_state_applies_the_catcher_assign_not_its_own() -> None:
    # AWS guide, variables: a state's Assign takes effect when the state succeeds; when a
    # catcher handles its error, the catcher's Assign is applied instead.
    definition = {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": {"x": "before", "y": "before"}, "Next": "Call"},
            "Call": {
                "Type": "Task",
                "Resource": "t",
                "Assign": {"x": "state"},
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "Assign": {"y": "catcher"}, "Next": "Read"}
                ],
                "Next": "Read",
            },
            "Read": {"Type": "Pass", "Parameters": {"x.$": "$x", "y.$": "$y"}, "End": True},
        },
    }
    failing = {"t": Script(fails("E"))}
    assert await output_of(definition, {}, resources=failing) == {"x": "before", "y": "catcher"}
    working = {"t": Script("ok")}
    assert await output_of(definition, {}, resources=working) == {"x": "state", "y": "before"}


async def test_variables_in_items_path() -> None:
    # AWS-recorded (shared/asl-cases, assign_reference_variables__reference_in_map_state_
    # MAP_STATE_REFERENCE_IN_ITEMS_PATH): ItemsPath "$PokemonList" and "$Question" inside.
    definition = chain(
        (
            "Start",
            {
                "Type": "Pass",
                "Assign": {
                    "Question": "Who's that Pokemon?",
                    "PokemonList": ["Charizard", "Pikachu"],
                },
            },
        ),
        (
            "MapIterateState",
            {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemsPath": "$PokemonList",
                "ItemProcessor": {
                    "StartAt": "Inner",
                    "States": {
                        "Inner": {
                            "Type": "Pass",
                            "Parameters": {"Question.$": "$Question", "Answer.$": "$"},
                            "End": True,
                        }
                    },
                },
            },
        ),
    )
    assert await output_of(definition, {}) == [
        {"Question": "Who's that Pokemon?", "Answer": "Charizard"},
        {"Question": "Who's that Pokemon?", "Answer": "Pikachu"},
    ]


async def outcome(definition: dict[str, Any]) -> Any:
    """The run's result, or the DefinitionError raised while building the machine."""
    try:
        return await run(definition, {})
    except DefinitionError as exc:
        return exc


def assert_invisible(result: Any) -> None:
    """An inner-scope variable read outside: rejected up front, or a run-time failure."""
    if isinstance(result, DefinitionError):
        assert "inner" in str(result)
        return
    assert result.status == "FAILED", result.output
    assert result.error == "States.Runtime"
    assert "$inner" in (result.cause or "")


PARALLEL_ASSIGNING_INNER = {
    "Type": "Parallel",
    "Branches": [
        {
            "StartAt": "B",
            "States": {
                "B": {
                    "Type": "Pass",
                    "Assign": {"inner": "i"},
                    "Parameters": {"seen.$": "$outer"},
                    "End": True,
                }
            },
        }
    ],
}

MAP_ASSIGNING_INNER = {
    "Type": "Map",
    "ItemsPath": "$items",
    "MaxConcurrency": 1,
    "ItemProcessor": {
        "StartAt": "Inner",
        "States": {
            "Inner": {
                "Type": "Pass",
                "Assign": {"inner.$": "$x"},
                "Parameters": {"x.$": "$x"},
                "End": True,
            }
        },
    },
}


async def test_parallel_branches_read_outer_variables() -> None:
    # AWS guide, variables, "Variable scope": a Parallel branch is an inner scope that can
    # read the variables of the outer scope.
    definition = chain(
        ("Outer", {"Type": "Pass", "Assign": {"outer": "o"}}),
        ("P", PARALLEL_ASSIGNING_INNER),
        ("After", {"Type": "Pass", "Parameters": {"outer.$": "$outer", "branch.$": "$"}}),
    )
    assert await output_of(definition, {}) == {"outer": "o", "branch": [{"seen": "o"}]}


async def test_parallel_branch_assignments_are_invisible_outside() -> None:
    # AWS guide, variables, "Variable scope": what an inner scope assigns is not visible
    # to the outer scope.
    definition = chain(
        ("Outer", {"Type": "Pass", "Assign": {"outer": "o"}}),
        ("P", PARALLEL_ASSIGNING_INNER),
        ("After", {"Type": "Pass", "Parameters": {"leak.$": "$inner"}}),
    )
    assert_invisible(await outcome(definition))


async def test_map_iterations_read_outer_variables() -> None:
    # AWS-recorded (shared/asl-cases, assign_base__base_cases_BASE_SCOPE_MAP): iterations
    # read "$x" from the outer scope; the outer "$x" is unchanged afterwards.
    definition = chain(
        ("State0", {"Type": "Pass", "Assign": {"x": 42, "items": [1, 2, 3]}}),
        ("State1", MAP_ASSIGNING_INNER),
        ("State2", {"Type": "Pass", "Parameters": {"final.$": "$x", "out.$": "$"}}),
    )
    assert await output_of(definition, {}) == {"final": 42, "out": [{"x": 42}] * 3}


async def test_map_iteration_assignments_are_invisible_outside() -> None:
    # AWS guide, variables, "Variable scope": an iteration's assignments stay in its scope.
    definition = chain(
        ("State0", {"Type": "Pass", "Assign": {"x": 42, "items": [1, 2, 3]}}),
        ("State1", MAP_ASSIGNING_INNER),
        ("State2", {"Type": "Pass", "Parameters": {"leak.$": "$inner"}}),
    )
    assert_invisible(await outcome(definition))


async def test_map_iterations_do_not_share_their_scopes() -> None:
    # AWS guide, "Variable scope": each iteration of a Map runs in its own inner scope, so
    # concurrent iterations cannot see each other's assignments.
    async def yield_a_few_times(payload: Any) -> Any:
        for _ in range(3):
            await asyncio.sleep(0)
        return payload

    processor = {
        "StartAt": "Keep",
        "States": {
            "Keep": {"Type": "Pass", "Assign": {"mine.$": "$"}, "Next": "Work"},
            "Work": {"Type": "Task", "Resource": "work", "Next": "Report"},
            "Report": {
                "Type": "Pass",
                "Parameters": {"item.$": "$", "mine.$": "$mine"},
                "End": True,
            },
        },
    }
    definition = machine({"Type": "Map", "ItemProcessor": processor}, name="M")
    output = await output_of(definition, [1, 2, 3, 4], resources={"work": yield_a_few_times})
    assert output == [{"item": n, "mine": n} for n in [1, 2, 3, 4]]


async def test_assign_on_map_and_parallel_reads_their_result() -> None:
    # AWS guide, variables: Map and Parallel support Assign; "$" is their result array.
    definition = chain(
        (
            "P",
            {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "a", "End": True}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": "b", "End": True}}},
                ],
                "Assign": {"firstBranch.$": "$[0]"},
                "ResultPath": None,
            },
        ),
        (
            "M",
            {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "Assign": {"count.$": "States.ArrayLength($)"},
                "ResultPath": None,
            },
        ),
        ("Read", {"Type": "Pass", "Parameters": {"first.$": "$firstBranch", "count.$": "$count"}}),
    )
    assert await output_of(definition, {"items": [7, 8, 9]}) == {"first": "a", "count": 3}


async def test_assign_with_a_missing_path_is_a_runtime_error() -> None:
    # AWS guide, variables: Assign paths follow the JSONPath rules; selecting nothing is
    # States.Runtime.
    definition = machine({"Type": "Pass", "Assign": {"v.$": "$.missing"}})
    result = await run(definition, {})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert "$.missing" in (result.cause or "")


@pytest.mark.parametrize("value", [None, 0, "", [], {}, {"deep": [1, {"x": None}]}])
async def test_any_json_value_can_be_stored(value: Any) -> None:
    # AWS guide, variables: a variable holds any JSON value.
    definition = chain(
        ("Store", {"Type": "Pass", "Assign": {"v.$": "$.value"}}),
        ("Read", {"Type": "Pass", "Parameters": {"v.$": "$v"}}),
    )
    assert await output_of(definition, {"value": value}) == {"v": value}


async def test_variables_do_not_leak_between_executions() -> None:
    # AWS guide, variables: variables belong to one execution.
    from statefleet import StateMachine

    definition = {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.store", "BooleanEquals": True, "Next": "Store"}],
                "Default": "Read",
            },
            "Store": {"Type": "Pass", "Assign": {"v": "kept"}, "Next": "Read"},
            "Read": {"Type": "Pass", "Parameters": {"v.$": "$v"}, "End": True},
        },
    }
    sm = StateMachine.from_definition(definition)
    first = await sm.run({"store": True})
    assert first.output == {"v": "kept"}
    second = await sm.run({"store": False})
    assert (second.status, second.error) == ("FAILED", "States.Runtime")
