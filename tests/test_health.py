"""``/health/ready``: a stale feed degrades (200), a failing component takes the server out (503)."""

from __future__ import annotations

import asyncio
import shutil

from aiohttp import web

from ldf_server.app import create_app
from ldf_server.http.state import STATE
from tests.support.prom import scrape, value
from tests.support.seeding import make_config, parking_dataset, seeded_state


async def ready(client) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    resp = await client.get("/health/ready")
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.status, await resp.json()


async def test_ok_when_the_store_is_loaded_and_every_feed_is_fresh(client, state):
    status, body = await ready(client)
    # The seeded feed was backfilled but never polled: stale, which only degrades.
    assert status == 200 and body["status"] == "degraded" and body["stale_feeds"] == ["sim"]
    assert body["checks"]["feed:sim"] == {"ok": False, "critical": False, "detail": "stale: no good poll yet"}
    assert body["reasons"] == ["feed:sim: stale: no good poll yet"]

    state.pollers[0].status.last_success = state.clock()
    status, body = await ready(client)
    assert status == 200 and body["status"] == "ok" and body["reasons"] == [] and body["stale_feeds"] == []
    members = state.streams["parking"].store.member_count
    assert members > 0 and body["datasets"]["parking"]["members"] == members
    assert set(body["checks"]) == {"store", "feed:sim"}, "no data_dir check without a data directory"
    assert body["checks"]["store"] == {"ok": True, "critical": True, "detail": f"{members} members in 1 datasets"}
    assert body["checks"]["feed:sim"]["ok"] is True and body["checks"]["feed:sim"]["detail"].startswith("last good poll 2026-")


async def test_starting_until_the_store_is_loaded(client, state):
    state.ready = False
    status, body = await ready(client)
    assert status == 503 and body["status"] == "starting"
    assert body["checks"]["store"]["ok"] is False and body["reasons"][0].startswith("store: loading")


async def test_a_failing_registered_check_makes_readiness_503_with_its_reason(client, state):
    state.pollers[0].status.last_success = state.clock()
    healthy = {"now": False}
    state.health_checks["log"] = lambda: (healthy["now"], "ok" if healthy["now"] else "cannot append: No space left on device")

    status, body = await ready(client)
    assert status == 503 and body["status"] == "failing"
    assert body["checks"]["log"] == {"ok": False, "critical": True, "detail": "cannot append: No space left on device"}
    assert body["reasons"] == ["log: cannot append: No space left on device"]
    assert body["checks"]["store"]["ok"] is True, "the other components still report"

    healthy["now"] = True
    status, body = await ready(client)
    assert status == 200 and body["status"] == "ok" and body["checks"]["log"]["ok"] is True


async def test_a_check_that_raises_counts_as_failed(client, state):
    def broken() -> tuple[bool, str]:
        raise RuntimeError("journal handle closed")

    state.health_checks["log"] = broken
    status, body = await ready(client)
    assert status == 503 and body["status"] == "failing"
    assert body["checks"]["log"]["detail"] == "the check raised RuntimeError: journal handle closed"


async def test_a_missing_data_directory_takes_the_server_out(aiohttp_client, clock, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    config = make_config(data_dir=str(data))
    state = seeded_state(config, clock)
    state.pollers[0].status.last_success = clock()
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    status, body = await ready(client)
    assert status == 200 and body["status"] == "ok"
    assert body["checks"]["data_dir"] == {"ok": True, "critical": True, "detail": f"data directory {data} is writable"}

    shutil.rmtree(data)  # unmounted volume, deleted directory: the log can no longer write
    status, body = await ready(client)
    assert status == 503 and body["status"] == "failing"
    assert body["reasons"] == [f"data_dir: data directory {data} does not exist"]

    data.write_text("not a directory")
    status, body = await ready(client)
    assert status == 503 and body["checks"]["data_dir"]["ok"] is False


async def test_a_failing_upstream_is_stale_and_degraded_but_still_ready(aiohttp_server, aiohttp_client):
    hits: list[str] = []

    async def broken(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=500, text="Internal Server Error")

    upstream = web.Application()
    upstream.router.add_get("/records", broken)
    server = await aiohttp_server(upstream)
    assert server.host == "127.0.0.1"
    dead = {"id": "dead", "adapter": "ghent-ods-garages", "dataset": "parking", "interval": "60s", "timeout": "1s",
            "retries": 0, "options": {"url": str(server.make_url("/records"))}}
    config = make_config(datasets=[parking_dataset(window="1m")], feeds=[dead])
    app = create_app(config)
    client = await aiohttp_client(app)
    status_of_dead = app[STATE].pollers[0].status
    for _ in range(200):
        if status_of_dead.polls_failed >= 1:
            break
        await asyncio.sleep(0.05)
    assert status_of_dead.polls_failed == 1 and hits == ["/records"]

    samples = await scrape(client)
    assert value(samples, "ldf_feed_polls_total", feed="dead", outcome="failed") == 1
    assert value(samples, "ldf_feed_polls_total", feed="dead", outcome="ok") == 0
    assert value(samples, "ldf_feed_stale", feed="dead") == 1
    assert ("ldf_feed_last_success_timestamp_seconds", frozenset({("feed", "dead")})) not in samples

    status, body = await ready(client)
    assert status == 200, "a stale upstream must not take the server out of the load balancer"
    assert body["status"] == "degraded" and body["stale_feeds"] == ["dead"]
    check = body["checks"]["feed:dead"]
    assert check["ok"] is False and check["critical"] is False
    assert check["detail"] == "stale: no good poll yet; last error: FeedError: HTTP 500 from upstream"
    [feed] = body["feeds"]
    assert feed["polls_failed"] == 1 and feed["last_success"] is None and feed["stale"] is True
