"""What a state returns to the interpreter loop: small frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Next:
    """Go on with ``state``, whose input is ``output``."""

    state: str
    output: Any


@dataclass(frozen=True, slots=True)
class End:
    """The machine (or branch, or iteration) ended with ``output``."""

    output: Any


@dataclass(frozen=True, slots=True)
class Failed:
    """The machine failed with an ASL error name and cause.

    ``retryable`` tells a queue worker whether running the state again may help: None
    for a designed failure (a Fail state, an error caught into a failure), True for an
    error a state raised, False for one marked non-retryable or a ``States.Runtime``."""

    error: str
    cause: str | None
    retryable: bool | None = None


@dataclass(frozen=True, slots=True)
class Parked:
    """The execution waits: until a time (epoch seconds), or for the callback ``wait`` (a
    task token or a message; ``until`` is then its deadline, if it has one)."""

    state: str
    until: float | None = None
    wait: str | None = None


Step = Next | End | Failed | Parked
