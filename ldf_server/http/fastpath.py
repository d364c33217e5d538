"""A shortcut for the pages clients fetch most: ``/{ds}/latest`` and ``/{ds}/windows/{start}``.

Why: on a cached page, aiohttp's router (trying the ``{ds}`` routes one regular expression
at a time), its middleware chain (our middleware plus the one aiohttp adds whenever there
is any) and the handler's coroutine cost more CPU than building the answer. The production
server (``http/limits.py``'s guarded server) asks :func:`fast_path`'s function first; it
answers a plain ``GET`` or ``HEAD`` of those two routes with the very handler code the
router would call (``handlers.latest_page`` / ``window_page``), and sets what the middleware
would set: the request id (in the logging context and the response), CORS headers and the
request metrics, under the same route pattern.

It answers only the plain case and otherwise returns ``None``, so that the full path
answers exactly as it always did: before the store is ready (503), any other method or
path, a percent-encoded or query-carrying target (``?format=``), an ``Expect`` header, an
unknown dataset, and any error the handler raises (404, 406, 410 …: the full path raises it
again and turns it into its problem document). The access log is written by aiohttp after
either path, the same way. What the shortcut skips besides: middlewares added to the app
after ``create_app`` and ``on_response_prepare`` signals (ldf-server has neither); aiohttp's
test client and ``web.run_app`` do not use the guarded server, so they always take the full
path (``tests/test_fastpath.py`` holds the two to the same answers).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Callable

from aiohttp import web

from ldf_server.http.handlers import latest_page, window_page
from ldf_server.http.middleware import finish
from ldf_server.logs import new_request_id, request_id

if TYPE_CHECKING:
    from ldf_server.http.metrics import Metrics
    from ldf_server.http.state import ServerState

# The router's patterns for these two routes (http/routes.py), on the raw target: no "%" (a
# percent-encoded target is left to the router, which decodes it) and no query.
HOT_PATHS = re.compile(r"/([a-z][a-z0-9-]*)/(?:(latest)|windows/([^/{}%?]+))")
LATEST = "/{ds}/latest"
WINDOW = "/{ds}/windows/{start}"

FastPath = Callable[[web.BaseRequest], "web.StreamResponse | None"]
FAST_PATH: web.AppKey[FastPath] = web.AppKey("fast_path", object)  # type: ignore[arg-type]


def fast_path(state: ServerState, metrics: Metrics) -> FastPath:
    """The function the guarded server asks first: a response, or None for the full path."""
    clock = time.perf_counter
    count = metrics.http.count_pattern
    set_id, reset_id = request_id.set, request_id.reset
    streams = state.streams
    match = HOT_PATHS.fullmatch

    def answer(request: web.BaseRequest) -> web.StreamResponse | None:
        method = request.method
        if (method != "GET" and method != "HEAD") or not state.ready:
            return None
        hot = match(request.raw_path)
        if hot is None:
            return None
        headers = request.headers
        if "Expect" in headers:
            return None
        fragments = streams.get(hot.group(1))
        if fragments is None:
            return None
        started = clock()
        rid = new_request_id(headers.get("X-Request-Id"))
        token = set_id(rid)
        try:
            if hot.group(2):
                resp, pattern = latest_page(request, state, fragments), LATEST
            else:
                resp, pattern = window_page(request, state, fragments, hot.group(3)), WINDOW
        except Exception:  # noqa: BLE001 - a problem or a failure: the full path answers it (and logs it)
            return None
        finally:
            reset_id(token)
        finish(resp, rid)
        count(pattern, method, resp.status, clock() - started)
        return resp

    return answer
