"""The commands on PostgreSQL: a fresh database per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import APP, MACHINES, statefleet, statefleet_many
from tests.services import PostgresServer


@pytest.fixture
def pg(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database(f"cli_{uuid.uuid4().hex[:12]}")
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


def test_upgrade_push_run_and_batches(pg: str, tmp_path: Path) -> None:
    upgraded = statefleet("db", "upgrade", "--database-url", pg)
    assert upgraded.returncode == 0, upgraded.explain()
    assert "schema at revision" in upgraded.stdout
    assert "postgresql+asyncpg://postgres@" in upgraded.stdout

    numbers = str(MACHINES / "numbers.yaml")
    pushes = statefleet_many(
        [
            ["definitions", "push", numbers, "--id", "numbers"],
            ["definitions", "push", numbers, "--id", "numbers-2"],
            ["definitions", "push", str(MACHINES / "invalid.json"), "--id", "bad"],
        ],
        db=pg,
    )
    assert [p.returncode for p in pushes] == [0, 0, 2], [p.explain() for p in pushes]
    assert "/States/B/Type" in pushes[2].stderr

    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"n": n}) + "\n" for n in (1, 2, -3, 4)))
    ran, bulk = statefleet_many(
        [
            ["run", "--machine", "numbers", "--input", '{"n": 10}', "--app", APP],
            ["batch", "start", "--machine", "numbers", "--inputs", str(inputs), "--app", APP,
             "--json"],
        ],
        db=pg,
    )  # fmt: skip
    assert ran.returncode == 0, ran.explain()
    assert ran.json()["output"] == {"n": 10, "doubled": 20, "checked": True}
    assert bulk.returncode == 0, bulk.explain()
    assert bulk.json()["counts"] == {"SUCCEEDED": 3, "FAILED": 1}

    chained = statefleet(
        "batch", "start", "--machine", "numbers-2", "--source-machine", "numbers",
        "--transformer", "plus-hundred", "--unique", "--app", APP, "--json", db=pg,
    )  # fmt: skip
    assert chained.returncode == 0, chained.explain()
    batch = chained.json()
    assert batch["counts"] == {"SUCCEEDED": 4}  # the run and the three that succeeded

    targets, failed, batches, definitions = statefleet_many(
        [
            ["executions", "list", "--batch", batch["id"], "--json"],
            ["executions", "list", "--status", "FAILED", "--json"],
            ["batch", "list", "--json"],
            ["definitions", "list", "--json"],
        ],
        db=pg,
    )
    assert sorted(r["output"]["n"] for r in targets.json()) == [101, 102, 104, 110]
    assert [r["input"] for r in failed.json()] == [{"n": -3}]
    assert len(batches.json()) == 2
    assert [d["id"] for d in definitions.json()] == ["numbers", "numbers-2"]
