"""Job payloads: JSON only, never pickle, and validated before anything runs.

A job is arq's job record (``{t, f, a, k, et}``, see ``arq.jobs.serialize_job``) serialised
as JSON by :func:`dumps`; its keyword arguments are the :class:`JobPayload`::

    {"t": null, "f": "statefleet.run", "a": [], "et": 1732281600000,
     "k": {"e": "<execution id>", "m": "<machine id>", "v": "<version>", "q": "default", "n": 3}}

All the state lives in the database: the payload only names the execution. A payload that
does not parse, or names no execution, is a :class:`PayloadError`: the job is dead-lettered
at once, never retried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from statefleet.errors import StatefleetError

__all__ = [
    "FUNCTION",
    "JobPayload",
    "PayloadError",
    "describe_payload_error",
    "dumps",
    "encode_job",
    "loads",
    "parse_payload",
]

#: The name of statefleet's one arq job function.
FUNCTION = "statefleet.run"


class PayloadError(StatefleetError):
    """A job payload that is not a statefleet job: not retryable."""

    error = "statefleet.PayloadError"


def _default(value: Any) -> Any:
    if isinstance(value, BaseException):
        return {"$error": type(value).__name__, "message": str(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


def dumps(value: Any) -> bytes:
    """arq's ``job_serializer``: JSON; exceptions in results become ``{"$error", "message"}``."""
    return json.dumps(value, separators=(",", ":"), default=_default).encode()


def loads(data: bytes | str) -> Any:
    """arq's ``job_deserializer``."""
    return json.loads(data)


@dataclass(frozen=True, slots=True)
class JobPayload:
    """What a job names: the execution, its machine and version, its queue and max tries."""

    execution_id: str
    machine_id: str
    version: str
    queue: str
    max_tries: int

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "e": self.execution_id,
            "m": self.machine_id,
            "v": self.version,
            "q": self.queue,
            "n": self.max_tries,
        }


def encode_job(payload: JobPayload, enqueue_ms: int) -> bytes:
    """The job record exactly as ``arq.jobs.serialize_job`` lays it out, as JSON."""
    return dumps({"t": None, "f": FUNCTION, "a": [], "k": payload.as_kwargs(), "et": enqueue_ms})


def parse_payload(kwargs: Any) -> JobPayload:
    """Validate a job's keyword arguments; :class:`PayloadError` says what is wrong."""
    if not isinstance(kwargs, dict):
        raise PayloadError(f"job arguments must be an object, got {type(kwargs).__name__}")
    problems = []
    for key, label in (("e", "execution id"), ("m", "machine id"), ("v", "version")):
        value = kwargs.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"{label} ({key!r}) must be a non-empty string, got {value!r}")
    queue = kwargs.get("q", "default")
    if not isinstance(queue, str) or not queue:
        problems.append(f"queue ('q') must be a non-empty string, got {queue!r}")
    tries = kwargs.get("n", 3)
    if isinstance(tries, bool) or not isinstance(tries, int) or tries < 1:
        problems.append(f"max tries ('n') must be a positive integer, got {tries!r}")
    unknown = sorted(set(kwargs) - {"e", "m", "v", "q", "n"})
    if unknown:
        problems.append(f"unknown fields {unknown}")
    if problems:
        raise PayloadError("invalid job payload: " + "; ".join(problems))
    return JobPayload(kwargs["e"], kwargs["m"], kwargs["v"], queue, tries)


def describe_payload_error(raw: bytes | None) -> str:
    """Why arq could not read a job record (for the dead letter's cause)."""
    if raw is None:
        return "the job record is missing from Redis"
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        return "job payload is not UTF-8 text (statefleet jobs are JSON, never pickle)"
    except json.JSONDecodeError as exc:
        return f"job payload is not valid JSON: {exc.msg} at char {exc.pos}"
    if not isinstance(data, dict):
        return f"job payload must be a JSON object, got {type(data).__name__}"
    missing = [key for key in ("f", "a", "k", "t", "et") if key not in data]
    if missing:
        return f"job payload lacks arq's fields {missing}"
    if data.get("f") != FUNCTION:
        return f"job names function {data.get('f')!r}, not {FUNCTION!r}"
    return "job payload cannot be read"
