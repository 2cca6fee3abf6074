"""Every Redis key statefleet uses, in one place, under a configurable prefix.

Several fleets can share one Redis: each has its own prefix (``STATEFLEET_QUEUE_PREFIX``,
default ``statefleet``) and touches only its own keys.

statefleet's keys (``P`` = the prefix)::

    P:queue:<name>                 ZSET  an arq queue: member job id, score = ms when runnable
    P:queues                       SET   names of the queues jobs were ever enqueued to
    P:paused                       SET   names of paused queues (workers skip them)
    P:workers                      ZSET  worker ids, score = last heartbeat (ms)
    P:worker:<id>                  STRING JSON heartbeat of one worker, with a TTL
    P:workers:paused               SET   ids of paused workers (they take no new jobs)
    P:mqueue:<queue>:<machine>     ZSET  index of one machine's jobs in a queue (same members
                                         and scores): what ``--machines`` workers read
    P:dead                         ZSET  dead-lettered job ids, score = ms (index for the UI;
                                         the durable record is the ``dead_letters`` table)
    P:dead:info                    HASH  job id -> JSON (error, cause, machine, queue, tries)
    P:stats:<kind>:<queue>:<day>   STRING daily counters, kind = processed | failed
    P:stats:jobtime                HASH  job run time histogram of all workers, by queue and
                                         machine (see ``statefleet.queue.inspector``)

arq's own keys are fixed by arq (``arq/constants.py``: ``arq:job:``, ``arq:in-progress:``,
``arq:retry:``, ``arq:result:``), with no prefix option (arq issue #436). Rather than fork
arq's job runner, statefleet namespaces the *job ids*: the job of execution ``E`` has the id
``P:E``, so its keys are ``arq:job:P:E``, ``arq:in-progress:P:E``, ... — unique per fleet,
and found for one fleet with ``SCAN MATCH arq:*:P:*``. The queue zsets, whose names arq
lets us choose, are under the prefix. arq's ``arq:abort`` set and ``*:health-check`` keys
are never written (aborts are not used; the heartbeat registry replaces the health check).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)

__all__ = ["ARQ_IN_PROGRESS", "ARQ_JOB", "ARQ_RESULT", "ARQ_RETRY", "Keys"]

ARQ_JOB = job_key_prefix
ARQ_IN_PROGRESS = in_progress_key_prefix
ARQ_RETRY = retry_key_prefix
ARQ_RESULT = result_key_prefix


class Keys:
    """The key names of one fleet (one prefix)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = "statefleet") -> None:
        if not prefix or any(ch in prefix for ch in " *?[]"):
            raise ValueError(f"invalid Redis key prefix {prefix!r}")
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"Keys({self.prefix!r})"

    # ---------------------------------------------------------------- queues

    def queue(self, name: str) -> str:
        return f"{self.prefix}:queue:{name}"

    @property
    def queues(self) -> str:
        return f"{self.prefix}:queues"

    @property
    def paused(self) -> str:
        return f"{self.prefix}:paused"

    @property
    def machine_queue_prefix(self) -> str:
        return f"{self.prefix}:mqueue:"

    def machine_queue(self, queue: str, machine_id: str) -> str:
        """The index of machine ``machine_id``'s jobs in ``queue`` (for ``--machines``)."""
        return f"{self.machine_queue_prefix}{queue}:{machine_id}"

    def machine_queue_pattern(self, queue: str) -> str:
        """A SCAN pattern matching every machine index of ``queue``."""
        return glob_escape(self.machine_queue(queue, "")) + "*"

    # ---------------------------------------------------------------- jobs

    def job_id(self, execution_id: str) -> str:
        return f"{self.prefix}:{execution_id}"

    def execution_id(self, job_id: str) -> str | None:
        """The execution of one of this fleet's job ids (None for a foreign id)."""
        head = f"{self.prefix}:"
        if not job_id.startswith(head) or len(job_id) == len(head):
            return None
        return job_id[len(head) :]

    @staticmethod
    def job(job_id: str) -> str:
        return ARQ_JOB + job_id

    @staticmethod
    def in_progress(job_id: str) -> str:
        return ARQ_IN_PROGRESS + job_id

    @staticmethod
    def retry(job_id: str) -> str:
        return ARQ_RETRY + job_id

    @staticmethod
    def result(job_id: str) -> str:
        return ARQ_RESULT + job_id

    def result_pattern(self) -> str:
        return f"{glob_escape(ARQ_RESULT + self.prefix)}:*"

    # ---------------------------------------------------------------- workers, dead letters, stats

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    @property
    def paused_workers(self) -> str:
        """SET of worker ids asked to take no new jobs (the Workers page writes it)."""
        return f"{self.prefix}:workers:paused"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    @property
    def dead_info(self) -> str:
        return f"{self.prefix}:dead:info"

    @property
    def job_durations(self) -> str:
        return f"{self.prefix}:stats:jobtime"

    def stats(self, kind: str, queue: str, day: str | None = None) -> str:
        return f"{self.prefix}:stats:{kind}:{queue}:{day or today()}"


def glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis ``SCAN MATCH`` / ``KEYS`` pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")
