"""Security: loopback only without credentials, 401 without them, CSRF on every
state-changing request of a cookie session, read-only mode, and escaping."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from typing import Any

import pytest
from pydantic import SecretStr

from statefleet import BatchOptions
from statefleet.ui import create_app
from tests.ui.conftest import burst, enqueued, machines, settings_for

SCRIPT = "<script>alert(1)</script>"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def test_refuses_to_listen_off_loopback_without_credentials(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match=r"refusing to listen on 0\.0\.0\.0"):
        create_app(settings_for_url(tmp_path), host="0.0.0.0")
    create_app(settings_for_url(tmp_path), host="::1")  # loopback is fine
    create_app(
        settings_for_url(tmp_path, ui_api_tokens=SecretStr("t0k3n")), host="0.0.0.0"
    )  # credentials: fine
    done = subprocess.run(
        [sys.executable, "-m", "statefleet.cli", "ui", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "STATEFLEET_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
    )
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0" in done.stderr


def settings_for_url(tmp_path: Any, **extra: Any) -> Any:
    from statefleet import Settings

    return Settings(database_url=f"sqlite:///{tmp_path}/ui.db", **extra)


async def test_credentials_are_required_when_configured(pg: Any, make_ui: Any) -> None:
    settings = settings_for(
        pg,
        None,
        ui_api_tokens=SecretStr("alpha, beta"),
        ui_username="admin",
        ui_password=SecretStr("s3cret"),
    )
    await machines(pg, None)
    async with make_ui(pg, None, settings=settings, peer="10.20.30.40", host="0.0.0.0") as ui:
        for path in ("/", "/api/machines", "/executions", "/metrics", "/docs"):
            response = await ui.http.get(path)
            assert response.status_code == 401, path
        denied = await ui.http.get("/api/machines")
        assert "Basic" in denied.headers["www-authenticate"]
        assert "Bearer" in denied.headers["www-authenticate"]
        wrong = await ui.http.get("/api/machines", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        wrong = await ui.http.get("/", headers=basic("admin", "wrong"))
        assert wrong.status_code == 401
        ok = await ui.http.get("/api/machines", headers={"authorization": "Bearer beta"})
        assert ok.status_code == 200 and ok.json()[0]["id"] in {"orders", "flaky"}
        page = await ui.http.get("/", headers={**basic("admin", "s3cret"), "accept": "text/html"})
        assert page.status_code == 200
        assert (await ui.http.get("/health")).status_code == 200  # for load balancers
        assert (await ui.http.get("/static/app.css")).status_code == 200
        # a bearer token needs no CSRF token: it is not a browser's ambient credential
        started = await ui.http.post(
            "/api/machines/orders/executions",
            json={"input": {"n": 1, "lines": []}},
            headers={"authorization": "Bearer alpha"},
        )
        assert started.status_code == 201
        # basic auth is: a POST without the session's CSRF token is refused
        refused = await ui.http.post(
            f"/api/executions/{started.json()['id']}/cancel", headers=basic("admin", "s3cret")
        )
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["error"]


async def test_without_credentials_only_loopback_peers_are_served(pg: Any, make_ui: Any) -> None:
    async with make_ui(pg, None, peer="192.0.2.7") as ui:
        response = await ui.http.get("/api/machines")
        assert response.status_code == 401
        assert "loopback" in response.json()["error"]
        assert (await ui.http.get("/health")).status_code == 200
    async with make_ui(pg, None, peer="127.0.0.1") as ui:
        assert (await ui.http.get("/api/machines")).status_code == 200


async def test_state_changing_requests_need_the_csrf_token(
    pg: Any, queue: Any, make_ui: Any
) -> None:
    await machines(pg, queue)
    async with make_ui(pg, queue) as ui:
        no_session = await ui.http.post("/api/queues/default/pause")
        assert no_session.status_code == 403
        token = await ui.session()  # a cookie session and its token
        no_token = await ui.http.post("/api/queues/default/pause")
        assert no_token.status_code == 403
        wrong = await ui.http.post("/api/queues/default/pause", headers={"x-csrf-token": "0" * 64})
        assert wrong.status_code == 403
        ok = await ui.http.post("/api/queues/default/pause", headers={"x-csrf-token": token})
        assert ok.status_code == 200 and await queue.paused() == ["default"]
        # a page's form: the token in a field; answered with a redirect and a flash message
        form = await ui.http.post(
            "/api/queues/default/resume",
            data={"csrf": token, "next": "/queues/default"},
            headers={"accept": "text/html"},
        )
        assert form.status_code == 303 and form.headers["location"] == "/queues/default"
        assert "statefleet_flash" in form.headers["set-cookie"]
        assert await queue.paused() == []
        # an open redirect is not possible through "next"
        form = await ui.http.post(
            "/api/queues/default/resume",
            data={"csrf": token, "next": "//evil.example/"},
            headers={"accept": "text/html"},
        )
        assert form.headers["location"] == "/"
        # another session's token does not work
        ui.http.cookies.clear()
        other = await ui.http.post("/api/queues/default/pause", headers={"x-csrf-token": token})
        assert other.status_code == 403


async def test_read_only_hides_and_refuses_actions(filled: Any, make_ui: Any) -> None:
    async with make_ui(filled.store, filled.client, read_only=True) as ui:
        token = await ui.session()
        for path, body in (
            ("/api/queues/critical/pause", {}),
            ("/api/queues/critical/jobs/retry", {"state": "dead", "all": True}),
            ("/api/dead-letters/purge", {"all": True}),
            ("/api/machines/orders/executions", {"input": {}}),
        ):
            response = await ui.http.post(path, json=body, headers={"x-csrf-token": token})
            assert response.status_code == 403, path
            assert "read-only" in response.json()["error"]
        refused = await ui.http.delete("/api/queues/critical", headers={"x-csrf-token": token})
        assert refused.status_code == 403
        assert (await ui.get("/api/queues/critical"))["dead"] == 2  # nothing was done
        failed = (await ui.get("/api/executions?status=FAILED&machine=flaky"))["executions"][0]
        for path in (
            "/",
            "/queues/critical?state=dead",
            "/dead-letters",
            "/machines/orders",
            f"/executions/{failed['id']}",
            "/batches",
            "/workers",
        ):
            page = await ui.http.get(path, headers={"accept": "text/html"})
            assert page.status_code == 200, path
            assert "data-action" not in page.text, path
            assert 'method="post"' not in page.text or path in (
                "/dead-letters",
                "/queues/critical?state=dead",
            )
            assert "read-only" in page.text
    async with make_ui(filled.store, filled.client) as ui:
        page = await ui.http.get("/queues/critical?state=dead", headers={"accept": "text/html"})
        assert "data-action" in page.text  # the actions are there when not read-only


async def test_a_script_payload_renders_as_text(pg: Any, queue: Any, make_ui: Any) -> None:
    _, flaky = await machines(pg, queue)
    from tests.ui.conftest import BROKEN

    BROKEN.add(SCRIPT)
    batch = await flaky.execute_bulk(
        [{"key": SCRIPT, "note": SCRIPT}], BatchOptions(name=SCRIPT, max_tries=1)
    )
    await burst(pg, queue, expect=1)
    await batch.wait()
    async with make_ui(pg, queue) as ui:
        execution = (await ui.get("/api/executions?machine=flaky"))["executions"][0]
        assert SCRIPT in execution["name"] and execution["status"] == "FAILED"
        pages = [
            f"/executions/{execution['id']}",
            "/executions?machine=flaky",
            f"/batches/{batch.id}",
            "/batches",
            "/dead-letters",
            "/queues/default?state=dead",
            f"/queues/default?state=dead&search={SCRIPT}",
            "/",
        ]
        for path in pages:
            page = await ui.http.get(path, headers={"accept": "text/html"})
            assert page.status_code == 200, path
            assert "<script>alert" not in page.text, path
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path
            scripts = re.findall(r"<script[^>]*>", page.text)
            assert scripts == [
                '<script src="/static/theme.js">',
                '<script src="/static/app.js" defer>',
            ]
            assert "script-src 'self'" in page.headers["content-security-policy"]
        await enqueued(queue, 0)
