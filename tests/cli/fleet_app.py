"""The App the CLI tests hand to ``--app tests.cli.fleet_app:app``."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from statefleet import App, TaskError

#: Set in the environment of a process to make ``fleet:check`` fail (for redrive tests).
BROKEN = "STATEFLEET_TEST_FLEET_BROKEN"


def double(payload: dict[str, Any]) -> dict[str, Any]:
    return {"n": payload["n"], "doubled": payload["n"] * 2}


def check(payload: dict[str, Any]) -> bool:
    if payload["n"] < 0 or os.environ.get(BROKEN):
        raise TaskError("CheckFailed", f"n={payload['n']} is not allowed")
    return True


async def slow(payload: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(float(payload.get("sleep", 0.05)))
    return payload


def plus_hundred(output: dict[str, Any]) -> dict[str, Any]:
    return {"n": output["n"] + 100}


app = App(
    resources={"fleet:double": double, "fleet:check": check, "fleet:slow": slow},
    transformers={"plus-hundred": plus_hundred},
)
