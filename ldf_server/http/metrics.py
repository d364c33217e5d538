"""``/metrics``: Prometheus text format, from a registry that belongs to one app.

Each app gets its own :class:`CollectorRegistry` (never the process-wide default), so
several apps in one process (the tests) never share or clash over series.

Two kinds of series:

- counted as they happen, by :meth:`Metrics.middleware`: requests and latency per
  route and responses per status code. The route label is the route's pattern
  (``/{ds}/windows/{start}``), never the requested path, and every request that matches
  no route is counted under ``unmatched``, so the number of series stays fixed however
  many distinct URLs clients ask for;
- read when scraped, by :class:`StateCollector`, from counters the server keeps anyway:
  the representation cache (hits, misses, entries, bytes), each feed's polls (ok and
  failed), rejected records per reason and staleness, and the members and sites of each
  dataset.

:meth:`Metrics.log_appended` is the hook for the durable log: it counts the bytes
appended per dataset (``ldf_log_appended_bytes_total``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ldf_server.http.state import ServerState

# The classic text format (what every Prometheus server and scraper reads).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"  # the route label of every request that matched no route (404, 405)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Cached pages answer in well under a millisecond; a first N-Quads encoding of a big page takes seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

disable_created_metrics()  # no *_created series: they would double every counter for no use here

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    """The app's registry, the request middleware and the hook for the durable log."""

    def __init__(self, state: ServerState) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("ldf_http_requests", "HTTP requests per route pattern and method.",
                                ["route", "method"], registry=self.registry)
        self.latency = Histogram("ldf_http_request_duration_seconds",
                                 "Time from receiving a request to its response being ready, per route pattern.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.responses = Counter("ldf_http_responses", "HTTP responses per status code.", ["status"],
                                 registry=self.registry)
        self.log_bytes = Counter("ldf_log_appended_bytes", "Bytes appended to the durable event log, per dataset.",
                                 ["dataset"], registry=self.registry)
        for ds in state.streams:
            self.log_bytes.labels(ds)  # every dataset's series exists (at 0) before the first append
        self.registry.register(StateCollector(state))
        ProcessCollector(registry=self.registry)  # memory, CPU, open files of this process
        # Label children, looked up once per route / status / method and reused for every request.
        self._routes: dict[object, tuple[Counter, Histogram]] = {}
        self._unmatched: dict[str, tuple[Counter, Histogram]] = {}
        self._statuses: dict[int, Counter] = {}
        self.middleware = self._middleware()

    def log_appended(self, dataset: str, nbytes: int) -> None:
        """Hook for the durable log: call after ``nbytes`` were appended to ``dataset``'s log."""
        self.log_bytes.labels(dataset).inc(nbytes)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def _children(self, request: web.Request) -> tuple[Counter, Histogram]:
        route = request.match_info.route
        children = self._routes.get(route)
        if children is not None:
            return children
        if route.resource is None:  # no route matched: a fresh SystemRoute per request, never cache by it
            method = request.method if request.method in METHODS else "other"
            children = self._unmatched.get(method)
            if children is None:
                children = self._unmatched[method] = (
                    self.requests.labels(UNMATCHED, method), self.latency.labels(UNMATCHED))
            return children
        pattern = route.resource.canonical
        children = self._routes[route] = (self.requests.labels(pattern, route.method), self.latency.labels(pattern))
        return children

    def _status(self, status: int) -> Counter:
        child = self._statuses.get(status)
        if child is None:
            child = self._statuses[status] = self.responses.labels(str(status))
        return child

    def _middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        clock = time.perf_counter

        @web.middleware
        async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = clock()
            status = 0
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:  # redirects and errors raised past the problem middleware
                status = exc.status
                raise
            except asyncio.CancelledError:  # the client went away: no response was sent
                raise
            except Exception:
                status = 500
                raise
            finally:
                requests, latency = self._children(request)
                requests.inc()
                latency.observe(clock() - started)
                if status:
                    self._status(status).inc()

        return count_requests


METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)  # this app's own, even when apps share a state


class StateCollector:
    """Series read from the server's own counters at scrape time (nothing to update on the hot path)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        cache = state.cache
        yield CounterMetricFamily("ldf_cache_hits", "Requests answered from the encoded-bytes cache.", value=cache.hits)
        yield CounterMetricFamily("ldf_cache_misses", "Requests whose representation had to be encoded.",
                                  value=cache.misses)
        yield GaugeMetricFamily("ldf_cache_entries", "Encoded representations in the cache.", value=len(cache))
        yield GaugeMetricFamily("ldf_cache_bytes",
                                "Bytes of encoded representations cached (each body counted twice: room for gzip).",
                                value=cache.total_bytes)
        yield GaugeMetricFamily("ldf_cache_max_bytes", "The cache's byte budget.", value=cache.max_bytes)

        now = state.clock()
        polls = CounterMetricFamily("ldf_feed_polls", "Polls of an upstream feed per outcome (after retries).",
                                    labels=["feed", "outcome"])
        rejected = CounterMetricFamily("ldf_feed_records_rejected", "Records refused by the sanity rules, per reason.",
                                       labels=["feed", "reason"])
        added = CounterMetricFamily("ldf_feed_members_added", "Members a feed added to its dataset.", labels=["feed"])
        stale = GaugeMetricFamily("ldf_feed_stale", "1 when a feed had no good poll within three intervals.",
                                  labels=["feed"])
        last = GaugeMetricFamily("ldf_feed_last_success_timestamp_seconds", "Unix time of a feed's last good poll.",
                                 labels=["feed"])
        for poller in state.pollers:
            s = poller.status
            polls.add_metric([s.feed, "ok"], s.polls_ok)
            polls.add_metric([s.feed, "failed"], s.polls_failed)
            for reason, n in s.rejected_reasons.items():
                rejected.add_metric([s.feed, reason], n)
            added.add_metric([s.feed], s.members_added)
            stale.add_metric([s.feed], 1 if s.stale(now) else 0)
            if s.last_success is not None:
                last.add_metric([s.feed], s.last_success)
        batches = CounterMetricFamily("ldf_push_batches", "Push requests per outcome (refused: invalid records, 422).",
                                      labels=["feed", "outcome"])
        for source_id, source in state.push_sources.items():
            feed, p = f"push:{source_id}", source.status
            batches.add_metric([feed, "ok"], p.batches_ok)
            batches.add_metric([feed, "refused"], p.batches_refused)
            for reason, n in p.rejected_reasons.items():
                rejected.add_metric([feed, reason], n)
            added.add_metric([feed], p.members_added)
        yield from (polls, rejected, added, stale, last, batches)

        members = GaugeMetricFamily("ldf_dataset_members", "Members stored per dataset.", labels=["dataset"])
        sites = GaugeMetricFamily("ldf_dataset_sites", "Sites described per dataset.", labels=["dataset"])
        for ds, stream in state.streams.items():
            members.add_metric([ds], stream.store.member_count)
            sites.add_metric([ds], len(stream.store.sites))
        yield members
        yield sites
        if state.worker_info is not None:
            info = state.worker_info()
            worker = GaugeMetricFamily("ldf_worker_info", "1, labelled with this process's role among several "
                                       "serving processes ([server] workers): leader or follower; series are per process.",
                                       labels=["role", "index", "pid"])
            worker.add_metric([str(info["role"]), str(info["index"]), str(info["pid"])], 1)
            yield worker
            if "log_bytes_behind" in info:
                yield GaugeMetricFamily("ldf_follower_log_bytes_behind",
                                        "Bytes appended to the durable log that this follower has not applied yet.",
                                        value=info["log_bytes_behind"])
        yield GaugeMetricFamily("ldf_ready", "1 once the store is loaded and the server serves.",
                                value=1 if state.ready else 0)


async def metrics_endpoint(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
