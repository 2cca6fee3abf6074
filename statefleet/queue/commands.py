"""The distributed mode's commands: ``worker``, ``leader``, ``dlq``, ``recover``, ``purge``
and ``queue``. ``statefleet.cli`` registers them with :func:`register`.

Each command parses its arguments, awaits one library call and prints what it returns.
:func:`batch_request` turns the batch arguments (shared by ``batch start`` and ``leader``)
into what ``execute_batch``/``execute_bulk`` take.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from statefleet.statemachine.batch import BatchOptions
from statefleet.statemachine.protocols import ExecutionFilter

if TYPE_CHECKING:
    from statefleet.queue.client import QueueClient
    from statefleet.statemachine.batch import Batch
    from statefleet.statemachine.persistent import PersistentStateMachine
    from statefleet.statemachine.protocols import BatchRecord

__all__ = [
    "BatchRequest",
    "batch_request",
    "next_cron",
    "parse_duration",
    "register",
    "run_on_schedule",
    "start_batch",
]

logger = logging.getLogger("statefleet.cli")


# ====================================================================== shared batch arguments


@dataclasses.dataclass(frozen=True)
class BatchRequest:
    """A batch to start: chained over ``filter``, or one execution per input of ``inputs``."""

    options: BatchOptions
    filter: ExecutionFilter | None = None
    source_state: str | None = None
    transformer: str | None = None
    unique: bool = False
    inputs: Callable[[], Iterator[Any]] | None = None
    total: int | None = None


def batch_request(
    *,
    source_machine: str | None,
    statuses: Sequence[str] | None,
    source_state: str | None,
    transformer: str | None,
    unique: bool,
    inputs: tuple[int, Callable[[], Iterator[Any]]] | None,
    concurrency: int,
    name: str | None = None,
    stop_on_error: bool = False,
    tolerated_failure_percentage: float | None = None,
    tolerated_failure_count: int | None = None,
    priority: str | int = "default",
    queue: str | None = None,
    max_tries: int | None = None,
    defer_by: float | None = None,
    defer_until: str | None = None,
) -> BatchRequest:
    """The batch the arguments of ``batch start``/``leader`` describe. ``inputs`` is the
    (count, stream) of a checked JSON Lines file. Raises ValueError on bad arguments."""
    if (source_machine is None) == (inputs is None):
        raise ValueError("give either --source-machine ID (a chained batch) or --inputs FILE")
    if inputs is not None and (statuses or source_state or transformer or unique):
        raise ValueError(
            "--status, --source-state, --transformer and --unique need --source-machine"
        )
    until: datetime | None = None
    if defer_until is not None:
        until = datetime.fromisoformat(defer_until.replace("Z", "+00:00"))
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
    options = BatchOptions(
        name=name,
        concurrency=concurrency,
        stop_on_error=stop_on_error,
        priority=priority,
        tolerated_failure_percentage=tolerated_failure_percentage,
        tolerated_failure_count=tolerated_failure_count,
        queue=queue,
        max_tries=max_tries,
        defer_by=defer_by,
        defer_until=until,
    )
    if inputs is not None:
        count, stream = inputs
        return BatchRequest(options=options, inputs=stream, total=count)
    filter = ExecutionFilter(
        state_machine_id=source_machine, status=tuple(statuses or ("SUCCEEDED",))
    )
    return BatchRequest(
        options=options,
        filter=filter,
        source_state=source_state,
        transformer=transformer,
        unique=unique,
    )


async def start_batch(
    machine: PersistentStateMachine, request: BatchRequest, *, name: str | None = None
) -> Batch:
    """Start the request's batch on ``machine`` (locally, or onto its queue client)."""
    options = request.options if name is None else dataclasses.replace(request.options, name=name)
    if request.inputs is not None:
        return await machine.execute_bulk(request.inputs(), options)
    assert request.filter is not None
    return await machine.execute_batch(
        request.filter,
        source_state=request.source_state,
        transformer=request.transformer,
        unique=request.unique,
        options=options,
    )


# ====================================================================== durations and cron


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90``, ``45s``, ``30m``, ``12h``, ``7d``, ``2w``."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (e.g. 45s, 30m, 12h, 7d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day", 1, 31),
    ("month", 1, 12),
    ("weekday", 0, 6),
)


def _cron_field(text: str, name: str, low: int, high: int) -> set[int] | None:
    if text == "*":
        return None
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                a, _, b = base.partition("-")
                start, end = int(a), int(b)
            else:
                start = int(base)
                end = high if step_text else start
        except ValueError:
            raise ValueError(
                f"cron {name} field {text!r}: expected *, a number, a range a-b, a list a,b "
                "or a step */n"
            ) from None
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise ValueError(f"cron {name} field {text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


#: The days each month can have (February: 29, in leap years).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def next_cron(expression: str, after: datetime) -> datetime:
    """The next time (UTC, after ``after``) a 5-field cron expression matches
    (``minute hour day month weekday``, weekday 0 = Sunday), with arq's cron search."""
    from arq.cron import next_cron as arq_next_cron

    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(f"a cron expression has 5 fields (m h dom mon dow), got {expression!r}")
    fields = {
        name: _cron_field(part, name, low, high)
        for part, (name, low, high) in zip(parts, _CRON_FIELDS, strict=True)
    }
    days, months = fields["day"], fields["month"]
    if days is not None and not any(
        day <= _MONTH_DAYS[month - 1] for day in days for month in (months or range(1, 13))
    ):  # the search would never end
        raise ValueError(f"cron expression {expression!r} never matches (no such day)")
    weekday = fields.pop("weekday")
    if weekday is not None:  # cron: 0 = Sunday; Python (arq): 0 = Monday
        weekday = {(d + 6) % 7 for d in weekday}
    return arq_next_cron(
        after.astimezone(UTC),
        weekday=weekday,
        second=0,
        microsecond=0,
        **fields,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def run_on_schedule(
    expression: str,
    run: Callable[[datetime], Awaitable[Any]],
    *,
    runs: int | None = None,
    on_error: Callable[[datetime, Exception], Any] | None = None,
    now: Callable[[], datetime] = _utcnow,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> int:
    """Await ``run(at)`` at every time ``at`` of the cron schedule (``runs`` times, or
    forever); returns how many ran. A run never starts before its time (a sleep that ends
    early sleeps again) and never twice for one time; times that pass while a run lasts are
    skipped, not caught up. A run that raises is passed to ``on_error`` and the schedule
    goes on (without ``on_error`` it propagates). ``now`` and ``sleep`` are the clock."""
    done = 0
    last: datetime | None = None
    while runs is None or done < runs:
        current = now()
        at = next_cron(expression, current if last is None else max(current, last))
        while (wait := (at - now()).total_seconds()) > 0:
            await sleep(wait)
        try:
            await run(at)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(at, exc)
        last = at
        done += 1
    return done


# ====================================================================== the commands

# (module level: typer evaluates the commands' annotations in this module's globals)
AppOption = Annotated[
    str | None,
    typer.Option("--app", help="module:attr naming a statefleet.App (resources, settings)."),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL of the store (default: settings)."),
]
RedisUrlOption = Annotated[
    str | None,
    typer.Option("--redis-url", help="Redis URL (default: STATEFLEET_REDIS_URL / REDIS_*)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
MachineFilter = Annotated[str | None, typer.Option("--machine", "-m", help="Of this machine.")]
BatchFilter = Annotated[str | None, typer.Option("--batch", help="Of this batch id.")]
ErrorFilter = Annotated[str | None, typer.Option("--error", help="With this error name.")]


def register(app: typer.Typer, cli: Any) -> None:
    """Add the distributed mode's commands to the ``statefleet`` typer app. ``cli`` is the
    module defining it (``sys.modules[__name__]`` there: under ``python -m statefleet.cli``
    it is ``__main__``, and importing ``statefleet.cli`` would load a second copy), whose
    helpers the commands share (``_Env``, ``_run``, ``follow``, ``_inputs``, ...)."""

    dlq_app = typer.Typer(help="Dead letters: jobs given up on.", no_args_is_help=True)
    queue_app = typer.Typer(help="The queues: list, pause, resume.", no_args_is_help=True)
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(queue_app, name="queue")

    def client_of(env: Any, redis_url: str | None, **overrides: Any) -> QueueClient:
        from statefleet.queue.client import QueueClient

        settings = env.app.settings
        if redis_url:
            settings = settings.model_copy(update={"redis_url": redis_url})
        try:
            return QueueClient.from_settings(settings, **overrides)
        except Exception as exc:
            raise cli._fail(str(exc)) from None

    def logs(level: str) -> None:
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        if level.upper() != "DEBUG":
            logging.getLogger("arq").setLevel(logging.WARNING)

    # ------------------------------------------------------------------ worker

    @app.command()
    def worker(
        queues: Annotated[
            str | None,
            typer.Option(
                "--queues", "-q", help="Queues and weights, e.g. critical:6,default:3,low:1."
            ),
        ] = None,
        strict: Annotated[bool, typer.Option("--strict", help="Strict priority order.")] = False,
        concurrency: Annotated[
            int | None, typer.Option("--concurrency", "-c", min=1, help="Jobs at once.")
        ] = None,
        burst: Annotated[
            bool, typer.Option("--burst", help="Stop when the queues are empty.")
        ] = False,
        machines: Annotated[
            list[str] | None, typer.Option("--machines", help="Only jobs of these machines (a,b).")
        ] = None,
        grace: Annotated[
            float | None,
            typer.Option("--grace", help="On SIGTERM, seconds running jobs may finish."),
        ] = None,
        log_level: Annotated[str, typer.Option("--log-level", help="Logging level.")] = "INFO",
        app_ref: AppOption = None,
        database_url: DatabaseUrlOption = None,
        redis_url: RedisUrlOption = None,
    ) -> None:
        """Run jobs from the queues until stopped (SIGTERM/SIGINT: graceful)."""
        from statefleet.queue.priorities import QueueSelection, parse_queues
        from statefleet.queue.worker import WorkerOptions, machines_option, run_worker

        logs(log_level)
        env = cli._Env.of(app_ref, database_url)
        settings = env.app.settings.model_copy(update={"database_url": env.database_url})
        env.app.settings = settings
        try:
            selection = QueueSelection(
                tuple(parse_queues(queues or settings.worker_queues)), strict=strict
            )
        except ValueError as exc:
            raise cli._fail(str(exc)) from None
        overrides: dict[str, Any] = {"selection": selection, "burst": burst}
        if concurrency:
            overrides["concurrency"] = concurrency
        if grace is not None:
            overrides["grace"] = grace
        overrides["machines"] = machines_option(machines)
        options = WorkerOptions.from_settings(settings, **overrides)
        client = client_of(env, redis_url)
        done = cli._run(run_worker(env.app, options, client=client))
        counters = done.counters
        cli._stderr().print(
            f"worker {done.worker_id} stopped: {counters.done} done, {counters.failed} failed, "
            f"{counters.retried} retried, {counters.parked} parked",
            markup=False,
        )

    # ------------------------------------------------------------------ leader

    @app.command()
    def leader(
        machine: Annotated[str, typer.Option("--machine", "-m", help="The machine to run.")],
        source_machine: Annotated[
            str | None, typer.Option("--source-machine", help="Chain over this machine.")
        ] = None,
        status: Annotated[
            list[str] | None, typer.Option("--status", "-s", help="Chain: source statuses.")
        ] = None,
        source_state: Annotated[
            str | None, typer.Option("--source-state", help="Chain: this state's output.")
        ] = None,
        transformer: Annotated[
            str | None, typer.Option("--transformer", help="Chain: input transformer.")
        ] = None,
        unique: Annotated[
            bool, typer.Option("--unique", help="Chain: skip linked sources.")
        ] = False,
        inputs: Annotated[
            str | None, typer.Option("--inputs", help="Bulk: a JSON Lines file.")
        ] = None,
        concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1)] = None,
        name: Annotated[str | None, typer.Option("--name", help="Batch name.")] = None,
        stop_on_error: Annotated[bool, typer.Option("--stop-on-error")] = False,
        tolerated_failure_percentage: Annotated[
            float | None, typer.Option("--tolerated-failure-percentage")
        ] = None,
        tolerated_failure_count: Annotated[
            int | None, typer.Option("--tolerated-failure-count")
        ] = None,
        priority: Annotated[
            str, typer.Option("--priority", help="critical, default, low or 0-10.")
        ] = "default",
        queue: Annotated[
            str | None, typer.Option("--queue", help="Queue name (default: the priority).")
        ] = None,
        max_tries: Annotated[
            int | None, typer.Option("--max-tries", min=1, help="Tries per job.")
        ] = None,
        defer_by: Annotated[
            str | None, typer.Option("--defer-by", help="Start the batch after this (e.g. 10m).")
        ] = None,
        defer_until: Annotated[
            str | None, typer.Option("--defer-until", help="Start the batch at this ISO time.")
        ] = None,
        schedule: Annotated[
            str | None,
            typer.Option("--schedule", help="Cron (m h dom mon dow, UTC): run a batch each time."),
        ] = None,
        recover_every: Annotated[
            float, typer.Option("--recover-every", help="Run recovery every N s (0: never).")
        ] = 60.0,
        json_: Annotated[
            bool, typer.Option("--json", help="Print the final batch as JSON.")
        ] = False,
        app_ref: AppOption = None,
        database_url: DatabaseUrlOption = None,
        redis_url: RedisUrlOption = None,
    ) -> None:
        """Start a batch onto the queue with progress bars and wait for it to end (or, with
        --schedule, start one at every time of the cron schedule)."""
        from statefleet.queue.recovery import recover

        env = cli._Env.of(app_ref, database_url)
        try:
            request = batch_request(
                source_machine=source_machine,
                statuses=cli._statuses(status),
                source_state=source_state,
                transformer=transformer,
                unique=unique,
                inputs=cli._inputs(inputs) if inputs is not None else None,
                concurrency=concurrency or env.app.settings.concurrency,
                name=name,
                stop_on_error=stop_on_error,
                tolerated_failure_percentage=tolerated_failure_percentage,
                tolerated_failure_count=tolerated_failure_count,
                priority=cli._priority(priority),
                queue=queue,
                max_tries=max_tries,
                defer_by=parse_duration(defer_by).total_seconds() if defer_by else None,
                defer_until=defer_until,
            )
            if schedule is not None:
                next_cron(schedule, datetime.now(UTC))
        except ValueError as exc:
            raise cli._fail(str(exc)) from None
        client = client_of(env, redis_url, wait_when_full=True)
        console = cli._stderr()

        async def one(
            sm: PersistentStateMachine, batch_name: str | None
        ) -> tuple[BatchRecord, dict[str, int]]:
            batch = await start_batch(sm, request, name=batch_name)
            total = request.total
            if total is None and request.filter is not None:
                total = await sm.store.count_executions(request.filter)
            return await cli._batch_outcome(batch, console, f"{machine} {batch.name}", total)

        async def recovering(store: Any) -> None:
            while recover_every > 0:
                await asyncio.sleep(recover_every)
                try:
                    report = await recover(store, client)
                    if report.reenqueued or report.dropped:
                        console.print(f"recovery: {report.summary()}", markup=False)
                except Exception as exc:  # keep leading
                    console.print(f"recovery failed: {exc}", markup=False)

        async def go() -> tuple[BatchRecord, dict[str, int]]:
            async with env.store() as store:
                sm = await env.machine(store, machine)
                sm.set_queue_client(client)
                background = asyncio.create_task(recovering(store))
                try:
                    if schedule is None:
                        return await one(sm, None)

                    async def scheduled(at: datetime) -> None:
                        stamp = at.strftime("%Y%m%dT%H%M")
                        record, counts = await one(sm, f"{name or machine}-{stamp}")
                        console.print(
                            f"batch {record.name}: {record.status} {counts}", markup=False
                        )

                    def failed(at: datetime, exc: Exception) -> None:
                        console.print(
                            f"batch of {at.isoformat()} failed to run: {exc}", markup=False
                        )

                    console.print(
                        f"next batch at {next_cron(schedule, datetime.now(UTC)).isoformat()}",
                        markup=False,
                    )
                    await run_on_schedule(schedule, scheduled, on_error=failed)
                    raise AssertionError("a schedule runs forever")
                finally:
                    background.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await background
                    await client.close()

        cli._finish_batch(*cli._run(go()), json_)

    # ------------------------------------------------------------------ dlq

    def letters_filter(machine: str | None, batch: str | None, error: str | None) -> dict[str, Any]:
        return {"state_machine_id": machine, "batch_id": batch, "error": error}

    async def with_letters(env: Any, redis_url: str | None, call: Any) -> Any:
        from statefleet.queue.deadletters import DeadLetters

        client = client_of(env, redis_url)
        try:
            async with env.store() as store:
                return await call(DeadLetters(store, client))
        finally:
            await client.close()

    @dlq_app.command("list")
    def dlq_list(
        machine: MachineFilter = None,
        batch: BatchFilter = None,
        error: ErrorFilter = None,
        limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
        json_: JsonOption = False,
        app_ref: AppOption = None,
        database_url: DatabaseUrlOption = None,
        redis_url: RedisUrlOption = None,
    ) -> None:
        """List dead letters (from the database)."""
        env = cli._Env.of(app_ref, database_url)

        async def call(letters: Any) -> Any:
            return await letters.find(limit=limit, **letters_filter(machine, batch, error))

        found = cli._run(with_letters(env, redis_url, call))
        if json_:
            cli._echo_json([cli._record(r) for r in found])
            return
        from rich.table import Table

        table = Table("id", "execution", "machine", "queue", "tries", "error", "cause", "at")
        for r in found:
            table.add_row(
                r.id,
                r.execution_id or "-",
                r.state_machine_id or "-",
                r.queue or "-",
                str(r.tries),
                r.error,
                (r.cause or "")[:80],
                str(r.created_at),
            )
        cli._stdout().print(table)

    @dlq_app.command("retry")
    def dlq_retry(
        ids: Annotated[list[str] | None, typer.Argument(help="Dead letter ids.")] = None,
        all_: Annotated[bool, typer.Option("--all", help="Every dead letter (matching).")] = False,
        machine: MachineFilter = None,
        batch: BatchFilter = None,
        error: ErrorFilter = None,
        app_ref: AppOption = None,
        database_url: DatabaseUrlOption = None,
        redis_url: RedisUrlOption = None,
    ) -> None:
        """Redrive dead letters' executions from their failed state, onto the queue."""
        if not ids and not (all_ or machine or batch or error):
            raise cli._fail("name dead letter ids, or select with --all/--machine/--batch/--error")
        env = cli._Env.of(app_ref, database_url)

        async def call(letters: Any) -> Any:
            return await letters.retry(ids or (), **letters_filter(machine, batch, error))

        report = cli._run(with_letters(env, redis_url, call))
        for letter_id, reason in report.skipped.items():
            cli._stderr().print(f"skipped {letter_id}: {reason}", markup=False)
        typer.echo(f"retried {len(report.retried)} dead letter(s)")

    @dlq_app.command("purge")
    def dlq_purge(
        ids: Annotated[list[str] | None, typer.Argument(help="Dead letter ids.")] = None,
        all_: Annotated[bool, typer.Option("--all", help="Every dead letter (matching).")] = False,
        machine: MachineFilter = None,
        batch: BatchFilter = None,
        error: ErrorFilter = None,
        app_ref: AppOption = None,
        database_url: DatabaseUrlOption = None,
        redis_url: RedisUrlOption = None,
    ) -> None:
        """Delete dead letters (their executions stay FAILED)."""
        if not ids and not (all_ or machine or batch or error):
            raise cli._fail("name dead letter ids, or select with --all/--machine/--batch/--error")
        env = cli._Env.of(app_ref, database_url)

        async def call(letters: Any) -> Any:
            return await letters.purge(ids or (), **letters_filter(machine, batch, error))

        typer.echo(f"purged {cli._run(with_letters(env, redis_url, call))} dead letter(s)")

    # ------------------------------------------------------------------ recover, purge

    @app.command("recover")
    def recover_command(
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only.")] = False,
        json_: JsonOption = False,
        app_ref: AppOption = None,
        database_url: DatabaseUrlOption = None,
        redis_url: RedisUrlOption = None,
    ) -> None:
        """Re-enqueue unfinished executions whose job is gone; drop jobs of ended ones."""
        from statefleet.queue.recovery import recover

        env = cli._Env.of(app_ref, database_url)
        client = client_of(env, redis_url)

        async def go() -> Any:
            try:
                async with env.store() as store:
                    return await recover(store, client, dry_run=dry_run)
            finally:
                await client.close()

        report = cli._run(go())
        if json_:
            cli._echo_json(dataclasses.asdict(report))
        else:
            typer.echo(("dry run: " if dry_run else "") + report.summary())

    @app.command("purge")
    def purge_command(
        older_than: Annotated[
            str, typer.Option("--older-than", help="Retention, e.g. 7d, 12h.")
        ] = "7d",
        app_ref: AppOption = None,
        database_url: DatabaseUrlOption = None,
        redis_url: RedisUrlOption = None,
    ) -> None:
        """Delete ended executions and job results older than the retention (dead letters
        stay until `dlq purge`), and kept messages past their own expiry."""
        from statefleet.queue.recovery import purge

        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise cli._fail(str(exc)) from None
        env = cli._Env.of(app_ref, database_url)
        has_redis = bool(redis_url or env.app.settings.resolved_redis_url())
        client = client_of(env, redis_url) if has_redis else None

        async def go() -> Any:
            try:
                async with env.store() as store:
                    return await purge(store, client, older_than=age)
            finally:
                if client is not None:
                    await client.close()

        report = cli._run(go())
        typer.echo(
            f"purged {report.executions} executions, {report.results} job results and "
            f"{report.messages} expired messages"
        )

    # ------------------------------------------------------------------ queue

    async def with_client(env: Any, redis_url: str | None, call: Any) -> Any:
        client = client_of(env, redis_url)
        try:
            return await call(client)
        finally:
            await client.close()

    @queue_app.command("list")
    def queue_list(
        json_: JsonOption = False,
        app_ref: AppOption = None,
        redis_url: RedisUrlOption = None,
    ) -> None:
        """Queues with their jobs by state, paused or not, and today's counters."""
        from statefleet.queue.inspector import Inspector

        env = cli._Env.of(app_ref, None)

        async def call(client: QueueClient) -> Any:
            return await Inspector(client).queues()

        infos = cli._run(with_client(env, redis_url, call))
        if json_:
            cli._echo_json([dataclasses.asdict(i) for i in infos])
            return
        from rich.table import Table

        table = Table(
            "queue",
            "size",
            "active",
            "pending",
            "retry",
            "scheduled",
            "paused",
            "processed today",
            "failed today",
        )
        for i in infos:
            table.add_row(
                i.name,
                *(
                    str(v)
                    for v in (
                        i.size,
                        i.active,
                        i.pending,
                        i.retry,
                        i.scheduled,
                        "yes" if i.paused else "",
                        i.processed_today,
                        i.failed_today,
                    )
                ),
            )
        cli._stdout().print(table)

    @queue_app.command("pause")
    def queue_pause(
        names: Annotated[list[str], typer.Argument(help="Queue names.")],
        app_ref: AppOption = None,
        redis_url: RedisUrlOption = None,
    ) -> None:
        """Workers stop taking these queues' jobs (running ones finish)."""
        env = cli._Env.of(app_ref, None)

        async def call(client: QueueClient) -> None:
            await client.pause(*names)

        cli._run(with_client(env, redis_url, call))
        typer.echo(f"paused {', '.join(names)}")

    @queue_app.command("resume")
    def queue_resume(
        names: Annotated[list[str], typer.Argument(help="Queue names.")],
        app_ref: AppOption = None,
        redis_url: RedisUrlOption = None,
    ) -> None:
        """Workers take these queues' jobs again."""
        env = cli._Env.of(app_ref, None)

        async def call(client: QueueClient) -> None:
            await client.resume(*names)

        cli._run(with_client(env, redis_url, call))
        typer.echo(f"resumed {', '.join(names)}")
