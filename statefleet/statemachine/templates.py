"""Payload templates: Parameters, ResultSelector, ItemSelector, Assign, Arguments, Output.

A template is compiled once into a tree of small evaluators. Parts without any
dynamic value are kept as the literal itself (JSON values are never mutated by the
engine, so sharing them is safe).

* JSONPath templates: a key ending in ``.$`` takes its value from a path
  (``$…``, ``$$…``, ``$var…``) or an intrinsic function; the ``.$`` is dropped.
* JSONata templates: any string ``{% … %}``, at any depth, is an expression.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from statefleet.errors import ErrorName, RuntimeFailure
from statefleet.statemachine.expressions import Expression, compile_expression, is_expression
from statefleet.statemachine.paths import CONTEXT, Path, PathNotFound, compile_path

__all__ = ["Env", "Template", "compile_jsonata_template", "compile_jsonpath_template"]


class Env(Protocol):
    """What a template needs from the running state."""

    @property
    def variables(self) -> Mapping[str, Any]: ...

    def context(self) -> Any: ...


def _json_text(value: Any) -> str:
    from statefleet.statemachine.expressions import json_text

    return json_text(value)


Evaluator = Callable[[Any, Env], Any]


class Template:
    """A compiled template: ``evaluate(data, env)`` returns a fresh JSON value."""

    __slots__ = ("_evaluate",)

    def __init__(self, evaluate: Evaluator | None, literal: Any) -> None:
        if evaluate is None:

            def _literal(data: Any, env: Env, _value: Any = literal) -> Any:
                return _value

            evaluate = _literal
        self._evaluate = evaluate

    def evaluate(self, data: Any, env: Env) -> Any:
        return self._evaluate(data, env)


# ---------------------------------------------------------------- JSONPath


def _path_evaluator(path: Path, field: str) -> Evaluator:
    def evaluate(data: Any, env: Env) -> Any:
        try:
            if path.root == CONTEXT:
                return path.find(data, env.context(), env.variables)
            return path.find(data, None, env.variables)
        except PathNotFound:
            where = env.context() if path.root == CONTEXT else data
            if path.root == CONTEXT:
                where = where.get("Execution", {}).get("Input") if isinstance(where, dict) else None
            raise RuntimeFailure(
                ErrorName.RUNTIME,
                f"The JSONPath '{path.text}' specified for the field '{field}' "
                f"could not be found in the input '{_json_text(where)}'",
            ) from None

    return evaluate


def _intrinsic_evaluator(text: str) -> Evaluator:
    from statefleet.statemachine.intrinsics import compile_intrinsic

    function = compile_intrinsic(text)

    def evaluate(data: Any, env: Env) -> Any:
        return function.evaluate(data, env.context(), env.variables)

    return evaluate


def _compile_jsonpath(value: Any, field: str) -> Evaluator | None:
    """The template's evaluator, or None when it has no dynamic part."""
    if isinstance(value, dict):
        parts: list[tuple[str, Evaluator | None, Any]] = []
        dynamic = False
        for key, item in value.items():
            if isinstance(key, str) and key.endswith(".$"):
                name = key[:-2]
                sub_field = f"{field}.{key}" if field else key
                dynamic_evaluator: Evaluator
                if isinstance(item, str) and item.startswith("States."):
                    dynamic_evaluator = _intrinsic_evaluator(item)
                else:
                    dynamic_evaluator = _path_evaluator(compile_path(item), sub_field)
                parts.append((name, dynamic_evaluator, None))
                dynamic = True
            else:
                sub_field = f"{field}.{key}" if field else key
                nested = _compile_jsonpath(item, sub_field)
                parts.append((key, nested, item))
                dynamic = dynamic or nested is not None
        if not dynamic:
            return None

        def evaluate_object(data: Any, env: Env) -> Any:
            out = {}
            for name, evaluator, literal in parts:
                out[name] = literal if evaluator is None else evaluator(data, env)
            return out

        return evaluate_object
    if isinstance(value, list):
        items = [_compile_jsonpath(item, field) for item in value]
        if all(evaluator is None for evaluator in items):
            return None
        pairs = list(zip(items, value, strict=True))

        def evaluate_array(data: Any, env: Env) -> Any:
            return [
                literal if evaluator is None else evaluator(data, env)
                for evaluator, literal in pairs
            ]

        return evaluate_array
    return None


def compile_jsonpath_template(value: Any, field: str = "") -> Template:
    """Compile a JSONPath payload template (Parameters, ResultSelector, ItemSelector, Assign)."""
    return Template(_compile_jsonpath(value, field), value)


# ---------------------------------------------------------------- JSONata


class JSONataEnv(Env, Protocol):
    def states(self, data: Any) -> Mapping[str, Any]: ...


def _compile_jsonata(value: Any, field: str) -> Evaluator | None:
    if is_expression(value):
        expression: Expression = compile_expression(value, field)

        def evaluate_expression(data: Any, env: Any) -> Any:
            return expression.evaluate(env.states(data), env.variables)

        return evaluate_expression
    if isinstance(value, dict):
        parts = []
        dynamic = False
        for key, item in value.items():
            evaluator = _compile_jsonata(item, f"{field}/{key}" if field else str(key))
            parts.append((key, evaluator, item))
            dynamic = dynamic or evaluator is not None
        if not dynamic:
            return None

        def evaluate_object(data: Any, env: Any) -> Any:
            out = {}
            for key, evaluator, literal in parts:
                if evaluator is None:
                    out[key] = literal
                else:
                    out[key] = evaluator(data, env)
            return out

        return evaluate_object
    if isinstance(value, list):
        items = [
            (_compile_jsonata(item, f"{field}/{index}"), item) for index, item in enumerate(value)
        ]
        if all(evaluator is None for evaluator, _ in items):
            return None

        def evaluate_array(data: Any, env: Any) -> Any:
            return [literal if ev is None else ev(data, env) for ev, literal in items]

        return evaluate_array
    return None


def compile_jsonata_template(value: Any, field: str) -> Template:
    """Compile a JSONata template (Arguments, Output, Assign, ItemSelector, …)."""
    evaluator = _compile_jsonata(value, field)
    return Template(evaluator, value)


def single_expression(value: Any, field: str) -> Expression | None:
    """The compiled expression when ``value`` is exactly one ``{% … %}`` string."""
    if is_expression(value):
        return compile_expression(value, field)
    return None
