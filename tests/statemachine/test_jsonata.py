"""JSONata states: QueryLanguage, Arguments, Output, Assign, Condition, Items, $states.

Sources: the AWS developer guide pages "Transforming data with JSONata in Step
Functions" (transforming-data.md: the "{% %}" syntax, Arguments and Output replacing the
five JSONPath fields, the JSONPath-to-JSONata conversion sample) and "Passing data
between states with variables" (the reserved $states variable: input, result,
errorOutput, context), and AWS-recorded executions in shared/asl-cases (group
"jsonata").
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.statemachine.conftest import FakeClock, Script, fails, failure_of, machine, output_of

JSONATA = {"QueryLanguage": "JSONata"}


def jsonata(state: dict[str, Any], name: str = "S") -> dict[str, Any]:
    return machine(state, name=name, **JSONATA)


# --------------------------------------------------------------------------- query language


async def test_machine_level_query_language() -> None:
    # AWS guide, JSONata: the top-level QueryLanguage applies to every state.
    definition = jsonata({"Type": "Pass", "Output": {"total": "{% $sum($states.input.items) %}"}})
    assert await output_of(definition, {"items": [1, 2, 3.5]}) == {"total": 6.5}


async def test_state_level_query_language_overrides_jsonpath() -> None:
    # AWS-recorded (shared/asl-cases, base_query_language__query_language_field_override_
    # JSONATA_OVERRIDE) and AWS guide: a state may set QueryLanguage JSONata in a JSONPath
    # machine; the states mix freely.
    definition = {
        "QueryLanguage": "JSONPath",
        "StartAt": "Path",
        "States": {
            "Path": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "Ata"},
            "Ata": {
                "QueryLanguage": "JSONata",
                "Type": "Pass",
                "Output": "{% $states.input.n * 2 %}",
                "End": True,
            },
        },
    }
    assert await output_of(definition, {"n": 21}) == 42


async def test_strings_without_delimiters_are_literals() -> None:
    # AWS-recorded (shared/asl-cases, arguments__base_cases_BASE_LAMBDA_LITERALS): only a
    # whole "{% ... %}" string is an expression; "$states.input" and " {% x %} " are text.
    arguments = {
        "not_jsonata": " {% states.input %} ",
        "varpath": "$states.input",
        "nested": [None, 0, 0.1, True, {"k": "$no.such.var.path"}],
    }
    call = Script(lambda payload: payload)
    definition = jsonata({"Type": "Task", "Resource": "t", "Arguments": arguments})
    assert await output_of(definition, {"x": 1}, resources={"t": call}) == arguments


async def test_aws_conversion_sample_jsonpath_and_jsonata_agree() -> None:
    # AWS guide, JSONata, the conversion sample: the JSONPath Parameters and the JSONata
    # Arguments build the same payload.
    jsonpath_call, jsonata_call = Script("ok"), Script("ok")
    common = {"customerName": "Ana"}
    jsonpath_machine = {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": common, "Next": "Call"},
            "Call": {
                "Type": "Task",
                "Resource": "t",
                "Parameters": {
                    "static": "Hello",
                    "title.$": "$.title",
                    "name.$": "$customerName",
                    "not-evaluated": "$customerName",
                },
                "End": True,
            },
        },
    }
    jsonata_machine = {
        "QueryLanguage": "JSONata",
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": common, "Next": "Call"},
            "Call": {
                "Type": "Task",
                "Resource": "t",
                "Arguments": {
                    "static": "Hello",
                    "title": "{% $states.input.title %}",
                    "name": "{% $customerName %}",
                    "not-evaluated": "$customerName",
                },
                "End": True,
            },
        },
    }
    await output_of(jsonpath_machine, {"title": "Dr"}, resources={"t": jsonpath_call})
    await output_of(jsonata_machine, {"title": "Dr"}, resources={"t": jsonata_call})
    expected = {"static": "Hello", "title": "Dr", "name": "Ana", "not-evaluated": "$customerName"}
    assert jsonpath_call.calls == jsonata_call.calls == [expected]


# --------------------------------------------------------------------------- Arguments, Output


async def test_task_without_arguments_gets_the_state_input() -> None:
    # AWS guide, JSONata: without Arguments a Task's input is $states.input.
    call = Script("done")
    assert (
        await output_of(jsonata({"Type": "Task", "Resource": "t"}), {"a": 1}, resources={"t": call})
        == "done"
    )
    assert call.calls == [{"a": 1}]


async def test_aws_recorded_arguments_output_and_states_result() -> None:
    # AWS-recorded (shared/asl-cases, output__base_lambda_BASE_LAMBDA): Arguments build the
    # payload from $states.input and variables; Output reads $states.input and
    # $states.result.
    definition = {
        "StartAt": "Init",
        "States": {
            "Init": {
                "Type": "Pass",
                "Assign": {"var_input_value.$": "$.input_value", "var_constant_1": 1},
                "Next": "State0",
            },
            "State0": {
                "QueryLanguage": "JSONata",
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:111111111111:function:id_function",
                "Arguments": {
                    "ja_states_input": "{% $states.input %}",
                    "ja_var_access": "{% $var_input_value %}",
                    "ja_expr": "{% $sum($states.input.input_values) + $var_constant_1 %}",
                },
                "Output": {
                    "ja_var_access": "{% $var_input_value %}",
                    "ja_expr": "{% $sum($states.input.input_values) + $var_constant_1 %}",
                    "ja_states_input": "{% $states.input %}",
                    "ja_states_result": "{% $states.result %}",
                    "ja_states_result_access": "{% $states.result.ja_expr %}",
                },
                "End": True,
            },
        },
    }
    data = {"input_value": "string literal", "input_values": [1, 2, 3]}
    output = await output_of(definition, data, resources={"id_function": lambda event: event})
    assert output == {
        "ja_var_access": "string literal",
        "ja_expr": 7,
        "ja_states_input": data,
        "ja_states_result": {
            "ja_states_input": data,
            "ja_var_access": "string literal",
            "ja_expr": 7,
        },
        "ja_states_result_access": 7,
    }


@pytest.mark.parametrize("output", [0, [], "plain", None, {"k": [1, "{% 1 + 1 %}"]}])
async def test_output_may_be_any_json_value(output: Any) -> None:
    # AWS-recorded (shared/asl-cases, output__base_output_any_non_dict_*): Output 0 and []
    # are returned as they are; expressions inside objects and arrays are evaluated.
    expected = {"k": [1, 2]} if isinstance(output, dict) else output
    assert await output_of(jsonata({"Type": "Pass", "Output": output}), {"in": 1}) == expected


async def test_pass_without_output_outputs_its_input() -> None:
    # AWS guide, JSONata: without Output a Pass state outputs its input.
    assert await output_of(jsonata({"Type": "Pass"}), {"in": [1]}) == {"in": [1]}


async def test_task_without_output_outputs_its_result() -> None:
    # AWS guide, JSONata: without Output a Task outputs $states.result.
    definition = jsonata(
        {"Type": "Task", "Resource": "t", "Arguments": {"v": "{% $states.input.v %}"}}
    )
    assert await output_of(definition, {"v": 3}, resources={"t": lambda p: p["v"] + 1}) == 4


async def test_states_input_is_the_original_state_input() -> None:
    # AWS guide, variables, $states: "$states.input always refers to the original state
    # input", also in Output after the task ran on Arguments.
    definition = jsonata(
        {
            "Type": "Task",
            "Resource": "t",
            "Arguments": {"only": "part"},
            "Output": {"was": "{% $states.input %}", "got": "{% $states.result %}"},
        }
    )
    output = await output_of(definition, {"full": True}, resources={"t": lambda p: p["only"]})
    assert output == {"was": {"full": True}, "got": "part"}


async def test_states_context() -> None:
    # AWS guide, variables, $states.context: the context object, as "$$" in JSONPath.
    definition = jsonata(
        {
            "Type": "Pass",
            "Output": {
                "state": "{% $states.context.State.Name %}",
                "input": "{% $states.context.Execution.Input %}",
            },
        },
        name="Ctx",
    )
    assert await output_of(definition, {"a": "x"}) == {"state": "Ctx", "input": {"a": "x"}}


async def test_numbers_come_back_as_json_numbers() -> None:
    # AWS guide, JSONata: expression results are JSON values (3, not 3.0).
    definition = jsonata(
        {"Type": "Pass", "Output": ["{% 1.5 + 1.5 %}", "{% 7 / 2 %}", "{% 2 * 21 %}"]}
    )
    output = await output_of(definition, {})
    assert output == [3, 3.5, 42]
    assert isinstance(output[0], int)


# --------------------------------------------------------------------------- Assign


async def test_assign_with_expressions_and_later_reference() -> None:
    # AWS guide, variables: JSONata Assign values are expressions; "$name" reads them.
    definition = {
        **JSONATA,
        "StartAt": "Store",
        "States": {
            "Store": {
                "Type": "Pass",
                "Assign": {"x": "{% $states.input.v %}", "fixed": 2},
                "Next": "Use",
            },
            "Use": {"Type": "Pass", "Output": "{% $x * $fixed %}", "End": True},
        },
    }
    assert await output_of(definition, {"v": 21}) == 42


async def test_assign_reads_the_result_and_output_the_old_variables() -> None:
    # AWS-recorded (shared/asl-cases, mixed_query_language__task_dataflow_to_state): Assign
    # sees $states.result; Arguments and Output see the variables from state entry.
    definition = {
        "StartAt": "StateJsonPath",
        "States": {
            "StateJsonPath": {
                "Type": "Pass",
                "Result": {"riddle": "What is the answer to life, the universe, and everything?"},
                "Assign": {"answer": 42},
                "ResultPath": "$.enigma.mystery",
                "Next": "StateJsonata",
            },
            "StateJsonata": {
                "QueryLanguage": "JSONata",
                "Type": "Task",
                "Resource": "t",
                "Arguments": {
                    "theQuestion": "{% $states.input.enigma.mystery.riddle %}",
                    "theAnswer": "{% $answer %}",
                },
                "Assign": {"answer": "<omitted>", "message": "{% $states.result %}"},
                "Output": {"result": "{% $states.result %}", "answer": "{% $answer %}"},
                "End": True,
            },
        },
    }
    output = await output_of(definition, {}, resources={"t": lambda payload: payload})
    assert output == {
        "result": {
            "theQuestion": "What is the answer to life, the universe, and everything?",
            "theAnswer": 42,
        },
        "answer": 42,
    }


# --------------------------------------------------------------------------- Choice


def jsonata_choice(condition: Any, **rule: Any) -> dict[str, Any]:
    return {
        **JSONATA,
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Condition": condition, "Next": "Yes", **rule}],
                "Default": "No",
            },
            "Yes": {"Type": "Pass", "Output": "yes", "End": True},
            "No": {"Type": "Pass", "Output": "no", "End": True},
        },
    }


async def test_choice_condition() -> None:
    # AWS guide, JSONata Choice rules: "Condition" is a JSONata expression.
    definition = jsonata_choice(
        "{% $states.input.type = 'Private' and $states.input.value >= 20 %}"
    )
    assert await output_of(definition, {"type": "Private", "value": 22}) == "yes"
    assert await output_of(definition, {"type": "Public", "value": 22}) == "no"


async def test_choice_constant_condition() -> None:
    # AWS-recorded (shared/asl-cases, base_scenarios__choice_condition_constant_jsonata).
    assert await output_of(jsonata_choice(True), {}) == "yes"
    assert await output_of(jsonata_choice(False), {}) == "no"


async def test_choice_rule_output_and_assign() -> None:
    # AWS guide, JSONata Choice rules: a rule may carry its own Output and Assign.
    definition = jsonata_choice(
        "{% $states.input.n > 1 %}", Output={"n": "{% $states.input.n %}"}, Assign={"picked": "yes"}
    )
    definition["States"]["Yes"]["Output"] = {
        "input": "{% $states.input %}",
        "picked": "{% $picked %}",
    }
    assert await output_of(definition, {"n": 5}) == {"input": {"n": 5}, "picked": "yes"}


async def test_non_boolean_condition_is_a_query_evaluation_error() -> None:
    # AWS guide, "Error names": States.QueryEvaluationError for a JSONata result of the wrong type.
    error, cause = await failure_of(jsonata_choice("{% 'yes' %}"), {})
    assert error == "States.QueryEvaluationError"
    assert cause == (
        "An error occurred while executing the state 'C' (entered at the event id #2). The "
        "JSONata expression ''yes'' specified for the field 'Condition' returned an unexpected "
        "result type. Expected 'boolean', but was 'string' for value: \"yes\""
    )


# --------------------------------------------------------------------------- Map


def jsonata_map(**fields: Any) -> dict[str, Any]:
    processor = {"StartAt": "Process", "States": {"Process": {"Type": "Pass", "End": True}}}
    return jsonata({"Type": "Map", "ItemProcessor": processor, **fields})


async def test_map_items_expression() -> None:
    # AWS-recorded (shared/asl-cases, base_evaluate_expressions__base_map_from_input_ITEMS).
    definition = jsonata_map(Items="{% $states.input.input_value %}", MaxConcurrency=1)
    assert await output_of(definition, {"input_value": [1, 2, 3]}) == [1, 2, 3]


async def test_map_items_array_with_expressions() -> None:
    # AWS-recorded (shared/asl-cases, base_evaluate_expressions__base_map_ITEMS).
    definition = jsonata_map(Items=[1, '{% $number("2") %}', 3], MaxConcurrency=1)
    assert await output_of(definition, {}) == [1, 2, 3]


async def test_map_defaults_to_the_state_input() -> None:
    # AWS guide, JSONata Map: without Items the state input is the array.
    assert await output_of(jsonata_map(), ["a", "b"]) == ["a", "b"]


async def test_map_items_must_be_an_array() -> None:
    # AWS guide, JSONata Map: Items must evaluate to an array (States.QueryEvaluationError).
    error, cause = await failure_of(jsonata_map(Items="{% $states.input.v %}"), {"v": {"a": 1}})
    assert error == "States.QueryEvaluationError"
    assert cause is not None
    assert "Expected 'array', but was 'object'" in cause


async def test_map_item_selector_with_the_map_context() -> None:
    # AWS-recorded (shared/asl-cases, base_scenarios__map_state_item_selector_MAP_STATE_
    # ITEM_SELECTOR_JSONATA) and AWS guide: $states.context.Map.Item.{Index,Value}.
    definition = jsonata_map(
        Items="{% $states.input.items %}",
        ItemSelector={
            "index": "{% $states.context.Map.Item.Index %}",
            "value": "{% $states.context.Map.Item.Value %}",
            "tag": "{% $states.input.tag %}",
        },
    )
    assert await output_of(definition, {"items": ["a", "b"], "tag": "t"}) == [
        {"index": 0, "value": "a", "tag": "t"},
        {"index": 1, "value": "b", "tag": "t"},
    ]


# --------------------------------------------------------------------------- Catch, Fail, Wait


async def test_catch_output_with_error_output_and_input() -> None:
    # AWS-recorded (shared/asl-cases, error_output__task_catch_error_output_TASK_CATCH_
    # ERROR_OUTPUT_TO_JSONPATH): Catch Output reads $states.input and $states.errorOutput.
    definition = {
        "StartAt": "Task",
        "States": {
            "Task": {
                "Type": "Task",
                "QueryLanguage": "JSONata",
                "Resource": "t",
                "Arguments": {"foo": "foobar"},
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Output": {
                            "stateInput": "{% $states.input %}",
                            "stateError": "{% $states.errorOutput %}",
                        },
                        "Next": "Fallback",
                    }
                ],
                "Output": {
                    "stateInput": "{% $states.input %}",
                    "stateResult": "{% $states.result %}",
                },
                "Next": "Finish",
            },
            "Fallback": {"Type": "Pass", "End": True},
            "Finish": {"Type": "Pass", "End": True},
        },
    }
    output = await output_of(
        definition,
        {"inputData": "dummy"},
        resources={"t": Script(fails("Exception", "Some exception was raised."))},
    )
    assert output == {
        "stateInput": {"inputData": "dummy"},
        "stateError": {"Error": "Exception", "Cause": "Some exception was raised."},
    }


async def test_catch_without_output_passes_the_error_output() -> None:
    # AWS guide, JSONata Catch: without Output the next state gets $states.errorOutput.
    definition = {
        **JSONATA,
        "StartAt": "Task",
        "States": {
            "Task": {
                "Type": "Task",
                "Resource": "t",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Fallback"}],
                "End": True,
            },
            "Fallback": {"Type": "Pass", "End": True},
        },
    }
    output = await output_of(definition, {"in": 1}, resources={"t": Script(fails("E", "c"))})
    assert output == {"Error": "E", "Cause": "c"}


async def test_catch_assign_reads_the_error_output() -> None:
    # AWS-recorded (shared/asl-cases, error_output__parallel_catch_error_PARALLEL_CATCH_
    # ERROR_VARIABLE_SAMPLING): a catcher's Assign may store $states.errorOutput.
    definition = {
        **JSONATA,
        "StartAt": "Task",
        "States": {
            "Task": {
                "Type": "Task",
                "Resource": "t",
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Assign": {"errorVar": "{% $states.errorOutput %}"},
                        "Next": "Fallback",
                    }
                ],
                "End": True,
            },
            "Fallback": {"Type": "Pass", "Output": {"error": "{% $errorVar %}"}, "End": True},
        },
    }
    output = await output_of(definition, {}, resources={"t": Script(fails("Exception", "why"))})
    assert output == {"error": {"Error": "Exception", "Cause": "why"}}


async def test_fail_error_and_cause_expressions() -> None:
    # AWS-recorded (shared/asl-cases, base_scenarios__fail_error_jsonata and
    # base_scenarios__fail_cause_jsonata).
    definition = jsonata(
        {
            "Type": "Fail",
            "Error": "{% $states.input.error %}",
            "Cause": "{% $states.input.cause %}",
        },
        name="FailState",
    )
    assert await failure_of(
        definition, {"error": "Exception", "cause": "This failed to due an Exception."}
    ) == (
        "Exception",
        "This failed to due an Exception.",
    )


async def test_wait_seconds_expression() -> None:
    # AWS guide, JSONata: Wait Seconds may be an expression.
    clock = FakeClock()
    definition = jsonata({"Type": "Wait", "Seconds": "{% $states.input.delay * 2 %}"})
    assert await output_of(definition, {"delay": 5}, clock=clock) == {"delay": 5}
    assert clock.sleeps == [10.0]


async def test_wait_timestamp_expression_that_is_not_a_timestamp() -> None:
    # AWS-recorded (shared/asl-cases, base_scenarios__wait_timestamp_jsonata_NO_Z).
    definition = jsonata(
        {"Type": "Wait", "Timestamp": "{% $states.input.TimestampValue %}"}, name="WaitState"
    )
    error, cause = await failure_of(definition, {"TimestampValue": "2016-12-05T21:29:29"})
    assert error == "States.QueryEvaluationError"
    assert cause == (
        "An error occurred while executing the state 'WaitState' (entered at the event id #2). "
        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format "
        "string: 2016-12-05T21:29:29"
    )


async def test_parallel_arguments_feed_every_branch() -> None:
    # AWS guide, JSONata: Parallel Arguments build the branches' input; Output reads $states.result.
    definition = {
        **JSONATA,
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Arguments": {"n": "{% $states.input.n %}"},
                "Branches": [
                    {
                        "StartAt": "A",
                        "States": {
                            "A": {
                                "Type": "Pass",
                                "Output": "{% $states.input.n + 1 %}",
                                "End": True,
                            }
                        },
                    },
                    {
                        "StartAt": "B",
                        "States": {
                            "B": {
                                "Type": "Pass",
                                "Output": "{% $states.input.n * 10 %}",
                                "End": True,
                            }
                        },
                    },
                ],
                "Output": {"sum": "{% $sum($states.result) %}"},
                "End": True,
            }
        },
    }
    assert await output_of(definition, {"n": 2, "other": True}) == {"sum": 23}


# --------------------------------------------------------------------------- evaluation errors


async def test_expression_error_is_a_query_evaluation_error() -> None:
    # AWS guide, "Error names", States.QueryEvaluationError: a JSONata expression that throws.
    error, cause = await failure_of(jsonata({"Type": "Pass", "Output": "{% 'a' + 1 %}"}), {})
    assert error == "States.QueryEvaluationError"
    assert cause is not None
    assert cause.startswith(
        "An error occurred while executing the state 'S' (entered at the event id #2). The "
        "JSONata expression ''a' + 1' specified for the field 'Output' threw an error during "
        "evaluation."
    )


async def test_query_evaluation_error_can_be_caught() -> None:
    # AWS guide, "Error names": States.QueryEvaluationError is catchable (unlike States.Runtime).
    definition = {
        **JSONATA,
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "t",
                "Output": "{% 'a' + 1 %}",
                "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "H"}],
                "End": True,
            },
            "H": {"Type": "Pass", "Output": "{% $states.input.Error %}", "End": True},
        },
    }
    assert (
        await output_of(definition, {}, resources={"t": lambda _: 1})
        == "States.QueryEvaluationError"
    )


async def test_expression_returning_nothing_fails_the_state() -> None:
    # AWS behaviour reproduced against the service in floci-io/floci#2665: a JSONata
    # expression that returns nothing (undefined) fails the state with
    # States.QueryEvaluationError "... specified for the field 'Output/v' returned nothing
    # (undefined)." instead of yielding null or dropping the key.
    definition = jsonata({"Type": "Pass", "Output": {"v": "{% $states.input.missing %}"}}, name="E")
    error, cause = await failure_of(definition, {"present": 1})
    assert error == "States.QueryEvaluationError"
    assert cause == (
        "An error occurred while executing the state 'E' (entered at the event id #2). The "
        "JSONata expression '$states.input.missing' specified for the field 'Output/v' "
        "returned nothing (undefined)."
    )
