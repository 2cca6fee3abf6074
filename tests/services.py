"""Start real PostgreSQL and Redis servers on loopback, for tests and benchmarks.

Plain functions and dataclasses, no pytest: `tests/conftest.py` wraps them in session
fixtures, and scripts under `bench/` can import them after putting the repository root
on `sys.path`::

    from tests.services import start_postgres, start_redis

    pg = start_postgres()
    try:
        url = pg.url(pg.create_database("bench"))   # postgresql+asyncpg://...
    finally:
        pg.stop()

Each server gets a fresh temporary directory and a free port on 127.0.0.1, and runs in
the foreground as a child process; `stop()` shuts it down and removes the directory
(it is also registered with `atexit`, so an interpreter that exits normally leaves
nothing behind).

PostgreSQL refuses to run as root: when we are root, `initdb` and `postgres` run as the
`postgres` OS user (see `POSTGRES_OS_USER`) and the data directory is owned by it.
Binaries are looked up in `$STATEFLEET_PG_BINDIR`, then the newest
`/usr/lib/postgresql/<version>/bin` (Debian/Ubuntu), then `PATH`; `redis-server` in
`$STATEFLEET_REDIS_SERVER`, then `PATH`. `make services-deps` installs both.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "POSTGRES_OS_USER",
    "PostgresServer",
    "RedisServer",
    "ServiceError",
    "find_postgres_bindir",
    "find_redis_server",
    "free_port",
    "start_postgres",
    "start_redis",
]

HOST = "127.0.0.1"
POSTGRES_OS_USER = "postgres"
POSTGRES_SUPERUSER = "postgres"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
_PORT_ATTEMPTS = 3


class ServiceError(RuntimeError):
    """A test service could not be found, started or used."""


# ------------------------------------------------------------------ helpers


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on `host` a moment ago (the caller retries on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _is_root() -> bool:
    return os.geteuid() == 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_process(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _make_tempdir(prefix: str, parent: Path | None, owner: str | None) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    if owner is not None:
        shutil.chown(path, user=owner, group=pwd.getpwnam(owner).pw_gid)
    return path


# ------------------------------------------------------------------ PostgreSQL


def find_postgres_bindir() -> Path:
    """The directory holding `initdb`, `postgres` and `psql`, newest version first."""
    override = os.environ.get("STATEFLEET_PG_BINDIR")
    if override:
        candidates = [Path(override)]
    else:
        debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_pg_version, reverse=True)
        candidates = [Path(d) for d in debian]
        if on_path := shutil.which("initdb"):
            candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all((bindir / exe).is_file() for exe in ("initdb", "postgres", "psql", "pg_isready")):
            return bindir
    raise ServiceError(
        "PostgreSQL server binaries (initdb, postgres, psql, pg_isready) not found in "
        + (f"$STATEFLEET_PG_BINDIR={override}" if override else "/usr/lib/postgresql/*/bin or PATH")
        + ". Install them with `make services-deps` (apt-get install postgresql)."
    )


def _pg_version(bindir: str) -> tuple[int, ...]:
    """(15,) for /usr/lib/postgresql/15/bin, so that 9.6 sorts before 15."""
    return tuple(int(part) for part in re.findall(r"\d+", Path(bindir).parent.name)) or (0,)


@dataclass
class PostgresServer:
    """A running PostgreSQL server; superuser `postgres`, trust auth on loopback."""

    host: str
    port: int
    user: str
    bindir: Path
    base_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    os_user: str | None = None
    extra_settings: tuple[str, ...] = ()

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq/asyncpg DSN: `postgresql://user@host:port/database`."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        """A SQLAlchemy URL: `postgresql+<driver>://user@host:port/database`."""
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL command with `psql` and return its unaligned output."""
        cmd = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        cmd += ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database]
        cmd += ["-c", sql]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"psql failed ({done.returncode}): {sql!r}\n{done.stderr.strip()}")
        return done.stdout.strip()

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database `name` (optionally cloned from `template`) and return its name."""
        _check_identifier(name)
        sql = f'CREATE DATABASE "{name}"'
        if template is not None:
            _check_identifier(template)
            sql += f' TEMPLATE "{template}"'
        self.psql(sql)
        return name

    def drop_database(self, name: str) -> None:
        _check_identifier(name)
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def halt(self) -> None:
        """Fast shutdown (SIGINT), keeping the data directory: :meth:`start_again` brings
        the same cluster back on the same port (a database outage, for fault tests)."""
        _stop_process(self.process, signal.SIGINT)

    def start_again(self) -> None:
        """Start the cluster stopped by :meth:`halt` again, on the same port."""
        if self.process.poll() is None:
            return
        env = {**os.environ, "HOME": str(self.base_dir), "LC_ALL": "C", "LANG": "C"}
        server = _launch_postgres(
            self.bindir, self.base_dir, self.port, env, self.os_user, self.extra_settings
        )
        ready, error = _wait_postgres(server)
        if not ready:
            raise ServiceError(f"PostgreSQL did not start again:\n{error}")
        self.process = server.process

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then remove the data directory. Idempotent."""
        atexit.unregister(self.stop)
        _stop_process(self.process, signal.SIGINT)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _check_identifier(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")


def start_postgres(
    parent: Path | None = None,
    *,
    port: int | None = None,
    extra_settings: Sequence[str] = (),
) -> PostgresServer:
    """Initialise a fresh cluster in a temporary directory and start PostgreSQL on loopback.

    `parent` is where the temporary directory goes (default: the system temp dir); when
    running as root it must be traversable by the `postgres` OS user. `extra_settings`
    are `name=value` pairs passed as `-c name=value`.
    """
    bindir = find_postgres_bindir()
    os_user: str | None = None
    if _is_root():
        os_user = POSTGRES_OS_USER
        try:
            pwd.getpwnam(os_user)
        except KeyError:
            raise ServiceError(
                f"running as root, but there is no {os_user!r} OS user to run PostgreSQL as "
                "(the postgresql package creates it)"
            ) from None
    base_dir = _make_tempdir("statefleet-pg-", parent, os_user)
    env = {**os.environ, "HOME": str(base_dir), "LC_ALL": "C", "LANG": "C"}
    try:
        initdb = [str(bindir / "initdb"), "-D", str(base_dir / "data"), "-U", POSTGRES_SUPERUSER]
        initdb += ["-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]
        init = subprocess.run(
            initdb,
            cwd=base_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            user=os_user,
        )
        if init.returncode != 0:
            raise ServiceError(f"initdb failed ({init.returncode}):\n{init.stderr.strip()}")
        last_error = ""
        for _ in range(_PORT_ATTEMPTS if port is None else 1):
            server = _launch_postgres(
                bindir, base_dir, port or free_port(), env, os_user, extra_settings
            )
            ready, last_error = _wait_postgres(server)
            if ready:
                atexit.register(server.stop)
                return server
            _stop_process(server.process, signal.SIGINT)
            if "already in use" not in last_error:
                break
        raise ServiceError(f"PostgreSQL did not start:\n{last_error}")
    except BaseException:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise


def _launch_postgres(
    bindir: Path,
    base_dir: Path,
    port: int,
    env: dict[str, str],
    os_user: str | None,
    extra_settings: Sequence[str],
) -> PostgresServer:
    settings = [
        f"listen_addresses={HOST}",
        f"unix_socket_directories={base_dir}",
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "max_connections=200",
        *extra_settings,
    ]
    cmd = [str(bindir / "postgres"), "-D", str(base_dir / "data"), "-p", str(port)]
    for setting in settings:
        cmd += ["-c", setting]
    log_path = base_dir / "postgres.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            cmd,
            cwd=base_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal does not reach it
            user=os_user,
        )
    return PostgresServer(
        HOST, port, POSTGRES_SUPERUSER, bindir, base_dir, process, os_user, tuple(extra_settings)
    )


def _wait_postgres(server: PostgresServer) -> tuple[bool, str]:
    deadline = time.monotonic() + START_TIMEOUT_S
    pg_isready = [str(server.bindir / "pg_isready"), "-q", "-h", server.host]
    pg_isready += ["-p", str(server.port), "-U", server.user, "-d", "postgres"]
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False, _tail(server.log_file)
        if subprocess.run(pg_isready, check=False).returncode == 0:
            return True, ""
        time.sleep(0.1)
    return False, f"not ready after {START_TIMEOUT_S:.0f} s\n{_tail(server.log_file)}"


# ------------------------------------------------------------------ Redis


def find_redis_server() -> Path:
    override = os.environ.get("STATEFLEET_REDIS_SERVER")
    found = override if override else shutil.which("redis-server")
    if found and Path(found).is_file():
        return Path(found)
    raise ServiceError(
        "redis-server not found ($STATEFLEET_REDIS_SERVER or PATH). "
        "Install it with `make services-deps` (apt-get install redis-server)."
    )


@dataclass
class RedisServer:
    """A running redis-server: no persistence, or an append-only file (``aof=True``)."""

    host: str
    port: int
    base_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    executable: Path = Path("redis-server")
    aof: bool = False

    @property
    def log_file(self) -> Path:
        return self.base_dir / "redis.log"

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def command(self, *args: str) -> Any:
        """Send one command with a short-lived client and return its reply."""
        import redis

        client = redis.Redis(host=self.host, port=self.port, socket_timeout=10)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def restart(self, *, rewrite_aof: bool = True) -> None:
        """Stop the server and start it again on the same port and directory. With AOF on,
        the append-only file is rewritten first (BGREWRITEAOF) and SHUTDOWN syncs it, so
        the new server loads every acknowledged write."""
        if self.aof and rewrite_aof:
            self.command("BGREWRITEAOF")
            deadline = time.monotonic() + START_TIMEOUT_S
            while self.command("INFO", "persistence").get("aof_rewrite_in_progress"):
                if time.monotonic() > deadline:
                    raise ServiceError(f"AOF rewrite did not finish:\n{_tail(self.log_file)}")
                time.sleep(0.05)
        with contextlib.suppress(Exception):  # the connection closes as the server exits
            self.command("SHUTDOWN")
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        server = _launch_redis(self.executable, self.base_dir, self.port, aof=self.aof)
        ready, error = _wait_redis(server)
        if not ready:
            raise ServiceError(f"redis-server did not start again:\n{error}")
        self.process = server.process

    def stop(self) -> None:
        """Shut down (SIGTERM) and remove the working directory. Idempotent."""
        atexit.unregister(self.stop)
        _stop_process(self.process, signal.SIGTERM)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def start_redis(
    parent: Path | None = None, *, port: int | None = None, aof: bool = False
) -> RedisServer:
    """Start `redis-server` on loopback, without RDB persistence; with `aof=True` it keeps
    an append-only file synced every second (`appendfsync everysec`), as in production."""
    executable = find_redis_server()
    base_dir = _make_tempdir("statefleet-redis-", parent, None)
    try:
        last_error = ""
        for _ in range(_PORT_ATTEMPTS if port is None else 1):
            server = _launch_redis(executable, base_dir, port or free_port(), aof=aof)
            ready, last_error = _wait_redis(server)
            if ready:
                atexit.register(server.stop)
                return server
            _stop_process(server.process, signal.SIGTERM)
            if "in use" not in last_error:
                break
        raise ServiceError(f"redis-server did not start:\n{last_error}")
    except BaseException:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise


def _launch_redis(executable: Path, base_dir: Path, port: int, *, aof: bool) -> RedisServer:
    cmd = [str(executable), "--port", str(port), "--bind", HOST, "--dir", str(base_dir)]
    cmd += ["--save", "", "--daemonize", "no"]
    cmd += ["--appendonly", "yes", "--appendfsync", "everysec"] if aof else ["--appendonly", "no"]
    with open(base_dir / "redis.log", "ab") as log:
        process = subprocess.Popen(
            cmd,
            cwd=base_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return RedisServer(HOST, port, base_dir, process, executable, aof)


def _wait_redis(server: RedisServer) -> tuple[bool, str]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False, _tail(server.log_file)
        with (
            contextlib.suppress(OSError),
            socket.create_connection((server.host, server.port), timeout=1) as sock,
        ):
            sock.sendall(b"PING\r\n")
            if sock.recv(64).startswith(b"+PONG"):
                return True, ""
        time.sleep(0.05)
    return False, f"not ready after {START_TIMEOUT_S:.0f} s\n{_tail(server.log_file)}"
