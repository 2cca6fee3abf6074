"""Regenerate the UI guide's screenshots (docs/images/*.png) from a UI filled with real batches.

    python docs/screenshots.py

Starts a private PostgreSQL and Redis (tests/services.py), runs the demo (a bulk batch and a
chained batch, locally), starts two workers and a leader on the distributed_queue example,
serves the UI, and photographs its pages with headless Chromium (Debian's
/usr/bin/chromium; no browser is downloaded) at 1280x800 while the distributed batch runs
and after it has ended. Not run in CI: it takes about a minute and the images are committed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

from tests.services import start_postgres, start_redis  # noqa: E402

IMAGES = DOCS / "images"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
APP = "examples.distributed_queue.app:app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Fleet:
    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.background: list[subprocess.Popen[bytes]] = []

    def run(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "statefleet.cli", *args],
            env=self.env,
            cwd=self.workdir,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{args[0]}-{len(self.background)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "statefleet.cli", *args],
            env={**self.env, **(env or {})},
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.background.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.background:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def wait_until_up(base: str) -> None:
    for _ in range(100):
        try:
            get_json(f"{base}/api/overview")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the UI did not start")


@contextmanager
def fleet() -> Iterator[tuple[Fleet, str]]:
    postgres = start_postgres()
    redis = start_redis()
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"statefleet-screens-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEFLEET_")}
    env.update(
        PYTHONPATH=str(ROOT),
        COLUMNS="120",
        STATEFLEET_DATABASE_URL=postgres.url(postgres.create_database("screens")),
        STATEFLEET_REDIS_URL=redis.url(0),
        TASK_DELAY="0.15",
    )
    the_fleet = Fleet(env, workdir)
    try:
        yield the_fleet, str(workdir)
    finally:
        the_fleet.stop()
        redis.stop()
        postgres.stop()


def main() -> None:
    from playwright.sync_api import sync_playwright

    IMAGES.mkdir(exist_ok=True)
    with fleet() as (sf, workdir):
        sf.run("db", "upgrade")
        sf.run("demo", "--size", "1000")
        orders = str(ROOT / "examples" / "distributed_queue" / "orders.yaml")
        sf.run("definitions", "push", orders, "--id", "fleet-orders")
        with open(Path(workdir) / "orders.jsonl", "w") as out:
            subprocess.run(
                [sys.executable, "-m", "examples.distributed_queue.inputs", "6000"],
                cwd=ROOT,
                env=sf.env,
                stdout=out,
                check=True,
            )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        sf.start("ui", "--port", str(port), "--log-level", "warning")
        for _ in range(2):
            sf.start("worker", "--app", APP, "--concurrency", "40")
        common = ["--app", APP, "--machine", "fleet-orders", "--inputs", "orders.jsonl"]
        sf.start("leader", *common, "--name", "nightly-orders", "--priority", "critical")
        sf.start("leader", *common, "--name", "backfill", "--priority", "low")
        wait_until_up(base)
        time.sleep(12)  # let the batches get going

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})

            def shot(path: str, name: str) -> None:
                page.goto(base + path, wait_until="networkidle")
                page.screenshot(path=str(IMAGES / f"{name}.png"))
                print(f"docs/images/{name}.png  <- {path}")

            batches = get_json(f"{base}/api/batches?machine=fleet-orders")
            running = next(b for b in batches if b["name"] == "nightly-orders")
            shot("/", "dashboard")
            shot(f"/batches/{running['id']}", "batch")
            shot("/queues/low", "queue")
            shot("/workers", "workers")
            failed = get_json(f"{base}/api/executions?machine=demo-fulfilment&status=FAILED")
            items = failed["executions"]
            shot(f"/executions/{items[0]['id']}", "execution")
            shot("/machines/demo-intake", "machine")
            browser.close()


if __name__ == "__main__":
    main()
