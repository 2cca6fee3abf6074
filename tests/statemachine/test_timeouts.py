"""Timeouts: a Task's TimeoutSeconds (States.Timeout) and the machine's TimeoutSeconds.

Sources: the ASL specification (states-language.net, "Top-level fields" TimeoutSeconds,
"Task State" TimeoutSeconds/TimeoutSecondsPath) and the AWS developer guide pages
"State machine structure" ("If it runs longer than the specified time, the execution
fails with a States.Timeout Error Name"), "Task workflow state" and "Handling errors"
("Handling a timeout using Retry" / "using Catch", with the sleep10 Lambda).

The engine enforces these with ``asyncio.timeout``; :func:`time_travel` lets the event
loop skip idle time, so a 2-second timeout on a task sleeping 11 seconds takes no real
time, and the order of events is the real one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from statefleet import StateMachine
from tests.statemachine.conftest import FakeClock, failure_of, machine, output_of, time_travel


class Sleeper:
    """The guide's sleep10 Lambda: sleeps, and records whether it finished or was cancelled."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.finished = 0
        self.cancelled = 0

    async def __call__(self, payload: Any) -> Any:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return {"slept": self.seconds}


def sleep_task(**fields: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:lambda:us-east-1:123456789012:function:sleep10",
        **fields,
    }


async def test_task_timeout_fails_with_states_timeout() -> None:
    # AWS guide, Task state "TimeoutSeconds": "If the task runs longer than the specified
    # seconds, this state fails with a States.Timeout error name".
    sleep10 = Sleeper(11)
    with time_travel():
        error, cause = await failure_of(
            machine(sleep_task(TimeoutSeconds=2), name="HelloWorld"),
            {},
            resources={"sleep10": sleep10},
        )
    assert error == "States.Timeout"
    assert cause is None
    assert (sleep10.finished, sleep10.cancelled) == (0, 1)


async def test_task_within_its_timeout_succeeds() -> None:
    # AWS guide, Task TimeoutSeconds: a task finishing in time is unaffected.
    quick = Sleeper(1)
    with time_travel():
        output = await output_of(
            machine(sleep_task(TimeoutSeconds=2)), {}, resources={"sleep10": quick}
        )
    assert output == {"slept": 1}


async def test_aws_handling_a_timeout_using_catch() -> None:
    # AWS guide, "Handling a timeout using Catch": on States.Timeout go to "fallback".
    definition = {
        "Comment": (
            "A Hello World example of the Amazon States Language using an AWS Lambda function"
        ),
        "StartAt": "HelloWorld",
        "States": {
            "HelloWorld": {
                **sleep_task(TimeoutSeconds=2),
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "fallback"}],
                "End": True,
            },
            "fallback": {"Type": "Pass", "Result": "Hello, AWS Step Functions!", "End": True},
        },
    }
    with time_travel():
        output = await output_of(definition, {}, resources={"sleep10": Sleeper(11)})
    assert output == "Hello, AWS Step Functions!"


async def test_aws_handling_a_timeout_using_retry() -> None:
    # AWS guide, "Handling a timeout using Retry": IntervalSeconds 1, MaxAttempts 2,
    # BackoffRate 2.0 — three attempts, waits of 1 and 2 seconds, then the failure.
    definition = machine(
        sleep_task(
            TimeoutSeconds=2,
            Retry=[
                {
                    "ErrorEquals": ["States.Timeout"],
                    "IntervalSeconds": 1,
                    "MaxAttempts": 2,
                    "BackoffRate": 2.0,
                }
            ],
        ),
        name="HelloWorld",
    )
    sleep10, clock = Sleeper(11), FakeClock()
    with time_travel():
        error, _ = await failure_of(definition, {}, resources={"sleep10": sleep10}, clock=clock)
    assert error == "States.Timeout"
    assert sleep10.cancelled == 3
    assert clock.sleeps == [1.0, 2.0]


@pytest.mark.parametrize(
    ("path", "data", "slept", "status"),
    [
        ("$.timeout", {"timeout": 5}, 3, "SUCCEEDED"),
        ("$.timeout", {"timeout": 2}, 3, "FAILED"),
        ("$$.Execution.Input.limit", {"limit": 2}, 3, "FAILED"),
    ],
)
async def test_timeout_seconds_path(path: str, data: Any, slept: float, status: str) -> None:
    # Spec, Task State: TimeoutSecondsPath takes the timeout from the state input.
    sm = StateMachine.from_definition(machine(sleep_task(TimeoutSecondsPath=path)))
    with time_travel():
        result = await sm.run(data, resources={"sleep10": Sleeper(slept)}, clock=FakeClock())
    assert result.status == status
    if status == "FAILED":
        assert result.error == "States.Timeout"


async def test_timeout_seconds_path_from_a_variable() -> None:
    # AWS-recorded (shared/asl-cases, assign_reference_variables__variables_in_lambda_task_
    # BASE_ASSIGN_FROM_LAMBDA_TASK_RESULT): "TimeoutSecondsPath": "$timeout".
    definition = {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": {"timeout": 2}, "Next": "Call"},
            "Call": {**sleep_task(TimeoutSecondsPath="$timeout"), "End": True},
        },
    }
    with time_travel():
        error, _ = await failure_of(definition, {}, resources={"sleep10": Sleeper(3)})
    assert error == "States.Timeout"


@pytest.mark.parametrize(
    "data", [{}, {"timeout": 0}, {"timeout": -1}, {"timeout": "5"}, {"timeout": 1.5}]
)
async def test_invalid_timeout_seconds_path_is_a_runtime_error(data: dict[str, Any]) -> None:
    # AWS guide, Task state: the timeout "Must be a positive, non-zero integer".
    sleep10 = Sleeper(0)
    error, _ = await failure_of(
        machine(sleep_task(TimeoutSecondsPath="$.timeout")), data, resources={"sleep10": sleep10}
    )
    assert error == "States.Runtime"
    assert sleep10.finished == 0


async def test_machine_timeout_times_out_a_running_task() -> None:
    # AWS guide, "State machine structure": TimeoutSeconds, "the maximum number of seconds an
    # execution of the state machine can run ... the execution fails with a States.Timeout
    # Error Name"; the execution's status is TIMED_OUT.
    definition = {
        "TimeoutSeconds": 5,
        "StartAt": "Work",
        "States": {"Work": {**sleep_task(), "End": True}},
    }
    sleeper = Sleeper(100)
    sm = StateMachine.from_definition(definition)
    with time_travel():
        result = await sm.run({}, resources={"sleep10": sleeper}, clock=FakeClock())
    assert (result.status, result.error, result.output) == ("TIMED_OUT", "States.Timeout", None)
    assert (sleeper.finished, sleeper.cancelled) == (0, 1)


async def test_machine_timeout_during_a_wait_state() -> None:
    # AWS guide, "State machine structure", TimeoutSeconds: a Wait counts against it too.
    definition = {
        "TimeoutSeconds": 5,
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Seconds": 100, "Next": "Never"},
            "Never": {"Type": "Pass", "End": True},
        },
    }
    sm = StateMachine.from_definition(definition)
    with time_travel():
        result = await sm.run({})  # the real clock: Wait sleeps on the event loop
    assert (result.status, result.error, result.output) == ("TIMED_OUT", "States.Timeout", None)


async def test_machine_finishing_within_its_timeout_succeeds() -> None:
    # AWS guide, "State machine structure", TimeoutSeconds: an execution ending in time succeeds.
    definition = {
        "TimeoutSeconds": 5,
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "Seconds": 4, "End": True}},
    }
    sm = StateMachine.from_definition(definition)
    with time_travel():
        result = await sm.run({"a": 1})
    assert (result.status, result.output) == ("SUCCEEDED", {"a": 1})


async def test_machine_timeout_is_not_caught_by_a_catch() -> None:
    # AWS guide, "Handling errors": catchers apply to states, "but not for top-level state
    # machine execution failures" such as the execution's own timeout.
    definition = {
        "TimeoutSeconds": 3,
        "StartAt": "Work",
        "States": {
            "Work": {
                **sleep_task(),
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Fallback"}],
                "End": True,
            },
            "Fallback": {"Type": "Pass", "End": True},
        },
    }
    sm = StateMachine.from_definition(definition)
    with time_travel():
        result = await sm.run({}, resources={"sleep10": Sleeper(100)}, clock=FakeClock())
    assert result.status == "TIMED_OUT"


async def test_time_travel_takes_no_real_time() -> None:
    # The helper these tests rely on: virtual time only.
    start = time.perf_counter()
    with time_travel():
        await asyncio.sleep(3600)
        async with asyncio.timeout(10):
            await asyncio.sleep(5)
    assert time.perf_counter() - start < 0.5
