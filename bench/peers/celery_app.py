"""The Celery peer itself: runs inside its own virtualenv (see celery_peer.py), never in
statefleet's.

What a team glues together by hand instead of statefleet: a Celery task per entity
(Redis broker, prefork pool, Celery's defaults otherwise: prefetch multiplier 4, early
acks, JSON), running the 4-state machine's steps as plain functions (Prepare -> Work
(no-op) -> Big? -> Done) and recording them with the SQLAlchemy ORM on PostgreSQL (sync
psycopg 3): the execution row is inserted (RUNNING) and committed when the task starts,
then the 4 history rows and the final update of the execution (SUCCEEDED, output, end
time) are committed together — the same rows statefleet writes, in 2 transactions.

    python celery_app.py measure --redis URL --dsn postgresql://... --processes 2 --count N

prints one JSON line: enqueue rate, end-to-end executions/s, p50/p99 execution latency,
peak RSS of the pool processes. The worker is started (and warmed up) before the clock
starts; the clock runs from the first `apply_async` to the last execution's end time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import DateTime, Index, String, create_engine, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

HERE = Path(__file__).resolve().parent
QUEUE = "statefleet-bench-celery"
REDIS_ENV = "CELERY_PEER_REDIS"
DSN_ENV = "CELERY_PEER_DSN"

app = Celery("celery_peer", broker=os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


class Base(DeclarativeBase):
    pass


class Execution(Base):
    __tablename__ = "peer_executions"
    __table_args__ = (Index("ix_peer_executions_batch_status", "batch", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    batch: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    input: Mapped[Any] = mapped_column(JSONB)
    output: Mapped[Any] = mapped_column(JSONB, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class History(Base):
    __tablename__ = "peer_history"

    execution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sequence: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    input: Mapped[Any] = mapped_column(JSONB)
    output: Mapped[Any] = mapped_column(JSONB)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# ------------------------------------------------------------------ the four steps


def prepare(data: dict[str, Any]) -> dict[str, Any]:
    return {"order": data["order"], "amount": data["amount"]}


def noop(data: dict[str, Any]) -> dict[str, bool]:
    return {"ok": True}


def work(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "work": noop(data)}


def big(data: dict[str, Any]) -> dict[str, Any]:
    """The Choice: both branches go to Done, as in the state machine."""
    if data["amount"] > 100:
        return data
    return data


def done(data: dict[str, Any]) -> dict[str, Any]:
    return data


STEPS = (("Prepare", "Pass", prepare), ("Work", "Task", work), ("Big?", "Choice", big))
STEPS += (("Done", "Succeed", done),)

_engine: tuple[int, Engine] | None = None


def engine() -> Engine:
    """One engine per process (pool children are forked: never share a parent's)."""
    global _engine
    if _engine is None or _engine[0] != os.getpid():
        dsn = os.environ[DSN_ENV].replace("postgresql://", "postgresql+psycopg://", 1)
        _engine = (os.getpid(), create_engine(dsn, pool_size=2))
    return _engine[1]


def now() -> datetime:
    return datetime.now(UTC)


@app.task(name="peer.four_steps")
def four_steps(batch: str, index: int, payload: dict[str, Any]) -> None:
    execution_id = str(uuid.uuid4())
    with Session(engine()) as session, session.begin():
        session.add(
            Execution(
                id=execution_id,
                batch=batch,
                name=f"{batch}-{index}",
                status="RUNNING",
                input=payload,
                started_at=now(),
            )
        )
    history = []
    data = payload
    for sequence, (state, kind, step) in enumerate(STEPS, start=1):
        started = now()
        output = step(data)
        history.append(
            History(
                execution_id=execution_id,
                sequence=sequence,
                state=state,
                type=kind,
                status="SUCCEEDED",
                input=data,
                output=output,
                started_at=started,
                ended_at=now(),
            )
        )
        data = output
    with Session(engine()) as session, session.begin():
        session.add_all(history)
        session.execute(
            update(Execution)
            .where(Execution.id == execution_id)
            .values(status="SUCCEEDED", output=data, ended_at=now())
        )


# ------------------------------------------------------------------ measuring


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_done(batch: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    statement = select(func.count()).where(
        Execution.batch == batch, Execution.status == "SUCCEEDED"
    )
    while True:
        with engine().connect() as conn:
            finished = conn.execute(statement).scalar_one()
        if finished >= count:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"celery peer: only {finished} of {count} done after {timeout:.0f} s")
        time.sleep(0.2)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    os.environ[REDIS_ENV] = args.redis
    os.environ[DSN_ENV] = args.dsn
    app.conf.broker_url = args.redis
    Base.metadata.create_all(engine())
    command = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool=prefork"]
    command += [f"--concurrency={args.processes}", "-Q", QUEUE, "--loglevel=WARNING"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    log = open(Path(args.log) if args.log else os.devnull, "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        command, cwd=HERE, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        # Warm up every pool process (imports, connection pools) before the clock starts.
        warm = 20 * args.processes
        for i in range(warm):
            four_steps.apply_async(args=["warmup", i, {"order": f"w-{i}", "amount": i}])
        wait_done("warmup", warm, 120)
        batch = f"run-{uuid.uuid4().hex[:8]}"
        inputs = [{"order": f"o-{i}", "amount": i % 250} for i in range(args.count)]
        started = time.time()
        for i, payload in enumerate(inputs):
            four_steps.apply_async(args=[batch, i, payload])
        enqueued = time.time() - started
        wait_done(batch, args.count, args.timeout)
        with engine().connect() as conn:
            rows = conn.execute(
                select(Execution.started_at, Execution.ended_at).where(Execution.batch == batch)
            ).all()
        last_end = max(ended for _, ended in rows).timestamp()
        latencies = sorted((ended - start).total_seconds() for start, ended in rows)
        pool = children_of(worker.pid)
        result = {
            "count": args.count,
            "processes": args.processes,
            "enqueue_rate": args.count / enqueued,
            "rate": args.count / (last_end - started),
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "rss_mb": max(peak_rss_mb(pid) for pid in pool) if pool else 0.0,
            "main_rss_mb": peak_rss_mb(worker.pid),
        }
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("measure")
    run.add_argument("--redis", required=True)
    run.add_argument("--dsn", required=True, help="postgresql://user@host:port/db")
    run.add_argument("--processes", type=int, default=2)
    run.add_argument("--count", type=int, default=20_000)
    run.add_argument("--timeout", type=float, default=900)
    run.add_argument("--log", help="the worker's log file (default: discarded)")
    sub.add_parser("versions")
    args = parser.parse_args()
    if args.command == "versions":
        from importlib.metadata import version

        names = ("celery", "kombu", "redis", "sqlalchemy", "psycopg")
        print(json.dumps({name: version(name) for name in names}))
        return
    print(json.dumps(measure(args)))


if __name__ == "__main__":
    main()
