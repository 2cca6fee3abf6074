"""Map state: one run of the item processor per item of an array.

Sources: the ASL specification (states-language.net, "Map State"), the AWS developer
guide pages "Map workflow state" (amazon-states-language-map-state.md: the
"Validate-All" examples) and "The Context Object" (input-output-contextobject.md:
"Context Object Data For Map States"), and AWS-recorded executions in shared/asl-cases.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.statemachine.conftest import Script, fails, failure_of, output_of, run

SHIPMENT: dict[str, Any] = {
    "ship-date": "2016-03-14T01:59:00Z",
    "detail": {
        "delivery-partner": "UQS",
        "shipped": [
            {"prod": "R31", "dest-code": 9511, "quantity": 1344},
            {"prod": "S39", "dest-code": 9511, "quantity": 40},
            {"prod": "R31", "dest-code": 9833, "quantity": 12},
            {"prod": "R40", "dest-code": 9860, "quantity": 887},
            {"prod": "R40", "dest-code": 9511, "quantity": 1220},
        ],
    },
}

VALIDATE = {
    "StartAt": "Validate",
    "States": {
        "Validate": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:ship-val",
            "End": True,
        }
    },
}


def mapping(processor: dict[str, Any], **fields: Any) -> dict[str, Any]:
    spec = {"Type": "Map", "ItemProcessor": processor, **fields}
    if "Next" not in fields:
        spec["End"] = True
    return {"StartAt": "M", "States": {"M": spec}}


def single(state: dict[str, Any], name: str = "Item") -> dict[str, Any]:
    spec = dict(state)
    if spec["Type"] in {"Pass", "Task", "Wait", "Parallel", "Map"}:
        spec.setdefault("End", True)
    return {"StartAt": name, "States": {name: spec}}


async def test_aws_validate_all_example() -> None:
    # AWS guide, "Map State Example": each item of $.detail.shipped goes to ship-val; the
    # array of results replaces detail.shipped (ResultPath) in the original input.
    definition = {
        "StartAt": "Validate-All",
        "States": {
            "Validate-All": {
                "Type": "Map",
                "InputPath": "$.detail",
                "ItemsPath": "$.shipped",
                "MaxConcurrency": 0,
                "Iterator": VALIDATE,
                "ResultPath": "$.detail.shipped",
                "End": True,
            }
        },
    }
    ship_val = Script(lambda item: {"prod": item["prod"], "valid": item["quantity"] < 1000})
    output = await output_of(definition, SHIPMENT, resources={"ship-val": ship_val})
    assert ship_val.calls == SHIPMENT["detail"]["shipped"]
    assert output == {
        "ship-date": "2016-03-14T01:59:00Z",
        "detail": {
            "delivery-partner": "UQS",
            "shipped": [
                {"prod": "R31", "valid": False},
                {"prod": "S39", "valid": True},
                {"prod": "R31", "valid": True},
                {"prod": "R40", "valid": True},
                {"prod": "R40", "valid": False},
            ],
        },
    }


async def test_aws_validate_all_with_parameters() -> None:
    # AWS guide, "Map State Example With Parameters": each iteration gets
    # {"parcel": <item>, "courier": "UQS"} from $$.Map.Item.Value and the Map's input.
    definition = {
        "StartAt": "Validate-All",
        "States": {
            "Validate-All": {
                "Type": "Map",
                "InputPath": "$.detail",
                "ItemsPath": "$.shipped",
                "MaxConcurrency": 0,
                "ResultPath": "$.detail.shipped",
                "Parameters": {"parcel.$": "$$.Map.Item.Value", "courier.$": "$.delivery-partner"},
                "Iterator": VALIDATE,
                "End": True,
            }
        },
    }
    ship_val = Script(lambda payload: payload)
    output = await output_of(definition, SHIPMENT, resources={"ship-val": ship_val})
    assert ship_val.calls[0] == {
        "parcel": {"prod": "R31", "dest-code": 9511, "quantity": 1344},
        "courier": "UQS",
    }
    assert output["detail"]["shipped"] == [
        {"parcel": item, "courier": "UQS"} for item in SHIPMENT["detail"]["shipped"]
    ]


@pytest.mark.parametrize("field", ["ItemSelector", "Parameters"])
async def test_aws_context_object_map_example(field: str) -> None:
    # AWS guide, "Context Object Data For Map States": Index and Value of each item.
    definition = {
        "StartAt": "ExampleMapState",
        "States": {
            "ExampleMapState": {
                "Type": "Map",
                field: {
                    "ContextIndex.$": "$$.Map.Item.Index",
                    "ContextValue.$": "$$.Map.Item.Value",
                },
                "ItemProcessor": single({"Type": "Pass"}, "TestPass"),
                "End": True,
            }
        },
    }
    data = [{"who": "bob"}, {"who": "meg"}, {"who": "joe"}]
    assert await output_of(definition, data) == [
        {"ContextValue": {"who": "bob"}, "ContextIndex": 0},
        {"ContextValue": {"who": "meg"}, "ContextIndex": 1},
        {"ContextValue": {"who": "joe"}, "ContextIndex": 2},
    ]


async def test_items_path_defaults_to_the_whole_input() -> None:
    # AWS guide, "Map State Input and Output Processing": "If not specified, the value of
    # ItemsPath is $".
    definition = mapping(single({"Type": "Task", "Resource": "double"}))
    assert await output_of(definition, [1, 2, 3], resources={"double": lambda n: n * 2}) == [
        2,
        4,
        6,
    ]


async def test_empty_array_gives_an_empty_array() -> None:
    # Spec, Map State: one iteration per item; no item, no iteration, an empty array out.
    ran = Script("ran")
    definition = mapping(single({"Type": "Task", "Resource": "t"}), ItemsPath="$.items")
    assert await output_of(definition, {"items": []}, resources={"t": ran}) == []
    assert ran.calls == []


@pytest.mark.parametrize("value", [{"a": 1}, "abc", 3, None])
async def test_items_must_be_an_array(value: Any) -> None:
    # AWS guide, "Map State Input and Output Processing": ItemsPath "must identify a field
    # whose value is a JSON array".
    definition = mapping(single({"Type": "Pass"}), ItemsPath="$.items")
    error, _ = await failure_of(definition, {"items": value})
    assert error == "States.Runtime"


async def test_missing_items_path_is_a_runtime_error() -> None:
    # AWS guide, ItemsPath: a reference path that must select an array; selecting nothing fails.
    definition = mapping(single({"Type": "Pass"}), ItemsPath="$.items")
    error, cause = await failure_of(definition, {})
    assert error == "States.Runtime"
    assert cause is not None
    assert "$.items" in cause


def concurrency_probe() -> tuple[Any, dict[str, Any]]:
    """A task that records the order items start in and the peak of simultaneous runs."""
    stats: dict[str, Any] = {"active": 0, "peak": 0, "order": []}

    async def task(item: Any) -> Any:
        stats["order"].append(item)
        stats["active"] += 1
        stats["peak"] = max(stats["peak"], stats["active"])
        for _ in range(3):
            await asyncio.sleep(0)
        stats["active"] -= 1
        return item

    return task, stats


async def test_max_concurrency_one_runs_items_in_order_one_at_a_time() -> None:
    # AWS guide, Map "MaxConcurrency": "A value of 1 invokes the Iterator once for each
    # array element in the order of their appearance in the input, and will not start a
    # new iteration until the previous has completed".
    task, stats = concurrency_probe()
    definition = mapping(single({"Type": "Task", "Resource": "t"}), MaxConcurrency=1)
    items = list(range(6))
    assert await output_of(definition, items, resources={"t": task}) == items
    assert stats["order"] == items
    assert stats["peak"] == 1


async def test_max_concurrency_bounds_simultaneous_iterations() -> None:
    # AWS guide, Map "MaxConcurrency": "an upper bound on how many invocations of the
    # Iterator may run in parallel".
    task, stats = concurrency_probe()
    definition = mapping(single({"Type": "Task", "Resource": "t"}), MaxConcurrency=2)
    items = list(range(7))
    assert await output_of(definition, items, resources={"t": task}) == items
    assert stats["peak"] == 2


async def test_default_concurrency_is_unbounded() -> None:
    # AWS guide, Map "MaxConcurrency": "The default value is 0, which places no limit on
    # parallelism".
    task, stats = concurrency_probe()
    definition = mapping(single({"Type": "Task", "Resource": "t"}))
    assert await output_of(definition, list(range(5)), resources={"t": task}) == list(range(5))
    assert stats["peak"] == 5


async def test_output_order_is_item_order() -> None:
    # AWS guide: "the output of the Map state is a JSON array, where each item is the output
    # of an iteration" — in item order, however long each took.
    async def task(n: int) -> int:
        for _ in range(10 - n):
            await asyncio.sleep(0)
        return n * 10

    definition = mapping(single({"Type": "Task", "Resource": "t"}))
    assert await output_of(definition, [1, 5, 9], resources={"t": task}) == [10, 50, 90]


async def test_a_failed_iteration_fails_the_map() -> None:
    # AWS guide, Map "ItemsPath": "If any iteration fails, entire Map state fails, and all
    # iterations are terminated".
    def check(item: int) -> int:
        if item == 3:
            raise fails("BadItem", f"item {item}")
        return item

    definition = mapping(single({"Type": "Task", "Resource": "t"}), MaxConcurrency=1)
    assert await failure_of(definition, [1, 2, 3, 4], resources={"t": check}) == (
        "BadItem",
        "item 3",
    )


async def test_a_failed_iteration_stops_the_running_ones() -> None:
    # AWS guide, Map: "If any iteration fails, entire Map state fails, and all iterations
    # are terminated".
    finished: list[int] = []

    async def task(item: int) -> int:
        if item == 0:
            raise fails("Early")
        await asyncio.sleep(3600)
        finished.append(item)
        return item

    definition = mapping(single({"Type": "Task", "Resource": "t"}))
    error, _ = await failure_of(definition, [0, 1, 2], resources={"t": task})
    assert error == "Early"
    assert finished == []


async def test_fail_state_in_an_iteration_fails_the_map() -> None:
    # AWS guide, Map: an iteration that ends in a Fail state fails the Map state.
    definition = mapping(
        {
            "StartAt": "Check",
            "States": {
                "Check": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$", "NumericGreaterThan": 2, "Next": "TooBig"}],
                    "Default": "Fine",
                },
                "TooBig": {"Type": "Fail", "Error": "TooBig", "Cause": "over two"},
                "Fine": {"Type": "Succeed"},
            },
        }
    )
    assert await output_of(definition, [1, 2]) == [1, 2]
    assert await failure_of(definition, [1, 2, 3]) == ("TooBig", "over two")


async def test_catch_on_map() -> None:
    # AWS guide, Map "Catch": a fallback state when the Map fails.
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": single({"Type": "Task", "Resource": "t"}),
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Recover"}
                ],
                "End": True,
            },
            "Recover": {"Type": "Pass", "End": True},
        },
    }
    output = await output_of(
        definition, {"items": [1]}, resources={"t": Script(fails("Nope", "no"))}
    )
    assert output == {"items": [1], "failure": {"Error": "Nope", "Cause": "no"}}


async def test_item_selector_sees_the_map_input_and_the_item() -> None:
    # AWS guide, "ItemSelector": values come from the Map state's (effective) input with
    # "$" and from the current item with "$$.Map.Item.Value".
    definition = mapping(
        single({"Type": "Pass"}),
        ItemsPath="$.ids",
        ItemSelector={"id.$": "$$.Map.Item.Value", "tenant.$": "$.tenant", "fixed": 1},
    )
    assert await output_of(definition, {"tenant": "acme", "ids": ["a", "b"]}) == [
        {"id": "a", "tenant": "acme", "fixed": 1},
        {"id": "b", "tenant": "acme", "fixed": 1},
    ]


async def test_result_selector_on_map() -> None:
    # AWS guide, Map state: ResultSelector applies to the array of results.
    definition = mapping(
        single({"Type": "Pass"}),
        ResultSelector={"count.$": "States.ArrayLength($)", "first.$": "$[0]"},
    )
    assert await output_of(definition, ["x", "y", "z"]) == {"count": 3, "first": "x"}


async def test_nested_map() -> None:
    # Spec, Map State: the item processor is a state machine; it may itself hold a Map.
    inner = {"Type": "Map", "ItemProcessor": single({"Type": "Task", "Resource": "inc"}, "Inc")}
    definition = mapping(single(inner, "Inner"))
    output = await output_of(definition, [[1, 2], [], [3]], resources={"inc": lambda n: n + 1})
    assert output == [[2, 3], [], [4]]


async def test_tolerated_failure_count() -> None:
    # AWS guide, "Setting failure thresholds for Distributed Map states": the Map fails
    # with States.ExceedToleratedFailureThreshold only past the tolerated count.
    def odd_fails(n: int) -> int:
        if n % 2:
            raise fails("Odd")
        return n

    processor = single({"Type": "Task", "Resource": "t"})
    tolerant = mapping(processor, ToleratedFailureCount=2)
    result = await run(tolerant, [0, 1, 2, 3], resources={"t": odd_fails})
    assert result.status == "SUCCEEDED"
    assert [result.output[0], result.output[2]] == [0, 2]
    error, _ = await failure_of(tolerant, [1, 3, 5], resources={"t": odd_fails})
    assert error == "States.ExceedToleratedFailureThreshold"


async def test_tolerated_failure_percentage() -> None:
    # AWS guide, "Setting failure thresholds": ToleratedFailurePercentage.
    def odd_fails(n: int) -> int:
        if n % 2:
            raise fails("Odd")
        return n

    definition = mapping(single({"Type": "Task", "Resource": "t"}), ToleratedFailurePercentage=50)
    result = await run(definition, [0, 1, 2, 3], resources={"t": odd_fails})
    assert result.status == "SUCCEEDED"
    error, _ = await failure_of(definition, [0, 1, 3, 5], resources={"t": odd_fails})
    assert error == "States.ExceedToleratedFailureThreshold"


async def test_item_batcher_groups_items() -> None:
    # AWS guide, "ItemBatcher": each child execution gets {"Items": [...]} (plus
    # "BatchInput" when given) instead of one item.
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        **single({"Type": "Pass"}),
    }
    definition = mapping(processor, ItemBatcher={"MaxItemsPerBatch": 2, "BatchInput": {"run": 7}})
    assert await output_of(definition, [1, 2, 3]) == [
        {"Items": [1, 2], "BatchInput": {"run": 7}},
        {"Items": [3], "BatchInput": {"run": 7}},
    ]
