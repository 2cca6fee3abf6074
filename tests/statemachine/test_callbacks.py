"""Callback states as definitions: the Message state's fields and `.waitForTaskToken` tasks
are validated with JSON pointers; an in-memory run refuses them. (Running them needs a
store: tests/callbacks/.)"""

from __future__ import annotations

from typing import Any

import pytest

from statefleet import DefinitionError, StateMachine
from statefleet.statemachine.callbacks import CallbackStateError
from statefleet.statemachine.states.message import MessageState
from statefleet.statemachine.states.task import TaskState

TOKEN_TASK: dict[str, Any] = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"MessageBody": {"token.$": "$$.Task.Token"}},
            "TimeoutSeconds": 300,
            "HeartbeatSeconds": 60,
            "End": True,
        }
    },
}

MESSAGE: dict[str, Any] = {
    "StartAt": "Await",
    "States": {
        "Await": {
            "Type": "Message",
            "CorrelationKey": "payment",
            "CorrelationValuePath": "$.order",
            "TimeoutSeconds": 60,
            "TimeoutPath": "Late",
            "ResultPath": "$.payment",
            "Next": "Done",
        },
        "Late": {"Type": "Fail", "Error": "Late"},
        "Done": {"Type": "Succeed"},
    },
}


def test_wait_for_token_task_parses() -> None:
    machine = StateMachine.from_definition(TOKEN_TASK)
    task = machine.machine.states["Ask"]
    assert isinstance(task, TaskState) and task.wait_for_token
    assert machine.has_callbacks


def test_heartbeat_must_be_smaller_than_timeout() -> None:
    definition = {**TOKEN_TASK, "States": {"Ask": {**TOKEN_TASK["States"]["Ask"]}}}
    definition["States"]["Ask"]["HeartbeatSeconds"] = 300
    with pytest.raises(DefinitionError) as caught:
        StateMachine.from_definition(definition)
    assert '/States/Ask/HeartbeatSeconds: "HeartbeatSeconds" (300) must be smaller' in str(
        caught.value
    )


def test_message_state_parses_with_its_timeout_path() -> None:
    machine = StateMachine.from_definition(MESSAGE)
    state = machine.machine.states["Await"]
    assert isinstance(state, MessageState)
    assert (state.correlation_key, state.timeout, state.timeout_state) == ("payment", 60, "Late")
    assert state.successors() == ["Done", "Late"]
    assert machine.has_callbacks


def test_message_state_validation() -> None:
    with pytest.raises(DefinitionError) as caught:
        StateMachine.from_definition(
            {
                "StartAt": "M",
                "States": {
                    "M": {
                        "Type": "Message",
                        "CorrelationValuePath": "$.id",
                        "CorrelationValue": 1,
                        "TimeoutPath": "Nowhere",
                        "MessagePath": "$.x",
                        "End": True,
                    }
                },
            }
        )
    text = str(caught.value)
    assert "/States/M: Message state 'M' needs \"CorrelationKey\"" in text
    assert '"CorrelationValuePath" and "CorrelationValue" cannot be used together' in text
    assert '/States/M/TimeoutPath: "TimeoutPath" needs "TimeoutSeconds"' in text
    assert "/States/M/TimeoutPath: \"TimeoutPath\" names state 'Nowhere'" in text
    assert "/States/M/MessagePath" in text


def test_message_state_is_jsonpath_only() -> None:
    definition = {**MESSAGE, "QueryLanguage": "JSONata"}
    definition["States"] = {
        "Await": {"Type": "Message", "CorrelationKey": "k", "End": True},
    }
    with pytest.raises(DefinitionError, match=r"/States/Await/Type: Message state .* JSONPath"):
        StateMachine.from_definition(definition)


@pytest.mark.parametrize("definition", [TOKEN_TASK, MESSAGE], ids=["token", "message"])
async def test_in_memory_run_refuses_callback_states(definition: dict[str, Any]) -> None:
    machine = StateMachine.from_definition(definition)
    with pytest.raises(CallbackStateError, match="PersistentStateMachine"):
        await machine.run({"order": 1}, resources={"sqs:sendMessage": lambda p: None})
