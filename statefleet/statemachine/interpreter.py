"""The step loop: run a (sub-)machine from its start state until it ends or fails."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from statefleet.statemachine.runtime import Run, Scope
from statefleet.statemachine.steps import End, Failed, Next, Parked, Step

if TYPE_CHECKING:
    from statefleet.statemachine.definition import Machine

#: A run yields to the event loop every this many transitions, so that a cycle of states
#: that never wait (Pass, Choice, sync Tasks) cannot hold it: TimeoutSeconds, cancellation
#: and other runs go on. Not at every transition: that costs ~10% of a short run.
YIELD_EVERY = 32


async def run_machine(
    machine: Machine, run: Run, scope: Scope, data: Any, start_at: str | None = None
) -> Step:
    """Advance state by state; return :class:`End`, :class:`Failed` or :class:`Parked`."""
    states = machine.states
    state = states[start_at or machine.start_at]
    steps = 0
    while True:
        step = await state.enter(run, scope, data)
        match step:
            case Next(state=name, output=output):
                state = states[name]
                data = output
                steps += 1
                if steps % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            case End() | Failed() | Parked():
                return step
