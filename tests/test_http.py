"""HTTP behaviour: discoverability, caching headers, 304s, ?time= search, errors."""

from __future__ import annotations

import gzip

import pytest

from ldf_server.app import create_app
from ldf_server.records import parking_member
from ldf_server.timeutil import parse_instant
from tests.support.clock import FakeClock
from tests.support.seeding import FLEMISH_LICENCES, BASE, make_config, seeded_state

IMMUTABLE = "public, max-age=31536000, immutable"
LDES_CLIENT_ACCEPT = "application/n-quads, application/trig;q=0.95, application/ld+json;q=0.9, application/n-triples;q=0.8, text/turtle;q=0.6"


def local(url: str) -> str:
    assert url.startswith(BASE), url
    return url[len(BASE):]


def node(doc: dict, type_: str) -> dict:
    return next(n for n in doc["@graph"] if n.get("@type") == type_)


async def assert_problem(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    body = await resp.json(content_type=None)
    assert body["status"] == status and body["title"] and body.get("detail")
    return body


async def test_everything_is_discoverable_from_the_root(client, state):
    resp = await client.get("/")
    assert resp.status == 200
    catalog = await resp.json(content_type=None)
    assert catalog["@type"] == "Catalog"
    [dataset] = catalog["dataset"]
    assert dataset["license"] in FLEMISH_LICENCES
    assert dataset["title"]["en"] and dataset["description"]["nl"]
    stream_url = next(d["accessURL"] for d in dataset["distribution"] if d["accessService"]["conformsTo"] if "accessService" in d)
    stream = await (await client.get(local(stream_url))).json(content_type=None)
    es = node(stream, "EventStream")
    assert es["@id"] == stream_url and es["license"] == dataset["license"]
    view = await (await client.get(local(es["view"]))).json(content_type=None)
    root = node(view, "Node")
    assert root["@id"] == es["view"]
    days = sorted({r["node"] for r in root["relation"]})
    seen_members = set()
    for day_url in days:
        day = await (await client.get(local(day_url))).json(content_type=None)
        assert node(day, "Node")["@id"] == day_url
        for window_url in sorted({r["node"] for r in node(day, "Node")["relation"]}):
            resp = await client.get(local(window_url))
            assert resp.status == 200
            page = await resp.json(content_type=None)
            assert node(page, "Node")["@id"] == window_url, "a page's IRI must be exactly the URL fetched"
            seen_members |= {m["@id"] for m in node(page, "EventStream")["member"]}
    assert len(seen_members) == state.streams["parking"].store.member_count


async def test_relations_come_in_pairs_with_bounds(client):
    view = await (await client.get("/parking/view")).json(content_type=None)
    relations = node(view, "Node")["relation"]
    by_target: dict[str, dict] = {}
    for r in relations:
        assert r["path"] == "http://www.w3.org/ns/prov#generatedAtTime"
        assert r["value"].endswith("Z")
        by_target.setdefault(r["node"], {})[r["@type"]] = r["value"]
    for target, kinds in by_target.items():
        assert set(kinds) == {"GreaterThanOrEqualToRelation", "LessThanRelation"}, target
        assert parse_instant(kinds["GreaterThanOrEqualToRelation"]) < parse_instant(kinds["LessThanRelation"])


async def test_latest_reads_as_plain_json(client, state):
    resp = await client.get("/latest".join(["/parking", ""]))
    assert resp.status == 200
    doc = await resp.json(content_type=None)
    store = state.streams["parking"].store
    assert doc["totalItems"] == len(doc["sites"]) == len(store.sites)
    for site in doc["sites"]:
        assert isinstance(site["label"], str) and isinstance(site["totalSpaces"], int)
        latest = site["latestVersion"]
        key = latest["@id"].split("/members/")[1].rsplit("/", 1)[0]
        member = store.newest(key)
        assert latest["vacantSpaces"] == member.values["vacantSpaces"]
        assert parse_instant(latest["observedAt"]) == member.time
        assert 0 <= latest["vacantSpaces"] <= site["totalSpaces"]


async def test_context_is_served_at_a_stable_url(client):
    resp = await client.get("/context.jsonld")
    assert resp.status == 200 and "max-age=" in resp.headers["Cache-Control"]
    body = await resp.json(content_type=None)
    assert body["@context"]["member"]["@id"] == "tree:member"
    assert "@vocab" not in body["@context"]


async def test_cache_headers_per_kind(client, state, clock):
    store = state.streams["parking"].store
    store.expect_update("sim", clock.now + 17.2)
    closed = await client.get("/parking/windows/2026-03-31T11:45:00Z")  # ended 11:46 with grace; now 12:07
    assert closed.headers["Cache-Control"] == IMMUTABLE
    open_ = await client.get("/parking/windows/2026-03-31T12:00:00Z")
    for resp in (open_, await client.get("/parking/latest"), await client.get("/parking/view"), await client.get("/parking")):
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "public, max-age=18, s-maxage=17", resp.url
    for resp in (closed, open_):
        assert resp.headers["Vary"] == "Accept, Accept-Encoding"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert resp.headers["ETag"].startswith('"') and resp.headers["Last-Modified"].endswith("GMT")
        assert resp.headers["Content-Type"] == "application/ld+json"
    page = await closed.json(content_type=None)
    assert node(page, "Node")["immutable"] is True
    assert "immutable" not in node(await open_.json(content_type=None), "Node")


async def test_window_becomes_immutable_once_closed(client, clock):
    url = "/parking/windows/2026-03-31T12:00:00Z"
    assert "immutable" not in (await client.get(url)).headers["Cache-Control"]
    clock.set("2026-03-31T12:15:59Z")  # end of window, grace not over
    assert "immutable" not in (await client.get(url)).headers["Cache-Control"]
    clock.set("2026-03-31T12:16:00Z")
    assert (await client.get(url)).headers["Cache-Control"] == IMMUTABLE


async def test_conditional_requests_answer_304(client, state, clock):
    for url in ("/parking/latest", "/parking/windows/2026-03-31T11:45:00Z", "/parking/view", "/"):
        first = await client.get(url)
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        again = await client.get(url, headers={"If-None-Match": etag})
        assert again.status == 304 and await again.read() == b""
        assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == first.headers["Cache-Control"]
        assert (await client.get(url, headers={"If-None-Match": f'"nope", W/{etag}'})).status == 304
        assert (await client.get(url, headers={"If-None-Match": '"other"'})).status == 200
        assert (await client.get(url, headers={"If-Modified-Since": modified})).status == 304
        assert (await client.get(url, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})).status == 200


async def test_etag_changes_when_latest_changes(client, state, clock):
    first = await client.get("/parking/latest")
    etag = first.headers["ETag"]
    store = state.streams["parking"].store
    key = sorted(store.sites)[0]
    clock.advance(60)
    added = store.add([parking_member(key, int(clock.now * 1000), 1)])
    assert added.added == 1
    second = await client.get("/parking/latest", headers={"If-None-Match": etag})
    assert second.status == 200 and second.headers["ETag"] != etag
    doc = await second.json(content_type=None)
    assert any(s["latestVersion"]["vacantSpaces"] == 1 for s in doc["sites"])


async def test_cached_bytes_are_reused(client, state):
    url = "/parking/windows/2026-03-31T11:45:00Z"
    body = await (await client.get(url)).read()
    hits = state.cache.hits
    again = await (await client.get(url)).read()
    assert again == body and state.cache.hits == hits + 1


async def test_gzip_when_accepted(client):
    url = "/parking/windows/2026-03-31T11:45:00Z"
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    body = await plain.read()
    assert "Content-Encoding" not in plain.headers
    zipped = await client.get(url, headers={"Accept-Encoding": "gzip, deflate"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    raw = await zipped.read()
    assert len(raw) < len(body) and gzip.decompress(raw) == body
    revalidate = await client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert revalidate.status == 304


@pytest.mark.parametrize(
    "instant, window",
    [
        ("2026-03-31T11:45:00Z", "2026-03-31T11:45:00Z"),
        ("2026-03-31T11:59:59.999Z", "2026-03-31T11:45:00Z"),
        ("2026-03-31T12:00:00Z", "2026-03-31T12:00:00Z"),
        ("2026-03-31T13:44:59+02:00", "2026-03-31T11:30:00Z"),
        ("2026-03-31T06:05:00Z", "2026-03-31T06:00:00Z"),
    ],
)
async def test_time_search_redirects_to_canonical_page(client, instant, window):
    resp = await client.get("/parking/view", params={"time": instant}, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == f"{BASE}/parking/windows/{window}"
    page = await client.get(local(resp.headers["Location"]))
    assert page.status == 200


@pytest.mark.parametrize(
    "instant",
    ["1900-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2026-03-31T05:59:59Z", "2026-03-31T12:15:00Z", "3000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"],
)
async def test_time_search_outside_the_stream_is_404(client, instant):
    body = await assert_problem(await client.get("/parking/view", params={"time": instant}, allow_redirects=False), 404)
    assert "20" in body["detail"]  # says where the stream starts or ends


@pytest.mark.parametrize(
    "value",
    ["yesterday", "", "2026-13-01T00:00:00Z", "2026-03-31T12:00:00", "2026-03-31", "12:00", "2026-03-31T25:00:00Z", "x" * 5000, "2026-03-31T12:00:00Z\x00"],
)
async def test_time_search_garbage_is_400(client, value):
    body = await assert_problem(await client.get("/parking/view", params={"time": value}, allow_redirects=False), 400)
    assert body["title"] == "Bad time"


async def test_time_search_needs_exactly_one_time(client):
    await assert_problem(await client.get("/parking/view?time=2026-03-31T11:45:00Z&time=2026-03-31T11:50:00Z"), 400)
    await assert_problem(await client.get("/parking/view?when=2026-03-31T11:45:00Z"), 400)


@pytest.mark.parametrize(
    "now, local_time, expected",
    [
        # Spring forward in Brussels (2026-03-29): 02:00 local does not exist; offsets decide.
        ("2026-03-29T05:00:00Z", "2026-03-29T01:59:59+01:00", "2026-03-29T00:45:00Z"),
        ("2026-03-29T05:00:00Z", "2026-03-29T03:00:00+02:00", "2026-03-29T01:00:00Z"),
        # Fall back (2026-10-25): 02:30 local happens twice, once per offset, on two different pages.
        ("2026-10-25T05:00:00Z", "2026-10-25T02:30:00+02:00", "2026-10-25T00:30:00Z"),
        ("2026-10-25T05:00:00Z", "2026-10-25T02:30:00+01:00", "2026-10-25T01:30:00Z"),
    ],
)
async def test_time_search_on_daylight_saving_dates(aiohttp_client, now, local_time, expected):
    config = make_config()
    state = seeded_state(config, FakeClock(now))
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    resp = await client.get("/parking/view", params={"time": local_time}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].endswith(f"/windows/{expected}")
    page = await (await client.get(local(resp.headers["Location"]))).json(content_type=None)
    members = node(page, "EventStream")["member"]
    assert members and all(parse_instant(expected) <= parse_instant(m["observedAt"]) < parse_instant(expected) + 900_000 for m in members)


async def test_unknown_things_are_404_problems(client):
    await assert_problem(await client.get("/nope"), 404)
    await assert_problem(await client.get("/nope/view"), 404)
    await assert_problem(await client.get("/parking/windows/garbage"), 404)
    await assert_problem(await client.get("/parking/windows/2026-03-31T11:46:00Z"), 404)  # not a window start
    await assert_problem(await client.get("/parking/windows/2026-04-30T11:45:00Z"), 404)  # future
    await assert_problem(await client.get("/parking/windows/2020-01-01T00:00:00Z"), 404)  # before the stream
    # Offsets that push year 1 or 9999 outside what UTC page names can spell: never a 500.
    await assert_problem(await client.get("/parking/windows/0001-01-01T00:30:00%2B01:00"), 404)
    await assert_problem(await client.get("/parking/windows/9999-12-31T23:55:00-23:00"), 404)
    await assert_problem(await client.get("/parking/days/2026-02-30"), 404)
    await assert_problem(await client.get("/parking/days/2026-04-30"), 404)
    await assert_problem(await client.get("/parking/sites/atlantis/p1"), 404)


async def test_non_canonical_window_name_redirects(client):
    resp = await client.get("/parking/windows/2026-03-31T13:45:00+02:00", allow_redirects=False)
    assert resp.status == 301
    assert resp.headers["Location"] == f"{BASE}/parking/windows/2026-03-31T11:45:00Z"


async def test_method_not_allowed_is_a_problem(client):
    resp = await client.post("/parking/latest", data=b"{}")
    await assert_problem(resp, 405)
    assert "GET" in resp.headers["Allow"]


async def test_negotiation(client):
    resp = await client.get("/parking/latest", headers={"Accept": LDES_CLIENT_ACCEPT})
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/n-quads"
    for accept, expected in [
        ("application/json", "application/json"),
        ("*/*", "application/ld+json"),
        ("text/*", "text/turtle"),
        ("text/turtle;q=0.5, application/trig", "application/trig"),
        ("application/n-triples;q=0.9, text/turtle;q=0.9", "text/turtle"),
    ]:
        resp = await client.get("/parking/latest", headers={"Accept": accept})
        assert resp.headers["Content-Type"] == expected, accept
    assert (await client.get("/parking/latest")).headers["Content-Type"] == "application/ld+json"
    body = await assert_problem(await client.get("/parking/latest", headers={"Accept": "application/rdf+xml"}), 406)
    assert "text/turtle" in body["available"]
    await assert_problem(await client.get("/parking/latest", headers={"Accept": "application/ld+json;q=0, image/png"}), 406)
    await assert_problem(await client.get("/context.jsonld", headers={"Accept": "text/turtle"}), 406)


async def test_head_and_cors_preflight(client):
    head = await client.head("/parking/latest")
    assert head.status == 200 and head.headers["ETag"]
    pre = await client.options("/parking/latest", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "if-none-match"})
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "If-None-Match" in pre.headers["Access-Control-Allow-Headers"]


async def test_late_member_never_changes_an_immutable_page(client, state):
    url = "/parking/windows/2026-03-31T11:45:00Z"
    first = await client.get(url)
    body = await first.read()
    store = state.streams["parking"].store
    key = sorted(store.sites)[0]
    result = store.add([parking_member(key, parse_instant("2026-03-31T11:47:01Z"), 3)])
    assert result.late == 1 and result.added == 0
    again = await client.get(url)
    assert await again.read() == body and again.headers["ETag"] == first.headers["ETag"]


async def test_late_member_accepted_while_page_not_yet_served_immutable(client, state):
    store = state.streams["parking"].store
    key = sorted(store.sites)[0]
    t = parse_instant("2026-03-31T11:31:01Z")
    assert store.add([parking_member(key, t, 3)]).added == 1
    page = await (await client.get("/parking/windows/2026-03-31T11:30:00Z")).json(content_type=None)
    assert any(parse_instant(m["observedAt"]) == t for m in node(page, "EventStream")["member"])


async def test_site_iris_we_minted_dereference(client, state):
    doc = await (await client.get("/parking/latest")).json(content_type=None)
    for site in doc["sites"]:
        resp = await client.get(local(site["@id"]))
        assert resp.status == 200
        body = await resp.json(content_type=None)
        assert body["@id"] == site["@id"] and body["latestVersion"] == site["latestVersion"]


async def test_unencoded_plus_in_offset_is_understood(client):
    resp = await client.get("/parking/view?time=2026-03-31T13:44:59+02:00", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].endswith("/windows/2026-03-31T11:30:00Z")
    await assert_problem(await client.get("/parking/view", params={"time": "2026-03-31T12:00:00Z\nX"}, allow_redirects=False), 400)


async def test_last_modified_moves_when_a_page_closes(client, clock):
    """A revalidation with If-Modified-Since after the window closed must get the new body."""
    url = "/parking/windows/2026-03-31T12:00:00Z"
    open_resp = await client.get(url)
    since = open_resp.headers["Last-Modified"]
    clock.set("2026-03-31T12:16:30Z")  # closed (end 12:15 + 1 min grace)
    closed = await client.get(url, headers={"If-Modified-Since": since})
    assert closed.status == 200 and closed.headers["Cache-Control"] == IMMUTABLE
    assert node(await closed.json(content_type=None), "Node")["immutable"] is True
    view_before = await client.get("/parking/view")
    clock.set("2026-04-01T00:00:30Z")  # a new day: the view gains a relation without a new member
    view_after = await client.get("/parking/view", headers={"If-Modified-Since": view_before.headers["Last-Modified"]})
    assert view_after.status == 200
    assert "2026-04-01" in str(await view_after.json(content_type=None))
