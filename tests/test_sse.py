"""Live push (``/{ds}/events``): members stored after a client connected arrive as JSON-LD events,
in order, with increasing ids; resuming with Last-Event-ID loses and repeats nothing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from pyld import jsonld

from ldf_server.app import create_app
from ldf_server.http import events as events_module
from ldf_server.records import Member
from tests.support.rdfcheck import frozen_loader, undefined_terms
from tests.support.seeding import BASE, make_config, seeded_state
from tests.test_push import count, post, push_client, push_config  # noqa: F401 (fixtures)

HEARTBEAT = 0.2
TIMEOUT = 5.0


@pytest.fixture
def config():
    return make_config(sse_heartbeat=HEARTBEAT, sse_buffer=20)


@pytest.fixture
def state(config, clock):
    return seeded_state(config, clock)


@pytest.fixture
async def client(aiohttp_client, config, state):
    return await aiohttp_client(create_app(config, state=state, run_feeds=False))


class EventReader:
    """Parses a text/event-stream response into events (dicts of its fields) and comments."""

    def __init__(self, resp) -> None:  # type: ignore[no-untyped-def]
        self.resp = resp
        self.comments: list[str] = []

    async def next(self, *, skip_heartbeats: bool = True) -> dict[str, str]:
        return await asyncio.wait_for(self._next(skip_heartbeats), TIMEOUT)

    async def _next(self, skip_heartbeats: bool) -> dict[str, str]:
        fields: dict[str, str] = {}
        while True:
            raw = await self.resp.content.readline()
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode("utf-8").rstrip("\n")
            if line == "":
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                if not skip_heartbeats:
                    return {"comment": line[1:].strip()}
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")

    async def members(self, n: int) -> list[dict[str, str]]:
        return [await self.next() for _ in range(n)]


async def open_stream(client, path: str = "/parking/events", headers=None) -> EventReader:  # type: ignore[no-untyped-def]
    resp = await client.get(path, headers=headers or {})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    reader = EventReader(resp)
    first = await reader.next()
    assert first == {"retry": str(events_module.RETRY_MS)}
    return reader


def new_members(state, n: int, *, offset_s: int = 0) -> list[Member]:  # type: ignore[no-untyped-def]
    """``n`` new versions of the seeded sites, after everything the store holds."""
    store = state.streams["parking"].store
    sites = sorted(store.latest)
    now_ms = int(state.clock() * 1000)
    out = []
    for i in range(n):
        template = store.newest(sites[i % len(sites)])
        out.append(replace(template, time=now_ms + (offset_s + i + 1) * 1000))
    return out


def member_iri(state, m: Member) -> str:  # type: ignore[no-untyped-def]
    return state.urls.member("parking", m.site, m.series, m.time)


def check_member_event(event: dict[str, str], state) -> str:  # type: ignore[no-untyped-def]
    """Valid JSON-LD with the context by reference; returns the member's IRI."""
    assert event["event"] == "member"
    doc = json.loads(event["data"])
    assert doc["@context"] == state.urls.context()
    assert not undefined_terms({k: v for k, v in doc.items() if k != "@context"})
    expanded = jsonld.expand(doc, {"documentLoader": frozen_loader})
    [node] = expanded
    assert node["@id"] == doc["@id"]
    assert len(node) > 2, "the member lost its properties on expansion"
    quads = jsonld.to_rdf(doc, {"format": "application/n-quads", "documentLoader": frozen_loader})
    assert doc["@id"] in quads
    return doc["@id"]


async def test_members_stored_after_connecting_arrive_in_order_as_json_ld(client, state):
    reader = await open_stream(client)
    resp = reader.resp
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Accel-Buffering"] == "no"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    store = state.streams["parking"].store
    before = store.sequence
    first, second = new_members(state, 3), new_members(state, 2, offset_s=10)
    assert store.add(first).added == 3
    await asyncio.sleep(0)
    assert store.add(second).added == 2
    got = await reader.members(5)
    assert [check_member_event(e, state) for e in got] == [member_iri(state, m) for m in first + second]
    ids = [int(e["id"]) for e in got]
    assert ids == list(range(before + 1, before + 6))
    # a resend is no new member: no event
    store.add(first)
    assert (await reader.next(skip_heartbeats=False)) == {"comment": "heartbeat"}


async def test_resuming_with_last_event_id_loses_and_repeats_nothing(client, state):
    store = state.streams["parking"].store
    batches = [new_members(state, 3, offset_s=10 * i) for i in range(4)]
    reader = await open_stream(client)
    store.add(batches[0])
    seen = await reader.members(3)
    reader.resp.close()  # the client goes away
    store.add(batches[1])
    store.add(batches[2])
    last = seen[-1]["id"]
    reader = await open_stream(client, headers={"Last-Event-ID": last})
    store.add(batches[3])
    seen += await reader.members(9)
    iris = [check_member_event(e, state) for e in seen]
    expected = [member_iri(state, m) for b in batches for m in b]
    assert iris == expected
    assert len(set(iris)) == len(iris) == 12
    ids = [int(e["id"]) for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == 12 and ids[-1] - ids[0] == 11
    assert all(e["event"] == "member" for e in seen)


async def test_last_event_id_query_parameter_for_browsers(client, state):
    store = state.streams["parking"].store
    members = new_members(state, 4)
    store.add(members)
    start = store.sequence - 4
    reader = await open_stream(client, f"/parking/events?lastEventId={start + 1}")
    got = await reader.members(3)
    assert [e["id"] for e in got] == [str(start + 2), str(start + 3), str(start + 4)]
    assert [check_member_event(e, state) for e in got] == [member_iri(state, m) for m in members[1:]]
    # the header wins over the parameter
    reader = await open_stream(client, f"/parking/events?lastEventId={start}", headers={"Last-Event-ID": str(start + 3)})
    [event] = await reader.members(1)
    assert event["id"] == str(start + 4)


async def test_heartbeats_keep_an_idle_stream_open(client):
    reader = await open_stream(client)
    for _ in range(2):
        assert (await reader.next(skip_heartbeats=False)) == {"comment": "heartbeat"}


async def test_a_gap_event_when_resuming_from_an_id_older_than_the_buffer(client, state):
    store = state.streams["parking"].store
    start = store.sequence
    store.add(new_members(state, 30))  # the buffer holds the newest 20
    reader = await open_stream(client, headers={"Last-Event-ID": str(start + 5)})
    gap = await reader.next()
    assert gap["event"] == "gap" and "id" not in gap
    first = json.loads(gap["data"])["firstAvailable"]
    assert first == start + 11
    got = await reader.members(20)
    assert [int(e["id"]) for e in got] == list(range(first, first + 20))
    # an id from before a restart (higher than any known): a gap, then what there is
    reader = await open_stream(client, headers={"Last-Event-ID": str(start + 1000)})
    assert (await reader.next())["event"] == "gap"
    assert int((await reader.next())["id"]) == first


async def test_unknown_dataset_and_bad_ids_are_problems(client):
    resp = await client.get("/nope/events")
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert "nope" in (await resp.json(content_type=None))["detail"]
    resp = await client.get("/parking/events", headers={"Last-Event-ID": "abc"})
    assert resp.status == 400
    assert resp.headers["Content-Type"].startswith("application/problem+json")


async def test_head_answers_at_once(client):
    resp = await asyncio.wait_for(client.head("/parking/events"), TIMEOUT)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")


async def test_pushed_members_arrive_live(push_client, clock):  # noqa: F811
    reader = await open_stream(push_client, "/crowds/events")
    resp = await post(push_client, "/crowds/push/counters-a", count(clock, n=17))
    assert resp.status == 200, await resp.text()
    [event] = await reader.members(1)
    assert check_member_event(event, push_client.state).startswith(f"{BASE}/crowds/members/gent/korenmarkt/")
    assert json.loads(event["data"])["hasSimpleResult"] == 17


async def test_streams_end_when_the_server_shuts_down(client):
    reader = await open_stream(client)
    started = asyncio.get_running_loop().time()
    await client.app.shutdown()
    with pytest.raises(EOFError):
        while True:
            await reader.next()
    assert asyncio.get_running_loop().time() - started < 2


async def test_the_catalog_lists_the_events_stream(client):
    doc = await (await client.get("/", headers={"Accept": "application/ld+json"})).json(content_type=None)
    [dataset] = doc["dataset"]
    [dist] = [d for d in dataset["distribution"] if d["accessURL"] == f"{BASE}/parking/events"]
    assert dist["mediaType"] == "https://www.iana.org/assignments/media-types/text/event-stream"
    assert dist["title"]["en"]


async def test_an_open_stream_does_not_hold_graceful_shutdown(config, state):
    """Through the production runner: stopping it ends the stream at once, not after the timeout."""
    import aiohttp

    from ldf_server.http.limits import start_server

    runner, _site = await start_server(create_app(config, state=state, run_feeds=False), config.server,
                                      port=0, shutdown_timeout=10)
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        resp = await session.get(f"http://127.0.0.1:{port}/parking/events")
        reader = EventReader(resp)
        assert (await reader.next())["retry"]
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(runner.cleanup(), 5)
        assert loop.time() - started < 2
        with pytest.raises((EOFError, aiohttp.ClientError)):
            while True:
                await reader.next()


def test_store_numbers_only_new_members_and_keeps_a_bounded_buffer(state):
    store = state.streams["parking"].store
    start = store.sequence
    members = new_members(state, 25)
    store.add(members[:5])
    store.add(members[:5])  # duplicates: no numbers
    assert store.sequence == start + 5
    assert store.events_after(start + 5) == (None, [])
    assert [m for _, m in store.events_after(start + 2)[1]] == members[2:5]
    store.add(members[5:])
    assert len(store.recent) == 20 and store.recent[0][0] == start + 6
    gap, items = store.events_after(start)
    assert gap == start + 6 and [s for s, _ in items] == list(range(start + 6, start + 26))


def test_ids_of_an_earlier_process_read_as_a_gap_in_a_later_one():
    """A restart must never resume a client with other members under ids it already saw."""
    from ldf_server.records import parking_member
    from ldf_server.store.memory import DatasetStore
    from ldf_server.timeutil import parse_instant
    from tests.support.clock import FakeClock

    def process(started: str) -> DatasetStore:
        store = DatasetStore("parking", 300_000, clock=FakeClock(started))
        t = parse_instant("2026-03-31T10:00:00Z")
        store.add([parking_member(f"gent/p{i}", t, i) for i in range(50)])  # a backfill's worth of events
        return store

    first = process("2026-03-31T12:00:00Z")
    later = process("2026-03-31T12:00:05Z")  # restarted five seconds later
    old_id = first.recent[-1][0]
    assert later.recent[0][0] > old_id, "a later process numbers above every id an earlier one gave out"
    gap, items = later.events_after(old_id - 10)
    assert gap == later.recent[0][0] and items == list(later.recent), "the client is told it missed members"
    assert len(str(later.sequence)) <= 16, "ids stay exact as JavaScript numbers"
