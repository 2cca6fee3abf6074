"""`statefleet db upgrade` and `statefleet definitions push|list|show|history`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli.conftest import MACHINES, statefleet, statefleet_many


def test_db_upgrade_is_idempotent(db: str) -> None:
    first = statefleet("db", "upgrade", db=db, spawn=True)
    assert first.returncode == 0, first.explain()
    assert "schema at revision" in first.stdout
    again = statefleet("db", "upgrade", "--database-url", db)  # forked, see conftest
    assert again.returncode == 0, again.explain()
    assert again.stdout == first.stdout


def test_push_list_show_history(db: str, tmp_path: Path) -> None:
    numbers = str(MACHINES / "numbers.yaml")
    pushed = statefleet(
        "definitions", "push", numbers, "--id", "numbers", "--name", "Numbers", db=db
    )
    assert pushed.returncode == 0, pushed.explain()
    assert pushed.stdout.startswith("numbers: saved version ")
    first_version = pushed.stdout.split()[-1]

    changed = yaml.safe_load((MACHINES / "numbers.yaml").read_text())
    changed["Comment"] = "second version"
    (tmp_path / "numbers-v2.json").write_text(json.dumps(changed))
    same = statefleet("definitions", "push", numbers, "--id", "numbers", db=db)
    second = statefleet(
        "definitions", "push", str(tmp_path / "numbers-v2.json"), "--id", "numbers", db=db
    )
    assert same.returncode == 0, same.explain()
    assert same.stdout.strip() == f"numbers: unchanged, version {first_version}"
    assert second.returncode == 0, second.explain()
    second_version = second.stdout.split()[-1]
    assert second_version != first_version

    listed, listed_json, shown, shown_old, shown_json, history, history_json = statefleet_many(
        [
            ["definitions", "list"],
            ["definitions", "list", "--json"],
            ["definitions", "show", "numbers"],
            ["definitions", "show", "numbers", "--version", first_version],
            ["definitions", "show", "numbers", "--json"],
            ["definitions", "history", "numbers"],
            ["definitions", "history", "numbers", "--json"],
        ],
        db=db,
    )
    assert "numbers" in listed.stdout and second_version in listed.stdout
    (entry,) = listed_json.json()
    assert (entry["id"], entry["version"]) == ("numbers", second_version)
    assert "definition" not in entry
    assert shown.json() == changed
    assert shown_old.json() == yaml.safe_load((MACHINES / "numbers.yaml").read_text())
    record = shown_json.json()
    assert (record["id"], record["version"], record["definition"]) == (
        "numbers",
        second_version,
        changed,
    )
    assert history.stdout.index(second_version) < history.stdout.index(first_version)
    assert "latest" in history.stdout
    assert [v["version"] for v in history_json.json()] == [second_version, first_version]


def test_invalid_definition_lists_every_problem_and_saves_nothing(db: str) -> None:
    invalid, missing_show, missing_history, missing_file, listed = statefleet_many(
        [
            ["definitions", "push", str(MACHINES / "invalid.json"), "--id", "bad"],
            ["definitions", "show", "nothing-here"],
            ["definitions", "history", "nothing-here"],
            ["definitions", "push", "does-not-exist.yaml", "--id", "x"],
            ["definitions", "list", "--json"],
        ],
        db=db,
    )
    assert invalid.returncode == 2
    assert invalid.stdout == ""
    for pointer in ("/StartAt", "/States/A/Next", "/States/B/Type"):
        assert pointer in invalid.stderr
    assert "invalid.json" in invalid.stderr
    for done in (missing_show, missing_history):
        assert done.returncode == 2
        assert "no state machine 'nothing-here'" in done.stderr
    assert missing_file.returncode == 2
    assert "cannot read definition" in missing_file.stderr
    assert listed.json() == []
    for done in (invalid, missing_show, missing_history, missing_file):
        assert "Traceback" not in done.stderr
