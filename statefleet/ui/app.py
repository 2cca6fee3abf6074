"""``create_app(settings) -> ASGI app``: the web UI and the REST API of one fleet.

::

    from statefleet.ui import create_app
    app = create_app(Settings())                 # uvicorn module:app, or `statefleet ui`

The app opens the store (``settings.database_url``) and, when Redis is configured, a queue
client on startup, and closes them on shutdown — unless they were handed in (``store=``,
``redis=``), in which case the caller owns them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from statefleet.app import App
from statefleet.errors import (
    ChainingError,
    DefinitionError,
    InfrastructureError,
    NotFoundError,
    ResourceNotFoundError,
    StaleExecutionError,
    StatefleetError,
)
from statefleet.queue.client import QueueClient
from statefleet.settings import Settings
from statefleet.statemachine.lifecycle import IllegalTransition
from statefleet.statemachine.protocols import Store
from statefleet.ui import render as helpers
from statefleet.ui.api import api_routes
from statefleet.ui.fleet import Fleet, UserError
from statefleet.ui.metrics import CONTENT_TYPE, render_metrics
from statefleet.ui.pages import error_page, page_routes
from statefleet.ui.security import Guard, GuardMiddleware, check_bind

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def _package_dir(name: str) -> str:
    return str(resources.files("statefleet.ui").joinpath(name))


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(_package_dir("templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = helpers.highlight_json
    env.filters["asl"] = helpers.ordered_definition
    env.filters["time"] = helpers.time_tag
    env.filters["ago"] = lambda value: helpers.time_tag(value, relative=True)
    env.filters["duration"] = helpers.duration
    env.filters["number"] = helpers.number
    env.filters["bytes"] = helpers.bytes_text
    env.globals["bar_chart"] = helpers.bar_chart
    env.globals["size_chart"] = helpers.size_chart
    return Jinja2Templates(env=env)


def _status_of(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, UserError):
        return exc.status, "Cannot do that" if exc.status < 500 else "Unavailable"
    if isinstance(exc, NotFoundError):
        return 404, "Not found"
    if isinstance(exc, InfrastructureError):
        return 503, "A service is unavailable"
    if isinstance(exc, DefinitionError):
        return 400, "Invalid definition"
    if isinstance(
        exc, ResourceNotFoundError | ChainingError | StaleExecutionError | IllegalTransition
    ):
        return 409, "Conflict"
    if isinstance(exc, ValueError):
        return 400, "Bad request"
    return 500, "Error"


def _wants_html(request: Request) -> bool:
    return (
        not request.url.path.startswith("/api/")
        and "text/html" in request.headers.get("accept", "")
        and request.method == "GET"
    )


async def _handle(request: Request, exc: Exception) -> Response:
    status, title = _status_of(exc)
    message = str(exc) or type(exc).__name__
    if status >= 500 and not isinstance(exc, UserError | InfrastructureError):
        logger.exception("UI request %s %s failed", request.method, request.url.path)
        message = f"{type(exc).__name__}: {exc}"
    if _wants_html(request):
        return error_page(request, status, title, message)
    return JSONResponse({"error": message, "status": status}, status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _wants_html(request):
        return error_page(
            request,
            exc.status_code,
            "Not found" if exc.status_code == 404 else "Error",
            str(exc.detail),
        )
    return JSONResponse({"error": exc.detail, "status": exc.status_code}, exc.status_code)


def create_app(
    settings: Settings | None = None,
    *,
    app: App | None = None,
    store: Store | None = None,
    redis: QueueClient | str | None = None,
    read_only: bool = False,
    host: str = "127.0.0.1",
) -> Starlette:
    """The UI and API (an ASGI app). ``app`` brings resources and transformers (to run
    executions in this process when there is no queue); ``store``/``redis`` (a
    :class:`QueueClient` or a URL) override the settings'. ``host`` is the address it will
    be served on: off loopback, credentials are required (``ValueError`` without)."""
    settings = settings or (app.settings if app is not None else Settings())
    guard = Guard.from_settings(settings, read_only=read_only)
    check_bind(host, guard)
    user_app = app or App(settings=settings)

    @contextlib.asynccontextmanager
    async def lifespan(starlette: Starlette) -> AsyncIterator[None]:
        from statefleet.store import open_store

        own_store = store is None
        opened_store: Any = (
            store
            if store is not None
            else await open_store(settings.database_url, **settings.store_options())
        )
        client: QueueClient | None
        own_client = not isinstance(redis, QueueClient)
        if isinstance(redis, QueueClient):
            client = redis
        else:
            url = redis or settings.resolved_redis_url()
            client = (
                QueueClient.from_settings(settings.model_copy(update={"redis_url": url}))
                if url
                else None
            )
        fleet = Fleet(opened_store, app=user_app, client=client)
        starlette.state.fleet = fleet
        try:
            yield
        finally:
            await fleet.close()
            if own_client and client is not None:
                await client.close()
            if own_store:
                await opened_store.close()

    async def health(request: Request) -> Response:
        data = await request.app.state.fleet.health()
        return JSONResponse(data, 200 if data["status"] == "ok" else 503)

    async def metrics(request: Request) -> Response:
        text = await render_metrics(request.app.state.fleet)
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    routes: list[Route | Mount] = [
        Route("/health", health),
        Route("/metrics", metrics),
        *api_routes(),
        *page_routes(),
        Mount("/static", StaticFiles(directory=_package_dir("static")), name="static"),
    ]
    starlette = Starlette(
        routes=routes,
        middleware=[Middleware(GuardMiddleware, guard=guard)],
        exception_handlers={
            HTTPException: _http_error,
            StatefleetError: _handle,
            ValueError: _handle,
            Exception: _handle,
        },
        lifespan=lifespan,
    )
    starlette.state.templates = _templates()
    starlette.state.settings = settings
    starlette.state.guard = guard
    return starlette
