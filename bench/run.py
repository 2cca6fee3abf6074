"""statefleet's benchmark suite: every figure, side by side with its peers, in one run.

    python bench/run.py            # full (~25 min): medians of 3 runs with min-max,
                                   # table in bench/results/latest.md
    python bench/run.py --quick    # ~3 min: 1 run per figure, smaller sizes,
                                   # table in bench/results/quick.md
    python bench/run.py --only interpreter,local    # some sections

Sections (issue 6), all in this one invocation, with PostgreSQL and Redis started here on
loopback (PostgreSQL with its default durability: fsync, synchronous_commit and
full_page_writes on; Redis with RDB snapshots and AOF off, as `tests.services` starts it):

  1 interpreter   in-memory executions/s: 4-state machine, Map over 100 items
                  (bench/interpreter.py)
  2 store         the store's write paths (bench/store_writes.py): a bulk insert, 1,000
                  checkpoints in one transaction vs one transaction each
  3 local         persisted executions on PostgreSQL and SQLite: sequential, 64 concurrent,
                  and a local batch of 20,000 chained executions with full history:
                  executions/s, p50/p99 latency, peak RSS (bench/persistence.py; each run in
                  a fresh process on a fresh database)
  4 distributed   the batch on arq with 1 and 2 `statefleet worker` processes: enqueue rate,
                  end-to-end executions/s, peak RSS per worker; raw arq no-op jobs with the
                  same worker count at arq's defaults and tuned (bench/distributed.py)
  5 celery        the Celery peer: Redis broker, prefork with the same process count, the
                  same four steps as plain functions writing the same rows with SQLAlchemy
                  (bench/peers/, in its own virtualenv)
  6 scale         full mode only: peak RSS of the process running a batch of 10,000 vs
                  1,000,000 sources; executions/s at 10k and 100k (bench/scale.py)

Prints one markdown table — every figure, the ratios statefleet / peer, the targets of
issues 2-5 and whether each is met — and writes it with versions, machine, date and
settings to the results file. Exits 1 if a section failed (its rows say why).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.metadata
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from machines import DURABLE_POSTGRES  # noqa: E402

REDIS_PERSISTENCE = "RDB snapshots off (save ''), AOF off (appendonly no)"
SECTIONS = ("interpreter", "store", "local", "distributed", "celery", "scale")


@dataclass(frozen=True)
class Plan:
    """Sizes and run counts of one mode."""

    runs: int
    store_inserts: int
    four_state: int
    map_100: int
    sequential: int
    concurrent: int
    local_batch: int
    distributed: int
    worker_counts: tuple[int, ...]
    celery: int
    celery_processes: tuple[int, ...]
    scale_rss: tuple[int, ...] = ()
    scale_growth: tuple[int, ...] = ()
    scale_time_limit: float = 300


FULL = Plan(
    runs=3,
    store_inserts=10_000,
    four_state=20_000,
    map_100=500,
    sequential=1_000,
    concurrent=10_000,
    local_batch=20_000,
    distributed=20_000,
    worker_counts=(1, 2),
    celery=3_000,
    celery_processes=(1, 2),
    scale_rss=(10_000, 1_000_000),
    scale_growth=(10_000, 100_000),
)
QUICK = Plan(
    runs=1,
    store_inserts=10_000,
    four_state=5_000,
    map_100=100,
    sequential=200,
    concurrent=2_000,
    local_batch=5_000,
    distributed=3_000,
    worker_counts=(1, 2),
    celery=1_000,
    celery_processes=(2,),
)


# ------------------------------------------------------------------ figures and the table


@dataclass
class Figure:
    """One line of the table: a figure measured `runs` times (or why it is missing)."""

    section: str
    scenario: str
    metric: str
    values: list[float] = field(default_factory=list)
    fmt: str = "{:,.0f}"
    key: str | None = None  # for ratios and targets
    ratios: list[str] = field(default_factory=list)
    target: str = ""
    met: bool | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def value_text(self) -> str:
        if self.error:
            return f"failed: {self.error}"
        if not self.values:
            return "n/a"
        text = self.fmt.format(statistics.median(self.values))
        if len(self.values) > 1:
            text += f" ({self.fmt.format(min(self.values))}-{self.fmt.format(max(self.values))})"
        return text


class Results:
    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self.notes: list[str] = []
        self.failed: list[str] = []
        self.loads: list[str] = []

    def add(self, *args: Any, **kwargs: Any) -> Figure:
        figure = Figure(*args, **kwargs)
        self.figures.append(figure)
        return figure

    def add_after(self, key: str, *args: Any, **kwargs: Any) -> Figure:
        """Add a figure right after the one with `key` (at the end if there is none)."""
        figure = Figure(*args, **kwargs)
        where = [i for i, f in enumerate(self.figures) if f.key == key]
        self.figures.insert(where[-1] + 1 if where else len(self.figures), figure)
        return figure

    def get(self, key: str) -> Figure | None:
        for figure in self.figures:
            if figure.key == key and figure.values:
                return figure
        return None

    def ratio(self, ours: str, peer: str, label: str) -> float | None:
        """Add `ours / peer` (medians) to the ratios of `ours`; return it."""
        a, b = self.get(ours), self.get(peer)
        if a is None or b is None or not b.median:
            return None
        value = (a.median or 0) / b.median
        a.ratios.append(f"{value:.2f}x {label}")
        return value

    def target(self, key: str, text: str, ok: Callable[[float], bool]) -> None:
        figure = self.get(key)
        if figure is None:
            for f in self.figures:
                if f.key == key:
                    f.target = text
            return
        figure.target = text
        figure.met = ok(figure.median or 0.0)

    def table(self) -> str:
        lines = [
            "| section | scenario | figure | median (min-max) | statefleet / peer | target | met |",
            "|---|---|---|---:|---|---|---|",
        ]
        for f in self.figures:
            met = "" if f.met is None else ("**met**" if f.met else "**not met**")
            lines.append(
                f"| {f.section} | {f.scenario} | {f.metric} | {f.value_text()} | "
                f"{'; '.join(f.ratios)} | {f.target} | {met} |"
            )
        return "\n".join(lines)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def section(results: Results, name: str) -> Iterator[None]:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    log(f"section {name}: start")
    try:
        yield
    except Exception as exc:
        results.failed.append(name)
        detail = f"{type(exc).__name__}: {exc}".strip().splitlines()
        results.add(name, "(section failed)", "", error=detail[0][:200] if detail else "error")
        traceback.print_exc()
        log(f"section {name}: FAILED")
    else:
        log(f"section {name}: done in {time.monotonic() - started:.0f} s")
    finally:
        results.loads.append(
            f"{name} {time.monotonic() - started:.0f} s, 1-min load {load_before:.1f} -> "
            f"{os.getloadavg()[0]:.1f}"
        )


# ------------------------------------------------------------------ process RSS sampling


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _peak_rss_mb(pid: int) -> tuple[str, float] | None:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return cmdline, int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class RSSMonitor:
    """Samples the peak RSS (VmHWM) of this process's descendants whose command line
    contains `marker`, every 0.2 s, in a thread; `peaks()` is the last reading per pid."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.readings: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RSSMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in _descendants(os.getpid()):
                reading = _peak_rss_mb(pid)
                if reading and self.marker in reading[0]:
                    self.readings[pid] = max(reading[1], self.readings.get(pid, 0.0))
            self._stop.wait(0.2)

    def peaks(self) -> list[float]:
        return list(self.readings.values())


# ------------------------------------------------------------------ 1 interpreter


def run_interpreter(results: Results, plan: Plan) -> None:
    interpreter = importlib.import_module("interpreter")
    from statefleet import StateMachine

    cases = (
        (
            "4-state (Pass, Task no-op, Choice, Succeed)",
            interpreter.FOUR_STATE,
            [{"order": f"o-{i}", "amount": i * 7 % 250} for i in range(100)],
            plan.four_state,
            "interp.four",
        ),
        (
            "Map over 100 items (Pass each)",
            interpreter.MAP_100,
            [{"items": list(range(100))}],
            plan.map_100,
            "interp.map",
        ),
    )
    for label, definition, inputs, count, key in cases:
        machine = StateMachine.from_definition(definition)
        asyncio.run(interpreter.measure(machine, inputs, max(10, count // 20)))  # warm-up
        rates = [asyncio.run(interpreter.measure(machine, inputs, count)) for _ in range(plan.runs)]
        results.add(
            "1 interpreter", f"{label}, {count:,} in one process", "executions/s", rates, key=key
        )


# ------------------------------------------------------------------ 2 store write paths


def run_store(results: Results, plan: Plan, pg: Any) -> None:
    """bench/store_writes.py on the durable server: what one commit costs vs a shared one."""
    store_writes = importlib.import_module("store_writes")
    from statefleet.store import open_store

    async def one(url: str) -> dict[str, list[float]]:
        store = await open_store(url)
        try:
            times: dict[str, list[float]] = await store_writes.bench(
                store, plan.store_inserts, plan.runs
            )
            return times
        finally:
            await store.close()

    name = pg.create_database("store_writes")
    with tempfile.TemporaryDirectory(prefix="sf-bench-store-") as tmp:
        for store, url in (
            ("PostgreSQL", pg.url(name)),
            ("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db"),
        ):
            times = asyncio.run(one(url))
            s = "2 store"
            n = plan.store_inserts
            results.add(
                s,
                f"create_executions({n:,}), one transaction, {store}",
                "rows/s",
                [n / t for t in times["insert"]],
            )
            results.add(
                s,
                f"write_checkpoints(1,000 checkpoints + 2,000 history rows), one call, {store}",
                "checkpoints/s",
                [1000 / t for t in times["group"]],
            )
            results.add(
                s,
                f"write_checkpoints([one]) x 1,000: a transaction each, {store}",
                "checkpoints/s",
                [1000 / t for t in times["single"]],
            )
    pg.drop_database(name)


# ------------------------------------------------------------------ 2 local persisted


def run_local(results: Results, plan: Plan, pg: Any) -> None:
    persistence = importlib.import_module("persistence")
    scenarios = (
        ("sequential", plan.sequential, "sequential execute()"),
        ("concurrent", plan.concurrent, "64 concurrent execute()"),
        ("batch", plan.local_batch, "local batch, chained, concurrency 512"),
        ("batch256", plan.local_batch, "local batch, chained, concurrency 256"),
    )
    counter = 0
    for kind, size, label in scenarios:
        for backend in ("postgresql", "sqlite"):
            runs = []
            for _ in range(plan.runs):
                counter += 1
                if backend == "postgresql":
                    url = pg.url(pg.create_database(f"local_{counter}"))
                else:
                    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='sf-bench-')}/bench.db"
                runs.append(persistence.run_child(url, kind, size))
                if backend == "postgresql":
                    pg.drop_database(f"local_{counter}")
                else:
                    shutil.rmtree(Path(url.split("///", 1)[1]).parent, ignore_errors=True)
            store = "PostgreSQL" if backend == "postgresql" else "SQLite"
            scenario = f"{label}, {size:,} x 4-state, {store}"
            key = f"local.{kind}.{backend}"
            results.add("3 local", scenario, "executions/s", [r["rate"] for r in runs], key=key)
            if kind == "sequential":
                continue
            results.add(
                "3 local", scenario, "p50 latency ms", [r["p50_ms"] for r in runs], "{:,.1f}"
            )
            results.add(
                "3 local", scenario, "p99 latency ms", [r["p99_ms"] for r in runs], "{:,.1f}"
            )
            results.add("3 local", scenario, "peak RSS MB", [r["rss_mb"] for r in runs])


# ------------------------------------------------------------------ 3 distributed


def run_distributed(
    results: Results, plan: Plan, pg: Any, redis_url: str, celery: CeleryRuns | None
) -> None:
    """bench/distributed.py measures (its ``bench_enqueue``, ``bench_statefleet`` and
    ``bench_arq``); this adds the durable servers, the repetition and the workers' RSS."""
    if not (BENCH / "distributed.py").exists():
        results.add("4 distributed", "bench/distributed.py", "", error="not written yet")
        results.notes.append("Section 4 skipped: bench/distributed.py does not exist yet.")
        return
    distributed = importlib.import_module("distributed")
    n = plan.distributed
    arq_default_n = max(1000, n // 4)
    tag = iter(range(10_000))
    sf: dict[int, dict[str, list[float]]] = {}
    enqueue_ours: list[float] = []
    enqueue_loop: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sf-bench-dist-") as tmp:
        for _ in range(plan.runs):
            ours, loop = asyncio.run(distributed.bench_enqueue(redis_url, n))
            enqueue_ours.append(ours)
            enqueue_loop.append(loop)
        for workers in plan.worker_counts:
            got = sf.setdefault(
                workers, {"rate": [], "created": [], "rss": [], "p50_ms": [], "p99_ms": []}
            )
            got.update({"tuned": [], "defaults": [], "tuned_rss": []})
            for _ in range(plan.runs):
                name = pg.create_database(f"dist_{next(tag)}")
                with RSSMonitor("statefleet.cli worker") as monitor:
                    one = asyncio.run(
                        distributed.bench_statefleet(pg.url(name), redis_url, n, workers, tmp)
                    )
                pg.drop_database(name)
                rate = one["rate"]
                for k in ("rate", "created", "p50_ms", "p99_ms"):
                    got[k].append(one[k])
                got["rss"].extend(monitor.peaks())
                log(f"distributed statefleet {workers}w: {rate:,.0f}/s")
                with RSSMonitor("arq_worker.py") as monitor:
                    tuned = asyncio.run(distributed.bench_arq(redis_url, n, workers, True, tmp))
                got["tuned"].append(tuned)
                got["tuned_rss"].extend(monitor.peaks())
                defaults = asyncio.run(
                    distributed.bench_arq(redis_url, arq_default_n, workers, False, tmp)
                )
                got["defaults"].append(defaults)
                log(f"distributed arq {workers}w: tuned {tuned:,.0f}/s, defaults {defaults:,.0f}/s")
                if celery is not None:
                    try:
                        celery.once(workers)
                    except Exception as exc:  # the celery section retries and reports it
                        log(f"celery {workers}p failed: {exc}")
    s = "4 distributed"
    results.add(
        s,
        f"enqueue {n:,} jobs: QueueClient.enqueue (Redis, pipelined)",
        "jobs/s",
        enqueue_ours,
        key="dist.enqueue",
    )
    results.add(
        s,
        f"peer: loop of arq `enqueue_job`, {min(n, 10_000):,} jobs",
        "jobs/s",
        enqueue_loop,
        key="dist.enqueue.loop",
    )
    for workers, got in sf.items():
        w = f"{workers} worker{'s' if workers > 1 else ''}"
        scenario = f"statefleet, {n:,} chained 4-state, PostgreSQL, {w}"
        results.add(
            s,
            scenario,
            "batch create + enqueue, executions/s",
            got["created"],
            key=f"dist.create.{workers}",
        )
        results.add(s, scenario, "end-to-end executions/s", got["rate"], key=f"dist.rate.{workers}")
        results.add(s, scenario, "p50 latency ms", got["p50_ms"], "{:,.1f}")
        results.add(s, scenario, "p99 latency ms", got["p99_ms"], "{:,.1f}")
        results.add(s, scenario, "peak RSS per worker MB", got["rss"])
        results.add(
            s,
            f"peer: raw arq no-op, {n:,} jobs, {w}, tuned (max_jobs=100, poll_delay=0.01)",
            "jobs/s",
            got["tuned"],
            key=f"arq.tuned.{workers}",
        )
        results.add(s, f"peer: raw arq tuned, {w}", "peak RSS per worker MB", got["tuned_rss"])
        results.add(
            s,
            f"peer: raw arq no-op, {arq_default_n:,} jobs, {w}, arq defaults",
            "jobs/s",
            got["defaults"],
            key=f"arq.defaults.{workers}",
        )


# ------------------------------------------------------------------ 4 celery


class CeleryRuns:
    """The Celery peer's runs by process count. They are taken in the distributed section,
    right after the statefleet and arq runs with the same worker count, so that all three
    see the same load on the machine; the celery section adds the ones still missing."""

    def __init__(self, plan: Plan, pg: Any, redis_url: str) -> None:
        self.plan, self.pg, self.redis_url = plan, pg, redis_url
        self.runs: dict[int, list[dict[str, Any]]] = {p: [] for p in plan.celery_processes}
        self._tag = iter(range(10_000))
        self._ready = False

    def once(self, processes: int) -> None:
        from peers import celery_peer

        if processes not in self.runs or len(self.runs[processes]) >= self.plan.runs:
            return
        if not self._ready:
            celery_peer.setup()
            self._ready = True
        name = self.pg.create_database(f"celery_{processes}_{next(self._tag)}")
        try:
            result = celery_peer.measure(
                self.redis_url, self.pg.dsn(name), processes=processes, count=self.plan.celery
            )
        finally:
            self.pg.drop_database(name)
        self.runs[processes].append(result)
        log(f"celery {processes}p: {result['rate']:,.0f}/s")


def run_celery(results: Results, plan: Plan, celery: CeleryRuns) -> None:
    for processes in plan.celery_processes:
        while len(celery.runs[processes]) < plan.runs:
            celery.once(processes)
    for processes, runs in celery.runs.items():
        p = f"{processes} process{'es' if processes > 1 else ''}"
        scenario = f"peer: Celery prefork {p}, {plan.celery:,} x 4 steps, SQLAlchemy on PostgreSQL"
        results.add(
            "5 celery",
            scenario,
            "enqueue (apply_async loop), jobs/s",
            [r["enqueue_rate"] for r in runs],
        )
        results.add(
            "5 celery",
            scenario,
            "end-to-end executions/s",
            [r["rate"] for r in runs],
            key=f"celery.rate.{processes}",
        )
        results.add("5 celery", scenario, "p50 latency ms", [r["p50_ms"] for r in runs], "{:,.1f}")
        results.add("5 celery", scenario, "p99 latency ms", [r["p99_ms"] for r in runs], "{:,.1f}")
        results.add(
            "5 celery", scenario, "peak RSS per pool process MB", [r["rss_mb"] for r in runs]
        )


# ------------------------------------------------------------------ 5 scale


def run_scale(results: Results, plan: Plan) -> None:
    scale = importlib.import_module("scale")
    out = scale.run_all(
        list(plan.scale_rss), list(plan.scale_growth), plan.scale_time_limit, log=log
    )
    s = "6 scale"
    for row in out["rss"]:
        partial = (
            ""
            if row["finished"]
            else f" (first {row['seconds']:.0f} s: {row['done']:,} done, then cancelled)"
        )
        scenario = f"local batch of {row['size']:,} sources, Pass-only target, PostgreSQL{partial}"
        results.add(
            s,
            scenario,
            "peak RSS of the batch process MB",
            [row["rss_mb"]],
            key=f"scale.rss.{row['size']}",
        )
        results.add(s, scenario, "executions/s", [row["rate"]])
        samples = ", ".join(f"{x:.0f}" for x in row["rss_samples_mb"])
        results.notes.append(
            f"RSS of the {row['size']:,}-source batch process over its run (MB, evenly "
            f"spaced samples): {samples}; sources loaded at {row['load_rows_per_s']:,.0f} "
            "rows/s with create_executions, 5,000 per transaction."
        )
    for row in out["growth"]:
        scenario = f"local batch of {row['size']:,} chained 4-state, PostgreSQL"
        results.add(s, scenario, "executions/s", [row["rate"]], key=f"scale.rate.{row['size']}")
        results.add(s, scenario, "peak RSS MB", [row["rss_mb"]])
    results.notes.append(
        "Section 6 runs once per figure (a 1,000,000-source batch three times would take "
        f"most of an hour); a batch still running after {plan.scale_time_limit:.0f} s is "
        "cancelled and its peak RSS so far reported, as the scenario says."
    )


# ------------------------------------------------------------------ targets and ratios


def ratios_and_targets(results: Results, plan: Plan) -> None:
    r = results
    r.target("interp.four", "≥ 20,000/s (issue 2)", lambda v: v >= 20_000)
    r.target("local.batch.postgresql", "≥ 5,000/s (issue 4)", lambda v: v >= 5_000)
    r.target("local.batch.sqlite", "≥ 5,000/s (issue 4)", lambda v: v >= 5_000)
    r.ratio("dist.enqueue", "dist.enqueue.loop", "arq enqueue_job loop")
    r.target("dist.enqueue", "≥ 20,000/s (issue 5)", lambda v: v >= 20_000)
    for workers in plan.worker_counts:
        ours = f"dist.rate.{workers}"
        tuned = r.ratio(ours, f"arq.tuned.{workers}", "arq tuned")
        r.ratio(ours, f"arq.defaults.{workers}", "arq defaults")
        r.ratio(ours, f"celery.rate.{workers}", "Celery")
        if workers == 2:
            r.target(ours, "≥ 1,000/s (issue 5)", lambda v: v >= 1_000)
            if tuned is not None:
                figure = r.add_after(
                    ours,
                    "4 distributed",
                    "statefleet / raw arq tuned, 2 workers",
                    "ratio of medians",
                    [tuned],
                    "{:.2f}x",
                    target="≥ 0.8x (issue 5)",
                )
                figure.met = tuned >= 0.8
    small = r.get("scale.rss.10000")
    big = r.get("scale.rss.1000000")
    if small and big and small.median:
        ratio = (big.median or 0) / small.median
        big.ratios.append(f"{ratio:.2f}x the 10,000-source batch")
        big.target = "≤ 1.5x the 10,000-source batch (issue 4)"
        big.met = ratio <= 1.5


# ------------------------------------------------------------------ environment


def _command_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return "not found"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


def environment(with_celery: bool) -> dict[str, str]:
    from tests.services import find_postgres_bindir, find_redis_server

    def pkg(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    info = {
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "statefleet": pkg("statefleet"),
        "arq": pkg("arq"),
        "redis-py (statefleet's)": pkg("redis"),
        "SQLAlchemy": pkg("sqlalchemy"),
        "asyncpg": pkg("asyncpg"),
        "aiosqlite": pkg("aiosqlite"),
        "SQLite library": sqlite3.sqlite_version,
        "redis-server": _command_version([str(find_redis_server()), "--version"]),
        "PostgreSQL": _command_version([str(find_postgres_bindir() / "postgres"), "--version"]),
    }
    if with_celery:
        try:
            from peers import celery_peer

            peer = celery_peer.versions()
            info["celery (peer venv)"] = ", ".join(f"{k} {v}" for k, v in peer.items())
        except Exception as exc:
            info["celery (peer venv)"] = f"unavailable: {exc}"
    return info


def machine() -> dict[str, str]:
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "os": platform.platform(),
    }


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# ------------------------------------------------------------------ report


def report(
    results: Results, plan: Plan, quick: bool, env: dict[str, str], started: float, loads: list[str]
) -> str:
    mode = "quick (1 run per figure)" if quick else "full (median of 3 runs, min-max)"
    lines = [
        "# statefleet benchmarks",
        "",
        f"Generated by `{'make bench-quick' if quick else 'make bench'}` "
        f"(`python bench/run.py{' --quick' if quick else ''}`) on "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, mode: {mode}, took "
        f"{(time.time() - started) / 60:.1f} min. Do not edit by hand: the README and docs "
        "quote this file.",
        "",
        results.table(),
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in machine().items()]
    lines += [
        f"- load average (1, 5, 15 min) at start: {loads[0]}; at end: {loads[-1]}; by "
        f"section: {'; '.join(results.loads)}. A load above the 2 cores means other "
        "processes took CPU from the figures.",
        "",
        "## Versions",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in env.items()]
    lines += [
        "",
        "## Settings",
        "",
        "- PostgreSQL: started on loopback by `tests.services.start_postgres` with its "
        f"default durability ({', '.join(DURABLE_POSTGRES)}), max_connections=200, "
        "other settings at their defaults; a fresh database per run.",
        f"- Redis: started on loopback by `tests.services.start_redis`; {REDIS_PERSISTENCE}; "
        "other settings at their defaults; one server for the whole run.",
        "- SQLite: a file on the local disk, WAL journal, synchronous=FULL (statefleet's "
        "embedded default).",
        "- 4-state machine (bench/machines.py, every section): Pass -> Task (no-op) -> "
        "Choice -> Succeed, full history.",
        f"- Sizes: interpreter {plan.four_state:,} / {plan.map_100:,} executions per run; local "
        f"sequential {plan.sequential:,}, concurrent {plan.concurrent:,}, batch "
        f"{plan.local_batch:,} (sources created first with execute_bulk, untimed); "
        f"distributed {plan.distributed:,}; Celery {plan.celery:,} per run (its rate is "
        "steady well before that); runs per figure: "
        f"{plan.runs}.",
        "- Local batch: BatchOptions(concurrency=512, chunk_size=1000) (the 256 rows: "
        "concurrency=256); latency = from an "
        "execution's start to its final write (updated_at - started_at); peak RSS = VmHWM "
        "of the process that ran the scenario.",
        "- Distributed (bench/distributed.py): sources inserted straight into the store, "
        "then execute_batch with a QueueClient attached (chunk_size=2000) and W "
        "`statefleet worker --concurrency 100` processes started with it, stopped when the "
        "batch is done; latency as for the local batch; raw arq peers are burst "
        "workers over jobs enqueued beforehand; "
        "peak RSS per worker = VmHWM of each worker process, sampled every 0.2 s.",
        "- Celery peer: bench/peers/celery_app.py — prefork pool, Redis broker, Celery "
        "defaults (prefetch multiplier 4, early ack, JSON, no result backend); the task "
        "inserts the execution (RUNNING) in one transaction, then the 4 history rows and "
        "the final update in a second, with the SQLAlchemy ORM over psycopg 3; worker "
        "started and warmed up before the clock; end-to-end = first apply_async to last "
        "execution end. Each Celery run follows the statefleet and arq runs with the same "
        "worker count (section 4's loop), so that they see the same load on the machine.",
    ]
    if results.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results.notes]
    if results.failed:
        lines += ["", f"Sections that failed: {', '.join(results.failed)} (see stderr)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~3 minutes, 1 run per figure")
    parser.add_argument("--only", help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, help="results file (default: bench/results/...)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    chosen = set(args.only.split(",")) if args.only else set(SECTIONS)
    if unknown := chosen - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.quick:
        chosen.discard("scale")
    out = args.out or BENCH / "results" / ("quick.md" if args.quick else "latest.md")

    from tests.services import start_postgres, start_redis

    started = time.time()
    loads = [load_average()]
    results = Results()
    env = environment(with_celery="celery" in chosen)
    pg = start_postgres(extra_settings=DURABLE_POSTGRES)
    redis = start_redis()
    log(f"PostgreSQL on port {pg.port} (durable), Redis on port {redis.port}")
    celery = CeleryRuns(plan, pg, redis.url()) if "celery" in chosen else None
    try:
        if "interpreter" in chosen:
            with section(results, "interpreter"):
                run_interpreter(results, plan)
        if "store" in chosen:
            with section(results, "store"):
                run_store(results, plan, pg)
        if "local" in chosen:
            with section(results, "local"):
                run_local(results, plan, pg)
        if "distributed" in chosen:
            with section(results, "distributed"):
                run_distributed(results, plan, pg, redis.url(), celery)
        if celery is not None:
            with section(results, "celery"):
                run_celery(results, plan, celery)
    finally:
        pg.stop()
        redis.stop()
    if "scale" in chosen:
        with section(results, "scale"):
            run_scale(results, plan)
    ratios_and_targets(results, plan)
    loads.append(load_average())
    text = report(results, plan, args.quick, env, started, loads)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    print(text)
    print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    if results.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
