"""Distributed mode on arq and Redis: the queue client, the worker, priorities, dead letters,
recovery and the Redis inspector. See ``docs/distributed.md``."""

from statefleet.queue.client import QueueClient, QueueClientClosedError, QueueFullError
from statefleet.queue.keys import Keys

__all__ = ["Keys", "QueueClient", "QueueClientClosedError", "QueueFullError"]
