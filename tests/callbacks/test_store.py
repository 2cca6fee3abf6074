"""The store's callback primitives on SQLite and PostgreSQL: one open wait per execution,
answers as guarded updates (exactly one wins), consumption with the checkpoint, kept
messages taken once, waits purged with their execution."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from statefleet.statemachine.protocols import Checkpoint, MessageRecord, WaitRecord, new_id
from statefleet.store import SQLStore
from tests.store.conftest import execution

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def wait(execution_id: str, state: str = "Ask", **fields: object) -> WaitRecord:
    fields.setdefault("kind", "task")
    if fields["kind"] == "task":
        fields.setdefault("token", new_id())
    return WaitRecord(
        id=new_id(),
        execution_id=execution_id,
        state_machine_id="m1",
        state=state,
        **fields,  # type: ignore[arg-type]
    )


async def parked(store: SQLStore) -> str:
    record = execution(status="WAITING", current_state="Ask")
    await store.create_executions([record])
    return record.id


async def test_a_new_wait_replaces_the_open_one(store: SQLStore) -> None:
    execution_id = await parked(store)
    first = await store.open_wait(wait(execution_id), now=NOW)
    second = await store.open_wait(wait(execution_id), now=NOW)
    old = await store.get_wait(wait_id=first.id)
    assert old is not None and old.status == "CANCELLED" and old.consumed_at is not None
    assert [w.id for w in await store.list_waits(execution_id=execution_id)] == [second.id]
    resumable = await store.resumable_wait(execution_id, "Ask")
    assert resumable is not None and resumable.id == second.id
    assert await store.resumable_wait(execution_id, "Other") is None


async def test_racing_answers_one_wins(store: SQLStore) -> None:
    execution_id = await parked(store)
    opened = await store.open_wait(wait(execution_id), now=NOW)
    results = await asyncio.gather(
        *(
            store.answer_wait(opened.id, status="SUCCEEDED", output={"n": n}, now=NOW)
            for n in range(8)
        )
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = await store.get_wait(token=opened.token)
    assert stored is not None and stored.output == winners[0].output
    assert await store.heartbeat_wait(opened.token or "", now=NOW) is None


async def test_answer_is_consumed_with_the_checkpoint(store: SQLStore) -> None:
    execution_id = await parked(store)
    opened = await store.open_wait(wait(execution_id), now=NOW)
    await store.answer_wait(opened.id, status="FAILED", error="E", cause="c", now=NOW)
    again = await store.resumable_wait(execution_id, "Ask")  # a crash here: the same answer
    assert again is not None and (again.status, again.error, again.output) == ("FAILED", "E", None)
    record = await store.get_execution(execution_id)
    assert record is not None
    [applied] = await store.write_checkpoints(
        [
            Checkpoint(
                execution_id=execution_id,
                expected_version=record.row_version,
                owner=None,
                status="RUNNING",
                current_state="Next",
                data={},
                variables={},
                consumed_wait=opened.id,
            )
        ]
    )
    assert applied
    assert await store.resumable_wait(execution_id, "Ask") is None


async def test_answers_refused_once_the_execution_ended(store: SQLStore) -> None:
    execution_id = await parked(store)
    opened = await store.open_wait(wait(execution_id), now=NOW)
    await store.abort_executions(execution_ids=[execution_id], now=NOW)
    assert await store.answer_wait(opened.id, status="SUCCEEDED", now=NOW) is None
    assert await store.list_waits() == []


async def test_messages_answer_every_open_wait_of_their_key_and_value(store: SQLStore) -> None:
    ids = [await parked(store) for _ in range(3)]
    for execution_id, value in zip(ids, [{"id": 1}, {"id": 1}, {"id": 2}], strict=True):
        await store.open_wait(
            wait(execution_id, kind="message", correlation_key="k", correlation_value=value),
            now=NOW,
        )
    answered = await store.answer_messages("k", {"id": 1}, {"paid": True}, now=NOW)
    assert sorted(w.execution_id for w in answered) == sorted(ids[:2])
    assert {w.status for w in answered} == {"RECEIVED"}
    assert await store.answer_messages("k", {"id": 1}, {}, now=NOW) == []
    assert await store.answer_messages("k", "{'id': 2}", {}, now=NOW) == []  # JSON, not text
    [left] = await store.list_waits(kind="message")
    assert left.execution_id == ids[2] and left.correlation_value == {"id": 2}


async def test_heartbeat_pushes_the_deadline(store: SQLStore) -> None:
    execution_id = await parked(store)
    opened = await store.open_wait(
        wait(execution_id, heartbeat_seconds=30, heartbeat_at=NOW + timedelta(seconds=30)),
        now=NOW,
    )
    later = NOW + timedelta(seconds=20)
    beat = await store.heartbeat_wait(opened.token or "", now=later)
    assert beat is not None and beat.heartbeat_at == later + timedelta(seconds=30)
    stored = await store.get_wait(wait_id=opened.id)
    assert stored is not None and stored.deadline() == later + timedelta(seconds=30)


async def test_kept_message_is_taken_once_before_it_expires(store: SQLStore) -> None:
    now = datetime.now(UTC)
    for payload, expires in (({"n": 0}, now - timedelta(seconds=1)), ({"n": 1}, None)):
        await store.keep_message(
            MessageRecord(
                id=new_id(),
                correlation_key="k",
                correlation_value=7,
                payload=payload,
                created_at=now,
                expires_at=expires or now + timedelta(minutes=5),
            )
        )
    assert [m.payload for m in await store.list_messages()] == [{"n": 1}]
    first, second = await parked(store), await parked(store)
    took = await store.open_wait(
        wait(first, kind="message", correlation_key="k", correlation_value=7), now=now
    )
    assert (took.status, took.output) == ("RECEIVED", {"n": 1})
    waits = await store.open_wait(
        wait(second, kind="message", correlation_key="k", correlation_value=7), now=now
    )
    assert waits.status == "WAITING"
    assert await store.list_messages() == []
    # the expired one went as the next was kept; the taken one stays (consumed) until its
    # expiry, and is purged only once that has passed
    assert await store.purge_messages(now=now + timedelta(minutes=4)) == 0
    assert await store.purge_messages(now=now + timedelta(minutes=6)) == 1


async def test_waits_go_with_purged_executions(store: SQLStore) -> None:
    record = execution(status="SUCCEEDED", ended_at=NOW - timedelta(days=10))
    await store.create_executions([record])
    opened = await store.open_wait(wait(record.id), now=NOW)
    assert await store.purge_executions(ended_before=NOW) == 1
    assert await store.get_wait(wait_id=opened.id) is None
