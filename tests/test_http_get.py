"""``http_get`` reads a feed to its end: chunked and slow upstreams are not truncated, and
oversize bodies are refused whether or not they announce their length."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from ldf_server.adapters import base
from ldf_server.adapters.base import FeedError, http_get


async def trickle(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for i in range(int(request.query.get("parts", "20"))):
        await resp.write(f"part-{i:03d};".encode() * 100)
        await asyncio.sleep(0.01)
    await resp.write_eof()
    return resp


async def sized(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * int(request.query["n"]))


@pytest.fixture
async def upstream(aiohttp_server):  # type: ignore[no-untyped-def]
    app = web.Application()
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/sized", sized)
    return await aiohttp_server(app, host="127.0.0.1")


async def test_a_chunked_slow_feed_is_read_to_the_end(upstream):
    async with aiohttp.ClientSession() as session:
        body = await http_get(session, str(upstream.make_url("/trickle?parts=20")), timeout=10)
    expected = b"".join(f"part-{i:03d};".encode() * 100 for i in range(20))
    assert body == expected


@pytest.mark.parametrize("path", ["/trickle?parts=20", "/sized?n=20000"])
async def test_more_than_the_limit_is_refused(upstream, monkeypatch, path):
    monkeypatch.setattr(base, "MAX_PAYLOAD_BYTES", 5000)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FeedError, match="larger than 5000"):
            await http_get(session, str(upstream.make_url(path)), timeout=10)


async def test_exactly_the_limit_is_accepted(upstream, monkeypatch):
    monkeypatch.setattr(base, "MAX_PAYLOAD_BYTES", 5000)
    async with aiohttp.ClientSession() as session:
        body = await http_get(session, str(upstream.make_url("/sized?n=5000")), timeout=10)
    assert len(body) == 5000
