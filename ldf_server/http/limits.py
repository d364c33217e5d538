"""Limits against hostile or broken clients, enforced below the application.

What aiohttp offers, and what this module adds (every value comes from ``[server]``):

- request line and header sizes: aiohttp's parser limits (``max_line_size``,
  ``max_field_size``, ``max_headers``), passed to each connection's handler;
- an idle keep-alive timeout: aiohttp's ``keepalive_timeout``;
- a deadline for the request head (``header_timeout``): aiohttp has none (its keep-alive
  timer is meant for idle connections), so :class:`GuardedRequestHandler` arms a timer when a
  connection opens and at the first byte of each later request, and disarms it once the
  head is parsed. A head still incomplete then gets ``408`` and the connection is closed,
  so clients that trickle bytes cannot hold connections (bytes of a next request that arrive
  while the previous one is still being answered are left to the keep-alive timeout);
- a bound on open connections (``max_connections``): counted per accepted connection, not
  per request, because what a slow or idle client holds is a connection (a socket, a parser,
  a task), and a request semaphore would not bound those. A connection over the limit is
  answered ``503`` with ``Retry-After`` straight away and closed, without parsing what it
  sends or starting a task for it;
- problem documents for the errors aiohttp answers itself, before any middleware runs (a
  request line or header it cannot parse or that is too large, an ``Expect`` it does not
  know, a handler exception the middleware let through): ``handle_error`` is overridden, and
  HTTP errors raised outside the middleware are turned into problems.

The guarded server also asks ``http/fastpath.py`` first, before the app's router: plain
``GET``s of latest and window pages are answered there by the same handler code.

Bodies are bounded where they are read: ``POST …/push/…`` reads at most ``max_push_body``
bytes within ``body_timeout`` (:mod:`ldf_server.http.push`); no other route reads a body, and
aiohttp discards an unread one for at most ``LINGERING_S`` before closing the connection.

:func:`start_server` starts an app with these limits (the tests use it); :func:`run` is what
``ldf-server`` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from contextlib import AbstractAsyncContextManager
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Mapping, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from ldf_server.config import ServerConfig
from ldf_server.http.fastpath import FAST_PATH
from ldf_server.http.middleware import CORS_HEADERS
from ldf_server.http.problems import problem_response

log = logging.getLogger(__name__)

# The access log (``--log-level debug``): the request id is read from the response header,
# because the id's context variable is reset before aiohttp writes the access line.
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf request_id=%{X-Request-Id}o'

LINGERING_S = 10.0  # how long an unread request body is read and discarded before the connection closes
REJECT_LINGER_S = 1.0  # a refused connection reads (and drops) what the client still sends, so it sees our 503, not a reset
RETRY_AFTER_S = 5  # what a client refused for too many connections is told to wait


def handler_args(server: ServerConfig) -> dict[str, Any]:
    """The keyword arguments aiohttp's request handler takes for our ``[server]`` limits."""
    return {
        "max_line_size": server.max_request_line,
        "max_field_size": server.max_header_size,
        "max_headers": server.max_headers,
        "keepalive_timeout": server.keepalive_timeout,
        "lingering_time": LINGERING_S,
    }


def raw_problem(status: int, detail: str, *, headers: Mapping[str, str] | None = None) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response holding a problem document."""
    resp = problem_response(status, detail, headers=headers)
    body = resp.body
    assert isinstance(body, bytes)
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{k}: {v}" for k, v in resp.headers.items()]
    lines += [f"{k}: {v}" for k, v in CORS_HEADERS.items()]
    lines += [f"Content-Length: {len(body)}", f"Date: {formatdate(usegmt=True)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class GuardedRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol, with a connection limit, a head deadline and problem errors."""

    def __init__(self, manager: "GuardedServer", *, server_config: ServerConfig, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._limits = server_config
        self._counted = False
        self._refused: asyncio.Handle | None = None
        self._head_timer: asyncio.TimerHandle | None = None  # armed for a deadline at or before the current one
        self._head_since: float | None = None  # loop time the current request head began; None: no head under way
        self._head_bytes = 0  # bytes of the current request head received so far
        self._line_bytes = 0  # bytes of its request line (up to the first LF)
        self._line_done = False
        self._head_start = b""  # its first bytes: is it a HEAD request (whose error answer must have no body)?

    # -- connection limit ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.open_connections >= self._limits.max_connections:
            self._refuse(transport)
            return
        guard.open_connections += 1
        self._counted = True
        super().connection_made(transport)
        self._begin_head()

    def _refuse(self, transport: asyncio.BaseTransport) -> None:
        self._guard.refused_connections += 1
        transport = cast(asyncio.Transport, transport)
        detail = f"the server has its maximum of {self._limits.max_connections} open connections; retry later"
        transport.write(raw_problem(503, detail, headers={"Retry-After": str(RETRY_AFTER_S)}))
        if transport.can_write_eof():
            transport.write_eof()
        self._refused = self._loop.call_later(REJECT_LINGER_S, transport.close)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused is not None:
            self._refused.cancel()
            self._manager = None
            return
        if self._counted:
            self._counted = False
            self._guard.open_connections -= 1
        self._disarm()
        super().connection_lost(exc)

    # -- deadline for the request head ----------------------------------------------------

    # The timer is lazy: a head that completes only clears ``_head_since``, and the timer, when
    # it fires, re-arms itself for the deadline of the head under way then, if any. Arming and
    # cancelling a timer for every request of a kept-alive connection cost as much as routing it.

    def _begin_head(self) -> None:
        self._head_bytes = self._line_bytes = 0
        self._line_done = False
        self._head_start = b""
        self._head_since = since = self._loop.time()
        if self._head_timer is None:
            self._head_timer = self._loop.call_at(since + self._limits.header_timeout, self._check_head)

    def _disarm(self) -> None:
        self._head_since = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _check_head(self) -> None:
        self._head_timer = None
        since = self._head_since
        if since is None:
            return  # no head under way: the next one arms the timer again
        deadline = since + self._limits.header_timeout
        if self._loop.time() < deadline:
            self._head_timer = self._loop.call_at(deadline, self._check_head)
            return
        self._head_too_slow()

    def _awaiting_request(self) -> bool:
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return  # dropped: the 503 is already on its way
        if data and self._head_since is None and self._awaiting_request():
            self._begin_head()  # the first byte of the next request on a kept-alive connection
        if self._head_since is not None:
            self._head_bytes += len(data)
            if len(self._head_start) < 5:
                self._head_start += data[:5 - len(self._head_start)]
            if not self._line_done:
                end = data.find(b"\n")
                self._line_bytes += len(data) if end < 0 else end
                self._line_done = end >= 0
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:  # a head was parsed (or refused by the parser)
            self._head_since = None

    def _head_too_slow(self) -> None:
        self._head_since = None
        transport = self.transport
        if transport is None or self._force_close or self._close:
            return
        if self._head_bytes:  # a request started and stalled; a connection that sent nothing just closes
            transport.write(raw_problem(408, f"the request head did not arrive within {self._limits.header_timeout:g} s"))
        self.force_close()

    # -- errors aiohttp answers itself ------------------------------------------------------

    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: a response is under way, only closing is left
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        title = None
        if isinstance(exc, LineTooLong):
            if not self._line_done or self._line_bytes > self.max_line_size:
                status, detail = 414, f"the request target is longer than {self.max_line_size} bytes"
            else:
                status, detail = 431, f"a header line is longer than {self.max_field_size} bytes"
        elif isinstance(exc, BadHttpMessage) and "too many headers" in exc.message.lower():
            status, detail = 431, f"more than {self.max_headers} header lines"
        elif isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            status, detail = exc.code, f"the request is not valid HTTP/1.1: {exc.message[:300]}"
            title = "Malformed request"
        elif status < 500:
            detail = message or HTTPStatus(status).phrase
        else:
            detail = "the server failed to answer this request; it has been logged"
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        else:
            self.logger.debug("refused a request from %s: %s", request.remote, exc)
        resp = problem_response(status, detail, title=title)
        resp.headers.update(CORS_HEADERS)
        if self._head_start == b"HEAD ":  # the request was not understood, but its method was: no body
            resp.body = None
        resp.force_close()
        return resp


def problems_outside_middleware(
    handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
    fast: Callable[[web.BaseRequest], web.StreamResponse | None] | None = None,
) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """HTTP errors that aiohttp raises before the middleware runs (an unknown ``Expect``) as problems.

    ``fast``: asked first; what it answers skips the app's router and middleware chain
    (``http/fastpath.py``: cached pages, answered by the same handler code)."""

    async def guarded(request: web.BaseRequest) -> web.StreamResponse:
        if fast is not None:
            resp = fast(request)
            if resp is not None:
                return resp
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = problem_response(exc.status, exc.text or exc.reason, instance=request.path)
            resp.headers.update(CORS_HEADERS)
            return resp

    return guarded


class GuardedServer(web.Server):
    """aiohttp's server (the protocol factory), making :class:`GuardedRequestHandler` connections."""

    def __init__(self, handler: Any, *, server_config: ServerConfig, fast: Any = None, **kwargs: Any) -> None:
        super().__init__(problems_outside_middleware(handler, fast), **kwargs)
        self.server_config = server_config
        self.open_connections = 0
        self.refused_connections = 0

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, server_config=self.server_config, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose connections obey the ``[server]`` limits."""

    def __init__(self, app: web.Application, server_config: ServerConfig, **kwargs: Any) -> None:
        super().__init__(app, **{**handler_args(server_config), **kwargs})
        self.server_config = server_config

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the app's startup and freezes it
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            server_config=self.server_config,
            fast=self.app.get(FAST_PATH),
            **plain._kwargs,
        )


async def start_server(
    app: web.Application,
    server_config: ServerConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    handle_signals: bool = False,
    access_log: logging.Logger | None = None,
    shutdown_timeout: float | None = None,
    reuse_port: bool = False,
) -> tuple[GuardedAppRunner, web.TCPSite]:
    """Start ``app`` with the production limits; stop it with ``await runner.cleanup()``.

    ``host`` and ``port`` default to the config's; ``port=0`` picks a free port (``site.port``).
    ``reuse_port``: ``SO_REUSEPORT``, so several processes listen on one port (``workers``).
    """
    if shutdown_timeout is None:
        shutdown_timeout = server_config.shutdown_timeout
    runner = GuardedAppRunner(app, server_config, handle_signals=handle_signals, access_log=access_log,
                              access_log_format=ACCESS_LOG_FORMAT,
                              shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host if host is not None else server_config.host,
                       server_config.port if port is None else port, reuse_port=reuse_port or None)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site


def _warn_about_descriptors(server_config: ServerConfig) -> None:
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - every POSIX system has it
        return
    if soft != resource.RLIM_INFINITY and server_config.max_connections + 64 > soft:
        log.warning("max_connections is %d but the process may open only %d files (ulimit -n); "
                    "raise the limit or lower max_connections", server_config.max_connections, soft)


def run(
    app: web.Application,
    server_config: ServerConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    access_log: logging.Logger | None = None,
    shutdown_timeout: float | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    reuse_port: bool = False,
    around: Callable[[GuardedAppRunner, web.TCPSite], AbstractAsyncContextManager[object]] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly (what :func:`aiohttp.web.run_app` does).

    ``around(runner, site)`` is entered once the port is open and left at shutdown, before the
    app's own cleanup: the leader of several ``workers`` starts and stops its followers there.
    """
    loop = loop or asyncio.new_event_loop()
    _warn_about_descriptors(server_config)

    async def serve_forever() -> None:
        runner, site = await start_server(app, server_config, host=host, port=port, handle_signals=True,
                                          access_log=access_log, shutdown_timeout=shutdown_timeout,
                                          reuse_port=reuse_port)
        try:
            async with (around(runner, site) if around is not None else contextlib.nullcontext()):
                while True:
                    await asyncio.sleep(3600)
        finally:
            await runner.cleanup()

    main = loop.create_task(serve_forever())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                try:
                    loop.run_until_complete(main)
                except asyncio.CancelledError:
                    pass
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)
