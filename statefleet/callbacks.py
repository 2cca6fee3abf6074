"""Answering waiting executions: task tokens and messages (``send_task_success``,
``send_task_failure``, ``send_task_heartbeat``, ``send_message``).

An answer is one guarded update of the wait's row (``WHERE status = 'WAITING'``): of two
answers racing for one wait, exactly one wins; the other gets ``already_answered``. Then
the execution is resumed:

* **distributed** (a queue client: ``client=``, the machine's, or the App's settings name
  a Redis): its job is created or brought forward to now (a deferred timeout job is thus
  replaced by the resume), and a worker continues it;
* **local**: it continues in this process (the call returns once it has ended or parked
  again), when the resources of its machine are at hand (``app=`` or ``machine=``);
  otherwise the answer is kept and the execution continues at its next resume
  (``statefleet executions resume``).

Every function takes the store as ``store=`` (or opens the one of ``app.settings``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from statefleet.app import App
from statefleet.errors import StaleExecutionError, StatefleetError
from statefleet.queue.client import QueueClient
from statefleet.statemachine.lifecycle import TERMINAL, ExecutionStatus
from statefleet.statemachine.persistent import PersistentStateMachine
from statefleet.statemachine.protocols import MessageRecord, Store, WaitRecord, WaitStatus
from statefleet.store import open_store

__all__ = [
    "CallbackResult",
    "send_message",
    "send_task_failure",
    "send_task_heartbeat",
    "send_task_success",
]

logger = logging.getLogger(__name__)

S = ExecutionStatus

#: Outcomes that mean "your answer was taken".
ACCEPTED = frozenset({"resumed", "queued", "answered", "heartbeat", "kept"})


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """What came of an answer.

    ``outcome``: ``resumed`` (continued in this process), ``queued`` (woken on the queue),
    ``answered`` (recorded; continues at its next resume), ``heartbeat`` (deadline pushed),
    ``kept`` (a message nothing waited for, kept for late waiters) — or, refused:
    ``already_answered``, ``unknown_token``, ``no_waiter``."""

    outcome: str
    detail: str
    execution_ids: tuple[str, ...] = ()
    statuses: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.outcome in ACCEPTED

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "accepted": self.accepted,
            "detail": self.detail,
            "execution_ids": list(self.execution_ids),
            "statuses": dict(self.statuses),
        }


async def send_task_success(
    token: str,
    output: Any = None,
    *,
    store: Store | None = None,
    app: App | None = None,
    client: QueueClient | None = None,
    machine: PersistentStateMachine | None = None,
) -> CallbackResult:
    """Answer a ``.waitForTaskToken`` Task: ``output`` becomes its result."""
    return await _answer_token(
        token, WaitStatus.SUCCEEDED, output, None, None, store, app, client, machine
    )


async def send_task_failure(
    token: str,
    error: str | None = None,
    cause: str | None = None,
    *,
    store: Store | None = None,
    app: App | None = None,
    client: QueueClient | None = None,
    machine: PersistentStateMachine | None = None,
) -> CallbackResult:
    """Fail a ``.waitForTaskToken`` Task with ``error`` (default ``States.TaskFailed``) and
    ``cause``: its Retry and Catch apply as to any task failure."""
    if error is not None and not isinstance(error, str):
        raise ValueError(f"error must be a string, got {type(error).__name__}")
    if cause is not None and not isinstance(cause, str):
        raise ValueError(f"cause must be a string, got {type(cause).__name__}")
    return await _answer_token(
        token,
        WaitStatus.FAILED,
        None,
        error or "States.TaskFailed",
        cause,
        store,
        app,
        client,
        machine,
    )


async def send_task_heartbeat(
    token: str,
    *,
    store: Store | None = None,
    app: App | None = None,
) -> CallbackResult:
    """Tell a waiting ``.waitForTaskToken`` Task its work goes on: its HeartbeatSeconds
    deadline starts again from now."""
    _check_token(token)
    async with _store(store, app) as db:
        wait = await db.heartbeat_wait(token, now=datetime.now(UTC))
        if wait is None:
            return await _refused_token(db, token)
        beat = wait.heartbeat_at.isoformat() if wait.heartbeat_at else "none (no HeartbeatSeconds)"
        return CallbackResult(
            "heartbeat",
            f"execution {wait.execution_id} waits on; heartbeat deadline {beat}",
            (wait.execution_id,),
        )


async def send_message(
    correlation_key: str,
    correlation_value: Any,
    payload: Any = None,
    *,
    keep_for: float | None = None,
    store: Store | None = None,
    app: App | None = None,
    client: QueueClient | None = None,
    machine: PersistentStateMachine | None = None,
) -> CallbackResult:
    """Answer every Message state waiting for ``correlation_key`` with
    ``correlation_value``: ``payload`` becomes its result. If nothing waits, the result is
    ``no_waiter`` — or, with ``keep_for`` seconds, the message is kept that long and
    taken by the first Message state that starts waiting for it (``kept``)."""
    if not isinstance(correlation_key, str) or not correlation_key:
        raise ValueError("correlation_key must be a non-empty string")
    if keep_for is not None and keep_for <= 0:
        raise ValueError(f"keep_for must be a positive number of seconds, got {keep_for!r}")
    async with _store(store, app) as db:
        now = datetime.now(UTC)
        waits = await db.answer_messages(correlation_key, correlation_value, payload, now=now)
        if not waits:
            if keep_for is None:
                return CallbackResult(
                    "no_waiter",
                    f"no execution waits for {correlation_key}={_show(correlation_value)}",
                )
            expires = now + timedelta(seconds=keep_for)
            await db.keep_message(
                MessageRecord(
                    id=str(uuid.uuid4()),
                    correlation_key=correlation_key,
                    correlation_value=correlation_value,
                    payload=payload,
                    created_at=now,
                    expires_at=expires,
                )
            )
            return CallbackResult(
                "kept",
                f"no execution waits for {correlation_key}={_show(correlation_value)}; the "
                f"message is kept until {expires.isoformat()} for a late waiter",
            )
        return await _resume(db, waits, app, client, machine)


# ---------------------------------------------------------------- helpers


def _check_token(token: object) -> None:
    if not isinstance(token, str) or not token:
        raise ValueError("the task token must be a non-empty string")


def _show(value: Any) -> str:
    import json

    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


@asynccontextmanager
async def _store(store: Store | None, app: App | None) -> AsyncIterator[Store]:
    if store is not None:
        yield store
        return
    settings = app.settings if app is not None else None
    if settings is None:
        opened = await open_store()
    else:
        opened = await open_store(settings.database_url, **settings.store_options())
    try:
        yield opened
    finally:
        await opened.close()


async def _answer_token(
    token: str,
    status: str,
    output: Any,
    error: str | None,
    cause: str | None,
    store: Store | None,
    app: App | None,
    client: QueueClient | None,
    machine: PersistentStateMachine | None,
) -> CallbackResult:
    _check_token(token)
    if store is None and machine is not None:
        store = machine.store
    async with _store(store, app) as db:
        wait = await db.get_wait(token=token)
        if wait is None or wait.kind != "task":
            return await _refused_token(db, token)
        answered = await db.answer_wait(
            wait.id, status=status, output=output, error=error, cause=cause, now=datetime.now(UTC)
        )
        if answered is None:
            return await _refused_token(db, token)
        return await _resume(db, [answered], app, client, machine)


async def _refused_token(db: Store, token: str) -> CallbackResult:
    wait = await db.get_wait(token=token)
    if wait is None or wait.kind != "task":
        return CallbackResult("unknown_token", "no task waits for this token")
    if wait.status == WaitStatus.WAITING:  # open, but its execution has ended
        record = await db.get_execution(wait.execution_id)
        status = record.status if record is not None else "gone"
        return CallbackResult(
            "already_answered",
            f"execution {wait.execution_id} no longer waits: it is {status}",
            (wait.execution_id,),
        )
    when = wait.answered_at.isoformat() if wait.answered_at else "earlier"
    if wait.status == WaitStatus.TIMED_OUT:
        what = f"the task timed out first ({wait.error} at {when})"
    elif wait.status == WaitStatus.CANCELLED:
        what = "the task was left before it was answered (a retry or a new wait replaced it)"
    else:
        what = f"this token was already answered ({wait.status} at {when})"
    return CallbackResult(
        "already_answered",
        f"{what}; execution {wait.execution_id} does not wait for it any more",
        (wait.execution_id,),
    )


def _queue_client(
    client: QueueClient | None, app: App | None, machine: PersistentStateMachine | None
) -> QueueClient | None:
    if client is not None:
        return client
    if machine is not None and machine.get_queue_client() is not None:
        found: QueueClient = machine.get_queue_client()
        return found
    if app is not None and app.settings.resolved_redis_url() is not None:
        return QueueClient.from_settings(app.settings)
    return None


async def _resume(
    db: Store,
    waits: Sequence[WaitRecord],
    app: App | None,
    client: QueueClient | None,
    machine: PersistentStateMachine | None,
) -> CallbackResult:
    ids = tuple(w.execution_id for w in waits)
    queue_client = _queue_client(client, app, machine)
    if queue_client is not None:
        own = queue_client is not client and (
            machine is None or queue_client is not machine.get_queue_client()
        )
        try:
            for wait in waits:
                record = await db.get_execution(wait.execution_id)
                if record is not None and record.status not in TERMINAL:
                    await queue_client.wake(record, queue=wait.queue)
        finally:
            if own:
                await queue_client.close()
        return CallbackResult("queued", f"resumed on the queue: {', '.join(ids)}", ids)
    statuses: dict[str, str] = {}
    running: list[str] = []
    machines: dict[str, PersistentStateMachine | None] = {}
    for wait in waits:
        record = await db.get_execution(wait.execution_id)
        if record is None or record.status != S.WAITING:
            # not parked (yet): the runner that holds it takes the answer as it parks (or,
            # in a Map/Parallel branch, as it polls); never claim it from under that runner
            running.append(wait.execution_id)
            continue
        runner = await _local_machine(db, wait.state_machine_id, app, machine, machines)
        if runner is None:
            continue
        try:
            final = await runner.resume(wait.execution_id)
        except StaleExecutionError:  # taken meanwhile: its runner has the answer
            running.append(wait.execution_id)
            continue
        statuses[wait.execution_id] = final.status
    if not statuses:
        if running and len(running) == len(ids):
            return CallbackResult(
                "answered",
                f"answer recorded for {', '.join(ids)}; the runner that holds it takes it",
                ids,
            )
        return CallbackResult(
            "answered",
            f"answer recorded for {', '.join(ids)}; no resources here to run it: it continues "
            "at its next resume (statefleet executions resume --app ..., or a worker)",
            ids,
        )
    shown = ", ".join(f"{k} ({v})" for k, v in statuses.items())
    return CallbackResult("resumed", f"resumed here: {shown}", ids, statuses)


async def _local_machine(
    db: Store,
    machine_id: str,
    app: App | None,
    machine: PersistentStateMachine | None,
    cache: dict[str, PersistentStateMachine | None],
) -> PersistentStateMachine | None:
    if machine is not None and machine.machine_id == machine_id:
        return machine
    if machine_id in cache:
        return cache[machine_id]
    found: PersistentStateMachine | None = None
    if app is not None:
        try:
            found = await PersistentStateMachine.load(
                machine_id,
                store=db,
                resources=app.resources,
                transformers=app.transformers,
                lease_seconds=app.settings.lease_seconds,
            )
            found.statemachine.check_resources(found.resources)
        except StatefleetError as exc:
            logger.warning("cannot resume executions of %s here: %s", machine_id, exc)
            found = None
    cache[machine_id] = found
    return found
