"""The execution status machine: legal moves go through, illegal ones raise and change nothing."""

from __future__ import annotations

import pytest

from statefleet.statemachine.lifecycle import (
    MOVES,
    TERMINAL,
    ExecutionStatus,
    IllegalTransition,
    Lifecycle,
    check_move,
)

S = ExecutionStatus


def test_happy_path_with_a_wait() -> None:
    life = Lifecycle()
    assert life.status is S.QUEUED
    assert life.start() is S.RUNNING
    assert life.park() is S.WAITING
    assert life.wake() is S.RUNNING
    assert life.succeed() is S.SUCCEEDED
    assert life.is_terminal


@pytest.mark.parametrize("end", ["fail", "time_out", "abort"])
def test_redrive_only_from_failed_timed_out_aborted(end: str) -> None:
    life = Lifecycle(S.RUNNING)
    getattr(life, end)()
    assert life.is_terminal
    with pytest.raises(IllegalTransition):
        life.start()
    assert life.redrive() is S.RUNNING


def test_succeeded_is_final() -> None:
    life = Lifecycle(S.SUCCEEDED)
    for move in ("start", "park", "wake", "succeed", "fail", "time_out", "abort", "redrive"):
        with pytest.raises(IllegalTransition) as raised:
            getattr(life, move)()
        assert "SUCCEEDED" in str(raised.value)
        assert life.status is S.SUCCEEDED  # nothing changed


def test_illegal_move_names_status_and_move() -> None:
    life = Lifecycle(S.QUEUED)
    with pytest.raises(IllegalTransition, match="an execution in status QUEUED cannot park"):
        life.park()
    assert life.status is S.QUEUED


def test_end_only_takes_terminal_statuses() -> None:
    life = Lifecycle(S.RUNNING)
    with pytest.raises(IllegalTransition):
        life.end(S.WAITING)
    assert life.end("TIMED_OUT") is S.TIMED_OUT


def test_check_move_agrees_with_the_machine() -> None:
    """The cheap table check used on the hot path allows exactly the machine's moves."""
    for source in S:
        for target in S:
            allowed_by_table = any(
                source in sources and target == dest for _, sources, dest in MOVES
            )
            redrive = source in TERMINAL and target == S.RUNNING
            if allowed_by_table:
                check_move(source, target, redrive=redrive)
            else:
                with pytest.raises(IllegalTransition):
                    check_move(source, target, redrive=True)
    with pytest.raises(IllegalTransition):
        check_move(S.FAILED, S.RUNNING)  # only by redrive
