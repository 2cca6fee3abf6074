"""Order processing from Python: the machine persisted, one execution, then a batch.

    python -m examples.order_processing.run [DATABASE_URL]

The store defaults to ``STATEFLEET_DATABASE_URL``, else the SQLite file ``./statefleet.db``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from examples.order_processing.app import app
from statefleet import BatchOptions, PersistentStateMachine, open_store

HERE = Path(__file__).parent


async def main(database_url: str | None = None) -> dict[str, Any]:
    """Register the machine, run one order, run a batch of five; return what happened."""
    store = await open_store(database_url or app.settings.database_url)
    try:
        machine = await PersistentStateMachine.create(
            (HERE / "orders.yaml").read_text(encoding="utf-8"),
            machine_id="orders",
            store=store,
            resources=app.resources,
        )
        order = json.loads((HERE / "order.json").read_text(encoding="utf-8"))
        one = await machine.execute(order)
        print(f"one order: {one.status}, charged {one.output['payment']['charged']}")

        inputs = [json.loads(line) for line in (HERE / "orders.jsonl").open(encoding="utf-8")]
        batch = await machine.execute_bulk(inputs, BatchOptions(concurrency=8))
        record = await batch.wait()
        counts = await batch.counts()
        print(f"batch {batch.name}: {record.status} {counts}")
        async for execution in batch.results():
            if execution.status == "FAILED":
                print(f"  {execution.input['orderId']}: {execution.error} ({execution.cause})")
        return {"one": one.status, "batch": record.status, "counts": counts}
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
