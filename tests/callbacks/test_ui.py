"""The REST API and pages for callbacks: waiting executions listed with what they wait for,
a token answered from the execution page (CSRF-protected, refused when read-only), messages
sent through the API. Local mode: the UI's process resumes executions with the App's
resources."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from statefleet import App, PersistentStateMachine, Settings
from statefleet.store import SQLStore
from statefleet.ui.app import create_app
from tests.callbacks.machines import APPROVAL, Inbox, payment


@asynccontextmanager
async def ui_on(
    store: SQLStore, resources: dict[str, Callable[..., Any]], *, read_only: bool = False
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The UI (local mode) and an httpx client on it, with the session's CSRF token."""
    settings = Settings(database_url=str(store.url), redis_url=None)
    app = create_app(
        settings, store=store, app=App(resources=resources, settings=settings), read_only=read_only
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 51234))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
    ):
        page = await http.get("/", headers={"accept": "text/html"})
        found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page.text)
        assert found is not None
        yield http, found.group(1)


async def test_waiting_listed_and_token_answered_from_the_page(store: SQLStore) -> None:
    inbox = Inbox()
    resources = {"lambda:invoke": inbox}
    sm = await PersistentStateMachine.create(
        APPROVAL, machine_id="approvals", store=store, resources=resources
    )
    parked = await sm.execute({"order": 1})
    token = inbox.tokens[0]
    async with ui_on(store, resources) as (http, csrf):
        listed = (await http.get("/api/callbacks/waiting")).json()["waiting"]
        assert [(w["execution_id"], w["waits_for"], w["token"]) for w in listed] == [
            (parked.id, "task token", token)
        ]
        page = await http.get("/executions?status=WAITING", headers={"accept": "text/html"})
        assert "Waiting for a callback" in page.text and parked.id in page.text
        detail = await http.get(f"/executions/{parked.id}", headers={"accept": "text/html"})
        assert 'id="answer-success"' in detail.text and token in detail.text

        answered = await http.post(
            "/api/callbacks/success",
            data={
                "csrf": csrf,
                "next": f"/executions/{parked.id}",
                "task_token": token,
                "output": '{"by": "ui"}',
            },
        )
        assert answered.status_code == 303
        assert answered.headers["location"] == f"/executions/{parked.id}"
        record = await sm.get(parked.id)
        assert record.status == "SUCCEEDED"
        assert record.output["approval"] == {"by": "ui"}
        after = await http.get(f"/executions/{parked.id}", headers={"accept": "text/html"})
        assert 'id="answer-success"' not in after.text

        again = await http.post(
            "/api/callbacks/failure",
            json={"task_token": token, "error": "Rejected"},
            headers={"x-csrf-token": csrf},
        )
        assert again.status_code == 409
        assert again.json()["outcome"] == "already_answered"
        unknown = await http.post(
            "/api/callbacks/success", json={"task_token": "nope"}, headers={"x-csrf-token": csrf}
        )
        assert unknown.status_code == 404
        missing = await http.post(
            "/api/callbacks/heartbeat", json={}, headers={"x-csrf-token": csrf}
        )
        assert missing.status_code == 400
        no_csrf = await http.post("/api/callbacks/success", json={"task_token": token})
        assert no_csrf.status_code == 403


async def test_message_through_the_api(store: SQLStore) -> None:
    sm = await PersistentStateMachine.create(payment(), machine_id="pay", store=store)
    parked = await sm.execute({"order": "A-1"})
    async with ui_on(store, {}) as (http, csrf):
        [wait] = (await http.get("/api/callbacks/waiting?kind=message")).json()["waiting"]
        assert wait["waits_for"] == 'message payment="A-1"'
        assert (await http.get("/api/callbacks/waiting?kind=task")).json()["waiting"] == []
        sent = await http.post(
            "/api/callbacks/message",
            json={"correlation_key": "payment", "correlation_value": "A-1", "payload": {"x": 1}},
            headers={"x-csrf-token": csrf},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["outcome"] == "resumed"
        nobody = await http.post(
            "/api/callbacks/message",
            json={"correlation_key": "payment", "correlation_value": "A-1"},
            headers={"x-csrf-token": csrf},
        )
        assert nobody.status_code == 404
        assert nobody.json()["outcome"] == "no_waiter"
    assert (await sm.get(parked.id)).output["payment"] == {"x": 1}


async def test_read_only_hides_and_refuses_answers(store: SQLStore) -> None:
    inbox = Inbox()
    resources = {"lambda:invoke": inbox}
    sm = await PersistentStateMachine.create(
        APPROVAL, machine_id="approvals", store=store, resources=resources
    )
    parked = await sm.execute({"order": 2})
    async with ui_on(store, resources, read_only=True) as (http, csrf):
        detail = await http.get(f"/executions/{parked.id}", headers={"accept": "text/html"})
        assert "Waiting at Ask for task token" in detail.text
        assert 'id="answer-success"' not in detail.text
        refused = await http.post(
            "/api/callbacks/success",
            json={"task_token": inbox.tokens[0]},
            headers={"x-csrf-token": csrf},
        )
        assert refused.status_code == 403
    assert (await sm.get(parked.id)).status == "WAITING"


async def test_message_state_graph_shows_its_timeout_path(store: SQLStore) -> None:
    sm = await PersistentStateMachine.create(payment(), machine_id="pay", store=store)
    parked = await sm.execute({"order": 3})
    async with ui_on(store, {}) as (http, _):
        svg = await http.get(f"/api/executions/{parked.id}/graph.svg")
        assert svg.status_code == 200
        assert "AwaitPayment" in svg.text and "Late" in svg.text and "timeout" in svg.text
        page = await http.get(f"/executions/{parked.id}", headers={"accept": "text/html"})
        assert 'id="answer-message"' in page.text
        assert "Waiting at AwaitPayment for message payment=3" in page.text
