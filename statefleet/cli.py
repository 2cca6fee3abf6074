"""The ``statefleet`` command line. Each command parses its arguments and awaits one
library call; the library does the work and this module prints what it returns."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from statefleet.errors import DefinitionError, ResourceNotFoundError
from statefleet.statemachine.machine import StateMachine

app = typer.Typer(
    name="statefleet",
    help="Run Amazon States Language state machines over many entities at once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"statefleet: {message}", err=True)
    return typer.Exit(code)


def _read_definition(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read definition {path!r}: {exc.strerror or exc}") from None


def _read_input(value: str | None) -> Any:
    if value is None:
        return {}
    source = "--input"
    text = value
    if value.startswith("@"):
        source = value[1:]
        try:
            text = Path(source).read_text(encoding="utf-8") if source != "-" else sys.stdin.read()
        except OSError as exc:
            raise _fail(f"cannot read input file {source!r}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None


def load_object(reference: str) -> Any:
    """Import ``module:attribute`` (attribute may be dotted)."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise _fail(f"expected module:attribute, got {reference!r}")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise _fail(f"cannot import {module_name!r}: {exc}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise _fail(f"{module_name!r} has no attribute {attribute!r}") from None
    return target


def _load_resources(reference: str | None) -> Mapping[str, Callable[..., Any]]:
    if reference is None:
        return {}
    target = load_object(reference)
    resources = getattr(target, "resources", target)
    if callable(resources) and not isinstance(resources, Mapping):
        resources = resources()
    if not isinstance(resources, Mapping):
        raise _fail(
            f"{reference!r} is neither a mapping of resource names to callables "
            "nor an object with a 'resources' mapping"
        )
    return resources


@app.command()
def run(
    definition: Annotated[str, typer.Argument(help="ASL definition file (JSON or YAML).")],
    input: Annotated[
        str | None,
        typer.Option("--input", "-i", help="Execution input: JSON text, or @file (@- for stdin)."),
    ] = None,
    resources: Annotated[
        str | None,
        typer.Option(
            "--resources",
            "-r",
            help="module:attr naming a mapping of resource names to callables "
            "(or an object with a 'resources' mapping).",
        ),
    ] = None,
) -> None:
    """Run one in-memory execution and print its result as JSON.

    Exit status: 0 SUCCEEDED, 1 FAILED / TIMED_OUT / ABORTED, 2 invalid definition or input.
    """
    text = _read_definition(definition)
    data = _read_input(input)
    registry = _load_resources(resources)
    try:
        machine = StateMachine.from_definition(text)
    except DefinitionError as exc:
        raise _fail(f"{definition}: {exc}") from None
    try:
        result = asyncio.run(machine.run(data, resources=registry))
    except ResourceNotFoundError as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    raise typer.Exit(EXIT_OK if result.status == "SUCCEEDED" else EXIT_FAILED)


@app.callback()
def _root() -> None:
    """statefleet: Amazon States Language state machines over many entities at once."""


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
