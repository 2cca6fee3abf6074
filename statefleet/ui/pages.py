"""The HTML pages: each one reads from the :class:`~statefleet.ui.fleet.Fleet` and renders
a template. Their forms post to the REST API (:mod:`statefleet.ui.api`), which redirects
back with a flash message; the page script refreshes the ``data-live`` regions in place."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from statefleet.statemachine.lifecycle import ExecutionStatus
from statefleet.ui.api import FLASH_COOKIE, openapi
from statefleet.ui.fleet import Fleet
from statefleet.ui.queueops import JOB_STATES

__all__ = ["error_page", "page_routes", "render"]

STATUSES = [s.value for s in ExecutionStatus]

NAV = (
    ("dashboard", "/", "Dashboard"),
    ("workers", "/workers", "Workers"),
    ("redis", "/redis", "Redis"),
    ("machines", "/machines", "Machines"),
    ("executions", "/executions", "Executions"),
    ("batches", "/batches", "Batches"),
    ("dead", "/dead-letters", "Dead letters"),
    ("docs", "/docs", "API"),
)


def fleet_of(request: Request) -> Fleet:
    fleet: Fleet = request.app.state.fleet
    return fleet


def templates_of(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def render(
    request: Request, template: str, *, nav: str = "", status: int = 200, **context: Any
) -> Response:
    flash = request.cookies.get(FLASH_COOKIE)
    query = dict(request.query_params)

    def qs(**changes: Any) -> str:
        merged = {**query, **{k: v for k, v in changes.items()}}
        clean = {k: v for k, v in merged.items() if v not in (None, "")}
        return "?" + urlencode(clean) if clean else "?"

    response = templates_of(request).TemplateResponse(
        request,
        template,
        {
            "nav": NAV,
            "active": nav,
            "csrf": getattr(request.state, "csrf_token", ""),
            "read_only": getattr(request.state, "read_only", False),
            "queue_enabled": fleet_of(request).queue_enabled,
            "flash": unquote(flash) if flash else None,
            "qs": qs,
            "query": query,
            "here": request.url.path + ("?" + request.url.query if request.url.query else ""),
            "statuses": STATUSES,
            **context,
        },
        status_code=status,
    )
    if flash:
        response.delete_cookie(FLASH_COOKIE)
    response.headers["Cache-Control"] = "no-store"
    return response


def _int(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name) or default)
    except ValueError:
        return default


# ============================================================================ queues


async def dashboard(request: Request) -> Response:
    fleet = fleet_of(request)
    days = 30 if _int(request, "days", 7) > 7 else 7
    overview = await fleet.overview(days=days)
    machines = await fleet.machines()
    totals: dict[str, int] = {s: 0 for s in STATUSES}
    for machine in machines:
        for status, count in machine["counts"].items():
            totals[status] = totals.get(status, 0) + count
    batches = await fleet.batches(limit=8)
    return render(
        request,
        "dashboard.html",
        nav="dashboard",
        overview=overview,
        machines=machines,
        execution_totals=totals,
        batches=batches,
        days=days,
    )


async def queue_page(request: Request) -> Response:
    fleet = fleet_of(request)
    name = request.path_params["name"]
    state = request.query_params.get("state") or "pending"
    if state not in JOB_STATES:
        state = "pending"
    data = await fleet.queue_jobs(
        name,
        state,
        page=_int(request, "page", 1),
        size=_int(request, "size", 20),
        search=request.query_params.get("search") or None,
    )
    names = await fleet.queue_names()
    return render(
        request, "queue.html", nav="dashboard", data=data, states=JOB_STATES, queue_names=names
    )


async def job_page(request: Request) -> Response:
    fleet = fleet_of(request)
    p = request.path_params
    data = await fleet.job(p["name"], p["job_id"])
    return render(request, "job.html", nav="dashboard", data=data, queue=p["name"])


async def workers_page(request: Request) -> Response:
    workers = await fleet_of(request).workers()
    return render(request, "workers.html", nav="workers", workers=workers)


async def redis_page(request: Request) -> Response:
    info = await fleet_of(request).redis_info()
    return render(request, "redis.html", nav="redis", info=info)


# ============================================================================ machines


async def machines_page(request: Request) -> Response:
    machines = await fleet_of(request).machines()
    return render(request, "machines.html", nav="machines", machines=machines)


async def machine_page(request: Request) -> Response:
    fleet = fleet_of(request)
    machine_id = request.path_params["machine_id"]
    version = request.query_params.get("version") or None
    batch_id = request.query_params.get("batch") or None
    info = await fleet.machine_info(machine_id, version=version)
    from urllib.parse import quote

    link = f"/executions?machine={quote(machine_id, safe='')}&state={{state}}"
    svg, _ = await fleet.graph(machine_id, version=version, batch_id=batch_id, link=link)
    recent = await fleet.executions({"machine": machine_id}, limit=10)
    return render(
        request,
        "machine.html",
        nav="machines",
        info=info,
        svg=svg,
        recent=recent["executions"],
        batch_id=batch_id,
    )


# ============================================================================ executions


async def executions_page(request: Request) -> Response:
    fleet = fleet_of(request)
    q = request.query_params
    data = await fleet.executions(
        q,
        before=q.get("before") or None,
        after=q.get("after") or None,
        limit=_int(request, "limit", 50),
    )
    machines = [m["id"] for m in await fleet.machines()]
    waiting = (
        await fleet.waiting(machine=q.get("machine") or None, limit=100)
        if q.get("status") == "WAITING"
        else None
    )
    return render(
        request,
        "executions.html",
        nav="executions",
        data=data,
        machines=machines,
        waiting=waiting,
    )


async def execution_page(request: Request) -> Response:
    fleet = fleet_of(request)
    data = await fleet.execution(request.path_params["execution_id"])
    record = await fleet.store.get_execution(data["id"])
    assert record is not None
    svg, _ = await fleet.graph(record.state_machine_id, execution=record)
    _gantt(data["history"])
    return render(request, "execution.html", nav="executions", e=data, svg=svg)


def _gantt(steps: list[dict[str, Any]]) -> None:
    """Each step's offset and width, in % of the span from the first start to the last end."""
    from datetime import datetime

    def moment(value: Any) -> float | None:
        return datetime.fromisoformat(value).timestamp() if value else None

    starts = [t for t in (moment(s["started_at"]) for s in steps) if t is not None]
    ends = [t for t in (moment(s["ended_at"]) for s in steps) if t is not None]
    if not starts:
        return
    first = min(starts)
    span = max(max(ends, default=first) - first, 1e-6)
    for step in steps:
        start = moment(step["started_at"])
        end = moment(step["ended_at"]) or start
        if start is None or end is None:
            step.update(offset_pct=0, width_pct=0, offset_seconds=None)
            continue
        step["offset_seconds"] = start - first
        step["offset_pct"] = round(100 * (start - first) / span, 2)
        step["width_pct"] = round(max(100 * (end - start) / span, 0.6), 2)


# ============================================================================ batches


async def batches_page(request: Request) -> Response:
    batches = await fleet_of(request).batches(
        machine_id=request.query_params.get("machine") or None
    )
    return render(request, "batches.html", nav="batches", batches=batches)


async def batch_page(request: Request) -> Response:
    fleet = fleet_of(request)
    data = await fleet.batch(request.path_params["batch_id"])
    svg, _ = await fleet.graph(data["state_machine_id"], batch_id=data["id"])
    return render(request, "batch.html", nav="batches", b=data, svg=svg)


# ============================================================================ dead letters


async def dead_letters_page(request: Request) -> Response:
    q = request.query_params
    data = await fleet_of(request).dead_letters(
        machine=q.get("machine"),
        batch=q.get("batch"),
        error=q.get("error"),
        queue=q.get("queue"),
        before=q.get("before"),
        limit=_int(request, "limit", 50),
    )
    return render(request, "dead_letters.html", nav="dead", data=data)


# ============================================================================ API docs


async def docs_page(request: Request) -> Response:
    spec = openapi()
    return render(request, "docs.html", nav="docs", spec=spec, spec_json=json.dumps(spec, indent=2))


async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi())


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "error.html", status=status, title=title, message=message)


def page_routes() -> list[Route]:
    return [
        Route("/", dashboard),
        Route("/queues/{name}", queue_page),
        Route("/queues/{name}/jobs/{job_id}", job_page),
        Route("/workers", workers_page),
        Route("/redis", redis_page),
        Route("/machines", machines_page),
        Route("/machines/{machine_id}", machine_page),
        Route("/executions", executions_page),
        Route("/executions/{execution_id}", execution_page),
        Route("/batches", batches_page),
        Route("/batches/{batch_id}", batch_page),
        Route("/dead-letters", dead_letters_page),
        Route("/docs", docs_page),
        Route("/openapi.json", openapi_json),
    ]
