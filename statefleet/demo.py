"""The ``statefleet demo``: two realistic machines, a bulk batch and a chained batch.

Order intake -> fulfilment, on whatever store it is given (the embedded SQLite file by
default)::

    demo-intake       Validate (Catch InvalidOrder -> Rejected) -> PriceLines (Map over the
                      order's lines) -> Quote -> BigOrder? (Choice) -> [Review] ->
                      ReserveStock (flaky: Retry InventoryUnavailable; Catch OutOfStock ->
                      Backorder)
    demo-fulfilment   Backordered? (Choice) -> PickLines (Map) -> Express? (Choice) ->
                      BookCourier | BookPost -> ChargePayment (Catch CardDeclined ->
                      ReleaseStock -> PaymentDeclined) -> NotifyCustomer

:func:`run_demo` registers both machines, runs a bulk batch of ``size`` intake executions,
then a batch chained over the intake executions that SUCCEEDED (``unique=True``, through
the ``fulfilment-request`` input transformer), and returns a :class:`DemoSummary` read
from the store. Every failure is deterministic: the same orders fail on every run.

Each run creates two new batches, named after the time it started (``demo-<UTC time>``);
the machines are registered again only if their definitions changed. The task callables
and the transformer are also available as :data:`app`, so that every other command can
work on the demo's executions (``--app statefleet.demo:app``).

The definitions ship inside the package (``statefleet/demo_machines/*.yaml``).
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from array import array
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from statefleet.app import App
from statefleet.errors import TaskError
from statefleet.statemachine.batch import Batch, BatchOptions
from statefleet.statemachine.lifecycle import TERMINAL
from statefleet.statemachine.persistent import PersistentStateMachine
from statefleet.statemachine.protocols import ExecutionFilter, Store
from statefleet.statemachine.runtime import TaskContext

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_SIZE",
    "FULFILMENT",
    "INTAKE",
    "DemoSummary",
    "PhaseSummary",
    "Watch",
    "app",
    "definition",
    "latency_percentiles",
    "orders",
    "run_demo",
]

logger = logging.getLogger(__name__)

INTAKE = "demo-intake"
FULFILMENT = "demo-fulfilment"
DEFAULT_SIZE = 10_000
#: Executions running at once. A retried ReserveStock sleeps up to a second; a high
#: concurrency keeps those sleepers from holding the batch back.
DEFAULT_CONCURRENCY = 256
SEED = 20240901

#: Shares of the deterministic failures (per cent / per mille of the orders).
INVALID_PERCENT = 2
FLAKY_PERCENT = 10
OUT_OF_STOCK_PERCENT = 3
DECLINED_PER_MILLE = 15

SKUS = [f"SKU-{n:04d}" for n in range(1, 241)]
COUNTRIES = ["DE", "FR", "NL", "SE", "ES", "IT", "PL", "US", "GB", "JP"]


def definition(machine_id: str) -> str:
    """The YAML definition of a demo machine (``demo-intake`` or ``demo-fulfilment``)."""
    package = resources.files("statefleet") / "demo_machines"
    return (package / f"{machine_id}.yaml").read_text(encoding="utf-8")


# ------------------------------------------------------------------ the orders


def orders(size: int, *, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """``size`` order documents, the same ones for the same seed (a generator: streamed)."""
    rng = random.Random(seed)
    for index in range(size):
        lines = [
            {
                "sku": rng.choice(SKUS),
                "quantity": rng.randint(1, 4),
                "unitPrice": round(rng.uniform(4.0, 180.0), 2),
            }
            for _ in range(rng.randint(1, 3))
        ]
        order: dict[str, Any] = {
            "orderId": f"ORD-{index + 1:07d}",
            "customer": {
                "id": f"C{rng.randint(1, 5000):05d}",
                "tier": "gold" if rng.random() < 0.15 else "standard",
            },
            "country": rng.choice(COUNTRIES),
            "shipping": "express" if rng.random() < 0.3 else "standard",
            "lines": lines,
        }
        if rng.random() * 100 < INVALID_PERCENT:  # a broken order: intake rejects it
            lines[0]["quantity"] = 0
        yield order


def _roll(*key: object) -> int:
    """A number 0-999 fixed by ``key``: the same dice on every run and in every process."""
    return zlib.crc32(":".join(map(str, (SEED, *key))).encode()) % 1000


# ------------------------------------------------------------------ intake tasks


def validate_order(order: dict[str, Any]) -> dict[str, Any]:
    problems = [
        f"line {n}: quantity must be positive"
        for n, line in enumerate(order.get("lines") or [], 1)
        if line.get("quantity", 0) <= 0
    ]
    if not order.get("lines"):
        problems.append("the order has no lines")
    if problems:
        raise TaskError("InvalidOrder", f"order {order.get('orderId')}: " + "; ".join(problems))
    return order


def price_line(line: dict[str, Any]) -> dict[str, Any]:
    return {**line, "amount": round(line["quantity"] * line["unitPrice"], 2)}


def quote(order: dict[str, Any]) -> dict[str, Any]:
    subtotal = round(sum(line["amount"] for line in order["lines"]), 2)
    discount = round(subtotal * 0.05, 2) if order["customer"]["tier"] == "gold" else 0.0
    shipping = 14.9 if order["shipping"] == "express" else 4.9
    return {
        "subtotal": subtotal,
        "discount": discount,
        "shipping": shipping,
        "total": round(subtotal - discount + shipping, 2),
    }


def reserve_stock(order: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    """Fails with InventoryUnavailable on ~10% of attempts (retried), OutOfStock on ~3%."""
    order_id = order["orderId"]
    if _roll(order_id, "inventory", context.attempt) < FLAKY_PERCENT * 10:
        raise TaskError("InventoryUnavailable", "the inventory service timed out")
    if _roll(order_id, "stock") < OUT_OF_STOCK_PERCENT * 10:
        sku = order["lines"][0]["sku"]
        raise TaskError("OutOfStock", f"{sku} is out of stock")
    return {"reservationId": f"RSV-{order_id[4:]}", "warehouse": f"WH-{_roll(order_id) % 3 + 1}"}


# ------------------------------------------------------------------ fulfilment tasks


def fulfilment_request(output: dict[str, Any]) -> dict[str, Any]:
    """Input transformer: the part of an accepted order that fulfilment needs."""
    reservation = output.get("reservation") or {}
    return {
        "orderId": output["orderId"],
        "customer": output["customer"],
        "country": output["country"],
        "shipping": output["shipping"],
        "lines": [{"sku": line["sku"], "quantity": line["quantity"]} for line in output["lines"]],
        "total": output["quote"]["total"],
        "warehouse": reservation.get("warehouse"),
        "backordered": bool(reservation.get("backordered")),
    }


def pick_line(line: dict[str, Any]) -> dict[str, Any]:
    return {"sku": line["sku"], "quantity": line["quantity"], "bin": f"B{_roll(line['sku']):03d}"}


def book_courier(order: dict[str, Any]) -> dict[str, Any]:
    return {"carrier": "courier", "tracking": f"EXP{_roll(order['orderId'], 'track'):03d}"}


def book_post(order: dict[str, Any]) -> dict[str, Any]:
    return {"carrier": "post", "tracking": f"STD{_roll(order['orderId'], 'track'):03d}"}


def charge_payment(order: dict[str, Any]) -> dict[str, Any]:
    """Declines ~1.5% of the cards."""
    if _roll(order["orderId"], "card") < DECLINED_PER_MILLE:
        raise TaskError("CardDeclined", f"card of customer {order['customer']['id']} declined")
    return {"charged": order["total"], "currency": "EUR"}


def release_stock(order: dict[str, Any]) -> dict[str, Any]:
    return {"released": order["orderId"]}


def notify_customer(order: dict[str, Any]) -> dict[str, Any]:
    return {"channel": "email", "to": order["customer"]["id"]}


#: The demo's task callables and input transformer: ``--app statefleet.demo:app``.
app = App(
    resources={
        "demo:validate-order": validate_order,
        "demo:price-line": price_line,
        "demo:quote": quote,
        "demo:reserve-stock": reserve_stock,
        "demo:pick-line": pick_line,
        "demo:book-courier": book_courier,
        "demo:book-post": book_post,
        "demo:charge-payment": charge_payment,
        "demo:release-stock": release_stock,
        "demo:notify-customer": notify_customer,
    },
    transformers={"fulfilment-request": fulfilment_request},
)


# ------------------------------------------------------------------ the run


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseSummary:
    """One batch of the demo, as the store has it once the batch has ended."""

    machine_id: str
    batch_id: str
    batch_name: str
    batch_status: str
    counts: dict[str, int]
    seconds: float
    p50_seconds: float | None
    p99_seconds: float | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        """Executions ended per second of the batch's wall time."""
        return self.total / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSummary:
    size: int
    concurrency: int
    phases: list[PhaseSummary] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(phase.total for phase in self.phases)

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0


#: Called with a title, the running batch and how many executions it will run (None when
#: unknown); returns when it has seen enough (the CLI draws a progress bar until the end).
Watch = Callable[[str, Batch, int | None], Awaitable[None]]


async def latency_percentiles(
    store: Store, filter: ExecutionFilter
) -> tuple[float | None, float | None]:
    """p50 and p99 of ``ended_at - started_at`` over the ended executions ``filter`` selects,
    streamed from the store (only one float per execution is kept)."""
    durations = array("d")
    statuses = tuple(s.value for s in TERMINAL)
    async for record in store.stream_executions(replace(filter, status=statuses)):
        if record.started_at is not None and record.ended_at is not None:
            durations.append((record.ended_at - record.started_at).total_seconds())
    if not durations:
        return None, None
    ordered = sorted(durations)
    return _percentile(ordered, 50), _percentile(ordered, 99)


def _percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


async def _phase(
    title: str,
    machine: PersistentStateMachine,
    start: Callable[[], Awaitable[Batch]],
    expected: int | None,
    watch: Watch | None,
) -> PhaseSummary:
    began = time.perf_counter()
    batch = await start()
    if watch is not None:
        await watch(title, batch, expected)
    record = await batch.wait()
    seconds = time.perf_counter() - began
    counts = await batch.counts()
    p50, p99 = await latency_percentiles(machine.store, ExecutionFilter(batch_id=batch.id))
    logger.info("demo batch %s ended %s in %.1f s: %s", batch.name, record.status, seconds, counts)
    return PhaseSummary(
        machine_id=machine.machine_id,
        batch_id=batch.id,
        batch_name=batch.name,
        batch_status=record.status,
        counts=counts,
        seconds=seconds,
        p50_seconds=p50,
        p99_seconds=p99,
    )


async def run_demo(
    store: Store,
    *,
    size: int = DEFAULT_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    seed: int = SEED,
    watch: Watch | None = None,
) -> DemoSummary:
    """Register the demo machines, run ``size`` intake executions as a bulk batch, then the
    fulfilment of every accepted order as a chained batch; return what the store counts."""
    if size < 0:
        raise ValueError(f"size must be at least 0, got {size}")
    began = time.perf_counter()
    intake = await PersistentStateMachine.create(
        definition(INTAKE),
        machine_id=INTAKE,
        name="Order intake",
        store=store,
        resources=app.resources,
        transformers=app.transformers,
    )
    fulfilment = await PersistentStateMachine.create(
        definition(FULFILMENT),
        machine_id=FULFILMENT,
        name="Fulfilment",
        store=store,
        resources=app.resources,
        transformers=app.transformers,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    name = f"demo-{stamp}"

    def start_intake() -> Awaitable[Batch]:
        return intake.execute_bulk(
            orders(size, seed=seed),
            BatchOptions(name=name, name_prefix=f"{name}-", concurrency=concurrency),
        )

    first = await _phase("intake", intake, start_intake, size, watch)

    accepted = ExecutionFilter(state_machine_id=INTAKE, batch_id=first.batch_id, status="SUCCEEDED")

    def start_fulfilment() -> Awaitable[Batch]:
        return fulfilment.execute_batch(
            accepted,
            transformer="fulfilment-request",
            unique=True,
            options=BatchOptions(name=name, name_prefix=f"{name}-", concurrency=concurrency),
        )

    second = await _phase(
        "fulfilment", fulfilment, start_fulfilment, first.counts.get("SUCCEEDED", 0), watch
    )
    return DemoSummary(
        size=size,
        concurrency=concurrency,
        phases=[first, second],
        seconds=time.perf_counter() - began,
    )
