"""Intrinsic functions (``States.*``) of JSONPath states, compiled once per definition.

::

    fn = compile_intrinsic("States.Format('Hello, {}!', $.name)")   # parse once
    fn.evaluate(data, context, variables)                           # run many times

Grammar (AWS "Intrinsic functions" page)::

    call     := "States." Name "(" [ argument { "," argument } ] ")"
    argument := 'string' | number | true | false | null | path | call

* A string literal is written in single quotes. A backslash escapes the four reserved
  characters ``\\'``, ``\\{``, ``\\}`` and ``\\\\``; any other character after a backslash
  is an error. In ``States.Format`` an unescaped ``{}`` is a placeholder.
* A path starts with ``$`` (``$.a``, ``$``, ``$$.Execution.Id``, ``$var.field``). It ends
  at the next top-level ``,`` or ``)``; the text is compiled with
  :func:`statefleet.statemachine.paths.compile_path`.

Everything is parsed and checked in :func:`compile_intrinsic` (unknown function names,
argument counts, malformed literals, the placeholder count of a literal format string);
evaluation only runs closures. A failure while evaluating raises
:class:`~statefleet.errors.RuntimeFailure` (``States.Runtime``) whose cause is worded as AWS
words it::

    The function 'States.Format('{}', $.nope)' had the following error:
    The JsonPath argument for the field '$.nope' could not be found in the input '{"other":1}'

:data:`JSONATA_FUNCTIONS` holds the functions Step Functions adds to JSONata
(``$partition``, ``$range``, ``$hash``, ``$random``, ``$uuid``, ``$parse``), keyed by name
without the ``$``, built on the same implementations.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

from statefleet.errors import ErrorName, RuntimeFailure
from statefleet.statemachine.paths import (
    CONTEXT,
    Path,
    PathNotFound,
    PathSyntaxError,
    compile_path,
)

__all__ = [
    "FUNCTION_NAMES",
    "JSONATA_FUNCTIONS",
    "Intrinsic",
    "IntrinsicSyntaxError",
    "JsonataFunctionError",
    "compile_intrinsic",
    "is_intrinsic",
]

# (data, context, variables) -> value
Evaluator = Callable[[Any, Any, Any], Any]

#: Largest array ``States.ArrayRange`` may build (AWS: "can't contain more than 1000 items").
MAX_RANGE_ITEMS: Final = 1000
#: Largest input of Base64Encode, Base64Decode and Hash, in characters.
MAX_ENCODE_CHARS: Final = 10_000
#: Deepest nesting the parser accepts (AWS documents up to 10 nested calls in a field).
MAX_DEPTH: Final = 64

# The error name of an intrinsic that fails while running. AWS reports a path argument that
# matches nothing as States.Runtime; other argument faults are reported the same way here.
_FAILURE_ERROR: Final = ErrorName.RUNTIME


# --------------------------------------------------------------------------- errors


class IntrinsicSyntaxError(ValueError):
    """The text is not a valid intrinsic function call. ``position`` is 1-based, or None."""

    def __init__(self, text: str, problem: str, position: int | None = None) -> None:
        self.text = text
        self.problem = problem
        self.position = position
        where = f" (at character {position})" if position is not None else ""
        super().__init__(f"invalid intrinsic function {text!r}: {problem}{where}")


class JsonataFunctionError(ValueError):
    """Raised by the :data:`JSONATA_FUNCTIONS` callables; ``str()`` is the whole message."""


class _Invalid(Exception):
    """A function body rejects an argument value; the caller names the function."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Failure(Exception):
    """A finished failure detail travelling up to :meth:`Intrinsic.evaluate`."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


# --------------------------------------------------------------------------- JSON helpers


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _dumps(value: Any) -> str:
    """Compact JSON, as AWS prints it (``{"a":1,"b":[]}``)."""
    return _ENCODER.encode(value)


def _quoted(text: str, limit: int = 120) -> str:
    """A string as JSON text, shortened for an error message."""
    shown = _dumps(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + '..."'


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    t = type(value)
    if t is bool:
        return "boolean"
    if t is int:
        return "integer"
    if t is float:
        return "number"
    if t is str:
        return "string"
    if t is list:
        return "array"
    return "object"


def _show(value: Any, limit: int = 120) -> str:
    """A short description of a value for an error message: ``string "abc"``."""
    try:
        text = _dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{_type_name(value)} {text}"


def _key(value: Any) -> Any:
    """A hashable key equal for equal JSON values (object key order is ignored; 1 == 1.0)."""
    t = type(value)
    if t is str or t is int or t is float or value is None:
        return value
    if t is bool:
        return ("b", value)
    if t is list:
        return ("l", *map(_key, value))
    if t is dict:
        return ("o", frozenset((k, _key(v)) for k, v in value.items()))
    return ("?", repr(value))


def _integer(value: Any, what: str) -> int:
    """An integer, or a float with an integral value; anything else is rejected."""
    t = type(value)
    if t is int:
        return value
    if t is float and math.isfinite(value) and value.is_integer():
        return int(value)
    raise _Invalid(f"{what} must be an integer, but was {_show(value)}")


def _java_round(value: Any, what: str) -> int:
    """Round as Java's ``Math.round`` does (half up: 1.5 -> 2, -0.5 -> 0, -1.5 -> -1)."""
    t = type(value)
    if t is int:
        return value
    if t is not float or not math.isfinite(value):
        raise _Invalid(f"{what} must be a number, but was {_show(value)}")
    floor = math.floor(value)
    return floor + 1 if value - floor >= 0.5 else floor


def _string(value: Any, what: str) -> str:
    if type(value) is not str:
        raise _Invalid(f"{what} must be a string, but was {_show(value)}")
    return value


def _array_arg(value: Any, what: str) -> list[Any]:
    if type(value) is not list:
        raise _Invalid(f"{what} must be an array, but was {_show(value)}")
    return value


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# --------------------------------------------------------------------------- function bodies
# Each takes evaluated arguments and returns a JSON value, or raises _Invalid.


def _format_value(value: Any) -> str:
    """A value as States.Format prints it: strings raw, objects as ``{k=v, k2=v2}``."""
    t = type(value)
    if t is str:
        return value
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        return repr(value)
    if t is list:
        return "[" + ", ".join(map(_format_value, value)) + "]"
    if t is dict:
        return "{" + ", ".join(f"{k}={_format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _fill(pieces: list[str], values: tuple[Any, ...]) -> str:
    out = [pieces[0]]
    for index, value in enumerate(values, 1):
        out.append(value if type(value) is str else _format_value(value))
        out.append(pieces[index])
    return "".join(out)


def _placeholder_mismatch(placeholders: int, values: int) -> str:
    return (
        f"the format string has {placeholders} placeholder{'s' if placeholders != 1 else ''} "
        f"'{{}}' but {values} value{'s' if values != 1 else ''} "
        f"{'were' if values != 1 else 'was'} given"
    )


def _format(template: Any, *values: Any) -> str:
    """States.Format with a format string known only at run time."""
    text = _string(template, "the format string (first argument)")
    pieces = text.split("{}")
    if len(pieces) - 1 != len(values):
        raise _Invalid(_placeholder_mismatch(len(pieces) - 1, len(values)))
    return _fill(pieces, values)


def _string_to_json(text: Any) -> Any:
    text = _string(text, "the argument")
    if not text.strip():
        return None  # AWS: "" and " " give null
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise _Invalid(f"the string {_quoted(text)} is not valid JSON ({reason})") from None


def _json_to_string(value: Any) -> str:
    try:
        return _dumps(value)
    except (TypeError, ValueError) as exc:  # pragma: no cover - JSON values always serialise
        raise _Invalid(f"the value cannot be written as JSON ({exc})") from None


def _array(*values: Any) -> list[Any]:
    return list(values)


def _array_partition(array: Any, size: Any) -> list[list[Any]]:
    items = _array_arg(array, "the first argument")
    chunk = _integer(size, "the chunk size (second argument)")
    if chunk <= 0:
        raise _Invalid(f"the chunk size (second argument) must be greater than 0, but was {chunk}")
    return [items[i : i + chunk] for i in range(0, len(items), chunk)]


def _array_contains(array: Any, value: Any) -> bool:
    items = _array_arg(array, "the first argument")
    target = _key(value)
    return any(_key(item) == target for item in items)


def _range_length(start: int, end: int, step: int) -> int:
    if step > 0:
        return 0 if end < start else (end - start) // step + 1
    return 0 if end > start else (start - end) // -step + 1


def _array_range(start: Any, end: Any, step: Any) -> list[int]:
    first = _integer(start, "the start (first argument)")
    last = _integer(end, "the end (second argument)")
    increment = _integer(step, "the step (third argument)")
    if increment == 0:
        raise _Invalid("the step (third argument) must not be 0")
    count = _range_length(first, last, increment)
    if count > MAX_RANGE_ITEMS:
        raise _Invalid(
            f"the range would have {count} items, but at most {MAX_RANGE_ITEMS} are allowed"
        )
    return list(range(first, first + count * increment, increment))


def _array_get_item(array: Any, index: Any) -> Any:
    items = _array_arg(array, "the first argument")
    position = _integer(index, "the index (second argument)")
    if position < 0 or position >= len(items):
        raise _Invalid(f"the index {position} is out of bounds for an array of length {len(items)}")
    return items[position]


def _array_length(array: Any) -> int:
    return len(_array_arg(array, "the argument"))


def _array_unique(array: Any) -> list[Any]:
    items = _array_arg(array, "the argument")
    seen: set[Any] = set()
    out = []
    for item in items:
        key = _key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _limited(value: Any, what: str) -> str:
    text = _string(value, what)
    if len(text) > MAX_ENCODE_CHARS:
        raise _Invalid(
            f"{what} has {len(text)} characters, but at most {MAX_ENCODE_CHARS} are allowed"
        )
    return text


def _base64_encode(value: Any) -> str:
    text = _limited(value, "the input string")
    return base64.b64encode(text.encode("utf-8", "replace")).decode("ascii")


_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _base64_decode(value: Any) -> str:
    text = _limited(value, "the input string")
    # Java's basic decoder: the standard alphabet only, padding optional but not partial.
    if (
        _BASE64.fullmatch(text) is None
        or len(text) % 4 == 1
        or ("=" in text and len(text) % 4 != 0)
    ):
        raise _Invalid(f"the input {_quoted(text)} is not valid Base64")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid(f"the input {_quoted(text)} is not valid Base64") from None
    return raw.decode("utf-8", errors="replace")


_HASH_ALGORITHMS: Final[dict[str, str]] = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


def _hash(data: Any, algorithm: Any) -> str:
    text = _limited(data, "the input data (first argument)")
    name = _HASH_ALGORITHMS.get(algorithm) if type(algorithm) is str else None
    if name is None:
        raise _Invalid(
            "the algorithm (second argument) must be one of "
            f"{', '.join(_HASH_ALGORITHMS)}, but was {_show(algorithm)}"
        )
    return hashlib.new(name, text.encode("utf-8", "replace")).hexdigest()


def _json_merge(first: Any, second: Any, deep: Any) -> dict[str, Any]:
    if type(first) is not dict:
        raise _Invalid(f"the first argument must be an object, but was {_show(first)}")
    if type(second) is not dict:
        raise _Invalid(f"the second argument must be an object, but was {_show(second)}")
    if type(deep) is not bool:
        raise _Invalid(f"the third argument (deep merge) must be a boolean, but was {_show(deep)}")
    if deep:
        raise _Invalid("deep merging is not supported: the third argument must be false")
    merged = dict(first)
    merged.update(second)
    return merged


_NO_SEED: Final[Any] = object()


def _math_random(start: Any, end: Any, seed: Any = _NO_SEED) -> int:
    low = _java_round(start, "the start (first argument)")
    high = _java_round(end, "the end (second argument)")
    if low >= high:
        raise _Invalid(f"the start ({low}) must be less than the end ({high})")
    if seed is _NO_SEED:
        return random.randrange(low, high)
    return random.Random(_java_round(seed, "the seed (third argument)")).randrange(low, high)


def _math_add(first: Any, second: Any) -> int:
    return _java_round(first, "the first argument") + _java_round(second, "the second argument")


def _splitter(delimiters: str) -> Callable[[str], list[str]]:
    """Split on any of the delimiter characters and drop empty parts (Java StringTokenizer)."""
    if not delimiters:
        return lambda text: [text] if text else []
    if len(delimiters) == 1:
        return lambda text: [part for part in text.split(delimiters) if part]
    pattern = re.compile("[" + "".join(re.escape(c) for c in set(delimiters)) + "]")
    return lambda text: [part for part in pattern.split(text) if part]


def _string_split(text: Any, delimiters: Any) -> list[str]:
    value = _string(text, "the first argument")
    return _splitter(_string(delimiters, "the delimiters (second argument)"))(value)


def _uuid() -> str:
    return str(uuid.uuid4())


# name -> (body, least argument count, most argument count or None)
_FUNCTIONS: Final[dict[str, tuple[Callable[..., Any], int, int | None]]] = {
    "States.Format": (_format, 1, None),
    "States.StringToJson": (_string_to_json, 1, 1),
    "States.JsonToString": (_json_to_string, 1, 1),
    "States.Array": (_array, 0, None),
    "States.ArrayPartition": (_array_partition, 2, 2),
    "States.ArrayContains": (_array_contains, 2, 2),
    "States.ArrayRange": (_array_range, 3, 3),
    "States.ArrayGetItem": (_array_get_item, 2, 2),
    "States.ArrayLength": (_array_length, 1, 1),
    "States.ArrayUnique": (_array_unique, 1, 1),
    "States.Base64Encode": (_base64_encode, 1, 1),
    "States.Base64Decode": (_base64_decode, 1, 1),
    "States.Hash": (_hash, 2, 2),
    "States.JsonMerge": (_json_merge, 3, 3),
    "States.MathRandom": (_math_random, 2, 3),
    "States.MathAdd": (_math_add, 2, 2),
    "States.StringSplit": (_string_split, 2, 2),
    "States.UUID": (_uuid, 0, 0),
}

#: Every intrinsic function name, ``States.`` included.
FUNCTION_NAMES: Final = frozenset(_FUNCTIONS)


# --------------------------------------------------------------------------- evaluators


def _constant(value: Any) -> Evaluator:
    def evaluate(data: Any, context: Any, variables: Any) -> Any:
        return value

    return evaluate


def _path_evaluator(path: Path) -> Evaluator:
    find = path.find
    # A $$ argument is reported with one $ dropped, against the state input (as AWS does).
    shown = path.text[1:] if path.root == CONTEXT else path.text

    def evaluate(data: Any, context: Any, variables: Any) -> Any:
        try:
            return find(data, context, variables)
        except PathNotFound:
            try:
                where = _dumps(data)
            except (TypeError, ValueError):
                where = str(data)
            raise _Failure(
                _FAILURE_ERROR,
                f"The JsonPath argument for the field '{shown}' could not be found "
                f"in the input '{where}'",
            ) from None

    return evaluate


def _call(name: str, body: Callable[..., Any], arguments: list[Evaluator]) -> Evaluator:
    """Bind a function body to its argument evaluators (specialised for 0 to 3 arguments)."""

    def invalid(exc: _Invalid) -> _Failure:
        return _Failure(_FAILURE_ERROR, f"{name}: {exc.detail}")

    count = len(arguments)
    if count == 0:

        def call0(data: Any, context: Any, variables: Any) -> Any:
            try:
                return body()
            except _Invalid as exc:
                raise invalid(exc) from None

        return call0
    if count == 1:
        (a0,) = arguments

        def call1(data: Any, context: Any, variables: Any) -> Any:
            v0 = a0(data, context, variables)
            try:
                return body(v0)
            except _Invalid as exc:
                raise invalid(exc) from None

        return call1
    if count == 2:
        a0, a1 = arguments

        def call2(data: Any, context: Any, variables: Any) -> Any:
            v0 = a0(data, context, variables)
            v1 = a1(data, context, variables)
            try:
                return body(v0, v1)
            except _Invalid as exc:
                raise invalid(exc) from None

        return call2
    if count == 3:
        a0, a1, a2 = arguments

        def call3(data: Any, context: Any, variables: Any) -> Any:
            v0 = a0(data, context, variables)
            v1 = a1(data, context, variables)
            v2 = a2(data, context, variables)
            try:
                return body(v0, v1, v2)
            except _Invalid as exc:
                raise invalid(exc) from None

        return call3
    all_arguments = tuple(arguments)

    def call_n(data: Any, context: Any, variables: Any) -> Any:
        values = [a(data, context, variables) for a in all_arguments]
        try:
            return body(*values)
        except _Invalid as exc:
            raise invalid(exc) from None

    return call_n


# --------------------------------------------------------------------------- parser

_LITERAL, _PATH, _CALL = "literal", "path", "call"
_NAME: Final = re.compile(r"States\.([A-Za-z0-9_]*)")
_NUMBER: Final = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS: Final[dict[str, Any]] = {"true": True, "false": False, "null": None}
_SPACE: Final = frozenset(" \t\r\n")
_ESCAPABLE: Final = frozenset("'{}\\")


class _Argument:
    """One parsed argument: its kind, its evaluator and, for literals, its value."""

    __slots__ = ("evaluate", "kind", "pieces", "text", "uses_context", "value")

    def __init__(
        self,
        kind: str,
        evaluate: Evaluator,
        text: str,
        value: Any = None,
        pieces: list[str] | None = None,
        uses_context: bool = False,
    ) -> None:
        self.kind = kind
        self.evaluate = evaluate
        self.text = text
        self.value = value
        self.pieces = pieces  # a string literal split on its unescaped "{}"
        self.uses_context = uses_context


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.end = len(text)

    def fail(self, problem: str, pos: int | None = None) -> NoReturn:
        at = self.pos if pos is None else pos
        raise IntrinsicSyntaxError(self.text, problem, min(at, self.end) + 1)

    def skip_space(self) -> None:
        text, pos, end = self.text, self.pos, self.end
        while pos < end and text[pos] in _SPACE:
            pos += 1
        self.pos = pos

    def parse(self) -> tuple[str, Evaluator, bool]:
        if not self.text.startswith("States."):
            self.fail("an intrinsic function call must start with 'States.'", 0)
        call = self.call(1)
        self.skip_space()
        if self.pos != self.end:
            self.fail("unexpected text after the closing parenthesis of the call")
        name = _NAME.match(self.text)
        assert name is not None
        return name.group(0), call.evaluate, call.uses_context

    # ---- calls

    def call(self, depth: int) -> _Argument:
        if depth > MAX_DEPTH:
            self.fail(f"intrinsic function calls are nested more than {MAX_DEPTH} deep")
        start = self.pos
        match = _NAME.match(self.text, start)
        assert match is not None
        name = match.group(0)
        if name not in _FUNCTIONS:
            self.fail(self.unknown(name), start)
        body, least, most = _FUNCTIONS[name]
        self.pos = match.end()
        self.skip_space()
        if self.pos >= self.end or self.text[self.pos] != "(":
            self.fail(f"expected '(' after the function name {name}")
        self.pos += 1
        arguments = self.arguments(depth, name, start)
        text = self.text[start : self.pos]
        count = len(arguments)
        if count < least or (most is not None and count > most):
            self.fail(f"{name} {self.expected(least, most)}, but {count} {self.were(count)}", start)
        uses_context = any(a.uses_context for a in arguments)
        if name == "States.Format":
            return _Argument(_CALL, self.format(arguments, start), text, uses_context=uses_context)
        if name == "States.StringSplit" and arguments[1].kind == _LITERAL:
            evaluate = self.string_split(arguments)
        else:
            evaluate = _call(name, body, [a.evaluate for a in arguments])
        return _Argument(_CALL, evaluate, text, uses_context=uses_context)

    @staticmethod
    def expected(least: int, most: int | None) -> str:
        if most is None:
            return f"takes at least {least} argument{'s' if least != 1 else ''}"
        if least == most == 0:
            return "takes no arguments"
        if least == most:
            return f"takes exactly {least} argument{'s' if least != 1 else ''}"
        return f"takes {least} or {most} arguments"

    @staticmethod
    def were(count: int) -> str:
        return "was given" if count == 1 else "were given"

    @staticmethod
    def unknown(name: str) -> str:
        if name == "States.":
            return "a function name must follow 'States.'"
        message = f"unknown intrinsic function {name}"
        folded = {n.lower(): n for n in _FUNCTIONS}
        if name.lower() in folded:
            return f"{message} (names are case-sensitive: did you mean {folded[name.lower()]}?)"
        short = [n[len("States.") :] for n in _FUNCTIONS]
        close = difflib.get_close_matches(name[len("States.") :], short, n=1)
        if close:
            return f"{message}; did you mean States.{close[0]}?"
        return f"{message}; the functions are {', '.join(sorted(_FUNCTIONS))}"

    def arguments(self, depth: int, name: str, start: int) -> list[_Argument]:
        arguments: list[_Argument] = []
        self.skip_space()
        if self.pos < self.end and self.text[self.pos] == ")":
            self.pos += 1
            return arguments
        while True:
            self.skip_space()
            if self.pos >= self.end:
                self.fail(f"the argument list of {name} is not closed: missing ')'", start)
            if self.text[self.pos] in ",)":
                self.fail(f"missing argument in the call to {name}")
            arguments.append(self.argument(depth))
            self.skip_space()
            if self.pos >= self.end:
                self.fail(f"the argument list of {name} is not closed: missing ')'", start)
            char = self.text[self.pos]
            self.pos += 1
            if char == ")":
                return arguments
            if char != ",":
                self.fail(
                    f"expected ',' or ')' in the call to {name}, found {char!r}", self.pos - 1
                )

    # ---- arguments

    def argument(self, depth: int) -> _Argument:
        text, pos = self.text, self.pos
        char = text[pos]
        if char == "'":
            return self.string()
        if char == "$":
            return self.path()
        if text.startswith("States.", pos):
            return self.call(depth + 1)
        if char == "-" or char.isdigit():
            return self.number()
        word = _WORD.match(text, pos)
        if word is not None and word.group(0) in _KEYWORDS:
            self.pos = word.end()
            self.delimited(pos)
            value = _KEYWORDS[word.group(0)]
            return _Argument(_LITERAL, _constant(value), word.group(0), value)
        found = word.group(0) if word is not None else char
        self.fail(
            f"unexpected {found!r}: an argument is a 'string' in single quotes, a number, "
            "true, false, null, a path starting with '$', or a nested States.* call"
        )

    def delimited(self, start: int) -> None:
        """A literal must be followed by a space, ',' or ')'."""
        if (
            self.pos < self.end
            and self.text[self.pos] not in _SPACE
            and self.text[self.pos] not in ",)"
        ):
            tail = re.match(r"[^\s,)]*", self.text[self.pos :])
            bad = self.text[start : self.pos] + (tail.group(0) if tail else "")
            self.fail(f"invalid literal {bad!r}", start)

    def number(self) -> _Argument:
        start = self.pos
        match = _NUMBER.match(self.text, start)
        if match is None:
            self.fail("a '-' must be followed by a number")
        self.pos = match.end()
        token = match.group(0)
        self.delimited(start)
        value: int | float = (
            int(token) if match.group(1) is None and match.group(2) is None else float(token)
        )
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"the number {token} is out of range", start)
        return _Argument(_LITERAL, _constant(value), token, value)

    def string(self) -> _Argument:
        text, end = self.text, self.end
        start = self.pos
        pos = start + 1
        pieces: list[str] = []
        chars: list[str] = []
        while True:
            if pos >= end:
                self.fail("unterminated string literal: missing closing quote (')", start)
            char = text[pos]
            if char == "'":
                break
            if char == "\\":
                if pos + 1 >= end:
                    self.fail("unterminated string literal: missing closing quote (')", start)
                escaped = text[pos + 1]
                if escaped not in _ESCAPABLE:
                    self.fail(
                        f"invalid escape sequence '\\{escaped}' in a string literal: only "
                        "\\', \\{, \\} and \\\\ are allowed (write \\\\ for a backslash)",
                        pos,
                    )
                chars.append(escaped)
                pos += 2
                continue
            if char == "{" and pos + 1 < end and text[pos + 1] == "}":
                pieces.append("".join(chars))
                chars = []
                pos += 2
                continue
            chars.append(char)
            pos += 1
        pieces.append("".join(chars))
        self.pos = pos + 1
        value = "{}".join(pieces)
        return _Argument(_LITERAL, _constant(value), text[start : self.pos], value, pieces)

    def path(self) -> _Argument:
        text, end = self.text, self.end
        start = pos = self.pos
        closers: list[str] = []
        quote = ""
        while pos < end:
            char = text[pos]
            if quote:
                if char == "\\":
                    pos += 2
                    continue
                if char == quote:
                    quote = ""
            elif char in "'\"" and closers:
                quote = char
            elif char == "[":
                closers.append("]")
            elif char == "(":
                closers.append(")")
            elif char in "])":
                if not closers:
                    if char == ")":
                        break
                    self.fail(f"unbalanced {char!r} in the path argument", pos)
                expected = closers.pop()
                if expected != char:
                    self.fail(f"missing {expected!r} before {char!r} in the path argument", pos)
            elif char == "," and not closers:
                break
            pos += 1
        if quote:
            self.fail("unterminated quoted name in the path argument", start)
        if closers:
            self.fail(f"unbalanced brackets in the path argument: missing {closers[-1]!r}", start)
        source = text[start:pos].rstrip()
        self.pos = start + len(source)
        try:
            compiled = compile_path(source)
        except PathSyntaxError as exc:
            self.fail(f"invalid path argument {source!r}: {exc}", start)
        return _Argument(
            _PATH,
            _path_evaluator(compiled),
            source,
            uses_context=compiled.root == CONTEXT,
        )

    # ---- functions that use their literal arguments at compile time

    def format(self, arguments: list[_Argument], start: int) -> Evaluator:
        template, values = arguments[0], arguments[1:]
        if template.kind == _CALL:
            self.fail("the format string of States.Format must be a string or a path", start)
        if template.kind == _PATH:
            return _call("States.Format", _format, [a.evaluate for a in arguments])
        if type(template.value) is not str:
            self.fail(
                "the format string (first argument) of States.Format must be a string, "
                f"not {template.text}",
                start,
            )
        assert template.pieces is not None
        pieces = template.pieces
        if len(pieces) - 1 != len(values):
            self.fail(
                f"States.Format: {_placeholder_mismatch(len(pieces) - 1, len(values))}", start
            )

        evaluators = [a.evaluate for a in values]
        if len(pieces) == 1:
            return _constant(pieces[0])
        if len(pieces) == 2:
            head, tail = pieces

            def fill1(item: Any) -> str:
                if type(item) is str:
                    return head + item + tail
                return head + _format_value(item) + tail

            return _call("States.Format", fill1, evaluators)

        def fill(*items: Any) -> str:
            return _fill(pieces, items)

        return _call("States.Format", fill, evaluators)

    def string_split(self, arguments: list[_Argument]) -> Evaluator:
        delimiters = arguments[1].value
        if type(delimiters) is not str:
            return _call("States.StringSplit", _string_split, [a.evaluate for a in arguments])
        split = _splitter(delimiters)

        def split_text(text: Any) -> list[str]:
            return split(_string(text, "the first argument"))

        return _call("States.StringSplit", split_text, [arguments[0].evaluate])


# --------------------------------------------------------------------------- public API


class Intrinsic:
    """A compiled intrinsic function call; :meth:`evaluate` runs it."""

    __slots__ = ("_evaluate", "name", "text", "uses_context")

    def __init__(self, text: str, name: str, evaluate: Evaluator, uses_context: bool) -> None:
        self.text = text
        self.name = name  # the outermost function, e.g. "States.Format"
        self.uses_context = uses_context  # some argument reads $$
        self._evaluate = evaluate

    def __repr__(self) -> str:
        return f"Intrinsic({self.text!r})"

    def evaluate(
        self,
        data: Any,
        context: Any = None,
        variables: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run the call on the state's data, the context object and the variables.

        Raise :class:`RuntimeFailure` (cause: ``The function '…' had the following error: …``).
        """
        try:
            return self._evaluate(data, context, variables)
        except _Failure as exc:
            raise RuntimeFailure(
                exc.error, f"The function '{self.text}' had the following error: {exc.detail}"
            ) from None


_INTRINSIC: Final = re.compile(r"States\.[A-Za-z0-9_]+\s*\(")
_CACHE: dict[str, Intrinsic] = {}


def is_intrinsic(text: Any) -> bool:
    """Cheap check: ``text`` starts with ``States.`` and looks like a call ``States.X(…)``."""
    return (
        type(text) is str
        and text.startswith("States.")
        and _INTRINSIC.match(text) is not None
        and text.rstrip().endswith(")")
    )


def compile_intrinsic(text: str) -> Intrinsic:
    """Parse and check an intrinsic function call once; raise :class:`IntrinsicSyntaxError`."""
    cached = _CACHE.get(text) if type(text) is str else None
    if cached is not None:
        return cached
    if not isinstance(text, str):
        raise IntrinsicSyntaxError(repr(text), "an intrinsic function call must be a string")
    name, evaluate, uses_context = _Parser(text).parse()
    compiled = Intrinsic(text, name, evaluate, uses_context)
    if len(_CACHE) < 10_000:
        _CACHE[text] = compiled
    return compiled


# --------------------------------------------------------------------------- JSONata functions
# Step Functions adds these to JSONata (names without the "$"). The jsonata library passes an
# undefined argument as None and leaves a missing one out.


def _plain(value: Any) -> Any:
    """The jsonata library hands over list subclasses (sequences); make them plain lists."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _jsonata_call(name: str, body: Callable[..., Any], *args: Any) -> Any:
    try:
        return body(*map(_plain, args))
    except _Invalid as exc:
        raise JsonataFunctionError(f"${name}: {exc.detail}") from None


def _need(name: str, args: tuple[Any, ...], count: int) -> None:
    if len(args) != count:
        raise JsonataFunctionError(
            f"${name} takes {count} argument{'s' if count != 1 else ''}, but {len(args)} "
            f"{'was' if len(args) == 1 else 'were'} given"
        )


def jsonata_partition(*args: Any) -> list[list[Any]]:
    """``$partition(array, chunkSize)``: as States.ArrayPartition."""
    _need("partition", args, 2)
    return _jsonata_call("partition", _array_partition, *args)


def jsonata_range(*args: Any) -> list[int]:
    """``$range(start, end, step)``: as States.ArrayRange (the end is included)."""
    _need("range", args, 3)
    return _jsonata_call("range", _array_range, *args)


def jsonata_hash(*args: Any) -> str:
    """``$hash(value, algorithm)``: as States.Hash."""
    _need("hash", args, 2)
    return _jsonata_call("hash", _hash, *args)


def jsonata_random(*args: Any) -> float:
    """``$random([seed])``: a number in [0, 1); the same seed gives the same number."""
    if len(args) > 1:
        raise JsonataFunctionError(f"$random takes 0 or 1 arguments, but {len(args)} were given")
    if not args or args[0] is None:
        return random.random()
    seed = args[0]
    if type(seed) not in (int, float, str):
        raise JsonataFunctionError(
            f"$random: the seed must be a number or a string, but was {_show(seed)}"
        )
    return random.Random(seed).random()


def jsonata_uuid(*args: Any) -> str:
    """``$uuid()``: a version 4 UUID, as States.UUID."""
    _need("uuid", args, 0)
    return _uuid()


def jsonata_parse(*args: Any) -> Any:
    """``$parse(jsonString)``: the parsed JSON value, as States.StringToJson."""
    _need("parse", args, 1)
    return _jsonata_call("parse", _string_to_json, *args)


#: Functions Step Functions adds to JSONata, keyed by name without the ``$``; register them
#: with ``jsonata.Jsonata(expr).register_lambda(name, function)``.
JSONATA_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "partition": jsonata_partition,
    "range": jsonata_range,
    "hash": jsonata_hash,
    "random": jsonata_random,
    "uuid": jsonata_uuid,
    "parse": jsonata_parse,
}
