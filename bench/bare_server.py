"""The floor to compare ldf-server with: a bare aiohttp + uvloop server sending fixed bytes.

It serves, at the same paths as ldf-server, the bytes and response headers that
``http_bench.py`` captured from ldf-server (Content-Type, ETag, Cache-Control, Vary,
Last-Modified and the CORS headers; aiohttp adds Date, Server and Content-Length as it
does for ldf-server). A request whose ``If-None-Match`` equals the captured ETag gets the
captured 304 headers. There is no routing logic beyond aiohttp's router, no middleware,
no negotiation and no cache lookup: the difference to ldf-server is what those cost.

    python bench/bare_server.py --port 8081 --spec spec.json [--processes 2]

``--processes N`` forks N processes that all listen on the port with ``SO_REUSEPORT``: the
floor to compare ldf-server's ``workers = N`` with.

spec.json: {"routes": [{"path": "/parking/latest", "body_file": "latest.body",
"etag": "\\"abc\\"", "headers": [["Content-Type", "application/ld+json"], ...],
"headers_304": [[...], ...]}, ...]}
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from aiohttp import web

try:
    import uvloop
except ImportError:  # pragma: no cover - the benchmark runs where ldf-server runs, with uvloop
    uvloop = None


def make_handler(body: bytes, headers: dict[str, str], etag: str, headers_304: dict[str, str]):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers_304)
        return web.Response(body=body, headers=headers)

    return handler


def create_app(spec: dict) -> web.Application:
    app = web.Application()
    for route in spec["routes"]:
        body = Path(route["body_file"]).read_bytes()
        handler = make_handler(body, dict(route["headers"]), route["etag"], dict(route["headers_304"]))
        app.router.add_get(route["path"], handler)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--spec", required=True, help="JSON file listing the routes to serve")
    p.add_argument("--processes", type=int, default=1, help="processes on the port (SO_REUSEPORT when more than 1)")
    args = p.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    for _ in range(args.processes - 1):
        if os.fork() == 0:  # a child: serves like the parent; the benchmark kills the whole process group
            break
    web.run_app(
        create_app(spec),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        reuse_port=args.processes > 1 or None,
        loop=uvloop.new_event_loop() if uvloop else None,
    )


if __name__ == "__main__":
    main()
