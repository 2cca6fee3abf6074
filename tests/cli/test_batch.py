"""`statefleet batch start|list|show|cancel|resume`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from statefleet import ExecutionFilter, open_store
from statefleet.store import SQLStore
from tests.cli.conftest import APP, MACHINES, start, statefleet, statefleet_many


def push(db: str, *machines: tuple[str, str]) -> None:
    for done in statefleet_many(
        [
            ["definitions", "push", str(MACHINES / f"{file}.yaml"), "--id", id]
            for file, id in machines
        ],
        db=db,
    ):
        assert done.returncode == 0, done.explain()


def jsonl(path: Path, values: list[object], *, blank_after: int | None = None) -> str:
    lines = [json.dumps(v) for v in values]
    if blank_after is not None:
        lines.insert(blank_after, "")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_bad_arguments_and_inputs_create_nothing(db: str, tmp_path: Path) -> None:
    push(db, ("numbers", "numbers"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"n": 1}\n{"n": 2}\n{"n": 3,\n{"n": 4}\n')
    good = jsonl(tmp_path / "good.jsonl", [{"n": 1}])
    (
        bad_line,
        missing_file,
        neither,
        both,
        chain_flag_with_inputs,
        bad_priority,
        no_machine,
        show_missing,
        cancel_missing,
        resume_missing,
    ) = statefleet_many(
        [
            ["batch", "start", "--machine", "numbers", "--inputs", str(bad), "--app", APP],
            ["batch", "start", "--machine", "numbers", "--inputs", "missing.jsonl", "--app", APP],
            ["batch", "start", "--machine", "numbers"],
            ["batch", "start", "--machine", "numbers", "--inputs", good, "--source-machine", "x"],
            ["batch", "start", "--machine", "numbers", "--inputs", good, "--unique"],
            ["batch", "start", "--machine", "numbers", "--inputs", good, "--priority", "11"],
            ["batch", "start", "--machine", "nothing-here", "--inputs", good, "--app", APP],
            ["batch", "show", "no-such-batch"],
            ["batch", "cancel", "no-such-batch"],
            ["batch", "resume", "no-such-batch"],
        ],
        db=db,
    )
    for done in (bad_line, missing_file, neither, both, chain_flag_with_inputs, bad_priority):
        assert done.returncode == 2, done.explain()
        assert "Traceback" not in done.stderr
    assert f"{bad}, line 3: not valid JSON" in bad_line.stderr
    assert "cannot read inputs file 'missing.jsonl'" in missing_file.stderr
    assert "give either --source-machine ID" in neither.stderr
    assert "give either --source-machine ID" in both.stderr
    assert "need --source-machine" in chain_flag_with_inputs.stderr
    assert "priority number must be between 0 and 10" in bad_priority.stderr
    assert no_machine.returncode == 2
    assert "no state machine 'nothing-here'" in no_machine.stderr
    for done in (show_missing, cancel_missing, resume_missing):
        assert done.returncode == 2
        assert "no batch 'no-such-batch'" in done.stderr
    batches, executions = statefleet_many(
        [["batch", "list", "--json"], ["executions", "list", "--json"]], db=db
    )
    assert batches.json() == []
    assert executions.json() == []


def test_bulk_and_chained_batches(db: str, tmp_path: Path) -> None:
    push(db, ("numbers", "numbers"), ("numbers", "numbers-2"))
    inputs = jsonl(tmp_path / "in.jsonl", [{"n": n} for n in (1, 2, 3, -4, 5, 6)], blank_after=2)
    bulk = statefleet(
        "batch", "start", "--machine", "numbers", "--inputs", inputs, "--name", "first",
        "--app", APP, "--json", db=db,
    )  # fmt: skip
    assert bulk.returncode == 0, bulk.explain()
    first = bulk.json()
    assert (first["name"], first["status"], first["counts"]) == (
        "first",
        "SUCCEEDED",
        {"SUCCEEDED": 5, "FAILED": 1},
    )
    assert "6/6" in bulk.stderr  # the progress bar

    chain = [
        "batch", "start", "--machine", "numbers-2", "--source-machine", "numbers",
        "--transformer", "plus-hundred", "--unique", "--app", APP, "--json",
    ]  # fmt: skip
    chained = statefleet(*chain, db=db)
    assert chained.returncode == 0, chained.explain()
    second = chained.json()
    assert second["counts"] == {"SUCCEEDED": 5}
    assert second["options"]["filter"] == {"state_machine_id": "numbers", "status": ["SUCCEEDED"]}

    again, rerun, targets = statefleet_many(
        [
            chain,
            [
                "batch", "start", "--machine", "numbers", "--inputs", inputs, "--name", "first",
                "--app", APP, "--json",
            ],
            ["executions", "list", "--batch", second["id"], "--json"],
        ],
        db=db,
    )  # fmt: skip
    assert again.json()["counts"] == {}  # unique: every source is chained already
    assert (rerun.json()["id"], rerun.json()["counts"]) == (first["id"], first["counts"])
    # after the rerun (run beside it, the cancel could catch the rerun RUNNING, and win)
    cancel_ended = statefleet("batch", "cancel", first["id"], db=db)
    assert cancel_ended.returncode == 1
    assert "already SUCCEEDED" in cancel_ended.stderr
    assert sorted(r["output"]["n"] for r in targets.json()) == [101, 102, 103, 105, 106]
    target = targets.json()[0]["id"]
    target_json, target_text = statefleet_many(
        [["executions", "show", target, "--json"], ["executions", "show", target]], db=db
    )
    (link,) = target_json.json()["links_to"]
    assert (link["target_execution_id"], link["source_machine_id"], link["transformer"]) == (
        target,
        "numbers",
        "plus-hundred",
    )
    assert target_json.json()["links_from"] == []
    source = link["source_execution_id"]
    assert f"{source} (numbers, transformer plus-hundred)" in target_text.stdout
    source_json, source_text = statefleet_many(
        [["executions", "show", source, "--json"], ["executions", "show", source]], db=db
    )
    assert [t["target_execution_id"] for t in source_json.json()["links_from"]] == [target]
    assert "chained to" in source_text.stdout and f"{target} (numbers-2)" in source_text.stdout

    stopped = statefleet(
        "batch", "start", "--machine", "numbers", "--inputs", inputs, "--stop-on-error",
        "--concurrency", "1", "--name", "stops", "--app", APP, "--json", db=db,
    )  # fmt: skip
    assert stopped.returncode == 1, stopped.explain()
    assert stopped.json()["status"] == "FAILED"
    assert "stop_on_error" in stopped.json()["stop_reason"]
    assert stopped.json()["counts"]["FAILED"] == 1

    listed, listed_json, shown, shown_json = statefleet_many(
        [
            ["batch", "list"],
            ["batch", "list", "--machine", "numbers", "--json"],
            ["batch", "show", first["id"]],
            ["batch", "show", first["id"], "--json"],
        ],
        db=db,
    )
    assert "first" in listed.stdout and "numbers-2" in listed.stdout
    assert [b["name"] for b in listed_json.json()] == ["stops", "first"]
    assert "bulk inputs" in shown.stdout and "FAILED" in shown.stdout
    assert shown_json.json()["counts"] == {"SUCCEEDED": 5, "FAILED": 1}


async def _wait_for(store: SQLStore, machine: str, ended: int) -> str:
    """The id of the machine's first batch once ``ended`` of its executions have ended."""
    async with asyncio.timeout(60):
        while True:
            batches = await store.list_batches(machine)
            if batches:
                counts = await store.count_by_status(ExecutionFilter(batch_id=batches[0].id))
                if sum(n for s, n in counts.items() if s not in ("QUEUED", "RUNNING")) >= ended:
                    return batches[0].id
            await asyncio.sleep(0.05)


async def test_cancel_a_running_batch_and_resume_killed_ones(db: str, tmp_path: Path) -> None:
    push(db, ("slow", "slow"), ("slow", "slow-2"))
    slow = jsonl(tmp_path / "slow.jsonl", [{"sleep": 0.1, "i": i} for i in range(100)])
    quick = jsonl(tmp_path / "quick.jsonl", [{"sleep": 0.05, "i": i} for i in range(30)])
    store = await open_store(db)
    try:
        # Cancel a bulk batch while it runs: what had not ended ends ABORTED at once.
        running = start(
            "batch", "start", "--machine", "slow", "--inputs", slow, "--concurrency", "2",
            "--name", "to-cancel", "--app", APP, db=db,
        )  # fmt: skip
        batch_id = await _wait_for(store, "slow", 2)
        cancelled = statefleet("batch", "cancel", batch_id, db=db)
        assert cancelled.returncode == 0, cancelled.explain()
        assert "ABORTED" in cancelled.stdout
        counts = await store.count_by_status(ExecutionFilter(batch_id=batch_id))
        assert counts.get("ABORTED", 0) > 0
        assert not counts.keys() & {"QUEUED", "RUNNING"}
        assert counts.get("SUCCEEDED", 0) < 100
        running.kill()  # its runner would only find its checkpoints refused, one by one
        running.finish()
        # started again by its name (a rerun script), the cancel stands: nothing runs
        again = statefleet(
            "batch", "start", "--machine", "slow", "--inputs", slow, "--name", "to-cancel",
            "--app", APP, "--json", db=db,
        )  # fmt: skip
        assert again.returncode == 1, again.explain()
        assert (again.json()["id"], again.json()["status"]) == (batch_id, "ABORTED")
        assert "was cancelled (cancelled from the command line): starting it" in again.stderr
        assert f"statefleet batch resume {batch_id}" in again.stderr
        assert await store.count_by_status(ExecutionFilter(batch_id=batch_id)) == counts

        # A bulk batch killed mid-way resumes from the same inputs file, none run twice; the
        # executions leased to the dead process (for 60 s) are taken over at once.
        killed = start(
            "batch", "start", "--machine", "slow-2", "--inputs", quick, "--concurrency", "2",
            "--name", "killed", "--app", APP, db=db,
            env={"STATEFLEET_LEASE_SECONDS": "60"},
        )  # fmt: skip
        bulk_id = await _wait_for(store, "slow-2", 4)
        killed.kill()
        killed.finish()
        leased = await store.count_executions(
            ExecutionFilter(batch_id=bulk_id, status=("QUEUED", "RUNNING"))
        )
        assert leased > 0
        no_inputs = statefleet("batch", "resume", bulk_id, "--app", APP, db=db)
        assert no_inputs.returncode == 2
        assert "give the same file again with --inputs" in no_inputs.stderr
        resumed = statefleet(
            "batch", "resume", bulk_id, "--inputs", quick, "--app", APP, "--json", db=db
        )
        assert resumed.returncode == 0, resumed.explain()
        assert resumed.json()["counts"] == {"SUCCEEDED": 30}
        outputs = [
            r.output["i"] async for r in store.stream_executions(ExecutionFilter(batch_id=bulk_id))
        ]
        assert sorted(outputs) == list(range(30))
    finally:
        await store.close()
