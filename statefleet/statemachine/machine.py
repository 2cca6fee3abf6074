"""``StateMachine``: an ASL definition run in memory, one execution per ``run`` call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from statefleet.errors import ErrorName, ResourceNotFoundError
from statefleet.statemachine.callbacks import CallbackStateError
from statefleet.statemachine.definition import Machine, content_hash, parse_definition
from statefleet.statemachine.interpreter import run_machine
from statefleet.statemachine.runtime import (
    Clock,
    HistoryEvent,
    ResourceRegistry,
    Run,
    Scope,
    SystemClock,
    missing_resource_message,
)
from statefleet.statemachine.states.base import PAYLOAD_LIMIT, exceeds
from statefleet.statemachine.states.message import MessageState
from statefleet.statemachine.states.task import TaskState
from statefleet.statemachine.steps import End, Failed, Parked

__all__ = ["RunResult", "StateMachine"]

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
ABORTED = "ABORTED"


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one in-memory execution ended."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[HistoryEvent] = field(default_factory=list)
    execution_id: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (what ``statefleet run`` prints)."""
        out: dict[str, Any] = {"status": self.status, "executionId": self.execution_id}
        if self.status == SUCCEEDED:
            out["output"] = self.output
        else:
            out["error"] = self.error
            out["cause"] = self.cause
        return out


class StateMachine:
    """An ASL state machine, validated and compiled once, run any number of times."""

    def __init__(self, document: Any, machine: Machine, *, name: str = "statefleet") -> None:
        self.document = document
        self.machine = machine
        self.name = name
        self.version = content_hash(document)
        self._tasks = [s for s in machine.walk() if isinstance(s, TaskState)]
        self._callback_states = [
            s.pointer
            for s in machine.walk()
            if isinstance(s, MessageState) or (isinstance(s, TaskState) and s.wait_for_token)
        ]

    @property
    def has_callbacks(self) -> bool:
        """Does any state wait for a callback (a ``.waitForTaskToken`` Task, a Message)?"""
        return bool(self._callback_states)

    @classmethod
    def from_definition(cls, definition: Any, *, name: str | None = None) -> StateMachine:
        """Parse a dict, JSON text or YAML text. Raise ``DefinitionError`` listing every fault."""
        document, machine = parse_definition(definition)
        return cls(document, machine, name=name or "statefleet")

    def check_resources(self, resources: ResourceRegistry) -> None:
        """Raise ResourceNotFoundError naming every Task whose resource is not registered."""
        missing = [
            missing_resource_message(t.resource, t.pointer, resources.names())
            for t in self._tasks
            if resources.find(t.resource) is None
        ]
        if missing:
            raise ResourceNotFoundError("; ".join(missing))

    async def run(
        self,
        input: Any = None,
        *,
        resources: Mapping[str, Callable[..., Any]] | ResourceRegistry | None = None,
        name: str | None = None,
        clock: Clock | None = None,
        history: bool = True,
    ) -> RunResult:
        """Run one execution to its end and return how it ended.

        Failures of the machine (task errors, ``States.*`` errors, the machine's
        ``TimeoutSeconds``) are part of the result, never raised. An unregistered
        resource raises :class:`~statefleet.errors.ResourceNotFoundError` before anything runs.
        """
        if self._callback_states:
            raise CallbackStateError(
                "this state machine waits for callbacks (a .waitForTaskToken Task or a Message "
                f"state at {', '.join(self._callback_states)}); an in-memory run cannot wait "
                "for them: run it with a PersistentStateMachine, whose executions park until "
                "send_task_success / send_message answers them"
            )
        registry = (
            resources if isinstance(resources, ResourceRegistry) else ResourceRegistry(resources)
        )
        self.check_resources(registry)
        clock = clock or SystemClock()
        execution_name = name or str(uuid.uuid4())
        started = clock.now()
        run = Run(
            resources=registry,
            clock=clock,
            execution_id=(
                f"arn:aws:states:local:000000000000:execution:{self.name}:{execution_name}"
            ),
            execution_name=execution_name,
            machine_id=f"arn:aws:states:local:000000000000:stateMachine:{self.name}",
            machine_name=self.name,
            input=input,
            start_time=started,
            record_history=history,
        )
        scope = Scope({}, record_history=history)
        if exceeds(input, PAYLOAD_LIMIT):
            return self._result(
                run,
                FAILED,
                None,
                ErrorName.DATA_LIMIT_EXCEEDED,
                "The execution input exceeds the maximum number of bytes service limit.",
            )
        timeout = self.machine.timeout_seconds
        try:
            if timeout is None:
                step = await run_machine(self.machine, run, scope, input)
            else:
                async with asyncio.timeout(timeout):
                    step = await run_machine(self.machine, run, scope, input)
        except TimeoutError:
            return self._result(run, TIMED_OUT, None, ErrorName.TIMEOUT, None)
        match step:
            case End(output=output):
                return self._result(run, SUCCEEDED, output, None, None)
            case Failed(error=error, cause=cause):
                return self._result(run, FAILED, None, error, cause)
            case Parked():  # pragma: no cover - in-memory runs sleep instead of parking
                return self._result(run, ABORTED, None, "States.Runtime", "parked")
        raise AssertionError(step)  # pragma: no cover

    def _result(
        self, run: Run, status: str, output: Any, error: str | None, cause: str | None
    ) -> RunResult:
        return RunResult(
            status=status,
            output=output,
            error=None if error is None else str(error),
            cause=cause,
            history=run.history,
            execution_id=run.execution_id,
            started_at=run.start_time,
            ended_at=run.clock.now(),
        )
