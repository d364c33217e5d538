"""``/metrics``: Prometheus text format, from a registry that belongs to one app.

Each app gets its own :class:`CollectorRegistry` (never the process-wide default), so
several apps in one process (the tests) never share or clash over series.

Two kinds of series:

- counted as they happen, by :meth:`RequestCounters.count` (called by the app's middleware):
  requests and latency per route and responses per status code. The route label is the route's pattern
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

from bisect import bisect_left
from itertools import accumulate
from typing import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, ProcessCollector, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from ldf_server.http.state import ServerState

# The classic text format (what every Prometheus server and scraper reads).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"  # the route label of every request that matched no route (404, 405)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Cached pages answer in well under a millisecond; a first N-Quads encoding of a big page takes seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

disable_created_metrics()  # no *_created series: they would double every counter for no use here

class Metrics:
    """The app's registry, the per-request counters and the hook for the durable log."""

    def __init__(self, state: ServerState) -> None:
        self.registry = CollectorRegistry()
        self.http = RequestCounters()
        self.registry.register(self.http)
        self.log_bytes = Counter("ldf_log_appended_bytes", "Bytes appended to the durable event log, per dataset.",
                                 ["dataset"], registry=self.registry)
        for ds in state.streams:
            self.log_bytes.labels(ds)  # every dataset's series exists (at 0) before the first append
        self.registry.register(StateCollector(state))
        ProcessCollector(registry=self.registry)  # memory, CPU, open files of this process
        self.count = self.http.count

    def log_appended(self, dataset: str, nbytes: int) -> None:
        """Hook for the durable log: call after ``nbytes`` were appended to ``dataset``'s log."""
        self.log_bytes.labels(dataset).inc(nbytes)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Latency:
    """One route pattern's latency histogram: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: over the largest bound (+Inf)
        self.total = 0.0


class _Series:
    """What one route (pattern and method) counts: its requests, and its pattern's latencies."""

    __slots__ = ("requests", "latency")

    def __init__(self, latency: _Latency) -> None:
        self.requests = 0
        self.latency = latency


class RequestCounters:
    """Requests per route and method, latency per route, responses per status: plain integers.

    Counted by :meth:`count` on every request (from the app's middleware), and turned into
    Prometheus families only when scraped. ``prometheus_client``'s own counters take a lock
    and run several Python calls per increment, which showed up on the per-request profile of
    a cached page; everything here runs on the event loop, so no lock is needed.
    """

    def __init__(self) -> None:
        self._routes: dict[object, _Series] = {}  # route object → its series
        self._unmatched: dict[str, _Series] = {}  # method → series of requests that matched no route
        self._series: dict[tuple[str, str], _Series] = {}  # (pattern, method) → series, in order of appearance
        self._latency: dict[str, _Latency] = {}  # pattern → histogram
        self._statuses: dict[int, int] = {}

    def count(self, request: web.Request, status: int, elapsed: float) -> None:
        """One request answered (``status`` 0: none was sent, the client went away) in ``elapsed`` seconds."""
        route = request.match_info.route
        series = self._routes.get(route)
        if series is None:
            series = self._series_of(request, route)
        self._record(series, status, elapsed)

    def count_pattern(self, pattern: str, method: str, status: int, elapsed: float) -> None:
        """:meth:`count` for a request answered without the router (``http/fastpath.py``): the
        same series as when the route ``pattern`` answers it."""
        series = self._series.get((pattern, method))
        if series is None:
            series = self._new(pattern, method)
        self._record(series, status, elapsed)

    def _record(self, series: _Series, status: int, elapsed: float) -> None:
        series.requests += 1
        latency = series.latency
        latency.total += elapsed
        latency.buckets[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        if status:
            statuses = self._statuses
            statuses[status] = statuses.get(status, 0) + 1

    def _series_of(self, request: web.Request, route: web.AbstractRoute) -> _Series:
        if route.resource is None:  # no route matched: a fresh SystemRoute per request, never key by it
            method = request.method if request.method in METHODS else "other"
            series = self._unmatched.get(method)
            if series is None:
                series = self._unmatched[method] = self._new(UNMATCHED, method)
            return series
        series = self._routes[route] = self._new(route.resource.canonical, route.method)
        return series

    def _new(self, pattern: str, method: str) -> _Series:
        series = self._series.get((pattern, method))
        if series is None:
            latency = self._latency.get(pattern)
            if latency is None:
                latency = self._latency[pattern] = _Latency()
            series = self._series[(pattern, method)] = _Series(latency)
        return series

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("ldf_http_requests", "HTTP requests per route pattern and method.",
                                       labels=["route", "method"])
        for (pattern, method), series in self._series.items():
            requests.add_metric([pattern, method], series.requests)
        yield requests
        latency = HistogramMetricFamily(
            "ldf_http_request_duration_seconds",
            "Time from receiving a request to its response being ready, per route pattern.", labels=["route"])
        for pattern, hist in self._latency.items():
            cumulative = list(accumulate(hist.buckets))
            bounds = [floatToGoString(b) for b in LATENCY_BUCKETS] + ["+Inf"]
            latency.add_metric([pattern], list(zip(bounds, cumulative)), hist.total)
        yield latency
        responses = CounterMetricFamily("ldf_http_responses", "HTTP responses per status code.", labels=["status"])
        for status, n in self._statuses.items():
            responses.add_metric([str(status)], n)
        yield responses


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
