"""`statefleet demo`: two batches on the embedded store, a summary that matches the store."""

from __future__ import annotations

from pathlib import Path

from statefleet import ExecutionFilter, open_store
from tests.cli.conftest import DemoRun, statefleet


async def test_demo_summary_matches_the_store(demo_run: DemoRun) -> None:
    intake, fulfilment = demo_run.summary["machines"]
    assert (intake["machine_id"], fulfilment["machine_id"]) == ("demo-intake", "demo-fulfilment")
    assert intake["executions"] == 200
    assert intake["counts"]["FAILED"] > 0  # rejected orders (deterministic)
    # The chained batch runs once per accepted order.
    assert fulfilment["executions"] == intake["counts"]["SUCCEEDED"]
    assert demo_run.summary["executions"] == intake["executions"] + fulfilment["executions"]
    store = await open_store(demo_run.url)
    try:
        for phase in (intake, fulfilment):
            counts = await store.count_by_status(ExecutionFilter(batch_id=phase["batch_id"]))
            assert counts == phase["counts"]
            batch = await store.get_batch(phase["batch_id"])
            assert batch is not None
            assert (batch.status, batch.counters, batch.total) == (
                "SUCCEEDED",
                counts,
                phase["executions"],
            )
            assert 0 < phase["p50_seconds"] <= phase["p99_seconds"]
            assert phase["executions_per_second"] > 0
        # Every fulfilment execution is linked to its own accepted order.
        sources = set()
        async for target in store.stream_executions(
            ExecutionFilter(batch_id=fulfilment["batch_id"])
        ):
            (link,) = await store.links_to(target.id)
            assert link.source_machine_id == "demo-intake"
            sources.add(link.source_execution_id)
        accepted = ExecutionFilter(batch_id=intake["batch_id"], status="SUCCEEDED")
        assert sources == {r.id async for r in store.stream_executions(accepted)}
    finally:
        await store.close()
    # One progress bar per batch, on stderr.
    assert "intake" in demo_run.stderr and "200/200" in demo_run.stderr
    assert "fulfilment" in demo_run.stderr


def _table(stdout: str) -> list[dict[str, str]]:
    """The rows of the summary table, by column heading."""
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("┃"))
    names = [cell.strip() for cell in header.strip("┃").split("┃")]
    return [
        dict(zip(names, (cell.strip() for cell in line.strip("│").split("│")), strict=True))
        for line in lines
        if line.startswith("│")
    ]


async def test_demo_runs_twice_and_its_table_matches_the_store(db: str, tmp_path: Path) -> None:
    first = statefleet("demo", "--size", "40", "--json", db=db)
    assert first.returncode == 0, first.explain()
    second = statefleet("demo", "--size", "40", db=db)
    assert second.returncode == 0, second.explain()
    rows = _table(second.stdout)
    assert [row["machine"] for row in rows] == ["demo-intake", "demo-fulfilment"]
    store = await open_store(db)
    try:
        batches = await store.list_batches("demo-intake")
        assert len(batches) == 2  # a new batch per run, never a resumed one
        assert len({b.name for b in batches}) == 2
        for row in rows:
            (batch,) = [
                b for b in await store.list_batches(row["machine"]) if b.name == row["batch"]
            ]
            counts = await store.count_by_status(ExecutionFilter(batch_id=batch.id))
            shown = {s: int(row[s].replace(",", "")) for s in ("SUCCEEDED", "FAILED") if s in row}
            assert shown == {s: counts.get(s, 0) for s in shown}
            assert int(row["total"]) == sum(counts.values())
        assert rows[0]["total"] == "40"
    finally:
        await store.close()
    assert "statefleet executions list --status FAILED" in second.stdout
    assert "statefleet ui" in second.stdout


def test_demo_refuses_a_bad_store_url(tmp_path: Path) -> None:
    done = statefleet("demo", "--size", "1", "--database-url", "mysql://nobody@nowhere/db")
    assert done.returncode == 2
    assert "unsupported database URL" in done.stderr
    assert "Traceback" not in done.stderr
