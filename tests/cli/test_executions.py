"""`statefleet executions list|show|history|resume|redrive|cancel`."""

from __future__ import annotations

import pytest

from statefleet import PersistentStateMachine, open_store
from tests.cli import fleet_app
from tests.cli.conftest import APP, MACHINES, statefleet, statefleet_many


@pytest.fixture
async def seeded(db: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Two SUCCEEDED, two FAILED (one only because the checker was broken) and two QUEUED
    executions of ``numbers``; their ids by name."""
    store = await open_store(db)
    try:
        sm = await PersistentStateMachine.create(
            (MACHINES / "numbers.yaml").read_text(),
            machine_id="numbers",
            store=store,
            resources=fleet_app.app.resources,
        )
        ids = {}
        for n in (1, 2):
            ids[f"ok-{n}"] = (await sm.execute({"n": n}, name=f"ok-{n}")).id
        monkeypatch.setenv(fleet_app.BROKEN, "1")
        ids["broken-3"] = (await sm.execute({"n": 3}, name="broken-3")).id
        monkeypatch.delenv(fleet_app.BROKEN)
        ids["neg-5"] = (await sm.execute({"n": -5}, name="neg-5")).id
        queued = [sm.new_execution({"n": n}, name=f"queued-{n}") for n in (7, 8)]
        await store.create_executions(queued)
        ids.update({r.name: r.id for r in queued})
        return ids
    finally:
        await store.close()


def test_list_filters_and_pages(db: str, seeded: dict[str, str]) -> None:
    (
        everything,
        failed,
        several,
        prefix,
        state,
        page,
        human,
        bad_status,
    ) = statefleet_many(
        [
            ["executions", "list", "--json"],
            ["executions", "list", "--machine", "numbers", "--status", "FAILED", "--json"],
            ["executions", "list", "--status", "failed,queued", "-s", "SUCCEEDED", "--json"],
            ["executions", "list", "--name-prefix", "ok-", "--json"],
            ["executions", "list", "--state", "Check", "--json"],
            ["executions", "list", "--limit", "2", "--json"],
            ["executions", "list", "--machine", "numbers"],
            ["executions", "list", "--status", "NOPE"],
        ],
        db=db,
    )
    names = [r["name"] for r in everything.json()]
    assert names == sorted(seeded, key=seeded.__getitem__)  # by id: creation order
    assert "more:" not in everything.stderr
    assert {r["name"] for r in failed.json()} == {"broken-3", "neg-5"}
    assert len(several.json()) == 6
    assert [r["name"] for r in prefix.json()] == ["ok-1", "ok-2"]
    assert {r["name"] for r in state.json()} == {"broken-3", "neg-5"}
    assert [r["name"] for r in page.json()] == names[:2]
    assert f"more: --after {seeded[names[1]]}" in page.stderr
    for name in names:
        assert name in human.stdout
    assert bad_status.returncode == 2
    assert "unknown status NOPE" in bad_status.stderr

    rest = statefleet("executions", "list", "--after", seeded[names[1]], "--json", db=db)
    assert [r["name"] for r in rest.json()] == names[2:]


def test_show_and_history(db: str, seeded: dict[str, str]) -> None:
    ok, failed = seeded["ok-1"], seeded["neg-5"]
    shown, shown_json, history, history_json, failed_shown, missing_show, missing_history = (
        statefleet_many(
            [
                ["executions", "show", ok],
                ["executions", "show", ok, "--json"],
                ["executions", "history", ok],
                ["executions", "history", ok, "--json"],
                ["executions", "show", failed],
                ["executions", "show", "no-such-id"],
                ["executions", "history", "no-such-id"],
            ],
            db=db,
        )
    )
    assert shown.returncode == 0, shown.explain()
    assert "SUCCEEDED" in shown.stdout and '"doubled": 2' in shown.stdout
    record = shown_json.json()
    assert (record["id"], record["status"], record["output"]) == (
        ok,
        "SUCCEEDED",
        {"n": 1, "doubled": 2, "checked": True},
    )
    assert [h["state"] for h in history_json.json()] == ["Prepare", "Double", "Check"]
    assert [h["sequence"] for h in history_json.json()] == [1, 2, 3]
    for state in ("Prepare", "Double", "Check"):
        assert state in history.stdout
    assert "CheckFailed" in failed_shown.stdout and "n=-5 is not allowed" in failed_shown.stdout
    for done in (missing_show, missing_history):
        assert done.returncode == 2
        assert "no execution 'no-such-id'" in done.stderr


def test_resume_redrive_cancel(db: str, seeded: dict[str, str]) -> None:
    redriven, still_failing, resumed, cancelled, no_app = statefleet_many(
        [
            ["executions", "redrive", seeded["broken-3"], "--app", APP, "--json"],
            ["executions", "redrive", seeded["neg-5"], "--app", APP],
            ["executions", "resume", seeded["queued-7"], "--app", APP, "--json"],
            ["executions", "cancel", seeded["queued-8"]],
            ["executions", "resume", seeded["ok-1"]],
        ],
        db=db,
    )
    assert redriven.returncode == 0, redriven.explain()
    record = redriven.json()
    assert (record["status"], record["redrive_count"]) == ("SUCCEEDED", 1)
    assert record["output"] == {"n": 3, "doubled": 6, "checked": True}
    assert still_failing.returncode == 1, still_failing.explain()
    assert "FAILED" in still_failing.stdout
    assert resumed.returncode == 0, resumed.explain()
    assert resumed.json()["output"] == {"n": 7, "doubled": 14, "checked": True}
    assert cancelled.returncode == 0, cancelled.explain()
    assert cancelled.stdout.strip() == f"execution {seeded['queued-8']} ABORTED"
    assert no_app.returncode == 2
    assert "no resource registered" in no_app.stderr

    again, redrive_succeeded, missing = statefleet_many(
        [
            ["executions", "cancel", seeded["queued-8"]],
            ["executions", "redrive", seeded["ok-1"], "--app", APP],
            ["executions", "resume", "no-such-id", "--app", APP],
        ],
        db=db,
    )
    assert again.returncode == 1
    assert "had already ended ABORTED" in again.stderr
    assert redrive_succeeded.returncode == 2
    assert "SUCCEEDED cannot redrive" in redrive_succeeded.stderr
    assert missing.returncode == 2
    assert "no execution 'no-such-id'" in missing.stderr
    for done in (again, redrive_succeeded, missing):
        assert "Traceback" not in done.stderr
