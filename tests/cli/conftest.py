"""Helpers for the CLI tests: every command runs in a process of its own, against a SQLite
file in a temporary directory (or a fresh PostgreSQL database).

Starting ``python -m statefleet.cli`` costs about 1.5 s of CPU, nearly all of it importing
the package. So by default a command runs in a fresh process *forked* from an interpreter
that has imported ``statefleet.cli`` once (the "zygote"): the child sets its argv,
environment, working directory and stdout/stderr files, calls ``statefleet.cli.main()``
and exits with its status — exactly what ``python -m statefleet.cli`` does after its
imports. ``spawn=True`` (and the environment variable ``STATEFLEET_TEST_CLI_SPAWN=1`` for
every command) runs the real ``python -m statefleet.cli`` instead; the demo and a few
entry-point tests always do.

Independent commands run side by side (``statefleet_many``).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MACHINES = Path(__file__).resolve().parent / "machines"
APP = "tests.cli.fleet_app:app"
TIMEOUT = 120
SPAWN_ALL = os.environ.get("STATEFLEET_TEST_CLI_SPAWN") == "1"


@dataclass(frozen=True)
class Done:
    """A finished command: exit status, stdout, stderr."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode in (0, 1), self.explain()
        return json.loads(self.stdout)

    def explain(self) -> str:
        return (
            f"statefleet {' '.join(self.args)} exited {self.returncode}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


def _env(database_url: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEFLEET_")}
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "200"
    if database_url is not None:
        env["STATEFLEET_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


# ---------------------------------------------------------------------- the zygote

_ZYGOTE = r"""
import json, os, select, sys, traceback
sys.path.insert(0, sys.argv[1])
import statefleet.cli as cli

children = {}
pending = b""
print(json.dumps({"ready": True}), flush=True)
open_input = True
while open_input or children:
    readable, _, _ = select.select([0] if open_input else [], [], [], 0.01)
    requests = []
    if readable:
        data = os.read(0, 1 << 16)
        open_input = bool(data)
        pending += data
        *lines, pending = pending.split(b"\n")
        requests = [json.loads(line) for line in lines if line.strip()]
    for request in requests:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(request["cwd"])
                os.environ.clear()
                os.environ.update(request["env"])
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                    os.dup2(target, fd)
                sys.argv = ["statefleet", *request["args"]]
                try:
                    cli.main()
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
                except BaseException:
                    traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        children[pid] = request["id"]
        print(json.dumps({"id": request["id"], "pid": pid}), flush=True)
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        ident = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        print(json.dumps({"id": ident, "code": code}), flush=True)
"""


class Zygote:
    """One interpreter with ``statefleet.cli`` imported; forks a process per command."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, str(ROOT)],
            cwd=ROOT,
            env=_env(None, None),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        assert json.loads(self._process.stdout.readline()) == {"ready": True}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._waiting: dict[int, Future[int]] = {}
        self._pids: dict[int, Future[int]] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            message = json.loads(line)
            with self._lock:
                if "pid" in message:
                    self._pids[message["id"]].set_result(message["pid"])
                    continue
                future = self._waiting.pop(message["id"])
                del self._pids[message["id"]]
            future.set_result(message["code"])
        with self._lock:
            for future in self._waiting.values():
                future.set_exception(RuntimeError("the CLI test zygote exited"))

    def run(
        self, args: Sequence[str], env: dict[str, str], cwd: Path, stdout: Path, stderr: Path
    ) -> tuple[Future[int], Future[int]]:
        """Start a command; return futures of its pid and of its exit status."""
        future: Future[int] = Future()
        pid: Future[int] = Future()
        ident = next(self._ids)
        request = {
            "id": ident,
            "args": list(args),
            "env": env,
            "cwd": str(cwd),
            "stdout": str(stdout),
            "stderr": str(stderr),
        }
        with self._lock:
            self._waiting[ident] = future
            self._pids[ident] = pid
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
        return pid, future

    def close(self) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        self._process.wait(timeout=TIMEOUT)
        self._reader.join(timeout=TIMEOUT)
        self._process.stdout.close()


_zygote: Zygote | None = None


@pytest.fixture(scope="session", autouse=True)
def _cli_zygote() -> Iterator[None]:
    global _zygote
    yield
    if _zygote is not None:
        _zygote.close()
        _zygote = None


def _get_zygote() -> Zygote:
    global _zygote
    if _zygote is None:
        _zygote = Zygote()
    return _zygote


# ---------------------------------------------------------------------- running commands


class Running:
    """A command started in its own process."""

    def __init__(
        self,
        args: Sequence[str],
        db: str | None,
        cwd: Path,
        env: dict[str, str] | None,
        spawn: bool,
    ) -> None:
        self.args = tuple(args)
        environment = _env(db, env)
        if spawn or SPAWN_ALL:
            self._process: subprocess.Popen[str] | None = subprocess.Popen(
                [sys.executable, "-m", "statefleet.cli", *args],
                cwd=cwd,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            self._future: Future[int] | None = None
            return
        self._process = None
        self._dir = tempfile.TemporaryDirectory(prefix="statefleet-cli-")
        self._out = Path(self._dir.name) / "stdout"
        self._err = Path(self._dir.name) / "stderr"
        self._pid, self._future = _get_zygote().run(
            self.args, environment, cwd, self._out, self._err
        )

    def kill(self) -> None:
        """SIGKILL the command."""
        if self._process is not None:
            self._process.kill()
        else:
            os.kill(self._pid.result(timeout=TIMEOUT), signal.SIGKILL)

    def finish(self) -> Done:
        if self._process is not None:
            stdout, stderr = self._process.communicate(timeout=TIMEOUT)
            return Done(self.args, self._process.returncode, stdout, stderr)
        assert self._future is not None
        code = self._future.result(timeout=TIMEOUT)
        try:
            return Done(
                self.args,
                code,
                self._out.read_text(encoding="utf-8"),
                self._err.read_text(encoding="utf-8"),
            )
        finally:
            self._dir.cleanup()


def start(
    *args: str,
    db: str | None = None,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    spawn: bool = False,
) -> Running:
    return Running(args, db, cwd, env, spawn)


def statefleet(
    *args: str,
    db: str | None = None,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    spawn: bool = False,
) -> Done:
    """Run one command to its end."""
    return start(*args, db=db, cwd=cwd, env=env, spawn=spawn).finish()


def statefleet_many(
    commands: Sequence[Sequence[str]], *, db: str | None = None, cwd: Path = ROOT
) -> list[Done]:
    """Run independent commands side by side; results in the same order."""
    running = [start(*args, db=db, cwd=cwd) for args in commands]
    return [r.finish() for r in running]


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A SQLite store in the test's temporary directory (created on first use)."""
    return sqlite_url(tmp_path / "statefleet.db")


@dataclass(frozen=True)
class DemoRun:
    url: str
    summary: dict[str, Any]
    stderr: str


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``python -m statefleet.cli demo --size 200 --json`` once per session."""
    url = sqlite_url(tmp_path_factory.mktemp("demo") / "statefleet.db")
    done = statefleet("demo", "--size", "200", "--json", db=url, spawn=True)
    assert done.returncode == 0, done.explain()
    return DemoRun(url, json.loads(done.stdout), done.stderr)
