"""Several serving processes on one port (``[server] workers``): one leader, followers reading its log.

Why: one Python process serves on one CPU. With ``workers = N`` (or ``"auto"``: one per CPU)
the process ``ldf-server`` starts is the **leader**: it does everything a single server does
(feeds, pushes, retention, the durable log, sealing) and starts N - 1 **followers**. Every
process listens on the same host and port with ``SO_REUSEPORT``, and the kernel spreads new
connections over them.

- A follower writes nothing. It replays the data directory's log read-only, then tails it
  every ``FOLLOW_EVERY_S`` (:mod:`ldf_server.store.follow`), so its pages, ``latest``, TPF
  and ``/{ds}/events`` show new members within about a second. It is ready (``/health/ready``
  200) after its replay and first tail; readiness says ``worker.role: follower`` and how many
  bytes of the log it has not applied yet.
- A push that reaches a follower is passed on, method, path, key headers and body, to the
  leader over a loopback port only they know, and the leader's answer is returned as is: a push
  acknowledged by any process is in the leader's log.
- Followers are the leader's children: their stdin is a pipe from the leader, which they watch;
  when it closes (the leader exited, by ``SIGTERM`` or a crash) they shut down. On ``SIGTERM``
  the leader stops them first and waits for them. A follower that dies is started again.
  ``SIGHUP`` is the leader's (its feeds poll at once); followers ignore it.

**Immutable pages across processes.** A page served as immutable is cached for a year, so it
must be final in every process. A single server seals what it serves (``store.seal_before``,
journaled) and refuses late members for it from then on. A follower cannot journal, and the
leader cannot know what a follower served. So both sides hold to the same time rule, and the
follower also waits for the leader's word:

- the leader seals on a timer (every ``SEAL_EVERY_S``) everything the time rule closes
  (windows whose end plus grace has passed; :func:`seal_on_time`), journaling the horizon;
- a follower serves a window or day as immutable only when the time rule closes it **and** the
  sealed horizon it read from ``meta.log`` covers it (:class:`SealedTimeline`). The leader
  journals a horizon after every member below it (members go to their day file when accepted,
  and are refused after the seal), and the follower applies a horizon only after the members
  read in the same pass, so an immutable page of a follower holds exactly what the leader's
  does. Between the time rule and the horizon (at most about a second) a follower serves
  the page as mutable, with a short max-age. ETags are content digests, so equal pages have
  equal ETags in every process.

What is per process: the representation cache, ``/metrics`` (labelled by
``ldf_worker_info{role,index,pid}``), ``max_connections``, and the numbering of live events
(each process numbers from its own start-up second; a client reconnecting to another process
with ``Last-Event-ID`` gets a gap event and re-reads ``latest``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
from aiohttp import web

from ldf_server.config import Config
from ldf_server.fragments.timeline import DAY_MS, Timeline
from ldf_server.http.problems import Problem
from ldf_server.http.state import STATE, ServerState
from ldf_server.store.follow import LogFollower
from ldf_server.store.log import LogDiverged
from ldf_server.store.memory import DatasetStore

log = logging.getLogger(__name__)

FOLLOW_EVERY_S = 0.25  # how often a follower reads what the leader appended
SEAL_EVERY_S = 0.5  # how often the leader seals what the time rule closed
RESTART_DELAY_S = 1.0  # before a follower that died is started again
STALL_LIMIT_S = 30.0  # a follower that cannot read what the log holds for this long is not ready
HEALTHY_RUN_S = 300.0  # a follower that ran this long before dying starts again with the shortest delay
STOP_GRACE_S = 5.0  # beyond shutdown_timeout, before a follower that does not stop is killed
FORWARDED_REQUEST = ("Authorization", "X-API-Key", "Content-Type", "X-Request-Id")
FORWARDED_RESPONSE = ("Content-Type", "Cache-Control", "WWW-Authenticate", "Retry-After", "Accept-Post")
_LENGTH = struct.Struct("<Q")


# --------------------------------------------------------------------------- both sides


@dataclass(frozen=True, slots=True)
class SealedTimeline(Timeline):
    """A follower's timeline: closed by the time rule *and* below the leader's sealed horizon."""

    store: DatasetStore | None = field(default=None, compare=False)

    def window_closed(self, start: int, now: int) -> bool:
        return Timeline.window_closed(self, start, now) and self._sealed(start + self.window_ms)

    def day_closed(self, day: int, now: int) -> bool:
        return Timeline.day_closed(self, day, now) and self._sealed(day + DAY_MS)

    def _sealed(self, end: int) -> bool:
        return self.store is not None and end <= self.store.sealed_before


async def seal_on_time(app: web.Application) -> AsyncIterator[None]:
    """Leader: journal, every ``SEAL_EVERY_S``, the horizon of every window the time rule closed."""
    state = app[STATE]

    async def loop() -> None:
        while True:
            await asyncio.sleep(SEAL_EVERY_S)
            if state.ready:  # not while the log is replayed in a thread
                seal_closed(state)

    task = asyncio.create_task(loop(), name="seal-on-time")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def seal_closed(state: ServerState) -> None:
    now = state.now_ms()
    for stream in state.streams.values():
        timeline = stream.timeline
        stream.store.seal_before(timeline.window_start(now - timeline.grace_ms))


# --------------------------------------------------------------------------- the leader


@dataclass
class Follower:
    index: int
    proc: subprocess.Popen[bytes]
    restarts: int = 0
    restart_at: float | None = None  # monotonic time to start it again (it died)
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """Starts the followers, starts again those that die, and stops them all at shutdown."""

    def __init__(self, payload: Callable[[int], dict[str, Any]], count: int) -> None:
        self.payload = payload
        self.count = count
        self.followers: dict[int, Follower] = {}
        self.stopping = False

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        # stdin is the leader's pipe: the payload, then nothing until it closes (the leader is gone).
        proc = subprocess.Popen([sys.executable, "-c", "from ldf_server.workers import follower_main; follower_main()"],
                                stdin=subprocess.PIPE, close_fds=True)
        blob = pickle.dumps(self.payload(index))
        assert proc.stdin is not None
        try:
            proc.stdin.write(_LENGTH.pack(len(blob)) + blob)
            proc.stdin.flush()
        except OSError as exc:  # it died at once; the watcher starts it again
            log.error("follower %d (pid %d) did not take its settings: %s", index, proc.pid, exc)
        log.info("started follower %d (pid %d)", index, proc.pid)
        return proc

    def start(self) -> None:
        for index in range(1, self.count + 1):
            self.followers[index] = Follower(index, self._spawn(index))

    async def watch(self) -> None:
        while not self.stopping:
            await asyncio.sleep(RESTART_DELAY_S)
            now = time.monotonic()
            for f in list(self.followers.values()):
                if self.stopping:
                    break
                code = f.proc.poll()
                if code is None:
                    continue
                if f.restart_at is None:  # one that keeps dying is started again ever more slowly (at most every minute)
                    if now - f.started > HEALTHY_RUN_S:
                        f.restarts = 0  # it had been running fine: this is a new failure, not the same one
                    delay = min(60.0, RESTART_DELAY_S * 2 ** min(f.restarts, 6))
                    log.error("follower %d (pid %d) exited with code %s; starting it again in %.0f s",
                              f.index, f.proc.pid, code, delay)
                    _close(f.proc)
                    f.restart_at = now + delay
                elif now >= f.restart_at:
                    f.proc = self._spawn(f.index)
                    f.started = time.monotonic()
                    f.restarts += 1
                    f.restart_at = None

    async def stop(self, timeout: float) -> None:
        """SIGTERM every follower, wait up to ``timeout``, then SIGKILL what is left; no child remains."""
        self.stopping = True
        procs = [f.proc for f in self.followers.values()]
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for proc in procs:
            if proc.poll() is None:
                log.error("follower pid %d did not stop within %.0f s; killing it", proc.pid, timeout)
                proc.kill()
                proc.wait()
            _close(proc)

    def info(self) -> list[dict[str, Any]]:
        return [{"index": f.index, "pid": f.proc.pid, "alive": f.proc.poll() is None, "restarts": f.restarts}
                for f in self.followers.values()]


def _close(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def serve_leader(config: Config) -> int:
    """What ``ldf-server`` runs with ``workers`` > 1: a single server's app with ``reuse_port``,
    a loopback port for forwarded pushes, and the followers (started once the port is open)."""
    from ldf_server.app import create_app
    from ldf_server.http import limits

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        uvloop = None
    server = config.server
    app = create_app(config, role="leader")
    state = app[STATE]
    state.on_fatal = lambda: os.kill(os.getpid(), signal.SIGTERM)
    count = server.worker_count

    @contextlib.asynccontextmanager
    async def lead(runner: web.AppRunner, site: web.TCPSite) -> AsyncIterator[None]:
        internal = web.TCPSite(runner, "127.0.0.1", 0)  # forwarded pushes; the same API and keys
        await internal.start()
        port = site.port
        resolved = config.model_copy(update={"server": server.model_copy(update={"port": port})})

        def payload(index: int) -> dict[str, Any]:
            return {"config": resolved, "leader": f"http://127.0.0.1:{internal.port}", "index": index,
                    "workers": count}

        supervisor = Supervisor(payload, count - 1)
        state.worker_info = lambda: {"role": "leader", "index": 0, "pid": os.getpid(), "workers": count,
                                     "followers": supervisor.info()}
        supervisor.start()
        watcher = asyncio.create_task(supervisor.watch(), name="followers")
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await supervisor.stop(server.shutdown_timeout + STOP_GRACE_S)

    log.info("serving %s on %s:%s with %d processes (this one leads)", server.public_base, server.host, server.port, count)
    limits.run(app, server, host=server.host, port=server.port,
               access_log=logging.getLogger("aiohttp.access") if server.log_level == "debug" else None,
               shutdown_timeout=server.shutdown_timeout, loop=uvloop.new_event_loop() if uvloop else None,
               reuse_port=True, around=lead)
    return 1 if state.startup_error else 0


# --------------------------------------------------------------------------- a follower


def follower_main() -> None:
    """Entry point of a follower process (started by :class:`Supervisor`, never by hand)."""
    from ldf_server import logs
    from ldf_server.http import limits

    try:
        import uvloop
    except ImportError:  # pragma: no cover
        uvloop = None
    payload = pickle.loads(_read_exactly(0, _LENGTH.unpack(_read_exactly(0, _LENGTH.size))[0]))
    config: Config = payload["config"]
    server = config.server
    logs.configure(server.log_level)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the leader re-reads; nothing to do here
    app = follower_app(config, leader=payload["leader"], index=payload["index"])

    @contextlib.asynccontextmanager
    async def watch_leader(runner: web.AppRunner, site: web.TCPSite) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:  # the leader is gone: stop as on SIGTERM
                loop.remove_reader(0)
                log.info("follower %d: the leader exited; stopping", payload["index"])
                os.kill(os.getpid(), signal.SIGTERM)

        loop.add_reader(0, readable)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(0)

    limits.run(app, server, host=server.host, port=server.port,
               access_log=logging.getLogger("aiohttp.access") if server.log_level == "debug" else None,
               shutdown_timeout=server.shutdown_timeout, loop=uvloop.new_event_loop() if uvloop else None,
               reuse_port=True, around=watch_leader)
    sys.exit(1 if app[STATE].startup_error else 0)


def _read_exactly(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise SystemExit("ldf-server follower: the leader closed the pipe before sending its settings")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


FOLLOWERS: web.AppKey[dict[str, LogFollower]] = web.AppKey("followers", dict)


def follower_app(config: Config, *, leader: str, index: int) -> web.Application:
    """A follower's app: a state without feeds, timelines that wait for the leader's horizon,
    pushes forwarded to ``leader``."""
    from ldf_server.app import build_state, create_app

    state = build_state(config)
    state.pollers = []  # the leader polls; a follower would only report them as stale
    for stream in state.streams.values():
        t = stream.timeline
        stream.timeline = SealedTimeline(t.window_ms, t.grace_ms, stream.store)
    data_dir = Path(config.server.data_dir or ".")
    followers = {ds: LogFollower(data_dir / ds, stream.store) for ds, stream in state.streams.items()}
    forwarder = PushForwarder(leader)
    state.forward_push = forwarder
    state.fetch_from_leader = forwarder.get
    started = time.monotonic()

    def info() -> dict[str, Any]:
        last = [f.last_poll for f in followers.values()]
        return {"role": "follower", "index": index, "pid": os.getpid(), "leader_pid": os.getppid(),
                "log_bytes_behind": sum(f.bytes_behind() for f in followers.values()),
                "last_read_s_ago": round(time.monotonic() - min(last), 3) if all(x is not None for x in last) else None,
                "up_s": round(time.monotonic() - started, 1)}

    state.worker_info = info
    app = create_app(config, state=state, role="follower")
    app[FOLLOWERS] = followers
    app.on_cleanup.append(forwarder.close)
    return app


async def follow_log(app: web.Application) -> AsyncIterator[None]:
    """Replay the log in a thread (the port is open: probes get ``starting``), then tail it."""
    state = app[STATE]
    task = asyncio.create_task(_replay_and_tail(state, app[FOLLOWERS]), name="follow-log")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _replay_and_tail(state: ServerState, followers: dict[str, LogFollower]) -> None:
    started = time.monotonic()
    stop = threading.Event()

    def replay() -> int:
        return sum(f.replay(stop) for f in followers.values())

    job = asyncio.ensure_future(asyncio.to_thread(replay))
    try:
        loaded = await asyncio.shield(job)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.gather(job, return_exceptions=True)
        raise
    except Exception as exc:  # nothing to serve: exit (code 1), the leader starts this follower again
        log.exception("follower: reading the durable log failed")
        state.startup_error = f"{type(exc).__name__}: {exc}"
        os.kill(os.getpid(), signal.SIGTERM)
        return
    gc.freeze()  # as after a leader's replay: the members live as long as the process
    for ds, follower in followers.items():
        state.health_checks[f"follow:{ds}"] = lambda f=follower: _follow_check(f)
    intervals = {ds: min((f.interval for f in state.config.feeds if f.dataset == ds and f.enabled), default=None)
                 for ds in followers}
    await _tail(state, followers, intervals)
    # The leader's own start-up (its backfill) writes the log too: serve once it is done, with what it wrote.
    assert isinstance(state.forward_push, PushForwarder)
    while not await state.forward_push.leader_started():
        await asyncio.sleep(FOLLOW_EVERY_S)
        await _tail(state, followers, intervals)
    await _tail(state, followers, intervals)
    state.ready = True
    log.info("follower ready in %.2fs: %d members read from the log", time.monotonic() - started, loaded)
    while True:
        await asyncio.sleep(FOLLOW_EVERY_S)
        await _tail(state, followers, intervals)


async def _tail(state: ServerState, followers: dict[str, LogFollower], intervals: dict[str, float | None]) -> None:
    """One round: each log is read and parsed in a thread (a burst from the leader must not hold
    up requests), then applied to the store on the event loop, which owns it."""
    for ds, follower in followers.items():
        try:
            added = follower.apply(await asyncio.to_thread(follower.read))
        except LogDiverged as exc:  # this copy holds what the leader cut back: start again, clean
            follower.last_error = f"{type(exc).__name__}: {exc}"
            log.error("follower: the log of %s changed under what was read (%s); restarting this process", ds, exc)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        except Exception as exc:  # a bad read is reported (readiness) and tried again next time
            follower.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("follower: tailing the log of %s failed", ds)
            continue
        if added and intervals[ds] is not None:
            # Mutable resources are cacheable until the leader's feeds are next expected to bring data.
            follower.store.expect_update("leader", state.clock() + intervals[ds])


def _follow_check(follower: LogFollower) -> tuple[bool, str]:
    if follower.last_error is not None:
        return False, f"cannot follow the log: {follower.last_error}"
    behind = follower.bytes_behind()  # a stat per file: once per probe
    stalled = follower.stalled_for(behind)
    if stalled > STALL_LIMIT_S:
        return False, f"stalled: {behind} bytes of the log unread for {stalled:.0f} s"
    return True, f"following the log: {behind} bytes not read yet"


class PushForwarder:
    """A follower's push handler: the same request to the leader, whose answer is returned."""

    def __init__(self, leader: str) -> None:
        self.leader = leader
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=120))
        return self._session

    async def leader_started(self) -> bool:
        """Whether the leader finished starting (its readiness is no longer ``starting``)."""
        try:
            async with self._client().get(self.leader + "/health/ready") as resp:
                status = (await resp.json(content_type=None)).get("status")
                # Readiness says "starting" until then; a problem document (a refused connection
                # slot, say) has a number there and says nothing about start-up.
                return isinstance(status, str) and status != "starting"
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False

    async def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path`` from the leader: (status, body); 503 when it cannot be reached."""
        try:
            async with self._client().get(self.leader + path) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("could not get %s from the leader: %s", path, exc)
            return 503, b""

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        from ldf_server.http.push import read_body

        server = request.app[STATE].config.server
        limit = server.max_push_body
        if request.content_length is not None and request.content_length > limit:
            raise Problem(413, f"the body is larger than the limit of {limit} bytes; split the batch", title="Content Too Large")
        body = await read_body(request, limit, server.body_timeout)
        headers = {k: v for k in FORWARDED_REQUEST if (v := request.headers.get(k)) is not None}
        try:
            async with self._client().post(self.leader + request.path_qs, data=body, headers=headers) as resp:
                payload = await resp.read()
                out = {k: v for k in FORWARDED_RESPONSE if (v := resp.headers.get(k)) is not None}
                return web.Response(status=resp.status, body=payload, headers=out)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("could not pass a push on to the leader: %s", exc)
            raise Problem(503, "the push could not be passed on to the process that stores it; nothing was stored, "
                          "retry later", title="Storage unavailable", headers={"Retry-After": "5"}) from None

    async def close(self, app: web.Application | None = None) -> None:
        if self._session is not None:
            await self._session.close()
