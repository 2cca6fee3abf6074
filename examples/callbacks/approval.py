"""Approval by task token, end to end, in local mode (an embedded SQLite store).

    python examples/callbacks/approval.py [DATABASE_URL]

Two orders wait for an approver. The "mail" the task callable sends is a list here; a
real one would e-mail a link or post to a chat. One order is approved, the other rejected,
and a second answer to the same token is refused.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from statefleet import (
    PersistentStateMachine,
    TaskContext,
    open_store,
    send_task_failure,
    send_task_success,
)

HERE = Path(__file__).resolve().parent
OUTBOX: list[dict[str, Any]] = []


def ask(payload: dict[str, Any], context: TaskContext) -> None:
    """Send the approver the token (its return value is ignored: the answer is the result)."""
    OUTBOX.append({"order": payload["order"], "amount": payload["amount"], "token": context.token})


async def main(url: str) -> None:
    store = await open_store(url)
    try:
        sm = await PersistentStateMachine.create(
            (HERE / "approval.yaml").read_text(),
            machine_id="approval",
            store=store,
            resources={"approvals:ask": ask},
        )
        small = await sm.execute({"order": "A-1", "amount": 40})
        large = await sm.execute({"order": "A-2", "amount": 9000})
        print(f"A-1 {small.status} at {small.current_state}")
        print(f"A-2 {large.status} at {large.current_state}")
        for wait in await store.list_waits():
            print(f"waiting: {wait.state} of {wait.execution_id[:8]}… for a {wait.kind} token")

        tokens = {mail["order"]: mail["token"] for mail in OUTBOX}
        ok = await send_task_success(tokens["A-1"], {"by": "ada"}, store=store, machine=sm)
        no = await send_task_failure(
            tokens["A-2"], "Rejected", "over the limit", store=store, machine=sm
        )
        again = await send_task_success(tokens["A-1"], {"by": "bob"}, store=store, machine=sm)
        print(f"approve A-1: {ok.outcome}")
        print(f"reject A-2: {no.outcome}")
        print(f"approve A-1 again: {again.outcome}")

        done = await sm.get(small.id)
        refused = await sm.get(large.id)
        print(f"A-1 {done.status} {done.output}")
        print(f"A-2 {refused.status} {refused.error}")
    finally:
        await store.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(f"sqlite+aiosqlite:///{tmp}/approval.db"))
