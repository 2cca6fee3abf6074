"""Pass: passes its input (or a fixed ``Result``) to its output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statefleet.statemachine.runtime import StateEnv
from statefleet.statemachine.states.base import State

_NO_RESULT: Any = object()


class PassState(State):
    type_name = "Pass"

    def __init__(self, name: str, spec: Mapping[str, Any], pointer: str, language: str) -> None:
        super().__init__(name, spec, pointer, language)
        self.result = spec["Result"] if "Result" in spec and not self.jsonata else _NO_RESULT

    async def execute(self, env: StateEnv, data: Any) -> Any:
        if self.result is not _NO_RESULT:
            return self.result
        return data
