"""statefleet: Amazon States Language state machines over many entities at once."""

from statefleet.app import App
from statefleet.callbacks import (
    send_message,
    send_task_failure,
    send_task_heartbeat,
    send_task_success,
)
from statefleet.errors import (
    ChainingError,
    DefinitionError,
    ExecutionError,
    NotFoundError,
    ResourceNotFoundError,
    StaleExecutionError,
    StatefleetError,
    TaskError,
)
from statefleet.queue import QueueClient
from statefleet.settings import Settings
from statefleet.statemachine.batch import Batch, BatchOptions
from statefleet.statemachine.machine import RunResult, StateMachine
from statefleet.statemachine.persistent import PersistentStateMachine
from statefleet.statemachine.protocols import ExecutionFilter
from statefleet.statemachine.runtime import TaskContext
from statefleet.store import open_store

__all__ = [
    "App",
    "Batch",
    "BatchOptions",
    "ChainingError",
    "DefinitionError",
    "ExecutionError",
    "ExecutionFilter",
    "NotFoundError",
    "PersistentStateMachine",
    "QueueClient",
    "ResourceNotFoundError",
    "RunResult",
    "Settings",
    "StaleExecutionError",
    "StateMachine",
    "StatefleetError",
    "TaskContext",
    "TaskError",
    "open_store",
    "send_message",
    "send_task_failure",
    "send_task_heartbeat",
    "send_task_success",
]
