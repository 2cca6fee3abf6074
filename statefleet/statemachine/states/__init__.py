"""One module per ASL state type; :data:`STATE_TYPES` maps the ``Type`` field to its class."""

from __future__ import annotations

from statefleet.statemachine.states.base import State
from statefleet.statemachine.states.choice import ChoiceState
from statefleet.statemachine.states.fail import FailState
from statefleet.statemachine.states.map_ import MapState
from statefleet.statemachine.states.message import MessageState
from statefleet.statemachine.states.parallel import ParallelState
from statefleet.statemachine.states.pass_ import PassState
from statefleet.statemachine.states.succeed import SucceedState
from statefleet.statemachine.states.task import TaskState
from statefleet.statemachine.states.wait import WaitState

STATE_TYPES: dict[str, type[State]] = {
    "Pass": PassState,
    "Task": TaskState,
    "Choice": ChoiceState,
    "Wait": WaitState,
    "Succeed": SucceedState,
    "Fail": FailState,
    "Parallel": ParallelState,
    "Map": MapState,
    "Message": MessageState,
}

__all__ = [
    "STATE_TYPES",
    "ChoiceState",
    "FailState",
    "MapState",
    "MessageState",
    "ParallelState",
    "PassState",
    "State",
    "SucceedState",
    "TaskState",
    "WaitState",
]
