"""Waiting for the outside world: the engine side of task tokens and the Message state.

A callback state opens a *wait* in the store (:class:`~statefleet.statemachine.protocols.
WaitRecord`) before anything can answer it, then:

* at the top level of a persistent execution it *parks*: the state raises
  :class:`ParkForCallback`, its ``enter`` returns ``Parked(state, until=deadline, wait=id)``
  and the runner checkpoints the execution WAITING, its lease released. Whoever answers the
  wait (``send_task_success``, ``send_message``, the timeout's deferred job) wakes it; the
  run that resumes at the state finds the wait in ``Run.resume_wait``;
* inside a Map or Parallel branch (no checkpoint of its own) it polls the store in-process.

A wait whose deadline (``TimeoutSeconds``, ``HeartbeatSeconds``) has passed is answered
TIMED_OUT by the run that finds it so, with the same guarded update as any answer: of a
timeout and an answer racing, exactly one wins.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from statefleet.errors import ErrorName, ExecutionError, RuntimeFailure, StatefleetError
from statefleet.statemachine.protocols import WaitRecord, WaitStatus, new_id
from statefleet.statemachine.runtime import StateEnv

__all__ = [
    "CallbackStateError",
    "ParkForCallback",
    "answer_of",
    "await_callback",
    "deadline_epoch",
    "new_token",
    "take_resumed_wait",
]

#: How often a wait that cannot park (inside a Map or Parallel) looks for its answer.
POLL_SECONDS = 0.2


class CallbackStateError(StatefleetError):
    """A callback state (a ``.waitForTaskToken`` Task, a Message state) cannot run here:
    an in-memory :class:`~statefleet.StateMachine` has no store to wait in."""


class ParkForCallback(Exception):
    """Raised inside a state's pipeline; its ``enter`` turns it into ``Parked``."""

    def __init__(self, wait: WaitRecord) -> None:
        super().__init__(wait.id)
        self.wait = wait


def new_token() -> str:
    """An opaque, unguessable task token (43 URL-safe characters, 256 random bits). It
    never starts with ``-``: a command line would take such a token for an option
    (``statefleet task heartbeat -Tnc...``), so a leading ``-`` becomes ``_``."""
    token = secrets.token_urlsafe(32)
    return "_" + token[1:] if token.startswith("-") else token


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def take_resumed_wait(env: StateEnv) -> WaitRecord | None:
    """The wait this state resumes at (only the first state a resumed run enters takes it),
    with the state's Retry bookkeeping restored from it."""
    run = env.run
    wait = run.resume_wait
    if wait is None or wait.state != env.state.name or not env.scope.record_history:
        return None
    run.resume_wait = None
    env.retry_count = wait.attempt
    env.retry_counts = list(wait.retry_counts) or None
    env.resumed_wait = wait
    return wait


async def await_callback(
    env: StateEnv,
    *,
    kind: str,
    token: str | None = None,
    correlation_key: str | None = None,
    correlation_value: Any = None,
    timeout_seconds: float | None = None,
    heartbeat: int | None = None,
    call: Any = None,
) -> WaitRecord:
    """Open a wait (or take the resumed one) and return it answered; park or poll meanwhile.

    ``call`` (a coroutine function) runs once the wait exists — the Task's resource,
    handed the token — so that an answer it sends at once is never lost (the runner looks
    at the wait again after parking; a branch that cannot park polls it).
    """
    run = env.run
    store = run.store
    if store is None:
        raise CallbackStateError(
            f"state {env.state.name!r} waits for a callback; only a PersistentStateMachine "
            "(which keeps waits in its store) can run it"
        )
    wait = env.resumed_wait
    env.resumed_wait = None
    if wait is None:
        now = run.clock.now()
        wait = WaitRecord(
            id=new_id(),
            execution_id=run.execution_id,
            state_machine_id=run.machine_name,
            state=env.state.name,
            kind=kind,
            token=token,
            correlation_key=correlation_key,
            correlation_value=correlation_value,
            attempt=env.retry_count,
            retry_counts=list(env.retry_counts or []),
            queue=run.queue,
            heartbeat_seconds=heartbeat,
            created_at=utc(now),
            timeout_at=None if timeout_seconds is None else utc(env.entered + timeout_seconds),
            heartbeat_at=None if heartbeat is None else utc(now + heartbeat),
        )
        wait = await store.open_wait(wait, now=utc(now))
        if call is not None and wait.status == WaitStatus.WAITING:
            # an answer sent while (or right after) the callable runs is not looked for
            # here: the runner looks at the wait again once the execution has parked
            await call()
    top_level = env.scope.record_history
    while True:
        if wait.status != WaitStatus.WAITING:
            run.consumed_wait = wait.id
            return wait
        now = run.clock.now()
        deadline = wait.deadline()
        if deadline is not None and now >= deadline.timestamp():
            error = _expired(wait, now)
            answered = await store.answer_wait(
                wait.id, status=WaitStatus.TIMED_OUT, error=error, now=utc(now)
            )
            found = answered or await store.get_wait(wait_id=wait.id)
            if found is None or found.status == WaitStatus.WAITING:  # its execution ended
                raise RuntimeFailure(ErrorName.RUNTIME, f"wait {wait.id} is gone")
            wait = found
            continue
        if top_level and run.park_waits:
            raise ParkForCallback(wait)
        pause = POLL_SECONDS
        if deadline is not None:
            pause = max(0.0, min(pause, deadline.timestamp() - now))
        await run.clock.sleep(pause)
        found = await store.get_wait(wait_id=wait.id)
        if found is None:
            raise RuntimeFailure(ErrorName.RUNTIME, f"wait {wait.id} is gone")
        wait = found


def _expired(wait: WaitRecord, now: float) -> str:
    """Which deadline passed: the heartbeat's (if it comes first) or the timeout's."""
    beat = wait.heartbeat_at
    if (
        beat is not None
        and beat.timestamp() <= now
        and (wait.timeout_at is None or beat < wait.timeout_at)
    ):
        return ErrorName.HEARTBEAT_TIMEOUT.value
    return ErrorName.TIMEOUT.value


def answer_of(wait: WaitRecord) -> Any:
    """The state's result from an answered wait, or the error it raises for Retry/Catch."""
    match wait.status:
        case WaitStatus.SUCCEEDED | WaitStatus.RECEIVED:
            return wait.output
        case WaitStatus.FAILED:
            raise ExecutionError(wait.error or ErrorName.TASK_FAILED.value, wait.cause)
        case WaitStatus.TIMED_OUT:
            raise ExecutionError(wait.error or ErrorName.TIMEOUT.value, wait.cause)
    raise RuntimeFailure(ErrorName.RUNTIME, f"wait {wait.id} was {wait.status}")


def deadline_epoch(wait: WaitRecord) -> float | None:
    deadline = wait.deadline()
    return None if deadline is None else deadline.timestamp()
