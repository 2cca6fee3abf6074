"""The public surface is a contract: docs and outside conformance suites use these names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import statefleet
from tests.docs.shell import workdir

ROOT = Path(__file__).resolve().parents[1]

EXPECTED = [
    "App",
    "Batch",
    "BatchOptions",
    "ChainingError",
    "DefinitionError",
    "ExecutionError",
    "ExecutionFilter",
    "NotFoundError",
    "PersistentStateMachine",
    "QueueClient",
    "ResourceNotFoundError",
    "RunResult",
    "Settings",
    "StaleExecutionError",
    "StateMachine",
    "StatefleetError",
    "TaskContext",
    "TaskError",
    "open_store",
    "send_message",
    "send_task_failure",
    "send_task_heartbeat",
    "send_task_success",
]


def test_all_is_sorted_and_exact() -> None:
    assert statefleet.__all__ == sorted(statefleet.__all__)
    assert statefleet.__all__ == EXPECTED
    for name in statefleet.__all__:
        assert getattr(statefleet, name) is not None


def test_package_ships_py_typed() -> None:
    assert (Path(statefleet.__file__).parent / "py.typed").is_file()


def test_readme_python_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every ```python block of the README runs as written (in a directory where its
    relative paths resolve, so what it writes stays out of the checkout) and prints what
    its comments say."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "the README has python examples"
    monkeypatch.chdir(workdir(tmp_path))
    for block in blocks:
        namespace: dict[str, object] = {"__name__": "readme_example"}
        exec(compile(block, "README.md", "exec"), namespace)
        printed = re.findall(r"print\(.*\)  # (.+)", block)
        assert capsys.readouterr().out.splitlines() == printed
