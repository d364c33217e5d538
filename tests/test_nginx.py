"""deploy/nginx.conf, run by Debian's nginx in front of a real ldf-server on 127.0.0.1.

Immutable pages become cache hits that never reach the server; mutable ones are served only
while fresh, then revalidated (a 304 from the server) or fetched anew; every Accept and
Accept-Encoding variant is cached separately; live push passes through unbuffered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import shutil
import socket
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest
from multidict import CIMultiDict

from tests.support.clock import FakeClock
from tests.support.live import live_server
from tests.support.seeding import make_config, seeded_state

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NOW = "2026-03-31T12:07:30Z"
CLOSED_WINDOW = "/parking/windows/2026-03-31T08:00:00Z"
NEXT_POLL_S = 3  # latest: max-age=3, s-maxage=2


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        pytest.fail("nginx is not installed: ./scripts/test installs Debian's nginx-light (apt-get, as root)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_config(upstream_port: int, listen_port: int, cache: Path) -> str:
    """deploy/nginx.conf with only the addresses changed; each change must apply exactly once."""
    text = NGINX_CONF.read_text()
    for old, new in (
        ("server ldf-server:8080;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 80;", f"listen 127.0.0.1:{listen_port};"),
        ("/var/cache/nginx/ldf", str(cache)),
    ):
        assert text.count(old) == 1, f"deploy/nginx.conf no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


def main_config(tmp: Path, site: Path) -> str:
    """What the nginx image's own nginx.conf provides around conf.d/, with every path in ``tmp``."""
    temp = "\n".join(f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp / 'nginx.pid'};
error_log {tmp / 'error.log'} warn;
events {{ worker_connections 256; }}
http {{
    access_log {tmp / 'access.log'};
    default_type application/octet-stream;
{temp}
    include {site};
}}
"""


@asynccontextmanager
async def nginx(tmp: Path, upstream_port: int, listen_port: int) -> AsyncIterator[str]:
    """Debian's nginx with deploy/nginx.conf, in the foreground; stopped when the block ends."""
    (tmp / "cache").mkdir()
    site = tmp / "ldf.conf"
    site.write_text(site_config(upstream_port, listen_port, tmp / "cache"))
    conf = tmp / "nginx.conf"
    conf.write_text(main_config(tmp, site))
    binary = nginx_binary()
    check = await asyncio.create_subprocess_exec(binary, "-t", "-p", str(tmp), "-c", str(conf),
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await check.communicate()
    assert check.returncode == 0, out.decode()
    proc = await asyncio.create_subprocess_exec(binary, "-p", str(tmp), "-c", str(conf),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{listen_port}"
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", listen_port)
                writer.close()
                break
            except OSError:
                assert proc.returncode is None, (tmp / "error.log").read_text()
                await asyncio.sleep(0.02)
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()


@dataclasses.dataclass
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    @property
    def cache(self) -> str | None:
        return self.headers.get("X-Cache-Status")


async def get(session: aiohttp.ClientSession, url: str, accept: str = "application/ld+json", encoding: str = "identity") -> Answer:
    async with session.get(url, headers={"Accept": accept, "Accept-Encoding": encoding}) as resp:
        return Answer(resp.status, CIMultiDict(resp.headers), await resp.read())


@pytest.fixture
async def stack(tmp_path):  # type: ignore[no-untyped-def]
    """(nginx URL, server state, the server's request log, clock); IRIs are minted for the nginx URL."""
    listen_port = free_port()
    public = f"http://127.0.0.1:{listen_port}"
    clock = FakeClock(NOW)

    def build(_own_url: str):  # type: ignore[no-untyped-def]
        config = make_config(base_url=public)
        state = seeded_state(config, clock)
        state.streams["parking"].store.expect_update("sim", clock.now + NEXT_POLL_S)
        return config, state

    async with live_server(build) as (upstream, state, log):
        async with nginx(tmp_path, int(upstream.rsplit(":", 1)[1]), listen_port) as url:
            assert url == public
            yield url, state, log, clock


def upstream_hits(log, path: str) -> list[int]:  # type: ignore[no-untyped-def]
    return [status for _, p, status in log.entries if p == path]


async def test_immutable_pages_are_cache_hits_that_never_reach_the_server(stack):
    url, _, log, _ = stack
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        first = await get(session, url + CLOSED_WINDOW)
        assert first.status == 200 and first.cache == "MISS"
        assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert f'"@id": "{url}{CLOSED_WINDOW}"'.replace(" ", "") in first.body.decode().replace(" ", ""), \
            "IRIs are minted for the public (nginx) URL"
        for _ in range(3):
            again = await get(session, url + CLOSED_WINDOW)
            assert again.status == 200 and again.cache == "HIT" and again.body == first.body
            assert again.headers["ETag"] == first.headers["ETag"] and "Accept" in again.headers["Vary"]
    assert upstream_hits(log, CLOSED_WINDOW) == [200], "only the first request reached the server"


async def test_every_accept_and_encoding_is_its_own_variant(stack):
    url, _, log, _ = stack
    page = url + CLOSED_WINDOW
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        turtle = await get(session, page, "text/turtle")
        jsonld = await get(session, page, "application/ld+json")
        assert (turtle.cache, jsonld.cache) == ("MISS", "MISS"), "a Turtle copy is not served to a JSON-LD client"
        assert turtle.headers["Content-Type"].startswith("text/turtle") and turtle.body.lstrip().startswith(b"@prefix")
        assert jsonld.headers["Content-Type"].startswith("application/ld+json") and jsonld.body.startswith(b"{")
        zipped = await get(session, page, "application/ld+json", "gzip")
        assert zipped.cache == "MISS" and zipped.headers.get("Content-Encoding") == "gzip"
        assert gzip.decompress(zipped.body) == jsonld.body, "nginx passes the server's gzip through untouched"
        # Each variant now comes from the cache, each with its own bytes.
        for accept, encoding, expected in (("text/turtle", "identity", turtle), ("application/ld+json", "identity", jsonld),
                                           ("application/ld+json", "gzip", zipped)):
            again = await get(session, page, accept, encoding)
            assert again.cache == "HIT" and again.body == expected.body, (accept, encoding)
            assert again.headers["Content-Type"] == expected.headers["Content-Type"]
    assert upstream_hits(log, CLOSED_WINDOW) == [200, 200, 200]


async def test_mutable_resources_are_revalidated_and_never_older_than_their_max_age(stack):
    url, state, log, clock = stack
    store = state.streams["parking"].store
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        first = await get(session, url + "/parking/latest")
        assert first.status == 200 and first.cache == "MISS"
        assert first.headers["Cache-Control"] == f"public, max-age={NEXT_POLL_S}, s-maxage={NEXT_POLL_S - 1}"
        fetched = time.monotonic()
        again = await get(session, url + "/parking/latest")
        if time.monotonic() - fetched < NEXT_POLL_S - 1.5:  # a slow machine may already be past s-maxage
            assert again.cache == "HIT"

        await asyncio.sleep(NEXT_POLL_S)  # past s-maxage: nginx must ask the server again
        revalidated = await get(session, url + "/parking/latest")
        assert revalidated.cache == "REVALIDATED" and revalidated.body == first.body
        assert upstream_hits(log, "/parking/latest")[-1] == 304, "revalidation cost the server a 304, not the body"

        # A poll brings new data; once the cached copy expires, nobody gets the old one.
        site = next(iter(store.sites))
        newest = store.newest(site)
        now_ms = int(clock.now * 1000)
        assert newest is not None and newest.time < now_ms
        result = store.add([dataclasses.replace(newest, time=now_ms, values={**newest.values, "vacantSpaces": 4242})])
        assert result is not None
        await asyncio.sleep(NEXT_POLL_S)
        changed = await get(session, url + "/parking/latest")
        assert changed.cache == "EXPIRED" and changed.status == 200
        assert changed.headers["ETag"] != first.headers["ETag"] and b"4242" in changed.body
        assert upstream_hits(log, "/parking/latest")[-1] == 200


async def test_no_store_resources_are_never_cached_and_metrics_stay_inside(stack):
    url, _, log, _ = stack
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            ready = await get(session, url + "/health/ready")
            assert ready.status == 200 and ready.cache is None and ready.headers["Cache-Control"] == "no-store"
        assert upstream_hits(log, "/health/ready") == [200, 200]
        metrics = await get(session, url + "/metrics")
        assert metrics.status == 404 and not upstream_hits(log, "/metrics")


async def test_live_push_passes_through_unbuffered(stack):
    url, state, _, clock = stack
    store = state.streams["parking"].store
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/parking/events", headers={"Accept": "text/event-stream"}) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
            assert "X-Cache-Status" not in resp.headers
            first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 10)
            assert first.startswith(b"retry:")
            site = next(iter(store.sites))
            newest = store.newest(site)
            assert newest is not None
            store.add([dataclasses.replace(newest, time=int(clock.now * 1000), values={**newest.values, "vacantSpaces": 4243})])
            # nginx buffering would hold this small event back until its buffer filled or the stream ended.
            event = b""
            while b"event: member" not in event:
                event = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 10)
            assert b"4243" in event
