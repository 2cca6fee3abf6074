"""Configuration: ``STATEFLEET_*`` environment variables and a ``.env`` file.

The defaults run the embedded mode with no services: a SQLite file in the current
directory and no Redis (local mode). Setting a Redis URL turns the queue on; the
common ``REDIS_URL``, ``REDIS_ADDR``, ``REDIS_HOST``/``REDIS_PORT``/``REDIS_PASSWORD``/
``REDIS_DB`` variables are understood too.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./statefleet.db"


class Settings(BaseSettings):
    """Everything statefleet reads from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="STATEFLEET_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the store."
    )
    database_pool_size: int = Field(
        default=5,
        gt=0,
        description="PostgreSQL connections a process keeps open (twice as many more at peaks).",
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL; set to run batches on the arq queue."
    )
    queue_prefix: str = Field(default="statefleet", description="Prefix of every Redis key.")
    lease_seconds: float = Field(default=60.0, gt=0, description="Execution lease length.")
    concurrency: int = Field(default=64, gt=0, description="Default batch concurrency.")

    # distributed mode (statefleet.queue)
    queue_max_tries: int = Field(default=3, ge=1, description="Tries of a job (per batch too).")
    queue_max_depth: int | None = Field(
        default=None, gt=0, description="Most jobs a queue may hold; a batch past it waits/fails."
    )
    queue_job_timeout: float = Field(default=300.0, gt=0, description="Per-job timeout (s).")
    queue_park_after: float = Field(
        default=5.0, ge=0, description="A Wait longer than this (s) parks instead of sleeping."
    )
    queue_keep_result: float = Field(default=3600.0, ge=0, description="arq result TTL (s).")
    worker_queues: str = Field(
        default="critical:6,default:3,low:1", description="Queues a worker serves, weighted."
    )
    worker_concurrency: int = Field(default=50, gt=0, description="Jobs a worker runs at once.")
    worker_grace: float = Field(
        default=30.0, ge=0, description="On SIGTERM, how long running jobs may finish (s)."
    )

    # web UI and REST API (statefleet.ui)
    ui_api_tokens: SecretStr | None = Field(
        default=None, description="Bearer tokens of the REST API, comma-separated."
    )
    ui_username: str | None = Field(default=None, description="Basic-auth user of the pages.")
    ui_password: SecretStr | None = Field(
        default=None, description="Basic-auth password of the pages."
    )
    ui_secret: SecretStr | None = Field(
        default=None, description="Signs session cookies and CSRF tokens (default: random)."
    )

    def store_options(self, url: str | None = None) -> dict[str, Any]:
        """What ``open_store`` takes for the database at ``url`` (default: ``database_url``)
        besides the URL: the connection pool's size on PostgreSQL; nothing for SQLite,
        whose store keeps one writer connection of its own."""
        from statefleet.store.engine import normalize_url

        if normalize_url(url or self.database_url).get_backend_name() == "sqlite":
            return {}
        return {"pool_size": self.database_pool_size, "max_overflow": 2 * self.database_pool_size}

    def resolved_redis_url(self) -> str | None:
        """The Redis URL from STATEFLEET_REDIS_URL, else from the common REDIS_* variables."""
        if self.redis_url:
            return self.redis_url
        env = os.environ
        if env.get("REDIS_URL"):
            return env["REDIS_URL"]
        host = env.get("REDIS_HOST")
        port = env.get("REDIS_PORT", "6379")
        if env.get("REDIS_ADDR"):
            host, _, addr_port = env["REDIS_ADDR"].partition(":")
            port = addr_port or port
        if not host:
            return None
        password = env.get("REDIS_PASSWORD")
        auth = f":{password}@" if password else ""
        return f"redis://{auth}{host}:{port}/{env.get('REDIS_DB', '0')}"
