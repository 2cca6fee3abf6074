"""Data flow through a state: InputPath, Parameters, ResultSelector, ResultPath, OutputPath.

Sources: the ASL specification (states-language.net, "Paths", "Reference Paths",
"Payload Template", "ResultSelector", "Input and Output Processing", "Context Object"),
the AWS developer guide pages "Input and Output Processing"
(amazon-states-language-input-output-processing.md), "InputPath and Parameters"
(input-output-inputpath-params.md), "ResultPath" (input-output-resultpath.md),
"InputPath, ResultPath and OutputPath Example" (input-output-example.md) and "The
Context Object" (input-output-contextobject.md), and AWS-recorded executions in
shared/asl-cases (groups "paths", "context").
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.statemachine.conftest import Script, failure_of, machine, output_of, run


def hello(payload: dict[str, Any]) -> str:
    """The developer guide's HelloFunction Lambda."""
    return f"Hello, {payload['who']}!"


HELLO = {"HelloFunction": hello}
HELLO_ARN = "arn:aws:lambda:us-east-1:123456789012:function:HelloFunction"


def task(**fields: Any) -> dict[str, Any]:
    return machine({"Type": "Task", "Resource": HELLO_ARN, **fields}, name="HelloWorld")


# --------------------------------------------------------------------------- the guide's example


async def test_aws_input_result_output_path_example() -> None:
    # AWS guide, "InputPath, ResultPath and OutputPath Example", verbatim: the Lambda gets
    # only {"who": "AWS Step Functions"}; its result lands in data.lambdaresult; OutputPath
    # keeps the data node.
    definition = {
        "Comment": (
            "A Hello World example of the Amazon States Language using an AWS Lambda function"
        ),
        "StartAt": "HelloWorld",
        "States": {
            "HelloWorld": {
                "Type": "Task",
                "Resource": HELLO_ARN,
                "InputPath": "$.lambda",
                "ResultPath": "$.data.lambdaresult",
                "OutputPath": "$.data",
                "End": True,
            }
        },
    }
    data = {
        "comment": "An input comment.",
        "data": {"val1": 23, "val2": 17},
        "extra": "foo",
        "lambda": {"who": "AWS Step Functions"},
    }
    function = Script(hello)
    output = await output_of(definition, data, resources={"HelloFunction": function})
    assert function.calls == [{"who": "AWS Step Functions"}]
    assert output == {"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"}


@pytest.mark.parametrize(
    ("output_path", "expected"),
    [
        ("$", {"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}, "sum": 7}),
        ("$.sum", 7),
    ],
)
async def test_aws_numbers_to_add_example(output_path: str, expected: Any) -> None:
    # AWS guide, "Input and Output Processing": InputPath $.numbers, ResultPath $.sum; the
    # task returns 7; OutputPath "$" keeps everything, "$.sum" keeps 7.
    definition = machine(
        {
            "Type": "Task",
            "Resource": "add",
            "InputPath": "$.numbers",
            "ResultPath": "$.sum",
            "OutputPath": output_path,
        }
    )
    data = {"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}}
    add = {"add": lambda n: n["val1"] + n["val2"]}
    assert await output_of(definition, data, resources=add) == expected


# --------------------------------------------------------------------------- InputPath


async def test_aws_input_path_example() -> None:
    # AWS guide, "InputPath": "$.dataset2" passes only that object.
    data = {
        "comment": "Example for InputPath.",
        "dataset1": {"val1": 1, "val2": 2, "val3": 3},
        "dataset2": {"val1": "a", "val2": "b", "val3": "c"},
    }
    definition = machine({"Type": "Pass", "InputPath": "$.dataset2"})
    assert await output_of(definition, data) == {"val1": "a", "val2": "b", "val3": "c"}


async def test_input_path_may_select_several_values() -> None:
    # AWS guide, "InputPath" note: "$.a[0:2]" applied to {"a": [1, 2, 3, 4]} gives [1, 2].
    definition = machine({"Type": "Pass", "InputPath": "$.a[0:2]"})
    assert await output_of(definition, {"a": [1, 2, 3, 4]}) == [1, 2]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("$.foo", 123), ("$.bar", ["a", "b", "c"]), ("$.car.cdr", True), ("$.bar[1]", "b")],
)
async def test_reference_paths_example(path: str, expected: Any) -> None:
    # AWS guide and spec, "Reference Paths": $.foo => 123, $.bar => ["a", "b", "c"],
    # $.car.cdr => true.
    data = {"foo": 123, "bar": ["a", "b", "c"], "car": {"cdr": True}}
    assert await output_of(machine({"Type": "Pass", "InputPath": path}), data) == expected


async def test_null_input_path_gives_an_empty_object() -> None:
    # AWS guide, "InputPath": "If you use null, the input is discarded ... and the task
    # receives JSON text representing an empty object {}".
    function = Script("done")
    definition = machine({"Type": "Task", "Resource": "t", "InputPath": None})
    assert await output_of(definition, {"secret": 1}, resources={"t": function}) == "done"
    assert function.calls == [{}]


async def test_input_path_to_a_missing_field_is_a_runtime_error() -> None:
    # AWS-recorded (shared/asl-cases, base__json_path_array_access_.items_10): the error
    # and cause for a path that selects nothing.
    definition = machine({"Type": "Pass", "InputPath": "$.items[10]"}, name="S")
    error, cause = await failure_of(definition, {"items": [1]})
    assert error == "States.Runtime"
    assert cause == (
        "An error occurred while executing the state 'S' (entered at the event id #2). "
        "Invalid path '$.items[10]' : No results for path: $['items'][10]"
    )


async def test_input_path_from_the_context_object() -> None:
    # AWS-recorded (shared/asl-cases, context_object__input_path_.Execution.Input):
    # InputPath may start with "$$".
    definition = machine({"Type": "Pass", "InputPath": "$$.Execution.Input"})
    assert await output_of(definition, {"original": True}) == {"original": True}


# --------------------------------------------------------------------------- Parameters


async def test_aws_parameters_example() -> None:
    # AWS guide, "Parameters": static values and ".$" paths, nested.
    data = {
        "comment": "Example for Parameters.",
        "product": {
            "details": {"color": "blue", "size": "small", "material": "cotton"},
            "availability": "in stock",
            "sku": "2317",
            "cost": "$23",
        },
    }
    parameters = {
        "comment": "Selecting what I care about.",
        "MyDetails": {
            "size.$": "$.product.details.size",
            "exists.$": "$.product.availability",
            "StaticValue": "foo",
        },
    }
    function = Script(lambda payload: payload)
    await output_of(
        machine({"Type": "Task", "Resource": "t", "Parameters": parameters}),
        data,
        resources={"t": function},
    )
    assert function.calls == [
        {
            "comment": "Selecting what I care about.",
            "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"},
        }
    ]


async def test_spec_payload_template_example() -> None:
    # Spec, "Payload Template": {"flagged": 7, "vals": [0, 10, 20, 30, 40, 50]} with
    # "first.$": "$.vals[0]" and "last3.$": "$.vals[-3:]".
    parameters = {"flagged": True, "parts": {"first.$": "$.vals[0]", "last3.$": "$.vals[-3:]"}}
    data = {"flagged": 7, "vals": [0, 10, 20, 30, 40, 50]}
    assert await output_of(machine({"Type": "Pass", "Parameters": parameters}), data) == {
        "flagged": True,
        "parts": {"first": 0, "last3": [30, 40, 50]},
    }


async def test_parameters_apply_after_input_path() -> None:
    # AWS guide, "InputPath and Parameters": "AWS Step Functions applies the InputPath
    # field first, and then the Parameters field".
    definition = machine({"Type": "Pass", "InputPath": "$.inner", "Parameters": {"v.$": "$.value"}})
    assert await output_of(definition, {"inner": {"value": 1}, "value": 2}) == {"v": 1}


async def test_parameters_inside_arrays_are_templates_too() -> None:
    # Spec, "Payload Template": the template is walked through nested objects and arrays.
    parameters = {"list": [{"x.$": "$.a"}, "literal", ["$.a"]]}
    assert await output_of(machine({"Type": "Pass", "Parameters": parameters}), {"a": 1}) == {
        "list": [{"x": 1}, "literal", ["$.a"]]
    }


async def test_parameters_may_select_whole_input_and_null() -> None:
    # Spec, "Payload Template": a ".$" value may be "$" (the whole input); a selected null
    # stays null.
    parameters = {"all.$": "$", "nothing.$": "$.n"}
    assert await output_of(machine({"Type": "Pass", "Parameters": parameters}), {"n": None}) == {
        "all": {"n": None},
        "nothing": None,
    }


async def test_parameters_path_selecting_nothing_is_a_runtime_error() -> None:
    # What AWS reports for a ".$" field whose path matches nothing (the spec names
    # States.ParameterPathFailure for this case; the service reports States.Runtime).
    definition = machine({"Type": "Pass", "Parameters": {"x.$": "$.missing"}}, name="S")
    error, cause = await failure_of(definition, {"a": 1})
    assert error == "States.Runtime"
    assert cause == (
        "An error occurred while executing the state 'S' (entered at the event id #2). "
        "The JSONPath '$.missing' specified for the field 'x.$' could not be found in the "
        "input '{\"a\":1}'"
    )


async def test_aws_context_object_in_parameters() -> None:
    # AWS guide, "Accessing the Context Object": "Execution.$": "$$.Execution.Id".
    definition = machine(
        {
            "Type": "Pass",
            "Parameters": {
                "MessageBody": {"From": "YVR", "To": "SEA", "Execution.$": "$$.Execution.Id"}
            },
        },
        name="Order Flight Ticket Queue",
    )
    result = await run(definition, {}, name="flight-1", machine_name="Tickets")
    assert result.output == {
        "MessageBody": {"From": "YVR", "To": "SEA", "Execution": result.execution_id}
    }
    assert result.execution_id.endswith(":execution:Tickets:flight-1")


async def test_context_object_fields() -> None:
    # AWS guide, "Context Object Format": Execution (Id, Input, Name, StartTime, ...),
    # State (EnteredTime, Name, RetryCount), StateMachine (Id, Name).
    parameters = {
        "input.$": "$$.Execution.Input",
        "name.$": "$$.Execution.Name",
        "start.$": "$$.Execution.StartTime",
        "state.$": "$$.State",
        "machine.$": "$$.StateMachine.Name",
        "machineId.$": "$$.StateMachine.Id",
    }
    definition = machine({"Type": "Pass", "Parameters": parameters}, name="Test")
    result = await run(definition, {"key": "value"}, name="executionName", machine_name="sm")
    assert result.output == {
        "input": {"key": "value"},
        "name": "executionName",
        "start": "2016-03-14T01:58:00.000Z",
        "state": {"EnteredTime": "2016-03-14T01:58:00.000Z", "Name": "Test", "RetryCount": 0},
        "machine": "sm",
        "machineId": result.output["machineId"],
    }
    assert result.output["machineId"].endswith(":stateMachine:sm")


async def test_context_execution_input_is_the_original_input() -> None:
    # Spec, "Context Object": Execution.Input is the execution's input, whatever the states
    # did to the data since.
    definition = {
        "StartAt": "Change",
        "States": {
            "Change": {"Type": "Pass", "Result": "changed", "Next": "Read"},
            "Read": {
                "Type": "Pass",
                "Parameters": {"was.$": "$$.Execution.Input", "now.$": "$"},
                "End": True,
            },
        },
    }
    assert await output_of(definition, {"first": 1}) == {"was": {"first": 1}, "now": "changed"}


# --------------------------------------------------------------------------- ResultSelector


async def test_aws_result_selector_example() -> None:
    # AWS guide, "ResultSelector": from the EMR createCluster result keep ClusterId and
    # resourceType, placed at $.EMROutput.
    emr_result = {
        "resourceType": "elasticmapreduce",
        "resource": "createCluster.sync",
        "output": {
            "SdkHttpMetadata": {"HttpHeaders": {"Content-Length": "1112"}, "HttpStatusCode": 200},
            "SdkResponseMetadata": {"RequestId": "1234-5678-9012"},
            "ClusterId": "AKIAIOSFODNN7EXAMPLE",
        },
    }
    definition = machine(
        {
            "Type": "Task",
            "Resource": "arn:aws:states:::elasticmapreduce:createCluster.sync",
            "ResultSelector": {
                "ClusterId.$": "$.output.ClusterId",
                "ResourceType.$": "$.resourceType",
            },
            "ResultPath": "$.EMROutput",
        },
        name="Create Cluster",
    )
    output = await output_of(
        definition,
        {"OtherDataFromInput": {}},
        resources={"elasticmapreduce:createCluster": lambda _: emr_result},
    )
    assert output == {
        "OtherDataFromInput": {},
        "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"},
    }


async def test_result_selector_sees_the_result_not_the_input() -> None:
    # Spec, "ResultSelector": its paths apply to the state's result.
    definition = machine(
        {
            "Type": "Task",
            "Resource": "t",
            "ResultSelector": {"r.$": "$.value"},
            "ResultPath": "$.out",
        }
    )
    output = await output_of(
        definition, {"value": "input"}, resources={"t": lambda _: {"value": "result"}}
    )
    assert output == {"value": "input", "out": {"r": "result"}}


async def test_result_selector_can_read_the_context_object() -> None:
    # AWS-recorded (shared/asl-cases, context_object__result_selector): "$$" in ResultSelector.
    definition = machine(
        {
            "Type": "Task",
            "Resource": "t",
            "ResultSelector": {"state.$": "$$.State.Name", "r.$": "$"},
        },
        name="Work",
    )
    assert await output_of(definition, {}, resources={"t": lambda _: 5}) == {
        "state": "Work",
        "r": 5,
    }


async def test_result_selector_path_selecting_nothing_is_a_runtime_error() -> None:
    # Spec, "ResultSelector": a payload template on the result; a path selecting nothing fails
    # like Parameters.
    definition = machine({"Type": "Task", "Resource": "t", "ResultSelector": {"x.$": "$.nope"}})
    error, cause = await failure_of(definition, {}, resources={"t": lambda _: {"other": 1}})
    assert error == "States.Runtime"
    assert cause is not None
    assert "could not be found in the input '{\"other\":1}'" in cause


# --------------------------------------------------------------------------- ResultPath

RESULTPATH_INPUT = {
    "comment": "This is a test of the input and output of a Task state.",
    "details": "Default example",
    "who": "AWS Step Functions",
}


@pytest.mark.parametrize("fields", [{}, {"ResultPath": "$"}], ids=["omitted", "dollar"])
async def test_aws_result_path_replaces_input(fields: dict[str, Any]) -> None:
    # AWS guide, "Use ResultPath to Replace the Input with the Result".
    assert await output_of(task(**fields), RESULTPATH_INPUT, resources=HELLO) == (
        "Hello, AWS Step Functions!"
    )


async def test_aws_result_path_null_keeps_the_input() -> None:
    # AWS guide, "Discard the result and keep the original input": ResultPath null.
    assert await output_of(task(ResultPath=None), RESULTPATH_INPUT, resources=HELLO) == (
        RESULTPATH_INPUT
    )


async def test_aws_result_path_includes_result_with_input() -> None:
    # AWS guide, "Use ResultPath to Include the Result with the Input": $.taskresult.
    assert await output_of(task(ResultPath="$.taskresult"), RESULTPATH_INPUT, resources=HELLO) == {
        **RESULTPATH_INPUT,
        "taskresult": "Hello, AWS Step Functions!",
    }


async def test_aws_result_path_into_a_child_node() -> None:
    # AWS guide: "$.strings.lambdaresult" inserts the result as a child of strings.
    data = {
        "comment": "An input comment.",
        "strings": {"string1": "foo", "string2": "bar", "string3": "baz"},
        "who": "AWS Step Functions",
    }
    output = await output_of(task(ResultPath="$.strings.lambdaresult"), data, resources=HELLO)
    assert output == {
        "comment": "An input comment.",
        "strings": {
            "string1": "foo",
            "string2": "bar",
            "string3": "baz",
            "lambdaresult": "Hello, AWS Step Functions!",
        },
        "who": "AWS Step Functions",
    }


async def test_aws_result_path_updates_a_node() -> None:
    # AWS guide, "Use ResultPath to Update a Node in the Input with the Result": $.comment.
    output = await output_of(task(ResultPath="$.comment"), RESULTPATH_INPUT, resources=HELLO)
    assert output == {**RESULTPATH_INPUT, "comment": "Hello, AWS Step Functions!"}


async def test_result_path_creates_missing_objects() -> None:
    # AWS guide, "ResultPath": "If the ResultPath doesn't match an item in the state's input,
    # an item is added to the input" — with every missing object along the path.
    definition = machine({"Type": "Pass", "Result": {"r": 1}, "ResultPath": "$.a.b.c"})
    assert await output_of(definition, {"a": {"keep": True}}) == {
        "a": {"keep": True, "b": {"c": {"r": 1}}}
    }


async def test_result_path_into_an_array_element() -> None:
    # AWS guide, "Reference Paths": bracket indexes are allowed in a reference path such as
    # ResultPath.
    definition = machine({"Type": "Pass", "Result": "new", "ResultPath": "$.list[1]"})
    assert await output_of(definition, {"list": ["a", "b", "c"]}) == {"list": ["a", "new", "c"]}


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("$.a.b", {"a": "not an object"}),
        ("$.x", "a string input"),
        ("$.x", [1, 2]),
        ("$.list[5]", {"list": [0, 0, 0]}),
    ],
)
async def test_result_path_that_cannot_be_applied(path: str, data: Any) -> None:
    # Spec, Appendix A: States.ResultPathMatchFailure, "A state's ResultPath field cannot
    # be applied to the input the state received".
    from statefleet.statemachine.expressions import json_text

    definition = machine({"Type": "Pass", "Result": 1, "ResultPath": path})
    error, cause = await failure_of(definition, data)
    assert error == "States.ResultPathMatchFailure"
    assert cause == f"Unable to apply ReferencePath {path} to input {json_text(data)}"


async def test_result_path_is_applied_to_the_raw_input_not_the_effective_input() -> None:
    # Spec, "Input and Output Processing": ResultPath places the result in the state's
    # *raw* input, whatever InputPath selected for the task.
    definition = machine(
        {
            "Type": "Pass",
            "InputPath": "$.part",
            "Parameters": {"p.$": "$"},
            "ResultPath": "$.result",
        }
    )
    assert await output_of(definition, {"part": 1, "rest": 2}) == {
        "part": 1,
        "rest": 2,
        "result": {"p": 1},
    }


# --------------------------------------------------------------------------- OutputPath


async def test_null_output_path_gives_an_empty_object() -> None:
    # AWS guide, "OutputPath": "If the OutputPath is null, JSON text representing an empty
    # object {} is sent to the next state".
    assert await output_of(machine({"Type": "Pass", "OutputPath": None}), {"a": 1}) == {}


async def test_output_path_to_a_missing_field_is_a_runtime_error() -> None:
    # AWS guide, "OutputPath": "If the OutputPath doesn't match an item in the state's
    # input, an exception specifies an invalid path".
    definition = machine({"Type": "Pass", "OutputPath": "$.missing"}, name="S")
    error, cause = await failure_of(definition, {"a": 1})
    assert error == "States.Runtime"
    assert cause == (
        "An error occurred while executing the state 'S' (entered at the event id #2). "
        "Invalid path '$.missing' : No results for path: $['missing']"
    )


async def test_output_path_from_the_context_object() -> None:
    # AWS-recorded (shared/asl-cases, context_object__output_path_.Execution.Input).
    definition = machine({"Type": "Pass", "Result": "x", "OutputPath": "$$.Execution.Input"})
    assert await output_of(definition, {"original": 1}) == {"original": 1}


async def test_the_whole_pipeline_in_order() -> None:
    # Spec, "Using InputPath, Parameters, ResultSelector, ResultPath and OutputPath":
    # InputPath -> Parameters -> task -> ResultSelector -> ResultPath -> OutputPath.
    function = Script(lambda payload: {"sum": payload["x"] + payload["y"], "noise": 0})
    definition = machine(
        {
            "Type": "Task",
            "Resource": "t",
            "InputPath": "$.args",
            "Parameters": {"x.$": "$.a", "y.$": "$.b"},
            "ResultSelector": {"total.$": "$.sum"},
            "ResultPath": "$.args.result",
            "OutputPath": "$.args",
        }
    )
    output = await output_of(
        definition, {"args": {"a": 2, "b": 3}, "other": 0}, resources={"t": function}
    )
    assert function.calls == [{"x": 2, "y": 3}]
    assert output == {"a": 2, "b": 3, "result": {"total": 5}}


# --------------------------------------------------------------------------- size limits


async def test_state_output_over_the_payload_quota_fails() -> None:
    # AWS guide, "Error names", States.DataLimitExceeded: reported "when the output of a
    # state is larger than payload size quota" (256 KiB).
    big = "x" * 150_000
    definition = machine({"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s"}})
    result = await run(definition, {"s": big})
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")


async def test_task_input_over_the_payload_quota_after_parameters_fails() -> None:
    # AWS guide, "Error names", States.DataLimitExceeded: reported "when, after Parameters
    # processing, the input of a state is larger than the payload size quota".
    function = Script("never")
    big = "x" * 150_000
    definition = machine(
        {
            "Type": "Task",
            "Resource": "t",
            "Parameters": {"a.$": "$.s", "b.$": "$.s"},
            "ResultPath": None,
            "OutputPath": None,
        }
    )
    result = await run(definition, {"s": big}, resources={"t": function})
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")
    assert function.calls == []
