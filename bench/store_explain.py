"""EXPLAIN ANALYZE of the store's list and count queries on 1,000,000 executions (PostgreSQL).

    python bench/store_explain.py                 # 1,000,000 executions
    python bench/store_explain.py --rows 200000   # smaller

Starts a throwaway PostgreSQL (`tests.services.start_postgres()`), migrates it with the
shipped Alembic revision, loads executions and links with COPY, runs ``VACUUM ANALYZE``,
then runs ``EXPLAIN (ANALYZE, BUFFERS)`` of each query shape the repository issues — the
very statements `SQLStore` builds (`select_executions`, `count_statement`,
`count_by_status_statement`, `unlinked_condition`) — and prints one line per query: the plan
nodes, the indexes used, the rows returned and the execution time of the second (warm) run.

Data: 60% `intake-v1`, 30% `orders-v1` (each linked from an intake execution), 10%
`billing-v1`; 80% SUCCEEDED, 8% FAILED, 6% QUEUED, 2% each RUNNING, WAITING, ABORTED;
batches of 10,000; ids time-ordered over 30 days; inputs
``{"customer": "c<0..4999>", "region": <8 regions>, "amount": <float>}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from statefleet.statemachine.protocols import ExecutionFilter
from statefleet.store import SQLStore, open_store
from tests.services import start_postgres

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
STATES = ["Validate", "Charge", "Reserve", "Ship", "Notify"]
ORDERS = "orders-v1"
REGIONS = ["eu", "us", "apac", "latam", "mea", "ca", "uk", "nordics"]


class Explain(Executable, ClauseElement):
    """``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) <statement>``, parameters bound as usual."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + compiler.process(element.statement, **kw)


def uuid7_at(moment: datetime, rng: random.Random) -> str:
    millis = int(moment.timestamp() * 1000)
    value = (millis & ((1 << 48) - 1)) << 80 | rng.getrandbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def pick_status(r: float) -> str:
    for status, upto in (
        ("SUCCEEDED", 0.80),
        ("FAILED", 0.88),
        ("QUEUED", 0.94),
        ("RUNNING", 0.96),
        ("WAITING", 0.98),
    ):
        if r < upto:
            return status
    return "ABORTED"


def generate(rows: int, seed: int = 7) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(executions, links) as COPY records, in column order of the tables."""
    rng = random.Random(seed)
    step = SPAN / rows
    executions: list[tuple[Any, ...]] = []
    intake_done: list[str] = []
    orders: list[tuple[str, datetime]] = []
    batch_id = ""
    for i in range(rows):
        created = T0 + step * i
        execution_id = uuid7_at(created, rng)
        if i % 10_000 == 0:
            batch_id = uuid7_at(created, rng)
        r = rng.random()
        machine = "intake-v1" if r < 0.6 else "orders-v1" if r < 0.9 else "billing-v1"
        status = pick_status(rng.random())
        ended = created + timedelta(seconds=rng.randint(1, 600))
        terminal = status in {"SUCCEEDED", "FAILED", "ABORTED"}
        payload = {
            "customer": f"c{rng.randrange(5000)}",
            "region": REGIONS[rng.randrange(len(REGIONS))],
            "amount": round(rng.uniform(1, 1000), 2),
        }
        output = {"total": payload["amount"], "ok": rng.random() < 0.9}
        running = status in {"RUNNING", "WAITING"}
        executions.append(
            (
                execution_id,
                machine,
                "v1",
                f"order-{i:07d}",
                batch_id,
                status,
                None if status == "QUEUED" else STATES[rng.randrange(len(STATES))],
                json.dumps(payload),
                json.dumps(payload),
                "{}",
                json.dumps(output) if status == "SUCCEEDED" else None,
                "States.TaskFailed" if status == "FAILED" else None,
                "boom" if status == "FAILED" else None,
                None if status == "QUEUED" else created,
                ended if terminal else None,
                "worker-1" if running else None,
                created + timedelta(minutes=5) if running else None,
                3,
                4,
                0,
                created,
                ended if terminal else created,
            )
        )
        if machine == "intake-v1" and status == "SUCCEEDED":
            intake_done.append(execution_id)
        elif machine == "orders-v1":
            orders.append((execution_id, created, batch_id))
    links = []
    for (target, created, batch), source in zip(orders, intake_done, strict=False):
        links.append((target, ORDERS, batch, source, "intake-v1", "", "", created))
    return executions, links


async def load(url: str, rows: int) -> None:
    executions, links = generate(rows)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        columns = [
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'executions' ORDER BY ordinal_position"
            )
        ]
        started = time.perf_counter()
        for start in range(0, len(executions), 100_000):
            await conn.copy_records_to_table(
                "executions", records=executions[start : start + 100_000], columns=columns
            )
        link_columns = [
            "target_execution_id",
            "target_machine_id",
            "target_batch_id",
            "source_execution_id",
            "source_machine_id",
            "source_state",
            "transformer",
            "created_at",
        ]
        await conn.copy_records_to_table("linked_executions", records=links, columns=link_columns)
        loaded = time.perf_counter() - started
        await conn.execute("VACUUM ANALYZE")
        print(
            f"loaded {len(executions):,} executions and {len(links):,} links with COPY in "
            f"{loaded:.1f} s (VACUUM ANALYZE {time.perf_counter() - started - loaded:.1f} s)"
        )
    finally:
        await conn.close()


_ABBREVIATIONS = {
    "Index Scan": "IndexScan",
    "Index Only Scan": "IndexOnlyScan",
    "Seq Scan": "SeqScan",
    "Bitmap Heap Scan": "BitmapHeapScan",
    "Bitmap Index Scan": "BitmapIndexScan",
    "BitmapAnd": "BitmapAnd",
    "BitmapOr": "BitmapOr",
}


def plan_summary(plan: dict[str, Any]) -> tuple[str, list[str], int]:
    """(node chain, indexes used, rows returned) of an EXPLAIN JSON plan."""
    nodes: list[str] = []
    indexes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        if kind not in {"Limit", "Result", "Materialize", "Memoize", "Gather"}:
            label = _ABBREVIATIONS.get(kind, kind.replace(" ", ""))
            if kind == "Aggregate":
                label = {"Hashed": "HashAgg", "Sorted": "GroupAgg"}.get(node["Strategy"], "Agg")
            if node.get("Join Type") in {"Anti", "Semi"}:
                label = label.replace("Join", f"{node['Join Type']}Join").replace(
                    "NestedLoop", f"NestedLoop{node['Join Type']}"
                )
            nodes.append(label)
        if "Index Name" in node and node["Index Name"] not in indexes:
            indexes.append(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    root = plan["Plan"]
    walk(root)
    return " > ".join(nodes), indexes, int(root.get("Actual Rows", 0))


async def explain_all(store: SQLStore) -> None:
    async with store.engine.connect() as conn:
        batch = (await conn.exec_driver_sql("SELECT batch_id FROM executions LIMIT 1")).scalar()
        cursors = []
        for share in (50, 90):
            query = (
                "SELECT id FROM executions ORDER BY id OFFSET "
                f"(SELECT count(*) * {share} / 100 FROM executions) LIMIT 1"
            )
            cursors.append((await conn.exec_driver_sql(query)).scalar())
        middle, late = cursors
    day = T0 + timedelta(days=12)
    intake = "intake-v1"
    sources = ExecutionFilter(state_machine_id=intake, status="SUCCEEDED")
    shapes: list[tuple[str, Any]] = [
        (
            "list machine+status",
            store.select_executions(
                ExecutionFilter(state_machine_id=intake, status="FAILED"), limit=100
            ),
        ),
        (
            "list machine+3 statuses",
            store.select_executions(
                ExecutionFilter(state_machine_id=intake, status=["QUEUED", "RUNNING", "WAITING"]),
                limit=100,
            ),
        ),
        (
            "keyset page machine (after=mid)",
            store.select_executions(
                ExecutionFilter(state_machine_id=intake, after=middle), limit=1000
            ),
        ),
        (
            "keyset page machine+SUCCEEDED",
            store.select_executions(
                ExecutionFilter(state_machine_id=intake, status="SUCCEEDED", after=middle),
                limit=1000,
            ),
        ),
        ("list status only", store.select_executions(ExecutionFilter(status="FAILED"), limit=100)),
        ("list batch", store.select_executions(ExecutionFilter(batch_id=batch), limit=100)),
        (
            "list batch+status",
            store.select_executions(ExecutionFilter(batch_id=batch, status="FAILED"), limit=100),
        ),
        (
            "list name prefix (machine)",
            store.select_executions(
                ExecutionFilter(state_machine_id=intake, name_prefix="order-00123"), limit=100
            ),
        ),
        (
            "list name prefix (no machine)",
            store.select_executions(ExecutionFilter(name_prefix="order-00123"), limit=100),
        ),
        (
            "list started 1h window",
            store.select_executions(
                ExecutionFilter(started_after=day, started_before=day + timedelta(hours=1)),
                limit=100,
            ),
        ),
        (
            "list ended 1h window+machine",
            store.select_executions(
                ExecutionFilter(
                    state_machine_id=intake, ended_after=day, ended_before=day + timedelta(hours=1)
                ),
                limit=100,
            ),
        ),
        (
            "list current_state+machine",
            store.select_executions(
                ExecutionFilter(state_machine_id=intake, current_state="Charge"), limit=100
            ),
        ),
        (
            "list input @> customer",
            store.select_executions(ExecutionFilter(input_contains={"customer": "c42"}), limit=100),
        ),
        (
            "list output @> ok=false",
            store.select_executions(
                ExecutionFilter(state_machine_id=intake, output_contains={"ok": False}), limit=100
            ),
        ),
        (
            "unlinked sources, first page",
            store.select_unlinked(sources, "orders-v1", None, None, limit=1000),
        ),
        (
            "unlinked sources, page after=mid",
            store.select_unlinked(replace(sources, after=middle), ORDERS, None, None, limit=1000),
        ),
        (
            "unlinked sources, page after=90%",
            store.select_unlinked(replace(sources, after=late), ORDERS, None, None, limit=1000),
        ),
        (
            "unlinked (batch), first page",
            store.select_unlinked(sources, "orders-v1", None, None, batch, limit=1000),
        ),
        (
            "unlinked (batch), after=mid",
            store.select_unlinked(
                replace(sources, after=middle), "orders-v1", None, None, batch, limit=1000
            ),
        ),
        (
            "count machine+status",
            store.count_statement(ExecutionFilter(state_machine_id=intake, status="SUCCEEDED")),
        ),
        (
            "count_by_status machine",
            store.count_by_status_statement(ExecutionFilter(state_machine_id=intake)),
        ),
        ("count_by_status batch", store.count_by_status_statement(ExecutionFilter(batch_id=batch))),
        (
            "count input @> customer",
            store.count_statement(ExecutionFilter(input_contains={"customer": "c42"})),
        ),
    ]
    print()
    print(f"{'query':<32} {'ms':>8} {'rows':>7}  {'indexes':<58} plan")
    print("-" * 150)
    async with store.engine.connect() as conn:
        for label, statement in shapes:
            for _ in range(2):  # the second run is warm
                result = (await conn.execute(Explain(statement))).scalar_one()
            plan = result[0] if isinstance(result, list) else json.loads(result)[0]
            nodes, indexes, rows = plan_summary(plan)
            ms = plan["Execution Time"]
            print(f"{label:<32} {ms:8.2f} {rows:7d}  {', '.join(indexes) or '-':<58} {nodes}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    pg = start_postgres(
        extra_settings=["shared_buffers=1GB", "maintenance_work_mem=512MB", "work_mem=16MB"]
    )
    try:
        url = pg.url(pg.create_database("explain"))
        store = await open_store(url)
        try:
            await load(url, args.rows)
            version = pg.psql("SHOW server_version")
            print(f"PostgreSQL {version}, {os.cpu_count()} cores")
            await explain_all(store)
        finally:
            await store.close()
    finally:
        pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
