"""The hello machine from Python: in memory, no store, no services.

python -m examples.hello.hello
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from statefleet import RunResult, StateMachine

DEFINITION = Path(__file__).with_name("hello.yaml")


async def greet(name: str, visits: int) -> RunResult:
    """Run the hello machine once and return how it ended."""
    machine = StateMachine.from_definition(DEFINITION.read_text(encoding="utf-8"))
    return await machine.run({"name": name, "visits": visits})


if __name__ == "__main__":
    result = asyncio.run(greet("Ada", 3))
    print(result.status, result.output)
