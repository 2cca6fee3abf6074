"""statefleet: Amazon States Language state machines over many entities at once."""

from statefleet.errors import (
    DefinitionError,
    ExecutionError,
    ResourceNotFoundError,
    StatefleetError,
    TaskError,
)
from statefleet.statemachine.machine import RunResult, StateMachine
from statefleet.statemachine.runtime import TaskContext

__all__ = [
    "DefinitionError",
    "ExecutionError",
    "ResourceNotFoundError",
    "RunResult",
    "StateMachine",
    "StatefleetError",
    "TaskContext",
    "TaskError",
]
