"""The REST API against real PostgreSQL and Redis, filled by real executions and real arq
burst workers: what the pages show equals what the store and Redis hold, and every action
does what it says."""

from __future__ import annotations

import time
from typing import Any

import pytest

from statefleet import BatchOptions
from statefleet.queue import QueueClient
from statefleet.queue.inspector import JOB_DURATION_BUCKETS, Inspector
from statefleet.statemachine.protocols import ExecutionFilter
from statefleet.store import SQLStore
from tests.ui.conftest import BROKEN, PREFIX, Fleet, burst, enqueued, machines, stop


async def test_dashboard_counts_equal_the_store_and_redis(filled: Fleet, make_ui: Any) -> None:
    # leave work behind: pending jobs on a paused queue, scheduled ones, and the dead ones
    await filled.client.pause("low")
    later = await filled.flaky.execute_bulk(
        [{"key": f"p{i}"} for i in range(3)], BatchOptions(name="later", queue="low")
    )
    deferred = await filled.flaky.execute_bulk(
        [{"key": f"s{i}"} for i in range(2)], BatchOptions(name="deferred", defer_by=3600)
    )
    await enqueued(filled.client, 5)
    await stop(later, deferred)
    redis = await filled.client.redis()
    async with make_ui(filled.store, filled.client) as ui:
        overview = await ui.get("/api/overview")
        queues = {q["name"]: q for q in overview["queues"]}
        inspected = {q.name: q for q in await Inspector(filled.client).queues()}
        assert set(queues) == set(inspected) == {"critical", "default", "low"}
        for name, info in inspected.items():
            q = queues[name]
            assert (q["size"], q["active"], q["pending"], q["retry"], q["scheduled"]) == (
                info.size,
                info.active,
                info.pending,
                info.retry,
                info.scheduled,
            )
            assert q["size"] == await redis.zcard(f"{PREFIX}:queue:{name}")
            assert (q["processed_today"], q["failed_today"]) == (
                info.processed_today,
                info.failed_today,
            )
        assert queues["low"]["paused"] and queues["low"]["pending"] == 3
        assert queues["default"]["scheduled"] == 2
        assert queues["critical"]["processed_today"] == 5
        letters = await filled.store.list_dead_letters()
        assert queues["critical"]["dead"] == len(letters) == 2
        assert queues["critical"]["completed"] == 5  # results kept by arq
        assert overview["totals"]["dead"] == 2
        days = overview["daily"]["total"]
        assert len(days) == 7 and days[-1]["processed"] == 10
        # machines: counts by status from the store
        for machine in await ui.get("/api/machines"):
            expected = await filled.store.count_by_status(
                ExecutionFilter(state_machine_id=machine["id"])
            )
            assert {s: n for s, n in machine["counts"].items() if n} == expected
        info = await ui.get("/api/machines/orders")
        assert info["counts"]["SUCCEEDED"] == 4 and info["counts"]["FAILED"] == 1
        assert info["state_counts"] == {"Rejected": {"active": 0, "failed": 1}}
        graph = await ui.get("/api/machines/orders/graph")
        kinds = {(e["source"], e["target"], e["kind"]) for e in graph["edges"]}
        assert ("Validate", "Rejected", "catch") in kinds
        assert ("Big?", "Review", "choice") in kinds and ("Big?", "Ship", "default") in kinds
        lines = next(n for n in graph["nodes"] if n["name"] == "Lines")
        assert lines["children"][0]["nodes"][0]["name"] == "Price"
        # the tabs list what the counts say
        pending = await ui.get("/api/queues/low/jobs?state=pending")
        assert pending["total"] == 3 and len(pending["jobs"]) == 3
        assert {j["machine_id"] for j in pending["jobs"]} == {"flaky"}
        dead = await ui.get("/api/queues/critical/jobs?state=dead")
        assert dead["total"] == 2
        assert {j["error"] for j in dead["jobs"]} == {"RuntimeError"}
        completed = await ui.get("/api/queues/critical/jobs?state=completed&size=2")
        assert completed["total"] == 5 and len(completed["jobs"]) == 2 and completed["pages"] == 3


async def test_a_dead_job_retried_ends_succeeded(filled: Fleet, make_ui: Any) -> None:
    async with make_ui(filled.store, filled.client) as ui:
        dead = await ui.get("/api/queues/critical/jobs?state=dead")
        job = dead["jobs"][0]
        execution = await filled.store.get_execution(job["execution_id"])
        assert execution is not None and execution.status == "FAILED"
        BROKEN.clear()
        done = await ui.post(
            "/api/queues/critical/jobs/retry", {"state": "dead", "ids": [job["job_id"]]}
        )
        assert done["done"] == 1
        after = await ui.get("/api/queues/critical/jobs?state=dead")
        assert [j["job_id"] for j in after["jobs"]] != [] and job["job_id"] not in {
            j["job_id"] for j in after["jobs"]
        }
        pending = await ui.get("/api/queues/critical/jobs?state=pending")
        assert [j["execution_id"] for j in pending["jobs"]] == [job["execution_id"]]
        await burst(filled.store, filled.client)
        record = await filled.store.get_execution(job["execution_id"])
        assert record is not None and record.status == "SUCCEEDED"
        assert record.redrive_count == 1
        # the other one by "all in tab"
        done = await ui.post("/api/queues/critical/jobs/retry", {"state": "dead", "all": True})
        assert done["done"] == 1
        await burst(filled.store, filled.client)
        assert (await ui.get("/api/queues/critical"))["dead"] == 0
        counts = await filled.store.count_by_status(ExecutionFilter(state_machine_id="flaky"))
        assert counts == {"SUCCEEDED": 5}


async def test_a_paused_queue_is_not_served(pg: Any, queue: Any, make_ui: Any) -> None:
    _, flaky = await machines(pg, queue)
    async with make_ui(pg, queue) as ui:
        paused = await ui.post("/api/queues/low/pause")
        assert paused == {"queue": "low", "paused": True, "message": "queue low paused"}
        batch = await flaky.execute_bulk(
            [{"key": f"x{i}"} for i in range(4)], BatchOptions(queue="low")
        )
        await enqueued(queue, 4)
        await burst(pg, queue)
        low = await ui.get("/api/queues/low")
        assert low["paused"] and low["pending"] == 4 and low["processed_today"] == 0
        await ui.post("/api/queues/low/resume")
        await burst(pg, queue)
        await batch.wait()
        low = await ui.get("/api/queues/low")
        assert not low["paused"] and low["size"] == 0 and low["processed_today"] == 4


async def test_run_now_delete_cancel_and_delete_queue(pg: Any, queue: Any, make_ui: Any) -> None:
    _, flaky = await machines(pg, queue)
    async with make_ui(pg, queue) as ui:
        batch = await flaky.execute_bulk(
            [{"key": f"d{i}"} for i in range(3)], BatchOptions(queue="low", defer_by=3600)
        )
        await enqueued(queue, 3)
        scheduled = (await ui.get("/api/queues/low/jobs?state=scheduled"))["jobs"]
        assert len(scheduled) == 3
        moved = await ui.post(
            "/api/queues/low/jobs/run", {"state": "scheduled", "ids": [scheduled[0]["job_id"]]}
        )
        assert moved["done"] == 1
        low = await ui.get("/api/queues/low")
        assert (low["pending"], low["scheduled"]) == (1, 2)
        # search finds a job by its execution id, in whatever tab it is
        found = await ui.get(
            f"/api/queues/low/jobs?state=pending&search={scheduled[0]['execution_id']}"
        )
        assert [j["job_id"] for j in found["jobs"]] == [scheduled[0]["job_id"]]
        detail = await ui.get(f"/api/queues/low/jobs/{scheduled[1]['job_id']}")
        assert detail["job"]["state"] == "scheduled"
        assert detail["execution"]["status"] == "QUEUED"
        # delete: the job goes, its execution is cancelled
        deleted = await ui.post("/api/queues/low/jobs/delete", {"state": "scheduled", "all": True})
        assert deleted["done"] == 2
        for job in scheduled[1:]:
            record = await pg.get_execution(job["execution_id"])
            assert record.status == "ABORTED"
        # the index machine-filtered workers read follows both actions: the job run now is
        # there at its new time, the deleted ones are gone
        redis = await queue.redis()
        index = queue.keys.machine_queue("low", flaky.machine_id)
        assert await redis.zrange(index, 0, -1, withscores=True) == [
            (
                scheduled[0]["job_id"].encode(),
                await redis.zscore(queue.keys.queue("low"), scheduled[0]["job_id"]),
            )
        ]
        # a queue that holds a job cannot be deleted; an empty one can
        refused = await ui.post("/api/queues/low/delete", status=409)
        assert "not empty" in refused["error"]
        # a worker serving only this machine takes the job run now (not in an hour)
        served = await burst(pg, queue, machines=frozenset({flaky.machine_id}), timeout=20)
        assert served.counters.done == 1
        await batch.wait()
        await redis.zadd(index, {"stale": 0})  # as an index entry left by an older version
        assert (await ui.post("/api/queues/low/delete")) == {"queue": "low", "deleted": True}
        assert not [
            key async for key in redis.scan_iter(match=queue.keys.machine_queue_pattern("low"))
        ]
        names = [q["name"] for q in await ui.get("/api/queues")]
        assert "low" not in names
        await ui.post("/api/queues/low/delete", status=404)
        # actions that do not apply to a state are refused
        wrong = await ui.post("/api/queues/default/jobs/run", {"state": "dead"}, status=400)
        assert "does not apply" in wrong["error"]


async def test_executions_list_detail_redrive_and_cancel(filled: Fleet, make_ui: Any) -> None:
    async with make_ui(filled.store, filled.client) as ui:
        page = await ui.get("/api/executions?machine=orders&limit=2")
        assert page["total"] == 5 and len(page["executions"]) == 2
        ids = [e["id"] for e in page["executions"]]
        assert ids == sorted(ids, reverse=True)  # newest first
        older = await ui.get(f"/api/executions?machine=orders&limit=2&before={page['older']}")
        newer = await ui.get(f"/api/executions?machine=orders&limit=2&after={older['newer']}")
        assert [e["id"] for e in newer["executions"]] == ids
        failed = await ui.get("/api/executions?status=FAILED&machine=orders")
        assert failed["total"] == 1
        rejected = failed["executions"][0]
        assert (rejected["current_state"], rejected["error"]) == ("Rejected", "Rejected")
        by_state = await ui.get("/api/executions?state=Rejected")
        assert by_state["total"] == 1
        future = await ui.get("/api/executions?from=2999-01-01T00:00:00Z")
        assert future["total"] == 0
        detail = await ui.get(f"/api/executions/{rejected['id']}")
        assert [h["state"] for h in detail["history"]] == ["Validate", "Rejected"]
        assert detail["input"]["n"] == -1 and detail["can_redrive"]
        svg = await ui.http.get(f"/api/executions/{rejected['id']}/graph.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert 'class="node type-fail end visited current status-failed failed-here"' in svg.text
        # redrive (distributed mode: prepared and enqueued) of a flaky one, then run it
        dead = (await ui.get("/api/executions?machine=flaky&status=FAILED"))["executions"][0]
        BROKEN.clear()
        redriven = await ui.post(f"/api/executions/{dead['id']}/redrive")
        assert redriven["status"] == "RUNNING"
        await burst(filled.store, filled.client)
        assert (await ui.get(f"/api/executions/{dead['id']}"))["status"] == "SUCCEEDED"
        again = await ui.post(f"/api/executions/{dead['id']}/redrive", status=409)
        assert "SUCCEEDED" in again["error"]
        # cancel a queued one
        started = await ui.post(
            "/api/machines/flaky/executions", {"input": {"key": "c"}}, status=201
        )
        cancelled = await ui.post(f"/api/executions/{started['id']}/cancel")
        assert cancelled["status"] == "ABORTED"
        await ui.post(f"/api/executions/{started['id']}/cancel", status=409)
        await ui.http.get("/api/executions/nope")
        missing = await ui.http.get("/api/executions/nope")
        assert missing.status_code == 404


async def test_start_executions_and_batches(pg: Any, queue: Any, make_ui: Any) -> None:
    orders, _ = await machines(pg, queue)
    async with make_ui(pg, queue) as ui:
        record = await ui.post(
            "/api/machines/orders/executions",
            {"input": {"n": 7, "lines": []}, "name": "by-api"},
            status=201,
        )
        assert (record["name"], record["status"]) == ("by-api", "QUEUED")
        bulk = await ui.post(
            "/api/machines/orders/batches",
            {"inputs": [{"n": i, "lines": []} for i in range(6)], "options": {"name": "api-bulk"}},
            status=201,
        )
        assert bulk["name"] == "api-bulk" and bulk["kind"] == "bulk"
        for _ in range(100):
            if (await ui.get(f"/api/batches/{bulk['id']}"))["created"] == 6:
                break
        await burst(pg, queue)
        assert (await ui.get(f"/api/executions/{record['id']}"))["status"] == "SUCCEEDED"
        await (await orders.get_batch(bulk["id"])).wait()
        done = await ui.get(f"/api/batches/{bulk['id']}")
        assert (done["status"], done["ended"], done["succeeded"], done["percent"]) == (
            "SUCCEEDED",
            6,
            6,
            100.0,
        )
        assert done["throughput"] > 0 and done["eta_seconds"] is None
        chained = await ui.post(
            "/api/machines/orders/batches",
            {
                "source": {"batch_id": bulk["id"], "status": "SUCCEEDED"},
                "unique": True,
                "options": {"name": "api-chain"},
            },
            status=201,
        )
        assert chained["kind"] == "chain"
        bad = await ui.post("/api/machines/orders/batches", {"inputs": 3}, status=400)
        assert "array" in bad["error"]
        bad = await ui.post(
            "/api/machines/orders/batches", {"inputs": [], "options": {"bogus": 1}}, status=400
        )
        assert "bogus" in bad["error"]
        listed = await ui.get("/api/batches?machine=orders")
        assert {b["name"] for b in listed} == {"api-bulk", "api-chain"}
        missing = await ui.http.post(
            "/api/machines/nope/executions", json={}, headers={"x-csrf-token": ui.csrf}
        )
        assert missing.status_code == 404


async def test_batch_cancel_and_failures_by_error(pg: Any, queue: Any, make_ui: Any) -> None:
    _, flaky = await machines(pg, queue)
    async with make_ui(pg, queue) as ui:
        BROKEN.update({"b0", "b1"})
        batch = await flaky.execute_bulk(
            [{"key": f"b{i}"} for i in range(4)], BatchOptions(name="errs", max_tries=1)
        )
        await burst(pg, queue, expect=4)
        await batch.wait()
        data = await ui.get(f"/api/batches/{batch.id}")
        assert data["errors"] == [["RuntimeError", 2]]
        assert (data["failed"], data["succeeded"]) == (2, 2)
        stuck = await flaky.execute_bulk(
            [{"key": f"s{i}"} for i in range(3)], BatchOptions(name="stuck", defer_by=3600)
        )
        for _ in range(100):
            if (await ui.get(f"/api/batches/{stuck.id}"))["created"] == 3:
                break
        cancelled = await ui.post(f"/api/batches/{stuck.id}/cancel")
        assert cancelled["counts"] == {"ABORTED": 3}
        await stuck.wait()  # its driver sees every execution ended
        refused = await ui.post(f"/api/batches/{batch.id}/resume", status=409)
        assert f"statefleet batch resume {batch.id} --inputs FILE.jsonl" in refused["error"]


async def test_dead_letters_retry_and_purge_by_filter(filled: Fleet, make_ui: Any) -> None:
    async with make_ui(filled.store, filled.client) as ui:
        page = await ui.get("/api/dead-letters")
        assert page["total"] == 2 and page["errors"] == [["RuntimeError", 2]]
        assert {d["queue"] for d in page["dead_letters"]} == {"critical"}
        filtered = await ui.get("/api/dead-letters?machine=orders")
        assert filtered["total"] == 0
        refused = await ui.post("/api/dead-letters/purge", {}, status=400)
        assert "filter" in refused["error"]
        one = page["dead_letters"][0]["id"]
        assert (await ui.post("/api/dead-letters/purge", {"ids": [one]}))["done"] == 1
        BROKEN.clear()
        retried = await ui.post("/api/dead-letters/retry", {"machine": "flaky"})
        assert retried["done"] == 1
        await burst(filled.store, filled.client)
        assert (await ui.get("/api/dead-letters"))["total"] == 0


async def test_workers_live_and_gone(filled: Fleet, make_ui: Any) -> None:
    import asyncio

    from statefleet import App
    from statefleet.queue.worker import FleetWorker
    from tests.ui.conftest import RESOURCES, settings_for, worker_options

    redis = await filled.client.redis()
    await redis.zadd(f"{PREFIX}:workers", {"old-worker": int(time.time() * 1000) - 60_000})
    app = App(resources=RESOURCES, settings=settings_for(filled.store, None))
    assert filled.client.redis_settings is not None
    from statefleet.queue import QueueClient

    live = FleetWorker(
        app,
        QueueClient(filled.client.redis_settings, prefix=PREFIX),
        worker_options(burst=False, worker_id="w-live"),
        store=filled.store,
    )
    task = asyncio.create_task(live.async_run())
    try:
        async with make_ui(filled.store, filled.client) as ui:
            for _ in range(100):
                workers = {w["id"]: w for w in await ui.get("/api/workers")}
                if "w-live" in workers:
                    break
                await asyncio.sleep(0.05)
            assert workers["w-live"]["status"] == "live"
            assert workers["w-live"]["queues"] == ["critical", "default", "low"]
            assert workers["old-worker"]["status"] == "gone"
            await ui.post("/api/workers/w-live/pause")
            workers = {w["id"]: w for w in await ui.get("/api/workers")}
            assert workers["w-live"]["status"] == "paused"
            await ui.post("/api/workers/w-live/resume")
            health = await ui.get("/health")
            assert health["workers"] == 1 and health["status"] == "ok"
    finally:
        import signal

        live.handle_sig(signal.SIGINT)
        await asyncio.gather(task, return_exceptions=True)
        await live.close()


async def test_health_metrics_redis_and_openapi(filled: Fleet, make_ui: Any) -> None:
    async with make_ui(filled.store, filled.client) as ui:
        health = await ui.get("/health")
        assert health["database"]["ok"] and health["redis"]["ok"]
        assert health["queues"]["critical"] == {"size": 0, "paused": False}
        await ui.http.get("/metrics")  # starts the duration histogram's window
        extra = await filled.orders.execute_bulk([{"n": 1, "lines": []}], BatchOptions(name="m"))
        await burst(filled.store, filled.client, expect=1)
        await extra.wait()
        text = (await ui.http.get("/metrics")).text
        assert 'statefleet_executions{machine="orders",status="SUCCEEDED"} 5' in text
        assert 'statefleet_queue_jobs{queue="critical",state="dead"} 2' in text
        assert "statefleet_dead_letters 2" in text
        assert 'statefleet_execution_duration_seconds_count{machine="orders"} 1' in text
        assert "# TYPE statefleet_execution_duration_seconds histogram" in text
        assert "statefleet_up 1" in text
        info = await ui.get("/api/redis")
        assert info["version"] and "# Server" in info["raw"]
        spec = await ui.get("/openapi.json")
        assert spec["openapi"].startswith("3.")
        assert "post" in spec["paths"]["/api/queues/{name}/jobs/retry"]
        assert "/health" in spec["paths"]
        docs = await ui.http.get("/docs", headers={"accept": "text/html"})
        assert docs.status_code == 200 and "/api/executions/{execution_id}/redrive" in docs.text


async def test_local_mode_runs_executions_in_process(pg: Any, make_ui: Any) -> None:
    import asyncio

    await machines(pg, None)
    async with make_ui(pg, None) as ui:
        record = await ui.post(
            "/api/machines/orders/executions", {"input": {"n": 3, "lines": [{}]}}, status=201
        )
        for _ in range(200):
            current = await ui.get(f"/api/executions/{record['id']}")
            if current["status"] == "SUCCEEDED":
                break
            await asyncio.sleep(0.02)
        assert current["output"] == {"shipped": 3}
        overview = await ui.get("/api/overview")
        assert overview["enabled"] is False
        unavailable = await ui.http.get("/api/queues/default")
        assert unavailable.status_code == 503
        page = await ui.http.get("/", headers={"accept": "text/html"})
        assert "local mode" in page.text
        health = await ui.get("/health")
        assert health["redis"] is None and health["status"] == "ok"


async def test_every_page_form_posts_to_an_api_route(filled: Fleet, make_ui: Any) -> None:
    import html
    import re

    from starlette.routing import Match

    async with make_ui(filled.store, filled.client) as ui:
        failed = (await ui.get("/api/executions?status=FAILED&machine=flaky"))["executions"][0]
        batch = (await ui.get("/api/batches"))[0]
        targets: set[str] = set()
        for path in (
            "/",
            "/queues/critical?state=dead",
            "/queues/critical?state=completed",
            "/queues/default?state=pending",
            "/dead-letters",
            "/machines/orders",
            f"/executions/{failed['id']}",
            f"/batches/{batch['id']}",
            "/batches",
            "/workers",
        ):
            page = await ui.http.get(path, headers={"accept": "text/html"})
            assert page.status_code == 200, path
            for found in re.findall(r'(?:formaction|action)="([^"]+)"', page.text):
                targets.add(html.unescape(found))
        posts = {t for t in targets if t.startswith("/api/")}
        assert len(posts) >= 10
        for target in posts:
            scope = {"type": "http", "path": target.split("?")[0], "method": "POST"}
            matches = [route.matches(scope)[0] for route in ui.app.routes]
            assert Match.FULL in matches, target


async def test_health_fails_when_redis_is_down(pg: Any, make_ui: Any) -> None:
    from arq.connections import RedisSettings

    from statefleet.queue import QueueClient

    down = QueueClient(RedisSettings(host="127.0.0.1", port=1, conn_retries=0), prefix=PREFIX)
    try:
        async with make_ui(pg, down) as ui:
            response = await ui.http.get("/health")
            assert response.status_code == 503
            data = response.json()
            assert data["status"] == "fail" and data["database"]["ok"]
            assert data["redis"]["ok"] is False
            metrics = await ui.http.get("/metrics")
            assert "statefleet_up 0" in metrics.text
    finally:
        await down.close()


def _samples(text: str, name: str, **labels: str) -> dict[str, float]:
    """The samples of one metric with these labels: {suffix or le bound: value}."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if not all(label in head for label in wanted):
            continue
        if head.startswith(f"{name}_bucket"):
            le = head.split('le="')[1].split('"')[0]
            out[le] = float(value)
        else:
            out[head[len(name) + 1 : head.index("{")]] = float(value)
    return out


async def test_metrics_have_the_job_duration_histogram_of_every_worker(
    pg: SQLStore, queue: QueueClient, make_ui: Any
) -> None:
    orders, _ = await machines(pg, queue)
    inputs = [{"n": n, "lines": [{"sku": 1}]} for n in range(1, 7)]
    first = await orders.execute_bulk(inputs, BatchOptions(name="timed-1", queue="default"))
    one = await burst(pg, queue, expect=6)
    await first.wait()
    second = await orders.execute_bulk(inputs[:4], BatchOptions(name="timed-2", queue="default"))
    other = await burst(pg, queue, expect=4)  # another worker: the counters add up
    await second.wait()
    assert one.worker_id != other.worker_id
    assert one.counters.done + other.counters.done == 10
    async with make_ui(pg, queue) as ui:
        text = (await ui.http.get("/metrics")).text
    assert "# TYPE statefleet_job_duration_seconds histogram" in text
    found = _samples(text, "statefleet_job_duration_seconds", queue="default", machine="orders")
    assert found["count"] == 10 and found["+Inf"] == 10
    buckets = [value for key, value in found.items() if key not in ("count", "sum", "+Inf")]
    assert len(buckets) == len(JOB_DURATION_BUCKETS)
    assert buckets == sorted(buckets)  # cumulative
    assert found["sum"] > 0
    [histogram] = await Inspector(queue).job_durations()
    assert (histogram.queue, histogram.machine, histogram.count) == ("default", "orders", 10)
    assert histogram.sum == pytest.approx(found["sum"], abs=1e-5)
