"""The step loop: run a (sub-)machine from its start state until it ends or fails."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from statefleet.statemachine.runtime import Run, Scope
from statefleet.statemachine.steps import End, Failed, Next, Parked, Step

if TYPE_CHECKING:
    from statefleet.statemachine.definition import Machine


async def run_machine(
    machine: Machine, run: Run, scope: Scope, data: Any, start_at: str | None = None
) -> Step:
    """Advance state by state; return :class:`End`, :class:`Failed` or :class:`Parked`."""
    states = machine.states
    state = states[start_at or machine.start_at]
    while True:
        step = await state.enter(run, scope, data)
        match step:
            case Next(state=name, output=output):
                state = states[name]
                data = output
                # a cycle of states that never wait (Pass, Choice, sync Tasks) must not hold
                # the event loop: TimeoutSeconds, cancellation and other runs go on
                await asyncio.sleep(0)
            case End() | Failed() | Parked():
                return step
