"""The leader's cron schedule (an injected clock: no waiting for minutes) and `statefleet
purge --older-than`: real PostgreSQL, real Redis, a real arq worker."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from statefleet.queue import QueueClient
from statefleet.queue.commands import batch_request, next_cron, run_on_schedule, start_batch
from statefleet.queue.jobs import dumps
from statefleet.statemachine.protocols import DeadLetterRecord, MessageRecord, new_id
from statefleet.store import SQLStore
from statefleet.store.repository import HISTORY, KEPT_MESSAGES
from tests.queue.conftest import RESOURCES, numbers, worker

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """A wall clock the test moves: ``sleep`` advances it (the first sleep ends half a
    second early, as a real timer may)."""

    def __init__(self, start: datetime) -> None:
        self.time = start
        self.sleeps = 0

    def now(self) -> datetime:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        early = 0.5 if self.sleeps == 1 else 0.0
        self.time += timedelta(seconds=max(0.0, seconds - early))
        await asyncio.sleep(0)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 1, 1, hour, minute, second, tzinfo=UTC)


async def test_a_schedule_runs_a_batch_at_each_time_never_early_and_survives_a_failure(
    pg: SQLStore, client: QueueClient
) -> None:
    sm = await numbers(pg, client)
    request = batch_request(
        source_machine=None,
        statuses=None,
        source_state=None,
        transformer=None,
        unique=False,
        inputs=(3, lambda: iter([{"n": 1}, {"n": 2}, {"n": 3}])),
        concurrency=10,
    )
    clock = Clock(at(11, 58, 30))
    ran: list[tuple[datetime, datetime]] = []
    errors: list[tuple[datetime, str]] = []

    async def scheduled(moment: datetime) -> None:
        ran.append((moment, clock.now()))
        if len(ran) == 2:
            raise RuntimeError("the database is away")
        batch = await start_batch(sm, request, name=f"nightly-{moment:%H%M}")
        await asyncio.wait_for(batch.wait(), 30)
        if len(ran) == 3:
            clock.time += timedelta(seconds=150)  # a run that lasted two and a half minutes

    fleet = worker(RESOURCES, pg, client)
    running = asyncio.create_task(fleet.async_run())
    try:
        count = await run_on_schedule(
            "* * * * *",
            scheduled,
            runs=5,
            on_error=lambda moment, exc: errors.append((moment, str(exc))),
            now=clock.now,
            sleep=clock.sleep,
        )
    finally:
        fleet.handle_sig(2)
        await asyncio.gather(running, return_exceptions=True)
        await fleet.close()
    assert count == 5
    times = [moment for moment, _ in ran]
    # 12:02 and 12:03 passed while the third run lasted: skipped, not caught up
    assert times == [at(11, 59), at(12, 0), at(12, 1), at(12, 4), at(12, 5)]
    assert all(started >= moment for moment, started in ran)  # never before its time
    assert errors == [(at(12, 0), "the database is away")]
    batches = {b.name: b for b in await sm.list_batches()}
    assert sorted(batches) == ["nightly-1159", "nightly-1201", "nightly-1204", "nightly-1205"]
    assert {b.status for b in batches.values()} == {"SUCCEEDED"}
    assert all(b.counters == {"SUCCEEDED": 3} for b in batches.values())  # inputs read anew


def test_cron_expressions_are_checked_with_clear_errors() -> None:
    after = at(11, 59, 59)
    assert next_cron("*/15 * * * *", after) == at(12, 0)
    assert next_cron("0 12 * * *", at(12, 0)) == at(12, 0) + timedelta(days=1)
    for expression, message in (
        ("x * * * *", "cron minute field 'x'"),
        ("0 25 * * *", "cron hour field '25' is out of range 0-23"),
        ("0 0 31 2 *", "never matches"),
        ("* * * *", "5 fields"),
    ):
        with pytest.raises(ValueError, match=message):
            next_cron(expression, after)


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "statefleet.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _env(store_postgresql_url: str, redis_url: str) -> dict[str, str]:
    return {
        "STATEFLEET_DATABASE_URL": store_postgresql_url,
        "STATEFLEET_REDIS_URL": redis_url,
        "STATEFLEET_QUEUE_PREFIX": "sf-test",
    }


async def test_the_leader_refuses_a_schedule_that_never_runs(
    tmp_path: Path, store_postgresql_url: str, redis_url: str
) -> None:
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"n": 1}\n')
    env = _env(store_postgresql_url, redis_url)
    for schedule, message in (("0 0 31 2 *", "never matches"), ("61 * * * *", "out of range")):
        code, _, err = await _cli(
            "leader", "--machine", "numbers", "--inputs", str(inputs), "--schedule", schedule,
            env=env,
        )  # fmt: skip
        assert code == 2
        assert message in err


async def test_purge_deletes_what_ended_before_the_retention_and_keeps_the_rest(
    pg: SQLStore, client: QueueClient, store_postgresql_url: str, redis_url: str
) -> None:
    sm = await numbers(pg, client)
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=10)

    def execution(status: str, ended: datetime | None) -> Any:
        record = sm.new_execution({"n": 1})
        record.status = status
        record.ended_at = ended
        record.output = {"n": 1} if status == "SUCCEEDED" else None
        return record

    old, recent, lettered, running = (
        execution("SUCCEEDED", long_ago),
        execution("SUCCEEDED", now - timedelta(hours=1)),
        execution("FAILED", long_ago),
        execution("RUNNING", None),
    )
    await pg.create_executions([old, recent, lettered, running])
    async with pg.engine.begin() as conn:  # a history row each
        await conn.execute(
            HISTORY.insert(),
            [
                {
                    "execution_id": r.id,
                    "sequence": 1,
                    "state": "Prepare",
                    "type": "Pass",
                    "status": "SUCCEEDED",
                    "input": {"n": 1},
                    "output": {"n": 1},
                    "attempt": 0,
                    "started_at": long_ago,
                    "ended_at": long_ago,
                }
                for r in (old, recent)
            ],
        )
    await pg.add_dead_letters(
        [DeadLetterRecord(id=new_id(), execution_id=lettered.id, error="Boom", tries=3)]
    )
    redis = await client.redis()
    old_result = client.keys.result(client.keys.job_id(old.id))
    new_result = client.keys.result(client.keys.job_id(recent.id))
    foreign = client.keys.result("other-fleet:x")
    await redis.set(old_result, dumps({"ft": int(long_ago.timestamp() * 1000), "s": True}))
    await redis.set(new_result, dumps({"ft": int(now.timestamp() * 1000), "s": True}))
    await redis.set(foreign, dumps({"ft": 0}))

    # kept messages go by their own expiry, not by the retention
    for key, expires in (
        ("live", now + timedelta(hours=1)),
        ("expired", now - timedelta(minutes=1)),
    ):
        await pg.keep_message(
            MessageRecord(id=new_id(), correlation_key=key, correlation_value=1, expires_at=expires)
        )

    env = _env(store_postgresql_url, redis_url)
    code, _, err = await _cli("purge", "--older-than", "soon", env=env)
    assert code == 2 and "not a duration: 'soon'" in err
    code, out, err = await _cli("purge", "--older-than", "7d", env=env)
    assert code == 0, err
    assert "purged 1 executions, 1 job results and 1 expired messages" in out
    assert [m.correlation_key for m in await pg.list_messages()] == ["live"]
    async with pg.engine.connect() as conn:  # the expired one is gone from the table
        rows = (await conn.execute(KEPT_MESSAGES.select())).all()
    assert [row.correlation_key for row in rows] == ["live"]
    assert await pg.get_execution(old.id) is None
    assert await pg.history(old.id) == []
    for kept in (recent, lettered, running):
        assert await pg.get_execution(kept.id) is not None
    assert [h.state for h in await pg.history(recent.id)] == ["Prepare"]
    assert [d.execution_id for d in await pg.list_dead_letters()] == [lettered.id]
    assert await redis.exists(old_result) == 0
    assert await redis.exists(new_result) == 1 and await redis.exists(foreign) == 1
