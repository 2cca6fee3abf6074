"""``/metrics``: Prometheus text exposition format, written by hand from the Fleet's reads.

* ``statefleet_queue_jobs{queue,state}`` — jobs by state (active, pending, scheduled,
  retry, dead, completed);
* ``statefleet_queue_latency_seconds{queue}``, ``statefleet_queue_paused{queue}``,
  ``statefleet_queue_processed_today{queue}``, ``statefleet_queue_failed_today{queue}``;
* ``statefleet_workers{status}`` — workers by status (live, paused, stopping, gone);
* ``statefleet_executions{machine,status}`` — executions in the store;
* ``statefleet_dead_letters`` — dead letters in the store;
* ``statefleet_execution_duration_seconds{machine}`` — a histogram of the durations of the
  executions that ended since this process started (read from the store on each scrape);
* ``statefleet_job_duration_seconds{queue,machine}`` — a histogram of how long jobs ran on
  the workers: every worker adds each job's run time to ``P:stats:jobtime`` in Redis (a
  bucket, the sum, the count), so the counters cover the whole fleet and survive restarts
  of the UI and of the workers;
* ``statefleet_up`` — 1 if the store answered (and Redis, when configured).
"""

from __future__ import annotations

import logging

from statefleet.queue.inspector import JOB_DURATION_BUCKETS
from statefleet.ui import queries
from statefleet.ui.fleet import DURATION_BUCKETS, Fleet

__all__ = ["render_metrics"]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: object) -> str:
    text = str(value)
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: object) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: object) -> None:
        self.lines.append(f"{name}{_labels(**labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


async def render_metrics(fleet: Fleet) -> str:
    out = _Out()
    up = 1
    try:
        counts = await queries.counts_by_machine(fleet.store)
        out.family("statefleet_executions", "gauge", "Executions in the store by status.")
        for machine, by_status in sorted(counts.items()):
            for status, count in sorted(by_status.items()):
                out.sample("statefleet_executions", count, machine=machine, status=status)
        letters = sum(n for _, n in await queries.dead_letter_errors(fleet.store))
        out.family("statefleet_dead_letters", "gauge", "Dead letters in the store.")
        out.sample("statefleet_dead_letters", letters)
        durations = await fleet.observe_durations()
        name = "statefleet_execution_duration_seconds"
        out.family(name, "histogram", "Durations of executions that ended (since start).")
        for machine, (buckets, total, count) in sorted(durations.items()):
            for bound, value in zip(DURATION_BUCKETS, buckets, strict=False):
                out.sample(f"{name}_bucket", value, machine=machine, le=_number(bound))
            out.sample(f"{name}_bucket", count, machine=machine, le="+Inf")
            out.sample(f"{name}_sum", round(total, 6), machine=machine)
            out.sample(f"{name}_count", count, machine=machine)
    except Exception as exc:
        logger.warning("metrics: the store failed: %s", exc)
        up = 0
    if fleet.queue_enabled:
        try:
            overview = await fleet.overview()
            out.family("statefleet_queue_jobs", "gauge", "Jobs in a queue by state.")
            for q in overview["queues"]:
                for state in ("active", "pending", "scheduled", "retry", "dead", "completed"):
                    out.sample("statefleet_queue_jobs", q[state], queue=q["name"], state=state)
            for metric, key, help_text in (
                ("statefleet_queue_size", "size", "Jobs in a queue (all states but dead)."),
                (
                    "statefleet_queue_latency_seconds",
                    "latency_seconds",
                    "Age of the oldest runnable job.",
                ),
                (
                    "statefleet_queue_processed_today",
                    "processed_today",
                    "Jobs processed today (UTC).",
                ),
                ("statefleet_queue_failed_today", "failed_today", "Jobs failed today (UTC)."),
            ):
                out.family(metric, "gauge", help_text)
                for q in overview["queues"]:
                    out.sample(metric, q[key], queue=q["name"])
            out.family("statefleet_queue_paused", "gauge", "1 if the queue is paused.")
            for q in overview["queues"]:
                out.sample("statefleet_queue_paused", 1 if q["paused"] else 0, queue=q["name"])
            workers = await fleet.workers()
            statuses: dict[str, int] = {"live": 0, "paused": 0, "stopping": 0, "gone": 0}
            for worker in workers:
                status = str(worker.get("status", "live"))
                statuses[status] = statuses.get(status, 0) + 1
            out.family("statefleet_workers", "gauge", "Workers in the registry by status.")
            for status, count in sorted(statuses.items()):
                out.sample("statefleet_workers", count, status=status)
            name = "statefleet_job_duration_seconds"
            out.family(name, "histogram", "How long jobs ran on the workers (all workers).")
            for h in await fleet.job_durations():
                labels = {"queue": h.queue, "machine": h.machine}
                for bound, value in zip(JOB_DURATION_BUCKETS, h.buckets, strict=True):
                    out.sample(f"{name}_bucket", value, **labels, le=_number(bound))
                out.sample(f"{name}_bucket", h.count, **labels, le="+Inf")
                out.sample(f"{name}_sum", round(h.sum, 6), **labels)
                out.sample(f"{name}_count", h.count, **labels)
        except Exception as exc:
            logger.warning("metrics: Redis failed: %s", exc)
            up = 0
    out.family("statefleet_up", "gauge", "1 if the store (and Redis) answered.")
    out.sample("statefleet_up", up)
    return out.text()
