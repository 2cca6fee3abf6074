"""`statefleet run --machine ID`: one persisted execution, printed; exit 0 / 1 / 2."""

from __future__ import annotations

from statefleet import ExecutionFilter, open_store
from tests.cli.conftest import APP, MACHINES, statefleet, statefleet_many


async def test_run_persisted_executions(db: str) -> None:
    pushed = statefleet(
        "definitions", "push", str(MACHINES / "numbers.yaml"), "--id", "numbers", db=db
    )
    assert pushed.returncode == 0, pushed.explain()
    ok, failed, no_app, missing, bad_input, both, neither = statefleet_many(
        [
            ["run", "--machine", "numbers", "--input", '{"n": 21}', "--app", APP, "--name", "n21"],
            ["run", "--machine", "numbers", "--input", '{"n": -1}', "--app", APP],
            ["run", "--machine", "numbers", "--input", '{"n": 1}'],
            ["run", "--machine", "nothing-here", "--input", "{}", "--app", APP],
            ["run", "--machine", "numbers", "--input", "{nope", "--app", APP],
            ["run", str(MACHINES / "numbers.yaml"), "--machine", "numbers"],
            ["run"],
        ],
        db=db,
    )
    assert ok.returncode == 0, ok.explain()
    record = ok.json()
    assert (record["status"], record["name"], record["state_machine_id"]) == (
        "SUCCEEDED",
        "n21",
        "numbers",
    )
    assert record["output"] == {"n": 21, "doubled": 42, "checked": True}
    assert failed.returncode == 1, failed.explain()
    assert (failed.json()["status"], failed.json()["error"]) == ("FAILED", "CheckFailed")
    assert no_app.returncode == 2
    assert "no resource registered for 'fleet:double'" in no_app.stderr
    assert missing.returncode == 2
    assert "no state machine 'nothing-here'" in missing.stderr
    assert bad_input.returncode == 2
    assert "--input is not valid JSON" in bad_input.stderr
    for done in (both, neither):
        assert done.returncode == 2
        assert "give a DEFINITION file" in done.stderr

    again = statefleet(
        "run", "--machine", "numbers", "--input", '{"n": 2}', "--app", APP, "--name", "n21", db=db
    )
    assert again.returncode == 2
    assert "duplicate execution name 'n21'" in again.stderr
    assert "Traceback" not in again.stderr

    store = await open_store(db)
    try:
        counts = await store.count_by_status(ExecutionFilter(state_machine_id="numbers"))
        assert counts == {"SUCCEEDED": 1, "FAILED": 1}
        saved = await store.get_execution(record["id"])
        assert saved is not None and saved.output == record["output"]
    finally:
        await store.close()


def test_in_memory_run_takes_an_app() -> None:
    done = statefleet("run", str(MACHINES / "numbers.yaml"), "--input", '{"n": 4}', "--app", APP)
    assert done.returncode == 0, done.explain()
    assert done.json()["output"] == {"n": 4, "doubled": 8, "checked": True}
