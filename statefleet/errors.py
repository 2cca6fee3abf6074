"""Every exception statefleet raises, in one small tree.

::

    StatefleetError
     ├── DefinitionError          the ASL document is invalid; .problems lists every fault
     ├── ExecutionError           an ASL failure (error name + cause): what Retry/Catch see
     │    ├── TaskError            raised by a task callable to fail with a chosen error name
     │    └── RuntimeFailure       found by the interpreter (bad path, bad type, ...); its cause
     │                             is shown after "An error occurred while executing the state …"
     ├── ResourceNotFoundError    a Task names a resource that is not registered
     ├── NotFoundError            no such execution, machine, batch or state output
     ├── ChainingError            a chained execution's source cannot give it an input
     ├── StaleExecutionError      a write refused by the version guard (another runner won)
     └── InfrastructureError      store/queue trouble; never visible to Catch

ASL error names that the runtime itself raises live in :class:`ErrorName`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorName(StrEnum):
    """The predefined ``States.*`` error names of the Amazon States Language."""

    ALL = "States.ALL"
    DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
    EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
    HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
    INTRINSIC_FAILURE = "States.IntrinsicFailure"
    ITEM_READER_FAILED = "States.ItemReaderFailed"
    NO_CHOICE_MATCHED = "States.NoChoiceMatched"
    PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
    PERMISSIONS = "States.Permissions"
    QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"
    RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
    RESULT_WRITER_FAILED = "States.ResultWriterFailed"
    RUNTIME = "States.Runtime"
    TASK_FAILED = "States.TaskFailed"
    TIMEOUT = "States.Timeout"
    BRANCH_FAILED = "States.BranchFailed"


class StatefleetError(Exception):
    """Base class of every statefleet exception."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One fault in a definition: where (a JSON pointer) and what."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class DefinitionError(StatefleetError):
    """An ASL document that cannot run. ``problems`` holds every fault found."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid state machine definition ({count} {noun}):\n{lines}")


class ExecutionError(StatefleetError):
    """An ASL failure: an error name and a cause, as Retry and Catch see them.

    ``retryable`` is for queue workers (see :class:`statefleet.statemachine.steps.Failed`):
    None for a failure the definition itself decided (a Fail state, a Retry that ran out,
    inside a Map or Parallel branch too)."""

    retryable: bool | None = True

    def __init__(self, error: str, cause: str | None = None) -> None:
        self.error = str(error)
        self.cause = cause
        super().__init__(f"{self.error}: {cause}" if cause else self.error)


class TaskError(ExecutionError):
    """Raised by a task callable to fail its state with a chosen ASL error name.

    ``retryable=False`` marks a failure that retrying cannot fix: in distributed mode the
    job is not retried and the execution is dead-lettered at once (Retry/Catch of the
    state still see it as usual)."""

    def __init__(self, error: str, cause: str | None = None, *, retryable: bool = True) -> None:
        super().__init__(error, cause)
        self.retryable = retryable


class RuntimeFailure(ExecutionError):
    """A failure the interpreter detects while running a state (AWS's ``States.Runtime`` family).

    The cause holds only the specific part; the interpreter prefixes it with the state
    name and event id the way AWS words it.
    """


class ResourceNotFoundError(StatefleetError):
    """A Task state names a resource that is not registered."""


class NotFoundError(StatefleetError, LookupError):
    """No execution, state machine, batch or state output by that name or id."""


class ChainingError(StatefleetError):
    """A chained execution cannot take its input from the source it names."""


class StaleExecutionError(StatefleetError):
    """The execution changed under this runner (taken over, cancelled): its write was refused."""


class InfrastructureError(StatefleetError):
    """A store or queue failure. Never visible to Retry/Catch; the original is ``__cause__``."""
