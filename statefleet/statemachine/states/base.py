"""The base of every state: the fixed data-flow pipeline, Retry and Catch.

JSONPath states::

    raw input -> InputPath -> Parameters -> execute -> ResultSelector
              -> (Assign) -> ResultPath (onto the raw input) -> OutputPath -> output

JSONata states::

    $states.input -> Arguments -> execute -> $states.result -> (Assign) -> Output -> output

A subclass implements only :meth:`State.execute` (and says which fields it takes).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from statefleet.errors import ErrorName, ExecutionError, RuntimeFailure
from statefleet.statemachine.expressions import json_text
from statefleet.statemachine.paths import (
    Path,
    PathNotFound,
    ResultPathError,
    compile_path,
    set_path,
)
from statefleet.statemachine.runtime import Run, Scope, StateEnv
from statefleet.statemachine.steps import End, Failed, Next, Step
from statefleet.statemachine.templates import (
    Template,
    compile_jsonata_template,
    compile_jsonpath_template,
)

__all__ = ["Catcher", "Retrier", "State", "error_matches"]

JSONPATH = "JSONPath"
JSONATA = "JSONata"

# States.ALL matches every error but these (AWS: "States.Runtime ... isn't retriable").
_NEVER_HANDLED = frozenset({ErrorName.RUNTIME.value})

_UNSET: Any = object()

#: AWS's limit on a state's input or output, in bytes.
PAYLOAD_LIMIT = 256 * 1024


def error_matches(names: tuple[str, ...], error: str) -> bool:
    """Does a Retry/Catch ``ErrorEquals`` list match ``error``?"""
    if error in _NEVER_HANDLED:
        return False
    for name in names:
        if name == error or name == "States.ALL":
            return True
        if name == "States.TaskFailed" and error != ErrorName.TIMEOUT:
            return True
    return False


class Retrier:
    """One element of ``Retry``."""

    __slots__ = (
        "backoff_rate",
        "error_equals",
        "interval",
        "jitter",
        "max_attempts",
        "max_delay",
    )

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.error_equals = tuple(spec.get("ErrorEquals", ()))
        self.interval = float(spec.get("IntervalSeconds", 1))
        self.max_attempts = int(spec.get("MaxAttempts", 3))
        self.backoff_rate = float(spec.get("BackoffRate", 2.0))
        max_delay = spec.get("MaxDelaySeconds")
        self.max_delay = float(max_delay) if max_delay is not None else None
        self.jitter = spec.get("JitterStrategy", "NONE") == "FULL"

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1`` of this retrier."""
        delay = self.interval * (self.backoff_rate**attempt)
        if self.max_delay is not None:
            delay = min(delay, self.max_delay)
        if self.jitter:
            delay = random.uniform(0, delay)
        return delay


class Catcher:
    """One element of ``Catch``."""

    __slots__ = ("assign", "error_equals", "next", "output", "result_path")

    def __init__(self, spec: Mapping[str, Any], jsonata: bool) -> None:
        self.error_equals = tuple(spec.get("ErrorEquals", ()))
        self.next: str = spec["Next"]
        self.result_path: Path | None = None
        self.output: Template | None = None
        self.assign: Template | None = None
        if jsonata:
            if "Output" in spec:
                self.output = compile_jsonata_template(spec["Output"], "Output")
            if "Assign" in spec:
                self.assign = compile_jsonata_template(spec["Assign"], "Assign")
        else:
            result_path = spec.get("ResultPath", "$")
            self.result_path = None if result_path is None else compile_path(result_path)
            if "Assign" in spec:
                self.assign = compile_jsonpath_template(spec["Assign"])


class State:
    """A state of a state machine, parsed once from its definition."""

    type_name: ClassVar[str] = ""
    #: fields of the JSONPath pipeline this state type takes
    takes_parameters: ClassVar[bool] = True
    takes_result: ClassVar[bool] = True
    handles_errors: ClassVar[bool] = False

    def __init__(self, name: str, spec: Mapping[str, Any], pointer: str, language: str) -> None:
        self.name = name
        self.pointer = pointer
        self.spec = spec
        self.jsonata = spec.get("QueryLanguage", language) == JSONATA
        self.next: str | None = spec.get("Next")
        self.end = bool(spec.get("End", False))
        self.input_path: Path | None = _UNSET
        self.output_path: Path | None = _UNSET
        self.result_path: Path | None = _UNSET
        self.parameters: Template | None = None
        self.result_selector: Template | None = None
        self.arguments: Template | None = None
        self.output: Template | None = None
        self.assign: Template | None = None
        if self.jsonata:
            if "Arguments" in spec:
                self.arguments = compile_jsonata_template(spec["Arguments"], "Arguments")
            if "Output" in spec:
                self.output = compile_jsonata_template(spec["Output"], "Output")
            if "Assign" in spec:
                self.assign = compile_jsonata_template(spec["Assign"], "Assign")
        else:
            self.input_path = _optional_path(spec, "InputPath")
            self.output_path = _optional_path(spec, "OutputPath")
            if self.takes_result:
                self.result_path = _optional_path(spec, "ResultPath")
            if self.takes_parameters and "Parameters" in spec:
                self.parameters = compile_jsonpath_template(spec["Parameters"])
            if self.takes_result and "ResultSelector" in spec:
                self.result_selector = compile_jsonpath_template(spec["ResultSelector"])
            if "Assign" in spec:
                self.assign = compile_jsonpath_template(spec["Assign"])
        self.retriers: list[Retrier] = []
        self.catchers: list[Catcher] = []
        if self.handles_errors:
            self.retriers = [Retrier(r) for r in spec.get("Retry", ())]
            self.catchers = [Catcher(c, self.jsonata) for c in spec.get("Catch", ())]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # ------------------------------------------------------------ subclass API

    async def execute(self, env: StateEnv, data: Any) -> Any:
        """Do this state's own work on its effective input; return its result."""
        return data

    def before_attempt(self, env: StateEnv) -> None:
        """Called before each attempt (callback states take their resumed wait here)."""

    def successors(self) -> list[str]:
        """Names of the states this one can go to (for validation and graphs)."""
        targets = [self.next] if self.next else []
        targets.extend(c.next for c in self.catchers)
        return targets

    # ------------------------------------------------------------ the pipeline

    async def enter(self, run: Run, scope: Scope, raw: Any) -> Step:
        """Run this state on its raw input, with Retry and Catch; return the step."""
        env = StateEnv(run, scope, self, raw)
        started = env.entered
        while True:
            self.before_attempt(env)
            try:
                if self.jsonata:
                    output, assigned = await self._attempt_jsonata(env, raw)
                else:
                    output, assigned = await self._attempt_jsonpath(env, raw)
            except ExecutionError as exc:
                error, cause = exc.error, exc.cause
                if isinstance(exc, RuntimeFailure):
                    cause = self.runtime_cause(env, cause)
                if scope.record_history:
                    run.record(self, "FAILED", raw, None, error, cause, env.retry_count, started)
                retried_out = False
                if self.retriers and error not in _NEVER_HANDLED:
                    if env.retry_counts is None:
                        env.retry_counts = [0] * len(self.retriers)
                    delay = self._retry_delay(error, env.retry_counts)
                    if delay is not None:
                        await run.clock.sleep(delay)
                        env.retry_count += 1
                        env.invalidate_context()
                        env.states_binding = None
                        started = run.clock.now()
                        continue
                    retried_out = any(error_matches(r.error_equals, error) for r in self.retriers)
                for catcher in self.catchers:
                    if error_matches(catcher.error_equals, error):
                        return self._caught(env, raw, catcher, error, cause)
                # A Retry of the state that ran out is the definition's own decision: the
                # execution fails as designed (retryable None), and no queue retries it.
                return Failed(error, cause, retryable=None if retried_out else _retryable(exc))
            if assigned:
                scope.variables.update(assigned)
            if scope.record_history:
                run.record(self, "SUCCEEDED", raw, output, None, None, env.retry_count, started)
            target = env.chosen or self.next
            if target is None:
                return End(output)
            return Next(target, output)

    def _retry_delay(self, error: str, counts: list[int]) -> float | None:
        for index, retrier in enumerate(self.retriers):
            if error_matches(retrier.error_equals, error):
                attempt = counts[index]
                if attempt >= retrier.max_attempts:
                    return None
                counts[index] = attempt + 1
                return retrier.delay(attempt)
        return None

    def runtime_cause(self, env: StateEnv, cause: str | None) -> str:
        prefix = (
            f"An error occurred while executing the state '{self.name}' "
            f"(entered at the event id #{env.event_id})."
        )
        return f"{prefix} {cause}" if cause else prefix

    def _caught(
        self, env: StateEnv, raw: Any, catcher: Catcher, error: str, cause: str | None
    ) -> Step:
        error_output: dict[str, Any] = {"Error": error}
        if cause is not None:
            error_output["Cause"] = cause
        try:
            if self.jsonata:
                states = {"input": raw, "context": env.context(), "errorOutput": error_output}
                env.states_binding = states
                assigned = catcher.assign.evaluate(raw, env) if catcher.assign else None
                output = catcher.output.evaluate(raw, env) if catcher.output else error_output
            else:
                assigned = catcher.assign.evaluate(error_output, env) if catcher.assign else None
                if catcher.result_path is None:
                    output = raw
                else:
                    output = self._place_result(raw, catcher.result_path, error_output)
        except ExecutionError as exc:
            cause2 = exc.cause
            if isinstance(exc, RuntimeFailure):
                cause2 = self.runtime_cause(env, cause2)
            return Failed(exc.error, cause2)
        if assigned:
            env.scope.variables.update(assigned)
        return Next(catcher.next, output)

    async def _attempt_jsonpath(self, env: StateEnv, raw: Any) -> tuple[Any, Any]:
        data = raw
        input_path = self.input_path
        if input_path is not _UNSET:
            data = {} if input_path is None else self._select(input_path, raw, env)
        if self.parameters is not None:
            data = self.parameters.evaluate(data, env)
            if exceeds(data, PAYLOAD_LIMIT):
                raise self._too_large("has an input")
        result = await self.execute(env, data)
        if self.result_selector is not None:
            result = self.result_selector.evaluate(result, env)
        assigned = self.assign.evaluate(result, env) if self.assign is not None else None
        result_path = self.result_path
        if result_path is _UNSET:
            output = result
        elif result_path is None:
            output = raw
        else:
            output = self._place_result(raw, result_path, result)
        output_path = self.output_path
        if output_path is not _UNSET:
            output = {} if output_path is None else self._select(output_path, output, env)
        if exceeds(output, PAYLOAD_LIMIT):
            raise self._too_large("returned a result")
        return output, assigned

    async def _attempt_jsonata(self, env: StateEnv, raw: Any) -> tuple[Any, Any]:
        data = raw
        if self.arguments is not None:
            data = self.arguments.evaluate(raw, env)
            if exceeds(data, PAYLOAD_LIMIT):
                raise self._too_large("has an input")
        result = await self.execute(env, data)
        states = env.states()
        states["result"] = result
        assigned = self.assign.evaluate(raw, env) if self.assign is not None else None
        output = self.output.evaluate(raw, env) if self.output is not None else result
        if exceeds(output, PAYLOAD_LIMIT):
            raise self._too_large("returned a result")
        return output, assigned

    def _too_large(self, what: str) -> ExecutionError:
        return ExecutionError(
            ErrorName.DATA_LIMIT_EXCEEDED,
            f"The state/task '{self.name}' {what} with a size exceeding the maximum number "
            "of bytes service limit.",
        )

    def _select(self, path: Path, data: Any, env: StateEnv) -> Any:
        try:
            return path.find(data, env.context() if path.root == "context" else None, env.variables)
        except PathNotFound:
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                f"Invalid path '{path.text}' : No results for path: {_bracketed(path)}",
            ) from None

    @staticmethod
    def _place_result(raw: Any, path: Path, result: Any) -> Any:
        keys = path.keys
        if keys is None:
            raise RuntimeFailure(
                ErrorName.RUNTIME, f"ResultPath '{path.text}' must be a singular reference path"
            )
        try:
            return set_path(raw, keys, result)
        except ResultPathError:
            raise ExecutionError(
                ErrorName.RESULT_PATH_MATCH_FAILURE,
                f"Unable to apply ReferencePath {path.text} to input {json_text(raw)}",
            ) from None


def _retryable(exc: ExecutionError) -> bool | None:
    """May running the state again help? Not for ``States.Runtime`` nor for errors marked
    ``retryable=False``; None (a designed failure) for one a Map item or a Parallel branch
    ended with by its own definition."""
    if isinstance(exc, RuntimeFailure):
        return False
    value = getattr(exc, "retryable", True)
    return None if value is None else bool(value)


def _optional_path(spec: Mapping[str, Any], field: str) -> Path | None:
    if field not in spec:
        return _UNSET
    value = spec[field]
    if value is None:
        return None
    return compile_path(value)


def _bracketed(path: Path) -> str:
    if path.keys is None:
        return path.text
    parts = ["$"]
    for key in path.keys:
        parts.append(f"['{key}']" if isinstance(key, str) else f"[{key}]")
    return "".join(parts)


_orjson_dumps = orjson.dumps


def exceeds(value: Any, limit: int) -> bool:
    """Is ``value`` as JSON text larger than ``limit`` bytes? Cheap for small values.

    orjson's text (C, a fraction of a microsecond for a small document) is never shorter
    than 1/2.25 of the json module's text that :func:`data_size` measures (they differ only
    in how a float's exponent, NaN and infinities are written: ``1e-7`` vs ``1e-07``,
    ``null`` vs ``Infinity``), so a value whose orjson text is at most 2/5 of the limit is
    within it; only values that might be large are measured exactly.
    """
    try:
        size = len(_orjson_dumps(value))
    except TypeError:  # not a plain JSON value for orjson (a set, a non-text key...)
        return _exceeds_walk(value, limit)
    if size * 5 <= limit * 2:
        return False
    return data_size(value) > limit


def _exceeds_walk(value: Any, limit: int) -> bool:
    """:func:`exceeds` by a short walk that bounds the size from above (every character
    may take up to 6 bytes escaped)."""
    budget = 64
    upper = 0
    stack = [value]
    while stack:
        item = stack.pop()
        budget -= 1
        if budget < 0:
            return data_size(value) > limit
        if isinstance(item, str):
            upper += 6 * len(item) + 2
        elif isinstance(item, dict):
            upper += 2
            for key, sub in item.items():
                upper += 6 * len(key) + 4 if isinstance(key, str) else 32
                stack.append(sub)
        elif isinstance(item, list):
            upper += 2
            stack.extend(item)
        else:
            upper += 32
        if upper > limit:
            return data_size(value) > limit
    return False


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON value (dicts and lists are copied; scalars are immutable)."""
    if type(value) is dict:
        return {k: json_copy(v) if type(v) in (dict, list) else v for k, v in value.items()}
    if type(value) is list:
        return [json_copy(v) if type(v) in (dict, list) else v for v in value]
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_copy(v) for v in value]
    return value


def data_size(value: Any) -> int:
    """Size in bytes of a JSON value as UTF-8 text (for the 256 KiB payload limit)."""
    # A lone surrogate (not valid UTF-8) counts as the 3 bytes it would take.
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")) + 2
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass"))
