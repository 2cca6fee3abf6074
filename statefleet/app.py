"""``App``: the one object a user's code hands to every CLI command (``--app module:attr``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from statefleet.settings import Settings

__all__ = ["App"]


class App:
    """The user's resources (task callables), input transformers and settings."""

    def __init__(
        self,
        *,
        resources: Mapping[str, Callable[..., Any]] | None = None,
        transformers: Mapping[str, Callable[..., Any]] | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.resources: dict[str, Callable[..., Any]] = dict(resources or {})
        self.transformers: dict[str, Callable[..., Any]] = dict(transformers or {})
        self.settings = settings or Settings()

    def resource(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register a task callable under ``name``."""

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self.resources[name] = function
            return function

        return register

    def transformer(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register an input transformer under ``name``."""

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self.transformers[name] = function
            return function

        return register
