"""Retry and Catch: matching error names, back-off delays, fallback states, error output.

Sources: the ASL specification (states-language.net, "Errors", "Retrying after error",
"Fallback states", Appendix A "Predefined Error Codes") and the AWS developer guide page
"Handling errors in Step Functions workflows" (concepts-error-handling.md: retrier
fields, the "Complex retry scenarios" example, error names such as States.Runtime),
plus "ResultPath" ("Use ResultPath to include both error and input in a Catch") and
AWS-recorded executions in shared/asl-cases (group "errors").

Delays are read from :class:`FakeClock`: ``clock.sleeps`` lists every wait the engine
asked for, so the assertions are exact.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.statemachine.conftest import (
    FakeClock,
    Script,
    fails,
    failure_of,
    output_of,
    run,
    time_travel,
)


def guarded(
    retry: list[dict[str, Any]] | None = None,
    catch: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A Task "X" with Retry/Catch, a success state "Y" and fallback Pass states."""
    spec: dict[str, Any] = {"Type": "Task", "Resource": "x", "Next": "Y", **fields}
    if retry is not None:
        spec["Retry"] = retry
    if catch is not None:
        spec["Catch"] = catch
    states: dict[str, Any] = {"X": spec, "Y": {"Type": "Pass", "Result": "Y", "End": True}}
    for catcher in catch or []:
        states.setdefault(catcher["Next"], {"Type": "Pass", "End": True})
    return {"StartAt": "X", "States": states}


# --------------------------------------------------------------------------- retry


async def test_aws_complex_retry_scenario(clock: FakeClock) -> None:
    # AWS guide, "Complex retry scenarios": errors ErrorA, ErrorB, ErrorC, ErrorB. The first
    # two match the first retrier (waits 1 and 2 s), the third the second retrier (5 s);
    # the fourth matches the first retrier again, which has used its MaxAttempts 2, so the
    # Catch sends the execution to Z.
    x = Script(fails("ErrorA"), fails("ErrorB"), fails("ErrorC"), fails("ErrorB", "b"), "ok")
    definition = guarded(
        retry=[
            {
                "ErrorEquals": ["ErrorA", "ErrorB"],
                "IntervalSeconds": 1,
                "BackoffRate": 2.0,
                "MaxAttempts": 2,
            },
            {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5},
        ],
        catch=[{"ErrorEquals": ["States.ALL"], "Next": "Z"}],
        Resource="arn:aws:states:us-east-1:123456789012:task:X",
    )
    output = await output_of(definition, {}, resources={"task:X": x}, clock=clock)
    assert clock.sleeps == [1.0, 2.0, 5.0]
    assert len(x.calls) == 4
    assert output == {"Error": "ErrorB", "Cause": "b"}


async def test_aws_retry_example_interval_and_backoff(clock: FakeClock) -> None:
    # AWS guide, "Retrying after an error": IntervalSeconds 3, MaxAttempts 2, BackoffRate
    # 1.5 "makes 2 retry attempts after waiting for 3 and 4.5 seconds".
    x = Script(fails("Throttled"))
    definition = guarded(
        retry=[
            {
                "ErrorEquals": ["Throttled"],
                "IntervalSeconds": 3,
                "MaxAttempts": 2,
                "BackoffRate": 1.5,
            }
        ]
    )
    assert await failure_of(definition, {}, resources={"x": x}, clock=clock) == ("Throttled", None)
    assert clock.sleeps == [3.0, 4.5]
    assert len(x.calls) == 3


async def test_retrier_defaults(clock: FakeClock) -> None:
    # AWS guide, retrier fields: IntervalSeconds defaults to 1, MaxAttempts to 3,
    # BackoffRate to 2.0.
    x = Script(fails("E"))
    await failure_of(guarded(retry=[{"ErrorEquals": ["E"]}]), {}, resources={"x": x}, clock=clock)
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert len(x.calls) == 4


async def test_retry_then_success(clock: FakeClock) -> None:
    # Spec, "Retrying after error": a retried state that then succeeds goes on to its Next.
    x = Script(fails("E", "first"), fails("E", "second"), {"ok": True})
    result = await run(
        guarded(retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 2}]),
        {"in": 1},
        resources={"x": x},
        clock=clock,
    )
    assert (result.status, result.output) == ("SUCCEEDED", "Y")
    assert x.calls == [{"in": 1}] * 3
    assert clock.sleeps == [2.0, 4.0]
    assert [(e.state, e.status, e.attempt, e.cause) for e in result.history] == [
        ("X", "FAILED", 0, "first"),
        ("X", "FAILED", 1, "second"),
        ("X", "SUCCEEDED", 2, None),
        ("Y", "SUCCEEDED", 0, None),
    ]


async def test_retry_count_in_the_context_object(clock: FakeClock) -> None:
    # AWS guide, "Context Object": State.RetryCount counts the retries of the state.
    x = Script(fails("E"), fails("E"), lambda payload: payload)
    definition = guarded(
        retry=[{"ErrorEquals": ["E"]}], Parameters={"retry.$": "$$.State.RetryCount"}
    )
    await output_of(definition, {}, resources={"x": x}, clock=clock)
    assert x.calls == [{"retry": 0}, {"retry": 1}, {"retry": 2}]


async def test_max_attempts_zero_never_retries(clock: FakeClock) -> None:
    # AWS guide: "A value of 0 specifies that the error is never retried"; the example
    # "retries any error except States.Timeout".
    retry: list[dict[str, Any]] = [
        {"ErrorEquals": ["States.Timeout"], "MaxAttempts": 0},
        {"ErrorEquals": ["States.ALL"]},
    ]
    timeout = Script(fails("States.Timeout"))
    error, _ = await failure_of(guarded(retry=retry), {}, resources={"x": timeout}, clock=clock)
    assert error == "States.Timeout"
    assert len(timeout.calls) == 1
    assert clock.sleeps == []

    other = Script(fails("Other"))
    await failure_of(guarded(retry=retry), {}, resources={"x": other}, clock=clock)
    assert len(other.calls) == 4


async def test_only_the_first_matching_retrier_applies(clock: FakeClock) -> None:
    # Spec, "Retrying after error": the interpreter scans the retriers in order and applies
    # the first whose ErrorEquals matches; once it is exhausted, later retriers that would
    # also match are not used.
    x = Script(fails("E"))
    retry = [
        {"ErrorEquals": ["E"], "MaxAttempts": 1, "IntervalSeconds": 7},
        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5, "IntervalSeconds": 1},
    ]
    await failure_of(guarded(retry=retry), {}, resources={"x": x}, clock=clock)
    assert clock.sleeps == [7.0]
    assert len(x.calls) == 2


async def test_each_retrier_counts_its_own_attempts(clock: FakeClock) -> None:
    # AWS guide, "Complex retry scenarios": "A retrier's parameters apply across all visits
    # to the retrier in the context of a single-state execution".
    x = Script(fails("A"), fails("B"), fails("A"), fails("B"), fails("A"), "ok")
    retry = [
        {"ErrorEquals": ["A"], "MaxAttempts": 2, "IntervalSeconds": 1},
        {"ErrorEquals": ["B"], "MaxAttempts": 2, "IntervalSeconds": 10},
    ]
    assert await failure_of(guarded(retry=retry), {}, resources={"x": x}, clock=clock) == (
        "A",
        None,
    )
    assert clock.sleeps == [1.0, 10.0, 2.0, 20.0]


async def test_max_delay_seconds_caps_the_backoff(clock: FakeClock) -> None:
    # AWS guide, retrier "MaxDelaySeconds": the maximum value, in seconds, up to which a
    # retry interval can increase.
    x = Script(fails("E"))
    retry = [
        {
            "ErrorEquals": ["E"],
            "IntervalSeconds": 1,
            "BackoffRate": 2,
            "MaxAttempts": 6,
            "MaxDelaySeconds": 5,
        }
    ]
    await failure_of(guarded(retry=retry), {}, resources={"x": x}, clock=clock)
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


async def test_backoff_rate_one_keeps_the_interval(clock: FakeClock) -> None:
    # AWS guide, retrier "BackoffRate": the multiplier of the retry interval; 1 keeps it constant.
    x = Script(fails("E"))
    retry = [{"ErrorEquals": ["E"], "IntervalSeconds": 4, "BackoffRate": 1, "MaxAttempts": 3}]
    await failure_of(guarded(retry=retry), {}, resources={"x": x}, clock=clock)
    assert clock.sleeps == [4.0, 4.0, 4.0]


async def test_full_jitter_stays_within_the_backoff(clock: FakeClock) -> None:
    # AWS guide, retrier "JitterStrategy": FULL makes each delay a random number between 0
    # and the computed backoff. Retrier taken from the AWS-recorded RETRY_INTERVAL_FEATURES
    # case (IntervalSeconds 3, BackoffRate 2, MaxDelaySeconds 5), with more attempts.
    x = Script(fails("Exception"))
    retry = [
        {
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": 3,
            "MaxAttempts": 12,
            "BackoffRate": 2,
            "MaxDelaySeconds": 5,
            "JitterStrategy": "FULL",
        }
    ]
    await failure_of(guarded(retry=retry), {}, resources={"x": x}, clock=clock)
    bounds = [3.0] + [5.0] * 11
    assert len(clock.sleeps) == 12
    assert all(0.0 <= delay <= bound for delay, bound in zip(clock.sleeps, bounds, strict=True))
    assert clock.sleeps != bounds  # randomised, not the plain back-off
    assert len(set(clock.sleeps)) > 1


async def test_jitter_none_is_the_plain_backoff(clock: FakeClock) -> None:
    # AWS guide, retrier "JitterStrategy": NONE (the default) applies no jitter.
    x = Script(fails("E"))
    retry = [
        {"ErrorEquals": ["E"], "IntervalSeconds": 2, "MaxAttempts": 3, "JitterStrategy": "NONE"}
    ]
    await failure_of(guarded(retry=retry), {}, resources={"x": x}, clock=clock)
    assert clock.sleeps == [2.0, 4.0, 8.0]


async def test_unmatched_error_is_not_retried(clock: FakeClock) -> None:
    # Spec, "Retrying after error": only a retrier whose ErrorEquals matches applies.
    x = Script(fails("Other", "c"))
    assert await failure_of(
        guarded(retry=[{"ErrorEquals": ["E"]}]), {}, resources={"x": x}, clock=clock
    ) == ("Other", "c")
    assert len(x.calls) == 1
    assert clock.sleeps == []


# --------------------------------------------------------------------------- matching


async def test_states_all_matches_any_error_name() -> None:
    # Spec, Appendix A: States.ALL "A wildcard which matches any Error Name".
    x = Script(fails("Anything.At.All", "c"))
    output = await output_of(
        guarded(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Fallback"}]), {}, resources={"x": x}
    )
    assert output == {"Error": "Anything.At.All", "Cause": "c"}


async def test_states_task_failed_matches_task_errors() -> None:
    # AWS guide, "Handling a failure using Catch" (variant): "the predefined error code
    # States.TaskFailed, which matches any error that a Lambda function outputs".
    def fail_function(payload: Any) -> Any:
        raise RuntimeError("error")

    definition = guarded(catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "fallback"}])
    definition["States"]["fallback"] = {
        "Type": "Pass",
        "Result": "Hello, AWS Step Functions!",
        "End": True,
    }
    assert await output_of(definition, {}, resources={"x": fail_function}) == (
        "Hello, AWS Step Functions!"
    )


async def test_states_task_failed_does_not_match_a_task_timeout() -> None:
    # AWS guide, "Error names": States.TaskFailed "acts as a wildcard that matches any known
    # error name except for States.Timeout".
    async def sleep10(payload: Any) -> Any:
        await asyncio.sleep(11)

    definition = guarded(
        catch=[
            {"ErrorEquals": ["States.TaskFailed"], "Next": "TaskFailedHandler"},
            {"ErrorEquals": ["States.Timeout"], "Next": "TimeoutHandler"},
        ],
        TimeoutSeconds=2,
    )
    definition["States"]["TaskFailedHandler"]["Result"] = "task failed"
    definition["States"]["TimeoutHandler"]["Result"] = "timed out"
    with time_travel():
        assert await output_of(definition, {}, resources={"x": sleep10}) == "timed out"


async def test_first_matching_catcher_wins() -> None:
    # AWS guide, "Fallback states": "scans through the catchers in the order listed";
    # the example sends java.lang.Exception to RecoveryState with ResultPath $.error-info
    # and everything else to EndState.
    catch = [
        {
            "ErrorEquals": ["java.lang.Exception"],
            "ResultPath": "$.error-info",
            "Next": "RecoveryState",
        },
        {"ErrorEquals": ["States.ALL"], "Next": "EndState"},
    ]
    definition = guarded(catch=catch)
    definition["States"]["RecoveryState"]["Parameters"] = {"recovered.$": "$"}
    java = Script(fails("java.lang.Exception", "NPE"))
    assert await output_of(definition, {"in": 1}, resources={"x": java}) == {
        "recovered": {"in": 1, "error-info": {"Error": "java.lang.Exception", "Cause": "NPE"}}
    }
    other = Script(fails("Other", "c"))
    assert await output_of(definition, {"in": 1}, resources={"x": other}) == {
        "Error": "Other",
        "Cause": "c",
    }


async def test_catcher_with_several_error_names() -> None:
    # AWS guide, "Fallback states": "Each catcher can specify multiple errors to handle".
    definition = guarded(catch=[{"ErrorEquals": ["A", "B"], "Next": "Handler"}])
    for name in ("A", "B"):
        output = await output_of(definition, {}, resources={"x": Script(fails(name))})
        assert output == {"Error": name}
    error, _ = await failure_of(definition, {}, resources={"x": Script(fails("C"))})
    assert error == "C"


async def test_retries_come_before_the_catch(clock: FakeClock) -> None:
    # AWS guide: "When a state has both Retry and Catch fields, Step Functions uses any
    # appropriate retriers first, and only afterward applies the matching catcher".
    x = Script(fails("E", "persistent"))
    definition = guarded(
        retry=[{"ErrorEquals": ["E"], "MaxAttempts": 2}],
        catch=[{"ErrorEquals": ["E"], "Next": "Handler"}],
    )
    output = await output_of(definition, {}, resources={"x": x}, clock=clock)
    assert output == {"Error": "E", "Cause": "persistent"}
    assert len(x.calls) == 3
    assert clock.sleeps == [1.0, 2.0]


# --------------------------------------------------------------------------- error output


async def test_aws_catch_result_path_keeps_input_and_error() -> None:
    # AWS guide, "Use ResultPath to include both error and input in a Catch": input
    # {"foo": "bar"} becomes {"foo": "bar", "error": {"Error": "Error here"}}.
    definition = guarded(
        catch=[{"ErrorEquals": ["States.ALL"], "Next": "NextTask", "ResultPath": "$.error"}]
    )
    output = await output_of(
        definition, {"foo": "bar"}, resources={"x": Script(fails("Error here"))}
    )
    assert output == {"foo": "bar", "error": {"Error": "Error here"}}


async def test_catch_without_result_path_replaces_the_input_with_the_error_output() -> None:
    # AWS guide, "Error output": "If you don't specify the ResultPath field, it defaults to
    # $, which selects and overwrites the entire input".
    definition = guarded(catch=[{"ErrorEquals": ["States.ALL"], "Next": "EndState"}])
    output = await output_of(
        definition, {"foo": "bar"}, resources={"x": Script(fails("E", "human readable"))}
    )
    assert output == {"Error": "E", "Cause": "human readable"}


async def test_catch_result_path_null_keeps_the_input() -> None:
    # AWS guide, "ResultPath": null discards the result (here the error output) and keeps the input.
    definition = guarded(catch=[{"ErrorEquals": ["States.ALL"], "Next": "H", "ResultPath": None}])
    assert await output_of(definition, {"foo": "bar"}, resources={"x": Script(fails("E"))}) == {
        "foo": "bar"
    }


async def test_catch_result_path_that_cannot_be_applied_fails() -> None:
    # Spec, Appendix A: States.ResultPathMatchFailure when a catcher's ResultPath cannot be applied.
    definition = guarded(
        catch=[{"ErrorEquals": ["States.ALL"], "Next": "H", "ResultPath": "$.error"}]
    )
    error, cause = await failure_of(definition, "plain string", resources={"x": Script(fails("E"))})
    assert error == "States.ResultPathMatchFailure"
    assert cause == 'Unable to apply ReferencePath $.error to input "plain string"'


async def test_result_path_match_failure_can_be_caught() -> None:
    # Spec, Appendix A: States.ResultPathMatchFailure is an ordinary, catchable error.
    definition = guarded(
        catch=[{"ErrorEquals": ["States.ResultPathMatchFailure"], "Next": "H"}],
        ResultPath="$.a.b",
    )
    output = await output_of(definition, {"a": 1}, resources={"x": Script("result")})
    assert output == {
        "Error": "States.ResultPathMatchFailure",
        "Cause": 'Unable to apply ReferencePath $.a.b to input {"a":1}',
    }


async def test_error_output_from_an_exception() -> None:
    # AWS guide, "Error output": {"Error": name, "Cause": description}.
    def broken(payload: Any) -> Any:
        raise KeyError("missing")

    definition = guarded(catch=[{"ErrorEquals": ["KeyError"], "Next": "H"}])
    assert await output_of(definition, {}, resources={"x": broken}) == {
        "Error": "KeyError",
        "Cause": "'missing'",
    }


async def test_data_limit_exceeded_from_a_task_is_caught_by_states_all() -> None:
    # AWS-recorded (shared/asl-cases, states_errors__service_task_lambada_catch_state_all_
    # data_limit_exceeded_on_large_utf8_response): AWS caught an oversized Lambda result with
    # a States.ALL catcher (the guide says States.ALL cannot catch it; the service does).
    definition = guarded(catch=[{"ErrorEquals": ["States.ALL"], "Next": "HandleGeneralError"}])
    output = await output_of(definition, {}, resources={"x": lambda _: "x" * 300_000})
    assert output["Error"] == "States.DataLimitExceeded"


# --------------------------------------------------------------------------- States.Runtime


async def test_states_runtime_is_never_caught_or_retried(clock: FakeClock) -> None:
    # AWS guide, "Error names", States.Runtime: "A States.Runtime error isn't retriable, and
    # will always cause the execution to fail. A retry or catch on States.ALL won't catch
    # States.Runtime errors."
    x = Script({"no": "such field"})
    definition = guarded(
        retry=[{"ErrorEquals": ["States.ALL"]}],
        catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler"}],
        OutputPath="$.missing",
    )
    error, cause = await failure_of(definition, {}, resources={"x": x}, clock=clock)
    assert error == "States.Runtime"
    assert cause == (
        "An error occurred while executing the state 'X' (entered at the event id #2). "
        "Invalid path '$.missing' : No results for path: $['missing']"
    )
    assert len(x.calls) == 1
    assert clock.sleeps == []


async def test_states_runtime_by_name_is_not_caught_either() -> None:
    # AWS guide, "Error names", States.Runtime: "will always cause the execution to fail".
    definition = guarded(
        catch=[{"ErrorEquals": ["States.Runtime"], "Next": "Handler"}], InputPath="$.missing"
    )
    error, _ = await failure_of(definition, {}, resources={"x": Script("never")})
    assert error == "States.Runtime"


async def test_states_runtime_in_a_branch_is_not_caught_by_the_parallel() -> None:
    # AWS guide, "Error names", States.Runtime: not retriable, not caught, also when raised in
    # a branch.
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Bad",
                        "States": {"Bad": {"Type": "Pass", "OutputPath": "$.nope", "End": True}},
                    }
                ],
                "Retry": [{"ErrorEquals": ["States.ALL"]}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handler"}],
                "End": True,
            },
            "Handler": {"Type": "Pass", "End": True},
        },
    }
    clock = FakeClock()
    error, cause = await failure_of(definition, {}, clock=clock)
    assert error == "States.Runtime"
    assert cause is not None
    assert "Invalid path '$.nope'" in cause
    assert clock.sleeps == []


@pytest.mark.parametrize("name", ["States.ALL", "States.TaskFailed"])
async def test_wildcards_catch_a_task_error_raised_as_exception(name: str) -> None:
    # AWS guide, "Error names": States.ALL and States.TaskFailed match a task's own error.
    def broken(payload: Any) -> Any:
        raise ValueError("v")

    definition = guarded(catch=[{"ErrorEquals": [name], "Next": "H"}])
    assert await output_of(definition, {}, resources={"x": broken}) == {
        "Error": "ValueError",
        "Cause": "v",
    }
