"""examples/callbacks runs as its README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "callbacks"


def test_approval_example_runs_as_documented(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "approval.py"), f"sqlite+aiosqlite:///{tmp_path}/a.db"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"\$ python examples/callbacks/approval.py\n(.*?)```", readme, re.S)

    def shape(text: str) -> list[str]:  # execution ids differ from run to run
        return [re.sub(r"of [0-9a-f]{8}…", "of <id>…", line) for line in text.splitlines()]

    assert shape(done.stdout) == shape(block)
