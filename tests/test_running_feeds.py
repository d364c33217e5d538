"""A server with feeds running: one feed failing never stops the others or the server."""

from __future__ import annotations

import asyncio
import socket

from ldf_server.app import create_app
from tests.support.seeding import make_config, parking_dataset, simulator_feed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_dead_feed_is_reported_while_the_others_keep_serving(aiohttp_client):
    dead = {
        "id": "dead",
        "adapter": "ghent-ods-garages",
        "dataset": "parking",
        "interval": "60s",
        "timeout": "1s",
        "retries": 1,
        "backoff": "10ms",
        "options": {"url": f"http://127.0.0.1:{free_port()}/records"},
    }
    sim = simulator_feed(backfill="1h") | {"interval": "1s"}
    config = make_config(datasets=[parking_dataset(window="1m")], feeds=[sim, dead])
    client = await aiohttp_client(create_app(config))
    for _ in range(100):  # start-up runs after the port opens: data routes answer 503 until ready
        if (await client.get("/health/ready")).status == 200:
            break
        await asyncio.sleep(0.05)
    first = await (await client.get("/parking/latest")).json(content_type=None)
    assert first["sites"], "backfill happened before the server said it was ready"

    ready = None
    for _ in range(100):
        ready = await (await client.get("/health/ready")).json()
        feeds = {f["feed"]: f for f in ready["feeds"]}
        if feeds["dead"]["polls_failed"] >= 1 and feeds["sim"]["polls_ok"] >= 2:
            break
        await asyncio.sleep(0.1)
    assert ready is not None
    feeds = {f["feed"]: f for f in ready["feeds"]}
    assert feeds["dead"]["polls_failed"] >= 1
    assert feeds["dead"]["last_error"].startswith("FeedError: ClientConnectorError"), feeds["dead"]["last_error"]
    assert feeds["dead"]["stale"] is True and feeds["dead"]["last_success"] is None
    assert feeds["sim"]["polls_ok"] >= 2 and feeds["sim"]["stale"] is False
    assert ready["status"] == "degraded" and ready["stale_feeds"] == ["dead"]
    # The server still answers, with data newer than the backfill.
    later = await (await client.get("/parking/latest")).json(content_type=None)
    newest = max(s["latestVersion"]["observedAt"] for s in later["sites"])
    assert newest > max(s["latestVersion"]["observedAt"] for s in first["sites"])


async def test_liveness(aiohttp_client):
    config = make_config()
    client = await aiohttp_client(create_app(config))
    resp = await client.get("/health/live")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"


async def test_wake_polls_at_once_instead_of_waiting_for_the_interval(aiohttp_client):
    sim = simulator_feed(backfill="1h") | {"interval": "1h"}
    config = make_config(datasets=[parking_dataset(window="1m")], feeds=[sim])
    app = create_app(config)
    client = await aiohttp_client(app)
    from ldf_server.http.state import STATE

    poller = app[STATE].pollers[0]
    for _ in range(50):
        if poller.status.polls_ok >= 1:
            break
        await asyncio.sleep(0.05)
    assert poller.status.polls_ok == 1
    poller.wake()
    for _ in range(50):
        if poller.status.polls_ok >= 2:
            break
        await asyncio.sleep(0.05)
    assert poller.status.polls_ok == 2, "wake() should trigger a poll long before the 1 h interval"
    assert (await client.get("/health/live")).status == 200


async def test_retries_stop_before_the_next_poll_is_due():
    """Backoff is capped per step and the whole poll by the interval: a flaky feed never piles up."""
    from ldf_server.adapters.poller import Poller
    from ldf_server.adapters.registry import create_adapter
    from ldf_server.store.memory import DatasetStore
    from tests.support.clock import FakeClock

    config = make_config(feeds=[{"id": "dead", "adapter": "ghent-ods-garages", "dataset": "parking", "interval": "10s",
                                 "timeout": "1s", "retries": 10, "backoff": "2s",
                                 "options": {"url": f"http://127.0.0.1:{free_port()}/x"}}])
    clock = FakeClock("2026-03-31T12:00:00Z")
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # time passes while the poller waits
        slept.append(seconds)
        clock.advance(seconds)

    poller = Poller(create_adapter(config.feeds[0]), DatasetStore("parking", 300_000, clock=clock), clock=clock, sleep=sleep)
    import aiohttp

    async with aiohttp.ClientSession() as session:
        assert await poller.poll_once(session) is None
    assert sum(slept) <= 10, slept
    assert len(slept) < 10, "it gave up before using all ten retries"


async def test_probes_see_starting_while_the_log_is_replayed_and_data_waits(aiohttp_client, tmp_path, monkeypatch):
    import threading

    import ldf_server.app as app_module

    release = threading.Event()
    real_replay = app_module._replay

    def slow_replay(state, stop):  # type: ignore[no-untyped-def]
        assert release.wait(10), "the test never released the replay"
        real_replay(state, stop)

    monkeypatch.setattr(app_module, "_replay", slow_replay)
    config = make_config(datasets=[parking_dataset(window="1m")], feeds=[simulator_feed(backfill="1h")],
                         data_dir=str(tmp_path))
    client = await aiohttp_client(create_app(config))  # the port is open while the replay waits

    assert (await client.get("/health/live")).status == 200
    ready = await client.get("/health/ready")
    assert ready.status == 503 and (await ready.json())["status"] == "starting"
    latest = await client.get("/parking/latest")
    assert latest.status == 503 and latest.headers["Content-Type"].startswith("application/problem+json")
    assert latest.headers["Retry-After"] == "5" and "starting" in (await latest.json(content_type=None))["detail"]
    assert (await client.get("/metrics")).status == 200
    assert (await client.get("/context.jsonld")).status == 200

    release.set()
    for _ in range(200):
        if (await client.get("/health/ready")).status == 200:
            break
        await asyncio.sleep(0.05)
    assert (await client.get("/health/ready")).status == 200
    latest = await client.get("/parking/latest")
    assert latest.status == 200 and (await latest.json(content_type=None))["sites"]


async def test_a_failed_start_up_is_logged_and_reported_not_left_starting(aiohttp_client, tmp_path, caplog):
    (tmp_path / "parking" / "days" / "2026-03-31.log").mkdir(parents=True)  # a log file that cannot be read
    config = make_config(datasets=[parking_dataset(window="1m")], feeds=[simulator_feed(backfill="1h")],
                         data_dir=str(tmp_path))
    app = create_app(config)
    fatal = []
    from ldf_server.http.state import STATE

    app[STATE].on_fatal = lambda: fatal.append(True)
    with caplog.at_level("ERROR", logger="ldf_server.app"):
        client = await aiohttp_client(app)
        for _ in range(100):
            if fatal:
                break
            await asyncio.sleep(0.05)
    assert fatal == [True], "the command line is told to stop the process"
    assert any("start-up failed" in r.getMessage() for r in caplog.records)
    ready = await client.get("/health/ready")
    body = await ready.json()
    assert ready.status == 503 and body["status"] == "failing"
    assert body["checks"]["startup"]["ok"] is False and "IsADirectoryError" in body["checks"]["startup"]["detail"]
    assert (await client.get("/parking/latest")).status == 503


async def test_shutdown_during_replay_waits_for_the_replay_to_stop(tmp_path, monkeypatch):
    import threading

    import ldf_server.app as app_module
    from ldf_server.app import build_state

    entered, finished = threading.Event(), threading.Event()

    def replay(state, stop):  # type: ignore[no-untyped-def]
        entered.set()
        assert stop.wait(10), "the replay was never told to stop"
        finished.set()

    monkeypatch.setattr(app_module, "_replay", replay)
    config = make_config(feeds=[simulator_feed(backfill="1h")], data_dir=str(tmp_path))
    task = asyncio.create_task(app_module._load_and_poll(build_state(config)))
    while not entered.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert finished.is_set(), "the data directory's lock must not be released while the replay still reads"


def test_a_stopped_replay_ends_early(tmp_path, monkeypatch):
    import threading

    import ldf_server.app as app_module

    from ldf_server.app import build_state, open_journals
    from tests.support.clock import FakeClock

    config = make_config(feeds=[simulator_feed(backfill="6h")], data_dir=str(tmp_path))
    clock = FakeClock("2026-03-31T12:00:00Z")
    writer = build_state(config, clock=clock)
    open_journals(writer, tmp_path)
    for poller in writer.pollers:
        poller.backfill()
    stored = writer.streams["parking"].store.member_count
    writer.streams["parking"].store.journal.close()
    monkeypatch.setattr(app_module, "STOP_CHECK_EVERY", 10)
    assert stored > 10, "precondition: more records than one stop check"

    stop = threading.Event()
    stop.set()
    reader = build_state(config, clock=clock)
    assert open_journals(reader, tmp_path, stop) < stored
    reader.streams["parking"].store.journal.close()
    again = build_state(config, clock=clock)
    assert open_journals(again, tmp_path) == stored
    again.streams["parking"].store.journal.close()
