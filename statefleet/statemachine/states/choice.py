"""Choice: picks the next state from rules evaluated on its input.

JSONPath rules (``Variable`` + one comparison, or ``And``/``Or``/``Not``) are compiled
into closures once; JSONata rules are one ``Condition`` expression each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from statefleet.errors import ErrorName, ExecutionError, RuntimeFailure
from statefleet.statemachine.expressions import Expression, compile_expression, is_expression
from statefleet.statemachine.paths import CONTEXT, Path, PathNotFound, compile_path
from statefleet.statemachine.runtime import StateEnv
from statefleet.statemachine.states.base import _UNSET, State
from statefleet.statemachine.templates import (
    Template,
    compile_jsonata_template,
    compile_jsonpath_template,
)

Predicate = Callable[[Any, StateEnv], bool]

_MISSING: Any = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (uppercase ``T``, ``Z`` or an offset), or None."""
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        return None
    text = value
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _string_matcher(pattern: str) -> Callable[[str], bool]:
    """``*`` matches any run of characters; ``\\*`` is a literal star, ``\\\\`` a backslash."""
    regex = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if ch == "*" else re.escape(ch))
        i += 1
    compiled = re.compile("".join(regex), re.DOTALL)
    return lambda text: compiled.fullmatch(text) is not None


def _compare(op: str) -> Callable[[Any, Any], bool]:
    return {
        "Equals": lambda a, b: a == b,
        "LessThan": lambda a, b: a < b,
        "GreaterThan": lambda a, b: a > b,
        "LessThanEquals": lambda a, b: a <= b,
        "GreaterThanEquals": lambda a, b: a >= b,
    }[op]


_KINDS = ("String", "Numeric", "Boolean", "Timestamp")
_OPS = ("Equals", "LessThanEquals", "GreaterThanEquals", "LessThan", "GreaterThan")


def _operand_converter(kind: str) -> Callable[[Any], Any]:
    if kind == "String":
        # Java's compareTo orders UTF-16 code units (AWS: "see the Java compareTo
        # documentation"); comparing UTF-16-BE bytes gives exactly that order.
        return lambda v: v.encode("utf-16-be", "surrogatepass") if isinstance(v, str) else _MISSING
    if kind == "Numeric":
        return lambda v: v if _is_number(v) else _MISSING
    if kind == "Boolean":
        return lambda v: v if isinstance(v, bool) else _MISSING
    return lambda v: ts if (ts := parse_timestamp(v)) is not None else _MISSING


class _Resolver:
    """Finds the value of a path in the Choice's input, context or variables."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, data: Any, env: StateEnv) -> Any:
        path = self.path
        try:
            if path.root == CONTEXT:
                return path.find(data, env.context(), env.variables)
            return path.find(data, None, env.variables)
        except PathNotFound:
            return _MISSING

    def invalid(self) -> RuntimeFailure:
        return RuntimeFailure(
            ErrorName.RUNTIME,
            f"Invalid path '{self.path.text}': "
            "The choice state's condition path references an invalid value.",
        )


def compile_rule(rule: Mapping[str, Any]) -> Predicate:
    """Compile one JSONPath Choice rule (or nested rule) into a predicate."""
    if "And" in rule:
        parts = [compile_rule(r) for r in rule["And"]]
        return lambda data, env: all(p(data, env) for p in parts)
    if "Or" in rule:
        parts = [compile_rule(r) for r in rule["Or"]]
        return lambda data, env: any(p(data, env) for p in parts)
    if "Not" in rule:
        inner = compile_rule(rule["Not"])
        return lambda data, env: not inner(data, env)
    resolve = _Resolver(compile_path(rule["Variable"]))

    for key, expected in rule.items():
        if key in ("Variable", "Next", "Assign", "Comment", "Output"):
            continue
        if key.startswith("Is"):
            return _type_test(key, bool(expected), resolve)
        if key == "StringMatches":
            matches = _string_matcher(expected)

            def string_matches(
                data: Any, env: StateEnv, matches: Callable[[str], bool] = matches
            ) -> bool:
                value = resolve(data, env)
                if value is _MISSING:
                    raise resolve.invalid()
                return isinstance(value, str) and matches(value)

            return string_matches
        kind = next((k for k in _KINDS if key.startswith(k)), None)
        if kind is None:
            break
        rest = key[len(kind) :]
        by_path = rest.endswith("Path")
        op = rest[:-4] if by_path else rest
        if op not in _OPS:
            break
        return _comparison(kind, op, expected, by_path, resolve)
    raise ValueError(f"Choice rule has no comparison operator: {sorted(rule)}")


def _type_test(key: str, expected: bool, resolve: _Resolver) -> Predicate:
    def present(value: Any) -> bool:
        return value is not _MISSING

    tests: dict[str, Callable[[Any], bool]] = {
        "IsPresent": present,
        "IsNull": lambda v: v is None,
        "IsNumeric": _is_number,
        "IsString": lambda v: isinstance(v, str),
        "IsBoolean": lambda v: isinstance(v, bool),
        "IsTimestamp": lambda v: parse_timestamp(v) is not None,
    }
    test = tests[key]

    def type_test(data: Any, env: StateEnv) -> bool:
        value = resolve(data, env)
        if value is _MISSING and key != "IsPresent":
            raise resolve.invalid()
        return test(value) == expected

    return type_test


def _comparison(kind: str, op: str, expected: Any, by_path: bool, resolve: _Resolver) -> Predicate:
    convert = _operand_converter(kind)
    compare = _compare(op)
    if by_path:
        other = _Resolver(compile_path(expected))

        def compare_path(data: Any, env: StateEnv) -> bool:
            value = resolve(data, env)
            if value is _MISSING:
                raise resolve.invalid()
            right = other(data, env)
            if right is _MISSING:
                raise other.invalid()
            left, right = convert(value), convert(right)
            if left is _MISSING or right is _MISSING:
                return False
            return compare(left, right)

        return compare_path
    constant = convert(expected)

    def compare_value(data: Any, env: StateEnv) -> bool:
        value = resolve(data, env)
        if value is _MISSING:
            raise resolve.invalid()
        left = convert(value)
        if left is _MISSING or constant is _MISSING:
            return False
        return compare(left, constant)

    return compare_value


class _Branch:
    __slots__ = ("assign", "condition", "next", "output")

    def __init__(
        self,
        condition: Predicate | Expression | bool,
        next_state: str,
        assign: Template | None,
        output: Template | None,
    ) -> None:
        self.condition = condition
        self.next = next_state
        self.assign = assign
        self.output = output


class ChoiceState(State):
    type_name = "Choice"
    takes_parameters = False
    takes_result = False

    def __init__(self, name: str, spec: Mapping[str, Any], pointer: str, language: str) -> None:
        super().__init__(name, spec, pointer, language)
        self.default: str | None = spec.get("Default")
        self.rules: list[_Branch] = []
        for index, rule in enumerate(spec.get("Choices", ())):
            field = f"Choices/{index}"
            if self.jsonata:
                condition = rule.get("Condition")
                compiled: Predicate | Expression | bool = (
                    compile_expression(condition, "Condition")
                    if is_expression(condition)
                    else bool(condition)
                )
                assign = (
                    compile_jsonata_template(rule["Assign"], f"{field}/Assign")
                    if "Assign" in rule
                    else None
                )
                output = (
                    compile_jsonata_template(rule["Output"], f"{field}/Output")
                    if "Output" in rule
                    else None
                )
            else:
                compiled = compile_rule(rule)
                assign = compile_jsonpath_template(rule["Assign"]) if "Assign" in rule else None
                output = None
            self.rules.append(_Branch(compiled, rule["Next"], assign, output))

    def successors(self) -> list[str]:
        targets = [b.next for b in self.rules]
        if self.default:
            targets.append(self.default)
        return targets

    def _choose(self, data: Any, env: StateEnv) -> _Branch | None:
        for branch in self.rules:
            condition = branch.condition
            if isinstance(condition, bool):
                matched = condition
            elif isinstance(condition, Expression):
                value = condition.evaluate(env.states(), env.variables)
                if not isinstance(value, bool):
                    raise condition.type_failure("boolean", value)
                matched = value
            else:
                matched = condition(data, env)
            if matched:
                return branch
        return None

    def _no_match(self) -> ExecutionError:
        return ExecutionError(
            ErrorName.NO_CHOICE_MATCHED,
            "No Matches!",
        )

    async def _attempt_jsonpath(self, env: StateEnv, raw: Any) -> tuple[Any, Any]:
        data = raw
        if self.input_path is not _UNSET:
            data = {} if self.input_path is None else self._select(self.input_path, raw, env)
        branch = self._choose(data, env)
        assign = self.assign
        if branch is not None:
            env.chosen = branch.next
            if branch.assign is not None:
                assign = branch.assign
        elif self.default is not None:
            env.chosen = self.default
        else:
            raise self._no_match()
        assigned = assign.evaluate(data, env) if assign is not None else None
        output = data
        if self.output_path is not _UNSET:
            output = {} if self.output_path is None else self._select(self.output_path, data, env)
        return output, assigned

    async def _attempt_jsonata(self, env: StateEnv, raw: Any) -> tuple[Any, Any]:
        branch = self._choose(raw, env)
        assign, output_template = self.assign, self.output
        if branch is not None:
            env.chosen = branch.next
            assign = branch.assign or assign
            output_template = branch.output or output_template
        elif self.default is not None:
            env.chosen = self.default
        else:
            raise self._no_match()
        assigned = assign.evaluate(raw, env) if assign is not None else None
        output = output_template.evaluate(raw, env) if output_template is not None else raw
        return output, assigned
