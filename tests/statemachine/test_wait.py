"""Wait state: relative and absolute delays, given literally or by path.

Sources: the ASL specification (states-language.net, "Wait State"), the AWS developer
guide page "Wait workflow state" (amazon-states-language-wait-state.md), whose
examples wait 10 seconds or until 2016-03-14T01:59:00Z, and AWS-recorded executions in
shared/asl-cases (group "wait").

The runs use :class:`FakeClock`, started at 2016-03-14T01:58:00Z, one minute before the
guide's timestamp: ``clock.sleeps`` holds the exact delays the engine asked for.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.statemachine.conftest import EPOCH, FakeClock, failure_of, machine, output_of


async def test_aws_example_wait_ten_seconds(clock: FakeClock) -> None:
    # AWS guide, "Wait State Examples": "wait_ten_seconds" introduces a 10-second delay.
    definition = machine({"Type": "Wait", "Seconds": 10}, name="wait_ten_seconds")
    assert await output_of(definition, {"keep": "me"}, clock=clock) == {"keep": "me"}
    assert clock.sleeps == [10.0]
    assert clock.now() == EPOCH + 10


async def test_aws_example_wait_until_timestamp(clock: FakeClock) -> None:
    # AWS guide, "Wait State Examples": wait until 2016-03-14T01:59:00Z.
    definition = machine({"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z"})
    assert await output_of(definition, {}, clock=clock) == {}
    assert clock.sleeps == [60.0]


async def test_aws_example_timestamp_path(clock: FakeClock) -> None:
    # AWS guide, "Wait State Examples": TimestampPath "$.expirydate" selects the time.
    definition = machine({"Type": "Wait", "TimestampPath": "$.expirydate"}, name="wait_until")
    data = {"expirydate": "2016-03-14T01:59:00Z"}
    assert await output_of(definition, data, clock=clock) == data
    assert clock.sleeps == [60.0]


@pytest.mark.parametrize(
    ("stamp", "delay"),
    [
        ("2016-03-14T02:59:00+01:00", 60.0),  # an offset names the same instant
        ("2016-03-14T01:58:30.5Z", 30.5),
        ("2016-03-14T01:58:00.250Z", 0.25),
    ],
)
async def test_timestamp_offsets_and_fractions(clock: FakeClock, stamp: str, delay: float) -> None:
    # Spec, "Timestamps": RFC 3339 with an uppercase T, and Z or a numeric offset.
    await output_of(machine({"Type": "Wait", "TimestampPath": "$.t"}), {"t": stamp}, clock=clock)
    assert clock.sleeps == [pytest.approx(delay)]


async def test_timestamp_in_the_past_does_not_wait(clock: FakeClock) -> None:
    # Spec, Wait State: the state waits *until* the time; a time already passed is no wait.
    definition = machine({"Type": "Wait", "Timestamp": "2016-03-14T01:00:00Z"})
    assert await output_of(definition, {"a": 1}, clock=clock) == {"a": 1}
    assert clock.sleeps == []


@pytest.mark.parametrize("seconds", [0, 1, 42])
async def test_seconds_path(clock: FakeClock, seconds: float) -> None:
    # AWS-recorded (shared/asl-cases, wait__base_wait_seconds_path_0): SecondsPath 0 is
    # accepted and the input passes through.
    definition = machine({"Type": "Wait", "SecondsPath": "$.input.waitSeconds"})
    data = {"input": {"waitSeconds": seconds}}
    assert await output_of(definition, data, clock=clock) == data
    assert clock.sleeps == ([float(seconds)] if seconds else [])


async def test_seconds_path_applies_to_the_effective_input(clock: FakeClock) -> None:
    # Spec, "Input and Output Processing": InputPath first; Wait reads its effective
    # input and outputs it (filtered by OutputPath).
    definition = machine(
        {"Type": "Wait", "InputPath": "$.cfg", "SecondsPath": "$.delay", "OutputPath": "$.tag"}
    )
    assert await output_of(definition, {"cfg": {"delay": 7, "tag": "t"}}, clock=clock) == "t"
    assert clock.sleeps == [7.0]


async def test_missing_seconds_path_is_a_runtime_error(clock: FakeClock) -> None:
    # AWS guide, Wait: SecondsPath selects from the input; selecting nothing fails (States.Runtime).
    error, cause = await failure_of(
        machine({"Type": "Wait", "SecondsPath": "$.delay"}), {}, clock=clock
    )
    assert error == "States.Runtime"
    assert cause is not None
    assert "$.delay" in cause
    assert clock.sleeps == []


@pytest.mark.parametrize("value", [-1, "10", None, [1], True])
async def test_seconds_path_must_select_a_non_negative_number(clock: FakeClock, value: Any) -> None:
    # AWS guide, Wait: the selected value must be a non-negative number of seconds.
    error, cause = await failure_of(
        machine({"Type": "Wait", "SecondsPath": "$.delay"}), {"delay": value}, clock=clock
    )
    assert error == "States.Runtime"
    assert cause is not None
    assert "SecondsPath" in cause
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "stamp",
    ["2016-13-05T21:29:29Z", "05-12-2016T21:29:29Z", "2016-12-05 21:29:29Z", "2016-12-05T21:29:29"],
)
async def test_invalid_timestamp_path_value(clock: FakeClock, stamp: str) -> None:
    # AWS-recorded (shared/asl-cases, base_scenarios__wait_timestamp_path_*): the exact
    # error and cause AWS reports for an invalid date, a non-ISO date, a missing T or Z.
    definition = machine({"Type": "Wait", "TimestampPath": "$.TimestampValue"}, name="WaitUntil")
    error, cause = await failure_of(definition, {"TimestampValue": stamp}, clock=clock)
    assert error == "States.Runtime"
    assert cause == (
        "An error occurred while executing the state 'WaitUntil' (entered at the event id "
        "#2). The TimestampPath parameter does not reference a valid ISO-8601 extended "
        f"offset date-time format string: $.TimestampValue == {stamp}"
    )


async def test_waits_add_up_and_the_next_state_sees_the_later_time(clock: FakeClock) -> None:
    # Spec, "Context Object": State.EnteredTime is when the state was entered.
    definition = {
        "StartAt": "W1",
        "States": {
            "W1": {"Type": "Wait", "Seconds": 10, "Next": "W2"},
            "W2": {"Type": "Wait", "Seconds": 5, "Next": "Stamp"},
            "Stamp": {
                "Type": "Pass",
                "Parameters": {"entered.$": "$$.State.EnteredTime"},
                "End": True,
            },
        },
    }
    assert await output_of(definition, {}, clock=clock) == {"entered": "2016-03-14T01:58:15.000Z"}
    assert clock.sleeps == [10.0, 5.0]


async def test_wait_history_records_the_state() -> None:
    # Spec, Wait State: the state waits, then passes its input on.
    from tests.statemachine.conftest import run

    result = await run(machine({"Type": "Wait", "Seconds": 1}, name="W"), {"x": 1})
    [event] = result.history
    assert (event.state, event.type, event.status, event.input, event.output) == (
        "W",
        "Wait",
        "SUCCEEDED",
        {"x": 1},
        {"x": 1},
    )
    assert event.ended_at - event.started_at == 1.0
