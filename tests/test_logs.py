"""Structured logs: JSON lines with the request id of the request that wrote them."""

from __future__ import annotations

import io
import json
import logging

from aiohttp import web

from ldf_server import logs
from ldf_server.app import create_app


async def test_request_ids_are_echoed_and_tag_every_log_line(aiohttp_client, config, state):
    app = create_app(config, state=state, run_feeds=False)

    async def noisy(request: web.Request) -> web.Response:
        logging.getLogger("ldf_server.test").warning("handling %s", request.path)
        return web.Response(text="ok")

    app.router.add_get("/_noisy", noisy)
    client = await aiohttp_client(app)
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("info", stream=out, json_lines=True)
    try:
        given = await client.get("/_noisy", headers={"X-Request-Id": "sensor-42.batch-7"})
        minted = await client.get("/_noisy", headers={"X-Request-Id": "bad id\twith spaces" * 10})
        problem = await client.get("/nope")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert given.headers["X-Request-Id"] == "sensor-42.batch-7"
    new_id = minted.headers["X-Request-Id"]
    assert new_id and new_id != "bad id" and " " not in new_id
    assert problem.status == 404 and problem.headers["X-Request-Id"]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    tagged = [(l["request_id"], l["message"]) for l in lines if l["logger"] == "ldf_server.test"]
    assert tagged == [("sensor-42.batch-7", "handling /_noisy"), (new_id, "handling /_noisy")]
    assert all({"time", "level", "logger", "message"} <= set(l) for l in lines)


def test_readable_lines_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("info", stream=out)
    try:
        logging.getLogger("ldf_server.test").info("hello")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    line = out.getvalue().strip()
    assert "INFO ldf_server.test" in line and line.endswith("hello") and not line.startswith("{")


async def test_access_log_lines_carry_the_request_id(config, state):
    import aiohttp

    from ldf_server.http.limits import start_server

    access = logging.getLogger("ldf_server.test.access")
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect()
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    runner, site = await start_server(create_app(config, state=state, run_feeds=False), config.server,
                                      host="127.0.0.1", port=0, access_log=access)
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/parking/latest",
                                   headers={"X-Request-Id": "poller-7"}) as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()
        access.removeHandler(handler)
    assert any("/parking/latest" in line and "request_id=poller-7" in line for line in seen), seen
