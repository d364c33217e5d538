"""HTML views for people: every resource as readable tables, links to follow, the other formats as links.

Also: the JSON-LD default is unchanged for clients that do not ask for HTML, ``?format=`` works
and is validated, feed values are escaped, HTML is cached as bytes like every other syntax,
the dashboard's assets are served by the server itself with digests in their names, and a
Content-Security-Policy forbids inline script.
"""

from __future__ import annotations

import hashlib
from html.parser import HTMLParser

import orjson
import pytest

from ldf_server.app import create_app
from ldf_server.config import ConfigError, config_from_dict
from ldf_server.html import render
from ldf_server.records import Site
from tests.support.clock import FakeClock
from ldf_server.timeutil import format_instant, parse_instant
from tests.support.pilots import NOW, seed, three_pilots_config, three_pilots_state
from tests.support.seeding import make_config, parking_dataset, seeded_state

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
LDES_CLIENT_ACCEPT = ("application/n-quads, application/trig;q=0.95, application/ld+json;q=0.9, "
                      "application/n-triples;q=0.8, text/turtle;q=0.6")
SYNTAXES = ["jsonld", "json", "nq", "trig", "ttl", "nt"]
CLOSED_WINDOW = "/parking/windows/2026-03-31T11:30:00Z"


class Page(HTMLParser):
    """What a test needs from an HTML page: links, rows, scripts, stylesheets, attributes, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.scripts: list[str] = []
        self.inline_scripts = 0
        self.styles: list[str] = []
        self.rows: list[str] = []  # data-id of table rows
        self.body: dict[str, str] = {}
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self.links.append(a)
        elif tag == "script":
            if "src" in a:
                self.scripts.append(a["src"])
            else:
                self.inline_scripts += 1
        elif tag == "link" and a.get("rel") == "stylesheet":
            self.styles.append(a["href"])
        elif tag == "tr" and "data-id" in a:
            self.rows.append(a["data-id"])
        elif tag == "body":
            self.body = a

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        self.text.append(data)

    def hrefs(self, cls: str | None = None) -> list[str]:
        return [a["href"] for a in self.links if cls is None or cls in a.get("class", "").split()]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


async def html(client, path: str) -> tuple[Page, object]:  # type: ignore[no-untyped-def]
    resp = await client.get(path, headers={"Accept": BROWSER})
    body = await resp.text()
    assert resp.status == 200, (path, body[:300])
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8", path
    return Page(body), resp


async def jsonld(client, path: str) -> dict:  # type: ignore[no-untyped-def]
    resp = await client.get(path)
    assert resp.status == 200
    return orjson.loads(await resp.read())


def relation_targets(doc: dict) -> list[str]:
    nodes = doc.get("@graph", [doc])
    return sorted({r["node"] for n in nodes for r in n.get("relation", [])})


def assert_csp(resp) -> None:  # type: ignore[no-untyped-def]
    csp = resp.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval, no other origin
    assert "unsafe" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_every_resource_has_an_html_view_with_its_formats(client, state):
    site = sorted(state.streams["parking"].store.sites)[0]
    paths = ["/", "/parking", "/parking/view", "/parking/days/2026-03-31", CLOSED_WINDOW,
             "/parking/latest", "/parking/shape", f"/parking/sites/{site}"]
    for path in paths:
        page, resp = await html(client, path)
        assert_csp(resp)
        assert "Accept" in resp.headers["Vary"]
        assert page.inline_scripts == 0
        formats = [a["data-format"] for a in page.links if "format" in a.get("class", "")]
        assert formats == SYNTAXES, path
        for name in SYNTAXES:  # each link gives that syntax of the same resource
            target = await client.get(f"{path}?format={name}")
            assert target.status == 200, (path, name)
            expected = {"jsonld": "application/ld+json", "json": "application/json", "nq": "application/n-quads",
                        "trig": "application/trig", "ttl": "text/turtle", "nt": "application/n-triples"}[name]
            assert target.headers["Content-Type"] == expected
        assert "http://127.0.0.1:8080/" in page.hrefs(), f"{path}: no link home"


async def test_links_follow_the_same_relations_as_the_rdf(client):
    for path in ["/parking/view", "/parking/days/2026-03-31"]:
        page, _ = await html(client, path)
        targets = relation_targets(await jsonld(client, path))
        assert targets and sorted(page.hrefs("relation")) == targets, path
    # the stream links to its view and shape, a page to its stream
    page, _ = await html(client, "/parking")
    assert {"http://127.0.0.1:8080/parking/view", "http://127.0.0.1:8080/parking/shape"} <= set(page.hrefs())
    page, _ = await html(client, CLOSED_WINDOW)
    assert "http://127.0.0.1:8080/parking" in page.hrefs()


async def test_a_window_page_shows_every_member_with_its_values(client, state):
    doc = await jsonld(client, CLOSED_WINDOW)
    members = next(n for n in doc["@graph"] if "member" in n)["member"]
    page, resp = await html(client, CLOSED_WINDOW)
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert page.rows == [m["@id"] for m in members] and len(members) > 5
    text = page.all_text
    for m in members[:5]:
        assert m["observedAt"] in text and str(m["vacantSpaces"]) in text
        assert m["isVersionOf"] in page.hrefs()
    assert "http://127.0.0.1:8080/parking/days/2026-03-31" in page.hrefs(), "a way on: up to the day's node"
    # Every link of the page leads somewhere: member IRIs redirect to this very page.
    member_links = {h for h in page.hrefs() if h.startswith("http://127.0.0.1:8080/parking/members/")}
    assert len(member_links) == len(members)
    for href in member_links:
        resp = await client.get(href.removeprefix("http://127.0.0.1:8080"), allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "http://127.0.0.1:8080" + CLOSED_WINDOW


async def test_latest_lists_every_site_with_its_newest_state(client, state):
    store = state.streams["parking"].store
    page, _ = await html(client, "/parking/latest")
    text = page.all_text
    for key, site in store.sites.items():
        assert site.label in text
        assert str(store.latest[key][""].values["vacantSpaces"]) in text


async def test_the_default_is_still_json_ld_and_q_values_hold(client):
    for accept in [None, "*/*", LDES_CLIENT_ACCEPT, "application/*", "text/*"]:
        resp = await client.get("/parking/latest", headers={"Accept": accept} if accept else {})
        expected = {None: "application/ld+json", "*/*": "application/ld+json", LDES_CLIENT_ACCEPT: "application/n-quads",
                    "application/*": "application/ld+json", "text/*": "text/turtle"}[accept]
        assert resp.headers["Content-Type"] == expected, accept
    resp = await client.get("/parking/latest", headers={"Accept": "text/html;q=0.5, text/turtle"})
    assert resp.headers["Content-Type"] == "text/turtle"
    resp = await client.get("/parking/latest", headers={"Accept": "text/turtle;q=0.5, text/html"})
    assert resp.headers["Content-Type"].startswith("text/html")
    body = await (await client.get("/parking/latest", headers={"Accept": "image/png"})).json()
    assert "text/html" in body["available"]
    # the JSON-LD context is a JSON-LD document only
    resp = await client.get("/context.jsonld", headers={"Accept": "text/html"})
    assert resp.status == 406


async def test_format_parameter_is_validated(client):
    turtle = await client.get("/parking/latest", headers={"Accept": "text/turtle"})
    by_format = await client.get("/parking/latest?format=ttl", headers={"Accept": "application/ld+json"})
    assert by_format.headers["Content-Type"] == "text/turtle"
    assert await by_format.read() == await turtle.read()
    assert (await client.get("/parking/view?format=nt")).headers["Content-Type"] == "application/n-triples"
    for query, status in [("format=xml", 400), ("format=ttl&format=nt", 400), ("format=", 400), ("format=TTL", 400)]:
        resp = await client.get(f"/parking/latest?{query}")
        assert resp.status == status, query
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert "ttl" in (await resp.json())["available"]
    resp = await client.get("/context.jsonld?format=html")
    assert resp.status == 406 and resp.headers["Content-Type"] == "application/problem+json"
    assert (await client.get("/context.jsonld?format=json")).headers["Content-Type"] == "application/json"
    resp = await client.get("/parking/view?format=html&time=2026-03-31T11:31:00Z", allow_redirects=False)
    assert resp.status == 302  # the search form still answers with the page holding that instant


async def test_hostile_values_are_shown_as_text(aiohttp_client, clock):
    evil = "<script>alert(1)</script>'\"&"
    config = make_config(datasets=[parking_dataset(title={"en": "Spaces" + evil, "nl": "x"})])
    state = seeded_state(config, clock)
    state.streams["parking"].store.upsert_sites([
        Site(key="evil/one", label=evil, city="evil", description=evil, capacity=10, lat=51.0, lon=4.0,
             properties={"seeAlso": "javascript:alert(1)"}),
    ])
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    for path in ["/", "/parking", "/parking/latest", "/parking/sites/evil/one"]:
        page, _ = await html(client, path)
        raw = await (await client.get(path, headers={"Accept": "text/html"})).text()
        assert "<script>alert" not in raw, path
        assert evil in page.all_text or path == "/", path  # shown, as text
        assert not [h for h in page.hrefs() if not h.startswith(("http://", "https://", "?"))], path
    page, _ = await html(client, "/")
    dashboard = orjson.loads(page.body["data-dashboard"])
    assert dashboard["datasets"][0]["title"] == "Spaces" + evil  # the attribute round-trips exactly


async def test_html_is_cached_as_bytes_like_every_syntax(client, monkeypatch):
    calls = []
    original = render.resource
    monkeypatch.setattr(render, "resource", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    first = await client.get(CLOSED_WINDOW, headers={"Accept": BROWSER})
    body = await first.read()
    second = await client.get(CLOSED_WINDOW, headers={"Accept": BROWSER})
    assert await second.read() == body and second.headers["ETag"] == first.headers["ETag"]
    assert len(calls) == 1  # rendered once
    again = await client.get(CLOSED_WINDOW, headers={"Accept": BROWSER, "If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and len(calls) == 1
    # a different syntax of the same page has a different tag
    ttl = await client.get(CLOSED_WINDOW, headers={"Accept": "text/turtle"})
    assert ttl.headers["ETag"] != first.headers["ETag"]
    head = await client.head(CLOSED_WINDOW, headers={"Accept": BROWSER})
    assert head.status == 200 and head.headers["Content-Type"].startswith("text/html") and len(calls) == 1


async def test_assets_are_served_by_the_server_with_digest_names(client):
    page, resp = await html(client, "/")
    urls = page.scripts + page.styles
    names = {u.rsplit("/", 1)[1].split(".", 1)[0] for u in urls}
    assert {"leaflet", "uplot", "dashboard", "page"} <= names, urls
    assert all(u.startswith("/_assets/") for u in urls)  # nothing from another origin
    for url in urls:
        resp = await client.get(url)
        body = await resp.read()
        assert resp.status == 200, url
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        expected = "text/javascript" if url.endswith(".js") else "text/css"
        assert resp.headers["Content-Type"].startswith(expected)
        digest = url.rsplit("/", 1)[1].split(".")[1]
        assert hashlib.blake2b(body, digest_size=6).hexdigest() == digest, url
        again = await client.get(url, headers={"If-None-Match": resp.headers["ETag"]})
        assert again.status == 304
    leaflet = next(u for u in page.scripts if "/leaflet." in u)
    assert b"Leaflet 1.9.4" in await (await client.get(leaflet)).read()
    from ldf_server.html import assets
    licences = [name for name in assets.manifest() if "LICENSE" in name]
    assert len(licences) == 2
    for name in licences:
        resp = await client.get(f"/_assets/{name}")
        text = await resp.text()
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        assert "Permission is hereby granted" in text or "Redistribution and use" in text, name


@pytest.mark.parametrize("path", [
    "/_assets/leaflet.js",  # the source name without its digest
    "/_assets/leaflet.000000000000.js",
    "/_assets/..%2F..%2Fpyproject.toml",
    "/_assets/%2e%2e%2fhtml%2fassets.py",
    "/_assets/VENDORED.md",
    "/_assets/",
    "/_assets/../app.py",
])
async def test_unknown_assets_and_traversal_are_404(client, path):
    from yarl import URL
    resp = await client.session.get(URL(f"http://127.0.0.1:{client.port}{path}", encoded=True))
    assert resp.status == 404, path
    assert resp.headers["Content-Type"] == "application/problem+json"


async def test_dashboard_names_every_dataset_and_the_tiles(aiohttp_client):
    config = three_pilots_config(zone_count=3)
    state = three_pilots_state(config, FakeClock(NOW))
    await seed(state)
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    page, resp = await html(client, "/")
    dashboard = orjson.loads(page.body["data-dashboard"])
    assert [(d["id"], d["pilot"]) for d in dashboard["datasets"]] == [
        ("parking", "parking"), ("crowds", "crowdedness"), ("accessibility", "accessibility")]
    assert dashboard["datasets"][0]["events"] == "/parking/events" and dashboard["tiles"] is None
    assert "img-src 'self' data:;" in resp.headers["Content-Security-Policy"]  # no tile server by default
    # the catalog's datasets are on the same page, with links to their streams
    assert {"http://127.0.0.1:8080/parking", "http://127.0.0.1:8080/crowds"} <= set(page.hrefs())
    # crowd observations and buildings have views too
    doc = await jsonld(client, "/crowds/view")
    day = relation_targets(doc)[-1].removeprefix("http://127.0.0.1:8080")
    windows = relation_targets(await jsonld(client, day))
    window_path = windows[-2].removeprefix("http://127.0.0.1:8080")
    page, _ = await html(client, window_path)
    assert page.rows and all("/crowds/members/" in r for r in page.rows)
    page, _ = await html(client, "/accessibility/latest")
    for site in state.streams["accessibility"].store.sites.values():
        assert site.label in page.all_text


async def test_map_tiles_are_configurable_and_checked(aiohttp_client, clock):
    tiles = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    config = make_config(map_tiles=tiles)
    client = await aiohttp_client(create_app(config, state=seeded_state(config, clock), run_feeds=False))
    page, resp = await html(client, "/")
    assert orjson.loads(page.body["data-dashboard"])["tiles"] == tiles
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in resp.headers["Content-Security-Policy"]
    for bad in ["javascript:alert(1)", "https://x.example/{z}; script-src *", "tiles/{z}/{x}/{y}.png"]:
        with pytest.raises((ConfigError, ValueError)):
            config_from_dict({"server": {"map_tiles": bad}, "datasets": [parking_dataset()]}, env={})


async def test_triple_pattern_fragments_have_html_views(client):
    rdf_type = "http://www.w3.org/1999/02/22-rdf-syntax-ns%23type"
    path = f"/parking/tpf?predicate={rdf_type}"
    page, resp = await html(client, path)
    assert_csp(resp)
    turtle = await (await client.get(path + "&format=ttl")).text()  # the format links keep the pattern
    total = int(turtle.split("void:triples", 1)[1].split()[0])
    formats = {a["data-format"]: a["href"] for a in page.links if "format" in a.get("class", "")}
    assert list(formats) == SYNTAXES and formats["ttl"] == "?predicate=http%3A%2F%2Fwww.w3.org%2F1999%2F02%2F22-rdf-syntax-ns%23type&format=ttl"
    terms = page.hrefs("term")
    assert terms and len(terms) == 3 * int(page.all_text.split(" matching triples")[0].split()[-1])
    assert f"{total} matching triples" in page.all_text and total > 0
    # every term links to the fragment of the triples that share it, which answers in HTML too
    subject_link = terms[0]
    assert "?subject=" in subject_link
    linked, _ = await html(client, subject_link.removeprefix("http://127.0.0.1:8080"))
    assert linked.hrefs("term")
    resp = await client.get("/tpf?format=svg")
    assert resp.status == 400 and resp.headers["Content-Type"] == "application/problem+json"


async def test_a_window_page_links_its_neighbours_for_people(client, state):
    stream = state.streams["parking"]
    width = stream.timeline.window_ms
    starts = stream.store.window_starts()
    first, last = starts[0], stream.newest_window(state.now_ms())
    base = "http://127.0.0.1:8080/parking/windows/"

    def rels(page: Page) -> dict[str, str]:
        return {a["rel"]: a["href"] for a in page.links if a.get("class") == "nav" and a.get("rel") in ("prev", "next")}

    page, _ = await html(client, CLOSED_WINDOW)
    start = parse_instant(CLOSED_WINDOW.rsplit("/", 1)[1])
    assert rels(page) == {"prev": base + format_instant(start - width), "next": base + format_instant(start + width)}
    for rel, href in rels(page).items():
        assert (await client.get(href.replace("http://127.0.0.1:8080", ""), headers={"Accept": "text/html"})).status == 200, rel
    page, _ = await html(client, f"/parking/windows/{format_instant(first)}")
    assert "prev" not in rels(page), "the first window has no previous one"
    page, _ = await html(client, f"/parking/windows/{format_instant(last)}")
    assert "next" not in rels(page), "the newest window has no next one"
    doc = await jsonld(client, CLOSED_WINDOW)
    assert base + format_instant(start + width) not in str(doc), "the links are for people: the RDF is unchanged"
