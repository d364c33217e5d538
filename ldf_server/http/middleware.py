"""Cross-cutting response rules, in one middleware: request id, metrics, 503 while starting,
CORS preflight, problem documents for every error, CORS on everything.

One middleware rather than one per rule because each aiohttp middleware is a coroutine
layer of its own on every request (with its own try/finally), and on a cached page that
bookkeeping cost as much as the handler itself. The order of the rules is that of the
separate middlewares it replaces (outermost first):

1. metrics: every request is counted with its route pattern, latency and status, including
   requests answered by a rule below and 3xx exceptions raised past it;
2. request id: the client's sane ``X-Request-Id`` or a new one, set in the logging context
   while the request is handled and echoed on the response;
3. preflight, 503 while starting, problems and CORS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Awaitable, Callable

from aiohttp import web

from ldf_server.http.cors import CORS_HEADERS, PREFLIGHT_HEADERS
from ldf_server.http.problems import Problem, problem_response
from ldf_server.logs import new_request_id, request_id

if TYPE_CHECKING:
    from ldf_server.http.metrics import Metrics
    from ldf_server.http.state import ServerState

log = logging.getLogger(__name__)

# Served while the store is still loading: probes, metrics and static documents. Everything
# else answers 503: a page served from a half-replayed store could be cached as immutable.
SERVED_WHILE_STARTING = ("/health/", "/metrics", "/context.jsonld", "/_assets/", "/openapi.json")
STARTING_RETRY_S = 5

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
__all__ = ["CORS_HEADERS", "PREFLIGHT_HEADERS", "finish", "front"]  # CORS_HEADERS: limits.py and events.py take them from here

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def front(state: ServerState, metrics: Metrics) -> Middleware:
    """The app's one middleware, bound to its state and its metrics registry."""
    clock = time.perf_counter
    count = metrics.count
    set_id, reset_id = request_id.set, request_id.reset

    @web.middleware
    async def front_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = clock()
        status = 0
        rid = new_request_id(request.headers.get("X-Request-Id"))
        token = set_id(rid)
        try:
            try:
                if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
                    resp = web.Response(status=204, headers=PREFLIGHT_HEADERS)
                elif not state.ready and not request.path.startswith(SERVED_WHILE_STARTING):
                    resp = _starting(request)
                else:
                    resp = await handler(request)
            except Problem as problem:
                resp = problem.response(instance=request.path)
            except web.HTTPException as exc:
                if exc.status < 400:  # a redirect raised by a handler: aiohttp sends it as it is
                    status = exc.status
                    exc.headers["X-Request-Id"] = rid
                    raise
                resp = _http_error(request, exc)
            except (asyncio.CancelledError, KeyboardInterrupt):  # the client went away: nothing is sent
                raise
            except Exception:
                log.exception("unhandled error serving %s %s", request.method, request.path_qs)
                resp = problem_response(500, "the server failed to answer this request; it has been logged")
            finish(resp, rid)
            status = resp.status
            return resp
        finally:
            reset_id(token)
            count(request, status, clock() - started)

    return front_middleware


def finish(resp: web.StreamResponse, rid: str) -> None:
    """CORS and the request id on a response (prepared header sets of cached pages have CORS already)."""
    headers = resp.headers
    if ALLOW_ORIGIN not in headers:
        headers.update(CORS_HEADERS)
    headers["X-Request-Id"] = rid


def _starting(request: web.Request) -> web.Response:
    return problem_response(503, "the server is starting (replaying its durable log, backfilling); try again shortly",
                            title="Starting", headers={"Retry-After": str(STARTING_RETRY_S)}, instance=request.path)


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    detail = {404: "no resource at this URL; start at / for the catalog"}.get(exc.status, exc.reason)
    return problem_response(exc.status, detail, headers=headers, instance=request.path)
