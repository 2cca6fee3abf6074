"""Task state: calling registered resources, their results and their failures.

Sources: the ASL specification (states-language.net, "Task State"), the AWS developer
guide page "Task workflow state" (amazon-states-language-task-state.md) and its
Lambda tutorial ("Creating a Lambda State Machine": HelloFunction returns
"Hello, <who>!"), and AWS-recorded executions in shared/asl-cases.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from statefleet import ResourceNotFoundError, StateMachine, TaskContext, TaskError
from tests.statemachine.conftest import Script, fails, failure_of, machine, output_of, run


def hello(payload: dict[str, Any]) -> str:
    """The developer guide's HelloFunction Lambda."""
    return f"Hello, {payload['who']}!"


LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:HelloFunction"


async def test_sync_callable_result_becomes_the_output() -> None:
    # AWS guide, Lambda tutorial: input {"who": "AWS Step Functions"} -> the greeting.
    definition = machine({"Type": "Task", "Resource": LAMBDA_ARN}, name="HelloWorld")
    output = await output_of(
        definition, {"who": "AWS Step Functions"}, resources={"HelloFunction": hello}
    )
    assert output == "Hello, AWS Step Functions!"


async def test_async_callable_is_awaited() -> None:
    # statefleet's Task contract: a resource may be an async callable.
    async def double(payload: int) -> int:
        await asyncio.sleep(0)
        return payload * 2

    definition = machine({"Type": "Task", "Resource": "double"})
    assert await output_of(definition, 21, resources={"double": double}) == 42


async def test_callable_object_with_async_call_is_awaited() -> None:
    # statefleet's Task contract: any callable object, async __call__ included.
    class Adder:
        async def __call__(self, payload: list[int]) -> int:
            return sum(payload)

    definition = machine({"Type": "Task", "Resource": "add"})
    assert await output_of(definition, [1, 2, 3], resources={"add": Adder()}) == 6


async def test_two_argument_callable_gets_a_task_context() -> None:
    # statefleet's Task contract: fn(input, ctx) gets a TaskContext (state, attempt, execution).
    seen: list[TaskContext] = []

    def task(payload: Any, ctx: TaskContext) -> str:
        seen.append(ctx)
        return ctx.state_name

    sm = StateMachine.from_definition(machine({"Type": "Task", "Resource": "t"}, name="Work"))
    result = await sm.run({}, resources={"t": task}, name="exec-1")
    assert result.output == "Work"
    [ctx] = seen
    assert ctx.state_name == "Work"
    assert ctx.attempt == 0
    assert ctx.token is None
    assert ctx.execution_id == result.execution_id
    assert ctx.execution_id.endswith(":exec-1")


@pytest.mark.parametrize(
    ("resource", "registered"),
    [
        ("arn:aws:lambda:us-east-1:123456789012:function:HelloFunction", "HelloFunction"),
        ("arn:aws:lambda:us-east-1:123456789012:function:HelloFunction:prod", "HelloFunction"),
        ("arn:aws:states:::lambda:invoke", "arn:aws:states:::lambda:invoke"),
        ("arn:aws:states:::lambda:invoke", "lambda:invoke"),
        ("arn:aws:states:::batch:submitJob.sync", "batch:submitJob"),
        ("arn:aws:states:us-east-1:123456789012:activity:HelloWorld", "activity:HelloWorld"),
        ("plain-name", "plain-name"),
    ],
)
async def test_resource_lookup_by_arn_or_short_name(resource: str, registered: str) -> None:
    # AWS guide, "Specifying Resource ARNs in Tasks": arn:partition:service:region:
    # account:task_type:name; a Lambda ARN may carry a version or alias.
    definition = machine({"Type": "Task", "Resource": resource})
    output = await output_of(definition, {"who": "x"}, resources={registered: hello})
    assert output == "Hello, x!"


async def test_unregistered_resource_raises_before_anything_runs() -> None:
    # statefleet's Task contract: unknown Resources are reported before the run starts.
    first = Script("ran")
    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Task", "Resource": "first", "Next": "Second"},
            "Second": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:::function:missing",
                "End": True,
            },
        },
    }
    sm = StateMachine.from_definition(definition)
    with pytest.raises(ResourceNotFoundError, match="missing"):
        await sm.run({}, resources={"first": first})
    assert first.calls == []


async def test_task_error_sets_error_and_cause() -> None:
    # Spec, "Errors": a Task reports an error name (not starting with "States.") and a cause.
    task = Script(fails("ErrorA", "Invalid response."))
    result = await run(machine({"Type": "Task", "Resource": "t"}), {}, resources={"t": task})
    assert (result.status, result.error, result.cause) == ("FAILED", "ErrorA", "Invalid response.")
    assert result.output is None
    [event] = result.history
    assert (event.state, event.status, event.error, event.cause) == (
        "S",
        "FAILED",
        "ErrorA",
        "Invalid response.",
    )


async def test_task_error_without_cause() -> None:
    # Spec, "Errors": the cause is optional.
    error, cause = await failure_of(
        machine({"Type": "Task", "Resource": "t"}), {}, resources={"t": Script(fails("Oops"))}
    )
    assert (error, cause) == ("Oops", None)


async def test_other_exception_fails_with_its_class_name_and_message() -> None:
    # AWS-recorded (shared/asl-cases, task_lambda__raise_exception_catch): a Lambda's
    # unhandled exception surfaces with the exception's type as the error name.
    def broken(payload: Any) -> Any:
        raise ValueError("bad value 3")

    error, cause = await failure_of(
        machine({"Type": "Task", "Resource": "t"}), {}, resources={"t": broken}
    )
    assert (error, cause) == ("ValueError", "bad value 3")


async def test_task_receives_effective_input_and_output_replaces_input() -> None:
    # Spec, "Input and Output Processing": the task gets the effective input
    # (after InputPath and Parameters); by default its result is the state output.
    task = Script({"done": True})
    definition = machine(
        {"Type": "Task", "Resource": "t", "InputPath": "$.job", "Parameters": {"id.$": "$.id"}}
    )
    output = await output_of(definition, {"job": {"id": 9, "x": 1}}, resources={"t": task})
    assert output == {"done": True}
    assert task.calls == [{"id": 9}]


@pytest.mark.parametrize("value", [None, 0, "", [], {}, "Hello", [1, "two"], True])
async def test_any_json_result_is_passed_on(value: Any) -> None:
    # AWS-recorded (shared/asl-cases, lambda_task__invoke_json_values_*): a Lambda may
    # return any JSON value and it becomes the state's result.
    definition = machine({"Type": "Task", "Resource": "t"})
    assert await output_of(definition, {}, resources={"t": Script(value)}) == value


async def test_sequence_of_tasks_threads_data() -> None:
    # Spec, "Transitions" and "Input and Output Processing": a state's output is the next
    # one's input.
    definition = {
        "StartAt": "Add",
        "States": {
            "Add": {"Type": "Task", "Resource": "add", "ResultPath": "$.sum", "Next": "Square"},
            "Square": {"Type": "Task", "Resource": "square", "InputPath": "$.sum", "End": True},
        },
    }
    resources = {"add": lambda d: d["a"] + d["b"], "square": lambda n: n * n}
    assert await output_of(definition, {"a": 3, "b": 4}, resources=resources) == 49


async def test_oversized_result_fails_with_data_limit_exceeded() -> None:
    # AWS guide, "Error names": States.DataLimitExceeded "when the output of a connector
    # is larger than payload size quota" (256 KiB). Cause as AWS recorded it
    # (shared/asl-cases, states_errors__..._data_limit_exceeded_on_large_utf8_response).
    definition = machine({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"})
    error, cause = await failure_of(
        definition, {}, resources={"lambda:invoke": lambda _: "é" * 200_000}
    )
    assert error == "States.DataLimitExceeded"
    assert cause == (
        "The state/task 'lambda' returned a result with a size exceeding "
        "the maximum number of bytes service limit."
    )


async def test_result_just_under_the_limit_is_fine() -> None:
    # AWS guide, quotas: the payload limit is 256 KiB; exactly 256 KiB passes.
    definition = machine({"Type": "Task", "Resource": "t"})
    value = "x" * (256 * 1024 - 2)  # with its two quotes: exactly 256 KiB
    assert await output_of(definition, {}, resources={"t": lambda _: value}) == value


async def test_retry_attempt_is_visible_in_task_context() -> None:
    # Spec, "Context Object": State.RetryCount; the TaskContext carries the same number.
    task = Script(fails("Flaky"), fails("Flaky"), "ok")
    definition = machine({"Type": "Task", "Resource": "t", "Retry": [{"ErrorEquals": ["Flaky"]}]})
    assert await output_of(definition, {}, resources={"t": task}) == "ok"
    assert [c.attempt for c in task.contexts] == [0, 1, 2]


async def test_a_task_mutating_its_payload_does_not_change_the_state_data() -> None:
    # Spec and AWS guide, "Input and Output Processing": the state output is the state's
    # raw input with the task result placed at ResultPath. A task receives its input as
    # JSON (a Lambda gets a serialized copy); what it does to that copy cannot change the
    # state input, the execution input or the recorded history.
    def mutating(payload: dict[str, Any]) -> str:
        payload["hacked"] = True
        return "r"

    data = {"a": 1}
    definition = machine({"Type": "Task", "Resource": "t", "ResultPath": "$.result"})
    result = await run(definition, data, resources={"t": mutating})
    assert result.output == {"a": 1, "result": "r"}
    assert data == {"a": 1}
    assert result.history[0].input == {"a": 1}


async def test_a_result_mutated_downstream_does_not_change_the_returned_object() -> None:
    # Same rule as above: JSON values are passed, not shared Python objects.
    shared = {"v": 1}

    def mutating(payload: dict[str, Any]) -> dict[str, Any]:
        payload["hacked"] = True
        return payload

    definition = {
        "StartAt": "Produce",
        "States": {
            "Produce": {"Type": "Task", "Resource": "produce", "Next": "Consume"},
            "Consume": {"Type": "Task", "Resource": "consume", "End": True},
        },
    }
    resources = {"produce": lambda _: shared, "consume": mutating}
    assert await output_of(definition, {}, resources=resources) == {"v": 1, "hacked": True}
    assert shared == {"v": 1}


async def test_task_error_is_an_execution_error() -> None:
    # statefleet's error tree: TaskError is the ExecutionError a callable raises.
    from statefleet import ExecutionError

    exc = TaskError("Custom", "why")
    assert isinstance(exc, ExecutionError)
    assert (exc.error, exc.cause) == ("Custom", "why")
