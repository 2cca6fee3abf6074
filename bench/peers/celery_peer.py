"""The Celery peer, from statefleet's side: creates the peer's own virtualenv and runs it.

    python bench/peers/celery_peer.py setup                 # create/refresh the venv
    python bench/peers/celery_peer.py measure --redis URL --dsn postgresql://... \\
        --processes 2 --count 20000                           # one run, one JSON line

Celery needs a redis-py that arq's pin refuses, so the peer lives in a virtualenv of its
own, `bench/.venv-celery` (or `$STATEFLEET_BENCH_CACHE/venv-celery`), created with this
Python's `venv` module and filled from `celery-requirements.txt`; it is rebuilt when that
file changes. Standard library only: statefleet's runner imports this module.
The peer itself is `celery_app.py` (what it measures is described there).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "celery-requirements.txt"
PEER = HERE / "celery_app.py"


def venv_dir() -> Path:
    cache = os.environ.get("STATEFLEET_BENCH_CACHE")
    return Path(cache) / "venv-celery" if cache else HERE.parent / ".venv-celery"


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def setup(quiet: bool = True) -> Path:
    """Create (or refresh, when the requirements changed) the venv; return its python."""
    stamp = venv_dir() / ".requirements-sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if venv_python().exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return venv_python()
    print(f"celery peer: creating its virtualenv in {venv_dir()}", file=sys.stderr, flush=True)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir())
        pip = [str(venv_python()), "-m", "pip"]
    except subprocess.CalledProcessError:
        # No ensurepip (Debian's python3 without python3-venv): a venv without pip,
        # filled by this interpreter's pip (`pip --python`, pip >= 22.3).
        venv.EnvBuilder(with_pip=False, clear=True).create(venv_dir())
        pip = [sys.executable, "-m", "pip", "--python", str(venv_python())]
    pip += ["install", "--disable-pip-version-check"]
    if quiet:
        pip.append("--quiet")
    env = {**os.environ, "PIP_ROOT_USER_ACTION": "ignore"}
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, env=env)
    stamp.write_text(wanted + "\n")
    return venv_python()


def versions() -> dict[str, str]:
    done = subprocess.run(
        [str(setup()), str(PEER), "versions"], capture_output=True, text=True, check=True
    )
    result: dict[str, str] = json.loads(done.stdout)
    return result


def measure(
    redis_url: str,
    dsn: str,
    *,
    processes: int,
    count: int,
    timeout: float = 900,
    log: Path | None = None,
) -> dict[str, Any]:
    """One run of the peer (worker started, warmed up, measured, stopped): a dict."""
    command = [str(setup()), str(PEER), "measure", "--redis", redis_url, "--dsn", dsn]
    command += ["--processes", str(processes), "--count", str(count)]
    command += ["--timeout", str(timeout)]
    if log is not None:
        command += ["--log", str(log)]
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=timeout + 180
    )
    if done.returncode != 0:
        raise RuntimeError(f"celery peer failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup")
    sub.add_parser("versions")
    run = sub.add_parser("measure")
    run.add_argument("--redis", required=True)
    run.add_argument("--dsn", required=True)
    run.add_argument("--processes", type=int, default=2)
    run.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    if args.command == "setup":
        print(setup(quiet=False))
    elif args.command == "versions":
        print(json.dumps(versions()))
    else:
        result = measure(args.redis, args.dsn, processes=args.processes, count=args.count)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
