"""Each parking adapter polled against a fake upstream on 127.0.0.1, through the real Poller.

The fake upstream serves the fixture time steps in order, with an HTTP 500 and a garbage
payload between them. After each poll the store must hold exactly the members of the good
payloads served so far (expectations read independently from the fixture files, see
tests/support/parking_feeds.py), and a failed poll must change nothing.
"""

from __future__ import annotations

import base64
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import aiohttp
import pytest
from aiohttp import web

from ldf_server.adapters.poller import Poller
from ldf_server.adapters.registry import create_adapter
from ldf_server.config import config_from_dict
from ldf_server.store.memory import DatasetStore
from tests.support import parking_feeds as feeds
from tests.support.clock import FakeClock
from tests.support.parking_feeds import Expected, raw
from tests.support.seeding import parking_dataset

MAX_MS = 253402300799999
USER, PASSWORD = "leuven-api", "pa55-W0rd:with/odd chars"  # the secret that must never show
USER_ENV, PASSWORD_ENV = "LDF_TEST_IXOR_USER", "LDF_TEST_IXOR_PASSWORD"


class Upstream:
    """Serves, per path, a queue of responses: bytes (200) or an int (that status)."""

    def __init__(self, content_type: str, basic_auth: str | None = None) -> None:
        self.content_type = content_type
        self.basic_auth = basic_auth
        self.queues: dict[str, list[bytes | int]] = {}
        self.hits: Counter[str] = Counter()
        self.refused = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        if self.basic_auth is not None and request.headers.get("Authorization") != self.basic_auth:
            self.refused += 1
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="ixor"'})
        self.hits[request.path] += 1
        queue = self.queues.get(request.path)
        if not queue:
            return web.Response(status=404, text="nothing more to serve")
        item = queue.pop(0)
        if isinstance(item, int):
            return web.Response(status=item, text="upstream trouble")
        return web.Response(body=item, content_type=self.content_type)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode("latin-1")).decode()


@dataclass
class Case:
    adapter: str
    feed_dir: str
    steps: list[str]  # good payloads, served in this order
    garbage: str  # served after an HTTP 500, between the first and second step
    start: str  # FakeClock start: just after the fixture times
    expect: Callable[[bytes, int], Expected]  # (payload, poll time ms) → expected members
    content_type: str = "application/json"
    options: Callable[[str], dict] = lambda base: {"url": base + "/feed"}
    paths: Callable[[], dict[str, list[bytes | int]]] | None = None  # other paths' queues
    auth: bool = False


CASES = [
    Case(
        "ghent-datex2",
        "ghent_datex2",
        ["status_t1.xml", "status_t2.xml", "status_t3_bad_records.xml"],
        "status_truncated.xml",
        "2017-11-08T06:05:00Z",
        lambda payload, _: feeds.datex2(raw("ghent_datex2", "table.xml"), payload),
        content_type="application/xml",
        options=lambda base: {"table_url": base + "/table", "status_url": base + "/feed"},
        paths=lambda: {"/table": [raw("ghent_datex2", "table.xml")]},
    ),
    Case(
        "ghent-ods-park-and-ride",
        "ghent_ods_park_and_ride",
        ["t1.json", "t2.json", "bad_records.json"],
        "records_not_list.json",
        "2022-07-15T11:40:00Z",
        lambda payload, _: feeds.ods_park_and_ride(payload),
    ),
    Case(
        "ghent-datatank",
        "ghent_datatank",
        ["t1.json", "t2.json", "bad_records.json"],
        "error_page.html",
        "2019-12-13T15:35:00Z",
        lambda payload, _: feeds.datatank(payload),
    ),
    Case(
        "kortrijk-parko",
        "kortrijk_parko",
        ["t1.xml", "t2.xml", "bad_records.xml"],
        "doctype.xml",
        "2026-03-31T12:00:00.250Z",
        feeds.kortrijk,
        content_type="application/xml",
    ),
    Case(
        "ixor-parkings",
        "ixor_parkings",
        ["t1.json", "t2.json", "bad_records.json"],
        "login_page.html",
        "2026-03-31T12:00:00.750Z",
        feeds.ixor,
        options=lambda base: {
            "url": base + "/feed",
            "city": "leuven",
            "username_env": USER_ENV,
            "password_env": PASSWORD_ENV,
        },
        auth=True,
    ),
]


def make_poller(case: Case, base: str, clock: FakeClock, **feed: object) -> tuple[Poller, DatasetStore, list[float]]:
    raw_feed = {
        "id": "feed",
        "adapter": case.adapter,
        "dataset": "parking",
        "interval": "60s",
        "timeout": "5s",
        "retries": 1,
        "backoff": "1s",
        "options": case.options(base),
        **feed,
    }
    config = config_from_dict({"datasets": [parking_dataset()], "feeds": [raw_feed]}, env={})
    dataset = config.datasets[0]
    store = DatasetStore(dataset.id, int(dataset.window * 1000), pilot=dataset.pilot, clock=clock)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    return Poller(create_adapter(config.feeds[0]), store, clock=clock, sleep=sleep), store, delays


def base_url(server) -> str:  # type: ignore[no-untyped-def]
    return str(server.make_url("")).rstrip("/")


def stored(store: DatasetStore) -> set[tuple[str, int, int]]:
    return {(store.sites[m.site].label, m.time, m.values["vacantSpaces"]) for m in store.members_between(0, MAX_MS)}


def snapshot(store: DatasetStore) -> tuple:
    return (stored(store), dict(store.sites), store.member_count, store.version)


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


@pytest.mark.parametrize("case", CASES, ids=[c.adapter for c in CASES])
async def test_the_store_holds_exactly_the_good_payloads_served_so_far(case, aiohttp_server, credentials):
    upstream = Upstream(case.content_type, basic(USER, PASSWORD) if case.auth else None)
    payloads = [raw(case.feed_dir, name) for name in case.steps]
    upstream.queues["/feed"] = [payloads[0], 500, raw(case.feed_dir, case.garbage), payloads[1], payloads[2]]
    upstream.queues.update(case.paths() if case.paths else {})
    server = await aiohttp_server(upstream.app())
    clock = FakeClock(case.start)
    poller, store, delays = make_poller(case, base_url(server), clock)

    expected: set[tuple[str, int, int]] = set()
    async with aiohttp.ClientSession() as session:
        for step, payload in enumerate(payloads):
            if step == 1:
                # A failed poll: HTTP 500, then (after one backoff) a garbage payload. Nothing changes.
                before = snapshot(store)
                clock.advance(60)
                assert await poller.poll_once(session) is None
                assert snapshot(store) == before
                assert poller.status.polls_failed == 1 and poller.status.last_error.startswith("PayloadError")
                assert len(delays) == 1 and 0.5 <= delays[0] <= 1.0, delays  # backoff 1s with jitter
            clock.advance(60)
            result = await poller.poll_once(session)
            assert result is not None, poller.status.last_error
            exp = case.expect(payload, int(clock() * 1000))
            expected |= exp.members()
            assert stored(store) == expected
            assert store.member_count == len(expected)
            assert result.added == len(exp.good)
            assert result.rejected_total == exp.unreadable + exp.impossible
    assert poller.status.polls_ok == 3 and poller.status.polls_failed == 1
    assert poller.status.records_rejected > 0  # the last step has bad records
    assert all(not queue for queue in upstream.queues.values()), "every prepared response was served once"
    assert upstream.refused == 0


def datex2_case() -> Case:
    return CASES[0]


async def test_datex2_fetches_the_table_once_then_at_most_every_table_refresh(aiohttp_server):
    case = datex2_case()
    upstream = Upstream("application/xml")
    status = raw("ghent_datex2", "status_t1.xml")
    upstream.queues["/table"] = [500, raw("ghent_datex2", "table.xml"), raw("ghent_datex2", "table_t2.xml"), 500,
                                 raw("ghent_datex2", "table_doctype.xml")]
    upstream.queues["/feed"] = [status] * 7
    server = await aiohttp_server(upstream.app())
    clock = FakeClock("2017-11-08T06:05:00Z")
    poller, store, _ = make_poller(case, base_url(server), clock, retries=0)
    poller.adapter.clock = clock  # type: ignore[attr-defined]  # the table's refresh follows the test's time

    def capacity() -> int | None:
        return next(s.capacity for s in store.sites.values() if s.label == "P07 Sint-Michiels")

    async with aiohttp.ClientSession() as session:
        # No table yet and the table fails: the poll fails, naming the table; the status is not even asked.
        assert await poller.poll_once(session) is None
        assert poller.status.last_error == "FeedError: parking table: HTTP 500 from upstream"
        assert (upstream.hits["/table"], upstream.hits["/feed"]) == (1, 0) and stored(store) == set()
        # Without a good table every poll tries again.
        clock.advance(60)
        assert await poller.poll_once(session) is not None
        assert (upstream.hits["/table"], upstream.hits["/feed"]) == (2, 1) and capacity() == 450
        # Within the hour: status only.
        clock.advance(3000)
        assert await poller.poll_once(session) is not None
        assert (upstream.hits["/table"], upstream.hits["/feed"]) == (2, 2)
        # An hour after the last try: the new table is read (P07 now has 465 spaces).
        clock.advance(600)
        assert await poller.poll_once(session) is not None
        assert upstream.hits["/table"] == 3 and capacity() == 465
        # A failed refresh keeps the last good table, and the poll still succeeds ...
        clock.advance(3600)
        assert await poller.poll_once(session) is not None
        assert upstream.hits["/table"] == 4 and capacity() == 465
        # ... and is not retried on the next poll, but an hour later (a refused table is kept out too).
        clock.advance(60)
        assert await poller.poll_once(session) is not None
        assert upstream.hits["/table"] == 4
        clock.advance(3600)
        assert await poller.poll_once(session) is not None
        assert upstream.hits["/table"] == 5 and capacity() == 465
    assert upstream.hits["/feed"] == 6
    assert len(stored(store)) == 6  # one status instant throughout: six members, re-served ones are duplicates


async def test_datex2_status_failure_names_the_status_document(aiohttp_server):
    case = datex2_case()
    upstream = Upstream("application/xml")
    upstream.queues["/table"] = [raw("ghent_datex2", "table.xml")]
    upstream.queues["/feed"] = [503]
    server = await aiohttp_server(upstream.app())
    clock = FakeClock("2017-11-08T06:05:00Z")
    poller, store, _ = make_poller(case, base_url(server), clock, retries=0)
    async with aiohttp.ClientSession() as session:
        assert await poller.poll_once(session) is None
    assert poller.status.last_error == "FeedError: parking status: HTTP 503 from upstream"
    assert stored(store) == set()


def ixor_case() -> Case:
    return CASES[-1]


@pytest.mark.parametrize(("unset", "empty"), [(USER_ENV, False), (PASSWORD_ENV, False), (PASSWORD_ENV, True)])
async def test_ixor_missing_credentials_fail_the_poll_without_revealing_the_password(
    unset, empty, aiohttp_server, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    if empty:  # an empty password is as unusable as none (HttpAdapter would send it)
        monkeypatch.setenv(unset, "")
    else:
        monkeypatch.delenv(unset)
    upstream = Upstream("application/json", basic(USER, PASSWORD))
    upstream.queues["/feed"] = [raw("ixor_parkings", "t1.json")]
    server = await aiohttp_server(upstream.app())
    poller, store, _ = make_poller(ixor_case(), base_url(server), FakeClock("2026-03-31T12:00:00Z"))
    async with aiohttp.ClientSession() as session:
        assert await poller.poll_once(session) is None
    error = poller.status.last_error
    assert error == f"FeedError: environment variable {unset} (HTTP Basic credentials) is not set or empty"
    assert upstream.refused == 0 and not upstream.hits, "no request without complete credentials"
    assert stored(store) == set()
    for text in (error, caplog.text):
        assert PASSWORD not in text and "pa55" not in text
    assert unset in caplog.text  # the log says which variable, so an operator can fix it


async def test_ixor_wrong_credentials_are_refused_by_the_upstream_and_not_revealed(
    aiohttp_server, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD + "-old")
    upstream = Upstream("application/json", basic(USER, PASSWORD))
    upstream.queues["/feed"] = [raw("ixor_parkings", "t1.json")]
    server = await aiohttp_server(upstream.app())
    clock = FakeClock("2026-03-31T12:00:00Z")
    poller, store, _ = make_poller(ixor_case(), base_url(server), clock, retries=0)
    async with aiohttp.ClientSession() as session:
        assert await poller.poll_once(session) is None
        assert poller.status.last_error == "FeedError: HTTP 401 from upstream"
        assert upstream.refused == 1 and stored(store) == set()
        assert PASSWORD not in poller.status.last_error and "pa55" not in caplog.text
        # With the right password the same upstream answers.
        monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
        assert await poller.poll_once(session) is not None
    assert len(stored(store)) == 6


@pytest.mark.parametrize("case", CASES, ids=[c.adapter for c in CASES])
async def test_the_served_pages_show_exactly_what_was_polled(case, aiohttp_server, aiohttp_client, credentials):
    """Through the whole server: every window page and ``latest`` show exactly the good
    records of the payloads polled so far (members read back from the served JSON-LD)."""
    from ldf_server.app import build_state, create_app
    from tests.support.crawl import every_document
    from tests.support.stream_checks import assert_valid_documents
    from tests.support.ghent import instant_ms

    upstream = Upstream(case.content_type, basic(USER, PASSWORD) if case.auth else None)
    payloads = [raw(case.feed_dir, name) for name in case.steps]
    upstream.queues["/feed"] = list(payloads)
    upstream.queues.update(case.paths() if case.paths else {})
    server = await aiohttp_server(upstream.app())
    raw_feed = {"id": "feed", "adapter": case.adapter, "dataset": "parking", "interval": "60s", "timeout": "5s",
                "retries": 0, "options": case.options(base_url(server))}
    config = config_from_dict({"datasets": [parking_dataset()], "feeds": [raw_feed]}, env={})
    clock = FakeClock(case.start)
    state = build_state(config, clock=clock)
    state.ready = True
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    [poller] = state.pollers

    expected: set[tuple[str, int, int]] = set()
    newest: dict[str, tuple[int, int]] = {}
    async with aiohttp.ClientSession() as session:
        for payload in payloads:
            clock.advance(60)
            assert await poller.poll_once(session) is not None, poller.status.last_error
            exp = case.expect(payload, int(clock() * 1000))
            expected |= exp.members()
            docs = await every_document(client, "parking")

            latest = orjson_loads(docs["/parking/latest"])
            label_of = {s["@id"]: s["label"] for s in latest["sites"]}
            served: set[tuple[str, int, int]] = set()
            for path, body in docs.items():
                if not path.startswith("/parking/windows/"):
                    continue
                doc = orjson_loads(body)
                [stream] = [n for n in doc["@graph"] if n.get("@type") == "EventStream"]
                for m in stream.get("member", []):
                    served.add((label_of.get(m["isVersionOf"], m["isVersionOf"]),
                                instant_ms(m["observedAt"].replace("Z", "+00:00")), m["vacantSpaces"]))
            assert expected and served == expected

            for label, t, vacant in expected:
                if t >= newest.get(label, (-1, 0))[0]:
                    newest[label] = (t, vacant)
            shown = {s["label"]: (instant_ms(s["latestVersion"]["observedAt"].replace("Z", "+00:00")),
                                  s["latestVersion"]["vacantSpaces"])
                     for s in latest["sites"] if "latestVersion" in s}
            assert shown == newest
    assert_valid_documents("parking", docs, expected_members=len(served))  # pyld = rdflib, SHACL, on the last crawl


def orjson_loads(body: bytes):  # type: ignore[no-untyped-def]
    import orjson

    return orjson.loads(body)
