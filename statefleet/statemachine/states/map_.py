"""Map: runs its item processor once per item of an array; the result is the list of outputs.

``ProcessorConfig.Mode: DISTRIBUTED`` runs like INLINE (in this process) when no
ItemReader/ResultWriter is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from statefleet.errors import ErrorName, ExecutionError, RuntimeFailure
from statefleet.statemachine.expressions import (
    Expression,
    compile_expression,
    is_expression,
    json_text,
)
from statefleet.statemachine.paths import Path, PathNotFound, compile_path
from statefleet.statemachine.runtime import Run, Scope, StateEnv
from statefleet.statemachine.states.base import State
from statefleet.statemachine.states.choice import _is_number
from statefleet.statemachine.steps import End, Failed
from statefleet.statemachine.templates import (
    Template,
    compile_jsonata_template,
    compile_jsonpath_template,
)

if TYPE_CHECKING:
    from statefleet.statemachine.definition import Machine


class _ItemFailed(Exception):
    def __init__(self, error: str, cause: str | None, retryable: bool | None = True) -> None:
        self.error = error
        self.cause = cause
        self.retryable = retryable

    def as_error(self) -> ExecutionError:
        error = ExecutionError(self.error, self.cause)
        error.retryable = self.retryable
        return error


class _ItemEnv:
    """The environment ItemSelector is evaluated in: ``$$.Map.Item`` is visible."""

    __slots__ = ("_context", "env", "item", "variables")

    def __init__(self, env: StateEnv, index: int, value: Any) -> None:
        self.env = env
        self.variables = env.variables
        self.item = {"Index": index, "Value": value}
        self._context: dict[str, Any] | None = None

    def context(self) -> dict[str, Any]:
        if self._context is None:
            context = dict(self.env.context())
            context["Map"] = {"Item": self.item}
            self._context = context
        return self._context

    def states(self, data: Any = None) -> dict[str, Any]:
        return {"input": self.env.raw_input, "context": self.context()}


class MapState(State):
    type_name = "Map"
    takes_parameters = False
    handles_errors = True

    def __init__(self, name: str, spec: Mapping[str, Any], pointer: str, language: str) -> None:
        super().__init__(name, spec, pointer, language)
        from statefleet.statemachine.definition import build_machine

        effective = "JSONata" if self.jsonata else "JSONPath"
        processor_field = "ItemProcessor" if "ItemProcessor" in spec else "Iterator"
        self.processor: Machine = build_machine(
            spec.get(processor_field, {}), f"{pointer}/{processor_field}", effective
        )
        self.items_path: Path | None = None
        self.items: Expression | Any = None
        self.item_selector: Template | None = None
        if self.jsonata:
            items = spec.get("Items")
            if isinstance(items, str) and is_expression(items):
                self.items = compile_expression(items, "Items")
            elif items is not None:
                self.items = compile_jsonata_template(items, "Items")
            if "ItemSelector" in spec:
                self.item_selector = compile_jsonata_template(spec["ItemSelector"], "ItemSelector")
        else:
            self.items_path = compile_path(spec.get("ItemsPath", "$"))
            selector = spec.get("ItemSelector", spec.get("Parameters"))
            if selector is not None:
                self.item_selector = compile_jsonpath_template(selector)
        self.max_concurrency = self._number(spec, "MaxConcurrency")
        self.tolerated_percentage = self._number(spec, "ToleratedFailurePercentage")
        self.tolerated_count = self._number(spec, "ToleratedFailureCount")
        batcher = spec.get("ItemBatcher") or {}
        self.max_items_per_batch = batcher.get("MaxItemsPerBatch")
        self.batch_input = batcher.get("BatchInput")
        self.item_reader = spec.get("ItemReader")
        # Items whose states never suspend (no Task, Wait, Parallel or Map) gain nothing
        # from concurrent tasks: run them one after another, with the same results.
        self.never_suspends = all(
            s.type_name in ("Pass", "Choice", "Succeed", "Fail") for s in self.processor.walk()
        )

    def _number(self, spec: Mapping[str, Any], field: str) -> Any:
        value = spec.get(field)
        if value is not None:
            if self.jsonata and is_expression(value):
                return compile_expression(value, field)
            return value
        path = spec.get(f"{field}Path")
        if path is not None:
            return compile_path(path)
        return None

    def _resolve_number(self, value: Any, field: str, env: StateEnv, data: Any) -> Any:
        if value is None or isinstance(value, (int, float)):
            return value
        if isinstance(value, Expression):
            result = value.evaluate(env.states(), env.variables)
            if not _is_number(result):
                raise value.type_failure("number", result)
            return result
        assert isinstance(value, Path)
        try:
            result = value.find(data, env.context(), env.variables)
        except PathNotFound:
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                f"The {field}Path field references an invalid value: {value.text}",
            ) from None
        if not _is_number(result) or (field == "MaxConcurrency" and not isinstance(result, int)):
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                f"The {field}Path field refers to value {json_text(result)} "
                f"which is not a valid integer: {value.text}",
            )
        return result

    def _items(self, env: StateEnv, data: Any) -> list[Any]:
        if self.item_reader is not None:
            raise ExecutionError(
                ErrorName.ITEM_READER_FAILED,
                "ItemReader is not supported: pass the items in the state input (ItemsPath/Items)",
            )
        if self.jsonata:
            items = self.items
            if isinstance(items, Expression):
                value = items.evaluate(env.states(), env.variables)
                if not isinstance(value, list):
                    raise items.type_failure("array", value)
                return value
            value = env.raw_input if items is None else items.evaluate(env.raw_input, env)
            if not isinstance(value, list):
                raise RuntimeFailure(
                    ErrorName.QUERY_EVALUATION_ERROR,
                    f"Map state input must be an array but was: {json_text(value)}",
                )
            return value
        assert self.items_path is not None
        try:
            value = self.items_path.find(data, env.context(), env.variables)
        except PathNotFound:
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                f"Invalid path '{self.items_path.text}' : No results for path: "
                f"{self.items_path.text}",
            ) from None
        if not isinstance(value, list):
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                f"Map state input must be an array but was: {json_text(value)}",
            )
        return value

    async def execute(self, env: StateEnv, data: Any) -> Any:
        items = self._items(env, data)
        max_concurrency = self._resolve_number(self.max_concurrency, "MaxConcurrency", env, data)
        tolerated_pct = self._resolve_number(
            self.tolerated_percentage, "ToleratedFailurePercentage", env, data
        )
        tolerated_count = self._resolve_number(
            self.tolerated_count, "ToleratedFailureCount", env, data
        )
        if self.max_items_per_batch:
            size = int(self.max_items_per_batch)
            batches: list[Any] = []
            for start in range(0, len(items), size):
                batch: dict[str, Any] = {"Items": items[start : start + size]}
                if self.batch_input is not None:
                    batch["BatchInput"] = self.batch_input
                batches.append(batch)
            items = batches
        if not items:
            return []
        tolerant = bool(tolerated_pct) or bool(tolerated_count)
        run, scope = env.run, env.scope
        selector = self.item_selector
        processor = self.processor
        from statefleet.statemachine.interpreter import run_machine

        async def one(index: int, item: Any) -> Any:
            item_input = item
            if selector is not None:
                item_env = _ItemEnv(env, index, item)
                item_input = selector.evaluate(data if not self.jsonata else item, item_env)
            step = await run_machine(processor, run, scope.child(), item_input)
            if isinstance(step, End):
                return step.output
            assert isinstance(step, Failed)
            raise _ItemFailed(step.error, step.cause, step.retryable)

        return await self._run_all(
            items, one, max_concurrency, tolerant, tolerated_pct, tolerated_count
        )

    async def _run_all(
        self,
        items: list[Any],
        one: Any,
        max_concurrency: Any,
        tolerant: bool,
        tolerated_pct: Any,
        tolerated_count: Any,
    ) -> list[Any]:
        results: list[Any] = [None] * len(items)
        failures = 0
        limit = int(max_concurrency or 0)

        async def guarded(index: int, item: Any, gate: asyncio.Semaphore | None) -> None:
            nonlocal failures
            if gate is None:
                await attempt(index, item)
                return
            async with gate:
                await attempt(index, item)

        async def attempt(index: int, item: Any) -> None:
            nonlocal failures
            try:
                results[index] = await one(index, item)
            except _ItemFailed as failed:
                if not tolerant:
                    raise
                failures += 1
                results[index] = {"Error": failed.error, "Cause": failed.cause}
            except ExecutionError as exc:
                raise _ItemFailed(exc.error, exc.cause, exc.retryable) from None

        try:
            if limit == 1 or self.never_suspends:
                for index, item in enumerate(items):
                    await attempt(index, item)
            else:
                gate = asyncio.Semaphore(limit) if limit > 0 else None
                async with asyncio.TaskGroup() as group:
                    for index, item in enumerate(items):
                        group.create_task(guarded(index, item, gate))
        except* _ItemFailed as group_failure:
            first = group_failure.exceptions[0]
            assert isinstance(first, _ItemFailed)
            raise first.as_error() from None
        if tolerant and failures:
            count_exceeded = tolerated_count is not None and failures > tolerated_count
            pct_exceeded = (
                tolerated_pct is not None and failures * 100.0 / len(items) > tolerated_pct
            )
            if count_exceeded or pct_exceeded:
                raise ExecutionError(
                    ErrorName.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                    "The specified tolerated failure threshold was exceeded",
                )
        return results


__all__ = ["MapState", "Run", "Scope"]
