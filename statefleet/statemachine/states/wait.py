"""Wait: delays for a number of seconds or until a timestamp.

In distributed mode (``Run.park_after`` set) a top-level Wait longer than that does not
sleep: it returns ``Parked(state, until)`` and the runner checkpoints the execution as
WAITING with its wake time; a deferred job resumes it at that Wait, which then takes the
stored wake time (``Run.wake_at``) instead of starting its delay from zero."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statefleet.errors import ErrorName, RuntimeFailure
from statefleet.statemachine.expressions import Expression, compile_expression, is_expression
from statefleet.statemachine.paths import Path, PathNotFound, compile_path
from statefleet.statemachine.runtime import Run, Scope, StateEnv
from statefleet.statemachine.states.base import State
from statefleet.statemachine.states.choice import _is_number, parse_timestamp
from statefleet.statemachine.steps import Parked, Step


class _Park(Exception):
    """Raised inside the pipeline, turned into ``Parked`` by :meth:`WaitState.enter`."""

    def __init__(self, until: float) -> None:
        super().__init__(until)
        self.until = until


class WaitState(State):
    type_name = "Wait"
    takes_parameters = False
    takes_result = False

    def __init__(self, name: str, spec: Mapping[str, Any], pointer: str, language: str) -> None:
        super().__init__(name, spec, pointer, language)
        self.seconds: float | Expression | Path | None = None
        self.timestamp: float | Expression | Path | None = None
        if "Seconds" in spec:
            value = spec["Seconds"]
            self.seconds = (
                compile_expression(value, "Seconds") if is_expression(value) else float(value)
            )
        elif "Timestamp" in spec:
            value = spec["Timestamp"]
            if is_expression(value):
                self.timestamp = compile_expression(value, "Timestamp")
            else:
                moment = parse_timestamp(value)
                if moment is None:
                    raise ValueError(f"invalid Timestamp {value!r}")
                self.timestamp = moment.timestamp()
        elif "SecondsPath" in spec:
            self.seconds = compile_path(spec["SecondsPath"])
        elif "TimestampPath" in spec:
            self.timestamp = compile_path(spec["TimestampPath"])

    async def enter(self, run: Run, scope: Scope, raw: Any) -> Step:
        try:
            return await super().enter(run, scope, raw)
        except _Park as park:
            return Parked(self.name, until=park.until)

    async def execute(self, env: StateEnv, data: Any) -> Any:
        run = env.run
        top_level = env.scope.record_history
        if top_level and run.wake_at is not None:
            until, run.wake_at = run.wake_at, None  # resumed after a park
        else:
            until = self.wake_time(env, data)
        clock = run.clock
        delay = until - clock.now()
        if top_level and run.park_after is not None and delay > run.park_after:
            raise _Park(until)
        if delay > 0:
            await clock.sleep(delay)
        return data

    def wake_time(self, env: StateEnv, data: Any) -> float:
        """When this Wait ends, in epoch seconds."""
        if self.seconds is not None:
            return env.entered + self._seconds(env, data)
        return self._timestamp(env, data)

    def _seconds(self, env: StateEnv, data: Any) -> float:
        value = self.seconds
        if isinstance(value, float):
            return value
        if isinstance(value, Expression):
            result = value.evaluate(env.states(), env.variables)
            if not _is_number(result) or result < 0:
                raise value.type_failure("integer", result)
            return float(result)
        assert isinstance(value, Path)
        try:
            result = value.find(data, env.context(), env.variables)
        except PathNotFound:
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                f"The SecondsPath parameter does not reference an input value: {value.text}",
            ) from None
        if not _is_number(result) or result < 0:
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                "The SecondsPath parameter does not reference a valid non-negative integer: "
                f"{value.text} == {result}",
            )
        return float(result)

    def _timestamp(self, env: StateEnv, data: Any) -> float:
        value = self.timestamp
        if isinstance(value, float):
            return value
        if isinstance(value, Expression):
            result = value.evaluate(env.states(), env.variables)
            moment = parse_timestamp(result)
            if moment is None:
                raise RuntimeFailure(
                    ErrorName.QUERY_EVALUATION_ERROR,
                    "The Timestamp field cannot be parsed as an ISO-8601 extended offset "
                    f"date-time format string: {result}",
                )
            return moment.timestamp()
        assert isinstance(value, Path)
        try:
            result = value.find(data, env.context(), env.variables)
        except PathNotFound:
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                f"The TimestampPath parameter does not reference an input value: {value.text}",
            ) from None
        moment = parse_timestamp(result)
        if moment is None:
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                "The TimestampPath parameter does not reference a valid ISO-8601 extended "
                f"offset date-time format string: {value.text} == {result}",
            )
        return moment.timestamp()
