"""Task functions of the crash-recovery example: ``--app examples.crash_recovery.app:app``.

Every Task takes ``TASK_DELAY`` seconds (default 0.2) and then appends one line to the file
``TASK_LOG`` (default ``crash-tasks.log``): ``execution-id state attempt``. A line that
appears twice is a state that ran twice. ``check.py`` reads it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from statefleet import App, TaskContext

app = App()

DELAY = float(os.environ.get("TASK_DELAY", "0.2"))
LOG = os.environ.get("TASK_LOG", "crash-tasks.log")


@app.resource("crash:step")
async def step(payload: dict[str, Any], context: TaskContext) -> bool:
    await asyncio.sleep(DELAY)
    line = f"{context.execution_id} {context.state_name} {context.attempt}\n"
    # One small O_APPEND write per line: lines from several processes never interleave.
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return True
