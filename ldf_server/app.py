"""The composition root: config → stores, feeds and fragments → an aiohttp application."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import threading
import time
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator, Literal, Mapping

import aiohttp
from aiohttp import web

from ldf_server.adapters.poller import Poller
from ldf_server.adapters.registry import create_adapter
from ldf_server.config import Config
from ldf_server.fragments.stream import StreamFragments
from ldf_server.fragments.timeline import Timeline
from ldf_server.fragments.tpf import TpfSource
from ldf_server.fragments.urls import Urls
from ldf_server.http import dumps, events, openapi
from ldf_server.http.auth import load_sources
from ldf_server.http.metrics import METRICS, Metrics
from ldf_server.http.fastpath import FAST_PATH, fast_path
from ldf_server.http.middleware import front
from ldf_server.http.routes import add_routes
from ldf_server.http.state import STATE, ServerState
from ldf_server.records import Site
from ldf_server.store import snapshot
from ldf_server.store.log import DatasetLog
from ldf_server.store.lock import lock_dataset
from ldf_server.store.memory import DatasetStore
from ldf_server.timeutil import format_day

log = logging.getLogger(__name__)

MAX_REQUEST_BODY = 1024 * 1024
RETENTION_EVERY_S = 600
LOG_PROBE_EVERY_S = 10.0  # how soon readiness sees that a failed durable log can write again
SNAPSHOT_EVERY_S = 600.0  # how often closed days are sealed and written as snapshots (restart speed)


def build_state(
    config: Config, *, clock: Callable[[], float] = time.time, env: Mapping[str, str] | None = None
) -> ServerState:
    urls = Urls(config.server.public_base)
    streams = {
        ds.id: StreamFragments(
            ds, DatasetStore(ds.id, int(ds.window * 1000), pilot=ds.pilot, clock=clock,
                             recent_events=config.server.sse_buffer), urls)
        for ds in config.datasets
    }
    pollers = [
        Poller(create_adapter(feed), streams[feed.dataset].store, clock=clock) for feed in config.feeds if feed.enabled
    ]
    for source in config.push:
        streams[source.dataset].store.upsert_sites(
            Site(key=s.key, label=s.label, city=s.key.split("/")[0], iri=s.iri, description=s.description,
                 capacity=s.capacity, lat=s.lat, lon=s.lon)
            for s in source.sites
        )
    tpf = {ds: TpfSource(urls.tpf(ds), [stream], urls.genid()) for ds, stream in streams.items()}
    tpf[""] = TpfSource(urls.tpf(), list(streams.values()), urls.genid())
    return ServerState(
        config=config, urls=urls, streams=streams, pollers=pollers, clock=clock,
        push_sources=load_sources(config.push, env), tpf=tpf,
    )


def create_app(
    config: Config, *, state: ServerState | None = None, run_feeds: bool = True,
    role: Literal["single", "leader", "follower"] = "single",
) -> web.Application:
    """The app factory. ``run_feeds=False`` serves a store filled by the caller (tests, benchmarks).

    ``role`` (``[server] workers`` > 1, see ldf_server/workers.py): a ``leader`` is a single
    server that also seals closed pages on a timer; a ``follower`` runs no feed, writes nothing
    and fills its stores by following the leader's durable log instead.

    On SIGTERM, ``web.run_app`` stops listening, runs ``on_shutdown`` (before in-flight requests
    end: flush nothing there), waits up to ``server.shutdown_timeout`` for in-flight requests,
    then unwinds the cleanup contexts in reverse order: retention stops, the pollers are
    cancelled, and only then are the journals flushed and closed. A component that must flush
    at shutdown adds a cleanup context before ``_feeds``, so it closes after the last poll.
    """
    state = state if state is not None else build_state(config)
    state.metrics = Metrics(state)  # a registry per app: many apps share one test process
    # One middleware for every cross-cutting rule (request id, metrics, CORS, problems): see http/middleware.py.
    app = web.Application(middlewares=[front(state, state.metrics)], client_max_size=MAX_REQUEST_BODY)
    app[STATE] = state
    app[METRICS] = state.metrics
    app[FAST_PATH] = fast_path(state, state.metrics)  # taken by the guarded server (http/limits.py)
    add_routes(app)
    events.setup(app)  # live push: wakes /{ds}/events clients, ends their streams on shutdown
    openapi.setup(app)  # /openapi.json: built once at start-up, when every route is in place
    if role == "follower":
        from ldf_server.workers import follow_log

        app.cleanup_ctx.append(follow_log)  # replays and tails the log read-only; ready after that
        return app
    if role == "leader":
        from ldf_server.workers import seal_on_time

        app.cleanup_ctx.append(seal_on_time)
    if config.server.data_dir:
        # Served from a store a caller filled: the log is replayed before the first request.
        # Running feeds: it is replayed in the background after the port opens (see _feeds).
        app.cleanup_ctx.append(functools.partial(_journals, replay_now=not run_feeds))
    if run_feeds:
        app.cleanup_ctx.append(_feeds)
    else:
        app[STATE].ready = True
    app.cleanup_ctx.append(_retention)
    return app


def apply_retention(state: ServerState) -> int:
    """Compact every store to its retention window, cut at a UTC day boundary.

    Whole days go at once, so an immutable day node never links to a removed page,
    and the root view drops its relation to a day in the same step as the day goes.
    """
    removed = 0
    now = state.now_ms()
    for stream in state.streams.values():
        cutoff = Timeline.day_start(now - int(stream.config.retention * 1000))
        n = stream.store.compact(cutoff)
        if n:
            log.info("dataset %s: retention removed %d members older than %s", stream.ds, n, cutoff)
        if stream.store.journal is not None:  # the process that writes the data directory
            dumps.remove_dumps_before(state.config.server.data_dir, stream.ds, format_day(stream.store.retained_from))
        removed += n
    return removed


def open_journals(state: ServerState, data_dir: Path, stop: threading.Event | None = None) -> int:
    """Replay each dataset's durable log into its store, then journal every later change
    (``stop``: end the replay early, at shutdown; what was read stays, nothing is written)."""
    server = state.config.server
    loaded = 0
    metrics = state.metrics
    for ds, stream in state.streams.items():
        journal = DatasetLog(
            data_dir / ds, fsync=server.fsync, fsync_interval=server.fsync_interval,
            on_append=(lambda n, ds=ds: metrics.log_appended(ds, n)) if metrics else None,
        )
        wrap = (lambda records: _until(stop, records)) if stop is not None else (lambda records: records)
        loaded += snapshot.restore_dataset(stream.store, journal, wrap)
        stream.store.journal = journal
        # A log that cannot be written takes the server out of rotation until a write succeeds.
        state.health_checks[f"log:{ds}"] = lambda j=journal: (j.last_error is None, j.last_error or "writable")
    return loaded


async def _journals(app: web.Application, *, replay_now: bool = True) -> AsyncIterator[None]:
    """Lock the data directory (at once: a second server there must not start), replay the log
    now or leave that to the start-up task, and flush and close it last at shutdown."""
    state = app[STATE]
    data_dir = Path(state.config.server.data_dir or ".")
    # One writer per dataset directory: `ldf-server import` is refused while this server runs.
    locks = [lock for ds in state.streams if (lock := lock_dataset(data_dir / ds)) is not None]
    if replay_now:
        _replay(state)
    timers = [asyncio.create_task(_probe_failed_journals(state), name="log-probe")]
    if state.config.server.fsync == "interval":
        timers.append(asyncio.create_task(_sync_quiet_journals(state), name="log-sync"))
    try:
        yield
    finally:
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        for stream in state.streams.values():
            if isinstance(stream.store.journal, DatasetLog):
                stream.store.journal.close()  # flush and fsync on a clean shutdown
        for lock in locks:
            lock.release()


async def _probe_failed_journals(state: ServerState, every: float = LOG_PROBE_EVERY_S) -> None:
    """Retry a failed log now and then, so readiness recovers when space returns without waiting for data."""
    while True:
        await asyncio.sleep(every)
        for stream in state.streams.values():
            journal = stream.store.journal
            if isinstance(journal, DatasetLog) and journal.last_error is not None:
                stream.store.probe_journal()


async def _sync_quiet_journals(state: ServerState) -> None:
    """``fsync = "interval"``: sync what was written before a quiet spell, within one interval."""
    every = state.config.server.fsync_interval
    while True:
        await asyncio.sleep(every)
        for stream in state.streams.values():
            journal = stream.store.journal
            if isinstance(journal, DatasetLog):
                journal.sync_due()


STOP_CHECK_EVERY = 4096  # records between two looks at the stop flag during a replay


def _until(stop: threading.Event, records: Iterator[dict]) -> Iterator[dict]:
    for n, record in enumerate(records):
        if n % STOP_CHECK_EVERY == 0 and stop.is_set():
            return
        yield record


def _replay(state: ServerState, stop: threading.Event | None = None) -> None:
    started = time.monotonic()
    loaded = open_journals(state, Path(state.config.server.data_dir or "."), stop)
    log.info("recovered %d members from the durable log in %.2fs", loaded, time.monotonic() - started)
    # The replayed members live as long as the server: out of the cyclic collector's sight, so
    # that its full collections do not rescan millions of objects while requests wait.
    gc.freeze()


async def _feeds(app: web.Application) -> AsyncIterator[None]:
    """Start-up happens after the port opens, so probes see ``starting`` (503) rather than a
    refused connection while a long log is replayed; data routes answer 503 until ready."""
    task = asyncio.create_task(_load_and_poll(app[STATE]), name="startup")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _load_and_poll(state: ServerState) -> None:
    started = time.monotonic()
    _reread_on_sighup(state)  # before the replay: a SIGHUP meanwhile must not end the process
    try:
        if state.config.server.data_dir:
            await _replay_in_thread(state)
        for poller in state.pollers:
            poller.backfill()
        apply_retention(state)
    except Exception as exc:  # nothing can be served: say so in readiness and the log, and stop
        log.exception("start-up failed; the server cannot serve data")
        state.startup_error = f"{type(exc).__name__}: {exc}"
        if state.on_fatal is not None:
            state.on_fatal()
        return
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": "ldf-server"}) as session:
        tasks = [asyncio.create_task(_run_feed(p, session), name=f"feed:{p.status.feed}") for p in state.pollers]
        if state.config.server.data_dir:
            tasks.append(asyncio.create_task(_snapshot_closed_days(state), name="snapshots"))
        state.ready = True
        members = sum(s.store.member_count for s in state.streams.values())
        log.info("ready in %.2fs: %d feeds, %d members", time.monotonic() - started, len(tasks), members)
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _snapshot_closed_days(state: ServerState, every: float = SNAPSHOT_EVERY_S) -> None:
    """Seal the days that are closed (by the same rule that serves a day as immutable) and write
    each sealed day's snapshot once, in a thread, so a restart loads them instead of parsing."""
    while True:
        for stream in state.streams.values():
            store, journal = stream.store, stream.store.journal
            if not isinstance(journal, DatasetLog):
                continue
            try:
                store.seal_before(Timeline.day_start(state.now_ms() - stream.timeline.grace_ms))
                written = failed = 0
                for capture in snapshot.due(store, journal):  # one day at a time: copied here, written in a thread
                    ok, bad = await asyncio.to_thread(snapshot.write_all, [capture])
                    written, failed = written + ok, failed + bad
                if written or failed:
                    log.info("dataset %s: wrote %d day snapshots (%d failed)", stream.ds, written, failed)
            except Exception:  # a snapshot only saves time at the next restart: never worth a crash
                log.exception("dataset %s: snapshots skipped this round", stream.ds)
        await asyncio.sleep(every)


async def _replay_in_thread(state: ServerState) -> None:
    """In a thread, so the event loop answers probes meanwhile; nothing else reads the stores
    until ``ready`` (the middleware refuses data routes), nor writes them. At shutdown the
    replay is told to stop and awaited, so the data directory's lock outlives every read."""
    stop = threading.Event()
    replay = asyncio.ensure_future(asyncio.to_thread(_replay, state, stop))
    try:
        await asyncio.shield(replay)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.gather(replay, return_exceptions=True)
        raise


async def _run_feed(poller: Poller, session: aiohttp.ClientSession) -> None:
    """A feed whose loop fails stops alone, logged and visible as stale; the others go on."""
    try:
        await poller.run(session)
    except Exception:
        log.exception("feed %s stopped after an unexpected error", poller.status.feed)
        poller.status.last_error = "stopped after an unexpected error (see the log)"


def _reread_on_sighup(state: ServerState) -> None:
    """``kill -HUP`` makes every feed poll at once: re-read an accessibility export without waiting."""

    def wake_all() -> None:
        log.info("SIGHUP: polling every feed now")
        for poller in state.pollers:
            poller.wake()

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, wake_all)
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here (Windows, or not the main thread)
        log.debug("SIGHUP re-read not available")


async def _retention(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]

    async def loop() -> None:
        while True:
            await asyncio.sleep(RETENTION_EVERY_S)
            if not state.ready:
                continue  # still loading: the start-up task applies retention itself
            try:
                apply_retention(state)
            except Exception:  # one bad round must not end retention for the server's lifetime
                log.exception("retention round failed; trying again in %d s", RETENTION_EVERY_S)

    task = asyncio.create_task(loop(), name="retention")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
