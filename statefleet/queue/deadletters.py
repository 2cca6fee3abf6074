"""Dead letters: jobs given up on, kept durably in the database and indexed in Redis.

A job is dead-lettered when its tries are exhausted, when its error is not retryable
(``TaskError(..., retryable=False)``, ``States.Runtime``, a missing definition) or when its
payload does not parse. An execution that ends FAILED by its own definition — a Fail state,
an error its state's own Retry gave up on — is a normal terminal result, as in local mode:
its job is neither retried nor dead-lettered. A dead-lettered execution is FAILED (if it
had not ended) with the error and cause, and a
:class:`~statefleet.statemachine.protocols.DeadLetterRecord` is written to the
``dead_letters`` table — no cap, no TTL — and indexed in Redis (``P:dead``,
``P:dead:info``) for the UI. From there a dead letter is listed, retried (redriven from its
failed state and enqueued again) or purged, by id or by filter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from statefleet.errors import StatefleetError
from statefleet.statemachine.lifecycle import TERMINAL, ExecutionStatus
from statefleet.statemachine.protocols import (
    Checkpoint,
    DeadLetterRecord,
    ExecutionRecord,
    Store,
    new_id,
)

if TYPE_CHECKING:
    from statefleet.queue.client import QueueClient
    from statefleet.statemachine.persistent import PersistentStateMachine

__all__ = ["DeadLetters", "RetryReport", "fail_execution", "record_dead_letter"]

logger = logging.getLogger(__name__)

S = ExecutionStatus
ACTIVE = (S.QUEUED.value, S.RUNNING.value, S.WAITING.value)


async def fail_execution(store: Store, execution_id: str, error: str, cause: str | None) -> bool:
    """Mark an execution that has not ended FAILED (version-guarded; retried on a race).
    Returns False if it had ended or does not exist."""
    for _ in range(5):
        current = await store.get_execution(execution_id)
        if current is None or current.status not in ACTIVE:
            return False
        checkpoint = Checkpoint(
            execution_id=execution_id,
            expected_version=current.row_version,
            owner=None,
            status=S.FAILED.value,
            current_state=current.current_state,
            data=current.data,
            variables=dict(current.variables or {}),
            error=error,
            cause=cause,
            ended_at=datetime.now(UTC),
            release_lease=True,
        )
        if (await store.write_checkpoints([checkpoint]))[0]:
            return True
    return False


async def record_dead_letter(
    store: Store,
    client: QueueClient,
    *,
    execution_id: str | None,
    error: str,
    cause: str | None,
    job_id: str | None = None,
    queue: str | None = None,
    tries: int = 0,
    payload: str | None = None,
    execution: ExecutionRecord | None = None,
) -> DeadLetterRecord:
    """Fail the execution (if it has not ended) and keep a dead letter for its job."""
    if execution_id is not None:
        await fail_execution(store, execution_id, error, cause)
        if execution is None:
            execution = await store.get_execution(execution_id)
    record = DeadLetterRecord(
        id=new_id(),
        execution_id=execution_id if execution is not None else None,
        state_machine_id=execution.state_machine_id if execution is not None else None,
        batch_id=execution.batch_id if execution is not None else None,
        queue=queue,
        job_id=job_id,
        error=error,
        cause=cause,
        tries=tries,
        payload=payload,
        created_at=datetime.now(UTC),
    )
    if execution is None and execution_id is not None:
        record.cause = f"{cause} (execution {execution_id!r} does not exist)"
    await store.add_dead_letters([record])
    await index_dead_letters(client, [record])
    logger.warning(
        "dead letter %s: job %s (execution %s) %s: %s",
        record.id,
        job_id,
        execution_id,
        error,
        cause,
        extra={"execution_id": execution_id},
    )
    return record


async def index_dead_letters(client: QueueClient, records: Sequence[DeadLetterRecord]) -> None:
    if not records:
        return
    redis = await client.redis()
    async with redis.pipeline(transaction=False) as pipe:
        for record in records:
            moment = record.created_at or datetime.now(UTC)
            pipe.zadd(client.keys.dead, {record.id: int(moment.timestamp() * 1000)})
            pipe.hset(client.keys.dead_info, record.id, json.dumps(_summary(record)))
        await pipe.execute()


def _summary(record: DeadLetterRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "execution_id": record.execution_id,
        "state_machine_id": record.state_machine_id,
        "batch_id": record.batch_id,
        "queue": record.queue,
        "job_id": record.job_id,
        "error": record.error,
        "cause": record.cause,
        "tries": record.tries,
        "created_at": record.created_at.isoformat() if record.created_at else None,
    }


@dataclass
class RetryReport:
    """What ``dlq retry`` did."""

    retried: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class DeadLetters:
    """List, retry and purge dead letters (the ``statefleet dlq`` commands)."""

    def __init__(
        self,
        store: Store,
        client: QueueClient,
        *,
        machines: dict[str, PersistentStateMachine] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self._machines = machines if machines is not None else {}

    async def find(
        self,
        ids: Sequence[str] = (),
        *,
        state_machine_id: str | None = None,
        batch_id: str | None = None,
        error: str | None = None,
        limit: int | None = None,
    ) -> list[DeadLetterRecord]:
        """From the database (the durable record)."""
        return await self.store.list_dead_letters(
            ids=ids, state_machine_id=state_machine_id, batch_id=batch_id, error=error, limit=limit
        )

    async def _machine(self, machine_id: str) -> PersistentStateMachine:
        from statefleet.statemachine.persistent import PersistentStateMachine

        found = self._machines.get(machine_id)
        if found is None:
            found = await PersistentStateMachine.load(machine_id, store=self.store)
            self._machines[machine_id] = found
        return found

    async def retry(
        self,
        ids: Sequence[str] = (),
        *,
        state_machine_id: str | None = None,
        batch_id: str | None = None,
        error: str | None = None,
    ) -> RetryReport:
        """Redrive each dead letter's execution from its failed state, enqueue it again and
        remove the dead letter."""
        report = RetryReport()
        selected = await self.find(
            ids, state_machine_id=state_machine_id, batch_id=batch_id, error=error
        )
        done: list[DeadLetterRecord] = []
        for letter in selected:
            if letter.execution_id is None or letter.state_machine_id is None:
                report.skipped[letter.id] = "names no execution (purge it instead)"
                continue
            try:
                machine = await self._machine(letter.state_machine_id)
                record = await machine.get(letter.execution_id)
                if record.status in TERMINAL:
                    if record.status == S.SUCCEEDED:
                        report.skipped[letter.id] = "its execution SUCCEEDED since"
                        done.append(letter)
                        continue
                    record = await machine.prepare_redrive(letter.execution_id)
            except StatefleetError as exc:
                report.skipped[letter.id] = str(exc)
                continue
            await self.client.enqueue([record], queue=letter.queue or "default")
            report.retried.append(letter.id)
            done.append(letter)
        await self._delete(done)
        return report

    async def purge(
        self,
        ids: Sequence[str] = (),
        *,
        state_machine_id: str | None = None,
        batch_id: str | None = None,
        error: str | None = None,
    ) -> int:
        selected = await self.find(
            ids, state_machine_id=state_machine_id, batch_id=batch_id, error=error
        )
        return await self._delete(selected)

    async def _delete(self, letters: Sequence[DeadLetterRecord]) -> int:
        if not letters:
            return 0
        ids = [letter.id for letter in letters]
        count = await self.store.delete_dead_letters(ids)
        redis = await self.client.redis()
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.client.keys.dead, *ids)
            pipe.hdel(self.client.keys.dead_info, *ids)
            await pipe.execute()
        return count
