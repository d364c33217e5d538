"""``/metrics``: Prometheus text, a registry per app, counts that match the traffic, bounded labels."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from ldf_server.adapters.poller import Poller
from ldf_server.app import build_state, create_app
from ldf_server.http.state import STATE
from tests.support.clock import FakeClock
from tests.support.ghent import raw
from tests.support.prom import label_sets, scrape, value
from tests.support.seeding import make_config, parking_dataset

CLOSED_WINDOW = "/parking/windows/2026-03-31T08:00:00Z"  # seeded, closed at the conftest clock


async def test_metrics_is_prometheus_text_and_never_cached(client):
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-store"
    text = await resp.text()
    assert "# TYPE ldf_http_requests_total counter" in text
    assert "_created" not in text, "no *_created series: they double every counter"


async def test_names_and_labels_after_traffic(client, state):
    for _ in range(3):
        assert (await client.get("/parking/latest")).status == 200
    for _ in range(2):
        assert (await client.get(CLOSED_WINDOW)).status == 200
    assert (await client.head("/parking/latest")).status == 200
    assert (await client.get("/no/such/thing")).status == 404
    assert (await client.get("/unknown-dataset/latest")).status == 404  # the route matches, the handler says 404
    assert (await client.post("/parking/latest")).status == 405
    samples = await scrape(client)

    requests = "ldf_http_requests_total"
    assert value(samples, requests, route="/{ds}/latest", method="GET") == 4
    assert value(samples, requests, route="/{ds}/latest", method="HEAD") == 1
    assert value(samples, requests, route="/{ds}/windows/{start}", method="GET") == 2
    assert value(samples, requests, route="unmatched", method="GET") == 1
    assert value(samples, requests, route="unmatched", method="POST") == 1
    # The scrape counts itself only once it has answered: it is not in its own body.
    assert ("ldf_http_requests_total", frozenset({"route": "/metrics", "method": "GET"})) not in samples
    assert sum(v for (n, _), v in samples.items() if n == requests) == 9

    assert value(samples, "ldf_http_request_duration_seconds_count", route="/{ds}/latest") == 5
    assert value(samples, "ldf_http_request_duration_seconds_count", route="/{ds}/windows/{start}") == 2
    assert value(samples, "ldf_http_request_duration_seconds_bucket", route="/{ds}/latest", le="+Inf") == 5
    assert value(samples, "ldf_http_responses_total", status="200") == 6
    assert value(samples, "ldf_http_responses_total", status="404") == 2
    assert value(samples, "ldf_http_responses_total", status="405") == 1

    members = state.streams["parking"].store.member_count
    assert members > 0
    assert value(samples, "ldf_dataset_members", dataset="parking") == members
    assert value(samples, "ldf_dataset_sites", dataset="parking") == len(state.streams["parking"].store.sites)
    assert value(samples, "ldf_cache_entries") == len(state.cache) > 0
    assert value(samples, "ldf_cache_bytes") == state.cache.total_bytes > 0
    assert value(samples, "ldf_feed_polls_total", feed="sim", outcome="ok") == 0
    assert value(samples, "ldf_feed_polls_total", feed="sim", outcome="failed") == 0
    assert value(samples, "ldf_feed_members_added_total", feed="sim") == members
    assert value(samples, "ldf_ready") == 1
    assert value(samples, "ldf_log_appended_bytes_total", dataset="parking") == 0


async def test_counters_increase_by_exactly_the_requests_made(client):
    before = await scrape(client)
    for _ in range(7):
        await client.get("/parking/latest")
    for _ in range(4):
        await client.get("/parking/view")
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - before.get((name, frozenset(labels.items())), 0.0)

    assert delta("ldf_http_requests_total", route="/{ds}/latest", method="GET") == 7
    assert delta("ldf_http_requests_total", route="/{ds}/view", method="GET") == 4
    assert delta("ldf_http_requests_total", route="/metrics", method="GET") == 1  # the first scrape
    assert delta("ldf_http_request_duration_seconds_count", route="/{ds}/latest") == 7
    assert delta("ldf_http_responses_total", status="200") == 12


async def test_cache_counters_follow_the_representation_cache(client, state):
    await client.get(CLOSED_WINDOW)  # encoded (a miss) or served from the cache (a hit)
    samples = await scrape(client)
    assert value(samples, "ldf_cache_hits_total") == state.cache.hits
    assert value(samples, "ldf_cache_misses_total") == state.cache.misses >= 1
    hits, misses = state.cache.hits, state.cache.misses

    await client.get(CLOSED_WINDOW)  # the same bytes again: one hit, no miss
    samples = await scrape(client)
    assert state.cache.hits == hits + 1 and state.cache.misses == misses
    assert value(samples, "ldf_cache_hits_total") == hits + 1
    assert value(samples, "ldf_cache_misses_total") == misses

    await client.get(CLOSED_WINDOW, headers={"Accept": "application/n-quads"})  # another syntax: a miss
    samples = await scrape(client)
    assert value(samples, "ldf_cache_misses_total") == misses + 1 == state.cache.misses


async def test_label_sets_do_not_grow_with_distinct_urls(client):
    await client.get("/parking/windows/2026-03-31T08:00:00Z")
    await client.get("/nothing-here/at/all")
    await client.get("/other/latest")
    await scrape(client)  # so that /metrics has its own label set in both scrapes compared
    first = await scrape(client)
    names = ("ldf_http_requests_total", "ldf_http_request_duration_seconds_count", "ldf_http_responses_total")
    counts = {name: len(label_sets(first, name)) for name in names}

    for i in range(50):
        hour, quarter = divmod(i, 4)
        start = f"2026-03-{29 + hour // 24:02d}T{hour % 24:02d}:{quarter * 15:02d}:00Z"
        resp = await client.get(f"/parking/windows/{start}")
        assert resp.status in (200, 404)  # seeded pages and pages out of range: the same route
        await client.get(f"/nothing-here/{i}/x")  # 404, no route
        await client.get(f"/dataset-{i}/latest")  # 404, the route exists but the dataset does not
    second = await scrape(client)

    for name in names:
        assert len(label_sets(second, name)) == counts[name], (name, label_sets(second, name))
    routes = {dict(labels)["route"] for labels in label_sets(second, "ldf_http_requests_total")}
    assert routes == {"/{ds}/windows/{start}", "unmatched", "/{ds}/latest", "/metrics"}
    assert value(second, "ldf_http_requests_total", route="/{ds}/windows/{start}", method="GET") == 51
    assert value(second, "ldf_http_requests_total", route="unmatched", method="GET") == 51


async def test_each_app_has_its_own_registry(aiohttp_client, config, state):
    one = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    two = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    for _ in range(3):
        await one.get("/parking/latest")
    assert value(await scrape(one), "ldf_http_requests_total", route="/{ds}/latest", method="GET") == 3
    assert ("ldf_http_requests_total", frozenset({"route": "/{ds}/latest", "method": "GET"})) not in await scrape(two)


async def test_durable_log_hook_counts_bytes_per_dataset(client):
    metrics = client.app[STATE].metrics
    metrics.log_appended("parking", 1000)
    metrics.log_appended("parking", 24)
    assert value(await scrape(client), "ldf_log_appended_bytes_total", dataset="parking") == 1024


async def test_rejected_records_per_feed_and_reason(aiohttp_server, aiohttp_client):
    async def records(_: web.Request) -> web.Response:
        return web.Response(body=raw("capacity_out_of_range.json"), content_type="application/json")

    upstream = web.Application()
    upstream.router.add_get("/records", records)
    server = await aiohttp_server(upstream)
    feed = {"id": "gent", "adapter": "ghent-ods-garages", "dataset": "parking", "interval": "1m", "retries": 0,
            "options": {"url": str(server.make_url("/records"))}}
    config = make_config(datasets=[parking_dataset(window="5m")], feeds=[feed])
    clock = FakeClock("2022-07-15T11:52:00Z")
    state = build_state(config, clock=clock)
    poller: Poller = state.pollers[0]
    async with aiohttp.ClientSession() as session:
        assert await poller.poll_once(session) is not None
    reasons = poller.status.rejected_reasons
    assert sum(reasons.values()) == 3 and len(reasons) >= 2, reasons

    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    samples = await scrape(client)
    rejected = {dict(labels)["reason"]: v for (n, labels), v in samples.items()
                if n == "ldf_feed_records_rejected_total" and dict(labels)["feed"] == "gent"}
    assert rejected == reasons
    assert value(samples, "ldf_feed_polls_total", feed="gent", outcome="ok") == 1
    assert value(samples, "ldf_feed_last_success_timestamp_seconds", feed="gent") == clock()
    assert value(samples, "ldf_feed_stale", feed="gent") == 0
