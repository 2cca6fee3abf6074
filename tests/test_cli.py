"""`statefleet run`: prints the result as JSON; exit 0 / 1 / 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def statefleet(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statefleet.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hello_example_succeeds() -> None:
    done = statefleet("run", "examples/hello/hello.yaml", "--input", '{"name": "Ada", "visits": 3}')
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "SUCCEEDED"
    assert result["output"] == {
        "greeting": "Hello, Ada!",
        "visits": 3,
        "note": "Welcome back, good to see you again.",
    }


def test_input_from_file(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text('{"name": "Grace", "visits": 1}')
    done = statefleet("run", "examples/hello/hello.yaml", "--input", f"@{tmp_path / 'in.json'}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == {"greeting": "Hello, Grace!", "visits": 1}


def test_failed_execution_exits_1(tmp_path: Path) -> None:
    (tmp_path / "fail.yaml").write_text(
        "StartAt: Boom\nStates:\n  Boom:\n    Type: Fail\n"
        "    Error: Broken\n    Cause: on purpose\n"
    )
    done = statefleet("run", str(tmp_path / "fail.yaml"))
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert (result["status"], result["error"], result["cause"]) == (
        "FAILED",
        "Broken",
        "on purpose",
    )


def test_invalid_definition_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = {
        "StartAt": "Missing",
        "States": {
            "A": {"Type": "Pass", "Next": "Nowhere"},
            "B": {"Type": "Teleport", "End": True},
        },
    }
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    done = statefleet("run", str(tmp_path / "bad.json"))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "/StartAt" in done.stderr
    assert "/States/A/Next" in done.stderr
    assert "/States/B/Type" in done.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "examples/hello/hello.yaml", "--input", "{nope"], "--input is not valid JSON"),
        (["run", "does-not-exist.yaml"], "cannot read definition"),
        (
            ["run", "examples/hello/hello.yaml", "--input", "@missing.json"],
            "cannot read input file",
        ),
        (
            ["run", "examples/hello/hello.yaml", "--resources", "nomodule_xyz:things"],
            "cannot import",
        ),
    ],
)
def test_bad_input_exits_2_with_reason(args: list[str], fragment: str) -> None:
    done = statefleet(*args)
    assert done.returncode == 2
    assert fragment in done.stderr


def test_resources_from_module(tmp_path: Path) -> None:
    (tmp_path / "myfleet.py").write_text(
        "def double(x):\n    return x * 2\n\nresources = {'math:double': double}\n"
    )
    (tmp_path / "m.yaml").write_text(
        "StartAt: D\nStates:\n  D:\n    Type: Task\n"
        "    Resource: arn:aws:lambda:::math:double\n    End: true\n"
    )
    done = statefleet(
        "run", "m.yaml", "--input", "21", "--resources", "myfleet:resources", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == 42


def test_unknown_resource_exits_2(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "StartAt: D\nStates:\n  D:\n    Type: Task\n    Resource: nothing:here\n    End: true\n"
    )
    done = statefleet("run", str(tmp_path / "m.yaml"))
    assert done.returncode == 2
    assert "no resource registered for 'nothing:here'" in done.stderr
    assert "/States/D" in done.stderr
