"""Static validation of an Amazon States Language document, the way AWS validates it.

:func:`validate` takes the parsed document (any JSON/YAML value) and returns every
:class:`~statefleet.errors.Problem` it finds, never raising. Each problem carries an
RFC 6901 JSON pointer (``/States/Check/Choices/0/Next``) and a message that says what is
wrong and what is expected. Problems come in document order.

What is checked follows the Amazon States Language specification and the AWS Step
Functions developer guide (and AWS's ``ValidateStateMachineDefinition`` diagnostics):

* structure: the top level and every nested machine (Parallel ``Branches``, Map
  ``ItemProcessor``/``Iterator``) need ``StartAt`` naming one of their ``States``;
  unknown fields are rejected (``SCHEMA_VALIDATION_FAILED``);
* states: a valid ``Type``, only the fields that type allows, the type of every field,
  ``Next``/``End`` rules, state names (at most 80 characters, unique in the whole
  machine: ``DUPLICATE_STATE_NAME``);
* transitions: every ``Next``/``Default``/Choice/Catch target exists in the same
  (sub-)machine (``MISSING_TRANSITION_TARGET``), every state is reachable from
  ``StartAt``, and every machine has a terminal state (``MISSING_END_STATE``);
* query languages: JSONPath-only fields in JSONata states and JSONata-only fields in
  JSONPath states, JSONPath states inside a JSONata state machine, JSONata expressions
  that do not parse, paths that do not compile, ``.$`` payload fields whose value is
  neither a path nor an intrinsic function call;
* the state types' own rules (Choice rules and operand types, Wait's single timer,
  Fail's Error/ErrorPath pairs, Task timeouts and Credentials, Retry/Catch and
  ``States.ALL``, Map limits and configuration blocks, variable names in ``Assign``).
"""

from __future__ import annotations

import calendar
import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Final

import jsonata

from statefleet.errors import Problem
from statefleet.statemachine.intrinsics import IntrinsicSyntaxError, compile_intrinsic, is_intrinsic
from statefleet.statemachine.paths import PathSyntaxError, compile_path

__all__ = ["validate"]

JSONPATH: Final = "JSONPath"
JSONATA: Final = "JSONata"
QUERY_LANGUAGES: Final = (JSONPATH, JSONATA)

STATE_TYPES: Final = (
    "Pass",
    "Task",
    "Choice",
    "Wait",
    "Succeed",
    "Fail",
    "Parallel",
    "Map",
    "Message",
)
MAX_STATE_NAME_LENGTH: Final = 80
MAX_VARIABLE_NAME_LENGTH: Final = 80
MAX_SECONDS: Final = 99_999_999

# --------------------------------------------------------------------------- field tables

_TOP_LEVEL_FIELDS: Final = ("Comment", "StartAt", "States", "Version", "TimeoutSeconds")
_COMMON_FIELDS: Final = frozenset({"Type", "Comment", "QueryLanguage"})

_ALLOWED_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "Pass": _COMMON_FIELDS
    | {"Next", "End", "InputPath", "OutputPath", "Parameters", "Result", "ResultPath"}
    | {"Output", "Assign"},
    "Task": _COMMON_FIELDS
    | {"Next", "End", "Resource", "InputPath", "OutputPath", "Parameters", "ResultSelector"}
    | {"ResultPath", "Arguments", "Output", "Assign", "Retry", "Catch", "TimeoutSeconds"}
    | {"TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath", "Credentials"},
    "Choice": _COMMON_FIELDS
    | {"Choices", "Default", "InputPath", "OutputPath", "Output", "Assign"},
    "Wait": _COMMON_FIELDS
    | {"Next", "End", "Seconds", "Timestamp", "SecondsPath", "TimestampPath", "InputPath"}
    | {"OutputPath", "Output", "Assign"},
    "Succeed": _COMMON_FIELDS | {"InputPath", "OutputPath", "Output"},
    "Fail": _COMMON_FIELDS | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": _COMMON_FIELDS
    | {"Next", "End", "Branches", "InputPath", "OutputPath", "Parameters", "ResultSelector"}
    | {"ResultPath", "Arguments", "Output", "Assign", "Retry", "Catch"},
    "Map": _COMMON_FIELDS
    | {"Next", "End", "ItemProcessor", "Iterator", "ItemsPath", "Items", "ItemSelector"}
    | {"Parameters", "MaxConcurrency", "MaxConcurrencyPath", "ToleratedFailurePercentage"}
    | {"ToleratedFailurePercentagePath", "ToleratedFailureCount", "ToleratedFailureCountPath"}
    | {"ItemReader", "ItemBatcher", "ResultWriter", "Label", "InputPath", "OutputPath"}
    | {"ResultSelector", "ResultPath", "Output", "Assign", "Retry", "Catch"},
    # statefleet's (and the reference engine's) Message state: JSONPath only.
    "Message": _COMMON_FIELDS
    | {"Next", "End", "CorrelationKey", "CorrelationValuePath", "CorrelationValue"}
    | {"TimeoutSeconds", "TimeoutSecondsPath", "TimeoutPath", "InputPath", "OutputPath"}
    | {"ResultSelector", "ResultPath", "Assign", "Retry", "Catch"},
}

# Fields a state may only use under one query language (AWS developer guide, per state type).
_JSONPATH_ONLY: Final = frozenset(
    {
        "InputPath",
        "OutputPath",
        "Parameters",
        "Result",
        "ResultSelector",
        "ResultPath",
        "ItemsPath",
        "SecondsPath",
        "TimestampPath",
        "TimeoutSecondsPath",
        "HeartbeatSecondsPath",
        "ErrorPath",
        "CausePath",
        "MaxConcurrencyPath",
        "ToleratedFailurePercentagePath",
        "ToleratedFailureCountPath",
        "MaxItemsPath",
        "MaxItemsPerBatchPath",
        "MaxInputBytesPerBatchPath",
    }
)
_JSONATA_ONLY: Final = frozenset({"Arguments", "Output", "Items"})

_JSONATA_REPLACEMENT: Final[Mapping[str, str]] = {
    "InputPath": 'read the input as $states.input in "Arguments" or "Output" instead',
    "OutputPath": 'use "Output" instead',
    "ResultSelector": 'use "Output" (with $states.result) instead',
    "ResultPath": 'use "Output" (with $states.input and $states.result) instead',
    "Result": 'use "Output" instead',
    "ItemsPath": 'use "Items" instead',
}
_JSONPATH_REPLACEMENT: Final[Mapping[str, str]] = {
    "Output": 'use "OutputPath", "ResultSelector" or "ResultPath" instead',
    "Items": 'use "ItemsPath" instead',
}

_TERMINAL_TYPES: Final = frozenset({"Succeed", "Fail"})
_WITH_TRANSITION: Final = frozenset({"Pass", "Task", "Wait", "Parallel", "Map", "Message"})
_WITH_ERROR_HANDLING: Final = ("Task", "Parallel", "Map", "Message")

# --------------------------------------------------------------------------- Choice rules

_STRING_OPERATORS: Final = (
    "StringEquals",
    "StringLessThan",
    "StringGreaterThan",
    "StringLessThanEquals",
    "StringGreaterThanEquals",
)
_NUMERIC_OPERATORS: Final = (
    "NumericEquals",
    "NumericLessThan",
    "NumericGreaterThan",
    "NumericLessThanEquals",
    "NumericGreaterThanEquals",
)
_TIMESTAMP_OPERATORS: Final = (
    "TimestampEquals",
    "TimestampLessThan",
    "TimestampGreaterThan",
    "TimestampLessThanEquals",
    "TimestampGreaterThanEquals",
)
_TYPE_TESTS: Final = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")

# operator -> kind of operand: "string", "number", "boolean", "timestamp", "path"
_OPERATORS: Final[Mapping[str, str]] = {
    **{op: "string" for op in _STRING_OPERATORS},
    "StringMatches": "string",
    **{op: "number" for op in _NUMERIC_OPERATORS},
    "BooleanEquals": "boolean",
    **{op: "timestamp" for op in _TIMESTAMP_OPERATORS},
    **{op: "boolean" for op in _TYPE_TESTS},
    **{
        f"{op}Path": "path"
        for op in (*_STRING_OPERATORS, *_NUMERIC_OPERATORS, "BooleanEquals", *_TIMESTAMP_OPERATORS)
    },
}
_COMPOSITES: Final = ("And", "Or", "Not")
_JSONPATH_RULE_FIELDS: Final = frozenset({"Variable", *_OPERATORS, *_COMPOSITES})
_JSONATA_RULE_FIELDS: Final = frozenset({"Condition"})

_OPERAND_DESCRIPTION: Final[Mapping[str, str]] = {
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "timestamp": "a timestamp string such as 2016-03-14T01:59:00Z",
    "path": "a path such as $.value",
}

# --------------------------------------------------------------------------- value helpers

# RFC 3339 with the ASL restrictions: an upper-case "T" between date and time, and an
# upper-case "Z" when there is no numeric offset.
_TIMESTAMP: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(Z|[+-]([0-9]{2}):([0-9]{2}))"
)


def is_timestamp(value: object) -> bool:
    """True for a string AWS accepts as a timestamp literal (RFC 3339, upper-case T and Z)."""
    if not isinstance(value, str):
        return False
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not 1 <= month <= 12 or year < 1:
        return False
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return False
    if hour > 23 or minute > 59 or second > 60:
        return False
    offset_hour, offset_minute = match.group(9), match.group(10)
    return offset_hour is None or (int(offset_hour) <= 23 and int(offset_minute) <= 59)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def _is_expression(value: object) -> bool:
    """True for a JSONata string, ``{% … %}``."""
    return (
        isinstance(value, str)
        and len(value) >= 4
        and value.startswith("{%")
        and value.endswith("%}")
    )


def _show(value: object) -> str:
    """Describe a value for a message: its JSON type and, for scalars, the value."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {json.dumps(text, ensure_ascii=False)}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, datetime | date | time):
        return f"a YAML date/time ({value.isoformat()}); quote it in YAML to keep it a string"
    return f"a value of type {type(value).__name__}"


def _quote(name: object) -> str:
    return f"'{name}'"


def _names(names: Iterable[str], limit: int = 10) -> str:
    listed = list(names)
    shown = ", ".join(listed[:limit])
    if len(listed) > limit:
        shown += f", … ({len(listed) - limit} more)"
    return shown or "none"


def _child(pointer: str, key: object) -> str:
    token = str(key).replace("~", "~0").replace("/", "~1")
    return f"{pointer}/{token}"


def _suggest(name: object, candidates: Iterable[str]) -> str:
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return f'; did you mean "{close[0]}"?' if close else ""


# --------------------------------------------------------------------------- intrinsics


def _intrinsic_error(text: str) -> str | None:
    """Parse an intrinsic function call; return the parser's message, or None if it is valid."""
    try:
        compile_intrinsic(text)
    except IntrinsicSyntaxError as exc:
        return exc.problem
    except Exception as exc:  # a parser bug must not make validation raise
        return f"the call could not be parsed ({type(exc).__name__}: {exc})"
    return None


def _looks_intrinsic(text: str) -> bool:
    """A string meant as an intrinsic function call (checked fully by the parser)."""
    return text.startswith("States.") or is_intrinsic(text)


# --------------------------------------------------------------------------- JSONata

_JSONATA_CACHE: dict[str, str | None] = {}


def _jsonata_error(expression: str) -> str | None:
    """Parse a JSONata expression (the text between ``{%`` and ``%}``)."""
    if expression in _JSONATA_CACHE:
        return _JSONATA_CACHE[expression]
    error: str | None = None
    if not expression.strip():
        error = "the JSONata expression between {% and %} is empty"
    else:
        try:
            jsonata.Jsonata(expression)
        except Exception as exc:  # JException, and anything else the parser may raise
            message = str(exc).strip() or type(exc).__name__
            error = f"the JSONata expression does not parse: {message}"
    if len(_JSONATA_CACHE) < 10_000:
        _JSONATA_CACHE[expression] = error
    return error


# --------------------------------------------------------------------------- scopes


@dataclass
class _Scope:
    """One state machine: the top level, a Parallel branch or a Map item processor."""

    pointer: str
    start_at: str | None = None
    states: dict[str, str] = field(default_factory=dict)  # name -> pointer
    edges: list[tuple[str, str, str, str]] = field(default_factory=list)  # src, dst, ptr, key
    terminal: bool = False
    complete: bool = True  # every state is an object with a valid Type


# --------------------------------------------------------------------------- validator


class _Validator:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.top_language: str = JSONPATH
        self.scopes: list[_Scope] = []
        self.defined: dict[str, list[str]] = {}  # state name -> pointers, whole document

    def report(self, pointer: str, message: str) -> None:
        self.problems.append(Problem(pointer, message))

    # ------------------------------------------------------------------ generic checks

    def string(self, value: object, pointer: str, name: str, *, nonempty: bool = False) -> bool:
        if not isinstance(value, str):
            self.report(pointer, f'"{name}" must be a string, got {_show(value)}')
            return False
        if nonempty and not value:
            self.report(pointer, f'"{name}" must not be empty')
            return False
        return True

    def boolean(self, value: object, pointer: str, name: str) -> bool:
        if not isinstance(value, bool):
            self.report(pointer, f'"{name}" must be true or false, got {_show(value)}')
            return False
        return True

    def obj(self, value: object, pointer: str, name: str) -> bool:
        if not isinstance(value, dict):
            self.report(pointer, f'"{name}" must be an object, got {_show(value)}')
            return False
        return True

    def enum(self, value: object, pointer: str, name: str, allowed: Iterable[str]) -> bool:
        options = tuple(allowed)
        if not isinstance(value, str) or value not in options:
            expected = " or ".join(f'"{o}"' for o in options)
            self.report(pointer, f'"{name}" must be {expected}, got {_show(value)}')
            return False
        return True

    def integer(
        self,
        value: object,
        pointer: str,
        name: str,
        *,
        minimum: int,
        maximum: int | None = None,
        language: str = JSONPATH,
    ) -> bool:
        """An integer in range (or, under JSONata, a ``{% %}`` expression)."""
        if language == JSONATA and _is_expression(value):
            self.expression(value, pointer)
            return False
        if minimum == 0:
            expected = "a non-negative integer"
        elif minimum == 1:
            expected = "a positive integer"
        else:
            expected = f"an integer of at least {minimum}"
        if maximum is not None:
            expected += f" (at most {maximum})"
        if language == JSONATA:
            expected += " or a JSONata expression {% … %}"
        if not _is_int(value):
            self.report(pointer, f'"{name}" must be {expected}, got {_show(value)}')
            return False
        assert isinstance(value, int)
        if value < minimum or (maximum is not None and value > maximum):
            self.report(pointer, f'"{name}" must be {expected}, got {value}')
            return False
        return True

    def number(
        self,
        value: object,
        pointer: str,
        name: str,
        *,
        minimum: float,
        maximum: float | None = None,
        language: str = JSONPATH,
    ) -> None:
        if language == JSONATA and _is_expression(value):
            self.expression(value, pointer)
            return
        expected = f"a number of at least {minimum:g}"
        if maximum is not None:
            expected = f"a number from {minimum:g} to {maximum:g}"
        if language == JSONATA:
            expected += " or a JSONata expression {% … %}"
        if not _is_number(value):
            self.report(pointer, f'"{name}" must be {expected}, got {_show(value)}')
            return
        assert isinstance(value, int | float)
        if value < minimum or (maximum is not None and value > maximum):
            self.report(pointer, f'"{name}" must be {expected}, got {value!r}')

    def path(
        self,
        value: object,
        pointer: str,
        name: str,
        *,
        nullable: bool = False,
        reference: bool = False,
        allow_context: bool = True,
        allow_variables: bool = True,
        intrinsic: bool = False,
    ) -> None:
        """A JSONPath (``$…``, ``$$…`` or ``$var…``), or an intrinsic call if allowed."""
        if value is None and nullable:
            return
        if not isinstance(value, str):
            expected = "a path string such as $.field"
            if nullable:
                expected += " or null"
            self.report(pointer, f'"{name}" must be {expected}, got {_show(value)}')
            return
        if intrinsic and not value.startswith("$"):
            if _looks_intrinsic(value):
                error = _intrinsic_error(value)
                if error is not None:
                    self.report(
                        pointer, f'"{name}" is not a valid intrinsic function call: {error}'
                    )
                return
            self.report(
                pointer,
                f'"{name}" must be a path ($.field, $$.Context, $variable) or an intrinsic '
                f"function call (States.Format(...)), got {_show(value)}",
            )
            return
        try:
            compiled = compile_path(
                value, allow_context=allow_context, allow_variables=allow_variables
            )
        except PathSyntaxError as exc:
            self.report(pointer, f'"{name}" is not a valid path: {exc}')
            return
        except Exception as exc:  # pragma: no cover - a parser bug must not escape
            self.report(pointer, f'"{name}" is not a valid path: {exc}')
            return
        if reference and not compiled.definite:
            self.report(
                pointer,
                f'"{name}" must be a reference path that selects a single value (names and '
                f"indexes only, such as $.a.b[0]); {value!r} uses wildcards, slices, filters "
                "or recursive descent",
            )

    def expression(self, value: object, pointer: str) -> None:
        """Parse a ``{% … %}`` string; report a problem if it does not parse."""
        assert isinstance(value, str)
        error = _jsonata_error(value[2:-2])
        if error is not None:
            self.report(pointer, error)

    def jsonata_values(self, value: object, pointer: str) -> None:
        """Parse every ``{% … %}`` string in a JSON value (objects and arrays included)."""
        if _is_expression(value):
            self.expression(value, pointer)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.jsonata_values(item, _child(pointer, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.jsonata_values(item, _child(pointer, index))

    def object_or_expression(self, value: object, pointer: str, name: str) -> None:
        """JSONata: an object (whose strings may be expressions) or one ``{% %}`` string."""
        if isinstance(value, dict) or _is_expression(value):
            self.jsonata_values(value, pointer)
        else:
            self.report(
                pointer,
                f'"{name}" must be an object or a JSONata expression {{% … %}}, got {_show(value)}',
            )

    def payload_template(self, value: object, pointer: str, name: str) -> None:
        """JSONPath: an object whose ``*.$`` fields hold paths or intrinsic calls."""
        if self.obj(value, pointer, name):
            self.template_fields(value, pointer)

    def template_fields(self, value: object, pointer: str) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.template_fields(item, _child(pointer, index))
            return
        if not isinstance(value, dict):
            return
        plain: dict[str, str] = {}
        for key in value:
            if isinstance(key, str):
                stripped = key[:-2] if key.endswith(".$") else key
                if stripped in plain:
                    self.report(
                        _child(pointer, key),
                        f'"{key}" and "{plain[stripped]}" both produce the field '
                        f'"{stripped}"; keep only one',
                    )
                else:
                    plain[stripped] = key
        for key, item in value.items():
            where = _child(pointer, key)
            if isinstance(key, str) and key.endswith(".$"):
                self.dynamic_value(item, where, key)
            else:
                self.template_fields(item, where)

    def dynamic_value(self, value: object, pointer: str, key: str) -> None:
        """The value of a ``name.$`` field: a path or an intrinsic function call."""
        if not isinstance(value, str):
            self.report(
                pointer,
                f'"{key}" ends in ".$", so its value must be a path string ($.field, '
                f"$$.Context, $variable) or an intrinsic function call, got {_show(value)}",
            )
            return
        if value.startswith("$"):
            self.path(value, pointer, key)
        elif _looks_intrinsic(value):
            error = _intrinsic_error(value)
            if error is not None:
                self.report(pointer, f'"{key}" is not a valid intrinsic function call: {error}')
        else:
            self.report(
                pointer,
                f'"{key}" ends in ".$", so its value must be a path ($.field, $$.Context, '
                f"$variable) or an intrinsic function call (States.Format(...)), got "
                f'{_show(value)}; drop the ".$" suffix for a literal value',
            )

    def assign(self, value: object, pointer: str, language: str) -> None:
        if not self.obj(value, pointer, "Assign"):
            return
        assert isinstance(value, dict)
        for key, item in value.items():
            where = _child(pointer, key)
            name = key
            if language == JSONPATH and isinstance(key, str) and key.endswith(".$"):
                name = key[:-2]
            self.variable_name(name, where, language)
            if language == JSONATA:
                self.jsonata_values(item, where)
        if language == JSONPATH:
            self.template_fields(value, pointer)

    def variable_name(self, name: object, pointer: str, language: str) -> None:
        if not isinstance(name, str):
            self.report(pointer, f"variable names must be strings, got {_show(name)}")
            return
        if len(name) > MAX_VARIABLE_NAME_LENGTH:
            self.report(
                pointer,
                f"variable name {_quote(name[:20] + '…')} is {len(name)} characters long; "
                f"at most {MAX_VARIABLE_NAME_LENGTH} are allowed",
            )
        elif not name.isidentifier():
            hint = ""
            if language == JSONATA and name.endswith(".$"):
                hint = ' (in JSONata states the ".$" suffix is not used)'
            self.report(
                pointer,
                f"{_quote(name)} is not a valid variable name{hint}: a name starts with a "
                "letter or underscore and continues with letters, digits or underscores",
            )

    # ------------------------------------------------------------------ machines

    def machine(
        self,
        spec: object,
        pointer: str,
        language: str,
        *,
        kind: str,
    ) -> None:
        """Validate a state machine object. ``kind`` is "top", "branch" or "processor"."""
        what = {
            "top": "a state machine definition",
            "branch": "a Parallel branch",
            "processor": "a Map item processor",
        }[kind]
        if not isinstance(spec, dict):
            self.report(
                pointer,
                f'{what} must be an object with "StartAt" and "States", got {_show(spec)}',
            )
            return
        scope = _Scope(pointer)
        self.scopes.append(scope)
        allowed = set(_TOP_LEVEL_FIELDS) | {"QueryLanguage"}
        if kind == "processor":
            allowed.add("ProcessorConfig")
        own = spec.get("QueryLanguage")
        if own in QUERY_LANGUAGES:
            assert isinstance(own, str)
            language = own
        for key, value in spec.items():
            where = _child(pointer, key)
            if key not in allowed:
                hint = _suggest(key, allowed)
                if key == "ProcessorConfig":
                    hint = "; ProcessorConfig belongs in a Map state's ItemProcessor"
                self.report(
                    where,
                    f'unknown field "{key}" in {what} (allowed: '
                    f"{', '.join(sorted(allowed))}){hint}",
                )
            elif key == "Comment":
                self.string(value, where, key)
            elif key == "StartAt":
                if self.string(value, where, key, nonempty=True):
                    assert isinstance(value, str)
                    scope.start_at = value
            elif key == "Version":
                if value != "1.0":
                    self.report(where, f'"Version" must be "1.0", got {_show(value)}')
            elif key == "TimeoutSeconds":
                self.integer(value, where, key, minimum=1, maximum=MAX_SECONDS)
            elif key == "QueryLanguage":
                self.query_language(value, where, what)
            elif key == "ProcessorConfig":
                self.processor_config(value, where)
            elif key == "States":
                self.states(value, where, language, scope)
        missing = [f for f in ("StartAt", "States") if f not in spec]
        if missing:
            fields = " and ".join(f'"{f}"' for f in missing)
            self.report(pointer, f"{what} needs {fields}")

    def query_language(self, value: object, pointer: str, what: str) -> None:
        if not self.enum(value, pointer, "QueryLanguage", QUERY_LANGUAGES):
            return
        if value == JSONPATH and self.top_language == JSONATA:
            self.report(
                pointer,
                f'{what} sets "QueryLanguage" to "JSONPath", but the state machine\'s '
                'top-level QueryLanguage is "JSONata"; a JSONata state machine cannot '
                'contain JSONPath states (use a "JSONPath" top level and opt single states '
                "into JSONata instead)",
            )

    def processor_config(self, value: object, pointer: str) -> None:
        if not self.obj(value, pointer, "ProcessorConfig"):
            return
        assert isinstance(value, dict)
        for key, item in value.items():
            where = _child(pointer, key)
            if key == "Mode":
                self.enum(item, where, key, ("INLINE", "DISTRIBUTED"))
            elif key == "ExecutionType":
                self.enum(item, where, key, ("STANDARD", "EXPRESS"))
            else:
                self.report(
                    where,
                    f'unknown field "{key}" in ProcessorConfig (allowed: ExecutionType, '
                    f"Mode){_suggest(key, ('Mode', 'ExecutionType'))}",
                )
        if value.get("Mode") == "DISTRIBUTED" and "ExecutionType" not in value:
            self.report(
                pointer,
                'a DISTRIBUTED Map needs "ExecutionType" ("STANDARD" or "EXPRESS") in its '
                "ProcessorConfig",
            )

    def states(self, value: object, pointer: str, language: str, scope: _Scope) -> None:
        if not isinstance(value, dict):
            self.report(
                pointer,
                f'"States" must be an object mapping state names to states, got {_show(value)}',
            )
            scope.complete = False
            return
        if not value:
            self.report(pointer, '"States" must contain at least one state')
            scope.complete = False
            return
        for name, state in value.items():
            where = _child(pointer, name)
            if not isinstance(name, str):
                self.report(where, f"state names must be strings, got {_show(name)}")
                scope.complete = False
                continue
            self.state_name(name, where)
            scope.states[name] = where
            self.state(name, state, where, language, scope)

    def state_name(self, name: str, pointer: str) -> None:
        if not name:
            self.report(pointer, "a state name must not be empty")
        elif len(name) > MAX_STATE_NAME_LENGTH:
            self.report(
                pointer,
                f"state name {_quote(name[:30] + '…')} is {len(name)} characters long; at "
                f"most {MAX_STATE_NAME_LENGTH} are allowed",
            )
        earlier = self.defined.setdefault(name, [])
        if earlier:
            self.report(
                pointer,
                f"state name {_quote(name)} is already used at {earlier[0]}; state names must "
                "be unique in the whole state machine, Parallel branches and Map processors "
                "included",
            )
        earlier.append(pointer)

    # ------------------------------------------------------------------ states

    def state(self, name: str, spec: object, pointer: str, inherited: str, scope: _Scope) -> None:
        if not isinstance(spec, dict):
            self.report(
                pointer,
                f'a state must be an object with a "Type" field, got {_show(spec)}',
            )
            scope.complete = False
            return
        language = inherited
        own = spec.get("QueryLanguage")
        if own in QUERY_LANGUAGES:
            assert isinstance(own, str)
            language = own
        kind = spec.get("Type")
        valid_type = isinstance(kind, str) and kind in STATE_TYPES
        if not valid_type:
            scope.complete = False
            if "Type" not in spec:
                self.report(
                    pointer,
                    f'state {_quote(name)} has no "Type"; expected one of {", ".join(STATE_TYPES)}',
                )
            else:
                self.report(
                    _child(pointer, "Type"),
                    f'"Type" must be one of {", ".join(STATE_TYPES)}, got {_show(kind)}'
                    f"{_suggest(kind, STATE_TYPES)}",
                )
            self.collect_edges(name, spec, pointer, scope)
            return
        assert isinstance(kind, str)
        ctx = _StateContext(name, kind, language, pointer, scope, spec)
        allowed = _ALLOWED_FIELDS[kind]
        for key, value in spec.items():
            where = _child(pointer, key)
            if key not in allowed:
                self.report(where, self.not_allowed_message(key, kind, language))
                continue
            if language == JSONATA and key in _JSONPATH_ONLY:
                self.report(where, self.jsonpath_only_message(key, kind))
                continue
            if language == JSONPATH and key in _JSONATA_ONLY:
                self.report(where, self.jsonata_only_message(key, kind))
                continue
            check = _FIELD_CHECKS.get(key)
            if check is not None:
                check(self, value, where, ctx)
        self.transition_rules(ctx)
        _STATE_CHECKS[kind](self, ctx)
        if (
            kind in _TERMINAL_TYPES
            or ("End" in spec and spec.get("End") is not False)
            or (kind in _WITH_TRANSITION and "Next" not in spec)  # already reported above
        ):
            scope.terminal = True

    def collect_edges(self, name: str, spec: dict[Any, Any], pointer: str, scope: _Scope) -> None:
        """Record the transitions of a state that could not be validated (bad Type)."""
        target = spec.get("Next")
        if isinstance(target, str):
            scope.edges.append((name, target, _child(pointer, "Next"), "Next"))
        default = spec.get("Default")
        if isinstance(default, str):
            scope.edges.append((name, default, _child(pointer, "Default"), "Default"))
        for key in ("Choices", "Catch"):
            entries = spec.get(key)
            if isinstance(entries, list):
                for index, entry in enumerate(entries):
                    if isinstance(entry, dict) and isinstance(entry.get("Next"), str):
                        where = _child(_child(_child(pointer, key), index), "Next")
                        scope.edges.append((name, entry["Next"], where, "Next"))
        if spec.get("End") is True:
            scope.terminal = True

    def not_allowed_message(self, key: object, kind: str, language: str) -> str:
        if key in ("Next", "End") and kind in _TERMINAL_TYPES:
            return (
                f'"{key}" is not allowed in a {kind} state: {kind} states always end the '
                "execution (or their branch)"
            )
        if key == "Next" and kind == "Choice":
            return (
                '"Next" is not allowed in a Choice state: give each Choice rule its own '
                '"Next" and use "Default" for the fallback'
            )
        if key == "End" and kind == "Choice":
            return (
                '"End" is not allowed in a Choice state: a Choice state cannot end the '
                'execution; transition to a Succeed state (via a rule\'s "Next" or "Default")'
            )
        if key in ("Retry", "Catch"):
            return (
                f'"{key}" is not allowed in a {kind} state; only Task, Parallel and Map states '
                "have it"
            )
        if key == "Assign" and kind in _TERMINAL_TYPES:
            return (
                f'"Assign" is not allowed in a {kind} state; assign variables in an earlier state'
            )
        usable = sorted(
            f
            for f in _ALLOWED_FIELDS[kind]
            if not (language == JSONATA and f in _JSONPATH_ONLY)
            and not (language == JSONPATH and f in _JSONATA_ONLY)
        )
        where = [t for t in STATE_TYPES if isinstance(key, str) and key in _ALLOWED_FIELDS[t]]
        belongs = f" (it belongs to {', '.join(where)} states)" if where else ""
        return (
            f'field "{key}" is not allowed in a {kind} state{belongs}; a {kind} state accepts '
            f"{', '.join(usable)}{_suggest(key, usable)}"
        )

    def jsonpath_only_message(self, key: str, kind: str) -> str:
        if key == "Parameters":
            replacement = (
                'use "ItemSelector" instead' if kind == "Map" else 'use "Arguments" instead'
            )
        elif key in _JSONATA_REPLACEMENT:
            replacement = _JSONATA_REPLACEMENT[key]
        elif key.endswith("Path"):
            replacement = f'use "{key[:-4]}" with a JSONata expression {{% … %}} instead'
        else:  # pragma: no cover - every JSONPath-only field is handled above
            replacement = "remove it"
        return (
            f'"{key}" is a JSONPath field and this state uses JSONata (QueryLanguage '
            f'"JSONata"); {replacement}'
        )

    def jsonata_only_message(self, key: str, kind: str) -> str:
        if key == "Arguments":
            replacement = 'use "ItemSelector"' if kind == "Map" else 'use "Parameters"'
        else:
            replacement = _JSONPATH_REPLACEMENT[key].removesuffix(" instead")
        return (
            f'"{key}" is a JSONata field and this state uses JSONPath; {replacement}, or set '
            '"QueryLanguage": "JSONata" on the state'
        )

    def transition_rules(self, ctx: _StateContext) -> None:
        if ctx.kind not in _WITH_TRANSITION:
            return
        spec = ctx.spec
        has_next = "Next" in spec
        if "End" in spec and has_next:
            self.report(
                ctx.pointer,
                'a state cannot have both "Next" and "End"; keep "Next" to continue or '
                '"End": true to finish',
            )
        elif not has_next and spec.get("End") is not True:
            if spec.get("End") is False:
                self.report(
                    _child(ctx.pointer, "End"),
                    '"End" is false, so the state needs "Next"; set "Next" to the following '
                    'state or "End": true',
                )
            elif "End" not in spec:
                self.report(
                    ctx.pointer,
                    f'{ctx.kind} state {_quote(ctx.name)} needs "Next" (the state to run '
                    'next) or "End": true',
                )

    # ------------------------------------------------------------------ common fields

    def check_comment(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.string(value, pointer, "Comment")

    def check_query_language(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.query_language(value, pointer, f"state {_quote(ctx.name)}")

    def check_next(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if self.string(value, pointer, "Next", nonempty=True):
            assert isinstance(value, str)
            ctx.scope.edges.append((ctx.name, value, pointer, "Next"))

    def check_end(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.boolean(value, pointer, "End")

    def check_io_path(self, value: object, pointer: str, ctx: _StateContext) -> None:
        name = pointer.rsplit("/", 1)[-1]
        self.path(value, pointer, name, nullable=True)

    def check_result_path(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.result_path(value, pointer)

    def result_path(self, value: object, pointer: str) -> None:
        if isinstance(value, str) and value.startswith("$$"):
            self.report(
                pointer,
                f'"ResultPath" cannot write to the context object ($$), got {_show(value)}; '
                "use a path on the state's data such as $.result",
            )
            return
        if isinstance(value, str) and re.match(r"\$[^\W\d]", value):
            self.report(
                pointer,
                f'"ResultPath" cannot write to a variable, got {_show(value)}; use '
                '"Assign" to set variables and a path such as $.result here',
            )
            return
        self.path(
            value,
            pointer,
            "ResultPath",
            nullable=True,
            reference=True,
            allow_context=False,
            allow_variables=False,
        )

    def check_parameters(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.payload_template(value, pointer, pointer.rsplit("/", 1)[-1])

    def check_item_selector(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if ctx.language == JSONATA:
            self.object_or_expression(value, pointer, "ItemSelector")
        else:
            self.payload_template(value, pointer, "ItemSelector")

    def check_arguments(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.object_or_expression(value, pointer, "Arguments")

    def check_output(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.jsonata_values(value, pointer)

    def check_assign(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.assign(value, pointer, ctx.language)

    def check_result(self, value: object, pointer: str, ctx: _StateContext) -> None:
        """Pass "Result": any JSON value, used as is."""

    # ------------------------------------------------------------------ Task

    def check_resource(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.string(value, pointer, "Resource", nonempty=True)

    def check_seconds_limit(self, value: object, pointer: str, ctx: _StateContext) -> None:
        name = pointer.rsplit("/", 1)[-1]
        self.integer(value, pointer, name, minimum=1, maximum=MAX_SECONDS, language=ctx.language)

    def check_reference_path(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.path(value, pointer, pointer.rsplit("/", 1)[-1], reference=True)

    def check_credentials(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if not self.obj(value, pointer, "Credentials"):
            return
        assert isinstance(value, dict)
        allowed = ("RoleArn", "RoleArn.$") if ctx.language == JSONPATH else ("RoleArn",)
        for key, item in value.items():
            where = _child(pointer, key)
            if key == "RoleArn":
                if ctx.language == JSONATA and _is_expression(item):
                    self.expression(item, where)
                else:
                    self.string(item, where, "RoleArn", nonempty=True)
            elif key == "RoleArn.$" and ctx.language == JSONPATH:
                self.dynamic_value(item, where, key)
            else:
                self.report(
                    where,
                    f'unknown field "{key}" in Credentials (allowed: {", ".join(allowed)})'
                    f"{_suggest(key, allowed)}",
                )
        present = [k for k in allowed if k in value]
        if not present:
            self.report(
                pointer,
                '"Credentials" needs "RoleArn" (the ARN of the role to assume'
                + (', or "RoleArn.$" with a path' if ctx.language == JSONPATH else "")
                + ")",
            )
        elif len(present) > 1:
            self.report(pointer, '"Credentials" may have "RoleArn" or "RoleArn.$", not both')

    # ------------------------------------------------------------------ Retry / Catch

    def check_retry(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if not isinstance(value, list):
            self.report(pointer, f'"Retry" must be an array of retriers, got {_show(value)}')
            return
        for index, retrier in enumerate(value):
            where = _child(pointer, index)
            if not isinstance(retrier, dict):
                self.report(where, f"a retrier must be an object, got {_show(retrier)}")
                continue
            for key, item in retrier.items():
                at = _child(where, key)
                if key == "ErrorEquals":
                    self.error_equals(item, at, "retrier", index == len(value) - 1)
                elif key == "IntervalSeconds":
                    self.integer(item, at, key, minimum=1, maximum=MAX_SECONDS)
                elif key == "MaxAttempts":
                    self.integer(item, at, key, minimum=0, maximum=MAX_SECONDS)
                elif key == "BackoffRate":
                    self.number(item, at, key, minimum=1.0)
                elif key == "MaxDelaySeconds":
                    self.integer(item, at, key, minimum=1, maximum=MAX_SECONDS)
                elif key == "JitterStrategy":
                    self.enum(item, at, key, ("FULL", "NONE"))
                elif key == "Comment":
                    self.string(item, at, key)
                else:
                    allowed = _RETRIER_FIELDS
                    self.report(
                        at,
                        f'unknown field "{key}" in a retrier (allowed: {", ".join(allowed)})'
                        f"{_suggest(key, allowed)}",
                    )
            if "ErrorEquals" not in retrier:
                self.report(
                    where,
                    'a retrier needs "ErrorEquals" (the error names it retries, e.g. '
                    '["States.ALL"])',
                )

    def check_catch(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if not isinstance(value, list):
            self.report(pointer, f'"Catch" must be an array of catchers, got {_show(value)}')
            return
        allowed = ["ErrorEquals", "Next", "Comment", "Assign"]
        allowed.append("ResultPath" if ctx.language == JSONPATH else "Output")
        for index, catcher in enumerate(value):
            where = _child(pointer, index)
            if not isinstance(catcher, dict):
                self.report(where, f"a catcher must be an object, got {_show(catcher)}")
                continue
            for key, item in catcher.items():
                at = _child(where, key)
                if key == "ErrorEquals":
                    self.error_equals(item, at, "catcher", index == len(value) - 1)
                elif key == "Next":
                    if self.string(item, at, key, nonempty=True):
                        assert isinstance(item, str)
                        ctx.scope.edges.append((ctx.name, item, at, "Next"))
                elif key == "Comment":
                    self.string(item, at, key)
                elif key == "Assign":
                    self.assign(item, at, ctx.language)
                elif key == "ResultPath" and ctx.language == JSONPATH:
                    self.result_path(item, at)
                elif key == "Output" and ctx.language == JSONATA:
                    self.jsonata_values(item, at)
                elif key == "ResultPath":
                    self.report(at, self.jsonpath_only_message(key, ctx.kind))
                elif key == "Output":
                    self.report(at, self.jsonata_only_message(key, ctx.kind))
                else:
                    self.report(
                        at,
                        f'unknown field "{key}" in a catcher (allowed: {", ".join(allowed)})'
                        f"{_suggest(key, allowed)}",
                    )
            missing = [f'"{f}"' for f in ("ErrorEquals", "Next") if f not in catcher]
            if missing:
                self.report(
                    where,
                    f"a catcher needs {' and '.join(missing)} (the error names it catches and "
                    "the state to go to)",
                )

    def error_equals(self, value: object, pointer: str, what: str, last: bool) -> None:
        if not isinstance(value, list) or not value:
            self.report(
                pointer,
                f'"ErrorEquals" must be a non-empty array of error names, got {_show(value)}',
            )
            return
        for index, name in enumerate(value):
            if not isinstance(name, str) or not name:
                self.report(
                    _child(pointer, index),
                    f"an error name must be a non-empty string, got {_show(name)}",
                )
        if "States.ALL" in value:
            if len(value) > 1:
                self.report(
                    pointer,
                    '"States.ALL" must appear alone in "ErrorEquals"; it already matches '
                    "every error",
                )
            if not last:
                self.report(
                    pointer,
                    f'a {what} that matches "States.ALL" must be the last one in the array; '
                    f"{what}s after it can never be used",
                )

    # ------------------------------------------------------------------ Choice

    def check_choices(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if not isinstance(value, list) or not value:
            self.report(
                pointer, f'"Choices" must be a non-empty array of Choice rules, got {_show(value)}'
            )
            return
        for index, rule in enumerate(value):
            self.choice_rule(rule, _child(pointer, index), ctx, top=True)

    def check_default(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if self.string(value, pointer, "Default", nonempty=True):
            assert isinstance(value, str)
            ctx.scope.edges.append((ctx.name, value, pointer, "Default"))

    def choice_rule(self, rule: object, pointer: str, ctx: _StateContext, *, top: bool) -> None:
        if not isinstance(rule, dict):
            self.report(pointer, f"a Choice rule must be an object, got {_show(rule)}")
            return
        if ctx.language == JSONATA:
            self.jsonata_rule(rule, pointer, ctx, top=top)
        else:
            self.jsonpath_rule(rule, pointer, ctx, top=top)

    def rule_common_field(
        self, key: object, value: object, pointer: str, ctx: _StateContext, *, top: bool
    ) -> bool:
        """Next, Comment, Assign, Output on a rule. Return True if ``key`` was one of them."""
        if key == "Comment":
            self.string(value, pointer, key)
        elif key == "Next":
            if not top:
                self.report(
                    pointer,
                    '"Next" is only allowed on the top-level Choice rules, not inside '
                    '"And", "Or" or "Not"',
                )
            elif self.string(value, pointer, "Next", nonempty=True):
                assert isinstance(value, str)
                ctx.scope.edges.append((ctx.name, value, pointer, "Next"))
        elif key == "Assign":
            if not top:
                self.report(pointer, '"Assign" is only allowed on top-level Choice rules')
            else:
                self.assign(value, pointer, ctx.language)
        elif key == "Output":
            if ctx.language == JSONPATH:
                self.report(pointer, self.jsonata_only_message("Output", "Choice"))
            elif not top:
                self.report(pointer, '"Output" is only allowed on top-level Choice rules')
            else:
                self.jsonata_values(value, pointer)
        else:
            return False
        return True

    def jsonata_rule(
        self, rule: dict[Any, Any], pointer: str, ctx: _StateContext, *, top: bool
    ) -> None:
        for key, value in rule.items():
            where = _child(pointer, key)
            if self.rule_common_field(key, value, where, ctx, top=top):
                continue
            if key == "Condition":
                if _is_expression(value):
                    self.expression(value, where)
                elif not isinstance(value, bool):
                    self.report(
                        where,
                        '"Condition" must be a JSONata expression {% … %} (or true/false), '
                        f"got {_show(value)}",
                    )
            elif key in _JSONPATH_RULE_FIELDS:
                self.report(
                    where,
                    f'"{key}" belongs to JSONPath Choice rules and this state uses JSONata; '
                    'write the test as "Condition": "{% … %}"',
                )
            else:
                self.report(
                    where,
                    f'unknown field "{key}" in a Choice rule (JSONata rules have Condition, '
                    f"Next, Assign, Output, Comment){_suggest(key, _JSONATA_RULE_KEYS)}",
                )
        if "Condition" not in rule:
            self.report(pointer, 'a JSONata Choice rule needs "Condition": "{% … %}"')
        if top and "Next" not in rule:
            self.report(pointer, 'a Choice rule needs "Next" (the state to go to when it matches)')

    def jsonpath_rule(
        self, rule: dict[Any, Any], pointer: str, ctx: _StateContext, *, top: bool
    ) -> None:
        operators: list[str] = []
        composites: list[str] = []
        for key, value in rule.items():
            where = _child(pointer, key)
            if self.rule_common_field(key, value, where, ctx, top=top):
                continue
            if key == "Variable":
                self.path(value, where, "Variable")
            elif key in _OPERATORS:
                operators.append(key)
                self.operand(key, value, where)
            elif key in ("And", "Or"):
                composites.append(key)
                if not isinstance(value, list) or not value:
                    self.report(
                        where,
                        f'"{key}" must be a non-empty array of Choice rules, got {_show(value)}',
                    )
                else:
                    for index, nested in enumerate(value):
                        self.choice_rule(nested, _child(where, index), ctx, top=False)
            elif key == "Not":
                composites.append(key)
                if not isinstance(value, dict):
                    self.report(
                        where, f'"Not" must be a single Choice rule object, got {_show(value)}'
                    )
                else:
                    self.choice_rule(value, where, ctx, top=False)
            elif key == "Condition":
                self.report(
                    where,
                    '"Condition" is a JSONata Choice rule field and this state uses JSONPath; '
                    'use "Variable" with a comparison operator, or set "QueryLanguage": '
                    '"JSONata" on the state',
                )
            else:
                self.report(
                    where,
                    f'unknown field "{key}" in a Choice rule{_suggest(key, _JSONPATH_RULE_KEYS)}',
                )
        found = operators + composites
        if not found:
            self.report(
                pointer,
                'a Choice rule needs one comparison ("Variable" with an operator such as '
                '"StringEquals" or "IsPresent") or one of "And", "Or", "Not"',
            )
        elif len(found) > 1:
            self.report(
                pointer,
                "a Choice rule must have exactly one comparison operator or And/Or/Not, found "
                + ", ".join(found)
                + '; combine tests with "And"',
            )
        if operators and "Variable" not in rule:
            self.report(
                pointer,
                f'the comparison "{operators[0]}" needs "Variable" (the path of the value to '
                "test, such as $.status)",
            )
        if composites and not operators and "Variable" in rule:
            self.report(
                _child(pointer, "Variable"),
                f'"Variable" is not used with "{composites[0]}"; put it in the nested rules',
            )
        if top and "Next" not in rule:
            self.report(pointer, 'a Choice rule needs "Next" (the state to go to when it matches)')

    def operand(self, operator: str, value: object, pointer: str) -> None:
        kind = _OPERATORS[operator]
        if kind == "path":
            self.path(value, pointer, operator)
            return
        ok = {
            "string": isinstance(value, str),
            "number": _is_number(value),
            "boolean": isinstance(value, bool),
            "timestamp": is_timestamp(value),
        }[kind]
        if not ok:
            hint = ""
            if kind != "timestamp" and isinstance(value, str) and value.startswith("$"):
                hint = f'; to compare with a value from the input use "{operator}Path"'
            self.report(
                pointer,
                f'"{operator}" needs {_OPERAND_DESCRIPTION[kind]}, got {_show(value)}{hint}',
            )

    # ------------------------------------------------------------------ Wait

    def check_seconds(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.integer(
            value, pointer, "Seconds", minimum=0, maximum=MAX_SECONDS, language=ctx.language
        )

    def check_timestamp(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if ctx.language == JSONATA and _is_expression(value):
            self.expression(value, pointer)
        elif not is_timestamp(value):
            self.report(
                pointer,
                f'"Timestamp" must be an RFC 3339 timestamp such as 2016-03-14T01:59:00Z (or '
                f"with an offset, +01:00, or fractional seconds), got {_show(value)}",
            )

    # ------------------------------------------------------------------ Fail

    def check_error_or_cause(self, value: object, pointer: str, ctx: _StateContext) -> None:
        name = pointer.rsplit("/", 1)[-1]
        if ctx.language == JSONATA and _is_expression(value):
            self.expression(value, pointer)
        else:
            self.string(value, pointer, name)

    def check_error_or_cause_path(self, value: object, pointer: str, ctx: _StateContext) -> None:
        name = pointer.rsplit("/", 1)[-1]
        self.path(value, pointer, name, reference=True, intrinsic=True)

    # ------------------------------------------------------------------ Parallel

    def check_branches(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if not isinstance(value, list) or not value:
            self.report(
                pointer,
                f'"Branches" must be a non-empty array of state machines, got {_show(value)}',
            )
            return
        for index, branch in enumerate(value):
            self.machine(branch, _child(pointer, index), ctx.language, kind="branch")

    # ------------------------------------------------------------------ Map

    def check_processor(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.machine(value, pointer, ctx.language, kind="processor")

    def check_items(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if isinstance(value, list) or _is_expression(value):
            self.jsonata_values(value, pointer)
        else:
            self.report(
                pointer,
                f'"Items" must be an array or a JSONata expression {{% … %}}, got {_show(value)}',
            )

    def check_items_path(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.path(value, pointer, "ItemsPath", reference=True)

    def check_max_concurrency(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.integer(value, pointer, "MaxConcurrency", minimum=0, language=ctx.language)

    def check_tolerated_percentage(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.number(
            value,
            pointer,
            "ToleratedFailurePercentage",
            minimum=0,
            maximum=100,
            language=ctx.language,
        )

    def check_tolerated_count(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.integer(value, pointer, "ToleratedFailureCount", minimum=0, language=ctx.language)

    def check_label(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.string(value, pointer, "Label")

    def check_item_reader(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.resource_block(value, pointer, ctx, "ItemReader", "ReaderConfig")

    def check_result_writer(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.resource_block(value, pointer, ctx, "ResultWriter", "WriterConfig")

    def resource_block(
        self, value: object, pointer: str, ctx: _StateContext, name: str, config: str
    ) -> None:
        """ItemReader / ResultWriter: Resource, Parameters|Arguments and a config object."""
        if not self.obj(value, pointer, name):
            return
        assert isinstance(value, dict)
        arguments = "Parameters" if ctx.language == JSONPATH else "Arguments"
        allowed = ("Resource", arguments, config)
        for key, item in value.items():
            where = _child(pointer, key)
            if key == "Resource":
                self.string(item, where, key, nonempty=True)
            elif key == arguments == "Parameters":
                self.payload_template(item, where, key)
            elif key == arguments == "Arguments":
                self.object_or_expression(item, where, key)
            elif key == config == "ReaderConfig":
                self.reader_config(item, where, ctx)
            elif key == config:
                if self.obj(item, where, key) and ctx.language == JSONATA:
                    self.jsonata_values(item, where)
            elif key in ("Parameters", "Arguments"):
                message = (
                    self.jsonpath_only_message(key, "Task")
                    if key == "Parameters"
                    else self.jsonata_only_message(key, "Task")
                )
                self.report(where, message)
            else:
                self.report(
                    where,
                    f'unknown field "{key}" in {name} (allowed: {", ".join(allowed)})'
                    f"{_suggest(key, allowed)}",
                )
        if name == "ItemReader" and "Resource" not in value:
            self.report(pointer, '"ItemReader" needs "Resource" (where the items are read from)')
        if name == "ResultWriter" and "Resource" not in value and config not in value:
            self.report(pointer, '"ResultWriter" needs "Resource" or "WriterConfig"')

    def reader_config(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if not self.obj(value, pointer, "ReaderConfig"):
            return
        assert isinstance(value, dict)
        for key, item in value.items():
            where = _child(pointer, key)
            if key == "MaxItems":
                self.integer(item, where, key, minimum=1, language=ctx.language)
            elif key == "MaxItemsPath":
                if ctx.language == JSONATA:
                    self.report(where, self.jsonpath_only_message(key, "Map"))
                else:
                    self.path(item, where, key, reference=True)
            elif key == "CSVHeaders":
                if not isinstance(item, list) or not all(isinstance(h, str) for h in item):
                    self.report(
                        where, f'"CSVHeaders" must be an array of strings, got {_show(item)}'
                    )
            elif ctx.language == JSONATA:
                self.jsonata_values(item, where)
        self.exclusive(value, pointer, "MaxItems", "MaxItemsPath")

    def check_item_batcher(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if not self.obj(value, pointer, "ItemBatcher"):
            return
        assert isinstance(value, dict)
        allowed = [
            "BatchInput",
            "MaxItemsPerBatch",
            "MaxItemsPerBatchPath",
            "MaxInputBytesPerBatch",
            "MaxInputBytesPerBatchPath",
        ]
        for key, item in value.items():
            where = _child(pointer, key)
            if key == "BatchInput":
                if ctx.language == JSONATA:
                    self.object_or_expression(item, where, key)
                else:
                    self.payload_template(item, where, key)
            elif key in ("MaxItemsPerBatch", "MaxInputBytesPerBatch"):
                self.integer(item, where, key, minimum=1, language=ctx.language)
            elif key in ("MaxItemsPerBatchPath", "MaxInputBytesPerBatchPath"):
                if ctx.language == JSONATA:
                    self.report(where, self.jsonpath_only_message(key, "Map"))
                else:
                    self.path(item, where, key, reference=True)
            else:
                self.report(
                    where,
                    f'unknown field "{key}" in ItemBatcher (allowed: {", ".join(allowed)})'
                    f"{_suggest(key, allowed)}",
                )
        self.exclusive(value, pointer, "MaxItemsPerBatch", "MaxItemsPerBatchPath")
        self.exclusive(value, pointer, "MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath")
        if not any(key in value for key in allowed[1:]):
            self.report(
                pointer,
                '"ItemBatcher" needs at least one limit: "MaxItemsPerBatch" or '
                '"MaxInputBytesPerBatch" (or their "…Path" forms)',
            )

    # ------------------------------------------------------------------ per-type rules

    def exclusive(self, spec: Mapping[Any, Any], pointer: str, *names: str) -> list[str]:
        present = [n for n in names if n in spec]
        if len(present) > 1:
            listed = " and ".join(f'"{n}"' for n in present)
            self.report(pointer, f"{listed} cannot be used together; keep only one")
        return present

    def require(self, ctx: _StateContext, name: str, why: str) -> None:
        if name not in ctx.spec:
            self.report(ctx.pointer, f'{ctx.kind} state {_quote(ctx.name)} needs "{name}" ({why})')

    def rules_pass(self, ctx: _StateContext) -> None:
        """Pass has no required fields."""

    def rules_succeed(self, ctx: _StateContext) -> None:
        """Succeed has no required fields."""

    def rules_task(self, ctx: _StateContext) -> None:
        spec = ctx.spec
        self.require(ctx, "Resource", "what the task runs, e.g. a function or activity ARN")
        self.exclusive(spec, ctx.pointer, "TimeoutSeconds", "TimeoutSecondsPath")
        self.exclusive(spec, ctx.pointer, "HeartbeatSeconds", "HeartbeatSecondsPath")
        timeout, heartbeat = spec.get("TimeoutSeconds"), spec.get("HeartbeatSeconds")
        if (
            _is_int(timeout)
            and _is_int(heartbeat)
            and isinstance(timeout, int)
            and isinstance(heartbeat, int)
            and 0 < heartbeat <= MAX_SECONDS
            and 0 < timeout <= MAX_SECONDS
            and heartbeat >= timeout
        ):
            self.report(
                _child(ctx.pointer, "HeartbeatSeconds"),
                f'"HeartbeatSeconds" ({heartbeat}) must be smaller than "TimeoutSeconds" '
                f"({timeout})",
            )

    def rules_choice(self, ctx: _StateContext) -> None:
        self.require(ctx, "Choices", "a non-empty array of Choice rules")

    def rules_wait(self, ctx: _StateContext) -> None:
        names: tuple[str, ...] = ("Seconds", "Timestamp", "SecondsPath", "TimestampPath")
        if ctx.language == JSONATA:
            names = ("Seconds", "Timestamp")
        present = [n for n in names if n in ctx.spec]
        listed = ", ".join(f'"{n}"' for n in names)
        if not present:
            self.report(ctx.pointer, f"Wait state {_quote(ctx.name)} needs exactly one of {listed}")
        elif len(present) > 1:
            found = " and ".join(f'"{n}"' for n in present)
            self.report(
                ctx.pointer,
                f"Wait state {_quote(ctx.name)} has {found}; use exactly one of {listed}",
            )

    def rules_fail(self, ctx: _StateContext) -> None:
        self.exclusive(ctx.spec, ctx.pointer, "Error", "ErrorPath")
        self.exclusive(ctx.spec, ctx.pointer, "Cause", "CausePath")

    def rules_message(self, ctx: _StateContext) -> None:
        spec = ctx.spec
        if ctx.language == JSONATA:
            self.report(
                _child(ctx.pointer, "Type"),
                f'Message state {_quote(ctx.name)} supports JSONPath only; set "QueryLanguage": '
                '"JSONPath" on the state',
            )
        self.require(ctx, "CorrelationKey", "the kind of message it waits for")
        self.exclusive(spec, ctx.pointer, "CorrelationValuePath", "CorrelationValue")
        self.exclusive(spec, ctx.pointer, "TimeoutSeconds", "TimeoutSecondsPath")
        if "TimeoutPath" in spec and not ("TimeoutSeconds" in spec or "TimeoutSecondsPath" in spec):
            self.report(
                _child(ctx.pointer, "TimeoutPath"),
                '"TimeoutPath" needs "TimeoutSeconds" (or "TimeoutSecondsPath"): without a '
                "timeout it is never taken",
            )

    def check_correlation_key(self, value: object, pointer: str, ctx: _StateContext) -> None:
        self.string(value, pointer, "CorrelationKey", nonempty=True)

    def check_correlation_value(self, value: object, pointer: str, ctx: _StateContext) -> None:
        """Message "CorrelationValue": any JSON value, matched as is."""

    def check_timeout_path(self, value: object, pointer: str, ctx: _StateContext) -> None:
        if self.string(value, pointer, "TimeoutPath", nonempty=True):
            assert isinstance(value, str)
            ctx.scope.edges.append((ctx.name, value, pointer, "TimeoutPath"))

    def rules_parallel(self, ctx: _StateContext) -> None:
        self.require(ctx, "Branches", "a non-empty array of state machines to run in parallel")

    def rules_map(self, ctx: _StateContext) -> None:
        spec = ctx.spec
        present = self.exclusive(spec, ctx.pointer, "ItemProcessor", "Iterator")
        if not present:
            self.report(
                ctx.pointer,
                f'Map state {_quote(ctx.name)} needs "ItemProcessor" (the state machine run '
                "for each item)",
            )
        self.exclusive(spec, ctx.pointer, "ItemSelector", "Parameters")
        self.exclusive(spec, ctx.pointer, "MaxConcurrency", "MaxConcurrencyPath")
        self.exclusive(
            spec, ctx.pointer, "ToleratedFailurePercentage", "ToleratedFailurePercentagePath"
        )
        self.exclusive(spec, ctx.pointer, "ToleratedFailureCount", "ToleratedFailureCountPath")

    # ------------------------------------------------------------------ transitions

    def transitions(self) -> None:
        for scope in self.scopes:
            self.scope_transitions(scope)

    def scope_transitions(self, scope: _Scope) -> None:
        if not scope.states:
            return
        here = list(scope.states)
        if scope.start_at is not None and scope.start_at not in scope.states:
            self.report(
                _child(scope.pointer, "StartAt"),
                self.missing_target("StartAt", scope.start_at, here),
            )
        graph: dict[str, list[str]] = {}
        for source, target, pointer, key in scope.edges:
            if target in scope.states:
                graph.setdefault(source, []).append(target)
            else:
                self.report(pointer, self.missing_target(key, target, here))
        if scope.start_at in scope.states:
            assert scope.start_at is not None
            seen = {scope.start_at}
            queue = [scope.start_at]
            while queue:
                for target in graph.get(queue.pop(), ()):
                    if target not in seen:
                        seen.add(target)
                        queue.append(target)
            for name, pointer in scope.states.items():
                if name not in seen:
                    self.report(
                        pointer,
                        f"state {_quote(name)} is not reachable from StartAt "
                        f"({_quote(scope.start_at)}): no Next, Default, Choice rule or Catch "
                        "leads to it; connect it or remove it",
                    )
        if scope.complete and not scope.terminal:
            self.report(
                _child(scope.pointer, "States"),
                "no state ends this state machine: at least one state must be a Succeed or "
                'Fail state or have "End": true',
            )

    def missing_target(self, key: str, target: str, here: list[str]) -> str:
        elsewhere = self.defined.get(target)
        if elsewhere:
            return (
                f'"{key}" names state {_quote(target)}, which is defined in another state '
                f"machine ({elsewhere[0]}); transitions cannot leave or enter a Parallel "
                f"branch or a Map processor (states here: {_names(here)})"
            )
        return (
            f'"{key}" names state {_quote(target)}, which does not exist (states here: '
            f"{_names(here)}){_suggest(target, here)}"
        )


@dataclass
class _StateContext:
    name: str
    kind: str
    language: str
    pointer: str
    scope: _Scope
    spec: dict[Any, Any]


_RETRIER_FIELDS: Final = (
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "Comment",
)
_JSONATA_RULE_KEYS: Final = ("Condition", "Next", "Assign", "Output", "Comment")
_JSONPATH_RULE_KEYS: Final = ("Variable", "Next", "Assign", "Comment", *_OPERATORS, *_COMPOSITES)

_Check = Callable[[_Validator, object, str, _StateContext], None]

_FIELD_CHECKS: Final[Mapping[str, _Check]] = {
    "Comment": _Validator.check_comment,
    "QueryLanguage": _Validator.check_query_language,
    "Next": _Validator.check_next,
    "End": _Validator.check_end,
    "InputPath": _Validator.check_io_path,
    "OutputPath": _Validator.check_io_path,
    "ResultPath": _Validator.check_result_path,
    "Parameters": _Validator.check_parameters,
    "ResultSelector": _Validator.check_parameters,
    "ItemSelector": _Validator.check_item_selector,
    "Arguments": _Validator.check_arguments,
    "Output": _Validator.check_output,
    "Assign": _Validator.check_assign,
    "Result": _Validator.check_result,
    "Resource": _Validator.check_resource,
    "TimeoutSeconds": _Validator.check_seconds_limit,
    "HeartbeatSeconds": _Validator.check_seconds_limit,
    "TimeoutSecondsPath": _Validator.check_reference_path,
    "HeartbeatSecondsPath": _Validator.check_reference_path,
    "Credentials": _Validator.check_credentials,
    "Retry": _Validator.check_retry,
    "Catch": _Validator.check_catch,
    "Choices": _Validator.check_choices,
    "Default": _Validator.check_default,
    "Seconds": _Validator.check_seconds,
    "Timestamp": _Validator.check_timestamp,
    "SecondsPath": _Validator.check_reference_path,
    "TimestampPath": _Validator.check_reference_path,
    "Error": _Validator.check_error_or_cause,
    "Cause": _Validator.check_error_or_cause,
    "ErrorPath": _Validator.check_error_or_cause_path,
    "CausePath": _Validator.check_error_or_cause_path,
    "Branches": _Validator.check_branches,
    "ItemProcessor": _Validator.check_processor,
    "Iterator": _Validator.check_processor,
    "Items": _Validator.check_items,
    "ItemsPath": _Validator.check_items_path,
    "MaxConcurrency": _Validator.check_max_concurrency,
    "MaxConcurrencyPath": _Validator.check_reference_path,
    "ToleratedFailurePercentage": _Validator.check_tolerated_percentage,
    "ToleratedFailurePercentagePath": _Validator.check_reference_path,
    "ToleratedFailureCount": _Validator.check_tolerated_count,
    "ToleratedFailureCountPath": _Validator.check_reference_path,
    "Label": _Validator.check_label,
    "ItemReader": _Validator.check_item_reader,
    "ResultWriter": _Validator.check_result_writer,
    "ItemBatcher": _Validator.check_item_batcher,
    "CorrelationKey": _Validator.check_correlation_key,
    "CorrelationValuePath": _Validator.check_reference_path,
    "CorrelationValue": _Validator.check_correlation_value,
    "TimeoutPath": _Validator.check_timeout_path,
}

_STATE_CHECKS: Final[Mapping[str, Callable[[_Validator, _StateContext], None]]] = {
    "Pass": _Validator.rules_pass,
    "Task": _Validator.rules_task,
    "Choice": _Validator.rules_choice,
    "Wait": _Validator.rules_wait,
    "Succeed": _Validator.rules_succeed,
    "Fail": _Validator.rules_fail,
    "Parallel": _Validator.rules_parallel,
    "Map": _Validator.rules_map,
    "Message": _Validator.rules_message,
}


# --------------------------------------------------------------------------- ordering


def _document_order(document: object) -> dict[str, int]:
    """Number every pointer of the document in pre-order (iteratively, cycle-safe)."""
    order: dict[str, int] = {}
    stack: list[tuple[str, object]] = [("", document)]
    seen: set[int] = set()
    while stack:
        pointer, value = stack.pop()
        if pointer in order:
            continue
        order[pointer] = len(order)
        if isinstance(value, dict | list):
            if id(value) in seen:
                continue
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            children = [(_child(pointer, key), item) for key, item in items]
            stack.extend(reversed(children))
    return order


def _sort(problems: list[Problem], document: object) -> list[Problem]:
    order = _document_order(document)

    def position(problem: Problem) -> int:
        pointer = problem.pointer
        while pointer not in order and pointer:
            pointer = pointer.rsplit("/", 1)[0]
        return order.get(pointer, len(order))

    return sorted(problems, key=position)


# --------------------------------------------------------------------------- entry point


def validate(document: Any) -> list[Problem]:
    """Return every problem in an ASL document (parsed JSON/YAML value); never raise.

    An empty list means AWS Step Functions would accept the definition (as far as static
    checks go). Problems are in document order; each has a JSON pointer and a message.
    """
    if not isinstance(document, dict):
        return [
            Problem(
                "",
                'a state machine definition must be a JSON object with "StartAt" and '
                f'"States", got {_show(document)}',
            )
        ]
    validator = _Validator()
    top = document.get("QueryLanguage")
    if top in QUERY_LANGUAGES:
        assert isinstance(top, str)
        validator.top_language = top
    try:
        validator.machine(document, "", validator.top_language, kind="top")
        validator.transitions()
    except RecursionError:
        validator.report("", "the definition is nested too deeply to validate")
    return _sort(validator.problems, document)
