"""End to end: a fake Ghent open-data portal on 127.0.0.1 → the real Poller → the store → HTTP.

The fake upstream answers from a script (one entry per request): recorded payloads in time
order, with HTTP 500s, a response slower than the feed timeout, truncated, HTML and
reshaped payloads in between. The test drives time with a FakeClock and a fake ``sleep``
that records the backoff delays. Expectations are derived from the fixture files with
``json`` (tests/support/ghent.py), never from what the server computes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from ldf_server.adapters.poller import Poller
from ldf_server.adapters.registry import create_adapter
from ldf_server.app import build_state, create_app
from ldf_server.store.memory import DatasetStore
from tests.support.clock import FakeClock
from tests.support.ghent import (
    GHENT_SITE_IRIS,
    expected_position,
    instant_ms,
    is_closed,
    judge,
    raw,
    records,
    utc_text,
)
from tests.support.seeding import BASE, make_config, parking_dataset

FEED_PATH = "/api/records/1.0/search/"
QUERY = "dataset=bezetting-parkeergarages-real-time&rows=100"
WINDOW_MS = 5 * 60 * 1000  # the dataset below uses window="5m"
INTERVAL_S = 60.0
TIMEOUT_S = 0.5
SLOW_S = 10.0  # how long a "slow" answer would take if the client waited (it must not)
# Every garage but one has a city IRI, so the server's own IRIs are exercised too.
SITE_IRIS = {k: v for k, v in GHENT_SITE_IRIS.items() if k != "Sint-Pietersplein"}


class FakeUpstream:
    """Serves one scripted answer per request and logs what it was asked."""

    def __init__(self) -> None:
        self.script: deque[tuple[str, object]] = deque()
        self.requests: list[web.Request] = []
        self.release = asyncio.Event()  # ends slow answers when the test is over

    def serve(self, *answers: tuple[str, object]) -> None:
        assert not self.script, f"answers left over from the previous poll: {list(self.script)}"
        self.script.extend(answers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if not self.script:
            return web.Response(status=599, text="the test scripted no answer for this request")
        kind, arg = self.script.popleft()
        if kind == "status":
            return web.Response(status=int(arg), text="Internal Server Error")  # type: ignore[call-overload]
        if kind == "slow":
            try:
                await asyncio.wait_for(self.release.wait(), SLOW_S)
            except TimeoutError:
                pass
            kind = "file"
        assert kind == "file", kind
        name = str(arg)
        content_type = "text/html" if name.endswith(".html") else "application/json"
        return web.Response(body=raw(name), content_type=content_type)


def feed_config(url: str, **overrides):
    feed = {
        "id": "gent",
        "adapter": "ghent-ods-garages",
        "dataset": "parking",
        "interval": f"{INTERVAL_S:g}s",
        "timeout": f"{TIMEOUT_S * 1000:g}ms",
        "retries": 2,
        "backoff": "1s",
        "options": {"url": url, "site_iris": SITE_IRIS},
    } | overrides
    return make_config(datasets=[parking_dataset(window="5m", grace="1m")], feeds=[feed])


@pytest.fixture
async def upstream(aiohttp_server):
    fake = FakeUpstream()
    app = web.Application()
    app.router.add_get(FEED_PATH, fake.handle)
    server = await aiohttp_server(app)
    assert server.host == "127.0.0.1"
    fake.url = f"{server.make_url(FEED_PATH)}?{QUERY}"  # type: ignore[attr-defined]
    yield fake
    fake.release.set()


def stored(store: DatasetStore) -> dict[tuple[str, int], tuple[int, str]]:
    """(garage name, time) → (vacant spaces, opening status) of every member in the store."""
    out = {}
    for start in store.window_starts():
        for m in store.window(start).members:
            key = (store.sites[m.site].label, m.time)
            assert key not in out, f"two members for {key}"
            out[key] = (m.values["vacantSpaces"], m.values["openingStatus"])
    return out


def snapshot(store: DatasetStore) -> tuple:
    return (
        store.version,
        store.member_count,
        dict(store.sites),
        {start: list(store.window(start).members) for start in store.window_starts()},
        {site: dict(series) for site, series in store.latest.items()},
    )


def check_backoff(delays: list[float], interval: float, backoff: float) -> None:
    """Each delay is the capped exponential step with jitter in [50%, 100%]; uncapped steps grow."""
    for k, d in enumerate(delays):
        step = min(interval, backoff * 2**k)
        assert 0.5 * step <= d <= step <= interval, (k, d, delays)
    for k in range(len(delays) - 1):
        if backoff * 2 ** (k + 1) <= interval:  # past the cap, jitter may reorder equal steps
            assert delays[k] <= delays[k + 1], delays


async def test_polling_a_flaky_upstream_then_serving_what_was_kept(upstream, aiohttp_client, caplog):
    caplog.set_level(logging.WARNING, logger="ldf_server")
    config = feed_config(upstream.url)
    clock = FakeClock("2022-07-15T11:42:00Z")
    state = build_state(config, clock=clock)
    store = state.streams["parking"].store
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    poller = Poller(create_adapter(config.feeds[0]), store, clock=clock, sleep=fake_sleep)
    state.pollers = [poller]
    status = poller.status
    assert status.stale(clock()), "no good poll yet"

    expected: dict[tuple[str, int], tuple[int, str]] = {}
    last_good: dict[str, dict] = {}  # garage → its record in the last good payload
    texts: dict[int, str] = {}  # instant → lastupdate as the feed wrote it
    rejected_total = 0

    async def poll(at: str, *answers: tuple[str, object]):
        clock.set(at)
        upstream.serve(*answers)
        delays.clear()
        asked = len(upstream.requests)
        started = time.monotonic()
        result = await poller.poll_once(session)
        poll.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
        assert not upstream.script, f"the poller stopped early: {list(upstream.script)} not asked for"
        assert len(upstream.requests) - asked == len(answers)
        return result

    async def good_poll(at: str, *answers: tuple[str, object]):
        """The last answer is a good payload: expectations grow by what it holds."""
        nonlocal rejected_total
        name = str(answers[-1][1])
        before_rejected, before_version = status.records_rejected, store.version
        result = await poll(at, *answers)
        assert result is not None
        now_ms = instant_ms(at.replace("Z", "+00:00"))
        new, rejected = 0, 0
        for r in records(name):
            if judge(r, now_ms) is not None:
                rejected += 1
                continue
            f = r["fields"]
            key = (f["name"], instant_ms(f["lastupdate"]))
            texts[key[1]] = f["lastupdate"]
            last_good[f["name"]] = r
            if key not in expected:
                expected[key] = (f["availablecapacity"], "closed" if is_closed(f) else "open")
                new += 1
        assert rejected == result.rejected_total
        assert result.added == new
        assert result.duplicates == len(records(name)) - rejected - new
        rejected_total += rejected
        assert status.records_rejected == rejected_total == sum(status.rejected_reasons.values())
        assert status.records_rejected - before_rejected == rejected
        rejection_logs = [r for r in caplog.records if r.getMessage().startswith(f"feed {status.feed}: rejected")]
        assert bool(rejection_logs) == (rejected_total > 0), "every rejection is logged, nothing else is"
        assert stored(store) == expected  # no more, none lost
        for site in store.sites.values():  # the newest member of each garage, whatever the order of arrival
            newest = max(t for (n, t) in expected if n == site.label)
            assert store.newest(site.key).time == newest, site.label
        assert store.member_count == status.members_added == len(expected)
        if new == 0:
            assert store.version == before_version, "re-polling the same payload changed the store"
        assert status.last_error is None and status.consecutive_failures == 0
        assert status.last_success == clock() and not status.stale(clock())
        check_backoff(delays, INTERVAL_S, 1.0)
        assert len(delays) == len(answers) - 1
        return result

    async def failed_poll(at: str, *answers: tuple[str, object]) -> str:
        before = snapshot(store)
        failures = status.consecutive_failures
        result = await poll(at, *answers)
        assert result is None
        assert snapshot(store) == before, "a failing poll changed the store"
        assert stored(store) == expected
        assert status.consecutive_failures == failures + 1
        assert status.last_error
        check_backoff(delays, INTERVAL_S, 1.0)
        assert len(delays) == len(answers) - 1 == config.feeds[0].retries
        return status.last_error

    async with aiohttp.ClientSession() as session:
        await good_poll("2022-07-15T11:42:00Z", ("file", "t1.json"))
        request = upstream.requests[-1]
        assert request.path == FEED_PATH and request.query_string == QUERY
        assert request.headers["Accept"] == "application/json"
        assert len(expected) == len(records("t1.json"))

        # The same payload again: nothing new, nothing changed.
        result = await good_poll("2022-07-15T11:43:00Z", ("file", "t1.json"))
        assert result.added == 0 and result.duplicates == len(records("t1.json"))

        # Every attempt fails: a 500, an answer slower than the timeout, a truncated body.
        caplog.clear()
        error = await failed_poll("2022-07-15T11:44:00Z", ("status", 500), ("slow", "t2.json"), ("file", "truncated.json"))
        assert error.startswith("PayloadError"), error  # the last attempt's error
        assert 0.9 * TIMEOUT_S <= poll.elapsed < TIMEOUT_S + 3, "the slow answer was not cut off at the timeout"
        attempts = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
        assert len(attempts) == 3
        assert "HTTP 500" in attempts[0] and "Timeout" in attempts[1] and "PayloadError" in attempts[2], attempts
        assert status.polls_failed == 1 and status.polls_ok == 2
        assert status.last_success == instant_ms("2022-07-15T11:43:00+00:00") / 1000
        assert not status.stale(clock())

        # An HTML maintenance page (HTTP 200), then the next snapshot: a retry that succeeds.
        await good_poll("2022-07-15T11:47:00Z", ("file", "error_page.html"), ("file", "t2.json"))
        assert status.polls_ok == 3 and status.polls_failed == 1

        # Three polls in a row fail; the feed turns stale once three intervals pass without success.
        error = await failed_poll("2022-07-15T11:48:00Z", ("file", "records_renamed.json"), ("status", 500), ("file", "records_not_list.json"))
        assert error.startswith("PayloadError") and "records" in error, error
        error = await failed_poll("2022-07-15T11:49:00Z", ("status", 500), ("status", 500), ("status", 500))
        assert error.startswith("FeedError") and "500" in error, error
        assert not status.stale(clock())
        await failed_poll("2022-07-15T11:50:00Z", ("file", "error_page.html"), ("status", 500), ("file", "truncated.json"))
        assert status.consecutive_failures == 3 and status.polls_failed == 4
        assert clock() - status.last_success == 3 * INTERVAL_S
        assert not status.stale(clock()), "exactly three intervals is not yet stale"
        clock.advance(1)
        assert status.stale(clock()) and status.as_json(clock())["stale"] is True
        assert status.as_json(clock())["consecutive_failures"] == 3

        # Good payloads holding bad records: those are skipped or refused, and counted.
        result = await good_poll("2022-07-15T11:51:00Z", ("file", "bad_availablecapacity.json"))
        assert result.rejected_total == 4 and result.added == 1
        result = await good_poll("2022-07-15T11:52:00Z", ("file", "capacity_out_of_range.json"))
        assert result.rejected_total == 3 and result.added == 1
        result = await good_poll("2022-07-15T11:53:00Z", ("status", 500), ("file", "lastupdate_without_offset.json"))
        assert result.rejected_total == 1
        # The last snapshot: a garage reopens, one did not update, one appears; then polled again.
        await good_poll("2022-07-15T11:54:00Z", ("file", "t3.json"))
        # A lagging replica: one record older than what t3 said (still stored), one already seen.
        result = await good_poll("2022-07-15T11:54:30Z", ("file", "late_record.json"))
        assert result.added == 1 and result.duplicates == 1
        result = await good_poll("2022-07-15T11:55:00Z", ("file", "t3.json"))
        assert result.added == 0
        assert status.polls_ok == 9 and status.polls_failed == 4 and status.consecutive_failures == 0

    # -- the store, served over HTTP ----------------------------------------------------
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))

    resp = await client.get("/health/ready")
    health = await resp.json()
    [feed] = health["feeds"]
    assert resp.status == 200 and health["status"] == "ok" and not feed["stale"]
    assert feed["records_rejected"] == rejected_total and feed["polls_failed"] == 4 and feed["last_error"] is None

    resp = await client.get("/parking/latest")
    assert resp.status == 200
    latest = await resp.json(content_type=None)
    sites = {s["label"]: s for s in latest["sites"]}
    t3 = {r["fields"]["name"]: r for r in records("t3.json")}
    assert set(sites) == set(t3) == set(last_good) and latest["totalItems"] == len(t3)
    for name, r in t3.items():
        f, node = r["fields"], sites[name]
        assert last_good[name] == r
        newest = max(t for (n, t) in expected if n == name)
        assert newest == instant_ms(f["lastupdate"]), f"{name}: the last good payload is the newest"
        version = node["latestVersion"]
        assert instant_ms(version["observedAt"].replace("Z", "+00:00")) == instant_ms(f["lastupdate"])
        assert version["vacantSpaces"] == f["availablecapacity"]
        assert version["openingStatus"] == ("closed" if is_closed(f) else "open")
        assert node["totalSpaces"] == f["totalcapacity"]
        assert (node["lat"], node["long"]) == pytest.approx(expected_position(r), abs=1e-7)  # published to 7 decimals (about 1 cm)
        if name in SITE_IRIS:
            assert node["@id"] == SITE_IRIS[name]
        else:
            assert node["@id"].startswith(BASE + "/parking/") and "stad.gent" not in node["@id"]
    label_of = {s["@id"]: s["label"] for s in latest["sites"]}

    # Every window holding a member: found by ?time= with the feed's own lastupdate text
    # (+02:00), and holding exactly the members whose time falls in it.
    starts = sorted({t - t % WINDOW_MS for (_, t) in expected})
    assert len(starts) >= 3
    seen = set()
    for start in starts:
        in_window = {k: v for k, v in expected.items() if start <= k[1] < start + WINDOW_MS}
        probe = texts[max(t for (_, t) in in_window)]
        resp = await client.get("/parking/view", params={"time": probe}, allow_redirects=False)
        assert resp.status == 302, await resp.text()
        location = resp.headers["Location"]
        assert location == f"{BASE}/parking/windows/{utc_text(start)}"
        resp = await client.get(urlsplit(location).path)
        assert resp.status == 200
        doc = await resp.json(content_type=None)
        [stream] = [n for n in doc["@graph"] if n.get("@type") == "EventStream"]
        members = stream.get("member", [])
        got = {
            (label_of[m["isVersionOf"]], instant_ms(m["observedAt"].replace("Z", "+00:00"))): (
                m["vacantSpaces"],
                m["openingStatus"],
            )
            for m in members
        }
        assert len(got) == len(members), "a member appears twice on its page"
        assert got == in_window, utc_text(start)
        seen |= set(got)
    assert seen == set(expected)


async def test_backoff_grows_and_never_exceeds_the_interval(upstream):
    # retries 5 from 1 s: 1, 2, 4, 8, 16 s uncapped; the interval (4 s) caps the last ones.
    config = feed_config(upstream.url, interval="4s", retries=5, backoff="1s")
    feed = config.feeds[0]
    assert feed.backoff * 2 ** (feed.retries - 1) > feed.interval, "the cap must matter in this test"
    clock = FakeClock("2022-07-15T11:42:00Z")
    store = DatasetStore("parking", WINDOW_MS, clock=clock)
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    poller = Poller(create_adapter(feed), store, clock=clock, sleep=fake_sleep)
    async with aiohttp.ClientSession() as session:
        for poll in range(3):
            upstream.serve(*[("status", 500)] * (feed.retries + 1))
            delays.clear()
            assert await poller.poll_once(session) is None
            assert not upstream.script
            assert len(delays) == feed.retries
            check_backoff(delays, feed.interval, feed.backoff)
            assert max(delays) <= feed.interval
            assert poller.status.consecutive_failures == poll + 1
        assert "HTTP 500" in poller.status.last_error
        assert len(upstream.requests) == 3 * (feed.retries + 1)
    assert store.member_count == 0 and poller.status.stale(clock())
