"""The production server's shortcut for latest and window pages answers exactly as the full path.

The same app state is served twice: by ``limits.start_server`` (the guarded server, which asks
``http/fastpath.py`` first) and by aiohttp's plain runner (router and middleware only). Every
request is sent to both; statuses, bodies and headers (all but Date and a minted request id)
must be equal, and a spy on the shortcut says which requests it answered itself.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from ldf_server.app import create_app
from ldf_server.http.fastpath import FAST_PATH
from ldf_server.http.limits import start_server
from ldf_server.http.state import STATE
from tests.support.prom import parse, value

CLOSED_WINDOW = "/parking/windows/2026-03-31T08:00:00Z"  # seeded, closed at the conftest clock
VARYING = {"date", "server"}


@asynccontextmanager
async def both(config, state) -> AsyncIterator[tuple[str, str, list[str]]]:  # type: ignore[no-untyped-def]
    """(guarded base URL, plain base URL, paths the shortcut answered)."""
    fast_app = create_app(config, state=state, run_feeds=False)
    answered: list[str] = []
    shortcut = fast_app[FAST_PATH]

    def spy(request: web.BaseRequest) -> web.StreamResponse | None:
        resp = shortcut(request)
        if resp is not None:
            answered.append(request.raw_path)
        return resp

    fast_app[FAST_PATH] = spy
    runner, _ = await start_server(fast_app, config.server, host="127.0.0.1", port=0)
    plain = web.AppRunner(create_app(config, state=state, run_feeds=False), access_log=None)
    await plain.setup()
    site = web.TCPSite(plain, "127.0.0.1", 0)
    await site.start()
    try:
        yield (f"http://127.0.0.1:{runner.addresses[0][1]}", f"http://127.0.0.1:{plain.addresses[0][1]}", answered)
    finally:
        await runner.cleanup()
        await plain.cleanup()


async def fetch(session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    # encoded=True: the target goes out as written (yarl would decode "%6C" to "l").
    async with session.request(method, URL(url, encoded=True), headers=headers, allow_redirects=False,
                               auto_decompress=False) as resp:
        return resp.status, [(k, v) for k, v in resp.headers.items() if k.lower() not in VARYING], await resp.read()


CASES = [
    ("GET", "/parking/latest", {}),
    ("HEAD", "/parking/latest", {}),
    ("GET", "/parking/latest", {"Accept": "application/ld+json"}),
    ("GET", "/parking/latest", {"Accept": "application/json"}),
    ("GET", "/parking/latest", {"Accept": "text/turtle"}),
    ("GET", "/parking/latest", {"Accept": "application/n-quads;q=0.9, text/html"}),
    ("GET", "/parking/latest", {"Accept-Encoding": "gzip, br"}),
    ("GET", "/parking/latest", {"Accept": "image/png"}),  # 406: the full path answers
    ("GET", "/parking/latest?format=ttl", {}),
    ("GET", "/parking/%6Catest", {}),  # percent-encoded: the router decodes it
    ("GET", "/nope/latest", {}),  # unknown dataset: 404 from the full path
    ("OPTIONS", "/parking/latest", {"Origin": "https://x.example", "Access-Control-Request-Method": "GET"}),
    ("POST", "/parking/latest", {}),
    ("GET", CLOSED_WINDOW, {}),
    ("HEAD", CLOSED_WINDOW, {"Accept-Encoding": "gzip"}),
    ("GET", CLOSED_WINDOW, {"Accept": "application/trig"}),
    ("GET", "/parking/windows/2026-03-31T10:00:00%2B02:00", {}),  # encoded: the full path redirects
    ("GET", "/parking/windows/2026-03-31T10:00:00+02:00", {}),  # not canonical: 301 from the shortcut too
    ("GET", "/parking/windows/2026-03-31T08:01:00Z", {}),  # not a window start: 404
    ("GET", "/parking/windows/2020-01-01T00:00:00Z", {}),  # before the stream: 404
    ("GET", "/parking/windows/not-an-instant", {}),
    ("GET", "/parking/view", {}),  # another route: never the shortcut
]


async def test_every_answer_is_the_full_paths_answer(config, state):
    async with both(config, state) as (fast, plain, answered), aiohttp.ClientSession() as session:
        for method, path, headers in CASES:
            sent = {**headers, "X-Request-Id": "same-id-1"}
            got = await fetch(session, method, fast + path, sent)
            want = await fetch(session, method, plain + path, sent)
            assert got == want, (method, path, headers)
    # Plain GETs and HEADs of the two routes, the redirect of a non-canonical start included; the
    # rest (406, ?format=, percent-encoding, unknown dataset, other methods and routes, 404s) not.
    assert answered == ["/parking/latest"] * 7 + [CLOSED_WINDOW] * 3 \
        + ["/parking/windows/2026-03-31T10:00:00+02:00"], answered


async def test_conditional_requests_and_gzip_variants(config, state):
    async with both(config, state) as (fast, plain, answered), aiohttp.ClientSession() as session:
        for path in ("/parking/latest", CLOSED_WINDOW):
            _, headers, _ = await fetch(session, "GET", fast + path, {"Accept-Encoding": "identity"})
            etag = CIMultiDict(headers)["ETag"]
            assert "Content-Encoding" not in CIMultiDict(headers)
            _, gz_headers, _ = await fetch(session, "GET", fast + path, {"Accept-Encoding": "gzip"})
            gz_etag = CIMultiDict(gz_headers)["ETag"]
            assert gz_etag != etag and CIMultiDict(gz_headers)["Content-Encoding"] == "gzip"
            modified = CIMultiDict(headers)["Last-Modified"]
            for conditional in ({"If-None-Match": etag}, {"If-None-Match": gz_etag, "Accept-Encoding": "gzip"},
                                {"If-None-Match": f'"other", W/{etag}'}, {"If-None-Match": "*"},
                                {"If-None-Match": '"other"'}, {"If-Modified-Since": modified},
                                {"If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"}):
                sent = {**conditional, "X-Request-Id": "same-id-2"}
                got = await fetch(session, "GET", fast + path, sent)
                want = await fetch(session, "GET", plain + path, sent)
                assert got == want, (path, conditional)
            got = await fetch(session, "GET", fast + path, {"If-None-Match": etag, "Accept-Encoding": "identity"})
            assert got[0] == 304 and got[2] == b""
    assert len(answered) == 2 * 10


async def test_request_ids_cors_and_metrics(config, state):
    async with both(config, state) as (fast, _, answered), aiohttp.ClientSession() as session:
        async with session.get(fast + "/parking/latest") as resp:
            minted = resp.headers["X-Request-Id"]
            assert resp.status == 200 and minted and " " not in minted
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "X-Request-Id" in resp.headers["Access-Control-Expose-Headers"]
        async with session.get(fast + "/parking/latest", headers={"X-Request-Id": "bad id"}) as resp:
            assert resp.headers["X-Request-Id"] not in ("bad id", minted)
        for _ in range(3):
            async with session.head(fast + CLOSED_WINDOW) as resp:
                assert resp.status == 200
        async with session.get(fast + "/metrics") as resp:
            samples = parse(await resp.text())
    assert len(answered) == 5
    assert value(samples, "ldf_http_requests_total", route="/{ds}/latest", method="GET") == 2
    assert value(samples, "ldf_http_requests_total", route="/{ds}/windows/{start}", method="HEAD") == 3
    assert value(samples, "ldf_http_request_duration_seconds_count", route="/{ds}/windows/{start}") == 3
    assert value(samples, "ldf_http_responses_total", status="200") == 5


@pytest.mark.parametrize("path", ["/parking/latest", CLOSED_WINDOW])
async def test_a_starting_server_answers_503_from_the_full_path(config, state, path):
    async with both(config, state) as (fast, _, answered), aiohttp.ClientSession() as session:
        state.ready = False
        try:
            async with session.get(fast + path) as resp:
                assert resp.status == 503
                assert resp.headers["Content-Type"] == "application/problem+json"
                assert resp.headers["Access-Control-Allow-Origin"] == "*"
        finally:
            state.ready = True
    assert answered == []


async def test_each_app_has_its_own_shortcut(config, state):
    one, two = create_app(config, state=state, run_feeds=False), create_app(config, state=state, run_feeds=False)
    assert one[FAST_PATH] is not two[FAST_PATH]
    assert one[STATE] is two[STATE]


def test_the_cache_counts_header_sets_so_small_pages_cannot_overrun_it():
    from ldf_server.fragments.fragment import Fragment
    from ldf_server.http.representations import HEADER_SETS_ALLOWANCE, Encoded, RepresentationCache

    cache = RepresentationCache(max_bytes=100 * HEADER_SETS_ALLOWANCE)
    for i in range(1000):
        item = Encoded.of(Fragment({}, immutable=True, modified=0.0), "immutable", b"x" * 100)
        for media in ("application/ld+json", "text/turtle", None):
            item.headers(media, "public, max-age=31536000, immutable", False)
        cache.put((f"/p/{i}", "application/ld+json"), item)
    assert len(cache) <= 100 and cache.total_bytes <= cache.max_bytes
