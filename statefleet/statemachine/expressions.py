"""JSONata expressions (``QueryLanguage: JSONata``), compiled once per definition.

A JSONata value in a definition is a string ``"{% expression %}"``. It is evaluated
with the bindings Step Functions provides: ``$states`` (``input``, ``result``,
``errorOutput``, ``context``) and every workflow variable by name, plus the functions
AWS adds to JSONata (``$partition``, ``$range``, ``$hash``, ``$random``, ``$uuid``,
``$parse``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import jsonata
from jsonata.utils import Utils

from statefleet.errors import ErrorName, RuntimeFailure

_NullValue = Utils.NullValue

__all__ = ["Expression", "JSONataSyntaxError", "compile_expression", "is_expression"]


class JSONataSyntaxError(ValueError):
    """The text between ``{%`` and ``%}`` is not a valid JSONata expression."""


def is_expression(value: Any) -> bool:
    """True for a string of the form ``{% … %}``."""
    return (
        isinstance(value, str)
        and value.startswith("{%")
        and value.endswith("%}")
        and len(value) >= 4
    )


def _aws_functions() -> Mapping[str, Callable[..., Any]]:
    try:
        from statefleet.statemachine.intrinsics import JSONATA_FUNCTIONS
    except ImportError:  # pragma: no cover - present in every release
        return {}
    return JSONATA_FUNCTIONS


def to_json_value(value: Any) -> Any:
    """Turn what the JSONata library returns into plain JSON values (lists, dicts, …)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, _NullValue):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, list):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    raise _Unsupported(value)


class _Unsupported(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


def json_text(value: Any) -> str:
    """Compact JSON as AWS prints values in error causes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_JSON_TYPE_NAMES = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def json_type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), "object")


class Expression:
    """A compiled ``{% … %}`` expression bound to the field it stands in."""

    __slots__ = ("_compiled", "field", "source")

    def __init__(self, source: str, field: str) -> None:
        self.source = source
        self.field = field
        try:
            compiled = jsonata.Jsonata(source)
        except Exception as exc:
            raise JSONataSyntaxError(_jsonata_message(exc)) from None
        functions = _aws_functions()
        for name, function in functions.items():
            if "$" + name in source:
                compiled.register_lambda(name, function)
        # Keep JSON null (NULL_VALUE) apart from "undefined" (None).
        compiled.set_output_convert_nulls(False)
        self._compiled = compiled

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def evaluate(self, states: Mapping[str, Any], variables: Mapping[str, Any]) -> Any:
        """Evaluate with ``$states`` and the variables bound; raise States.QueryEvaluationError."""
        bindings = dict(variables)
        bindings["states"] = states
        try:
            raw = self._compiled.evaluate(states.get("input"), bindings)
        except RecursionError:
            raise self.failure("threw an error during evaluation. Stack overflow") from None
        except Exception as exc:
            raise self.failure(
                f"threw an error during evaluation. {_jsonata_message(exc)}"
            ) from None
        if raw is None:
            raise self.failure("returned nothing (undefined).")
        try:
            return to_json_value(raw)
        except _Unsupported:
            raise self.failure("returned an unsupported result type.") from None

    def failure(self, what: str) -> RuntimeFailure:
        return RuntimeFailure(
            ErrorName.QUERY_EVALUATION_ERROR,
            f"The JSONata expression '{self.source}' specified for the field '{self.field}' {what}",
        )

    def type_failure(self, expected: str, value: Any) -> RuntimeFailure:
        return self.failure(
            "returned an unexpected result type. "
            f"Expected '{expected}', but was '{json_type_name(value)}' "
            f"for value: {json_text(value)}"
        )


def _jsonata_message(exc: BaseException) -> str:
    code = getattr(exc, "error", None)
    message = str(exc) or type(exc).__name__
    if isinstance(code, str) and code:
        return f"{code}: {message}"
    return message


def compile_expression(text: str, field: str) -> Expression:
    """Compile ``"{% expr %}"`` (the braces included) for the named field."""
    return Expression(text[2:-2].strip(), field)
