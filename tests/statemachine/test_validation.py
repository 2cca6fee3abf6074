"""Tests for statefleet.statemachine.validation: one test per rule, AWS's recorded cases, fuzz."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statefleet.errors import Problem
from statefleet.statemachine.validation import validate

LAMBDA = "arn:aws:lambda:us-east-1:111111111111:function:fn"
CASES = Path(__file__).resolve().parents[2].parent / "shared" / "asl-cases" / "cases"


# --------------------------------------------------------------------------- helpers


def machine(states: dict[str, Any], start: str | None = None, **top: Any) -> dict[str, Any]:
    return {"StartAt": start or next(iter(states)), "States": states, **top}


def task(**fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": LAMBDA}
    state.update(fields)
    if "Next" not in state and "End" not in state:
        state["End"] = True
    return state


def pass_(**fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Pass"}
    state.update(fields)
    if "Next" not in state and "End" not in state:
        state["End"] = True
    return state


def choice(*rules: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"Type": "Choice", "Choices": list(rules), **fields}


def single(state: dict[str, Any], **top: Any) -> dict[str, Any]:
    return machine({"S": state}, **top)


def inner(states: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"StartAt": "Inner", "States": states or {"Inner": pass_()}}


def assert_problem(document: Any, pointer: str, fragment: str) -> list[Problem]:
    problems = validate(document)
    found = [p for p in problems if p.pointer == pointer and fragment in p.message]
    listing = "\n".join(f"  {p}" for p in problems) or "  (none)"
    assert found, f"expected a problem at {pointer!r} containing {fragment!r}; got:\n{listing}"
    return problems


def assert_valid(document: Any) -> None:
    problems = validate(document)
    assert problems == [], "\n".join(str(p) for p in problems)


# --------------------------------------------------------------------------- valid documents


def test_minimal_definition_is_valid() -> None:
    assert_valid(single(pass_()))


def full_jsonpath_definition() -> dict[str, Any]:
    return {
        "Comment": "everything JSONPath",
        "Version": "1.0",
        "TimeoutSeconds": 300,
        "QueryLanguage": "JSONPath",
        "StartAt": "Init",
        "States": {
            "Init": pass_(
                Result={"x": 1},
                ResultPath="$.init",
                Parameters={"a.$": "$.a", "ctx.$": "$$.Execution.Id", "lit": [{"b.$": "$.b"}]},
                InputPath="$",
                OutputPath=None,
                Assign={"counter": 0, "seen.$": "$.seen", "_private": True},
                Next="Work",
            ),
            "Work": task(
                Parameters={"Payload.$": "$", "FunctionName": LAMBDA},
                ResultSelector={"body.$": "$.Payload", "v.$": "$counter"},
                ResultPath="$.work",
                TimeoutSeconds=60,
                HeartbeatSeconds=10,
                Credentials={"RoleArn": "arn:aws:iam::111111111111:role/r"},
                Retry=[
                    {
                        "ErrorEquals": ["States.Timeout", "Custom"],
                        "IntervalSeconds": 2,
                        "MaxAttempts": 0,
                        "BackoffRate": 1.5,
                        "MaxDelaySeconds": 5,
                        "JitterStrategy": "FULL",
                        "Comment": "first",
                    },
                    {"ErrorEquals": ["States.ALL"]},
                ],
                Catch=[
                    {"ErrorEquals": ["Custom"], "ResultPath": None, "Next": "Oops"},
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Oops"},
                ],
                Next="Decide",
            ),
            "Decide": choice(
                {"Variable": "$.n", "NumericGreaterThanEquals": 20, "Next": "Wait"},
                {
                    "And": [
                        {"Variable": "$.s", "IsPresent": True},
                        {"Not": {"Variable": "$.s", "StringMatches": "log-*.txt"}},
                    ],
                    "Next": "Fan",
                    "Comment": "composite",
                    "Assign": {"chosen": "fan"},
                },
                {"Variable": "$.t", "TimestampLessThanPath": "$.limit", "Next": "Oops"},
                Default="Done",
            ),
            "Wait": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Fan"},
            "Fan": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "B1", "States": {"B1": pass_()}},
                    {"StartAt": "B2", "States": {"B2": {"Type": "Succeed"}}},
                ],
                "ResultSelector": {"first.$": "$[0]"},
                "Next": "Each",
            },
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
                "MaxConcurrencyPath": "$.limit",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Handle",
                    "States": {"Handle": task()},
                },
                "ResultPath": "$.results",
                "Next": "Done",
            },
            "Oops": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
            "Done": {"Type": "Succeed", "OutputPath": "$.results"},
        },
    }


def test_full_jsonpath_definition_is_valid() -> None:
    assert_valid(full_jsonpath_definition())


def full_jsonata_definition() -> dict[str, Any]:
    return {
        "QueryLanguage": "JSONata",
        "StartAt": "Call",
        "States": {
            "Call": task(
                Arguments={"Payload": "{% $states.input %}", "FunctionName": LAMBDA},
                Output={"result": "{% $states.result.Payload %}"},
                Assign={"total": "{% $sum($states.input.values) %}"},
                TimeoutSeconds="{% $states.input.timeout %}",
                HeartbeatSeconds=5,
                Credentials={"RoleArn": "{% $states.input.role %}"},
                Catch=[
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Output": "{% $states.errorOutput %}",
                        "Assign": {"failed": True},
                        "Next": "Fail",
                    }
                ],
                Next="Check",
            ),
            "Check": choice(
                {"Condition": "{% $total > 10 %}", "Next": "Wait", "Output": {"big": True}},
                {"Condition": True, "Next": "Each"},
                Default="Fail",
            ),
            "Wait": {"Type": "Wait", "Timestamp": "2016-03-14T01:59:00+01:00", "Next": "Each"},
            "Each": {
                "Type": "Map",
                "Items": [1, "{% $total %}", 3],
                "ItemSelector": "{% {'value': $states.context.Map.Item.Value} %}",
                "MaxConcurrency": "{% 2 %}",
                "ToleratedFailurePercentage": 12.5,
                "ToleratedFailureCount": 1,
                "ItemProcessor": {"StartAt": "Handle", "States": {"Handle": pass_()}},
                "Next": "Both",
            },
            "Both": {
                "Type": "Parallel",
                "Arguments": {"x": "{% $states.input %}"},
                "Branches": [{"StartAt": "P", "States": {"P": pass_(Output=0)}}],
                "Next": "Done",
            },
            "Fail": {"Type": "Fail", "Error": "{% 'E' & $total %}", "Cause": "plain text"},
            "Done": {"Type": "Succeed", "Output": "{% $states.input %}"},
        },
    }


def test_full_jsonata_definition_is_valid() -> None:
    assert_valid(full_jsonata_definition())


def test_distributed_map_is_valid() -> None:
    document = single(
        {
            "Type": "Map",
            "Label": "Big",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                "Parameters": {"Bucket.$": "$.bucket", "Key": "items.csv"},
            },
            "ItemBatcher": {"MaxItemsPerBatch": 10, "BatchInput": {"run.$": "$$.Execution.Id"}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {}},
            "ToleratedFailureCountPath": "$.tolerated",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "Inner",
                "States": {"Inner": pass_()},
            },
            "End": True,
        }
    )
    assert_valid(document)


def test_legacy_iterator_and_parameters_are_valid() -> None:
    document = single(
        {
            "Type": "Map",
            "Parameters": {"item.$": "$$.Map.Item.Value"},
            "Iterator": inner(),
            "MaxConcurrency": 0,
            "End": True,
        }
    )
    assert_valid(document)


def test_jsonata_state_inside_jsonpath_machine_is_valid() -> None:
    document = machine(
        {
            "A": pass_(Parameters={"x.$": "$"}, Next="B"),
            "B": pass_(QueryLanguage="JSONata", Output="{% $states.input.x %}"),
        }
    )
    assert_valid(document)


# --------------------------------------------------------------------------- top level


def test_document_must_be_an_object() -> None:
    assert_problem("not a definition", "", "must be a JSON object")
    assert_problem([1, 2], "", "got an array")


def test_start_at_is_required() -> None:
    assert_problem({"States": {"A": pass_()}}, "", 'needs "StartAt"')


def test_states_is_required() -> None:
    assert_problem({"StartAt": "A"}, "", 'needs "States"')


def test_states_must_not_be_empty() -> None:
    assert_problem({"StartAt": "A", "States": {}}, "/States", "at least one state")


def test_states_must_be_an_object() -> None:
    assert_problem({"StartAt": "A", "States": [pass_()]}, "/States", "must be an object")


def test_start_at_must_name_a_state() -> None:
    assert_problem(
        machine({"Ship": pass_(), "Bill": pass_()}, start="Shipp"),
        "/StartAt",
        "\"StartAt\" names state 'Shipp', which does not exist (states here: Ship, Bill)",
    )


def test_unknown_top_level_field() -> None:
    assert_problem(single(pass_(), Foo=1), "/Foo", 'unknown field "Foo"')


def test_top_level_typo_gets_a_suggestion() -> None:
    assert_problem(
        single(pass_(), TimeoutSecond=5), "/TimeoutSecond", 'did you mean "TimeoutSeconds"'
    )


def test_version_must_be_1_0() -> None:
    assert_problem(single(pass_(), Version="2.0"), "/Version", '"Version" must be "1.0"')


@pytest.mark.parametrize("value", [0, -5, 1.5, "10", True, 100_000_000])
def test_top_level_timeout_must_be_a_positive_integer(value: Any) -> None:
    assert_problem(single(pass_(), TimeoutSeconds=value), "/TimeoutSeconds", "positive integer")


def test_query_language_value() -> None:
    assert_problem(single(pass_(), QueryLanguage="jsonata"), "/QueryLanguage", '"JSONata"')


def test_comment_must_be_a_string() -> None:
    assert_problem(single(pass_(), Comment=5), "/Comment", '"Comment" must be a string')


def test_processor_config_is_not_allowed_at_the_top_level() -> None:
    assert_problem(
        single(pass_(), ProcessorConfig={"Mode": "INLINE"}), "/ProcessorConfig", "Map state"
    )


# --------------------------------------------------------------------------- states


def test_state_name_at_most_80_characters() -> None:
    name = "N" * 81
    assert_problem(machine({name: pass_()}), f"/States/{name}", "81 characters long")
    assert_valid(machine({"N" * 80: pass_()}))


def test_state_pointer_escapes_slash_and_tilde() -> None:
    assert_problem(machine({"a/b~c": {"Type": "Pass"}}), "/States/a~1b~0c", 'needs "Next"')


def test_state_must_be_an_object() -> None:
    assert_problem(machine({"A": "Pass"}), "/States/A", 'must be an object with a "Type"')


def test_state_needs_a_type() -> None:
    assert_problem(machine({"A": {"End": True}}), "/States/A", 'has no "Type"')


def test_state_type_must_be_known() -> None:
    assert_problem(machine({"A": {"Type": "Tsk", "End": True}}), "/States/A/Type", "did you mean")


def test_field_not_allowed_for_type() -> None:
    assert_problem(
        single(pass_(Resource=LAMBDA)),
        "/States/S/Resource",
        'field "Resource" is not allowed in a Pass state (it belongs to Task states)',
    )


def test_misspelled_state_field_gets_a_suggestion() -> None:
    document = machine({"A": {"Type": "Pass", "Nxt": "B"}, "B": pass_()})
    assert_problem(document, "/States/A/Nxt", 'did you mean "Next"')


@pytest.mark.parametrize("kind", ["Succeed", "Fail"])
@pytest.mark.parametrize("key", ["Next", "End"])
def test_terminal_states_take_no_next_or_end(kind: str, key: str) -> None:
    document = machine({"A": {"Type": kind, key: "A" if key == "Next" else True}})
    assert_problem(document, f"/States/A/{key}", "always end the execution")


def test_choice_takes_no_next() -> None:
    document = machine(
        {"C": choice({"Variable": "$.x", "IsNull": True, "Next": "D"}, Next="D"), "D": pass_()}
    )
    assert_problem(document, "/States/C/Next", 'give each Choice rule its own "Next"')


def test_choice_takes_no_end() -> None:
    document = machine({"C": choice({"Variable": "$.x", "IsNull": True, "Next": "D"}, End=True)})
    document["States"]["D"] = pass_()
    assert_problem(document, "/States/C/End", "cannot end the execution")


@pytest.mark.parametrize("kind", ["Pass", "Choice", "Wait", "Succeed", "Fail"])
def test_retry_and_catch_only_on_task_parallel_map(kind: str) -> None:
    state: dict[str, Any] = {"Type": kind, "Retry": [], "Catch": []}
    problems = validate(machine({"A": state}))
    pointers = {p.pointer for p in problems if "only Task, Parallel and Map" in p.message}
    assert pointers == {"/States/A/Retry", "/States/A/Catch"}


def test_state_needs_next_or_end() -> None:
    assert_problem(machine({"A": {"Type": "Pass"}}), "/States/A", 'needs "Next"')


def test_state_cannot_have_next_and_end() -> None:
    document = machine({"A": pass_(Next="B", End=True), "B": pass_()})
    assert_problem(document, "/States/A", 'both "Next" and "End"')


def test_end_false_needs_next() -> None:
    document = machine({"A": {"Type": "Pass", "End": False}})
    assert_problem(document, "/States/A/End", '"End" is false, so the state needs "Next"')


def test_end_must_be_boolean() -> None:
    assert_problem(single(pass_(End="yes")), "/States/S/End", "must be true or false")


def test_next_must_name_a_state() -> None:
    document = machine({"Ship": task(Next="Shipp"), "Bill": pass_()})
    assert_problem(
        document,
        "/States/Ship/Next",
        "\"Next\" names state 'Shipp', which does not exist (states here: Ship, Bill)",
    )


def test_next_must_be_a_non_empty_string() -> None:
    assert_problem(single(pass_(Next=5)), "/States/S/Next", '"Next" must be a string')
    assert_problem(single(pass_(Next="")), "/States/S/Next", "must not be empty")


def test_unreachable_state() -> None:
    document = machine({"A": pass_(), "B": pass_()})
    assert_problem(document, "/States/B", "state 'B' is not reachable from StartAt ('A')")


def test_states_reachable_through_choice_default_and_catch_are_reachable() -> None:
    document = machine(
        {
            "C": choice({"Variable": "$.x", "IsNull": True, "Next": "T"}, Default="D"),
            "T": task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "F"}]),
            "D": {"Type": "Succeed"},
            "F": {"Type": "Fail"},
        }
    )
    assert_valid(document)


def test_machine_needs_a_terminal_state() -> None:
    document = machine({"A": pass_(Next="B"), "B": pass_(Next="A")})
    assert_problem(document, "/States", "no state ends this state machine")


def test_state_names_unique_across_nested_machines() -> None:
    document = single(
        {"Type": "Parallel", "Branches": [{"StartAt": "S", "States": {"S": pass_()}}], "End": True}
    )
    assert_problem(document, "/States/S/Branches/0/States/S", "already used at /States/S")


def test_next_cannot_leave_a_branch() -> None:
    document = machine(
        {
            "P": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "In", "States": {"In": pass_(Next="Out")}}],
                "Next": "Out",
            },
            "Out": {"Type": "Succeed"},
        }
    )
    assert_problem(
        document,
        "/States/P/Branches/0/States/In/Next",
        "defined in another state machine (/States/Out)",
    )


def test_next_cannot_enter_a_map_processor() -> None:
    document = machine(
        {
            "A": pass_(Next="Inner"),
            "M": {"Type": "Map", "ItemProcessor": inner(), "End": True},
        }
    )
    problems = assert_problem(document, "/States/A/Next", "/States/M/ItemProcessor/States/Inner")
    assert any(p.pointer == "/States/M" and "not reachable" in p.message for p in problems)


# --------------------------------------------------------------------------- query languages


def test_jsonpath_state_in_jsonata_machine() -> None:
    document = single(pass_(QueryLanguage="JSONPath"), QueryLanguage="JSONata")
    assert_problem(document, "/States/S/QueryLanguage", "cannot contain JSONPath states")


def test_jsonpath_branch_in_jsonata_machine() -> None:
    branch = {"QueryLanguage": "JSONPath", **inner()}
    document = single(
        {"Type": "Parallel", "Branches": [branch], "End": True}, QueryLanguage="JSONata"
    )
    assert_problem(document, "/States/S/Branches/0/QueryLanguage", "cannot contain JSONPath")


def test_state_query_language_value() -> None:
    assert_problem(single(pass_(QueryLanguage="XPath")), "/States/S/QueryLanguage", "JSONata")


def map_state(**fields: Any) -> dict[str, Any]:
    return {"Type": "Map", "ItemProcessor": inner(), "End": True, **fields}


def wait_state(**fields: Any) -> dict[str, Any]:
    return {"Type": "Wait", "End": True, **fields}


@pytest.mark.parametrize(
    ("state", "field", "fragment"),
    [
        (task(Parameters={}), "Parameters", 'use "Arguments"'),
        (map_state(Parameters={}), "Parameters", 'use "ItemSelector"'),
        (task(InputPath="$"), "InputPath", "$states.input"),
        (task(OutputPath="$"), "OutputPath", 'use "Output"'),
        (task(ResultSelector={}), "ResultSelector", 'use "Output"'),
        (task(ResultPath="$.x"), "ResultPath", 'use "Output"'),
        (pass_(Result=1), "Result", 'use "Output"'),
        (map_state(ItemsPath="$"), "ItemsPath", 'use "Items"'),
        (wait_state(SecondsPath="$.s"), "SecondsPath", '"Seconds" with a JSONata'),
        (wait_state(TimestampPath="$.t"), "TimestampPath", '"Timestamp"'),
        (task(TimeoutSecondsPath="$.t"), "TimeoutSecondsPath", '"TimeoutSeconds"'),
        (task(HeartbeatSecondsPath="$.t"), "HeartbeatSecondsPath", '"HeartbeatSeconds"'),
        ({"Type": "Fail", "ErrorPath": "$.e"}, "ErrorPath", '"Error"'),
        ({"Type": "Fail", "CausePath": "$.c"}, "CausePath", '"Cause"'),
        (map_state(MaxConcurrencyPath="$.m"), "MaxConcurrencyPath", '"MaxConcurrency"'),
        (
            map_state(ToleratedFailureCountPath="$.m"),
            "ToleratedFailureCountPath",
            '"ToleratedFailureCount"',
        ),
        (
            map_state(ToleratedFailurePercentagePath="$.m"),
            "ToleratedFailurePercentagePath",
            '"ToleratedFailurePercentage"',
        ),
    ],
)
def test_jsonpath_only_fields_under_jsonata(
    state: dict[str, Any], field: str, fragment: str
) -> None:
    document = single(state, QueryLanguage="JSONata")
    problems = assert_problem(document, f"/States/S/{field}", "is a JSONPath field")
    assert any(fragment in p.message for p in problems if p.pointer == f"/States/S/{field}")


@pytest.mark.parametrize(
    ("state", "field", "fragment"),
    [
        (task(Arguments={}), "Arguments", 'use "Parameters"'),
        (pass_(Output={}), "Output", '"OutputPath"'),
        (map_state(Items=[1]), "Items", '"ItemsPath"'),
    ],
)
def test_jsonata_only_fields_under_jsonpath(
    state: dict[str, Any], field: str, fragment: str
) -> None:
    problems = assert_problem(single(state), f"/States/S/{field}", "is a JSONata field")
    assert any(fragment in p.message for p in problems if p.pointer == f"/States/S/{field}")


def test_nested_machine_inherits_the_state_query_language() -> None:
    branch = inner({"Inner": pass_(InputPath="$")})
    state = {"Type": "Parallel", "QueryLanguage": "JSONata", "Branches": [branch], "End": True}
    assert_problem(single(state), "/States/S/Branches/0/States/Inner/InputPath", "JSONPath field")


def test_jsonata_expression_must_parse() -> None:
    document = single(
        task(Arguments={"deep": ["ok", "{% $states.input + %}"]}), QueryLanguage="JSONata"
    )
    assert_problem(document, "/States/S/Arguments/deep/1", "does not parse")


def test_jsonata_expression_must_not_be_empty() -> None:
    document = single(pass_(Output="{%  %}"), QueryLanguage="JSONata")
    assert_problem(document, "/States/S/Output", "is empty")


def test_strings_that_are_not_expressions_are_literals() -> None:
    document = single(pass_(Output=[" {% nope %} ", "{% ok %}x", "$.x"]), QueryLanguage="JSONata")
    assert_valid(document)


def test_jsonata_strings_are_not_parsed_in_jsonpath_states() -> None:
    assert_valid(single(pass_(Result="{% not ( valid %}")))


def test_arguments_must_be_object_or_expression() -> None:
    document = single(task(Arguments=[1]), QueryLanguage="JSONata")
    assert_problem(document, "/States/S/Arguments", "must be an object or a JSONata expression")


def test_items_must_be_array_or_expression() -> None:
    state = {"Type": "Map", "ItemProcessor": inner(), "Items": "$.items", "End": True}
    assert_problem(single(state, QueryLanguage="JSONata"), "/States/S/Items", "must be an array")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("MaxConcurrency", "{% $x +"),
        ("ToleratedFailurePercentage", "{% ) %}"),
        ("ToleratedFailureCount", "{%%}"),
    ],
)
def test_map_limits_accept_only_parsable_expressions(field: str, value: str) -> None:
    state = {"Type": "Map", "ItemProcessor": inner(), "Items": [], field: value, "End": True}
    problems = validate(single(state, QueryLanguage="JSONata"))
    assert [p.pointer for p in problems] == [f"/States/S/{field}"]


# --------------------------------------------------------------------------- paths


def test_input_path_must_compile() -> None:
    assert_problem(single(pass_(InputPath="$.a[")), "/States/S/InputPath", "not a valid path")


def test_output_path_must_be_a_path() -> None:
    assert_problem(single(pass_(OutputPath="a.b")), "/States/S/OutputPath", "must start with '$'")


def test_output_path_may_use_context_and_be_null() -> None:
    assert_valid(single(pass_(OutputPath="$$.Execution")))
    assert_valid(single(pass_(InputPath=None, OutputPath=None, ResultPath=None)))


def test_result_path_cannot_use_the_context_object() -> None:
    assert_problem(single(pass_(ResultPath="$$.x")), "/States/S/ResultPath", "context object")


def test_result_path_cannot_write_a_variable() -> None:
    assert_problem(single(pass_(ResultPath="$var.x")), "/States/S/ResultPath", "to a variable")


def test_result_path_must_be_a_reference_path() -> None:
    assert_problem(single(pass_(ResultPath="$.a[*]")), "/States/S/ResultPath", "reference path")


def test_items_path_must_be_a_path() -> None:
    state = {"Type": "Map", "ItemProcessor": inner(), "ItemsPath": "items", "End": True}
    assert_problem(single(state), "/States/S/ItemsPath", "not a valid path")


def test_seconds_path_must_be_a_reference_path() -> None:
    state = {"Type": "Wait", "SecondsPath": "$..delay", "End": True}
    assert_problem(single(state), "/States/S/SecondsPath", "reference path")


def test_dollar_field_needs_a_path_or_intrinsic() -> None:
    assert_problem(
        single(pass_(Parameters={"a.$": "plain"})),
        "/States/S/Parameters/a.$",
        'ends in ".$", so its value must be a path',
    )


def test_dollar_field_needs_a_string() -> None:
    assert_problem(
        single(pass_(Parameters={"a.$": 1})), "/States/S/Parameters/a.$", "got the number 1"
    )


def test_dollar_field_path_must_compile_even_when_nested_in_arrays() -> None:
    document = single(task(ResultSelector={"list": [{"x": {"y.$": "$.a["}}]}))
    assert_problem(document, "/States/S/ResultSelector/list/0/x/y.$", "not a valid path")


def test_dollar_field_accepts_context_and_variables() -> None:
    assert_valid(single(pass_(Parameters={"a.$": "$$.State.Name", "b.$": "$myVar.field"})))


def test_dollar_field_accepts_intrinsic_functions() -> None:
    params = {"a.$": "States.Format('{} and {}', $.x, $$.Execution.Id)", "b.$": "States.UUID()"}
    assert_valid(single(pass_(Parameters=params)))


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        ("States.Format('x'", "not closed"),
        ("States.Nope()", "unknown intrinsic function States.Nope"),
        ("States.MathAdd(1)", "takes exactly 2 arguments"),
        ("States.Format", "expected '('"),
    ],
)
def test_dollar_field_rejects_invalid_intrinsics(call: str, fragment: str) -> None:
    problems = assert_problem(
        single(pass_(Parameters={"a.$": call})),
        "/States/S/Parameters/a.$",
        '"a.$" is not a valid intrinsic function call',
    )
    assert fragment in problems[0].message


def test_intrinsics_are_checked_in_assign_and_fail_paths() -> None:
    document = machine(
        {
            "A": pass_(Assign={"v.$": "States.ArrayLength()"}, Next="F"),
            "F": {"Type": "Fail", "ErrorPath": "States.Hash($.x)"},
        }
    )
    problems = validate(document)
    assert [p.pointer for p in problems] == ["/States/A/Assign/v.$", "/States/F/ErrorPath"]


def test_payload_fields_must_stay_unique_after_stripping_dollar() -> None:
    document = single(pass_(Parameters={"a": 1, "a.$": "$.a"}))
    assert_problem(document, "/States/S/Parameters/a.$", 'both produce the field "a"')


@pytest.mark.parametrize("field", ["Parameters", "ResultSelector"])
def test_payload_templates_must_be_objects(field: str) -> None:
    assert_problem(single(task(**{field: [1]})), f"/States/S/{field}", "must be an object")


def test_error_path_accepts_intrinsic_but_not_plain_text() -> None:
    assert_valid(machine({"F": {"Type": "Fail", "CausePath": "States.Format('x{}', $.y)"}}))
    assert_problem(
        machine({"F": {"Type": "Fail", "ErrorPath": "oops"}}),
        "/States/F/ErrorPath",
        "intrinsic function call",
    )


# --------------------------------------------------------------------------- Choice


def _choice_doc(*rules: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return machine({"C": choice(*rules, **fields), "D": {"Type": "Succeed"}})


def test_choices_must_be_a_non_empty_array() -> None:
    assert_problem(_choice_doc(Default="D"), "/States/C/Choices", "non-empty array")


def test_choice_state_needs_choices() -> None:
    document = machine({"C": {"Type": "Choice", "Default": "D"}, "D": {"Type": "Succeed"}})
    assert_problem(document, "/States/C", 'needs "Choices"')


def test_choice_rule_must_be_an_object() -> None:
    assert_problem(_choice_doc("x", Default="D"), "/States/C/Choices/0", "must be an object")  # type: ignore[arg-type]


def test_choice_rule_needs_exactly_one_operator() -> None:
    rule = {"Variable": "$.x", "StringEquals": "a", "IsPresent": True, "Next": "D"}
    assert_problem(_choice_doc(rule), "/States/C/Choices/0", "found StringEquals, IsPresent")


def test_choice_rule_needs_an_operator() -> None:
    assert_problem(
        _choice_doc({"Variable": "$.x", "Next": "D"}), "/States/C/Choices/0", "needs one comparison"
    )


def test_comparison_needs_variable() -> None:
    assert_problem(
        _choice_doc({"NumericEquals": 1, "Next": "D"}), "/States/C/Choices/0", 'needs "Variable"'
    )


def test_variable_must_be_a_path() -> None:
    rule = {"Variable": "x", "IsNull": True, "Next": "D"}
    assert_problem(_choice_doc(rule), "/States/C/Choices/0/Variable", "not a valid path")


def test_variable_is_not_used_with_composites() -> None:
    rule = {"Variable": "$.x", "Not": {"Variable": "$.x", "IsNull": True}, "Next": "D"}
    assert_problem(_choice_doc(rule), "/States/C/Choices/0/Variable", 'not used with "Not"')


@pytest.mark.parametrize(
    ("operator", "value", "fragment"),
    [
        ("StringEquals", 5, "needs a string"),
        ("StringMatches", None, "needs a string"),
        ("NumericEquals", "5", "needs a number"),
        ("NumericLessThan", True, "needs a number"),
        ("BooleanEquals", "true", "needs a boolean"),
        ("IsPresent", 1, "needs a boolean"),
        ("IsTimestamp", "yes", "needs a boolean"),
        ("TimestampEquals", "2016-03-14 01:59:00Z", "needs a timestamp"),
        ("TimestampGreaterThan", 5, "needs a timestamp"),
        ("StringEqualsPath", "foo", "not a valid path"),
        ("NumericGreaterThanPath", 3, "must be a path string"),
    ],
)
def test_operand_types(operator: str, value: Any, fragment: str) -> None:
    rule = {"Variable": "$.x", operator: value, "Next": "D"}
    assert_problem(_choice_doc(rule), f"/States/C/Choices/0/{operator}", fragment)


def test_operand_looking_like_a_path_suggests_the_path_operator() -> None:
    rule = {"Variable": "$.x", "StringEquals": "$.y", "Next": "D"}
    assert_valid(_choice_doc(rule))  # a string is a string, even if it starts with "$"
    rule = {"Variable": "$.x", "NumericEquals": "$.y", "Next": "D"}
    assert_problem(_choice_doc(rule), "/States/C/Choices/0/NumericEquals", '"NumericEqualsPath"')


OPERAND_SAMPLES: dict[str, Any] = {
    "string": "abc",
    "number": 1.5,
    "boolean": False,
    "timestamp": "2012-10-09T19:00:55.123Z",
    "path": "$.other",
}
_COMPARISONS = ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")
_TYPE_TESTS = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")
ALL_OPERATORS: list[tuple[str, str]] = [
    *[(f"String{s}", "string") for s in _COMPARISONS],
    ("StringMatches", "string"),
    *[(f"Numeric{s}", "number") for s in _COMPARISONS],
    ("BooleanEquals", "boolean"),
    *[(f"Timestamp{s}", "timestamp") for s in _COMPARISONS],
    *[(name, "boolean") for name in _TYPE_TESTS],
]
ALL_OPERATORS += [
    (f"{name}Path", "path")
    for name, kind in ALL_OPERATORS
    if name != "StringMatches" and not name.startswith("Is")
]


@pytest.mark.parametrize(("operator", "kind"), ALL_OPERATORS)
def test_every_operator_is_accepted(operator: str, kind: str) -> None:
    rule = {"Variable": "$.x", operator: OPERAND_SAMPLES[kind], "Next": "D"}
    assert_valid(_choice_doc(rule))


def test_operator_list_is_complete() -> None:
    assert len(ALL_OPERATORS) == 39  # 23 operators, 16 with a …Path form
    assert len({name for name, _ in ALL_OPERATORS}) == 39


def test_nested_rule_cannot_have_next() -> None:
    rule = {"And": [{"Variable": "$.a", "IsPresent": True, "Next": "D"}], "Next": "D"}
    assert_problem(_choice_doc(rule), "/States/C/Choices/0/And/0/Next", "only allowed on the top")


def test_top_level_rule_needs_next() -> None:
    assert_problem(
        _choice_doc({"Variable": "$.a", "IsNull": True}, Default="D"),
        "/States/C/Choices/0",
        'needs "Next"',
    )


def test_and_or_need_non_empty_arrays() -> None:
    assert_problem(_choice_doc({"Or": [], "Next": "D"}), "/States/C/Choices/0/Or", "non-empty")


def test_not_needs_a_single_rule() -> None:
    rule = {"Not": [{"Variable": "$.a", "IsNull": True}], "Next": "D"}
    assert_problem(_choice_doc(rule), "/States/C/Choices/0/Not", "single Choice rule")


def test_nested_rules_are_checked() -> None:
    rule = {"Or": [{"Not": {"Variable": "$.a", "NumericEquals": "1"}}], "Next": "D"}
    assert_problem(_choice_doc(rule), "/States/C/Choices/0/Or/0/Not/NumericEquals", "number")


def test_choice_rule_next_and_default_must_name_states() -> None:
    document = _choice_doc({"Variable": "$.a", "IsNull": True, "Next": "X"}, Default="Y")
    assert_problem(document, "/States/C/Choices/0/Next", "'X', which does not exist")
    assert_problem(document, "/States/C/Default", "'Y', which does not exist")


def test_unknown_field_in_choice_rule() -> None:
    rule = {"Variable": "$.a", "StringEquls": "x", "Next": "D"}
    assert_problem(
        _choice_doc(rule), "/States/C/Choices/0/StringEquls", 'did you mean "StringEquals"'
    )


def test_condition_is_jsonata_only() -> None:
    rule = {"Condition": "{% true %}", "Next": "D"}
    assert_problem(_choice_doc(rule), "/States/C/Choices/0/Condition", "uses JSONPath")


def test_jsonata_rule_needs_condition() -> None:
    document = _choice_doc({"Next": "D"}, QueryLanguage="JSONata")
    assert_problem(document, "/States/C/Choices/0", 'needs "Condition"')


def test_jsonata_rule_rejects_jsonpath_operators() -> None:
    rule = {"Variable": "$.x", "IsNull": True, "Condition": True, "Next": "D"}
    document = _choice_doc(rule, QueryLanguage="JSONata")
    assert_problem(document, "/States/C/Choices/0/Variable", 'write the test as "Condition"')


def test_jsonata_condition_must_be_expression_or_boolean() -> None:
    document = _choice_doc({"Condition": "x > 1", "Next": "D"}, QueryLanguage="JSONata")
    assert_problem(document, "/States/C/Choices/0/Condition", "JSONata expression")


def test_output_on_jsonpath_rule() -> None:
    rule = {"Variable": "$.x", "IsNull": True, "Output": {}, "Next": "D"}
    assert_problem(_choice_doc(rule), "/States/C/Choices/0/Output", "JSONata field")


# --------------------------------------------------------------------------- Wait


def test_wait_needs_a_timer() -> None:
    assert_problem(single({"Type": "Wait", "End": True}), "/States/S", "needs exactly one of")


def test_wait_takes_only_one_timer() -> None:
    state = {"Type": "Wait", "Seconds": 1, "TimestampPath": "$.t", "End": True}
    assert_problem(single(state), "/States/S", 'has "Seconds" and "TimestampPath"')


@pytest.mark.parametrize("value", [-1, 1.5, "10", None, 100_000_000])
def test_wait_seconds_must_be_a_non_negative_integer(value: Any) -> None:
    state = {"Type": "Wait", "Seconds": value, "End": True}
    assert_problem(single(state), "/States/S/Seconds", "non-negative integer")


@pytest.mark.parametrize(
    "value",
    [
        "2016-13-05T21:29:29Z",  # no month 13
        "05-12-2016T21:29:29Z",  # not year-first
        "2016-12-05T25:29:29Z",  # no hour 25
        "2016-12-05 21:29:29Z",  # no T
        "2016-02-30T00:00:00Z",  # no 30 February
        "2016-12-05t21:29:29Z",  # lower-case t
        "2016-12-05T21:29:29z",  # lower-case z
        "2016-12-05T21:29:29",  # no zone
        "2016-12-05",
        1457920740,
    ],
)
def test_wait_timestamp_must_be_rfc3339(value: Any) -> None:
    state = {"Type": "Wait", "Timestamp": value, "End": True}
    assert_problem(single(state), "/States/S/Timestamp", "RFC 3339")


@pytest.mark.parametrize(
    "value",
    [
        "2016-03-14T01:59:00Z",
        "2016-03-14T01:59:00.123456Z",
        "2016-03-14T01:59:00+05:30",
        "2016-03-14T01:59:00-08:00",
        "2016-02-29T23:59:59Z",
    ],
)
def test_wait_timestamp_accepted_forms(value: str) -> None:
    assert_valid(single({"Type": "Wait", "Timestamp": value, "End": True}))


def test_yaml_dates_get_a_hint() -> None:
    from datetime import datetime, timezone

    stamp = datetime(2016, 3, 14, 1, 59, tzinfo=timezone.utc)  # noqa: UP017
    state = {"Type": "Wait", "Timestamp": stamp, "End": True}
    assert_problem(single(state), "/States/S/Timestamp", "quote it in YAML")


def test_jsonata_wait_accepts_expressions_but_not_plain_strings() -> None:
    ok = {"Type": "Wait", "Seconds": "{% $states.input.delay %}", "End": True}
    assert_valid(single(ok, QueryLanguage="JSONata"))
    bad = {"Type": "Wait", "Seconds": "10", "End": True}
    assert_problem(single(bad, QueryLanguage="JSONata"), "/States/S/Seconds", "JSONata expression")


# --------------------------------------------------------------------------- Fail


def test_fail_error_and_error_path_are_exclusive() -> None:
    document = machine({"F": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}})
    assert_problem(document, "/States/F", '"Error" and "ErrorPath" cannot be used together')


def test_fail_cause_and_cause_path_are_exclusive() -> None:
    document = machine({"F": {"Type": "Fail", "Cause": "C", "CausePath": "$.c"}})
    assert_problem(document, "/States/F", '"Cause" and "CausePath"')


def test_fail_error_must_be_a_string() -> None:
    assert_problem(machine({"F": {"Type": "Fail", "Error": 42}}), "/States/F/Error", "string")


# --------------------------------------------------------------------------- Task


def test_task_needs_a_resource() -> None:
    assert_problem(single({"Type": "Task", "End": True}), "/States/S", 'needs "Resource"')


def test_task_resource_must_be_a_string() -> None:
    assert_problem(single(task(Resource=5)), "/States/S/Resource", "must be a string")


@pytest.mark.parametrize("field", ["TimeoutSeconds", "HeartbeatSeconds"])
@pytest.mark.parametrize("value", [0, -1, 2.5, "60"])
def test_task_timeouts_are_positive_integers(field: str, value: Any) -> None:
    assert_problem(single(task(**{field: value})), f"/States/S/{field}", "positive integer")


def test_task_timeout_and_path_are_exclusive() -> None:
    document = single(task(TimeoutSeconds=5, TimeoutSecondsPath="$.t"))
    assert_problem(document, "/States/S", '"TimeoutSeconds" and "TimeoutSecondsPath"')
    document = single(task(HeartbeatSeconds=5, HeartbeatSecondsPath="$.t"))
    assert_problem(document, "/States/S", '"HeartbeatSeconds" and "HeartbeatSecondsPath"')


def test_heartbeat_must_be_smaller_than_timeout() -> None:
    document = single(task(TimeoutSeconds=10, HeartbeatSeconds=10))
    assert_problem(document, "/States/S/HeartbeatSeconds", "must be smaller than")


def test_credentials_need_role_arn() -> None:
    state = task(Arguments="{% $states.input %}", Credentials={"InvalidField": "invalid"})
    problems = assert_problem(
        single(state, QueryLanguage="JSONata"), "/States/S/Credentials", 'needs "RoleArn"'
    )
    assert any(p.pointer == "/States/S/Credentials/InvalidField" for p in problems)


def test_credentials_role_arn_from_a_path() -> None:
    assert_valid(single(task(Credentials={"RoleArn.$": "$.role"})))
    assert_problem(
        single(task(Credentials={"RoleArn.$": "role"})), "/States/S/Credentials/RoleArn.$", "path"
    )


def test_credentials_must_be_an_object() -> None:
    assert_problem(single(task(Credentials="arn")), "/States/S/Credentials", "must be an object")


# --------------------------------------------------------------------------- Retry / Catch


def _retry(*retriers: Any) -> dict[str, Any]:
    return single(task(Retry=list(retriers)))


def test_retry_must_be_an_array() -> None:
    assert_problem(single(task(Retry={})), "/States/S/Retry", "must be an array")


def test_retrier_needs_error_equals() -> None:
    assert_problem(_retry({"MaxAttempts": 1}), "/States/S/Retry/0", 'needs "ErrorEquals"')


@pytest.mark.parametrize("value", [[], "States.ALL", None])
def test_error_equals_must_be_a_non_empty_array(value: Any) -> None:
    assert_problem(_retry({"ErrorEquals": value}), "/States/S/Retry/0/ErrorEquals", "non-empty")


def test_error_names_must_be_strings() -> None:
    document = _retry({"ErrorEquals": ["A", 5]})
    assert_problem(document, "/States/S/Retry/0/ErrorEquals/1", "non-empty string")


def test_states_all_must_be_alone() -> None:
    document = _retry({"ErrorEquals": ["States.ALL", "Custom"]})
    assert_problem(document, "/States/S/Retry/0/ErrorEquals", "must appear alone")


def test_states_all_retrier_must_be_last() -> None:
    document = _retry({"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["Custom"]})
    assert_problem(document, "/States/S/Retry/0/ErrorEquals", "must be the last one")


def test_states_all_catcher_must_be_last() -> None:
    catchers = [
        {"ErrorEquals": ["States.ALL"], "Next": "F"},
        {"ErrorEquals": ["Custom"], "Next": "F"},
    ]
    document = machine({"S": task(Catch=catchers), "F": {"Type": "Fail"}})
    assert_problem(document, "/States/S/Catch/0/ErrorEquals", "catcher that matches")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("IntervalSeconds", 0, "positive integer"),
        ("IntervalSeconds", 1.5, "positive integer"),
        ("MaxAttempts", -1, "non-negative integer"),
        ("BackoffRate", 0.5, "at least 1"),
        ("BackoffRate", "2", "at least 1"),
        ("MaxDelaySeconds", 0, "positive integer"),
        ("JitterStrategy", "SOME", '"FULL" or "NONE"'),
        ("Comment", 1, "must be a string"),
        ("MaxAttempt", 3, 'did you mean "MaxAttempts"'),
    ],
)
def test_retrier_fields(field: str, value: Any, fragment: str) -> None:
    document = _retry({"ErrorEquals": ["E"], field: value})
    assert_problem(document, f"/States/S/Retry/0/{field}", fragment)


def test_catcher_needs_error_equals_and_next() -> None:
    document = single(task(Catch=[{"ResultPath": "$.e"}]))
    assert_problem(document, "/States/S/Catch/0", 'needs "ErrorEquals" and "Next"')


def test_catcher_next_must_name_a_state() -> None:
    document = single(task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Nowhere"}]))
    assert_problem(document, "/States/S/Catch/0/Next", "'Nowhere', which does not exist")


def test_catcher_result_path_rules() -> None:
    catchers = [{"ErrorEquals": ["E"], "ResultPath": "$$.e", "Next": "F"}]
    document = machine({"S": task(Catch=catchers), "F": {"Type": "Fail"}})
    assert_problem(document, "/States/S/Catch/0/ResultPath", "context object")


def test_catcher_fields_follow_the_query_language() -> None:
    catchers = [{"ErrorEquals": ["E"], "ResultPath": "$.e", "Next": "F"}]
    document = machine({"S": task(Catch=catchers), "F": {"Type": "Fail"}}, QueryLanguage="JSONata")
    assert_problem(document, "/States/S/Catch/0/ResultPath", "JSONPath field")
    with_output: list[dict[str, Any]] = [{"ErrorEquals": ["E"], "Output": {}, "Next": "F"}]
    document = machine({"S": task(Catch=with_output), "F": {"Type": "Fail"}})
    assert_problem(document, "/States/S/Catch/0/Output", "JSONata field")


def test_unknown_catcher_field() -> None:
    catchers = [{"ErrorEquals": ["E"], "Next": "F", "Retry": 1}]
    document = machine({"S": task(Catch=catchers), "F": {"Type": "Fail"}})
    assert_problem(document, "/States/S/Catch/0/Retry", 'unknown field "Retry" in a catcher')


# --------------------------------------------------------------------------- Map / Parallel


def _map(**fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Map", "ItemProcessor": inner(), "End": True}
    state.update(fields)
    return single({k: v for k, v in state.items() if v is not None})


def test_map_needs_an_item_processor() -> None:
    assert_problem(_map(ItemProcessor=None), "/States/S", 'needs "ItemProcessor"')


def test_map_item_processor_and_iterator_are_exclusive() -> None:
    document = _map(Iterator={"StartAt": "Other", "States": {"Other": pass_()}})
    assert_problem(document, "/States/S", '"ItemProcessor" and "Iterator" cannot be used together')


def test_map_item_selector_and_parameters_are_exclusive() -> None:
    assert_problem(
        _map(ItemSelector={}, Parameters={}), "/States/S", '"ItemSelector" and "Parameters"'
    )


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("MaxConcurrency", -1, "non-negative integer"),
        ("MaxConcurrency", "5", "non-negative integer"),
        ("ToleratedFailurePercentage", 101, "from 0 to 100"),
        ("ToleratedFailurePercentage", -0.5, "from 0 to 100"),
        ("ToleratedFailureCount", -1, "non-negative integer"),
        ("Label", 5, "must be a string"),
        ("ItemsPath", 5, "path string"),
        ("ItemSelector", [1], "must be an object"),
    ],
)
def test_map_field_values(field: str, value: Any, fragment: str) -> None:
    assert_problem(_map(**{field: value}), f"/States/S/{field}", fragment)


@pytest.mark.parametrize(
    ("literal", "path"),
    [
        ("MaxConcurrency", "MaxConcurrencyPath"),
        ("ToleratedFailurePercentage", "ToleratedFailurePercentagePath"),
        ("ToleratedFailureCount", "ToleratedFailureCountPath"),
    ],
)
def test_map_literal_and_path_are_exclusive(literal: str, path: str) -> None:
    assert_problem(_map(**{literal: 1, path: "$.x"}), "/States/S", f'"{literal}" and "{path}"')


def test_processor_config_values() -> None:
    processor = {"ProcessorConfig": {"Mode": "PARALLEL", "Execution": "STANDARD"}, **inner()}
    problems = assert_problem(
        _map(ItemProcessor=processor), "/States/S/ItemProcessor/ProcessorConfig/Mode", "INLINE"
    )
    assert any(p.pointer.endswith("ProcessorConfig/Execution") for p in problems)


def test_distributed_processor_needs_execution_type() -> None:
    processor = {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, **inner()}
    assert_problem(
        _map(ItemProcessor=processor), "/States/S/ItemProcessor/ProcessorConfig", "ExecutionType"
    )


def test_item_processor_must_be_a_machine() -> None:
    assert_problem(_map(ItemProcessor=[]), "/States/S/ItemProcessor", "Map item processor")
    assert_problem(_map(ItemProcessor={"States": {}}), "/States/S/ItemProcessor", 'needs "StartAt"')


def test_item_reader_needs_resource() -> None:
    document = _map(ItemReader={"ReaderConfig": {"MaxItems": 0}})
    problems = assert_problem(document, "/States/S/ItemReader", 'needs "Resource"')
    assert any(p.pointer == "/States/S/ItemReader/ReaderConfig/MaxItems" for p in problems)


def test_item_reader_max_items_and_path_are_exclusive() -> None:
    reader = {"Resource": "arn:x", "ReaderConfig": {"MaxItems": 1, "MaxItemsPath": "$.m"}}
    assert_problem(_map(ItemReader=reader), "/States/S/ItemReader/ReaderConfig", '"MaxItems"')


def test_item_batcher_needs_a_limit() -> None:
    assert_problem(_map(ItemBatcher={}), "/States/S/ItemBatcher", "at least one limit")
    batcher: dict[str, Any] = {"MaxItemsPerBatch": 0}
    assert_problem(_map(ItemBatcher=batcher), "/States/S/ItemBatcher/MaxItemsPerBatch", "positive")


def test_result_writer_fields() -> None:
    writer = {"Resource": "arn:x", "Bucket": "b"}
    assert_problem(_map(ResultWriter=writer), "/States/S/ResultWriter/Bucket", "unknown field")
    assert_problem(_map(ResultWriter={}), "/States/S/ResultWriter", '"Resource" or "WriterConfig"')


def test_parallel_needs_branches() -> None:
    assert_problem(single({"Type": "Parallel", "End": True}), "/States/S", 'needs "Branches"')
    state = {"Type": "Parallel", "Branches": [], "End": True}
    assert_problem(single(state), "/States/S/Branches", "non-empty array")


def test_branch_is_checked_like_a_machine() -> None:
    branch = {"StartAt": "X", "States": {"B": pass_()}, "Extra": 1}
    state = {"Type": "Parallel", "Branches": [branch, "nope"], "End": True}
    problems = assert_problem(single(state), "/States/S/Branches/0/StartAt", "'X'")
    assert_problem(single(state), "/States/S/Branches/0/Extra", 'unknown field "Extra"')
    assert any(p.pointer == "/States/S/Branches/1" for p in problems)


def test_map_processor_state_checked_in_its_own_scope() -> None:
    processor = inner({"Inner": pass_(Next="Missing")})
    assert_problem(
        _map(ItemProcessor=processor), "/States/S/ItemProcessor/States/Inner/Next", "Missing"
    )


# --------------------------------------------------------------------------- Assign


@pytest.mark.parametrize("kind", ["Succeed", "Fail"])
def test_assign_not_allowed_on_terminal_states(kind: str) -> None:
    document = machine({"A": {"Type": kind, "Assign": {"x": 1}}})
    assert_problem(document, "/States/A/Assign", "assign variables in an earlier state")


def test_assign_allowed_on_other_states() -> None:
    document = machine(
        {
            "P": pass_(Assign={"a": 1}, Next="W"),
            "W": {"Type": "Wait", "Seconds": 0, "Assign": {"b": 2}, "Next": "C"},
            "C": choice({"Variable": "$a", "IsPresent": True, "Next": "D"}, Assign={"c": 3}),
            "D": {"Type": "Succeed"},
        }
    )
    assert_valid(document)


def test_assign_must_be_an_object() -> None:
    assert_problem(single(pass_(Assign=[1])), "/States/S/Assign", "must be an object")


@pytest.mark.parametrize("name", ["1abc", "a-b", "a b", "", "x" * 81])
def test_assign_variable_names(name: str) -> None:
    problems = validate(single(pass_(Assign={name: 1})))
    assert [p.pointer for p in problems] == [f"/States/S/Assign/{name}"]


def test_assign_dollar_suffix_only_in_jsonpath() -> None:
    assert_valid(single(pass_(Assign={"v.$": "$.x", "ünïcode_1": 2})))
    document = single(pass_(Assign={"v.$": "$.x"}), QueryLanguage="JSONata")
    assert_problem(document, "/States/S/Assign/v.$", '".$" suffix is not used')


def test_assign_values_are_checked() -> None:
    assert_problem(single(pass_(Assign={"v.$": "nope"})), "/States/S/Assign/v.$", "path")
    document = single(pass_(Assign={"v": "{% ( %}"}), QueryLanguage="JSONata")
    assert_problem(document, "/States/S/Assign/v", "does not parse")


# --------------------------------------------------------------------------- reporting


def test_every_problem_is_reported_in_document_order() -> None:
    document = {
        "StartAt": "Check",
        "Extra": True,
        "States": {
            "Check": choice(
                {"Variable": "$.x", "StringEquals": "a", "Next": "Shipp"},
                Default="Ship",
            ),
            "Ship": task(TimeoutSeconds=0, Next="Bill"),
            "Bill": {"Type": "Pass", "Resource": LAMBDA, "End": True},
            "Orphan": {"Type": "Succeed"},
        },
    }
    problems = validate(document)
    assert [p.pointer for p in problems] == [
        "/Extra",
        "/States/Check/Choices/0/Next",
        "/States/Ship/TimeoutSeconds",
        "/States/Bill/Resource",
        "/States/Orphan",
    ]
    assert "'Shipp', which does not exist (states here: Check, Ship, Bill, Orphan)" in (
        problems[1].message
    )
    assert validate(copy.deepcopy(document)) == problems  # stable


def test_validate_does_not_modify_the_document() -> None:
    document = single(task(Retry=[{"ErrorEquals": []}]))
    before = json.dumps(document, sort_keys=True)
    validate(document)
    assert json.dumps(document, sort_keys=True) == before


def test_problems_are_problem_objects() -> None:
    (problem,) = validate(machine({"A": {"Type": "Pass"}}))
    assert isinstance(problem, Problem)
    assert str(problem) == f"/States/A: {problem.message}"


# --------------------------------------------------------------------------- AWS cases


def _case_files() -> list[Path]:
    if not CASES.is_dir():
        return []
    return sorted(CASES.rglob("*.json"))


@pytest.mark.skipif(not CASES.is_dir(), reason="shared asl-cases not present")
@pytest.mark.parametrize("path", _case_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_aws_recorded_cases(path: Path) -> None:
    """AWS accepted every definition whose expected status is not INVALID_DEFINITION."""
    case = json.loads(path.read_text())
    problems = validate(case["definition"])
    if case["expected"]["status"] == "INVALID_DEFINITION":
        assert problems, f"AWS rejected this definition: {case['expected'].get('aws_message')}"
    else:
        assert problems == [], "\n".join(str(p) for p in problems)


def test_recorded_cases_are_present_or_skipped() -> None:
    if CASES.is_dir():
        assert len(_case_files()) > 300
    else:
        pytest.skip("shared asl-cases not present")


# --------------------------------------------------------------------------- fuzz

ASL_KEYS = [
    "StartAt", "States", "Type", "Next", "End", "Pass", "Task", "Choice", "Wait", "Succeed",
    "Fail", "Parallel", "Map", "Choices", "Default", "Variable", "And", "Or", "Not",
    "StringEquals", "NumericEqualsPath", "IsPresent", "TimestampEquals", "Branches",
    "ItemProcessor", "Iterator", "ProcessorConfig", "Mode", "Retry", "Catch", "ErrorEquals",
    "Resource", "Parameters", "a.$", "ResultPath", "InputPath", "Assign", "Output",
    "Arguments", "QueryLanguage", "JSONata", "Seconds", "Timestamp", "ItemReader",
    "ItemBatcher", "ResultWriter", "Credentials", "RoleArn", "Condition", "Items",
]  # fmt: skip
ASL_STRINGS = [
    "$", "$.a", "$$.x", "$a", "$.a[", "{% $x %}", "{% ( %}", "{%%}", "States.ALL",
    "States.Format('{}', $.a)", "States.Format(", "2016-03-14T01:59:00Z", "JSONPath",
    "JSONata", "A", "B", "DISTRIBUTED", "", "Pass", "Task", "Choice", "Wait", "Succeed", "Fail",
    "Parallel", "Map",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(ASL_STRINGS)
    | st.text(max_size=12)
)
keys = st.sampled_from(ASL_KEYS) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_validate_never_raises_on_arbitrary_values(document: Any) -> None:
    problems = validate(document)
    assert isinstance(problems, list)
    assert all(isinstance(p, Problem) and p.message for p in problems)


state_like = st.dictionaries(st.sampled_from(ASL_KEYS), json_values, min_size=1, max_size=6).map(
    lambda d: {"Type": "Pass", **d}
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(["A", "B", "C"]), state_like, min_size=1, max_size=3),
    st.sampled_from(["A", "B", "Z"]),
    st.sampled_from([None, "JSONPath", "JSONata"]),
)
def test_validate_never_raises_on_near_definitions(
    states: dict[str, Any], start: str, language: str | None
) -> None:
    document: dict[str, Any] = {"StartAt": start, "States": states}
    if language:
        document["QueryLanguage"] = language
    problems = validate(document)
    pointers = [p.pointer for p in problems]
    assert all(pointer == "" or pointer.startswith("/") for pointer in pointers)


def _containers(document: Any) -> list[Any]:
    found: list[Any] = []
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict) and value:
            found.append(value)
            stack.extend(value.values())
        elif isinstance(value, list) and value:
            found.append(value)
            stack.extend(value)
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_validate_never_raises_on_mutated_definitions(data: st.DataObject) -> None:
    """Replace or add a few values anywhere in valid definitions; validate must still answer."""
    document = data.draw(st.sampled_from([full_jsonpath_definition, full_jsonata_definition]))()
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        container = data.draw(st.sampled_from(_containers(document)))
        if isinstance(container, dict):
            key = data.draw(st.sampled_from(list(container)) | keys)
            container[key] = data.draw(json_values)
        else:
            index = data.draw(st.integers(min_value=0, max_value=len(container) - 1))
            container[index] = data.draw(json_values)
    problems = validate(document)
    assert all(isinstance(p, Problem) for p in problems)
