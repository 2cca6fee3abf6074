"""Parallel: runs every branch on the same input; the result is the list of their outputs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from statefleet.errors import ExecutionError
from statefleet.statemachine.runtime import StateEnv
from statefleet.statemachine.states.base import State
from statefleet.statemachine.steps import End, Failed

if TYPE_CHECKING:
    from statefleet.statemachine.definition import Machine


class BranchFailed(Exception):
    def __init__(self, error: str, cause: str | None, retryable: bool | None = True) -> None:
        self.error = error
        self.cause = cause
        self.retryable = retryable

    def as_error(self) -> ExecutionError:
        error = ExecutionError(self.error, self.cause)
        error.retryable = self.retryable
        return error


class ParallelState(State):
    type_name = "Parallel"
    handles_errors = True

    def __init__(self, name: str, spec: Mapping[str, Any], pointer: str, language: str) -> None:
        super().__init__(name, spec, pointer, language)
        from statefleet.statemachine.definition import build_machine

        effective = JSONATA if self.jsonata else "JSONPath"
        self.branches: list[Machine] = [
            build_machine(branch, f"{pointer}/Branches/{i}", effective)
            for i, branch in enumerate(spec.get("Branches", ()))
        ]

    async def execute(self, env: StateEnv, data: Any) -> Any:
        from statefleet.statemachine.interpreter import run_machine

        async def branch(machine: Machine) -> Any:
            step = await run_machine(machine, env.run, env.scope.child(), data)
            if isinstance(step, End):
                return step.output
            assert isinstance(step, Failed)
            raise BranchFailed(step.error, step.cause, step.retryable)

        if len(self.branches) == 1:
            try:
                return [await branch(self.branches[0])]
            except BranchFailed as failed:
                raise failed.as_error() from None
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(branch(m)) for m in self.branches]
        except* BranchFailed as failures:
            first = failures.exceptions[0]
            assert isinstance(first, BranchFailed)
            raise first.as_error() from None
        return [t.result() for t in tasks]


JSONATA = "JSONata"
