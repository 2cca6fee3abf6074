"""The machines and settings every benchmark shares, so that each figure in
bench/results/latest.md measures the same work.

FOUR_STATE is the machine the issues' targets name: Pass -> Task (no-op) -> Choice ->
Succeed. Its sources carry ``{"order": ..., "amount": ...}``.
"""

from __future__ import annotations

from typing import Any

FOUR_STATE: dict[str, Any] = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {
            "Type": "Pass",
            "Parameters": {"order.$": "$.order", "amount.$": "$.amount"},
            "Next": "Work",
        },
        "Work": {"Type": "Task", "Resource": "noop", "ResultPath": "$.work", "Next": "Big?"},
        "Big?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.amount", "NumericGreaterThan": 100, "Next": "Done"}],
            "Default": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}

MAP_100: dict[str, Any] = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "StartAt": "Double",
                "States": {"Double": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": True}},
            },
            "End": True,
        }
    },
}

PASS_ONLY: dict[str, Any] = {"StartAt": "Copy", "States": {"Copy": {"Type": "Pass", "End": True}}}

#: PostgreSQL's default durability, stated explicitly (the test server turns fsync off).
DURABLE_POSTGRES = ["fsync=on", "synchronous_commit=on", "full_page_writes=on"]


def noop(payload: Any) -> dict[str, bool]:
    """The Task of FOUR_STATE: no work, so the figures measure statefleet."""
    return {"ok": True}


def source_input(i: int) -> dict[str, Any]:
    """The input of the i-th source execution."""
    return {"order": f"o-{i}", "amount": i % 250}


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) of an ascending list, nearest rank."""
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]
