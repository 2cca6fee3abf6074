"""The ``statefleet`` command line. Each command parses its arguments and awaits one
library call; the library does the work and this module prints what it returns.

::

    statefleet demo                                  the main job on the embedded default
    statefleet run DEFINITION | --machine ID         one execution (in memory / persisted)
    statefleet db upgrade
    statefleet definitions push|list|show|history
    statefleet executions list|show|history|resume|redrive|cancel
    statefleet batch start|list|show|cancel|resume

Every command that touches the store takes ``--database-url`` (default: the settings,
``STATEFLEET_DATABASE_URL``, else ``./statefleet.db``) and ``--app module:attr`` naming
a :class:`statefleet.App` (its resources, transformers and settings). Listings take
``--json``. Exit status: 0 success, 1 an execution or batch that did not succeed (or an
operational failure), 2 a usage error or something that does not exist.

This is the only place that configures logging and draws progress bars; library
errors are caught here and printed on stderr, never as a traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from statefleet import demo as demo_lib
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
    DefinitionError,
    InfrastructureError,
    NotFoundError,
    ResourceNotFoundError,
    StaleExecutionError,
    StatefleetError,
)
from statefleet.queue import commands as queue_commands
from statefleet.settings import Settings
from statefleet.statemachine.batch import Batch, BatchOptions
from statefleet.statemachine.lifecycle import ExecutionStatus, IllegalTransition
from statefleet.statemachine.machine import StateMachine
from statefleet.statemachine.persistent import PersistentStateMachine
from statefleet.statemachine.protocols import (
    BatchRecord,
    DefinitionRecord,
    ExecutionFilter,
    ExecutionRecord,
    HistoryRecord,
    LinkRecord,
    WaitRecord,
)
from statefleet.store import (
    DuplicateBatchName,
    DuplicateExecutionName,
    DuplicateLink,
    SQLStore,
    open_store,
    upgrade,
)

app = typer.Typer(
    name="statefleet",
    help="Run Amazon States Language state machines over many entities at once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstring paragraphs are rewrapped to the terminal
)
db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)
definitions_app = typer.Typer(help="State machine definitions in the store.", no_args_is_help=True)
executions_app = typer.Typer(help="Persisted executions.", no_args_is_help=True)
batch_app = typer.Typer(help="Batches: many executions of one machine.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(definitions_app, name="definitions")
app.add_typer(executions_app, name="executions")
app.add_typer(batch_app, name="batch")
task_app = typer.Typer(
    help="Answer .waitForTaskToken tasks by their task token.", no_args_is_help=True
)
message_app = typer.Typer(help="Messages for Message states.", no_args_is_help=True)
app.add_typer(task_app, name="task")
app.add_typer(message_app, name="message")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

T = TypeVar("T")

#: Library errors that mean "what you asked for is wrong or missing" (exit 2); every
#: other StatefleetError is an operational failure (exit 1).
USAGE_ERRORS: tuple[type[BaseException], ...] = (
    NotFoundError,
    DefinitionError,
    ResourceNotFoundError,
    ChainingError,
    IllegalTransition,
    DuplicateBatchName,
    DuplicateExecutionName,
    DuplicateLink,
)

STATUSES = tuple(s.value for s in ExecutionStatus)


# ====================================================================== plumbing


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"statefleet: {message}", err=True)
    return typer.Exit(code)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; library errors become a message on stderr and an exit code."""
    try:
        with asyncio.Runner() as runner:
            try:
                return runner.run(coroutine)
            except KeyboardInterrupt:
                _settle(runner.get_loop())
                raise
    except USAGE_ERRORS as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    except (StaleExecutionError, InfrastructureError, StatefleetError) as exc:
        cause = exc.__cause__
        detail = (
            f" ({type(cause).__name__}: {cause})" if cause and str(cause) not in str(exc) else ""
        )
        raise _fail(f"{exc}{detail}", EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise _fail("interrupted", EXIT_INTERRUPTED) from None


def _settle(loop: asyncio.AbstractEventLoop, rounds: int = 20) -> None:
    """After Ctrl-C: cancel what still runs (a batch's workers) until it has stopped. A task
    can swallow one cancellation in a ``finally`` that awaits, so cancel again, a few times,
    rather than wait forever as ``asyncio.run`` would."""
    for _ in range(rounds):
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        if not pending:
            return
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.wait(pending, timeout=0.5))


def _stdout() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 200)  # scripts and pipes: no wrapping
    return console


def _stderr() -> Console:
    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 120)  # a log file: one line per progress bar
    return console


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=_json_default)


def _echo_json(value: Any) -> None:
    typer.echo(_dumps(value))


def _record(record: Any) -> dict[str, Any]:
    """A record dataclass as JSON-ready data (datetimes as ISO 8601 text)."""
    return json.loads(json.dumps(dataclasses.asdict(record), default=_json_default))


def _cell(value: Any) -> Text:
    """Table cell text, never parsed as rich markup."""
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, datetime):
        return Text(value.strftime("%Y-%m-%d %H:%M:%S"))
    return Text(str(value))


def _status_text(status: str) -> Text:
    style = {
        "SUCCEEDED": "green",
        "FAILED": "red",
        "TIMED_OUT": "red",
        "ABORTED": "yellow",
        "RUNNING": "cyan",
        "WAITING": "cyan",
    }.get(status, "")
    return Text(status, style=style)


def _duration(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None:
        return None
    return _seconds((end - start).total_seconds())


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


# ---------------------------------------------------------------------- --app and the store


def load_object(reference: str) -> Any:
    """Import ``module:attribute`` (attribute may be dotted)."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise _fail(f"expected module:attribute, got {reference!r}")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise _fail(f"cannot import {module_name!r}: {exc}") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise _fail(f"{module_name!r} has no attribute {attribute!r}") from None
    return target


def load_app(reference: str | None) -> App:
    """The :class:`App` that ``--app module:attr`` names (an App, or a function returning
    one); without ``--app``, an empty App with settings from the environment."""
    if reference is None:
        return App()
    target = load_object(reference)
    if not isinstance(target, App) and callable(target):
        target = target()
    if not isinstance(target, App):
        raise _fail(f"--app {reference!r} is a {type(target).__name__}, not a statefleet.App")
    return target


def _load_resources(reference: str | None) -> Mapping[str, Callable[..., Any]]:
    if reference is None:
        return {}
    target = load_object(reference)
    resources = getattr(target, "resources", target)
    if callable(resources) and not isinstance(resources, Mapping):
        resources = resources()
    if not isinstance(resources, Mapping):
        raise _fail(
            f"{reference!r} is neither a mapping of resource names to callables "
            "nor an object with a 'resources' mapping"
        )
    return resources


@dataclasses.dataclass(frozen=True, slots=True)
class _Env:
    """What a store command works with: the user's App and the store's URL."""

    app: App
    database_url: str

    @classmethod
    def of(cls, app_ref: str | None, database_url: str | None) -> _Env:
        loaded = load_app(app_ref)
        settings: Settings = loaded.settings
        return cls(loaded, database_url or settings.database_url)

    @asynccontextmanager
    async def store(self) -> AsyncIterator[SQLStore]:
        try:
            store = await open_store(
                self.database_url, **self.app.settings.store_options(self.database_url)
            )
        except ValueError as exc:  # an unsupported URL
            raise _fail(str(exc)) from None
        try:
            yield store
        finally:
            await store.close()

    async def machine(
        self,
        store: SQLStore,
        machine_id: str,
        version: str | None = None,
        resources: Mapping[str, Callable[..., Any]] | None = None,
    ) -> PersistentStateMachine:
        return await PersistentStateMachine.load(
            machine_id,
            store=store,
            version=version,
            resources=self.app.resources if resources is None else resources,
            transformers=self.app.transformers,
            lease_seconds=self.app.settings.lease_seconds,
        )

    async def machine_of(self, store: SQLStore, execution_id: str) -> PersistentStateMachine:
        """The machine (at the version it ran on) of an execution."""
        record = await store.get_execution(execution_id)
        if record is None:
            raise NotFoundError(f"no execution {execution_id!r}")
        return await self.machine(store, record.state_machine_id, record.version)


AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        help="module:attr naming a statefleet.App (resources, transformers, settings).",
    ),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the store (default: STATEFLEET_DATABASE_URL or the App's "
        "settings, else sqlite:///./statefleet.db).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]


def _statuses(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """``--status`` values (repeatable, or comma-separated), checked."""
    if not values:
        return None
    statuses = [s.strip().upper() for value in values for s in value.split(",") if s.strip()]
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise _fail(f"unknown status {', '.join(unknown)} (one of {', '.join(STATUSES)})")
    return tuple(statuses)


# ---------------------------------------------------------------------- progress


class _CountColumn(ProgressColumn):
    """done / total, and the failures."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{int(task.total):,}"
        text = Text(f"{int(task.completed):,}/{total}")
        failed = int(task.fields.get("failed", 0))
        text.append(f"  failed {failed:,}", style="red" if failed else "dim")
        return text


class _RateColumn(ProgressColumn):
    """Executions ended per second (over the last seconds)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/s" if speed is None else f"{speed:,.0f}/s", style="cyan")


async def follow(batch: Batch, title: str, total: int | None, console: Console) -> None:
    """Draw a progress bar (done / failed / rate / ETA) following the batch's live counters
    until it ends."""
    ended = asyncio.ensure_future(batch.wait())
    try:
        await _draw(batch, ended, title, total, console)
    except asyncio.CancelledError:
        ended.cancel()
        console.print(
            f"interrupted: batch {batch.name} stopped; `statefleet batch resume {batch.id}` "
            "continues it (the executions that were running stay leased to this process "
            "for the lease time)",
            markup=False,
        )
        raise
    ended.result()


async def _draw(
    batch: Batch,
    ended: asyncio.Future[BatchRecord],
    title: str,
    total: int | None,
    console: Console,
) -> None:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        _CountColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, refresh_per_second=8) as progress:
        task = progress.add_task(title, total=total, failed=0)
        last_store_poll = 0.0
        store_done = store_failed = 0
        while True:
            counters = batch.counters
            done, failed = counters.done, counters.failed
            loop_time = asyncio.get_running_loop().time()
            if counters.created == 0 and loop_time - last_store_poll > 1.0:
                # Nothing runs in this process (a queue runs the batch): ask the store.
                last_store_poll = loop_time
                counts = await batch.counts()
                store_done = sum(n for s, n in counts.items() if s not in _ACTIVE)
                store_failed = store_done - counts.get("SUCCEEDED", 0)
            done, failed = max(done, store_done), max(failed, store_failed)
            if total is not None and done > total:
                total = done
                progress.update(task, total=total)
            progress.update(task, completed=done, failed=failed)
            if ended.done():
                break
            await asyncio.wait({ended}, timeout=0.1)
        counts = await batch.counts()
        done = sum(n for s, n in counts.items() if s not in _ACTIVE)
        progress.update(task, total=done, completed=done, failed=done - counts.get("SUCCEEDED", 0))


_ACTIVE = frozenset({"QUEUED", "RUNNING", "WAITING"})


# ====================================================================== run


@app.command()
def run(
    definition: Annotated[
        str | None,
        typer.Argument(help="ASL definition file (JSON or YAML): run it in memory."),
    ] = None,
    input: Annotated[
        str | None,
        typer.Option("--input", "-i", help="Execution input: JSON text, or @file (@- for stdin)."),
    ] = None,
    resources: Annotated[
        str | None,
        typer.Option(
            "--resources",
            "-r",
            help="module:attr naming a mapping of resource names to callables "
            "(or an object with a 'resources' mapping).",
        ),
    ] = None,
    machine: Annotated[
        str | None,
        typer.Option("--machine", "-m", help="Run a persisted execution of this stored machine."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Execution name (--machine; unique per machine).")
    ] = None,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Run one execution and print its result as JSON.

    With DEFINITION it runs in memory; with --machine ID it runs a persisted execution of
    a machine in the store (see `definitions push`) and prints its record.

    Exit status: 0 SUCCEEDED, 1 FAILED / TIMED_OUT / ABORTED, 2 invalid definition or input.
    """
    if (definition is None) == (machine is None):
        raise _fail("give a DEFINITION file (in memory) or --machine ID (persisted), not both")
    data = _read_input(input)
    if machine is not None:
        env = _Env.of(app_ref, database_url)
        registry = _load_resources(resources) if resources else env.app.resources
        record = _run(_run_persisted(env, machine, data, name, registry))
        _echo_json(_record(record))
        raise typer.Exit(EXIT_OK if record.status == "SUCCEEDED" else EXIT_FAILED)
    assert definition is not None
    if name is not None:
        raise _fail("--name needs --machine (in-memory executions are not stored)")
    text = _read_definition(definition)
    registry = _load_resources(resources or app_ref)
    try:
        statemachine = StateMachine.from_definition(text)
    except DefinitionError as exc:
        raise _fail(f"{definition}: {exc}") from None
    try:
        result = asyncio.run(statemachine.run(data, resources=registry))
    except ResourceNotFoundError as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    raise typer.Exit(EXIT_OK if result.status == "SUCCEEDED" else EXIT_FAILED)


async def _run_persisted(
    env: _Env,
    machine_id: str,
    data: Any,
    name: str | None,
    resources: Mapping[str, Callable[..., Any]],
) -> ExecutionRecord:
    async with env.store() as store:
        sm = await env.machine(store, machine_id, resources=resources)
        return await sm.execute(data, name=name)


def _read_definition(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read definition {path!r}: {exc.strerror or exc}") from None


def _read_input(value: str | None) -> Any:
    if value is None:
        return {}
    source = "--input"
    text = value
    if value.startswith("@"):
        source = value[1:]
        try:
            text = Path(source).read_text(encoding="utf-8") if source != "-" else sys.stdin.read()
        except OSError as exc:
            raise _fail(f"cannot read input file {source!r}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None


# ====================================================================== db


@db_app.command("upgrade")
def db_upgrade(app_ref: AppOption = None, database_url: DatabaseUrlOption = None) -> None:
    """Migrate the store's schema to the newest revision (idempotent)."""
    env = _Env.of(app_ref, database_url)
    try:
        revision = _run(upgrade(env.database_url))
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{_hide_password(env.database_url)}: schema at revision {revision}")


# ====================================================================== definitions


@definitions_app.command("push")
def definitions_push(
    file: Annotated[str, typer.Argument(help="ASL definition file (JSON or YAML).")],
    machine_id: Annotated[str, typer.Option("--id", help="State machine id.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Display name (default: the id).")
    ] = None,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Validate a definition and save it (a new version if it changed).

    An invalid definition is refused with every problem and its JSON pointer (exit 2).
    """
    text = _read_definition(file)
    try:
        StateMachine.from_definition(text)
    except DefinitionError as exc:
        raise _fail(f"{file}: {exc}") from None
    env = _Env.of(app_ref, database_url)
    before, record = _run(_push(env, text, machine_id, name))
    if before is not None and before.version == record.version:
        typer.echo(f"{machine_id}: unchanged, version {record.version}")
    else:
        typer.echo(f"{machine_id}: saved version {record.version}")


async def _push(
    env: _Env, text: str, machine_id: str, name: str | None
) -> tuple[DefinitionRecord | None, DefinitionRecord]:
    async with env.store() as store:
        before = await store.get_definition(machine_id)
        sm = await PersistentStateMachine.create(
            text, machine_id=machine_id, name=name, store=store
        )
        record = await store.get_definition(machine_id, sm.version)
        assert record is not None
        return before, record


def _definition_json(record: DefinitionRecord, *, with_document: bool) -> dict[str, Any]:
    out = _record(record)
    if not with_document:
        out.pop("definition")
    return out


@definitions_app.command("list")
def definitions_list(
    json_: JsonOption = False, app_ref: AppOption = None, database_url: DatabaseUrlOption = None
) -> None:
    """The state machines in the store (latest version of each)."""
    env = _Env.of(app_ref, database_url)
    records = _run(_with_store(env, lambda store: store.list_definitions()))
    if json_:
        _echo_json([_definition_json(r, with_document=False) for r in records])
        return
    table = Table("ID", "NAME", "VERSION", "UPDATED", box=None)
    for r in records:
        table.add_row(_cell(r.id), _cell(r.name), _cell(r.version), _cell(r.updated_at))
    _stdout().print(table)


@definitions_app.command("show")
def definitions_show(
    machine_id: Annotated[str, typer.Argument(help="State machine id.")],
    version: Annotated[str | None, typer.Option("--version", help="A version (hash).")] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the record (id, name, version, ...) as JSON.")
    ] = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Print a definition (the latest version unless --version names one) as JSON."""
    env = _Env.of(app_ref, database_url)
    record = _run(_with_store(env, lambda store: store.get_definition(machine_id, version)))
    if record is None:
        which = f" version {version}" if version else ""
        raise _fail(f"no state machine {machine_id!r}{which} in the store")
    _echo_json(_definition_json(record, with_document=True) if json_ else record.definition)


@definitions_app.command("history")
def definitions_history(
    machine_id: Annotated[str, typer.Argument(help="State machine id.")],
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Every version of a state machine, newest first."""
    env = _Env.of(app_ref, database_url)
    records = _run(_with_store(env, lambda store: store.definition_versions(machine_id)))
    if not records:
        raise _fail(f"no state machine {machine_id!r} in the store")
    if json_:
        _echo_json([_definition_json(r, with_document=False) for r in records])
        return
    table = Table("VERSION", "NAME", "CREATED", "", box=None)
    for index, r in enumerate(records):
        table.add_row(
            _cell(r.version), _cell(r.name), _cell(r.created_at), "latest" if index == 0 else ""
        )
    _stdout().print(table)


async def _with_store(env: _Env, call: Callable[[SQLStore], Coroutine[Any, Any, T]]) -> T:
    async with env.store() as store:
        return await call(store)


# ====================================================================== executions


@executions_app.command("list")
def executions_list(
    machine: Annotated[
        str | None, typer.Option("--machine", "-m", help="State machine id.")
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="Status (repeatable, or comma-separated)."),
    ] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="Batch id.")] = None,
    name_prefix: Annotated[str | None, typer.Option("--name-prefix", help="Name prefix.")] = None,
    state: Annotated[
        str | None, typer.Option("--state", help="Current state (where it stopped or failed).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Page size.")] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="Keyset cursor: the last id of the previous page.")
    ] = None,
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Executions matching the filters, oldest first, one page at a time."""
    env = _Env.of(app_ref, database_url)
    filter = ExecutionFilter(
        state_machine_id=machine,
        status=_statuses(status),
        batch_id=batch,
        name_prefix=name_prefix,
        current_state=state,
        limit=limit + 1,
        after=after,
    )
    records = _run(_with_store(env, lambda store: store.list_executions(filter)))
    more = len(records) > limit
    records = records[:limit]
    if json_:
        _echo_json([_record(r) for r in records])
    else:
        table = Table("ID", "NAME", "MACHINE", "STATUS", "STATE", "STARTED", "DURATION", box=None)
        for r in records:
            table.add_row(
                _cell(r.id),
                _cell(r.name),
                _cell(r.state_machine_id),
                _status_text(r.status),
                _cell(r.current_state),
                _cell(r.started_at),
                _cell(_duration(r.started_at, r.ended_at)),
            )
        _stdout().print(table)
    if more:
        typer.echo(f"more: --after {records[-1].id}", err=True)


@executions_app.command("show")
def executions_show(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """One execution: status, where it stopped, input, output or error, and the chained
    executions it took its input from or gave its output to."""
    env = _Env.of(app_ref, database_url)
    record, chained_from, chained_to = _run(
        _with_store(env, lambda store: _execution_and_links(store, execution_id))
    )
    if record is None:
        raise _fail(f"no execution {execution_id!r}")
    if json_:
        _echo_json(
            {
                **_record(record),
                # as the REST API names them: links to this execution (its sources), and
                # from it (its targets)
                "links_to": [_record(link) for link in chained_from],
                "links_from": [_record(link) for link in chained_to],
            }
        )
        return
    _print_execution(record, chained_from, chained_to)


async def _execution_and_links(
    store: SQLStore, execution_id: str
) -> tuple[ExecutionRecord | None, list[LinkRecord], list[LinkRecord]]:
    record = await store.get_execution(execution_id)
    if record is None:
        return None, [], []
    return record, await store.links_to(execution_id), await store.links_from(execution_id)


#: chain links `executions show` prints, each way (``--json`` gives all)
SHOWN_LINKS = 10


def _link_lines(links: Sequence[LinkRecord], source: bool) -> Text:
    lines = []
    for link in links[:SHOWN_LINKS]:
        if source:
            how = [link.source_machine_id]
            if link.source_state is not None:
                how.append(f"state {link.source_state}")
            if link.transformer is not None:
                how.append(f"transformer {link.transformer}")
            lines.append(f"{link.source_execution_id} ({', '.join(how)})")
        else:
            lines.append(f"{link.target_execution_id} ({link.target_machine_id})")
    if len(links) > SHOWN_LINKS:
        lines.append(f"... and {len(links) - SHOWN_LINKS} more (--json lists them all)")
    return Text("\n".join(lines))


def _print_execution(
    r: ExecutionRecord,
    chained_from: Sequence[LinkRecord] = (),
    chained_to: Sequence[LinkRecord] = (),
) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, Any]] = [
        ("id", r.id),
        ("name", r.name),
        ("machine", f"{r.state_machine_id} (version {r.version})"),
        ("status", _status_text(r.status)),
        ("state", r.current_state),
        ("batch", r.batch_id),
        ("started", r.started_at),
        ("ended", r.ended_at),
        ("duration", _duration(r.started_at, r.ended_at)),
        ("redrives", r.redrive_count),
    ]
    if r.error is not None or r.cause is not None:
        rows += [("error", r.error), ("cause", r.cause)]
    if chained_from:
        rows.append(("chained from", _link_lines(chained_from, source=True)))
    if chained_to:
        rows.append(("chained to", _link_lines(chained_to, source=False)))
    rows.append(("input", _dumps(r.input)))
    if r.status == "SUCCEEDED":
        rows.append(("output", _dumps(r.output)))
    for key, value in rows:
        grid.add_row(key, value if isinstance(value, Text) else _cell(value))
    _stdout().print(grid)


@executions_app.command("history")
def executions_history(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Every state an execution entered and left (or failed), in order."""
    env = _Env.of(app_ref, database_url)
    records = _run(_with_store(env, lambda store: _history(store, execution_id)))
    if json_:
        _echo_json([_record(r) for r in records])
        return
    table = Table(
        "#", "STATE", "TYPE", "STATUS", "ATTEMPT", "STARTED", "DURATION", "ERROR", box=None
    )
    for h in records:
        table.add_row(
            _cell(h.sequence),
            _cell(h.state),
            _cell(h.type),
            _status_text(h.status),
            _cell(h.attempt),
            _cell(h.started_at),
            _cell(_duration(h.started_at, h.ended_at)),
            _cell(f"{h.error}: {h.cause}" if h.error else None),
        )
    _stdout().print(table)


async def _history(store: SQLStore, execution_id: str) -> list[HistoryRecord]:
    if await store.get_execution(execution_id) is None:
        raise NotFoundError(f"no execution {execution_id!r}")
    return await store.history(execution_id)


def _runs(
    verb: str,
    execution_id: str,
    app_ref: str | None,
    database_url: str | None,
    json_: bool,
) -> None:
    env = _Env.of(app_ref, database_url)

    async def go() -> ExecutionRecord:
        async with env.store() as store:
            sm = await env.machine_of(store, execution_id)
            sm.statemachine.check_resources(sm.resources)
            if verb == "resume":
                return await sm.resume(execution_id)
            return await sm.redrive(execution_id)

    record = _run(go())
    if json_:
        _echo_json(_record(record))
    else:
        _print_execution(record)
    raise typer.Exit(EXIT_OK if record.status == "SUCCEEDED" else EXIT_FAILED)


@executions_app.command("resume")
def executions_resume(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Continue an execution from its last checkpoint (after a crash) and run it to its end.

    Exit status: 0 SUCCEEDED, 1 otherwise.
    """
    _runs("resume", execution_id, app_ref, database_url, json_)


@executions_app.command("redrive")
def executions_redrive(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Run a FAILED, TIMED_OUT or ABORTED execution again from the state that failed.

    Exit status: 0 SUCCEEDED, 1 otherwise.
    """
    _runs("redrive", execution_id, app_ref, database_url, json_)


@executions_app.command("cancel")
def executions_cancel(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Abort an execution that has not ended (its runner stops at the next checkpoint).

    Exit status: 0 cancelled, 1 it had already ended.
    """
    env = _Env.of(app_ref, database_url)

    async def go() -> tuple[bool, ExecutionRecord]:
        async with env.store() as store:
            sm = await env.machine_of(store, execution_id)
            cancelled = await sm.cancel(execution_id, "cancelled from the command line")
            return cancelled, await sm.get(execution_id)

    cancelled, record = _run(go())
    if not cancelled:
        raise _fail(f"execution {execution_id} had already ended {record.status}", EXIT_FAILED)
    typer.echo(f"execution {execution_id} {record.status}")


# ====================================================================== batch


def _inputs(path: str) -> tuple[int, Callable[[], Iterator[Any]]]:
    """Check every line of a JSON Lines file first (nothing is created if one is bad);
    return how many inputs it holds and a function streaming them."""
    file = Path(path)
    count = 0
    try:
        with file.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _fail(
                        f"{path}, line {number}: not valid JSON: {exc.msg} at column {exc.colno}"
                    ) from None
                count += 1
    except OSError as exc:
        raise _fail(f"cannot read inputs file {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise _fail(f"{path} is not UTF-8 text: {exc}") from None

    def stream() -> Iterator[Any]:
        with file.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)

    return count, stream


def _priority(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def _batch_json(record: BatchRecord, counts: dict[str, int] | None = None) -> dict[str, Any]:
    out = _record(record)
    if counts is not None:
        out["counts"] = counts
    return out


def _print_batch(record: BatchRecord, counts: dict[str, int]) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    options = record.options
    kind = options.get("kind", "?")
    if kind == "chain":
        source = f"chained from {json.dumps(options.get('filter', {}))}"
        if options.get("source_state"):
            source += f", state {options['source_state']}"
        if options.get("transformer"):
            source += f", transformer {options['transformer']}"
        if options.get("unique"):
            source += ", unique"
    else:
        source = "bulk inputs"
    total = sum(counts.values())
    rows: list[tuple[str, Any]] = [
        ("id", record.id),
        ("name", record.name),
        ("machine", record.state_machine_id),
        ("status", _status_text(record.status)),
        ("source", source),
        ("concurrency", options.get("concurrency")),
        ("created", record.created_at),
        ("finished", record.finished_at),
        ("duration", _duration(record.created_at, record.finished_at)),
        ("executions", f"{total:,}"),
    ]
    for status in STATUSES:
        if counts.get(status):
            rows.append((f"  {status}", f"{counts[status]:,}"))
    if record.stop_reason:
        rows.append(("stopped", record.stop_reason))
    for key, value in rows:
        grid.add_row(key, value if isinstance(value, Text) else _cell(value))
    _stdout().print(grid)


async def _batch_outcome(
    batch: Batch, console: Console, title: str, total: int | None
) -> tuple[BatchRecord, dict[str, int]]:
    await follow(batch, title, total, console)
    record = await batch.wait()
    return record, await batch.counts()


@batch_app.command("start")
def batch_start(
    machine: Annotated[str, typer.Option("--machine", "-m", help="The machine to run.")],
    source_machine: Annotated[
        str | None,
        typer.Option(
            "--source-machine", help="Chain: one execution per execution of this machine."
        ),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="Chain: source statuses (default SUCCEEDED)."),
    ] = None,
    source_state: Annotated[
        str | None,
        typer.Option("--source-state", help="Chain: take the output of this state of the source."),
    ] = None,
    transformer: Annotated[
        str | None, typer.Option("--transformer", help="Chain: input transformer (from --app).")
    ] = None,
    unique: Annotated[
        bool, typer.Option("--unique", help="Chain: skip sources already chained to the machine.")
    ] = False,
    inputs: Annotated[
        str | None, typer.Option("--inputs", help="Bulk: a JSON Lines file, one input per line.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="Executions at once.")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Batch name (starting a named batch again resumes it, unless cancelled).",
        ),
    ] = None,
    stop_on_error: Annotated[
        bool, typer.Option("--stop-on-error", help="Start nothing more after the first failure.")
    ] = False,
    tolerated_failure_percentage: Annotated[
        float | None,
        typer.Option("--tolerated-failure-percentage", help="Stop past this share (0-100)."),
    ] = None,
    tolerated_failure_count: Annotated[
        int | None, typer.Option("--tolerated-failure-count", help="Stop past this many failures.")
    ] = None,
    priority: Annotated[
        str, typer.Option("--priority", help="Queue priority: critical, default, low or 0-10.")
    ] = "default",
    json_: Annotated[bool, typer.Option("--json", help="Print the final batch as JSON.")] = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Run a batch with a progress bar: chained over the executions of --source-machine, or
    one execution per line of --inputs.

    Exit status: 0 the batch SUCCEEDED, 1 it FAILED or was ABORTED, 2 bad arguments.
    """
    if (source_machine is None) == (inputs is None):
        raise _fail("give either --source-machine ID (a chained batch) or --inputs FILE.jsonl")
    if inputs is not None and (status or source_state or transformer or unique):
        raise _fail("--status, --source-state, --transformer and --unique need --source-machine")
    env = _Env.of(app_ref, database_url)
    try:
        options = BatchOptions(
            name=name,
            concurrency=concurrency or env.app.settings.concurrency,
            stop_on_error=stop_on_error,
            priority=_priority(priority),
            tolerated_failure_percentage=tolerated_failure_percentage,
            tolerated_failure_count=tolerated_failure_count,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    statuses = _statuses(status) or ("SUCCEEDED",)
    filter = ExecutionFilter(state_machine_id=source_machine, status=statuses)
    count, stream = _inputs(inputs) if inputs is not None else (0, None)
    console = _stderr()

    async def go() -> tuple[BatchRecord, dict[str, int]]:
        async with env.store() as store:
            sm = await env.machine(store, machine)
            if stream is not None:
                batch = await sm.execute_bulk(stream(), options)
                total: int | None = count
            else:
                total = await store.count_executions(filter)
                batch = await sm.execute_batch(
                    filter,
                    source_state=source_state,
                    transformer=transformer,
                    unique=unique,
                    options=options,
                )
            if batch.status == "ABORTED":  # a cancelled batch, named again: nothing runs
                console.print(
                    f"batch {batch.name} was cancelled ({batch.record.stop_reason}): starting "
                    f"it again by name runs nothing; `statefleet batch resume {batch.id}` "
                    "takes it up again",
                    markup=False,
                )
                total = None
            return await _batch_outcome(batch, console, f"{machine} {batch.name}", total)

    _finish_batch(*_run(go()), json_)


def _finish_batch(record: BatchRecord, counts: dict[str, int], json_: bool) -> None:
    if json_:
        _echo_json(_batch_json(record, counts))
    else:
        _print_batch(record, counts)
    unfinished = sum(n for s, n in counts.items() if s in _ACTIVE)
    if unfinished:
        # Executions of a runner on another host stay leased to it until their lease expires.
        raise _fail(
            f"{unfinished:,} executions of batch {record.name} have not ended (still leased to "
            f"a runner on another host?): run `statefleet batch resume {record.id}` again once "
            "their lease has expired",
            EXIT_FAILED,
        )
    raise typer.Exit(EXIT_OK if record.status == "SUCCEEDED" else EXIT_FAILED)


@batch_app.command("list")
def batch_list(
    machine: Annotated[
        str | None, typer.Option("--machine", "-m", help="State machine id.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")
    ] = 50,
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Batches, newest first, with their executions counted in the store."""
    env = _Env.of(app_ref, database_url)

    async def go() -> list[tuple[BatchRecord, dict[str, int]]]:
        async with env.store() as store:
            out = []
            for record in await store.list_batches(machine, limit):
                counts = await store.count_by_status(ExecutionFilter(batch_id=record.id))
                out.append((record, counts))
            return out

    rows = _run(go())
    if json_:
        _echo_json([_batch_json(r, c) for r, c in rows])
        return
    table = Table(
        "ID", "NAME", "MACHINE", "STATUS", "EXECUTIONS", "FAILED", "CREATED", "DURATION", box=None
    )
    for r, counts in rows:
        total = sum(counts.values())
        failed = sum(n for s, n in counts.items() if s not in _ACTIVE and s != "SUCCEEDED")
        table.add_row(
            _cell(r.id),
            _cell(r.name),
            _cell(r.state_machine_id),
            _status_text(r.status),
            _cell(f"{total:,}"),
            _cell(f"{failed:,}"),
            _cell(r.created_at),
            _cell(_duration(r.created_at, r.finished_at)),
        )
    _stdout().print(table)


async def _get_batch(store: SQLStore, batch_id: str) -> BatchRecord:
    record = await store.get_batch(batch_id)
    if record is None:
        raise NotFoundError(f"no batch {batch_id!r}")
    return record


@batch_app.command("show")
def batch_show(
    batch_id: Annotated[str, typer.Argument(help="Batch id.")],
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """One batch: its options, status and executions by status (live from the store)."""
    env = _Env.of(app_ref, database_url)

    async def go() -> tuple[BatchRecord, dict[str, int]]:
        async with env.store() as store:
            record = await _get_batch(store, batch_id)
            return record, await store.count_by_status(ExecutionFilter(batch_id=record.id))

    record, counts = _run(go())
    if json_:
        _echo_json(_batch_json(record, counts))
    else:
        _print_batch(record, counts)


@batch_app.command("cancel")
def batch_cancel(
    batch_id: Annotated[str, typer.Argument(help="Batch id.")],
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Cancel a batch: its executions that have not ended end ABORTED."""
    env = _Env.of(app_ref, database_url)

    async def go() -> tuple[BatchRecord, dict[str, int]]:
        async with env.store() as store:
            record = await _get_batch(store, batch_id)
            sm = await env.machine(store, record.state_machine_id)
            batch = await sm.get_batch(batch_id)
            if not await batch.cancel("cancelled from the command line"):
                raise _fail(f"batch {record.name} already {batch.status}", EXIT_FAILED)
            return await _get_batch(store, batch_id), await batch.counts()

    record, counts = _run(go())
    typer.echo(f"batch {record.name} ({record.id}) {record.status}: {_counts_text(counts)}")


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{counts[s]:,} {s}" for s in STATUSES if counts.get(s)) or "no executions"


@batch_app.command("resume")
def batch_resume(
    batch_id: Annotated[str, typer.Argument(help="Batch id.")],
    inputs: Annotated[
        str | None,
        typer.Option(
            "--inputs", help="A bulk batch: the same JSON Lines file it was started from."
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the final batch as JSON.")] = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Resume a batch interrupted by a crash, or cancelled: run its unfinished executions
    and start the ones it had not reached, none twice. A bulk batch needs its --inputs file
    again.
    Executions a crashed process of this host was running are taken over at once; those of
    a process on another host stay leased to it until their lease expires
    (STATEFLEET_LEASE_SECONDS): resuming before that leaves them, and exits 1.

    Exit status: 0 the batch SUCCEEDED, 1 it FAILED or was ABORTED or has executions left,
    2 bad arguments.
    """
    env = _Env.of(app_ref, database_url)
    count, stream = _inputs(inputs) if inputs is not None else (0, None)
    console = _stderr()

    async def go() -> tuple[BatchRecord, dict[str, int]]:
        async with env.store() as store:
            record = await _get_batch(store, batch_id)
            sm = await env.machine(store, record.state_machine_id)
            total: int | None = None
            if record.options.get("kind") == "chain":
                if stream is not None:
                    raise _fail(f"batch {record.name!r} is chained: it takes no --inputs")
                batch = await sm.resume_batch(batch_id)
            else:
                if stream is None:
                    raise _fail(
                        f"batch {record.name!r} was started from inputs: "
                        "give the same file again with --inputs FILE.jsonl"
                    )
                batch = await sm.resume_batch(batch_id, inputs=stream())
                total = count
            return await _batch_outcome(batch, console, f"{sm.machine_id} {batch.name}", total)

    _finish_batch(*_run(go()), json_)


# ====================================================================== demo


@app.command()
def demo(
    size: Annotated[
        int, typer.Option("--size", "-n", min=0, help="How many orders the intake batch runs.")
    ] = demo_lib.DEFAULT_SIZE,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="Executions at once.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """The demo: order intake -> fulfilment, with progress bars and a summary.

    A bulk batch of --size orders, then a batch chained over the accepted ones, on the
    store (the SQLite file ./statefleet.db unless told otherwise), and a summary read from
    the store.

    Every run starts two new batches (named `demo-<UTC time>`); the machines and their
    executions stay in the store for the other commands to look at.
    """
    env = _Env.of(app_ref, database_url)
    console = _stderr()

    async def watch(title: str, batch: Batch, total: int | None) -> None:
        await follow(batch, title, total, console)

    async def go() -> demo_lib.DemoSummary:
        async with env.store() as store:
            return await demo_lib.run_demo(
                store,
                size=size,
                concurrency=concurrency or demo_lib.DEFAULT_CONCURRENCY,
                watch=watch,
            )

    summary = _run(go())
    if json_:
        _echo_json(_demo_json(summary, env.database_url))
    else:
        _print_demo(summary, env.database_url)


def _demo_json(summary: demo_lib.DemoSummary, database_url: str) -> dict[str, Any]:
    return {
        "database_url": _hide_password(database_url),
        "size": summary.size,
        "concurrency": summary.concurrency,
        "seconds": round(summary.seconds, 3),
        "executions": summary.total,
        "executions_per_second": round(summary.rate, 1),
        "machines": [
            {
                "machine_id": p.machine_id,
                "batch_id": p.batch_id,
                "batch_name": p.batch_name,
                "batch_status": p.batch_status,
                "counts": p.counts,
                "executions": p.total,
                "seconds": round(p.seconds, 3),
                "executions_per_second": round(p.rate, 1),
                "p50_seconds": p.p50_seconds,
                "p99_seconds": p.p99_seconds,
            }
            for p in summary.phases
        ],
    }


def _print_demo(summary: demo_lib.DemoSummary, database_url: str) -> None:
    console = _stdout()
    statuses = [s for s in STATUSES if any(p.counts.get(s) for p in summary.phases)]
    table = Table(
        title=(
            f"statefleet demo: {summary.total:,} executions in {summary.seconds:.1f} s "
            f"({summary.rate:,.0f} executions/s, concurrency {summary.concurrency})"
        ),
        title_justify="left",
    )
    table.add_column("machine")
    table.add_column("batch")
    for status in statuses:
        table.add_column(status, justify="right")
    for heading in ("total", "time", "exec/s", "p50", "p99"):
        table.add_column(heading, justify="right")
    for p in summary.phases:
        table.add_row(
            _cell(p.machine_id),
            _cell(p.batch_name),
            *(_cell(f"{p.counts.get(s, 0):,}") for s in statuses),
            _cell(f"{p.total:,}"),
            _cell(f"{p.seconds:.1f} s"),
            _cell(f"{p.rate:,.0f}"),
            _cell(_seconds(p.p50_seconds)),
            _cell(_seconds(p.p99_seconds)),
        )
    console.print(table)
    store = "" if database_url == Settings().database_url else f" --database-url {database_url}"
    app_option = " --app statefleet.demo:app"
    last = summary.phases[-1].machine_id if summary.phases else "demo-fulfilment"
    hints = [
        ("the failures", f"statefleet executions list --status FAILED --machine {last}{store}"),
        ("one execution", f"statefleet executions show ID{store}"),
        ("its states", f"statefleet executions history ID{store}"),
        ("run it again", f"statefleet executions redrive ID{app_option}{store}"),
        ("the batches", f"statefleet batch list{store}"),
        ("the machines", f"statefleet definitions list{store}"),
        ("the web UI", "statefleet ui"),
    ]
    console.print(f"\nstore: {_hide_password(database_url)}", markup=False)
    console.print("try next:")
    width = max(len(label) for label, _ in hints)
    for label, command in hints:
        console.print(f"  {label:<{width}}  {command}", markup=False)


# ====================================================================== callbacks


def _callback_result(result: CallbackResult, json_: bool) -> None:
    """Print what came of an answer; exit 1 if it was refused."""
    if json_:
        _echo_json(result.as_dict())
    elif result.accepted:
        typer.echo(f"{result.outcome}: {result.detail}")
    if not result.accepted:
        if not json_:
            typer.echo(f"statefleet: {result.outcome.replace('_', ' ')}: {result.detail}", err=True)
        raise typer.Exit(EXIT_FAILED)


async def _answer(env: _Env, send: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    async with env.store() as store:
        return await send(*args, store=store, app=env.app, **kwargs)


TokenArgument = Annotated[str, typer.Argument(help="The task token the task was handed.")]


@task_app.command("success")
def task_success(
    token: TokenArgument,
    output: Annotated[
        str | None,
        typer.Option("--output", help="The task's result: JSON, or @file (@- for stdin)."),
    ] = None,
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Complete a waiting task with OUTPUT as its result, and resume its execution (on the
    queue when the App's settings name a Redis, else here with the App's resources).

    Exit status: 0 accepted, 1 refused (already answered, unknown token), 2 bad arguments.
    """
    value = _read_json_option(output, "--output")
    env = _Env.of(app_ref, database_url)
    _callback_result(_run(_answer(env, send_task_success, token, value)), json_)


@task_app.command("failure")
def task_failure(
    token: TokenArgument,
    error: Annotated[
        str | None, typer.Option("--error", help="Error name (default States.TaskFailed).")
    ] = None,
    cause: Annotated[str | None, typer.Option("--cause", help="Human-readable cause.")] = None,
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Fail a waiting task with ERROR and CAUSE: its Retry and Catch apply.

    Exit status: 0 accepted, 1 refused (already answered, unknown token), 2 bad arguments.
    """
    env = _Env.of(app_ref, database_url)
    result = _run(_answer(env, send_task_failure, token, error, cause))
    _callback_result(result, json_)


@task_app.command("heartbeat")
def task_heartbeat(
    token: TokenArgument,
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Report that a waiting task's work goes on: its HeartbeatSeconds start again.

    Exit status: 0 accepted, 1 refused (already answered, unknown token).
    """
    env = _Env.of(app_ref, database_url)

    async def go() -> CallbackResult:
        async with env.store() as store:
            return await send_task_heartbeat(token, store=store)

    _callback_result(_run(go()), json_)


@task_app.command("list")
def task_list(
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only 'task' or 'message' waits.")
    ] = None,
    machine: Annotated[str | None, typer.Option("--machine", help="State machine id.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List the waiting executions with what they wait for (a token or a message)."""
    if kind not in (None, "task", "message"):
        raise _fail(f"--kind must be 'task' or 'message', got {kind!r}")
    env = _Env.of(app_ref, database_url)

    async def go() -> list[WaitRecord]:
        async with env.store() as store:
            return await store.list_waits(kind=kind, state_machine_id=machine, limit=limit)

    waits = _run(go())
    if json_:
        _echo_json([_record(w) for w in waits])
        return
    table = Table("execution", "machine", "state", "waits for", "since", "deadline")
    for w in waits:
        what = (
            f"token {w.token}"
            if w.kind == "task"
            else f"message {w.correlation_key}={json.dumps(w.correlation_value)}"
        )
        deadline = w.deadline()
        table.add_row(
            _cell(w.execution_id),
            _cell(w.state_machine_id),
            _cell(w.state),
            _cell(what),
            _cell(w.created_at.isoformat() if w.created_at else ""),
            _cell(deadline.isoformat() if deadline else "none"),
        )
    _stdout().print(table)


@message_app.command("send")
def message_send(
    key: Annotated[str, typer.Argument(help="The correlation key (the Message state's).")],
    value: Annotated[
        str, typer.Argument(help='The correlation value: JSON (42, "A-1"), else plain text.')
    ],
    payload: Annotated[
        str | None,
        typer.Option("--payload", help="The message: JSON, or @file (@- for stdin)."),
    ] = None,
    keep_for: Annotated[
        float | None,
        typer.Option(
            "--keep-for",
            help="If nothing waits, keep the message this many seconds for a late waiter.",
        ),
    ] = None,
    json_: JsonOption = False,
    app_ref: AppOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Send a message: every Message state waiting for KEY with VALUE takes PAYLOAD as its
    result and its execution resumes.

    Exit status: 0 delivered (or kept), 1 nothing waited for it, 2 bad arguments.
    """
    try:
        correlation: Any = json.loads(value)
    except json.JSONDecodeError:
        correlation = value
    body = _read_json_option(payload, "--payload")
    if keep_for is not None and keep_for <= 0:
        raise _fail(f"--keep-for must be a positive number of seconds, got {keep_for:g}")
    env = _Env.of(app_ref, database_url)
    result = _run(_answer(env, send_message, key, correlation, body, keep_for=keep_for))
    _callback_result(result, json_)


def _read_json_option(value: str | None, option: str) -> Any:
    """A JSON option's value (None when absent); ``@file`` reads a file, ``@-`` stdin."""
    if value is None:
        return None
    if not value.startswith("@"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise _fail(
                f"{option} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from None
    return _read_input(value)


@app.callback()
def _root(
    log_level: Annotated[
        str,
        typer.Option("--log-level", help="Logging level on stderr (DEBUG, INFO, WARNING, ...)."),
    ] = "WARNING",
) -> None:
    """statefleet: Amazon States Language state machines over many entities at once."""
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise _fail(f"unknown log level {log_level!r}")
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# queue commands
# (the line registering statefleet/queue/commands.py goes here; that module must not import
# statefleet.cli, which `python -m statefleet.cli` runs as __main__.)
queue_commands.register(app, sys.modules[__name__])
importlib.import_module("statefleet.ui.commands").register(app, sys.modules[__name__])


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
