"""The App the callback CLI tests hand to ``--app tests.callbacks.cli_app:app``."""

from __future__ import annotations

from typing import Any

from statefleet import App


def ask(payload: dict[str, Any]) -> None:
    """Hands the token on (the tests read it from the store)."""


app = App(resources={"lambda:invoke": ask})
