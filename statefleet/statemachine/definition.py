"""Parse an ASL document (dict, JSON or YAML text), validate it and build the machine.

Validation (:mod:`statefleet.statemachine.validation`) reports every problem with its
JSON pointer; only a document without problems is built into frozen state objects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from statefleet.errors import DefinitionError, Problem
from statefleet.statemachine.states import STATE_TYPES, State

__all__ = ["Machine", "build_machine", "content_hash", "load_document", "parse_definition"]


@dataclass(frozen=True, slots=True)
class Machine:
    """A built state machine (the top level, a Parallel branch or a Map item processor)."""

    start_at: str
    states: Mapping[str, State]
    query_language: str
    timeout_seconds: float | None
    comment: str | None
    pointer: str

    def walk(self) -> Iterator[State]:
        """Every state, nested ones included, in document order."""
        for state in self.states.values():
            yield state
            for nested in _nested(state):
                yield from nested.walk()


def _nested(state: State) -> list[Machine]:
    branches = getattr(state, "branches", None)
    if isinstance(branches, list):
        return branches
    processor = getattr(state, "processor", None)
    return [processor] if processor is not None else []


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def build_machine(
    spec: Mapping[str, Any], pointer: str = "", language: str = "JSONPath"
) -> Machine:
    """Build a (sub-)machine from a validated document. Raise DefinitionError on faults."""
    language = spec.get("QueryLanguage", language)
    states: dict[str, State] = {}
    problems: list[Problem] = []
    for name, state_spec in (spec.get("States") or {}).items():
        where = f"{pointer}/States/{escape_pointer(name)}"
        try:
            cls = STATE_TYPES[state_spec["Type"]]
            states[name] = cls(name, state_spec, where, language)
        except DefinitionError as exc:
            problems.extend(exc.problems)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(Problem(where, _describe(exc)))
    if problems:
        raise DefinitionError(problems)
    timeout = spec.get("TimeoutSeconds")
    return Machine(
        start_at=spec.get("StartAt", ""),
        states=states,
        query_language=language,
        timeout_seconds=float(timeout) if timeout is not None else None,
        comment=spec.get("Comment"),
        pointer=pointer,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


def load_document(definition: Any) -> Any:
    """Turn a dict, JSON text or YAML text into the document value."""
    if isinstance(definition, bytes):
        definition = definition.decode("utf-8")
    if not isinstance(definition, str):
        return definition
    text = definition.strip()
    if not text:
        raise DefinitionError("the definition is empty")
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DefinitionError(
                f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except RecursionError:
            raise DefinitionError("the JSON document is nested too deeply to parse") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError(f"malformed YAML{where}: {problem}") from None
    except RecursionError:
        raise DefinitionError("the YAML document is nested too deeply to parse") from None


def content_hash(document: Any) -> str:
    """A stable hash of the document's content (key order does not matter)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_definition(definition: Any) -> tuple[Any, Machine]:
    """Load, validate and build. Return the document and the machine."""
    document = load_document(definition)
    try:
        from statefleet.statemachine.validation import validate
    except ImportError:  # pragma: no cover - the module ships with the package
        problems: list[Problem] = []
    else:
        problems = validate(document)
    if problems:
        raise DefinitionError(problems)
    if not isinstance(document, dict):
        raise DefinitionError("a state machine definition must be a JSON object")
    return document, build_machine(document)
