"""Helpers shared by the ASL engine tests.

* :class:`FakeClock` stands in for the engine's ``Clock`` protocol: ``sleep`` returns at
  once, advances ``now()`` and records the delay, so Wait and Retry tests assert exact
  delays without waiting.
* :func:`time_travel` makes the running event loop skip idle time, for the timeouts that
  the engine enforces with ``asyncio.timeout`` (Task and machine ``TimeoutSeconds``).
* :func:`run` builds a machine from a definition and runs it with a fresh fake clock.
* :class:`Script` is a task callable that plays a list of outcomes, one per call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from statefleet import RunResult, StateMachine, TaskContext, TaskError

#: 2016-03-14T01:58:00Z, one minute before the timestamp of AWS's Wait examples.
EPOCH = datetime(2016, 3, 14, 1, 58, tzinfo=UTC).timestamp()

#: Fields each state type takes for its transition (Choice, Succeed and Fail take none).
_ENDS = {"Pass", "Task", "Wait", "Parallel", "Map"}


class FakeClock:
    """A ``Clock`` whose ``sleep`` returns at once and moves ``now()`` forward."""

    def __init__(self, start: float = EPOCH) -> None:
        self.time = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += max(0.0, seconds)


@contextlib.contextmanager
def time_travel() -> Iterator[None]:
    """Let the running event loop jump over idle time instead of waiting it out.

    When the loop has nothing ready and would block until its next timer, the loop's
    clock is moved forward to that timer instead. ``asyncio.timeout`` and
    ``asyncio.sleep`` keep their order and their (virtual) durations; no real time passes.
    """
    loop = asyncio.get_running_loop()
    selector = loop._selector  # type: ignore[attr-defined]
    real_time, real_select = loop.time, selector.select
    skipped = 0.0

    def virtual_time() -> float:
        return real_time() + skipped

    def select(timeout: float | None = None) -> Any:
        nonlocal skipped
        events = real_select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # nothing scheduled: only I/O can wake the loop
            return real_select(None)
        skipped += timeout
        return events

    loop.time = virtual_time  # type: ignore[method-assign]
    selector.select = select
    try:
        yield
    finally:
        del loop.time
        del selector.select


def machine(state: Mapping[str, Any], name: str = "S", **top: Any) -> dict[str, Any]:
    """A one-state machine around ``state`` (``End: true`` added where the type takes it)."""
    spec = dict(state)
    if spec.get("Type") in _ENDS and "Next" not in spec:
        spec.setdefault("End", True)
    return {"StartAt": name, "States": {name: spec}, **top}


async def run(
    definition: Any,
    input: Any = None,
    *,
    resources: Mapping[str, Any] | None = None,
    clock: FakeClock | None = None,
    name: str | None = None,
    machine_name: str | None = None,
) -> RunResult:
    """Build ``definition`` and run it once (execution ``name``) on a fake clock."""
    sm = StateMachine.from_definition(definition, name=machine_name)
    return await sm.run(input, resources=resources, clock=clock or FakeClock(), name=name)


async def output_of(definition: Any, input: Any = None, **kwargs: Any) -> Any:
    """Run and return the output, asserting the execution succeeded."""
    result = await run(definition, input, **kwargs)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return result.output


async def failure_of(
    definition: Any, input: Any = None, **kwargs: Any
) -> tuple[str | None, str | None]:
    """Run and return ``(error, cause)``, asserting the execution failed."""
    result = await run(definition, input, **kwargs)
    assert result.status == "FAILED", result.output
    assert result.output is None
    return result.error, result.cause


class Script:
    """A task callable playing one outcome per call; the last outcome repeats.

    An outcome is a value to return, an exception instance to raise, or a callable
    applied to the payload. ``calls`` records every payload, ``contexts`` every
    :class:`TaskContext`.
    """

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes) or [lambda payload: payload]
        self.calls: list[Any] = []
        self.contexts: list[TaskContext] = []

    def __call__(self, payload: Any, context: TaskContext) -> Any:
        self.calls.append(payload)
        self.contexts.append(context)
        index = min(len(self.calls), len(self.outcomes)) - 1
        outcome = self.outcomes[index]
        if isinstance(outcome, BaseException):
            raise outcome
        if callable(outcome):
            return outcome(payload)
        return outcome


def fails(error: str, cause: str | None = None) -> TaskError:
    return TaskError(error, cause)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
