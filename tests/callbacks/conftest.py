"""The queue suite's fixtures (real PostgreSQL, Redis, arq workers) for the distributed tests."""

from tests.queue.conftest import app_module, client, pg, spawn

__all__ = ["app_module", "client", "pg", "spawn"]
