"""JSONPath references, compiled once per definition.

ASL uses three kinds of path:

* ``$…``  — a query on the state's data (its input, or its result for ResultSelector),
* ``$$…`` — a query on the context object,
* ``$name…`` — a query on the variable ``name`` (set by ``Assign``).

Parsing is done by python-jsonpath. A path the parser reports as *singular* (only
names and indexes) is turned into a tuple of keys and walked directly, which is
what almost every real definition uses; anything else (wildcards, slices,
filters, recursive descent) runs through the library and yields a list, as
Jayway JsonPath — the implementation AWS uses — does for indefinite paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jsonpath
from jsonpath.exceptions import JSONPathError
from jsonpath.segments import JSONPathChildSegment
from jsonpath.selectors import IndexSelector, NameSelector

__all__ = [
    "Path",
    "PathNotFound",
    "PathSyntaxError",
    "compile_path",
    "set_path",
]

_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

INPUT = "input"
CONTEXT = "context"
VARIABLE = "variable"


class PathSyntaxError(ValueError):
    """The text is not a valid ASL path."""


class PathNotFound(LookupError):
    """A definite path selects nothing in the data it was applied to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(path.text)


class Path:
    """A compiled ASL path. ``find`` applies it; ``keys`` is set for singular paths."""

    __slots__ = ("definite", "keys", "query", "root", "text", "variable")

    def __init__(
        self,
        text: str,
        root: str,
        variable: str | None,
        keys: tuple[str | int, ...] | None,
        query: jsonpath.JSONPath | None,
    ) -> None:
        self.text = text
        self.root = root
        self.variable = variable
        self.keys = keys
        self.query = query
        self.definite = keys is not None

    def __repr__(self) -> str:
        return f"Path({self.text!r})"

    def find(
        self,
        data: Any,
        context: Any = None,
        variables: Mapping[str, Any] | None = None,
    ) -> Any:
        """Return the value the path selects; raise :class:`PathNotFound` if none."""
        if self.root == CONTEXT:
            data = context
        elif self.root == VARIABLE:
            if variables is None or self.variable not in variables:
                raise PathNotFound(self)
            data = variables[self.variable]  # type: ignore[index]
        keys = self.keys
        if keys is None:
            assert self.query is not None
            try:
                return self.query.findall(data)
            except JSONPathError as exc:  # e.g. a filter comparing incompatible types
                raise PathNotFound(self) from exc
        for key in keys:
            if type(key) is str:
                if type(data) is not dict or key not in data:
                    raise PathNotFound(self)
                data = data[key]
            else:
                if type(data) is not list:
                    raise PathNotFound(self)
                try:
                    data = data[key]  # type: ignore[index]
                except IndexError:
                    raise PathNotFound(self) from None
        return data


_CACHE: dict[str, Path] = {}


def compile_path(text: str, *, allow_variables: bool = True, allow_context: bool = True) -> Path:
    """Compile an ASL path. Raise :class:`PathSyntaxError` with a readable message."""
    key = text
    cached = _CACHE.get(key)
    if cached is None:
        cached = _compile(text)
        if len(_CACHE) < 10_000:
            _CACHE[key] = cached
    if cached.root == VARIABLE and not allow_variables:
        raise PathSyntaxError(f"variables are not allowed here: {text!r}")
    if cached.root == CONTEXT and not allow_context:
        raise PathSyntaxError(f"the context object ($$) is not allowed here: {text!r}")
    return cached


def _compile(text: str) -> Path:
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathSyntaxError(f"a path must start with '$': {text!r}")
    variable: str | None = None
    if text.startswith("$$"):
        root, rest = CONTEXT, text[1:]
    else:
        match = _VARIABLE.match(text)
        if match:
            root, variable = VARIABLE, match.group(1)
            rest = "$" + text[match.end() :]
        else:
            root, rest = INPUT, text
    try:
        query = jsonpath.compile(rest)
    except JSONPathError as exc:
        message = str(exc).splitlines()[0]
        raise PathSyntaxError(f"invalid JSONPath {text!r}: {message}") from None
    except Exception as exc:  # the parser may raise other errors on odd input
        raise PathSyntaxError(f"invalid JSONPath {text!r}: {exc}") from None
    if not isinstance(query, jsonpath.JSONPath):
        raise PathSyntaxError(f"invalid JSONPath {text!r}: compound queries are not supported")
    keys = _singular_keys(query)
    return Path(text, root, variable, keys, None if keys is not None else query)


def _singular_keys(query: jsonpath.JSONPath) -> tuple[str | int, ...] | None:
    keys: list[str | int] = []
    for segment in query.segments:
        if type(segment) is not JSONPathChildSegment or len(segment.selectors) != 1:
            return None
        selector = segment.selectors[0]
        if type(selector) is NameSelector:
            keys.append(selector.name)
        elif type(selector) is IndexSelector:
            keys.append(selector.index)
        else:
            return None
    return tuple(keys)


class ResultPathError(ValueError):
    """ResultPath cannot place the result (an intermediate value is not an object)."""


def set_path(data: Any, keys: tuple[str | int, ...], value: Any) -> Any:
    """Return ``data`` with ``value`` placed at ``keys``; ``data`` itself is not modified.

    Objects along the way are copied shallowly and created when missing, as
    ResultPath does on AWS.
    """
    if not keys:
        return value
    key, rest = keys[0], keys[1:]
    if type(key) is str:
        if data is None:
            data = {}
        if type(data) is not dict:
            raise ResultPathError(key)
        new = dict(data)
        new[key] = set_path(data.get(key), rest, value) if rest else value
        return new
    if type(data) is not list:
        raise ResultPathError(key)
    new_list = list(data)
    try:
        new_list[key] = set_path(new_list[key], rest, value) if rest else value  # type: ignore[index]
    except IndexError:
        raise ResultPathError(key) from None
    return new_list
