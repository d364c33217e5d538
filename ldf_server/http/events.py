"""Live push: ``GET /{ds}/events``, a Server-Sent Events stream of the members a dataset gains.

Protocol (https://html.spec.whatwg.org/multipage/server-sent-events.html):

- ``retry:`` once at the start (how long a browser waits before it reconnects);
- one ``event: member`` per new member, ``id:`` its sequence number in the dataset (increasing
  by one per member), ``data:`` the member node as compact JSON-LD, ``@context`` the URL of the
  shared context (``/context.jsonld``) rather than the context inlined, to keep events small;
- ``: heartbeat`` comment lines when nothing was sent for ``server.sse_heartbeat`` seconds, so
  proxies keep the connection open (and a server notices a client that went away).

Resuming: a client that reconnects with ``Last-Event-ID`` (browsers do by themselves; those
that cannot set headers may pass ``?lastEventId=``) gets exactly the members numbered after it,
as long as the server still buffers them (the newest ``server.sse_buffer`` per dataset, in
memory). When some are no longer buffered, or the id is from before a restart (each process
numbers from its start-up second times a million, so its ids are above every earlier one and an
old id reads as older than the buffer), an ``event: gap`` comes first, with ``data: {"firstAvailable": n}``
and no id; what follows starts at ``n``. A client that sees a gap should fill it from the
event stream's pages (``/{ds}/view``). Without an id, a client gets members added from now on.

The store knows nothing of asyncio: it calls a listener after adding members, and the hub
here wakes every waiting client through an ``asyncio.Event``. On shutdown the streams end at
once, so they do not hold graceful shutdown for its whole timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from ldf_server.fragments.members import member_node
from ldf_server.http.handlers import dataset_of
from ldf_server.http.middleware import CORS_HEADERS
from ldf_server.http.problems import Problem
from ldf_server.http.state import STATE
from ldf_server.store.memory import DatasetStore

MEDIA_TYPE = "text/event-stream"
RETRY_MS = 5000
HEADERS = {
    "Content-Type": f"{MEDIA_TYPE}; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx: pass every event on at once
    **CORS_HEADERS,
}


class Hub:
    """Wakes the clients of one store when it gains members, or when the server stops."""

    def __init__(self, store: DatasetStore) -> None:
        self.store = store
        self.closed = False
        self._event = asyncio.Event()
        store.listeners.append(self.notify)

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()  # waiters hold the one just set

    def waiter(self) -> asyncio.Event:
        """Take this before looking at the store: it is set by the next change."""
        return self._event

    def close(self) -> None:
        self.closed = True
        self.notify()
        with contextlib.suppress(ValueError):
            self.store.listeners.remove(self.notify)


HUBS: web.AppKey[dict[str, Hub]] = web.AppKey("event_hubs", dict)


async def _hubs(app: web.Application) -> AsyncIterator[None]:
    app[HUBS] = {ds: Hub(stream.store) for ds, stream in app[STATE].streams.items()}
    yield
    _close(app)


async def _on_shutdown(app: web.Application) -> None:
    _close(app)


def _close(app: web.Application) -> None:
    for hub in app.get(HUBS, {}).values():
        if not hub.closed:
            hub.close()


def setup(app: web.Application) -> None:
    """Hubs for every dataset; open streams end when the server shuts down (before it waits
    for in-flight requests)."""
    app.cleanup_ctx.append(_hubs)
    app.on_shutdown.append(_on_shutdown)


def _last_event_id(request: web.Request) -> int | None:
    # An empty header says "no id yet" (as a fresh EventSource would): the query may still give one,
    # and a malformed one is refused rather than ignored.
    value = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise Problem(400, f"Last-Event-ID {value[:40]!r} is not an event id of this stream (a non-negative integer)",
                      title="Bad Last-Event-ID")
    return int(value)


async def events(request: web.Request) -> web.StreamResponse:
    state, fragments = dataset_of(request)
    last = _last_event_id(request)
    if request.method == "HEAD":
        return web.Response(headers=HEADERS)
    hub = request.app[HUBS][fragments.ds]
    store, urls, ds, pilot = fragments.store, state.urls, fragments.ds, fragments.pilot
    heartbeat = state.config.server.sse_heartbeat
    context = urls.context()

    def render(gap: int | None, items: list) -> bytes:
        out = []
        if gap is not None:
            out.append(b"event: gap\ndata: " + orjson.dumps({"firstAvailable": gap}) + b"\n\n")
        for seq, member in items:
            node = {"@context": context, **member_node(urls, ds, pilot, member, store.sites.get(member.site))}
            out.append(b"event: member\nid: %d\ndata: %s\n\n" % (seq, orjson.dumps(node)))
        return b"".join(out)

    resp = web.StreamResponse(headers=HEADERS)
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    try:
        first = b"retry: %d\n\n" % RETRY_MS
        cursor = store.sequence
        if last is not None:
            first += render(*store.events_after(last))
        await resp.write(first)
        written = loop.time()
        while not hub.closed:
            waiter = hub.waiter()
            if store.sequence > cursor:
                chunk = render(*store.events_after(cursor))
                cursor = store.sequence
                await resp.write(chunk)
                written = loop.time()
                continue
            try:
                await asyncio.wait_for(waiter.wait(), max(0.0, written + heartbeat - loop.time()))
            except TimeoutError:
                await resp.write(b": heartbeat\n\n")
                written = loop.time()
    except ConnectionError:  # the client went away
        return resp
    with contextlib.suppress(ConnectionError):
        await resp.write_eof()
    return resp
