"""The execution status machine, built on ``transitions`` behind one small facade.

::

    QUEUED ──start──▶ RUNNING ──park──▶ WAITING
                        ▲  │ ◀──wake───┘
                        │  ├─succeed──▶ SUCCEEDED   (final)
                        │  ├─fail─────▶ FAILED
                        │  ├─time_out─▶ TIMED_OUT
                        │  └─abort────▶ ABORTED     (also from QUEUED and WAITING)
                        └──redrive──── FAILED | TIMED_OUT | ABORTED

Callers use the typed methods of :class:`Lifecycle`; an illegal move raises
:class:`IllegalTransition` and changes nothing.
"""

from __future__ import annotations

from enum import StrEnum

from transitions import Machine, MachineError

from statefleet.errors import StatefleetError

__all__ = ["TERMINAL", "ExecutionStatus", "IllegalTransition", "Lifecycle", "check_move"]


class ExecutionStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"


S = ExecutionStatus

TERMINAL = frozenset({S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.ABORTED})

#: (trigger, sources, destination) — the whole table of allowed moves.
MOVES: tuple[tuple[str, tuple[S, ...], S], ...] = (
    ("start", (S.QUEUED,), S.RUNNING),
    ("park", (S.RUNNING,), S.WAITING),
    ("wake", (S.WAITING,), S.RUNNING),
    ("succeed", (S.RUNNING,), S.SUCCEEDED),
    ("fail", (S.RUNNING, S.QUEUED, S.WAITING), S.FAILED),
    ("time_out", (S.RUNNING, S.WAITING), S.TIMED_OUT),
    ("abort", (S.QUEUED, S.RUNNING, S.WAITING), S.ABORTED),
    ("redrive", (S.FAILED, S.TIMED_OUT, S.ABORTED), S.RUNNING),
)

_BY_DESTINATION_NAME = {
    S.RUNNING: "start",
    S.WAITING: "park",
    S.SUCCEEDED: "succeed",
    S.FAILED: "fail",
    S.TIMED_OUT: "time_out",
    S.ABORTED: "abort",
}


class IllegalTransition(StatefleetError):
    """An execution was asked to move between statuses the lifecycle does not allow."""

    def __init__(self, current: str, trigger: str) -> None:
        self.current = current
        self.trigger = trigger
        super().__init__(f"an execution in status {current} cannot {trigger.replace('_', ' ')}")


class Lifecycle:
    """The status of one execution, moved only along :data:`MOVES`."""

    def __init__(self, status: str | ExecutionStatus = S.QUEUED) -> None:
        self.state: str = ExecutionStatus(status).value
        self._machine = Machine(
            model=self,
            states=[s.value for s in ExecutionStatus],
            transitions=[
                {"trigger": trigger, "source": [s.value for s in sources], "dest": dest.value}
                for trigger, sources, dest in MOVES
            ],
            initial=self.state,
            auto_transitions=False,
            model_attribute="state",
        )

    @property
    def status(self) -> ExecutionStatus:
        return ExecutionStatus(self.state)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def _move(self, trigger: str) -> ExecutionStatus:
        try:
            getattr(self, "trigger")(trigger)  # noqa: B009 - transitions adds it at runtime
        except MachineError:
            raise IllegalTransition(self.state, trigger) from None
        return self.status

    def start(self) -> ExecutionStatus:
        return self._move("start")

    def park(self) -> ExecutionStatus:
        return self._move("park")

    def wake(self) -> ExecutionStatus:
        return self._move("wake")

    def succeed(self) -> ExecutionStatus:
        return self._move("succeed")

    def fail(self) -> ExecutionStatus:
        return self._move("fail")

    def time_out(self) -> ExecutionStatus:
        return self._move("time_out")

    def abort(self) -> ExecutionStatus:
        return self._move("abort")

    def redrive(self) -> ExecutionStatus:
        return self._move("redrive")

    def end(self, status: str | ExecutionStatus) -> ExecutionStatus:
        """Move to a terminal status (SUCCEEDED, FAILED, TIMED_OUT or ABORTED)."""
        target = ExecutionStatus(status)
        if target not in TERMINAL:
            raise IllegalTransition(self.state, f"end as {target}")
        return self._move(_BY_DESTINATION_NAME[target])


_ALLOWED: dict[tuple[str, str], str] = {
    (source.value, dest.value): trigger for trigger, sources, dest in MOVES for source in sources
}


def check_move(current: str, target: str, *, redrive: bool = False) -> None:
    """Raise IllegalTransition unless ``current -> target`` is allowed (cheap, no machine)."""
    trigger = _ALLOWED.get((current, target))
    if trigger is None or (trigger == "redrive" and not redrive):
        raise IllegalTransition(current, _describe(target, redrive))


def _describe(target: str, redrive: bool) -> str:
    if redrive:
        return "redrive"
    return _BY_DESTINATION_NAME.get(ExecutionStatus(target), f"move to {target}")
