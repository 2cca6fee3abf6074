"""End to end in headless Chromium (Debian's ``/usr/bin/chromium``, never a downloaded
browser): the dashboard, a queue, retrying a dead job until it leaves the tab, live updates
without reloads, and an execution's graph with its path highlighted. Screenshots are saved
under the test's tmp dir and copied to ``/tmp/statefleet-ui-shots/``."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from statefleet import App
from statefleet.ui import create_app
from tests.ui.conftest import BROKEN, RESOURCES, Fleet, burst, free_port, settings_for

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("/tmp/statefleet-ui-shots")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is missing (`make services-deps` installs Debian's chromium)",
)


class Server:
    """The app under uvicorn on a free loopback port, in the test's event loop."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Server:
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(200):
            if self.server.started:
                return self
            await asyncio.sleep(0.02)
        raise RuntimeError("uvicorn did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


class Shots:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        SHOTS.mkdir(parents=True, exist_ok=True)

    async def take(self, page: Any, name: str, *, full: bool = True) -> Path:
        path = self.root / f"{name}.png"
        await page.screenshot(path=str(path), full_page=full)
        shutil.copy(path, SHOTS / path.name)
        return path


async def open_page(browser: Any, *, dark: bool = False) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(
        viewport={"width": 1400, "height": 900}, color_scheme="dark" if dark else "light"
    )
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )

    async def dialog(d: Any) -> None:
        if d.type != "confirm":
            problems.append(f"dialog {d.type}: {d.message}")
        await d.accept()

    page.on("dialog", dialog)
    return context, page, problems


async def test_dashboard_queue_retry_and_graph(filled: Fleet, browser: Any, tmp_path: Path) -> None:
    shots = Shots(tmp_path / "shots")
    settings = settings_for(filled.store, None)
    app = create_app(
        settings, store=filled.store, redis=filled.client, app=App(resources=RESOURCES)
    )
    async with Server(app) as server:
        context, page, problems = await open_page(browser)
        await page.goto(server.url + "/")
        await page.evaluate("localStorage.setItem('statefleet.interval', '2000')")
        await page.reload()
        row = page.locator('tr[data-queue="critical"]')
        await row.wait_for()
        assert "2" in await row.locator("td").nth(7).inner_text()  # dead
        await shots.take(page, "01-dashboard")

        # drill into the queue, then its Dead tab
        await row.get_by_role("link", name="critical").click()
        await page.wait_for_url("**/queues/critical")
        await page.locator('a[data-tab="dead"]').click()
        await page.wait_for_url("**/queues/critical?state=dead")
        jobs = page.locator("tr[data-job]")
        assert await jobs.count() == 2
        assert "2" in await page.locator('a[data-tab="dead"] .count').inner_text()
        await shots.take(page, "02-queue-dead")

        # retry one: it leaves the tab without a reload, and its execution succeeds
        await page.evaluate("window.notReloaded = true")
        BROKEN.clear()
        first = jobs.first
        job_id = await first.get_attribute("data-job")
        await first.get_by_role("button", name="Retry").click()
        await page.locator(".toast").filter(has_text="retry: 1 done").wait_for()
        await page.locator(f'tr[data-job="{job_id}"]').wait_for(state="detached")
        assert await page.locator("tr[data-job]").count() == 1
        assert "1" in await page.locator('a[data-tab="dead"] .count').inner_text()
        assert await page.evaluate("window.notReloaded") is True
        await shots.take(page, "03-queue-after-retry")
        await burst(filled.store, filled.client)
        assert job_id is not None
        execution_id = job_id.split(":", 1)[1]
        record = await filled.store.get_execution(execution_id)
        assert record is not None and record.status == "SUCCEEDED"

        # live: the other dead job, retried by someone else, leaves the tab by itself
        other = await page.locator("tr[data-job]").first.get_attribute("data-job")
        from statefleet.queue.deadletters import DeadLetters

        letters = [d for d in await filled.store.list_dead_letters() if d.job_id == other]
        await DeadLetters(filled.store, filled.client).retry([letters[0].id])
        await page.locator(f'tr[data-job="{other}"]').wait_for(state="detached", timeout=8000)
        await page.get_by_text("No dead jobs.").wait_for()
        assert await page.evaluate("window.notReloaded") is True
        await burst(filled.store, filled.client)

        # the retried execution: its graph with the path taken highlighted
        await page.goto(f"{server.url}/executions/{execution_id}")
        graph = page.locator("#exec-graph svg.graph")
        await graph.wait_for()
        visited = await graph.locator("g.node.visited").evaluate_all(
            "nodes => nodes.map(n => n.dataset.state)"
        )
        assert sorted(visited) == ["Done", "Work"]
        taken = graph.locator('g.edge.taken[data-source="Work"][data-target="Done"]')
        assert await taken.count() == 1
        assert "SUCCEEDED" in await page.locator("#exec-status").inner_text()
        await shots.take(page, "04-execution-retried")

        # an order that went through the Choice's rule: Validate -> Lines -> Big? -> Review
        big = await filled.store.list_executions(_filter(machine="orders"))
        big_one = next(e for e in big if (e.input or {}).get("n") == 500)
        await page.goto(f"{server.url}/executions/{big_one.id}")
        graph = page.locator("#exec-graph svg.graph")
        await graph.wait_for()
        path = await graph.locator("g.node.visited").evaluate_all(
            "nodes => nodes.map(n => n.dataset.state)"
        )
        assert set(path) == {"Validate", "Lines", "Big?", "Review", "Ship"}
        assert (
            await graph.locator('g.edge.taken[data-source="Big?"][data-target="Review"]').count()
            == 1
        )
        assert (
            await graph.locator('g.edge.taken[data-source="Big?"][data-target="Ship"]').count() == 0
        )
        assert await graph.locator('g.node[data-state="Price"]').count() == 1  # Map, nested
        await shots.take(page, "05-execution-choice-path")

        # a rejected order: failed at the Fail state, reached through the Catch
        rejected = next(e for e in big if e.status == "FAILED")
        await page.goto(f"{server.url}/executions/{rejected.id}")
        await page.locator('#exec-graph g.node.failed-here[data-state="Rejected"]').wait_for()
        assert (
            await page.locator(
                '#exec-graph g.edge.taken.edge-catch[data-source="Validate"]'
            ).count()
            == 1
        )
        assert await page.locator("#redrive").count() == 1
        await shots.take(page, "06-execution-failed")

        # the machine page: counts on the graph; then the same in dark mode
        await page.goto(f"{server.url}/machines/orders")
        await page.locator('#machine-graph g.node.has-failed[data-state="Rejected"]').wait_for()
        await shots.take(page, "07-machine")
        assert problems == []
        await context.close()

        context, page, problems = await open_page(browser, dark=True)
        await page.goto(f"{server.url}/machines/orders")
        background = await page.evaluate(
            "getComputedStyle(document.querySelector('.card')).backgroundColor"
        )
        assert background == "rgb(22, 28, 37)"  # the dark theme's --panel
        await shots.take(page, "08-machine-dark")
        await page.goto(f"{server.url}/")
        await shots.take(page, "09-dashboard-dark")
        await page.goto(f"{server.url}/batches")
        await shots.take(page, "10-batches-dark")
        assert problems == []
        await context.close()

        # every other page renders without a script error
        context, page, problems = await open_page(browser)
        batch = (await filled.store.list_batches("orders"))[0]
        pages = {
            "12-workers": "/workers",
            "13-redis": "/redis",
            "14-executions": "/executions?machine=orders",
            "15-batch": f"/batches/{batch.id}",
            "16-dead-letters": "/dead-letters",
            "17-docs": "/docs",
            "18-queue-completed": "/queues/critical?state=completed",
            "19-job": f"/queues/critical/jobs/{job_id}",
            "20-machines": "/machines",
        }
        for name, path in pages.items():
            response = await page.goto(server.url + path)
            assert response is not None and response.status == 200, path
            await shots.take(page, name)
        assert problems == []
        await context.close()


async def test_times_show_in_the_browser_zone_and_scripts_stay_inert(
    filled: Fleet, browser: Any, tmp_path: Path
) -> None:
    shots = Shots(tmp_path / "shots")
    settings = settings_for(filled.store, None)
    app = create_app(
        settings, store=filled.store, redis=filled.client, app=App(resources=RESOURCES)
    )
    async with Server(app) as server:
        context = await browser.new_context(
            viewport={"width": 1400, "height": 900}, timezone_id="Asia/Tokyo", locale="en-GB"
        )
        page = await context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        await page.goto(server.url + "/")
        token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
        response = await page.request.post(
            server.url + "/api/machines/flaky/executions",
            data={
                "input": {"key": "<script>alert(1)</script>"},
                "name": "<img src=x onerror=alert(2)>",
            },
            headers={"x-csrf-token": token or ""},
        )
        assert response.status == 201
        created = await response.json()
        await page.goto(f"{server.url}/executions/{created['id']}")
        heading = await page.locator("h1").inner_text()
        assert "<img src=x onerror=alert(2)>" in heading
        assert "<script>alert(1)</script>" in await page.locator("#exec-input").inner_text()
        # started_at in UTC is shown in Tokyo time (+09:00)
        await burst(filled.store, filled.client)
        record = await filled.store.get_execution(created["id"])
        assert record is not None and record.started_at is not None
        await page.reload()
        shown = await page.locator("#exec-summary time").first.inner_text()
        tokyo = record.started_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
        assert f"{tokyo:%H}:{tokyo:%M}" in shown, shown
        await shots.take(page, "11-execution-escaped")
        assert dialogs == []
        await context.close()


def _filter(machine: str) -> Any:
    from statefleet.statemachine.protocols import ExecutionFilter

    return ExecutionFilter(state_machine_id=machine)
