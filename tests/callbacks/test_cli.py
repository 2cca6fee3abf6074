"""`statefleet task success|failure|heartbeat|list` and `statefleet message send`, each
command in a process of its own against a SQLite store (local mode: the command resumes the
execution with the App's resources)."""

from __future__ import annotations

import json
from pathlib import Path

from statefleet import PersistentStateMachine, open_store
from statefleet.statemachine.protocols import ExecutionRecord
from tests.callbacks import cli_app
from tests.callbacks.machines import APPROVAL, payment
from tests.cli.conftest import sqlite_url, statefleet

APP = "tests.callbacks.cli_app:app"


async def parked(db: str, definition: object, name: str, input: object) -> ExecutionRecord:
    store = await open_store(db)
    try:
        sm = await PersistentStateMachine.create(
            definition, machine_id=name, store=store, resources=cli_app.app.resources
        )
        record = await sm.execute(input)
        assert record.status == "WAITING"
        return record
    finally:
        await store.close()


async def token_of(db: str, execution_id: str) -> str:
    store = await open_store(db)
    try:
        [wait] = await store.list_waits(execution_id=execution_id)
        assert wait.token is not None
        return wait.token
    finally:
        await store.close()


async def status_of(db: str, execution_id: str) -> ExecutionRecord:
    store = await open_store(db)
    try:
        record = await store.get_execution(execution_id)
        assert record is not None
        return record
    finally:
        await store.close()


async def test_task_success_list_and_refusal(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "statefleet.db")
    record = await parked(db, APPROVAL, "approvals", {"order": 1})
    token = await token_of(db, record.id)

    listed = statefleet("task", "list", "--json", db=db)
    assert listed.returncode == 0, listed.explain()
    [wait] = listed.json()
    assert (wait["execution_id"], wait["kind"], wait["token"]) == (record.id, "task", token)
    table = statefleet("task", "list", db=db)
    assert f"token {token}" in table.stdout

    beat = statefleet("task", "heartbeat", token, db=db)
    assert beat.returncode == 0, beat.explain()
    assert beat.stdout.startswith("heartbeat:")

    done = statefleet(
        "task", "success", token, "--output", '{"by": "cli"}', "--json", "--app", APP, db=db
    )
    assert done.returncode == 0, done.explain()
    assert done.json()["outcome"] == "resumed"
    final = await status_of(db, record.id)
    assert final.status == "SUCCEEDED"
    assert final.output["approval"] == {"by": "cli"}

    again = statefleet("task", "success", token, "--app", APP, db=db)
    assert again.returncode == 1
    assert "already answered" in again.stderr
    assert "Traceback" not in again.stderr

    unknown = statefleet("task", "failure", "nope", "--error", "X", db=db)
    assert unknown.returncode == 1
    assert "unknown token" in unknown.stderr

    bad = statefleet("task", "success", token, "--output", "{not json", db=db)
    assert bad.returncode == 2
    assert "--output is not valid JSON" in bad.stderr


async def test_task_failure_goes_to_catch(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "statefleet.db")
    record = await parked(db, APPROVAL, "approvals", {"order": 2})
    token = await token_of(db, record.id)
    done = statefleet(
        "task", "failure", token, "--error", "Rejected", "--cause", "no", "--app", APP, db=db
    )
    assert done.returncode == 0, done.explain()
    final = await status_of(db, record.id)
    assert final.output["outcome"] == "refused"
    assert final.output["rejection"] == {"Error": "Rejected", "Cause": "no"}


async def test_answer_without_the_app_waits_for_a_resume(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "statefleet.db")
    record = await parked(db, APPROVAL, "approvals", {"order": 3})
    token = await token_of(db, record.id)
    done = statefleet("task", "success", token, "--output", "1", db=db)
    assert done.returncode == 0, done.explain()
    assert done.stdout.startswith("answered:")
    assert (await status_of(db, record.id)).status == "WAITING"
    resumed = statefleet("executions", "resume", record.id, "--app", APP, db=db)
    assert resumed.returncode == 0, resumed.explain()
    assert (await status_of(db, record.id)).output["approval"] == 1


async def test_message_send(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "statefleet.db")
    record = await parked(db, payment(), "pay", {"order": "A-7"})
    nothing = statefleet("message", "send", "payment", "A-8", "--payload", "{}", db=db)
    assert nothing.returncode == 1
    assert "no execution waits for payment=" in nothing.stderr
    sent = statefleet(
        "message", "send", "payment", "A-7", "--payload", '{"amount": 5}', "--app", APP, db=db
    )
    assert sent.returncode == 0, sent.explain()
    final = await status_of(db, record.id)
    assert final.output == {"order": "A-7", "payment": {"amount": 5}, "outcome": "paid"}

    kept = statefleet(
        "message", "send", "payment", "9", "--payload", "[1]", "--keep-for", "60", "--json", db=db
    )
    assert kept.returncode == 0, kept.explain()
    assert json.loads(kept.stdout)["outcome"] == "kept"
    store = await open_store(db)
    try:
        assert [m.correlation_value for m in await store.list_messages()] == [9]  # JSON value
    finally:
        await store.close()
