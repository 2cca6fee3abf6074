"""Fewer cyclic garbage collections while executions run in bulk.

A batch allocates many short-lived containers (records, rows, JSON values) and almost no
reference cycles, yet CPython's default generation-0 threshold (700 allocations) runs the
collector thousands of times per batch, and each full collection walks every object the
process holds. While a local batch or a worker runs, :func:`relaxed_gc` raises the
generation-0 threshold, so that collections are rarer; it is restored when the last such
run ends. (Objects are not frozen out of collection: garbage that existed before the run
is still collected, and finalized, on the usual schedule.) Measured on a chained batch of
the 4-state machine: collections fell from ~2 s to under 0.1 s of CPU per 20,000
executions (bench/persistence.py).

``STATEFLEET_GC_THRESHOLD`` sets the threshold (default 20,000); ``0`` leaves the
collector alone.

:func:`short_switches` lowers the interpreter's thread switch interval while a local batch
runs. On SQLite the store's writer thread commits group after group while the event loop's
thread runs executions; every statement the writer sends lets go of the interpreter's lock
and must take it back, and by default a thread waiting for it waits up to 5 ms for the
running thread to let go. At 1 ms the writer's transactions no longer wait behind the
loop (10 alternating pairs of the chained batch: +9 % median). ``STATEFLEET_SWITCH_INTERVAL``
sets it in seconds (default 0.001); ``0`` leaves it alone.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, Generic, TypeVar

__all__ = [
    "DEFAULT_GC_THRESHOLD",
    "DEFAULT_SWITCH_INTERVAL",
    "gc_threshold",
    "relaxed_gc",
    "short_switches",
    "switch_interval",
]

#: The generation-0 threshold while a batch or worker runs.
DEFAULT_GC_THRESHOLD: Final = 20_000

#: The thread switch interval (seconds) while a local batch runs.
DEFAULT_SWITCH_INTERVAL: Final = 0.001

T = TypeVar("T")


class _Shared(Generic[T]):
    """A process-wide interpreter setting that the runs changing it share: the first run
    sets it, nested and concurrent ones keep it, the last one restores the old value."""

    def __init__(self, read: Callable[[], T], write: Callable[[T], None]) -> None:
        self._read = read
        self._write = write
        self._depth = 0
        self._saved: T | None = None

    @contextmanager
    def changed(self, to: Callable[[T], T]) -> Iterator[None]:
        """Run the block with the setting at ``to(current value)``."""
        if self._depth == 0:
            self._saved = self._read()
            self._write(to(self._saved))
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._saved is not None:
                self._write(self._saved)
                self._saved = None


_threshold: _Shared[tuple[int, int, int]] = _Shared(
    gc.get_threshold, lambda value: gc.set_threshold(*value)
)
_switches: _Shared[float] = _Shared(sys.getswitchinterval, sys.setswitchinterval)


def _from_environment(name: str, parse: Callable[[str], T], default: T, kind: str) -> T:
    """The setting ``name`` of the environment, parsed (0 or more), or ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = parse(text)
    except ValueError:
        raise ValueError(f"{name} must be {kind}, got {text!r}") from None
    if not value >= 0:  # type: ignore[operator]  # (also NaN)
        raise ValueError(f"{name} must be 0 or more, got {text!r}")
    return value


def gc_threshold() -> int:
    """The threshold from ``STATEFLEET_GC_THRESHOLD`` (0: off); the default when unset."""
    return _from_environment(
        "STATEFLEET_GC_THRESHOLD", int, DEFAULT_GC_THRESHOLD, "a whole number (0 turns it off)"
    )


@contextmanager
def relaxed_gc(threshold: int | None = None) -> Iterator[None]:
    """Run the block with fewer garbage collections (see the module docstring). Nested
    and concurrent uses share one setting: the first sets it, the last restores it."""
    value = gc_threshold() if threshold is None else threshold
    if value <= 0:
        yield
        return
    with _threshold.changed(lambda saved: (max(value, saved[0]), saved[1], saved[2])):
        yield


def switch_interval() -> float:
    """The interval from ``STATEFLEET_SWITCH_INTERVAL`` (0: leave it); the default when
    unset."""
    return _from_environment(
        "STATEFLEET_SWITCH_INTERVAL",
        float,
        DEFAULT_SWITCH_INTERVAL,
        "a number of seconds (0 leaves it alone)",
    )


@contextmanager
def short_switches(interval: float | None = None) -> Iterator[None]:
    """Run the block with a shorter thread switch interval (see the module docstring),
    never a longer one. Nested and concurrent uses share one setting: the first sets it,
    the last restores it."""
    value = switch_interval() if interval is None else interval
    if value <= 0:
        yield
        return
    with _switches.changed(lambda saved: min(value, saved)):
        yield
