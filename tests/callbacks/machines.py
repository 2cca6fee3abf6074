"""Definitions and helpers shared by the callback suites (local and distributed)."""

from __future__ import annotations

import asyncio
from typing import Any

from statefleet.statemachine.protocols import ExecutionRecord, Store, WaitRecord

#: Approval by task token: the token goes to the callable through Parameters.
APPROVAL: dict[str, Any] = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token", "order.$": "$.order"},
            "ResultPath": "$.approval",
            "Catch": [
                {"ErrorEquals": ["Rejected"], "ResultPath": "$.rejection", "Next": "Refused"},
                {
                    "ErrorEquals": ["States.HeartbeatTimeout", "States.Timeout"],
                    "ResultPath": "$.timeout",
                    "Next": "Unanswered",
                },
            ],
            "Next": "Approved",
        },
        "Approved": {"Type": "Pass", "Result": "approved", "ResultPath": "$.outcome", "End": True},
        "Refused": {"Type": "Pass", "Result": "refused", "ResultPath": "$.outcome", "End": True},
        "Unanswered": {
            "Type": "Pass",
            "Result": "unanswered",
            "ResultPath": "$.outcome",
            "End": True,
        },
    },
}


def approval(
    *, heartbeat: int | None = None, timeout: int | None = None, retry: bool = False
) -> dict[str, Any]:
    """APPROVAL with HeartbeatSeconds/TimeoutSeconds, or a Retry on ``Flaky``."""
    import copy

    definition = copy.deepcopy(APPROVAL)
    ask = definition["States"]["Ask"]
    if heartbeat is not None:
        ask["HeartbeatSeconds"] = heartbeat
    if timeout is not None:
        ask["TimeoutSeconds"] = timeout
    if retry:
        ask["Retry"] = [{"ErrorEquals": ["Flaky"], "MaxAttempts": 1, "IntervalSeconds": 1}]
    return definition


def payment(*, timeout: int = 30) -> dict[str, Any]:
    """A Message state waiting for ``payment`` correlated on ``$.order``."""
    return {
        "StartAt": "AwaitPayment",
        "States": {
            "AwaitPayment": {
                "Type": "Message",
                "CorrelationKey": "payment",
                "CorrelationValuePath": "$.order",
                "TimeoutSeconds": timeout,
                "TimeoutPath": "Late",
                "ResultPath": "$.payment",
                "Next": "Paid",
            },
            "Paid": {"Type": "Pass", "Result": "paid", "ResultPath": "$.outcome", "End": True},
            "Late": {"Type": "Pass", "Result": "late", "ResultPath": "$.outcome", "End": True},
        },
    }


class Inbox:
    """A task callable that keeps the tokens (and payloads) it is handed."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.contexts: list[Any] = []

    def __call__(self, payload: dict[str, Any], context: Any) -> str:
        self.payloads.append(payload)
        self.contexts.append(context)
        return "ignored: a .waitForTaskToken task's result comes from its token"

    @property
    def tokens(self) -> list[str]:
        return [p["token"] for p in self.payloads]


async def open_wait_of(store: Store, execution_id: str) -> WaitRecord:
    """The open wait of a parked execution."""
    waits = await store.list_waits(execution_id=execution_id)
    assert len(waits) == 1, waits
    return waits[0]


async def until_status(
    store: Store,
    execution_id: str,
    *statuses: str,
    limit: float = 30.0,
) -> ExecutionRecord:
    """Poll the store until the execution has one of ``statuses`` (fails after ``limit``)."""
    async with asyncio.timeout(limit):
        while True:
            record = await store.get_execution(execution_id)
            assert record is not None
            if record.status in statuses:
                return record
            await asyncio.sleep(0.05)
