"""What handlers need from the running server, stored on the app under one ``web.AppKey``."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from ldf_server.adapters.poller import Poller
from ldf_server.config import Config
from ldf_server.fragments.stream import StreamFragments
from ldf_server.fragments.fragment import MAX_MUTABLE_AGE
from ldf_server.fragments.tpf import TpfSource
from ldf_server.fragments.urls import Urls
from ldf_server.http.auth import PushSource
from ldf_server.http.representations import RepresentationCache

if TYPE_CHECKING:
    from ldf_server.http.metrics import Metrics

DEFAULT_MAX_AGE = 60


@dataclass
class ServerState:
    config: Config
    urls: Urls
    streams: dict[str, StreamFragments]
    pollers: list[Poller] = field(default_factory=list)
    push_sources: dict[str, PushSource] = field(default_factory=dict)
    tpf: dict[str, TpfSource] = field(default_factory=dict)  # dataset id → interface; "" → all datasets
    cache: RepresentationCache = field(default_factory=RepresentationCache)
    # TPF pages get their own, smaller cache: arbitrary patterns must not push hot pages out.
    tpf_cache: RepresentationCache = field(default_factory=lambda: RepresentationCache(32 * 1024 * 1024))
    clock: Callable[[], float] = time.time
    ready: bool = False
    startup_error: str | None = None  # start-up failed: readiness says so (failing) until restarted
    on_fatal: Callable[[], None] | None = None  # the command line stops the process on a failed start-up
    started: float = field(default_factory=time.time)  # Last-Modified of static documents
    # Readiness checks components register by name (the durable log as "log"): each returns
    # (healthy, reason); one unhealthy check makes /health/ready answer 503 (see http/health.py).
    health_checks: dict[str, Callable[[], tuple[bool, str]]] = field(default_factory=dict)
    metrics: Metrics | None = None  # the app's Prometheus registry and hooks, set by create_app
    # Day dumps being built (path → task): concurrent first requests share one build.
    dump_builds: dict[str, "asyncio.Future[bytes]"] = field(default_factory=dict)
    # Several serving processes (``[server] workers``, see ldf_server/workers.py): what this one is
    # (``role``, ``pid``, ...; read at every probe: readiness and /metrics show it), and for a
    # follower, the handler that passes a push on to the leader (which alone writes the log).
    worker_info: Callable[[], dict[str, Any]] | None = None
    forward_push: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None
    # A follower process: GET a path from its leader (status, body), e.g. a day's dump it keeps.
    fetch_from_leader: Callable[[str], Awaitable[tuple[int, bytes]]] | None = None

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def max_age(self, stream: StreamFragments) -> int:
        """Seconds until the dataset is next expected to change (the next poll)."""
        now = self.clock()
        next_update = stream.store.next_update(now)
        if next_update is None:
            return DEFAULT_MAX_AGE
        return max(1, min(MAX_MUTABLE_AGE, math.ceil(next_update - now)))


STATE: web.AppKey[ServerState] = web.AppKey("state", ServerState)
