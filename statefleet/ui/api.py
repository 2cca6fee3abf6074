"""The REST API: JSON over :class:`~statefleet.ui.fleet.Fleet`, described by OpenAPI.

Each endpoint is declared once with :func:`endpoint` (method, path, summary, parameters,
body); the routes and ``/openapi.json`` are both built from those declarations.

State-changing endpoints accept a JSON body or an HTML form (the pages post their forms
here): a form post from a page is answered with a redirect back to it (``next``) and a
flash message, any other request with JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from statefleet.ui.fleet import Fleet, UserError

__all__ = ["ENDPOINTS", "FLASH_COOKIE", "api_routes", "openapi", "read_body", "respond"]

FLASH_COOKIE = "statefleet_flash"

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Param:
    name: str
    where: str = "query"  # query | path
    type: str = "string"
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    handler: Handler
    tag: str
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    action: bool = False
    description: str = ""
    responses: dict[str, str] = field(default_factory=dict)


ENDPOINTS: list[Endpoint] = []


def endpoint(
    method: str,
    path: str,
    summary: str,
    *,
    tag: str,
    params: tuple[Param, ...] = (),
    body: dict[str, Any] | None = None,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        path_params = tuple(
            Param(part[1:-1].split(":")[0], "path", required=True)
            for part in path.split("/")
            if part.startswith("{")
        )
        ENDPOINTS.append(
            Endpoint(
                method=method,
                path=path,
                summary=summary,
                handler=handler,
                tag=tag,
                params=path_params + params,
                body=body,
                action=method != "GET",
                description=(handler.__doc__ or "").strip(),
            )
        )
        return handler

    return register


def fleet_of(request: Request) -> Fleet:
    fleet: Fleet = request.app.state.fleet
    return fleet


async def read_body(request: Request) -> dict[str, Any]:
    """A JSON object, or a form (fields given several times become lists; ``ids`` always
    is one)."""
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        out: dict[str, Any] = {}
        for key in set(form.keys()):
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            out[key] = values if key == "ids" or len(values) > 1 else (values[0] if values else "")
        out["_form"] = True
        return out
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise UserError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise UserError("the body must be a JSON object")
    return body


def _flash_text(data: Any) -> str:
    if isinstance(data, dict):
        if "message" in data:
            return str(data["message"])
        if "action" in data and "done" in data:
            skipped = data.get("skipped") or {}
            text = f"{data['action']}: {data['done']} done"
            if skipped:
                text += f", {len(skipped)} skipped ({next(iter(skipped.values()))})"
            return text
    return "done"


def respond(
    request: Request, data: Any, body: dict[str, Any] | None = None, status: int = 200
) -> Response:
    """JSON, or for a page's form post a redirect to its ``next`` with a flash message."""
    if body and body.get("_form") and "application/json" not in request.headers.get("accept", ""):
        target = str(body.get("next") or request.headers.get("referer") or "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(FLASH_COOKIE, quote(_flash_text(data)), max_age=30, samesite="strict")
        return response
    return JSONResponse(data, status)


def _int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name} must be an integer, not {value!r}") from None


def _ids(body: dict[str, Any]) -> list[str]:
    """``ids`` (a list), or ``only`` (one id: a row's own button in a page's form)."""
    only = body.get("only")
    if isinstance(only, str) and only:
        return [only]
    ids = body.get("ids") or []
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise UserError("ids must be a list of strings")
    return [i for i in ids if i]


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


# ============================================================================ queues

Q = "queues"
E = "executions"
M = "machines"
B = "batches"
D = "dead letters"
OPS = "operations"

STATE_PARAM = Param(
    "state",
    description="active | pending | scheduled | retry | dead | completed",
    required=True,
)
IDS_BODY = {
    "type": "object",
    "properties": {
        "ids": {"type": "array", "items": {"type": "string"}},
        "all": {"type": "boolean", "description": "every job of the state in the queue"},
        "state": {"type": "string"},
    },
}


@endpoint(
    "GET",
    "/api/overview",
    "Dashboard: every queue, daily counters, totals",
    tag=Q,
    params=(Param("days", type="integer", description="7 or 30"),),
)
async def overview(request: Request) -> Response:
    return JSONResponse(await fleet_of(request).overview(days=_int(request, "days", 7)))


@endpoint(
    "GET", "/api/queues", "Queues with their sizes by state, latency, today's counters", tag=Q
)
async def queues(request: Request) -> Response:
    return JSONResponse((await fleet_of(request).overview())["queues"])


@endpoint(
    "GET",
    "/api/queue-stats",
    "Processed and failed jobs per day",
    tag=Q,
    params=(Param("days", type="integer", description="7 or 30"),),
)
async def queue_stats(request: Request) -> Response:
    data = await fleet_of(request).overview(days=_int(request, "days", 7))
    return JSONResponse(data["daily"])


@endpoint("GET", "/api/queues/{name}", "One queue", tag=Q)
async def queue(request: Request) -> Response:
    return JSONResponse(await fleet_of(request).queue(request.path_params["name"]))


@endpoint("DELETE", "/api/queues/{name}", "Delete an empty queue (409 if it holds jobs)", tag=Q)
async def delete_queue(request: Request) -> Response:
    body = await read_body(request)
    return respond(request, await fleet_of(request).delete_queue(request.path_params["name"]), body)


@endpoint("POST", "/api/queues/{name}/delete", "Delete an empty queue (form-friendly)", tag=Q)
async def delete_queue_post(request: Request) -> Response:
    return await delete_queue(request)


@endpoint("POST", "/api/queues/{name}/pause", "Pause a queue: workers stop taking its jobs", tag=Q)
async def pause_queue(request: Request) -> Response:
    body = await read_body(request)
    data = await fleet_of(request).pause_queue(request.path_params["name"], paused=True)
    return respond(request, {**data, "message": f"queue {data['queue']} paused"}, body)


@endpoint("POST", "/api/queues/{name}/resume", "Resume a paused queue", tag=Q)
async def resume_queue(request: Request) -> Response:
    body = await read_body(request)
    data = await fleet_of(request).pause_queue(request.path_params["name"], paused=False)
    return respond(request, {**data, "message": f"queue {data['queue']} resumed"}, body)


@endpoint(
    "GET",
    "/api/queues/{name}/jobs",
    "Jobs of one state in a queue, paged or searched",
    tag=Q,
    params=(
        STATE_PARAM,
        Param("page", type="integer"),
        Param("size", type="integer", description="10-200, default 20"),
        Param("search", description="a job id or an execution id"),
    ),
)
async def queue_jobs(request: Request) -> Response:
    q = request.query_params
    data = await fleet_of(request).queue_jobs(
        request.path_params["name"],
        q.get("state", "pending"),
        page=_int(request, "page", 1),
        size=_int(request, "size", 20),
        search=q.get("search") or None,
    )
    return JSONResponse(data)


@endpoint("GET", "/api/queues/{name}/jobs/{job_id}", "One job, with its execution", tag=Q)
async def queue_job(request: Request) -> Response:
    p = request.path_params
    return JSONResponse(await fleet_of(request).job(p["name"], p["job_id"]))


def _job_action(action: str) -> Handler:
    async def handler(request: Request) -> Response:
        body = await read_body(request)
        state = str(body.get("state") or request.query_params.get("state") or "")
        data = await fleet_of(request).job_action(
            request.path_params["name"],
            action,
            state=state,
            ids=_ids(body),
            all_in_state=_flag(body, "all") and not body.get("only"),
        )
        return respond(request, data, body)

    handler.__doc__ = {
        "run": "Scheduled or retrying jobs run now.",
        "retry": "Dead jobs: redrive each execution from its failed state and enqueue it.",
        "delete": "Drop jobs (their executions are cancelled), dead letters or results.",
        "cancel": "Active jobs: abort their executions (workers stop at the next checkpoint).",
    }[action]
    return handler


for _action, _summary in (
    ("run", "Run jobs now (scheduled -> pending)"),
    ("retry", "Retry dead jobs (dead -> pending, redriving their executions)"),
    ("delete", "Delete jobs of a state"),
    ("cancel", "Cancel active jobs"),
):
    endpoint("POST", f"/api/queues/{{name}}/jobs/{_action}", _summary, tag=Q, body=IDS_BODY)(
        _job_action(_action)
    )


@endpoint("GET", "/api/workers", "Workers from the heartbeat registry (gone ones too)", tag=Q)
async def workers(request: Request) -> Response:
    return JSONResponse(await fleet_of(request).workers())


@endpoint("POST", "/api/workers/{worker_id}/pause", "Ask a worker to stop taking jobs", tag=Q)
async def pause_worker(request: Request) -> Response:
    body = await read_body(request)
    data = await fleet_of(request).pause_worker(request.path_params["worker_id"], paused=True)
    return respond(request, {**data, "message": f"worker {data['worker']} paused"}, body)


@endpoint("POST", "/api/workers/{worker_id}/resume", "Let a paused worker take jobs again", tag=Q)
async def resume_worker(request: Request) -> Response:
    body = await read_body(request)
    data = await fleet_of(request).pause_worker(request.path_params["worker_id"], paused=False)
    return respond(request, {**data, "message": f"worker {data['worker']} resumed"}, body)


@endpoint("GET", "/api/redis", "Redis: version, uptime, memory, clients, keyspace, raw INFO", tag=Q)
async def redis_info(request: Request) -> Response:
    return JSONResponse(await fleet_of(request).redis_info())


# ============================================================================ machines


@endpoint("GET", "/api/machines", "State machines with their executions by status", tag=M)
async def machines(request: Request) -> Response:
    return JSONResponse(await fleet_of(request).machines())


@endpoint(
    "GET",
    "/api/machines/{machine_id}",
    "A machine: definition, counts, counts per state",
    tag=M,
    params=(Param("version"),),
)
async def machine(request: Request) -> Response:
    data = await fleet_of(request).machine_info(
        request.path_params["machine_id"], version=request.query_params.get("version") or None
    )
    return JSONResponse(data)


@endpoint(
    "GET",
    "/api/machines/{machine_id}/graph",
    "A machine's graph (layout, live counts)",
    tag=M,
    params=(Param("batch", description="counts of this batch only"),),
)
async def machine_graph(request: Request) -> Response:
    _, data = await fleet_of(request).graph(
        request.path_params["machine_id"], batch_id=request.query_params.get("batch") or None
    )
    return JSONResponse(data)


@endpoint(
    "GET",
    "/api/machines/{machine_id}/graph.svg",
    "A machine's graph as SVG",
    tag=M,
    params=(Param("batch"),),
)
async def machine_graph_svg(request: Request) -> Response:
    svg, _ = await fleet_of(request).graph(
        request.path_params["machine_id"], batch_id=request.query_params.get("batch") or None
    )
    return Response(svg, media_type="image/svg+xml")


@endpoint(
    "POST",
    "/api/machines/{machine_id}/executions",
    "Start an execution",
    tag=M,
    body={
        "type": "object",
        "properties": {
            "input": {"description": "the execution's input (any JSON); a form sends it as text"},
            "name": {"type": "string"},
            "queue": {"type": "string", "description": "distributed mode: the queue (default)"},
        },
    },
)
async def start_execution(request: Request) -> Response:
    """Creates the execution and starts it: enqueued in distributed mode, else run in the
    UI's process. Returns at once (201) with its record."""
    body = await read_body(request)
    value = body.get("input")
    if body.get("_form"):
        text = str(value or "").strip()
        try:
            value = json.loads(text) if text else {}
        except ValueError as exc:
            raise UserError(f"input is not valid JSON: {exc}") from None
    record = await fleet_of(request).start_execution(
        request.path_params["machine_id"],
        value,
        name=str(body.get("name") or "") or None,
        queue=str(body.get("queue") or "") or None,
    )
    if body.get("_form"):
        body["next"] = f"/executions/{quote(record['id'])}"
        return respond(request, {"message": f"execution {record['name']} started"}, body)
    return JSONResponse(record, 201)


@endpoint(
    "POST",
    "/api/machines/{machine_id}/batches",
    "Start a bulk or a chained batch",
    tag=M,
    body={
        "type": "object",
        "properties": {
            "inputs": {"type": "array", "description": "bulk: one execution per input"},
            "source": {
                "type": "object",
                "description": "chained: an execution filter (state_machine_id, status, "
                "batch_id, name_prefix, ...) selecting the sources",
            },
            "source_state": {"type": "string"},
            "transformer": {"type": "string"},
            "unique": {"type": "boolean"},
            "options": {"type": "object", "description": "BatchOptions fields"},
        },
    },
)
async def start_batch(request: Request) -> Response:
    body = await read_body(request)
    if body.get("_form"):
        for key in ("inputs", "source", "options"):
            if isinstance(body.get(key), str):
                text = body[key].strip()
                if not text:
                    body.pop(key)
                    continue
                try:
                    body[key] = json.loads(text)
                except ValueError as exc:
                    raise UserError(f"{key} is not valid JSON: {exc}") from None
    data = await fleet_of(request).start_batch(request.path_params["machine_id"], body)
    if body.get("_form"):
        body["next"] = f"/batches/{quote(data['id'])}"
        return respond(request, {"message": f"batch {data['name']} started"}, body)
    return JSONResponse(data, 201)


# ============================================================================ executions

FILTER_PARAMS = (
    Param("machine", description="state machine id"),
    Param("status", description="one or several, comma-separated"),
    Param("batch", description="batch id"),
    Param("name", description="name prefix"),
    Param("state", description="current state"),
    Param("from", description="started at or after (ISO-8601)"),
    Param("to", description="started before (ISO-8601)"),
)


@endpoint(
    "GET",
    "/api/executions",
    "Executions, newest first, filtered and paged",
    tag=E,
    params=(
        *FILTER_PARAMS,
        Param("before", description="page: executions older than this id"),
        Param("after", description="page: executions newer than this id"),
        Param("limit", type="integer", description="1-500, default 50"),
    ),
)
async def executions(request: Request) -> Response:
    q = request.query_params
    data = await fleet_of(request).executions(
        q,
        before=q.get("before") or None,
        after=q.get("after") or None,
        limit=_int(request, "limit", 50),
    )
    return JSONResponse(data)


@endpoint("GET", "/api/executions/{execution_id}", "An execution with its history and links", tag=E)
async def execution(request: Request) -> Response:
    return JSONResponse(await fleet_of(request).execution(request.path_params["execution_id"]))


@endpoint("GET", "/api/executions/{execution_id}/graph.svg", "The graph with the path taken", tag=E)
async def execution_graph(request: Request) -> Response:
    fleet = fleet_of(request)
    record = await fleet.store.get_execution(request.path_params["execution_id"])
    if record is None:
        raise UserError("no such execution", 404)
    svg, _ = await fleet.graph(record.state_machine_id, execution=record)
    return Response(svg, media_type="image/svg+xml")


@endpoint("POST", "/api/executions/{execution_id}/redrive", "Redrive a failed execution", tag=E)
async def redrive(request: Request) -> Response:
    body = await read_body(request)
    data = await fleet_of(request).redrive(request.path_params["execution_id"])
    return respond(request, {**data, "message": f"execution {data['name']} redriven"}, body)


@endpoint("POST", "/api/executions/{execution_id}/cancel", "Cancel an execution", tag=E)
async def cancel(request: Request) -> Response:
    body = await read_body(request)
    data = await fleet_of(request).cancel(request.path_params["execution_id"])
    return respond(request, {**data, "message": f"execution {data['name']} cancelled"}, body)


def _callback(kind: str) -> Handler:
    async def handler(request: Request) -> Response:
        body = await read_body(request)
        data, status = await fleet_of(request).send_callback(kind, body)
        return respond(request, data, body, status)

    handler.__name__ = f"callback_{kind}"
    handler.__doc__ = {
        "success": "Complete a .waitForTaskToken task with `output` as its result; its "
        "execution resumes (on the queue, or in the UI's process with the App's resources). "
        "409 if the token was already answered, 404 if no task waits for it.",
        "failure": "Fail a .waitForTaskToken task with `error` (default States.TaskFailed) "
        "and `cause`: its Retry and Catch apply. 409 already answered, 404 unknown token.",
        "heartbeat": "Restart a waiting task's HeartbeatSeconds. 404 if it does not wait.",
    }[kind]
    return handler


for _kind in ("success", "failure", "heartbeat"):
    endpoint(
        "POST",
        f"/api/callbacks/{_kind}",
        f"Task callback: {_kind}",
        tag=E,
        body={
            "type": "object",
            "properties": {
                "task_token": {"type": "string"},
                "output": {},
                "error": {"type": "string"},
                "cause": {"type": "string"},
            },
            "required": ["task_token"],
        },
    )(_callback(_kind))


@endpoint(
    "POST",
    "/api/callbacks/message",
    "Send a message to waiting Message states",
    tag=E,
    body={
        "type": "object",
        "properties": {
            "correlation_key": {"type": "string"},
            "correlation_value": {},
            "payload": {},
            "keep_for": {"type": "number", "description": "seconds to keep it if none waits"},
        },
        "required": ["correlation_key"],
    },
)
async def callback_message(request: Request) -> Response:
    """Every Message state waiting for the key and value takes `payload` as its result.
    404 if none waits (unless `keep_for` keeps the message for a late waiter)."""
    body = await read_body(request)
    data, status = await fleet_of(request).send_message(body)
    return respond(request, data, body, status)


@endpoint(
    "GET",
    "/api/callbacks/waiting",
    "Executions waiting for a task token or a message",
    tag=E,
    params=(
        Param("machine", description="state machine id"),
        Param("kind", description="task | message"),
        Param("limit", type="integer", description="1-500, default 100"),
    ),
)
async def callbacks_waiting(request: Request) -> Response:
    q = request.query_params
    data = await fleet_of(request).waiting(
        machine=q.get("machine") or None,
        kind=q.get("kind") or None,
        limit=_int(request, "limit", 100),
    )
    return JSONResponse({"waiting": data})


# ============================================================================ batches


@endpoint(
    "GET",
    "/api/batches",
    "Batches, newest first, with progress",
    tag=B,
    params=(Param("machine"), Param("limit", type="integer")),
)
async def batches(request: Request) -> Response:
    data = await fleet_of(request).batches(
        machine_id=request.query_params.get("machine") or None, limit=_int(request, "limit", 100)
    )
    return JSONResponse(data)


@endpoint("GET", "/api/batches/{batch_id}", "A batch: progress, throughput, ETA, errors", tag=B)
async def batch(request: Request) -> Response:
    return JSONResponse(await fleet_of(request).batch(request.path_params["batch_id"]))


@endpoint("POST", "/api/batches/{batch_id}/cancel", "Cancel a running batch", tag=B)
async def cancel_batch(request: Request) -> Response:
    body = await read_body(request)
    data = await fleet_of(request).cancel_batch(request.path_params["batch_id"])
    return respond(request, {**data, "message": f"batch {data['name']} cancelled"}, body)


@endpoint("POST", "/api/batches/{batch_id}/resume", "Resume a chained batch", tag=B)
async def resume_batch(request: Request) -> Response:
    body = await read_body(request)
    data = await fleet_of(request).resume_batch(request.path_params["batch_id"])
    return respond(request, {**data, "message": f"batch {data['name']} resumed"}, body)


# ============================================================================ dead letters

DEAD_FILTERS = (
    Param("machine"),
    Param("batch"),
    Param("error"),
    Param("queue"),
)
DEAD_BODY = {
    "type": "object",
    "properties": {
        "ids": {"type": "array", "items": {"type": "string"}},
        "machine": {"type": "string"},
        "batch": {"type": "string"},
        "error": {"type": "string"},
        "all": {"type": "boolean", "description": "with no id and no filter: every one"},
    },
}


@endpoint(
    "GET",
    "/api/dead-letters",
    "Dead letters, newest first",
    tag=D,
    params=(*DEAD_FILTERS, Param("before"), Param("limit", type="integer")),
)
async def dead_letters(request: Request) -> Response:
    q = request.query_params
    data = await fleet_of(request).dead_letters(
        machine=q.get("machine"),
        batch=q.get("batch"),
        error=q.get("error"),
        queue=q.get("queue"),
        before=q.get("before"),
        limit=_int(request, "limit", 50),
    )
    return JSONResponse(data)


def _dead_action(action: str) -> Handler:
    async def handler(request: Request) -> Response:
        body = await read_body(request)
        whole = (_flag(body, "all") or _flag(body, "by_filter")) and not body.get("only")
        data = await fleet_of(request).dead_letter_action(
            action,
            ids=[] if whole else _ids(body),
            machine=body.get("machine") or None,
            batch=body.get("batch") or None,
            error=body.get("error") or None,
            everything=_flag(body, "all"),
        )
        return respond(request, data, body)

    return handler


endpoint(
    "POST",
    "/api/dead-letters/retry",
    "Retry dead letters (by ids or filter)",
    tag=D,
    body=DEAD_BODY,
)(_dead_action("retry"))
endpoint(
    "POST",
    "/api/dead-letters/purge",
    "Purge dead letters (by ids or filter)",
    tag=D,
    body=DEAD_BODY,
)(_dead_action("purge"))


# ============================================================================ OpenAPI


def openapi(*, title: str = "statefleet", version: str = "0.1.0") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for e in ENDPOINTS:
        operation: dict[str, Any] = {
            "summary": e.summary,
            "tags": [e.tag],
            "operationId": f"{e.method.lower()}_{e.handler.__name__}_{len(paths)}",
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "400": {"description": "a request that cannot be done as asked"},
                "401": {"description": "credentials missing or wrong"},
                "404": {"description": "no such thing"},
            },
        }
        if e.description:
            operation["description"] = e.description
        if e.params:
            operation["parameters"] = [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required or p.where == "path",
                    "description": p.description,
                    "schema": {"type": p.type},
                }
                for p in e.params
            ]
        if e.body is not None:
            operation["requestBody"] = {
                "content": {
                    "application/json": {"schema": e.body},
                    "application/x-www-form-urlencoded": {"schema": e.body},
                }
            }
        if e.action:
            operation["responses"]["403"] = {
                "description": "read-only mode, or a missing CSRF token (cookie sessions)"
            }
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    paths["/health"] = {
        "get": {
            "summary": "Health: database, Redis, live workers, queue depths (503 if failing)",
            "tags": [OPS],
            "responses": {"200": {"description": "healthy"}, "503": {"description": "not"}},
        }
    }
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics (text exposition format)",
            "tags": [OPS],
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{title} REST API",
            "version": version,
            "description": "Queues, workers, machines, executions, batches and dead letters. "
            "Authenticate with `Authorization: Bearer <token>` (no CSRF token needed) or basic "
            "auth plus the `X-CSRF-Token` of the session.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            }
        },
        "security": [{"bearer": []}, {"basic": []}],
        "paths": paths,
    }


def api_routes() -> list[Route]:
    return [Route(e.path, e.handler, methods=[e.method]) for e in ENDPOINTS]
