"""Cross-cutting response rules: problem documents for every error, CORS on everything."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ldf_server.http.problems import Problem, problem_response
from ldf_server.http.state import STATE

log = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Location, Link, Content-Encoding, X-Request-Id",
}
PREFLIGHT_HEADERS = {
    # POST, Authorization, Content-Type and X-API-Key are for push from a browser-based sensor console.
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Accept, Accept-Encoding, If-None-Match, If-Modified-Since, Cache-Control, "
    "Authorization, Content-Type, X-API-Key",
    "Access-Control-Max-Age": "86400",
}


# Served while the store is still loading: probes, metrics and static documents. Everything
# else answers 503: a page served from a half-replayed store could be cached as immutable.
SERVED_WHILE_STARTING = ("/health/", "/metrics", "/context.jsonld", "/_assets/", "/openapi.json")
STARTING_RETRY_S = 5


@web.middleware
async def problems_and_cors(request: web.Request, handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        resp: web.StreamResponse = web.Response(status=204, headers=PREFLIGHT_HEADERS)
    elif not request.app[STATE].ready and not request.path.startswith(SERVED_WHILE_STARTING):
        resp = problem_response(503, "the server is starting (replaying its durable log, backfilling); try again shortly",
                                title="Starting", headers={"Retry-After": str(STARTING_RETRY_S)}, instance=request.path)
    else:
        try:
            resp = await handler(request)
        except Problem as problem:
            resp = problem.response(instance=request.path)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            detail = {404: "no resource at this URL; start at / for the catalog"}.get(exc.status, exc.reason)
            resp = problem_response(exc.status, detail, headers=headers, instance=request.path)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path_qs)
            resp = problem_response(500, "the server failed to answer this request; it has been logged")
    resp.headers.update(CORS_HEADERS)
    return resp
