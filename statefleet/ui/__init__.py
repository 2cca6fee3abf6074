"""The web UI and REST API: ``create_app(settings) -> ASGI app`` (``statefleet ui``).

A thin layer over one object, :class:`~statefleet.ui.fleet.Fleet`, which reads the store
and the queue inspector and does the actions; the pages render what it returns and the
API returns it as JSON.
"""

from statefleet.ui.app import create_app

__all__ = ["create_app"]
