"""Callbacks in local mode (no queue), on SQLite and PostgreSQL: task tokens, the Message
state, timeouts, exactly-once answers, kept messages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from statefleet import (
    BatchOptions,
    PersistentStateMachine,
    send_message,
    send_task_failure,
    send_task_heartbeat,
    send_task_success,
)
from statefleet.store import SQLStore
from tests.callbacks.machines import APPROVAL, Inbox, approval, open_wait_of, payment, until_status


async def approvals(store: SQLStore, inbox: Any, definition: Any = None) -> PersistentStateMachine:
    return await PersistentStateMachine.create(
        definition or APPROVAL,
        machine_id="approvals",
        store=store,
        resources={"lambda:invoke": inbox},
    )


async def test_approve_by_token(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox)
    parked = await sm.execute({"order": 42})
    assert parked.status == "WAITING"
    assert parked.current_state == "Ask"
    assert len(inbox.tokens) == 1
    token = inbox.tokens[0]
    assert inbox.payloads[0]["order"] == 42
    assert inbox.contexts[0].token == token  # also in the callable's context
    wait = await open_wait_of(store, parked.id)
    assert (wait.kind, wait.state, wait.token) == ("task", "Ask", token)

    result = await send_task_success(token, {"by": "ada"}, store=store, machine=sm)
    assert result.outcome == "resumed"
    assert result.execution_ids == (parked.id,)
    done = await sm.get(parked.id)
    assert done.status == "SUCCEEDED"
    assert done.output == {"order": 42, "approval": {"by": "ada"}, "outcome": "approved"}
    assert await store.list_waits(execution_id=parked.id) == []  # nothing open any more
    history = [(h.state, h.status) for h in await sm.history(parked.id)]
    assert history == [("Ask", "SUCCEEDED"), ("Approved", "SUCCEEDED")]

    again = await send_task_success(token, {"by": "bob"}, store=store, machine=sm)
    assert again.outcome == "already_answered"
    assert not again.accepted
    assert "already answered" in again.detail
    assert (await sm.get(parked.id)).output["approval"] == {"by": "ada"}


async def test_failure_by_token_is_caught(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox)
    parked = await sm.execute({"order": 1})
    result = await send_task_failure(
        inbox.tokens[0], "Rejected", "over budget", store=store, machine=sm
    )
    assert result.outcome == "resumed"
    done = await sm.get(parked.id)
    assert done.status == "SUCCEEDED"
    assert done.output["outcome"] == "refused"
    assert done.output["rejection"] == {"Error": "Rejected", "Cause": "over budget"}


async def test_failure_by_token_uncaught_fails_the_execution(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox)
    parked = await sm.execute({"order": 1})
    await send_task_failure(inbox.tokens[0], cause="no reason", store=store, machine=sm)
    done = await sm.get(parked.id)
    assert (done.status, done.error, done.cause) == ("FAILED", "States.TaskFailed", "no reason")


async def test_failure_by_token_is_retried_with_a_new_token(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox, approval(retry=True))
    parked = await sm.execute({"order": 5})
    await send_task_failure(inbox.tokens[0], "Flaky", store=store, machine=sm)
    retried = await sm.get(parked.id)
    assert retried.status == "WAITING"
    assert len(inbox.tokens) == 2 and inbox.tokens[0] != inbox.tokens[1]
    assert inbox.contexts[1].attempt == 1
    wait = await open_wait_of(store, parked.id)
    assert (wait.token, wait.attempt, wait.retry_counts) == (inbox.tokens[1], 1, [1])
    # the retry budget (MaxAttempts 1) survives the park: a second Flaky is not retried
    await send_task_failure(inbox.tokens[1], "Flaky", store=store, machine=sm)
    done = await sm.get(parked.id)
    assert (done.status, done.error) == ("FAILED", "Flaky")


async def test_answer_sent_by_the_callable_itself(store: SQLStore) -> None:
    """A callable may answer before the execution has parked: nothing is lost."""

    async def instant(payload: dict[str, Any]) -> None:
        result = await send_task_success(payload["token"], "at once", store=store)
        assert result.outcome == "answered"  # recorded; the running execution takes it

    sm = await approvals(store, instant)
    done = await sm.execute({"order": 2})
    assert done.status == "SUCCEEDED"
    assert done.output["approval"] == "at once"


async def test_heartbeat_timeout(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox, approval(heartbeat=1, timeout=60))
    parked = await sm.execute({"order": 3})
    assert parked.status == "WAITING"
    assert parked.wake_at is not None  # the heartbeat deadline
    done = await until_status(store, parked.id, "SUCCEEDED", "FAILED")
    assert done.output["outcome"] == "unanswered"
    assert done.output["timeout"]["Error"] == "States.HeartbeatTimeout"
    late = await send_task_success(inbox.tokens[0], "too late", store=store, machine=sm)
    assert late.outcome == "already_answered"
    assert "timed out first (States.HeartbeatTimeout" in late.detail


async def test_heartbeats_keep_the_task_alive(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox, approval(heartbeat=2, timeout=60))
    parked = await sm.execute({"order": 4})
    token = inbox.tokens[0]
    for _ in range(10):  # 3 s of heartbeats, past the 2 s HeartbeatSeconds
        beat = await send_task_heartbeat(token, store=store)
        assert beat.outcome == "heartbeat"
        await asyncio.sleep(0.3)
    assert (await sm.get(parked.id)).status == "WAITING"
    await send_task_success(token, "ok", store=store, machine=sm)
    done = await sm.get(parked.id)
    assert done.output["outcome"] == "approved"


async def test_task_timeout(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox, approval(timeout=1))
    parked = await sm.execute({"order": 6})
    done = await until_status(store, parked.id, "SUCCEEDED", "FAILED")
    assert done.output["timeout"]["Error"] == "States.Timeout"


async def test_message_before_timeout(store: SQLStore) -> None:
    sm = await PersistentStateMachine.create(payment(), machine_id="pay", store=store)
    parked = await sm.execute({"order": "A-1"})
    assert parked.status == "WAITING"
    wait = await open_wait_of(store, parked.id)
    assert (wait.kind, wait.correlation_key, wait.correlation_value) == (
        "message",
        "payment",
        "A-1",
    )
    other = await send_message("payment", "A-2", {"amount": 1}, store=store, machine=sm)
    assert other.outcome == "no_waiter"
    result = await send_message("payment", "A-1", {"amount": 10}, store=store, machine=sm)
    assert result.outcome == "resumed"
    done = await sm.get(parked.id)
    assert done.output == {"order": "A-1", "payment": {"amount": 10}, "outcome": "paid"}


async def test_timeout_before_message_takes_timeout_path(store: SQLStore) -> None:
    sm = await PersistentStateMachine.create(payment(timeout=1), machine_id="pay", store=store)
    parked = await sm.execute({"order": 7})
    done = await until_status(store, parked.id, "SUCCEEDED", "FAILED")
    assert done.output == {"order": 7, "outcome": "late"}
    late = await send_message("payment", 7, {"amount": 10}, store=store, machine=sm)
    assert late.outcome == "no_waiter"
    assert (await sm.get(parked.id)).output == {"order": 7, "outcome": "late"}


async def test_message_timeout_without_timeout_path_is_an_error(store: SQLStore) -> None:
    definition = payment(timeout=1)
    del definition["States"]["AwaitPayment"]["TimeoutPath"]
    definition["States"].pop("Late")
    sm = await PersistentStateMachine.create(definition, machine_id="pay", store=store)
    parked = await sm.execute({"order": 8})
    done = await until_status(store, parked.id, "FAILED")
    assert done.error == "States.Timeout"


async def test_kept_message_is_taken_by_a_late_waiter(store: SQLStore) -> None:
    sm = await PersistentStateMachine.create(payment(), machine_id="pay", store=store)
    early = await send_message("payment", 9, {"amount": 3}, keep_for=60, store=store)
    assert early.outcome == "kept"
    assert [m.correlation_value for m in await store.list_messages()] == [9]
    done = await sm.execute({"order": 9})
    assert done.status == "SUCCEEDED"
    assert done.output["payment"] == {"amount": 3}
    assert await store.list_messages() == []  # taken once
    second = await sm.execute({"order": 9})
    assert second.status == "WAITING"


async def test_racing_senders_resume_each_waiting_execution_once(store: SQLStore) -> None:
    """50 concurrent senders, 5 per correlation value, on 10 waiting executions."""
    sm = await PersistentStateMachine.create(payment(), machine_id="pay", store=store)
    parked = [await sm.execute({"order": n}) for n in range(10)]
    assert {p.status for p in parked} == {"WAITING"}

    async def sender(n: int) -> Any:
        return await send_message("payment", n % 10, {"sender": n}, store=store, machine=sm)

    results = await asyncio.gather(*(sender(n) for n in range(50)))
    resumed = [r for r in results if r.outcome == "resumed"]
    assert len(resumed) == 10
    assert sorted(r.execution_ids[0] for r in resumed) == sorted(p.id for p in parked)
    assert {r.outcome for r in results} == {"resumed", "no_waiter"}
    for record in parked:
        done = await sm.get(record.id)
        assert done.status == "SUCCEEDED"
        assert done.output["payment"]["sender"] % 10 == record.input["order"]
        history = [h.state for h in await sm.history(record.id)]
        assert history == ["AwaitPayment", "Paid"]  # resumed exactly once


async def test_racing_token_answers(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox)
    parked = await sm.execute({"order": 11})
    token = inbox.tokens[0]
    results = await asyncio.gather(
        *(send_task_success(token, {"n": n}, store=store, machine=sm) for n in range(5)),
        send_task_failure(token, "Rejected", store=store, machine=sm),
    )
    assert sorted(r.outcome for r in results) == ["already_answered"] * 5 + ["resumed"]
    assert (await sm.get(parked.id)).status == "SUCCEEDED"


async def test_unknown_token_and_bad_arguments(store: SQLStore) -> None:
    result = await send_task_success("no-such-token", 1, store=store)
    assert result.outcome == "unknown_token"
    beat = await send_task_heartbeat("no-such-token", store=store)
    assert beat.outcome == "unknown_token"
    with pytest.raises(ValueError, match="token"):
        await send_task_success("", store=store)
    with pytest.raises(ValueError, match="correlation_key"):
        await send_message("", 1, store=store)
    with pytest.raises(ValueError, match="keep_for"):
        await send_message("k", 1, keep_for=0, store=store)


async def test_cancelled_execution_refuses_answers(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox)
    parked = await sm.execute({"order": 12})
    assert await sm.cancel(parked.id)
    result = await send_task_success(inbox.tokens[0], 1, store=store, machine=sm)
    assert result.outcome == "already_answered"
    assert "ABORTED" in result.detail
    assert await store.list_waits() == []


async def test_answer_without_resources_is_kept_for_the_next_resume(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox)
    parked = await sm.execute({"order": 13})
    result = await send_task_success(inbox.tokens[0], "later", store=store)
    assert result.outcome == "answered"
    assert (await sm.get(parked.id)).status == "WAITING"
    done = await sm.resume(parked.id)
    assert done.status == "SUCCEEDED"
    assert done.output["approval"] == "later"


async def test_token_task_inside_a_parallel_branch_waits_in_process(store: SQLStore) -> None:
    """A branch has no checkpoint of its own: its callback wait polls instead of parking."""
    inbox = Inbox()
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "Ask", "States": {"Ask": approval()["States"]["Ask"]}}],
                "End": True,
            }
        },
    }
    branch = definition["States"]["Both"]["Branches"][0]["States"]["Ask"]
    branch.pop("Catch")
    branch["End"] = True
    branch.pop("Next")
    sm = await approvals(store, inbox, definition)
    running = asyncio.create_task(sm.execute({"order": 14}))
    wait = None
    async with asyncio.timeout(20):
        while wait is None:
            await asyncio.sleep(0.02)
            waits = await store.list_waits()
            wait = waits[0] if waits else None
    assert wait.token == inbox.tokens[0]
    result = await send_task_success(wait.token, "in branch", store=store, machine=sm)
    assert result.outcome == "answered"  # the running branch takes it: not resumed twice
    done = await asyncio.wait_for(running, 20)
    assert done.status == "SUCCEEDED"
    assert done.output == [{"order": 14, "approval": "in branch"}]


async def test_machine_timeout_ends_a_parked_wait(store: SQLStore) -> None:
    inbox = Inbox()
    definition = approval()
    definition["TimeoutSeconds"] = 1
    sm = await approvals(store, inbox, definition)
    parked = await sm.execute({"order": 15})
    assert parked.status == "WAITING"
    assert parked.wake_at is not None  # woken at the machine's deadline
    done = await until_status(store, parked.id, "TIMED_OUT")
    assert done.error == "States.Timeout"
    late = await send_task_success(inbox.tokens[0], 1, store=store, machine=sm)
    assert late.outcome == "already_answered"
    assert "TIMED_OUT" in late.detail


async def test_local_batch_ends_when_its_parked_executions_are_answered(store: SQLStore) -> None:
    inbox = Inbox()
    sm = await approvals(store, inbox)
    batch = await sm.execute_bulk(
        [{"order": n} for n in range(3)], BatchOptions(name="approvals", stop_on_error=True)
    )
    counts: dict[str, int] = {}
    async with asyncio.timeout(20):
        while counts != {"WAITING": 3}:
            await asyncio.sleep(0.05)
            counts = await batch.counts()
    await asyncio.sleep(0.3)
    assert not batch.done  # parked is neither failed (stop_on_error) nor ended
    first, *rest = inbox.tokens
    result = await send_task_success(first, "ok", store=store, machine=sm)
    assert result.outcome == "resumed"
    seen: dict[str, int] = {}
    async with asyncio.timeout(20):  # the handle's counters follow the store meanwhile
        while seen != {"SUCCEEDED": 1}:
            await asyncio.sleep(0.05)
            seen = dict(batch.counters.by_status)
    assert not batch.done
    for token in rest:
        result = await send_task_success(token, "ok", store=store, machine=sm)
        assert result.outcome == "resumed"
    record = await asyncio.wait_for(batch.wait(), 20)
    assert record.status == "SUCCEEDED"
    assert record.counters == {"SUCCEEDED": 3}


def test_tokens_never_start_like_an_option() -> None:
    """A token is passed on command lines (``statefleet task success TOKEN``): one starting
    with ``-`` would be taken for an option."""
    from statefleet.statemachine.callbacks import new_token

    tokens = [new_token() for _ in range(5000)]  # ~1 in 64 would start with "-" otherwise
    assert not any(t.startswith("-") for t in tokens)
    assert {len(t) for t in tokens} == {43} and len(set(tokens)) == len(tokens)
