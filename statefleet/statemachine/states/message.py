"""Message: waits for a message correlated with the execution (not ASL: the reference
engine's state, with its YAML fields).

::

    WaitForPayment:
      Type: Message
      CorrelationKey: order_id            # required: the kind of message awaited
      CorrelationValuePath: $.order.id    # the value a message must carry (default: none)
      TimeoutSeconds: 3600                # optional; TimeoutSecondsPath too
      TimeoutPath: PaymentLate            # where to go when the timeout fires first
      ResultPath: $.payment               # the message's payload is the state's result
      Next: Ship

``send_message(key, value, payload)`` answers every open wait with that key and value. The
payload is the state's result (through ResultSelector and ResultPath: by default it
replaces the input). When the timeout fires first, the state goes to ``TimeoutPath`` with
its raw input unchanged (history: the state TIMED_OUT), or, without a TimeoutPath, fails
with ``States.Timeout`` (for Retry/Catch). A message that arrives after the timeout finds
nothing waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statefleet.errors import ErrorName, ExecutionError, RuntimeFailure
from statefleet.statemachine.callbacks import (
    ParkForCallback,
    answer_of,
    await_callback,
    deadline_epoch,
    take_resumed_wait,
)
from statefleet.statemachine.paths import Path, PathNotFound, compile_path
from statefleet.statemachine.protocols import WaitStatus
from statefleet.statemachine.runtime import Run, Scope, StateEnv
from statefleet.statemachine.states.base import State, json_copy
from statefleet.statemachine.steps import Next, Parked, Step


class _TakeTimeoutPath(Exception):
    """The timeout fired first and the state has a TimeoutPath: leave with the input."""


class MessageState(State):
    type_name = "Message"
    takes_parameters = False
    handles_errors = True

    def __init__(self, name: str, spec: Mapping[str, Any], pointer: str, language: str) -> None:
        super().__init__(name, spec, pointer, language)
        self.correlation_key: str = spec["CorrelationKey"]
        path = spec.get("CorrelationValuePath")
        self.value_path: Path | None = None if path is None else compile_path(path)
        self.value: Any = spec.get("CorrelationValue")
        timeout = spec.get("TimeoutSeconds")
        self.timeout: int | None = None if timeout is None else int(timeout)
        timeout_path = spec.get("TimeoutSecondsPath")
        self.timeout_seconds_path = None if timeout_path is None else compile_path(timeout_path)
        self.timeout_state: str | None = spec.get("TimeoutPath")

    def successors(self) -> list[str]:
        targets = super().successors()
        if self.timeout_state:
            targets.append(self.timeout_state)
        return targets

    async def enter(self, run: Run, scope: Scope, raw: Any) -> Step:
        started = run.clock.now()
        try:
            return await super().enter(run, scope, raw)
        except ParkForCallback as park:
            return Parked(self.name, until=deadline_epoch(park.wait), wait=park.wait.id)
        except _TakeTimeoutPath:
            assert self.timeout_state is not None
            if scope.record_history:
                run.record(self, "TIMED_OUT", raw, None, ErrorName.TIMEOUT, None, 0, started)
            return Next(self.timeout_state, raw)

    def before_attempt(self, env: StateEnv) -> None:
        take_resumed_wait(env)

    async def execute(self, env: StateEnv, data: Any) -> Any:
        wait = await await_callback(
            env,
            kind="message",
            correlation_key=self.correlation_key,
            correlation_value=self._value(env, data),
            timeout_seconds=self._timeout(env, data),
        )
        if wait.status == WaitStatus.TIMED_OUT and self.timeout_state:
            raise _TakeTimeoutPath
        return json_copy(answer_of(wait))

    def _value(self, env: StateEnv, data: Any) -> Any:
        if self.value_path is None:
            return self.value
        try:
            return self.value_path.find(data, env.context(), env.variables)
        except PathNotFound:
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                "The CorrelationValuePath field references a value that is not in the input: "
                f"{self.value_path.text}",
            ) from None

    def _timeout(self, env: StateEnv, data: Any) -> float | None:
        if self.timeout_seconds_path is None:
            return self.timeout
        try:
            value = self.timeout_seconds_path.find(data, env.context(), env.variables)
        except PathNotFound:
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                "The TimeoutSecondsPath field references an invalid value: "
                f"{self.timeout_seconds_path.text}",
            ) from None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ExecutionError(
                ErrorName.RUNTIME,
                f"The TimeoutSecondsPath field refers to value {value!r} which is not a valid "
                f"positive integer: {self.timeout_seconds_path.text}",
            )
        return value
