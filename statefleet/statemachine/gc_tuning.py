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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

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

_depth = 0
_saved: tuple[int, int, int] | None = None
_switch_depth = 0
_saved_switch: float | None = None


def gc_threshold() -> int:
    """The threshold from ``STATEFLEET_GC_THRESHOLD`` (0: off); the default when unset."""
    text = os.environ.get("STATEFLEET_GC_THRESHOLD", "").strip()
    if not text:
        return DEFAULT_GC_THRESHOLD
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"STATEFLEET_GC_THRESHOLD must be a whole number (0 turns it off), got {text!r}"
        ) from None
    if value < 0:
        raise ValueError(f"STATEFLEET_GC_THRESHOLD must be 0 or more, got {value}")
    return value


@contextmanager
def relaxed_gc(threshold: int | None = None) -> Iterator[None]:
    """Run the block with fewer garbage collections (see the module docstring). Nested
    and concurrent uses share one setting: the first sets it, the last restores it."""
    global _depth, _saved
    value = gc_threshold() if threshold is None else threshold
    if value <= 0:
        yield
        return
    if _depth == 0:
        _saved = gc.get_threshold()
        gc.set_threshold(max(value, _saved[0]), _saved[1], _saved[2])
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None


def switch_interval() -> float:
    """The interval from ``STATEFLEET_SWITCH_INTERVAL`` (0: leave it); the default when
    unset."""
    text = os.environ.get("STATEFLEET_SWITCH_INTERVAL", "").strip()
    if not text:
        return DEFAULT_SWITCH_INTERVAL
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"STATEFLEET_SWITCH_INTERVAL must be a number of seconds (0 leaves it alone), "
            f"got {text!r}"
        ) from None
    if not value >= 0:  # also NaN
        raise ValueError(f"STATEFLEET_SWITCH_INTERVAL must be 0 or more, got {text!r}")
    return value


@contextmanager
def short_switches(interval: float | None = None) -> Iterator[None]:
    """Run the block with a shorter thread switch interval (see the module docstring),
    never a longer one. Nested and concurrent uses share one setting: the first sets it,
    the last restores it."""
    global _switch_depth, _saved_switch
    value = switch_interval() if interval is None else interval
    if value <= 0:
        yield
        return
    if _switch_depth == 0:
        _saved_switch = sys.getswitchinterval()
        sys.setswitchinterval(min(value, _saved_switch))
    _switch_depth += 1
    try:
        yield
    finally:
        _switch_depth -= 1
        if _switch_depth == 0 and _saved_switch is not None:
            sys.setswitchinterval(_saved_switch)
            _saved_switch = None
