"""Fail: ends the machine with an error name and a cause."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statefleet.errors import ErrorName, ExecutionError, RuntimeFailure
from statefleet.statemachine.expressions import Expression, compile_expression, is_expression
from statefleet.statemachine.paths import Path, PathNotFound, compile_path
from statefleet.statemachine.runtime import Run, Scope, StateEnv
from statefleet.statemachine.states.base import State
from statefleet.statemachine.steps import Failed, Step


class FailState(State):
    type_name = "Fail"
    takes_parameters = False
    takes_result = False

    def __init__(self, name: str, spec: Mapping[str, Any], pointer: str, language: str) -> None:
        super().__init__(name, spec, pointer, language)
        self.error: str | Expression | Path | None = None
        self.cause: str | Expression | Path | None = None
        for field, path_field, attr in (
            ("Error", "ErrorPath", "error"),
            ("Cause", "CausePath", "cause"),
        ):
            value = spec.get(field)
            if self.jsonata and isinstance(value, str) and is_expression(value):
                setattr(self, attr, compile_expression(value, field))
            elif value is not None:
                setattr(self, attr, value)
            elif spec.get(path_field) is not None:
                text = spec[path_field]
                if isinstance(text, str) and text.startswith("States."):
                    from statefleet.statemachine.intrinsics import compile_intrinsic

                    setattr(self, attr, compile_intrinsic(text))
                else:
                    setattr(self, attr, compile_path(text))

    async def enter(self, run: Run, scope: Scope, raw: Any) -> Step:
        env = StateEnv(run, scope, self, raw)
        try:
            error = self._resolve(self.error, "ErrorPath", env, raw)
            cause = self._resolve(self.cause, "CausePath", env, raw)
        except ExecutionError as exc:
            cause_text = exc.cause
            if isinstance(exc, RuntimeFailure):
                cause_text = self.runtime_cause(env, cause_text)
            return Failed(exc.error, cause_text)
        if scope.record_history:
            run.record(self, "FAILED", raw, None, error, cause, 0, env.entered)
        return Failed(error, cause)  # type: ignore[arg-type]

    def _resolve(self, value: Any, field: str, env: StateEnv, raw: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, Expression):
            result = value.evaluate(env.states(), env.variables)
            if not isinstance(result, str):
                raise value.type_failure("string", result)
            return result
        if isinstance(value, Path):
            try:
                result = value.find(raw, env.context(), env.variables)
            except PathNotFound:
                raise RuntimeFailure(
                    ErrorName.RUNTIME,
                    f"The {field} field references an invalid value: {value.text}",
                ) from None
        else:
            result = value.evaluate(raw, env.context(), env.variables)
        if not isinstance(result, str):
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                f"The {field} field must reference a string, but got: {result!r}",
            )
        return result
