"""Task: calls a registered resource (a Python callable) with its effective input."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from statefleet.errors import ErrorName, ExecutionError, RuntimeFailure, TaskError
from statefleet.statemachine.callbacks import (
    ParkForCallback,
    answer_of,
    await_callback,
    deadline_epoch,
    new_token,
    take_resumed_wait,
)
from statefleet.statemachine.expressions import Expression, compile_expression, is_expression
from statefleet.statemachine.paths import Path, PathNotFound, compile_path
from statefleet.statemachine.runtime import Resource, Run, Scope, StateEnv, TaskContext
from statefleet.statemachine.states.base import PAYLOAD_LIMIT, State, exceeds, json_copy
from statefleet.statemachine.steps import Parked, Step


class TaskState(State):
    type_name = "Task"
    handles_errors = True

    def __init__(self, name: str, spec: Mapping[str, Any], pointer: str, language: str) -> None:
        super().__init__(name, spec, pointer, language)
        self.resource: str = spec["Resource"]
        self.wait_for_token = self.resource.endswith(".waitForTaskToken")
        self.timeout = _seconds(spec, "TimeoutSeconds", self.jsonata)
        self.heartbeat = _seconds(spec, "HeartbeatSeconds", self.jsonata)
        self.service = _service_name(self.resource)

    async def enter(self, run: Run, scope: Scope, raw: Any) -> Step:
        if not self.wait_for_token:
            return await super().enter(run, scope, raw)
        try:
            return await super().enter(run, scope, raw)
        except ParkForCallback as park:
            return Parked(self.name, until=deadline_epoch(park.wait), wait=park.wait.id)

    def before_attempt(self, env: StateEnv) -> None:
        if self.wait_for_token:
            wait = take_resumed_wait(env)
            env.task_token = wait.token if wait is not None else new_token()
            env.invalidate_context()

    async def execute(self, env: StateEnv, data: Any) -> Any:
        resource = env.run.resources.find(self.resource)
        if resource is None:
            raise RuntimeFailure(ErrorName.RUNTIME, f"no resource registered for {self.resource!r}")
        timeout = self._resolve_seconds(self.timeout, "TimeoutSeconds", env, data)
        context = TaskContext(env.run.execution_id, self.name, env.retry_count, env.task_token)
        # A task sees a copy of its payload, and its result is copied, as on AWS where
        # both cross the wire: a callable that mutates either cannot corrupt the execution.
        payload = json_copy(data)
        if self.wait_for_token:
            return await self._wait_for_token(env, data, resource, payload, context, timeout)
        return await self._call(resource, payload, context, timeout)

    async def _wait_for_token(
        self,
        env: StateEnv,
        data: Any,
        resource: Resource,
        payload: Any,
        context: TaskContext,
        seconds: float | None,
    ) -> Any:
        """Hand the token to the resource (its return value is ignored, as on AWS), then wait
        for ``send_task_success``/``failure``; TimeoutSeconds and HeartbeatSeconds bound it."""
        heartbeat = self._resolve_seconds(self.heartbeat, "HeartbeatSeconds", env, data)

        async def call() -> None:
            await self._call(resource, payload, context, seconds)

        wait = await await_callback(
            env,
            kind="task",
            token=env.task_token,
            timeout_seconds=seconds,
            heartbeat=None if heartbeat is None else int(heartbeat),
            call=call,
        )
        result = answer_of(wait)
        if _large(result):
            raise ExecutionError(
                ErrorName.DATA_LIMIT_EXCEEDED,
                f"The state/task '{self.service}' returned a result with a size exceeding "
                "the maximum number of bytes service limit.",
            )
        return json_copy(result)

    async def _call(
        self, resource: Resource, payload: Any, context: TaskContext, seconds: float | None
    ) -> Any:
        try:
            if seconds is None:
                result = await resource.call(payload, context)
            else:
                async with asyncio.timeout(seconds):
                    result = await resource.call(payload, context)
        except ExecutionError:
            raise
        except TimeoutError:
            raise ExecutionError(ErrorName.TIMEOUT, None) from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _task_error(exc) from exc
        if _large(result):
            raise ExecutionError(
                ErrorName.DATA_LIMIT_EXCEEDED,
                f"The state/task '{self.service}' returned a result with a size exceeding "
                "the maximum number of bytes service limit.",
            )
        return json_copy(result)

    def _resolve_seconds(
        self, value: int | Path | Expression | None, field: str, env: StateEnv, data: Any
    ) -> float | None:
        if value is None or isinstance(value, int):
            return value
        if isinstance(value, Expression):
            result = value.evaluate(env.states(), env.variables)
        else:
            try:
                result = value.find(env.raw_input, env.context(), env.variables)
            except PathNotFound:
                raise RuntimeFailure(
                    ErrorName.RUNTIME,
                    f"The {field}Path field references an invalid value: {value.text}",
                ) from None
        if isinstance(result, bool) or not isinstance(result, int) or result <= 0:
            if isinstance(value, Expression):
                raise value.type_failure("integer", result)
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                f"The {field}Path field refers to value {result!r} which is not a valid "
                f"positive integer: {value.text}",
            )
        return result


def _seconds(spec: Mapping[str, Any], field: str, jsonata: bool) -> int | Path | Expression | None:
    value = spec.get(field)
    if value is not None:
        if jsonata and is_expression(value):
            return compile_expression(value, field)
        return int(value)
    path = spec.get(f"{field}Path")
    if path is not None:
        return compile_path(path)
    return None


def _service_name(resource: str) -> str:
    """'lambda' for arn:aws:states:::lambda:invoke and Lambda function ARNs; else the name."""
    if resource.startswith("arn:"):
        parts = resource.split(":")
        if len(parts) > 5 and parts[2] == "states" and parts[5]:
            return parts[5]
        if len(parts) > 2:
            return parts[2]
    return resource


def _large(result: Any) -> bool:
    return exceeds(result, PAYLOAD_LIMIT)


def _task_error(exc: BaseException) -> ExecutionError:
    if isinstance(exc, TaskError):
        return exc
    name = type(exc).__name__
    return ExecutionError(name or ErrorName.TASK_FAILED, str(exc))
