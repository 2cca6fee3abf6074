"""``statefleet ui``: serve the web UI and REST API. ``statefleet.cli`` registers it with
:func:`register`. Starlette and uvicorn are imported only when the command runs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["register"]


def register(app: typer.Typer, cli: Any) -> None:
    """Add ``ui`` to the ``statefleet`` typer app (``cli``: the module defining it, whose
    ``_Env``/``_fail`` helpers the command shares)."""

    @app.command()
    def ui(
        host: Annotated[
            str,
            typer.Option("--host", help="Address to listen on (off loopback: credentials)."),
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", "-p", help="Port.")] = 8080,
        read_only: Annotated[
            bool, typer.Option("--read-only", help="Hide and refuse every action (403).")
        ] = False,
        app_ref: Annotated[
            str | None,
            typer.Option("--app", help="module:attr naming a statefleet.App (resources)."),
        ] = None,
        database_url: Annotated[
            str | None, typer.Option("--database-url", help="SQLAlchemy URL of the store.")
        ] = None,
        redis_url: Annotated[
            str | None, typer.Option("--redis-url", help="Redis URL (queue pages).")
        ] = None,
        log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    ) -> None:
        """Serve the monitoring UI and the REST API (OpenAPI at /docs)."""
        import uvicorn

        from statefleet.ui.app import create_app

        env = cli._Env.of(app_ref, database_url)
        updates: dict[str, Any] = {"database_url": env.database_url}
        if redis_url:
            updates["redis_url"] = redis_url
        settings = env.app.settings.model_copy(update=updates)
        env.app.settings = settings
        try:
            asgi = create_app(settings, app=env.app, read_only=read_only, host=host)
        except ValueError as exc:
            raise cli._fail(str(exc)) from None
        mode = "read-only" if read_only else "read-write"
        typer.echo(f"statefleet ui on http://{host}:{port}/ ({mode}); API docs at /docs", err=True)
        uvicorn.run(asgi, host=host, port=port, log_level=log_level.lower(), proxy_headers=False)
