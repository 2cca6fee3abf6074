"""``Fleet``: the one object the web UI and the REST API are thin layers over.

Every method reads or does one thing and returns JSON-ready data (dicts, lists, ISO-8601
times): the API returns it as JSON, the pages render the very same values. Reads come
from the store (executions, machines, batches, dead letters) and, when Redis is
configured, from the queue inspector (:class:`statefleet.ui.queueops.QueueOps`).

Actions that run an execution (start, redrive, resume a batch) enqueue it when a queue
client is attached; without one they run it in this process, as asyncio tasks, with the
App's resources.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from statefleet.app import App
from statefleet.callbacks import (
    CallbackResult,
    send_message,
    send_task_failure,
    send_task_heartbeat,
    send_task_success,
)
from statefleet.errors import (
    ChainingError,
    NotFoundError,
    StatefleetError,
)
from statefleet.queue.client import QueueClient
from statefleet.queue.deadletters import DeadLetters
from statefleet.queue.inspector import JobDurations
from statefleet.queue.priorities import queue_for
from statefleet.statemachine.batch import Batch, BatchOptions, BatchStatus
from statefleet.statemachine.lifecycle import TERMINAL, ExecutionStatus
from statefleet.statemachine.persistent import PersistentStateMachine
from statefleet.statemachine.protocols import (
    BatchRecord,
    DeadLetterRecord,
    ExecutionFilter,
    ExecutionRecord,
    Store,
    WaitRecord,
)
from statefleet.ui import queries
from statefleet.ui.graph import Highlight, build_graph, path_of, render_svg
from statefleet.ui.queueops import JOB_STATES, QUEUE_STATES, QueueOps

__all__ = ["Fleet", "NoQueueError", "UserError", "jsonable"]

logger = logging.getLogger(__name__)

S = ExecutionStatus
STATUSES = [s.value for s in ExecutionStatus]


class UserError(StatefleetError):
    """A request that cannot be done as asked (HTTP 400, or ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class NoQueueError(UserError):
    """Redis is not configured: the queue pages have nothing to show (HTTP 503)."""

    def __init__(self) -> None:
        super().__init__(
            "no Redis configured (STATEFLEET_REDIS_URL): the queue pages need the distributed mode",
            503,
        )


def jsonable(value: Any) -> Any:
    """Records, datetimes and containers as JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def _parse_time(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{field}: not an ISO-8601 time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _execution(record: ExecutionRecord, *, full: bool = False) -> dict[str, Any]:
    out = jsonable(record)
    if not full:
        for heavy in ("input", "data", "variables", "output"):
            out.pop(heavy, None)
    start, end = record.started_at, record.ended_at
    out["duration_seconds"] = (
        (end - start).total_seconds() if start is not None and end is not None else None
    )
    return out


def _wait(wait: WaitRecord) -> dict[str, Any]:
    out = jsonable(wait)
    if wait.kind == "task":
        out["waits_for"] = "task token"
    else:
        out["waits_for"] = (
            f"message {wait.correlation_key}="
            f"{json.dumps(wait.correlation_value, ensure_ascii=False)}"
        )
    deadline = wait.deadline()
    out["deadline"] = deadline.isoformat() if deadline is not None else None
    return out


def _json_field(value: Any, name: str, *, text_ok: bool = False) -> Any:
    """A form field holding JSON ('' is null); with ``text_ok``, text that is not JSON is
    taken as a string."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        if text_ok:
            return value
        raise UserError(f"{name} is not valid JSON") from None


def _batch_queue(record: BatchRecord | None) -> str:
    if record is None:
        return "default"
    options = record.options or {}
    try:
        return queue_for(options.get("priority", "default"), options.get("queue"))
    except ValueError:
        return "default"


class Fleet:
    """Reads and actions over one store and (optionally) one fleet's Redis."""

    def __init__(
        self,
        store: Store,
        *,
        app: App | None = None,
        client: QueueClient | None = None,
    ) -> None:
        self.store = store
        self.app = app or App()
        self.client = client
        self.ops = QueueOps(client) if client is not None else None
        self._machines: dict[tuple[str, str | None], PersistentStateMachine] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._batches: dict[str, Batch] = {}
        self._durations: dict[str, list[int]] = {}
        self._duration_sums: dict[str, float] = {}
        self._watermark: datetime | None = None
        self._metrics_lock = asyncio.Lock()

    async def close(self) -> None:
        """Stop what this process runs: executions started here (local mode) and the
        drivers of the batches started here (their executions stay in the store)."""
        tasks = list(self._tasks) + [
            b._task for b in self._batches.values() if b._task is not None and not b._task.done()
        ]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coroutine: Any, what: str) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                logger.warning("%s failed: %s", what, finished.exception())

        task.add_done_callback(done)

    @property
    def queue_enabled(self) -> bool:
        return self.ops is not None

    def _ops(self) -> QueueOps:
        if self.ops is None:
            raise NoQueueError()
        return self.ops

    async def machine(self, machine_id: str, version: str | None = None) -> PersistentStateMachine:
        key = (machine_id, version)
        found = self._machines.get(key)
        if found is None:
            found = await PersistentStateMachine.load(
                machine_id,
                store=self.store,
                version=version,
                resources=self.app.resources,
                transformers=self.app.transformers,
                lease_seconds=self.app.settings.lease_seconds,
            )
            found.set_queue_client(self.client)
            self._machines[key] = found
        return found

    # ================================================================== health

    async def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": "ok"}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(3):
                await self.store.count_executions(ExecutionFilter(status=S.RUNNING.value))
            out["database"] = {
                "ok": True,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        except Exception as exc:  # reported, not raised: this is what health is for
            out["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            out["status"] = "fail"
        if self.ops is None:
            out["redis"] = None
            return out
        started = time.perf_counter()
        try:
            async with asyncio.timeout(3):
                redis = await self._ops().client.redis()
                await redis.ping()
                latency = round((time.perf_counter() - started) * 1000, 1)
                workers = await self._ops().workers()
                queues = await self._ops().inspector.queues()
            out["redis"] = {"ok": True, "latency_ms": latency}
            out["workers"] = sum(1 for w in workers if w.get("status") != "gone")
            out["queues"] = {q.name: {"size": q.size, "paused": q.paused} for q in queues}
        except Exception as exc:
            out["redis"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            out["status"] = "fail"
        return out

    # ================================================================== queues

    async def overview(self, *, days: int = 7) -> dict[str, Any]:
        days = 30 if days > 7 else 7
        if self.ops is None:
            return {"enabled": False, "queues": [], "daily": None, "workers": 0, "days": days}
        ops = self._ops()
        queues = await ops.summaries()
        workers = await ops.workers()
        return {
            "enabled": True,
            "days": days,
            "queues": queues,
            "daily": await ops.daily(days),
            "workers": sum(1 for w in workers if w.get("status") != "gone"),
            "totals": {
                key: sum(q[key] for q in queues)
                for key in (
                    "size",
                    "active",
                    "pending",
                    "scheduled",
                    "retry",
                    "dead",
                    "completed",
                    "processed_today",
                    "failed_today",
                )
            },
        }

    async def queue_names(self) -> list[str]:
        return await self._ops().queue_names()

    async def queue(self, name: str) -> dict[str, Any]:
        ops = self._ops()
        for summary in await ops.summaries():
            if summary["name"] == name:
                return summary
        raise NotFoundError(f"no queue {name!r}")

    async def queue_jobs(
        self,
        name: str,
        state: str,
        *,
        page: int = 1,
        size: int = 20,
        search: str | None = None,
    ) -> dict[str, Any]:
        """One tab of a queue: its jobs of ``state``, a page of them, or the job a search
        names (by job id or execution id)."""
        ops = self._ops()
        if state not in JOB_STATES:
            raise UserError(f"state must be one of {', '.join(JOB_STATES)}, not {state!r}")
        summary = await self.queue(name)
        size = max(1, min(size, 200))
        page = max(1, page)
        total = int(summary.get(state, 0))
        if search:
            found = await self.find_job(name, search)
            jobs = [found] if found is not None and found["state"] == state else []
            others = [found] if found is not None and found["state"] != state else []
            return {
                "queue": summary,
                "state": state,
                "jobs": jobs,
                "search": search,
                "found_elsewhere": others,
                "total": len(jobs),
                "page": 1,
                "pages": 1,
                "size": size,
            }
        offset = (page - 1) * size
        if state == "dead":
            letters, total = await queries.dead_letter_page(
                self.store, queue=name, limit=size, offset=offset
            )
            jobs = [self._dead_job(letter) for letter in letters]
        else:
            jobs = [
                view.as_dict() for view in await ops.jobs_in(name, state, offset=offset, limit=size)
            ]
            if state in QUEUE_STATES:
                await self._last_errors(jobs)
        return {
            "queue": summary,
            "state": state,
            "jobs": jobs,
            "search": None,
            "found_elsewhere": [],
            "total": total,
            "page": page,
            "pages": max(1, math.ceil(total / size)),
            "size": size,
        }

    def _dead_job(self, letter: DeadLetterRecord) -> dict[str, Any]:
        return {
            "job_id": letter.job_id or letter.id,
            "queue": letter.queue,
            "state": "dead",
            "execution_id": letter.execution_id,
            "function": "statefleet.run",
            "args": letter.payload,
            "tries": letter.tries,
            "error": letter.error,
            "cause": letter.cause,
            "machine_id": letter.state_machine_id,
            "dead_letter_id": letter.id,
            "finished_at": letter.created_at.isoformat() if letter.created_at else None,
        }

    async def _last_errors(self, jobs: list[dict[str, Any]]) -> None:
        """Fill in each tried job's last error from its execution's history."""
        for job in jobs:
            if not job.get("tries") or not job.get("execution_id"):
                continue
            history = await self.store.history(job["execution_id"])
            for record in reversed(history):
                if record.error:
                    job["error"], job["cause"] = record.error, record.cause
                    break

    async def find_job(self, name: str, text: str) -> dict[str, Any] | None:
        ops = self._ops()
        job_id = ops.job_id_of(text)
        view = await ops.job(name, job_id)
        if view is not None:
            found = view.as_dict()
            await self._last_errors([found])
            return found
        for letter in await queries.dead_letters_where(self.store, queue=name, job_ids=[job_id]):
            return self._dead_job(letter)
        return None

    async def job(self, name: str, job_id: str) -> dict[str, Any]:
        found = await self.find_job(name, job_id)
        if found is None:
            raise NotFoundError(f"no job {job_id!r} in queue {name!r}")
        execution = None
        if found.get("execution_id"):
            record = await self.store.get_execution(found["execution_id"])
            execution = _execution(record) if record is not None else None
        return {"job": found, "execution": execution}

    async def job_action(
        self,
        name: str,
        action: str,
        *,
        state: str,
        ids: Sequence[str] = (),
        all_in_state: bool = False,
    ) -> dict[str, Any]:
        """``run`` (scheduled -> pending), ``retry`` (dead -> pending, redriving the
        execution), ``delete`` (the job is dropped and its execution cancelled; a dead job's
        letter, a completed job's result), ``cancel`` (an active job: its execution is
        aborted, the worker stops at its next checkpoint) — on ``ids`` or every job of
        ``state`` in the queue."""
        ops = self._ops()
        if state not in JOB_STATES:
            raise UserError(f"state must be one of {', '.join(JOB_STATES)}, not {state!r}")
        allowed = {
            "active": {"cancel"},
            "pending": {"delete"},
            "scheduled": {"run", "delete"},
            "retry": {"run", "delete"},
            "dead": {"retry", "delete"},
            "completed": {"delete"},
        }[state]
        if action not in allowed:
            raise UserError(
                f"{action!r} does not apply to {state} jobs ({', '.join(sorted(allowed))})"
            )
        chosen = list(ids)
        if all_in_state:
            if state == "dead":
                letters = await queries.dead_letters_where(self.store, queue=name)
                chosen = [d.job_id or d.id for d in letters]
            elif state == "completed":
                views, _ = await ops.results(max_age=0)
                chosen = [v.job_id for v in views if v.queue == name]
            else:
                views = await ops.jobs_in(name, state, limit=10**6)
                chosen = [v.job_id for v in views]
        if not chosen:
            return {"action": action, "state": state, "done": 0, "skipped": {}}
        if state == "dead":
            letters = await self._letters_of_jobs(name, chosen)
            if action == "retry":
                report = await self._dead_letters().retry([d.id for d in letters])
                return {
                    "action": action,
                    "state": state,
                    "done": len(report.retried),
                    "skipped": report.skipped,
                }
            count = await self._dead_letters().purge([d.id for d in letters])
            return {"action": action, "state": state, "done": count, "skipped": {}}
        if state == "completed":
            count = await ops.delete_results(chosen)
            return {"action": action, "state": state, "done": count, "skipped": {}}
        if action == "run":
            moved = await ops.run_now(name, chosen)
            return {"action": action, "state": state, "done": moved, "skipped": {}}
        if action == "cancel":
            done = 0
            for job_id in chosen:
                execution_id = ops.keys.execution_id(job_id)
                if execution_id is not None and await self._abort(execution_id, "cancelled"):
                    done += 1
            return {"action": action, "state": state, "done": done, "skipped": {}}
        removed = await ops.drop_jobs(name, chosen)
        for job_id in removed:
            execution_id = ops.keys.execution_id(job_id)
            if execution_id is not None:
                await self._abort(execution_id, "its job was deleted from the queue")
        skipped = {j: "running now" for j in chosen if j not in removed}
        return {"action": action, "state": state, "done": len(removed), "skipped": skipped}

    async def _abort(self, execution_id: str, cause: str) -> bool:
        count = await self.store.abort_executions(
            execution_ids=[execution_id],
            error="States.Aborted",
            cause=cause,
            now=datetime.now(UTC),
        )
        return count > 0

    async def _letters_of_jobs(self, name: str, job_ids: Sequence[str]) -> list[DeadLetterRecord]:
        return await queries.dead_letters_where(self.store, queue=name, job_ids=job_ids)

    def _dead_letters(self) -> DeadLetters:
        ops = self._ops()
        machines = {m: sm for (m, v), sm in self._machines.items() if v is None}
        return DeadLetters(self.store, ops.client, machines=machines)

    async def pause_queue(self, name: str, *, paused: bool) -> dict[str, Any]:
        ops = self._ops()
        if paused:
            await ops.client.pause(name)
        else:
            await ops.client.resume(name)
        return {"queue": name, "paused": paused}

    async def delete_queue(self, name: str) -> dict[str, Any]:
        ops = self._ops()
        if name not in await ops.queue_names():
            raise NotFoundError(f"no queue {name!r}")
        if not await ops.delete_queue(name):
            raise UserError(
                f"queue {name!r} is not empty: delete or run its jobs first", status=409
            )
        return {"queue": name, "deleted": True}

    async def workers(self) -> list[dict[str, Any]]:
        return await self._ops().workers()

    async def job_durations(self) -> list[JobDurations]:
        """The workers' job run time histogram (``/metrics``)."""
        return await self._ops().inspector.job_durations()

    async def pause_worker(self, worker_id: str, *, paused: bool) -> dict[str, Any]:
        await self._ops().pause_workers([worker_id], paused=paused)
        return {"worker": worker_id, "paused": paused}

    async def redis_info(self) -> dict[str, Any]:
        return await self._ops().redis_info()

    # ================================================================== machines

    async def machines(self) -> list[dict[str, Any]]:
        counts = await queries.counts_by_machine(self.store)
        out = []
        for record in await self.store.list_definitions():
            by_status = counts.get(record.id, {})
            out.append(
                {
                    "id": record.id,
                    "name": record.name,
                    "version": record.version,
                    "updated_at": jsonable(record.updated_at or record.created_at),
                    "counts": {s: by_status.get(s, 0) for s in STATUSES},
                    "total": sum(by_status.values()),
                }
            )
        return out

    async def machine_info(self, machine_id: str, *, version: str | None = None) -> dict[str, Any]:
        record = await self.store.get_definition(machine_id, version)
        if record is None:
            raise NotFoundError(f"no state machine {machine_id!r}")
        versions = await self.store.definition_versions(machine_id)
        by_status = await self.store.count_by_status(ExecutionFilter(state_machine_id=machine_id))
        states = await queries.state_counts(self.store, machine_id)
        batches = await self.store.list_batches(machine_id, 10)
        return {
            "id": record.id,
            "name": record.name,
            "version": record.version,
            "definition": record.definition,
            "versions": [
                {"version": v.version, "created_at": jsonable(v.created_at)} for v in versions
            ],
            "counts": {s: by_status.get(s, 0) for s in STATUSES},
            "total": sum(by_status.values()),
            "state_counts": states,
            "errors": await queries.errors_of(self.store, machine_id=machine_id),
            "batches": [self._batch_summary(b) for b in batches],
        }

    async def graph(
        self,
        machine_id: str,
        *,
        version: str | None = None,
        execution: ExecutionRecord | None = None,
        batch_id: str | None = None,
        link: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """(SVG, JSON) of a machine's graph: with the live counts per state (of the whole
        machine, or of one batch), or with one execution's path."""
        from statefleet.statemachine.machine import StateMachine

        record = await self.store.get_definition(
            machine_id, execution.version if execution is not None else version
        )
        if record is None:
            raise NotFoundError(f"no state machine {machine_id!r}")
        graph = build_graph(StateMachine.from_definition(record.definition).machine)
        if execution is not None:
            history = await self.store.history(execution.id)
            path = path_of(history)
            current = execution.current_state
            failed = frozenset(
                {current} if current and execution.status in queries.FAILURES else set()
            )
            if current and (not path or path[-1] != current):
                path.append(current)
            highlight = Highlight(
                path=path,
                current=current,
                current_status=execution.status,
                failed_states=failed,
            )
            data = graph.as_dict()
            data["path"] = path
            data["current"] = current
        else:
            counts = await queries.state_counts(self.store, machine_id, batch_id=batch_id)
            highlight = Highlight(counts=counts, link=link)
            data = graph.as_dict()
            data["counts"] = counts
        return render_svg(graph, highlight, title=machine_id), data

    async def start_execution(
        self,
        machine_id: str,
        input: Any,
        *,
        name: str | None = None,
        queue: str | None = None,
    ) -> dict[str, Any]:
        """Create an execution and start it (enqueued, or run in this process); returns
        at once with its record."""
        machine = await self.machine(machine_id)
        if self.client is None:
            machine.statemachine.check_resources(machine.resources)
        record = machine.new_execution(input, name=name)
        await self.store.create_executions([record])
        if self.client is not None:
            await self.client.enqueue([record], queue=queue or "default")
        else:
            self._spawn(machine.resume(record.id), f"execution {record.id}")
        return _execution(record, full=True)

    async def start_batch(self, machine_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A bulk batch (``{"inputs": [...]}``) or a chained one (``{"source": {filter}}``,
        with ``source_state``, ``transformer``, ``unique``); ``options`` are
        :class:`BatchOptions` fields."""
        machine = await self.machine(machine_id)
        raw = dict(body.get("options") or {})
        allowed = {f.name for f in dataclasses.fields(BatchOptions)} - {"on_start", "on_complete"}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise UserError(f"unknown batch options {unknown}")
        try:
            options = BatchOptions(**raw)
        except (TypeError, ValueError) as exc:
            raise UserError(f"invalid batch options: {exc}") from None
        if "inputs" in body:
            inputs = body["inputs"]
            if not isinstance(inputs, list):
                raise UserError("inputs must be a JSON array")
            batch = await machine.execute_bulk(inputs, options)
        elif "source" in body:
            source = body["source"]
            if not isinstance(source, Mapping):
                raise UserError("source must be an object (an execution filter)")
            selection = self.execution_filter(source)
            batch = await machine.execute_batch(
                selection,
                source_state=body.get("source_state") or None,
                transformer=body.get("transformer") or None,
                unique=bool(body.get("unique", False)),
                options=options,
            )
        else:
            raise UserError('a batch needs "inputs" (bulk) or "source" (chained)')
        self._batches[batch.id] = batch
        return self._batch_summary(batch.record)

    # ================================================================== executions

    def execution_filter(self, params: Mapping[str, Any]) -> ExecutionFilter:
        """An :class:`ExecutionFilter` from query parameters or JSON."""
        status = params.get("status")
        statuses: Any = None
        if isinstance(status, str) and status:
            statuses = tuple(s.strip().upper() for s in status.split(",") if s.strip())
        elif isinstance(status, list | tuple) and status:
            statuses = tuple(str(s).upper() for s in status)
        for value in statuses or ():
            if value not in STATUSES:
                raise UserError(f"unknown status {value!r} ({', '.join(STATUSES)})")

        def text(key: str, *aliases: str) -> str | None:
            for name in (key, *aliases):
                value = params.get(name)
                if value:
                    return str(value)
            return None

        return ExecutionFilter(
            state_machine_id=text("state_machine_id", "machine"),
            status=statuses,
            name_prefix=text("name_prefix", "name"),
            batch_id=text("batch_id", "batch"),
            current_state=text("current_state", "state"),
            started_after=_parse_time(text("started_after", "from"), "started_after"),
            started_before=_parse_time(text("started_before", "to"), "started_before"),
            ended_after=_parse_time(text("ended_after"), "ended_after"),
            ended_before=_parse_time(text("ended_before"), "ended_before"),
        )

    async def executions(
        self,
        params: Mapping[str, Any],
        *,
        before: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """A page of executions, newest first; ``before``/``after`` are the ids that page
        to older / newer ones."""
        selection = self.execution_filter(params)
        limit = max(1, min(limit, 500))
        total = await self.store.count_executions(selection)
        newer = after is not None and before is None
        page_filter = dataclasses.replace(selection, before=before, after=after if newer else None)
        records = await queries.executions_page(self.store, page_filter, limit=limit, newer=newer)
        older_exists = newer_exists = False
        if records:
            older_exists = bool(
                await self.store.count_executions(
                    dataclasses.replace(selection, before=records[-1].id)
                )
            )
            newer_exists = bool(
                await self.store.count_executions(
                    dataclasses.replace(selection, after=records[0].id)
                )
            )
        return {
            "executions": [_execution(r) for r in records],
            "total": total,
            "older": records[-1].id if records and older_exists else None,
            "newer": records[0].id if records and newer_exists else None,
            "limit": limit,
        }

    async def execution(self, execution_id: str) -> dict[str, Any]:
        record = await self.store.get_execution(execution_id)
        if record is None:
            raise NotFoundError(f"no execution {execution_id!r}")
        history = await self.store.history(execution_id)
        links_from = await self.store.links_from(execution_id)
        links_to = await self.store.links_to(execution_id)
        letters = await queries.dead_letters_where(self.store, execution_id=execution_id)
        out = _execution(record, full=True)
        steps = []
        for h in history:
            step = jsonable(h)
            step["duration_seconds"] = (
                (h.ended_at - h.started_at).total_seconds()
                if h.started_at is not None and h.ended_at is not None
                else None
            )
            steps.append(step)
        out["history"] = steps
        out["links_from"] = jsonable(links_from)
        out["links_to"] = jsonable(links_to)
        out["dead_letters"] = jsonable(letters)
        out["can_redrive"] = record.status in (S.FAILED, S.TIMED_OUT, S.ABORTED)
        out["can_cancel"] = record.status not in TERMINAL
        waits = await self.store.list_waits(execution_id=execution_id) if out["can_cancel"] else []
        out["waits"] = [_wait(w) for w in waits]
        return out

    async def redrive(self, execution_id: str) -> dict[str, Any]:
        """Run a FAILED/TIMED_OUT/ABORTED execution again from its failed state (enqueued,
        or in this process)."""
        record = await self.store.get_execution(execution_id)
        if record is None:
            raise NotFoundError(f"no execution {execution_id!r}")
        if record.status not in (S.FAILED, S.TIMED_OUT, S.ABORTED):
            raise UserError(
                f"execution {execution_id!r} is {record.status}: only a failed, "
                "timed-out or aborted execution can be redriven",
                status=409,
            )
        machine = await self.machine(record.state_machine_id, record.version)
        if self.client is None:
            machine.statemachine.check_resources(machine.resources)
        prepared = await machine.prepare_redrive(execution_id)
        if self.client is not None:
            batch = await self.store.get_batch(record.batch_id) if record.batch_id else None
            await self.client.enqueue([prepared], queue=_batch_queue(batch))
        else:
            self._spawn(machine.resume(execution_id), f"redrive of {execution_id}")
        return _execution(prepared)

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        record = await self.store.get_execution(execution_id)
        if record is None:
            raise NotFoundError(f"no execution {execution_id!r}")
        if record.status in TERMINAL:
            raise UserError(f"execution {execution_id!r} has ended ({record.status})", status=409)
        await self._abort(execution_id, "cancelled")
        updated = await self.store.get_execution(execution_id)
        assert updated is not None
        return _execution(updated)

    async def send_callback(self, kind: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        """Answer a ``.waitForTaskToken`` task (success, failure or heartbeat) through the
        library's callback functions; the execution resumes on the queue, or in this
        process with the App's resources. Returns the result and its HTTP status: 200
        accepted, 409 already answered, 404 unknown token."""
        token = body.get("task_token")
        if not isinstance(token, str) or not token.strip():
            raise UserError("task_token is required")
        token = token.strip()
        if kind == "success":
            output = body.get("output")
            if body.get("_form"):  # a page's form: the output is JSON text
                output = _json_field(output, "output")
            result = await send_task_success(
                token, output, store=self.store, app=self.app, client=self.client
            )
        elif kind == "failure":
            error, cause = body.get("error") or None, body.get("cause") or None
            if not isinstance(error, str | None) or not isinstance(cause, str | None):
                raise UserError("error and cause must be strings")
            result = await send_task_failure(
                token, error, cause, store=self.store, app=self.app, client=self.client
            )
        elif kind == "heartbeat":
            result = await send_task_heartbeat(token, store=self.store, app=self.app)
        else:
            raise UserError(f"no task callback {kind!r} (success, failure, heartbeat)", 404)
        return self._answered(result)

    async def send_message(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        """Send a message to the Message states waiting for its correlation key and value."""
        key = body.get("correlation_key")
        if not isinstance(key, str) or not key.strip():
            raise UserError("correlation_key is required")
        value = body.get("correlation_value")
        payload = body.get("payload")
        keep_for = body.get("keep_for") or None
        if body.get("_form"):
            value = _json_field(value, "correlation_value", text_ok=True)
            payload = _json_field(payload, "payload")
            keep_for = _json_field(keep_for, "keep_for") if keep_for else None
        if keep_for is not None and (
            isinstance(keep_for, bool) or not isinstance(keep_for, int | float) or keep_for <= 0
        ):
            raise UserError("keep_for must be a positive number of seconds")
        result = await send_message(
            key.strip(),
            value,
            payload,
            keep_for=keep_for,
            store=self.store,
            app=self.app,
            client=self.client,
        )
        return self._answered(result)

    @staticmethod
    def _answered(result: CallbackResult) -> tuple[dict[str, Any], int]:
        data = result.as_dict()
        data["message"] = f"{result.outcome.replace('_', ' ')}: {result.detail}"
        status = {"already_answered": 409, "unknown_token": 404, "no_waiter": 404}
        return data, status.get(result.outcome, 200)

    async def waiting(
        self, *, machine: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The open callback waits (executions waiting for a task token or a message),
        newest first, with what each waits for."""
        if kind not in (None, "task", "message"):
            raise UserError("kind must be 'task' or 'message'")
        waits = await self.store.list_waits(
            state_machine_id=machine, kind=kind, limit=max(1, min(limit, 500))
        )
        return [_wait(w) for w in waits]

    # ================================================================== batches

    def _batch_summary(self, record: BatchRecord) -> dict[str, Any]:
        out = jsonable(record)
        out["kind"] = (record.options or {}).get("kind", "bulk")
        return out

    async def batches(
        self, *, machine_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        records = await self.store.list_batches(machine_id, limit)
        out = []
        for record in records:
            summary = self._batch_summary(record)
            if record.status == BatchStatus.RUNNING:
                counts = await self.store.count_by_status(ExecutionFilter(batch_id=record.id))
                summary.update(self._progress(record, counts))
            else:
                counts = dict(record.counters or {})
                summary.update(self._progress(record, counts))
            out.append(summary)
        return out

    def _progress(self, record: BatchRecord, counts: Mapping[str, int]) -> dict[str, Any]:
        created = sum(counts.values())
        ended = sum(n for s, n in counts.items() if s in {t.value for t in TERMINAL})
        failed = sum(n for s, n in counts.items() if s in queries.FAILURES)
        total = max(record.total or 0, created)
        start = record.created_at or datetime.now(UTC)
        stop = record.finished_at or datetime.now(UTC)
        elapsed = max((stop - start).total_seconds(), 1e-6)
        rate = ended / elapsed if ended else 0.0
        remaining = max(total - ended, 0)
        running = record.status == BatchStatus.RUNNING
        eta = remaining / rate if running and rate > 0 else None
        return {
            "counts": {s: counts.get(s, 0) for s in STATUSES if counts.get(s, 0)},
            "created": created,
            "ended": ended,
            "failed": failed,
            "succeeded": counts.get(S.SUCCEEDED.value, 0),
            "total": total,
            "percent": round(100.0 * ended / total, 1)
            if total
            else (100.0 if not running else 0.0),
            "elapsed_seconds": round(elapsed, 3),
            "throughput": round(rate, 2),
            "eta_seconds": round(eta, 1) if eta is not None else None,
            "running": running,
        }

    async def batch(self, batch_id: str) -> dict[str, Any]:
        record = await self.store.get_batch(batch_id)
        if record is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        counts = await self.store.count_by_status(ExecutionFilter(batch_id=batch_id))
        out = self._batch_summary(record)
        out.update(self._progress(record, counts))
        out["errors"] = await queries.errors_of(self.store, batch_id=batch_id)
        out["can_cancel"] = record.status == BatchStatus.RUNNING
        out["can_resume"] = record.status != BatchStatus.RUNNING or (
            batch_id not in self._batches and (record.options or {}).get("kind") == "chain"
        )
        return out

    async def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        record = await self.store.get_batch(batch_id)
        if record is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        batch = self._batches.get(batch_id)
        if batch is None:
            machine = await self.machine(record.state_machine_id)
            batch = await machine.get_batch(batch_id)
        if not await batch.cancel("cancelled from the UI"):
            raise UserError(f"batch {record.name} already {batch.status}", status=409)
        return await self.batch(batch_id)

    async def resume_batch(self, batch_id: str) -> dict[str, Any]:
        record = await self.store.get_batch(batch_id)
        if record is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        if record.options.get("kind") != "chain":
            raise UserError(
                f"batch {record.name!r} was started from inputs: resume it with the same "
                f"inputs, statefleet batch resume {batch_id} --inputs FILE.jsonl",
                status=409,
            )
        machine = await self.machine(record.state_machine_id)
        try:
            batch = await machine.resume_batch(batch_id)
        except ChainingError as exc:
            raise UserError(str(exc), status=409) from None
        self._batches[batch.id] = batch
        return await self.batch(batch_id)

    # ================================================================== dead letters

    async def dead_letters(
        self,
        *,
        machine: str | None = None,
        batch: str | None = None,
        error: str | None = None,
        queue: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        letters, total = await queries.dead_letter_page(
            self.store,
            state_machine_id=machine or None,
            batch_id=batch or None,
            error=error or None,
            queue=queue or None,
            before=before or None,
            limit=max(1, min(limit, 500)),
        )
        return {
            "dead_letters": jsonable(letters),
            "total": total,
            "older": letters[-1].id if len(letters) == limit else None,
            "errors": await queries.dead_letter_errors(self.store),
        }

    async def dead_letter_action(
        self,
        action: str,
        *,
        ids: Sequence[str] = (),
        machine: str | None = None,
        batch: str | None = None,
        error: str | None = None,
        everything: bool = False,
    ) -> dict[str, Any]:
        """``retry`` or ``purge`` the dead letters named by ``ids``, or by the filter (with
        no id and no filter, only if ``everything``)."""
        if action not in ("retry", "purge"):
            raise UserError(f"action must be retry or purge, not {action!r}")
        if not ids and not (machine or batch or error) and not everything:
            raise UserError("name dead letters (ids) or a filter (machine, batch, error)")
        letters = self._dead_letters()
        selection = {
            "state_machine_id": machine or None,
            "batch_id": batch or None,
            "error": error or None,
        }
        if action == "retry":
            report = await letters.retry(list(ids), **selection)
            return {"action": action, "done": len(report.retried), "skipped": report.skipped}
        count = await letters.purge(list(ids), **selection)
        return {"action": action, "done": count, "skipped": {}}

    # ================================================================== metrics

    async def observe_durations(self) -> dict[str, tuple[list[int], float, int]]:
        """Execution durations observed since this process started, per machine:
        (cumulative bucket counts, sum, count) for :data:`DURATION_BUCKETS`."""
        async with self._metrics_lock:
            if self._watermark is None:
                self._watermark = datetime.now(UTC)
            else:
                rows, self._watermark = await queries.durations_since(self.store, self._watermark)
                for machine, seconds in rows:
                    buckets = self._durations.setdefault(machine, [0] * (len(DURATION_BUCKETS) + 1))
                    for index, bound in enumerate(DURATION_BUCKETS):
                        if seconds <= bound:
                            buckets[index] += 1
                    buckets[-1] += 1
                    self._duration_sums[machine] = self._duration_sums.get(machine, 0.0) + seconds
            return {
                machine: (list(buckets), self._duration_sums.get(machine, 0.0), buckets[-1])
                for machine, buckets in self._durations.items()
            }


#: Upper bounds (seconds) of the execution duration histogram's buckets.
DURATION_BUCKETS = (
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
