"""Run the shell commands a Markdown page shows, exactly as a reader would type them.

Convention for every page in docs/, the README and examples/*/README.md:

- a ```` ```sh ```` block holds commands that the tests run: the blocks of a page, in order,
  become one bash script (``set -euo pipefail``; a line ending in ``\\`` continues; a
  command ending in ``&`` runs in the background and is killed when the script ends);
- a ```` ```shell ```` block holds set-up commands the tests cannot run (installing
  packages, Docker); only the commands in :data:`SETUP_COMMANDS` may appear there;
- ```` ```text ```` and plain ```` ``` ```` blocks are output or diagrams, never run.

The tests substitute the addresses of their own PostgreSQL, Redis and free ports for the
ones the pages show (see :data:`DOC_DATABASE_URL`, :data:`DOC_REDIS_URL`), and smaller
sizes where a page runs a big batch.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The service addresses the pages show (what docker-examples/docker-compose.yml publishes).
DOC_DATABASE_URL = "postgresql://statefleet:statefleet@localhost:5432/statefleet"
DOC_REDIS_URL = "redis://localhost:6379/0"

#: What a ```shell block (shown, not run) may start with.
SETUP_COMMANDS = (
    "pip ",
    "python -m pip ",
    "python3 -m venv ",
    ". .venv/bin/activate",
    "sudo ",
    "apt-get ",
    "docker ",
    "git ",
    "cd ",
    "make ",
)

FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.M | re.S)


def blocks(path: Path, language: str) -> list[str]:
    """The fenced blocks of one language in a Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def commands(block: str) -> list[str]:
    """The commands of a block, continuation lines joined, comments and blanks dropped."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        if pending:
            pending += " " + line.strip()
        else:
            pending = line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        if pending and not pending.startswith("#"):
            out.append(pending)
        pending = ""
    return out


def script(path: Path, substitutions: Mapping[str, str] | None = None) -> str:
    """The page's ```sh blocks as one bash script, with the substitutions applied."""
    body = "\n".join(blocks(path, "sh"))
    for old, new in (substitutions or {}).items():
        assert old in body, f"{path.name}: nothing to substitute for {old!r}"
        body = body.replace(old, new)
    return (
        f"set -euo pipefail\ntrap 'jobs -p | xargs -r kill -9 2>/dev/null || true' EXIT\n{body}\n"
    )


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def workdir(base: Path) -> Path:
    """A directory in which the pages' relative paths resolve, as at the repository's
    root, while what the commands write (./statefleet.db, orders.jsonl) stays out of it."""
    base.mkdir(parents=True, exist_ok=True)
    for name in ("examples", "docker-examples", "docs"):
        link = base / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    return base


def run_page(
    path: Path,
    cwd: Path,
    *,
    substitutions: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> Ran:
    """Run a page's ```sh blocks in ``cwd``; the environment has no STATEFLEET_* variables
    but those in ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STATEFLEET_")}
    environment.update({"PYTHONPATH": str(ROOT), "COLUMNS": "160", **(env or {})})
    text = script(path, substitutions)
    (cwd / f"{path.stem}.sh").write_text(text, encoding="utf-8")
    done = subprocess.run(
        ["bash", "-c", text],
        cwd=workdir(cwd),
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)
