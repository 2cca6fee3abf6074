"""Task functions of the distributed example: ``--app examples.distributed_queue.app:app``.

Workers import this module to run the Task states; the leader imports it too (for input
transformers, none here). Each task waits a few milliseconds, as a call to a real service
would: a worker runs ``--concurrency`` of them at once.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from statefleet import App, TaskContext

app = App()

#: Seconds each task waits (TASK_DELAY in the environment, default 0.01).
DELAY = float(os.environ.get("TASK_DELAY", "0.01"))


@app.resource("fleet:score")
async def score(order: dict[str, Any]) -> int:
    await asyncio.sleep(DELAY)
    return int(order["amount"]) % 100


@app.resource("fleet:route")
async def route(order: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    await asyncio.sleep(DELAY)
    lane = "review" if order["score"] > 90 else "auto"
    return {"lane": lane, "worker": f"{socket.gethostname()}:{os.getpid()}"}
