"""``statefleet ui`` serves the app (a subprocess on a free loopback port)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.ui.conftest import free_port


def test_statefleet_ui_serves_health_and_pages(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "STATEFLEET_DATABASE_URL": f"sqlite:///{tmp_path}/ui.db",
        "STATEFLEET_REDIS_URL": "",
    }
    env.pop("REDIS_URL", None)
    env.pop("PYTHONTRACEMALLOC", None)
    env.pop("REDIS_HOST", None)
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "statefleet.cli", "ui", "--port", str(port), "--read-only"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    health = json.load(r)
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "statefleet ui did not start"
                time.sleep(0.1)
        assert health["status"] == "ok" and health["redis"] is None
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/machines", headers={"accept": "text/html"}
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            page = r.read().decode()
        assert "State machines" in page and "read-only" in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)
