"""The running side of an execution: resources, the clock, scopes and the context object."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from statefleet.errors import ResourceNotFoundError

if TYPE_CHECKING:
    from statefleet.statemachine.protocols import Store, WaitRecord
    from statefleet.statemachine.states.base import State

__all__ = [
    "Clock",
    "HistoryEvent",
    "ResourceRegistry",
    "Run",
    "Scope",
    "StateEnv",
    "SystemClock",
    "TaskContext",
    "iso_timestamp",
]


class Clock(Protocol):
    """Time as the engine sees it; tests and the persistent runner swap it."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def iso_timestamp(epoch: float) -> str:
    """ISO-8601 with milliseconds and ``Z``, as AWS prints times in the context object."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class TaskContext:
    """Given to task callables that accept a second argument: build idempotency keys from it."""

    execution_id: str
    state_name: str
    attempt: int
    token: str | None = None


TaskCallable = Callable[..., Any]


class Resource:
    """A registered callable with its calling convention worked out once."""

    __slots__ = ("function", "is_async", "name", "wants_context")

    def __init__(self, name: str, function: TaskCallable) -> None:
        self.name = name
        self.function = function
        self.is_async, self.wants_context = _calling_convention(function)

    async def call(self, payload: Any, context: TaskContext) -> Any:
        function = self.function
        result = function(payload, context) if self.wants_context else function(payload)
        if self.is_async or inspect.isawaitable(result):
            result = await result
        return result


@functools.lru_cache(maxsize=4096)
def _calling_convention(function: TaskCallable) -> tuple[bool, bool]:
    """(is a coroutine function, takes a second positional argument), worked out once."""
    is_async = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - callable objects
    )
    return is_async, _accepts_two_arguments(function)


def _accepts_two_arguments(function: TaskCallable) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()):
        return True
    return len(positional) >= 2


_SUFFIXES = (".sync:2", ".sync", ".waitForTaskToken")


def resource_candidates(resource: str) -> list[str]:
    """Names a Resource string may be registered under, most specific first.

    ``arn:aws:lambda:::process:order`` -> the ARN itself, then ``process:order``;
    ``arn:aws:lambda:us-east-1:123:function:charge`` -> …, ``function:charge``, ``charge``.
    """
    names = [resource]
    base = resource
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            names.append(base)
            break
    if base.startswith("arn:"):
        parts = base.split(":", 5)
        if len(parts) == 6 and parts[5]:
            rest = parts[5]
            names.append(rest)
            if rest.startswith("function:"):
                names.append(rest[len("function:") :].split(":", 1)[0])
    return names


class ResourceRegistry:
    """Task callables by name. Lookups accept the exact Resource string or a short name."""

    def __init__(self, resources: Mapping[str, TaskCallable] | None = None) -> None:
        self._by_name: dict[str, Resource] = {}
        self._resolved: dict[str, Resource] = {}
        for name, function in (resources or {}).items():
            self.register(name, function)

    def register(self, name: str, function: TaskCallable) -> None:
        if not callable(function):
            raise TypeError(f"resource {name!r} is not callable: {function!r}")
        self._by_name[name] = Resource(name, function)
        self._resolved.clear()

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def find(self, resource: str) -> Resource | None:
        found = self._resolved.get(resource)
        if found is not None:
            return found
        for candidate in resource_candidates(resource):
            found = self._by_name.get(candidate)
            if found is not None:
                self._resolved[resource] = found
                return found
        return None

    def resolve(self, resource: str, where: str = "") -> Resource:
        found = self.find(resource)
        if found is None:
            raise ResourceNotFoundError(missing_resource_message(resource, where, self.names()))
        return found


def missing_resource_message(resource: str, where: str, known: list[str]) -> str:
    tried = ", ".join(repr(c) for c in resource_candidates(resource))
    registered = ", ".join(repr(n) for n in known) or "none"
    location = f" at {where}" if where else ""
    return (
        f"no resource registered for {resource!r}{location} (looked up {tried}; "
        f"registered: {registered})"
    )


@dataclass(slots=True)
class HistoryEvent:
    """One state entered and left (or failed), in order."""

    sequence: int
    state: str
    type: str
    status: str
    input: Any
    output: Any = None
    error: str | None = None
    cause: str | None = None
    attempt: int = 0
    started_at: float = 0.0
    ended_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "state": self.state,
            "type": self.type,
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
            "attempt": self.attempt,
            "started_at": iso_timestamp(self.started_at),
            "ended_at": iso_timestamp(self.ended_at),
        }


@dataclass(slots=True)
class Run:
    """One execution in flight: what every state of it shares."""

    resources: ResourceRegistry
    clock: Clock
    execution_id: str
    execution_name: str
    machine_id: str
    machine_name: str
    input: Any
    start_time: float
    redrive_count: int = 0
    execution_arn: str = ""
    history: list[HistoryEvent] = field(default_factory=list)
    events: int = 1
    record_history: bool = True
    #: A top-level Wait longer than this many seconds parks the execution instead of
    #: sleeping (distributed mode); None sleeps in this process.
    park_after: float | None = None
    #: When a parked Wait ends (epoch seconds): set on the run that resumes at that Wait,
    #: which takes it instead of starting its delay again.
    wake_at: float | None = None
    #: Where callback waits (task tokens, messages) are kept: the persistent runner's
    #: store. None (in-memory runs): callback states cannot run.
    store: Store | None = None
    #: A top-level callback wait parks the execution (True) or is polled in-process.
    park_waits: bool = True
    #: The queue the execution's job runs on (distributed mode), kept with its waits.
    queue: str | None = None
    #: The wait the run resumed at (set by the persistent runner for its first state).
    resume_wait: WaitRecord | None = None
    #: A wait whose answer a state took: consumed by the next checkpoint.
    consumed_wait: str | None = None
    _execution_context: dict[str, Any] | None = None

    def next_event_id(self) -> int:
        self.events += 1
        return self.events

    def execution_context(self) -> dict[str, Any]:
        if self._execution_context is None:
            self._execution_context = {
                "Id": self.execution_arn or self.execution_id,
                "Input": self.input,
                "Name": self.execution_name,
                "RoleArn": "arn:aws:iam::000000000000:role/statefleet",
                "StartTime": iso_timestamp(self.start_time),
                "RedriveCount": self.redrive_count,
            }
        return self._execution_context

    def record(
        self,
        state: State,
        status: str,
        input: Any,
        output: Any,
        error: str | None,
        cause: str | None,
        attempt: int,
        started_at: float,
    ) -> None:
        if self.record_history:
            self.history.append(
                HistoryEvent(
                    len(self.history) + 1,
                    state.name,
                    state.type_name,
                    status,
                    input,
                    output,
                    error,
                    cause,
                    attempt,
                    started_at,
                    self.clock.now(),
                )
            )


@dataclass(slots=True)
class Scope:
    """Variables visible to the states of one (sub-)machine; Map iterations and
    Parallel branches get a child scope that starts as a copy of the parent's."""

    variables: dict[str, Any]
    map_item: dict[str, Any] | None = None
    record_history: bool = True

    def child(self, map_item: dict[str, Any] | None = None) -> Scope:
        return Scope(dict(self.variables), map_item, record_history=False)


class StateEnv:
    """What one attempt of one state sees: the context object, variables, ``$states``."""

    __slots__ = (
        "_context",
        "chosen",
        "entered",
        "event_id",
        "raw_input",
        "resumed_wait",
        "retry_count",
        "retry_counts",
        "run",
        "scope",
        "state",
        "states_binding",
        "task_token",
        "variables",
    )

    def __init__(self, run: Run, scope: Scope, state: State, raw_input: Any) -> None:
        self.run = run
        self.scope = scope
        self.state = state
        self.variables = scope.variables
        self.raw_input = raw_input
        self.entered = run.clock.now()
        self.event_id = run.next_event_id()
        self.retry_count = 0
        #: per Retry rule, the retries made (None until the first retry)
        self.retry_counts: list[int] | None = None
        #: the callback wait this state resumed at (task token or message)
        self.resumed_wait: WaitRecord | None = None
        self.chosen: str | None = None
        self.task_token: str | None = None
        self.states_binding: dict[str, Any] | None = None
        self._context: dict[str, Any] | None = None

    def context(self) -> dict[str, Any]:
        if self._context is None:
            run = self.run
            context: dict[str, Any] = {
                "Execution": run.execution_context(),
                "State": {
                    "EnteredTime": iso_timestamp(self.entered),
                    "Name": self.state.name,
                    "RetryCount": self.retry_count,
                },
                "StateMachine": {"Id": run.machine_id, "Name": run.machine_name},
            }
            if self.task_token is not None:
                context["Task"] = {"Token": self.task_token}
            if self.scope.map_item is not None:
                context["Map"] = {"Item": self.scope.map_item}
            self._context = context
        return self._context

    def invalidate_context(self) -> None:
        self._context = None

    def states(self, data: Any = None) -> dict[str, Any]:
        """The ``$states`` binding of JSONata expressions."""
        binding = self.states_binding
        if binding is None:
            binding = {"input": self.raw_input, "context": self.context()}
            self.states_binding = binding
        return binding
