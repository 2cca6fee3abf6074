"""intake -> fulfilment over many entities, and a unique re-run that starts nothing.

    python -m examples.chained_batch.run [--size 10000] [--database-url URL]

1. a bulk batch of ``--size`` intake executions (one per parcel);
2. a batch of fulfilment chained over every intake execution that SUCCEEDED: each one's
   input is its source's output through the ``shipment`` transformer, and each is linked
   to its source (``unique=True``: sources already chained are skipped);
3. the same chained batch again: every source is linked already, so it starts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from examples.chained_batch.app import app, parcels
from statefleet import BatchOptions, ExecutionFilter, PersistentStateMachine, open_store

HERE = Path(__file__).parent


async def main(size: int, database_url: str | None = None) -> dict[str, Any]:
    store = await open_store(database_url or app.settings.database_url)
    try:
        machines = {}
        for machine_id in ("intake", "fulfilment"):
            machines[machine_id] = await PersistentStateMachine.create(
                (HERE / f"{machine_id}.yaml").read_text(encoding="utf-8"),
                machine_id=machine_id,
                store=store,
                resources=app.resources,
                transformers=app.transformers,
            )
        options = BatchOptions(concurrency=128)

        intake = await machines["intake"].execute_bulk(parcels(size), options)
        await intake.wait()
        intake_counts = await intake.counts()
        print(f"intake     {intake.name}: {intake_counts}")

        accepted = ExecutionFilter(
            state_machine_id="intake", batch_id=intake.id, status="SUCCEEDED"
        )
        fulfilment = await machines["fulfilment"].execute_batch(
            accepted, transformer="shipment", unique=True, options=options
        )
        await fulfilment.wait()
        fulfilment_counts = await fulfilment.counts()
        print(f"fulfilment {fulfilment.name}: {fulfilment_counts}")

        again = await machines["fulfilment"].execute_batch(
            accepted, transformer="shipment", unique=True, options=options
        )
        await again.wait()
        rerun_counts = await again.counts()
        print(f"re-run     {again.name}: {rerun_counts or 'nothing to do'}")
        return {"intake": intake_counts, "fulfilment": fulfilment_counts, "rerun": rerun_counts}
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="parcels (default 10,000)")
    parser.add_argument("--database-url", help="store (default: STATEFLEET_DATABASE_URL)")
    args = parser.parse_args()
    asyncio.run(main(args.size, args.database_url))
