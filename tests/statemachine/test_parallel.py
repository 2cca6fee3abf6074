"""Parallel state: branches on copies of one input, an array of their outputs.

Sources: the ASL specification (states-language.net, "Parallel State") and the AWS
developer guide page "Parallel workflow state" (amazon-states-language-parallel-state.md),
whose "FunWithMath" and "LookupCustomerInfo" examples are used as is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.statemachine.conftest import Script, fails, failure_of, output_of, run


def branch(name: str, state: dict[str, Any]) -> dict[str, Any]:
    spec = dict(state)
    if spec["Type"] in {"Pass", "Task", "Wait", "Parallel", "Map"}:
        spec.setdefault("End", True)
    return {"StartAt": name, "States": {name: spec}}


def parallel(*branches: dict[str, Any], **fields: Any) -> dict[str, Any]:
    spec = {"Type": "Parallel", "Branches": list(branches), **fields}
    if "Next" not in fields:
        spec["End"] = True
    return {"StartAt": "P", "States": {"P": spec}}


FUN_WITH_MATH = {
    "Comment": "Parallel Example.",
    "StartAt": "FunWithMath",
    "States": {
        "FunWithMath": {
            "Type": "Parallel",
            "End": True,
            "Branches": [
                branch(
                    "Add",
                    {"Type": "Task", "Resource": "arn:aws:swf:us-east-1:123456789012:task:Add"},
                ),
                branch(
                    "Subtract",
                    {
                        "Type": "Task",
                        "Resource": "arn:aws:swf:us-east-1:123456789012:task:Subtract",
                    },
                ),
            ],
        }
    },
}
MATH = {"task:Add": lambda xs: xs[0] + xs[1], "task:Subtract": lambda xs: xs[0] - xs[1]}


async def test_aws_fun_with_math() -> None:
    # AWS guide, "Parallel State Input and Output Processing": given [3, 2] both branches
    # receive the array; the Parallel output is [5, 1].
    assert await output_of(FUN_WITH_MATH, [3, 2], resources=MATH) == [5, 1]


async def test_aws_lookup_customer_info_runs_both_branches() -> None:
    # AWS guide, "Parallel State Example": LookupAddress and LookupPhone in parallel.
    definition = parallel(
        branch(
            "LookupAddress",
            {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:AddressFinder",
            },
        ),
        branch(
            "LookupPhone",
            {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:PhoneFinder",
            },
        ),
    )
    address, phone = Script({"street": "1 Main St"}), Script({"phone": "555-0100"})
    output = await output_of(
        definition, {"customer": 7}, resources={"AddressFinder": address, "PhoneFinder": phone}
    )
    assert output == [{"street": "1 Main St"}, {"phone": "555-0100"}]
    assert address.calls == phone.calls == [{"customer": 7}]


async def test_branches_run_concurrently() -> None:
    # AWS guide: branches are executed "as concurrently as possible". Each branch waits for
    # the other one to have started: run one after the other, they would never finish.
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    def meet(me: str, other: str) -> Any:
        async def task(payload: Any) -> str:
            started[me].set()
            await asyncio.wait_for(started[other].wait(), timeout=2)
            return me

        return task

    definition = parallel(
        branch("A", {"Type": "Task", "Resource": "a"}),
        branch("B", {"Type": "Task", "Resource": "b"}),
    )
    output = await output_of(definition, {}, resources={"a": meet("a", "b"), "b": meet("b", "a")})
    assert output == ["a", "b"]


async def test_output_keeps_branch_order_not_finish_order() -> None:
    # Spec, Parallel State: the output array has "one element for each branch", in order.
    async def slow(payload: Any) -> str:
        for _ in range(5):
            await asyncio.sleep(0)
        return "slow"

    definition = parallel(
        branch("Slow", {"Type": "Task", "Resource": "slow"}),
        branch("Fast", {"Type": "Pass", "Result": "fast"}),
    )
    assert await output_of(definition, {}, resources={"slow": slow}) == ["slow", "fast"]


async def test_each_branch_gets_a_copy_of_the_effective_input() -> None:
    # AWS guide: "A Parallel state provides each branch with a copy of its own input data
    # (subject to modification by the InputPath field)".
    definition = parallel(
        branch("One", {"Type": "Pass", "Result": 1, "ResultPath": "$.mark"}),
        branch("Two", {"Type": "Pass"}),
        InputPath="$.shared",
    )
    output = await output_of(definition, {"shared": {"v": 0}, "other": True})
    assert output == [{"v": 0, "mark": 1}, {"v": 0}]


async def test_parameters_build_the_branch_input() -> None:
    # Spec, "Input and Output Processing": Parameters build the Parallel's effective input.
    definition = parallel(branch("B", {"Type": "Pass"}), Parameters={"x.$": "$.a", "k": "c"})
    assert await output_of(definition, {"a": 5}) == [{"x": 5, "k": "c"}]


async def test_result_path_and_result_selector_apply_to_the_array() -> None:
    # Spec, Parallel State: "The output array can be inserted into the input data ... by
    # using a ResultPath field in the usual way"; ResultSelector shapes it first.
    definition = parallel(
        branch("A", {"Type": "Pass", "Result": {"n": 1}}),
        branch("B", {"Type": "Pass", "Result": {"n": 2}}),
        ResultSelector={"first.$": "$[0].n", "all.$": "$[*].n"},
        ResultPath="$.results",
    )
    assert await output_of(definition, {"id": "x"}) == {
        "id": "x",
        "results": {"first": 1, "all": [1, 2]},
    }


async def test_flattening_an_array_of_arrays() -> None:
    # AWS guide, "ResultSelector": "Flattening an array of arrays" from a Parallel state
    # with the path "$[*][*]".
    definition = parallel(
        branch("A", {"Type": "Pass", "Result": [1, 2]}),
        branch("B", {"Type": "Pass", "Result": [3]}),
        ResultSelector={"flattenArray.$": "$[*][*]"},
    )
    assert await output_of(definition, {}) == {"flattenArray": [1, 2, 3]}


async def test_branch_failure_fails_the_parallel_and_stops_other_branches() -> None:
    # AWS guide, "Error Handling": "If any branch fails ... the entire Parallel state is
    # considered to have failed and all its branches are stopped".
    finished: list[str] = []

    async def long_running(payload: Any) -> str:
        await asyncio.sleep(3600)
        finished.append("long")
        return "never"

    definition = parallel(
        branch("Long", {"Type": "Task", "Resource": "long"}),
        branch("Broken", {"Type": "Task", "Resource": "broken"}),
    )
    resources = {"long": long_running, "broken": Script(fails("BranchError", "it broke"))}
    assert await failure_of(definition, {}, resources=resources) == ("BranchError", "it broke")
    assert finished == []


async def test_fail_state_in_a_branch_fails_the_parallel() -> None:
    # AWS guide, "Error Handling": a branch fails "because of an unhandled error or by
    # transitioning to a Fail state".
    definition = parallel(
        branch("Ok", {"Type": "Pass"}),
        branch("Stop", {"Type": "Fail", "Error": "ErrorA", "Cause": "Invalid response."}),
    )
    assert await failure_of(definition, {}) == ("ErrorA", "Invalid response.")


async def test_succeed_in_a_branch_ends_only_that_branch() -> None:
    # Spec, Parallel State: each branch is a state machine; its terminal state ends it.
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    branch("Done", {"Type": "Succeed"}),
                    branch("Mark", {"Type": "Pass", "Result": "marked"}),
                ],
                "Next": "After",
            },
            "After": {"Type": "Pass", "Result": "after", "ResultPath": "$[0]", "End": True},
        },
    }
    assert await output_of(definition, {"in": 1}) == ["after", "marked"]


async def test_catch_on_parallel_with_result_path() -> None:
    # AWS guide, Parallel state "Catch"; error output placed with ResultPath.
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [branch("Stop", {"Type": "Fail", "Error": "Custom", "Cause": "why"})],
                "Catch": [{"ErrorEquals": ["Custom"], "ResultPath": "$.error", "Next": "Handler"}],
                "End": True,
            },
            "Handler": {"Type": "Pass", "End": True},
        },
    }
    assert await output_of(definition, {"in": 1}) == {
        "in": 1,
        "error": {"Error": "Custom", "Cause": "why"},
    }


async def test_retry_on_parallel_reruns_every_branch() -> None:
    # AWS guide, Parallel state "Retry": the retrier applies to the Parallel state as a
    # whole, so a retry runs all branches again.
    steady, flaky = Script("steady"), Script(fails("Flaky"), "recovered")
    definition = parallel(
        branch("Steady", {"Type": "Task", "Resource": "steady"}),
        branch("Flaky", {"Type": "Task", "Resource": "flaky"}),
        Retry=[{"ErrorEquals": ["Flaky"], "IntervalSeconds": 2}],
    )
    result = await run(definition, {}, resources={"steady": steady, "flaky": flaky})
    assert (result.status, result.output) == ("SUCCEEDED", ["steady", "recovered"])
    assert len(steady.calls) == 2
    assert len(flaky.calls) == 2


async def test_nested_parallel() -> None:
    # Spec, Parallel State: each branch is a state machine; it may itself hold a Parallel.
    inner = {
        "Type": "Parallel",
        "Branches": [
            branch("A", {"Type": "Pass", "Result": "a"}),
            branch("B", {"Type": "Pass", "Result": "b"}),
        ],
    }
    definition = parallel(branch("Inner", inner), branch("C", {"Type": "Pass", "Result": "c"}))
    assert await output_of(definition, {}) == [["a", "b"], "c"]
