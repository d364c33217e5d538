"""The event stream of one dataset: its description, root view, day nodes and window pages.

Layout (TREE): stream ──tree:view──▶ view ──▶ one node per UTC day ──▶ one page per window.
Every link is a pair of relations, ``tree:GreaterThanOrEqualToRelation`` on the target's
start and ``tree:LessThanRelation`` on its end, both on the timestamp path, so clients
can prune by time (``ldes-client --after``) and order (``-o ascending``).
"""

from __future__ import annotations

from typing import Any

from ldf_server.config import DatasetConfig
from ldf_server.fragments.fragment import MAX_MUTABLE_AGE, Fragment
from ldf_server.fragments.members import member_node, site_node
from ldf_server.fragments.timeline import DAY_MS, Timeline
from ldf_server.fragments.urls import Urls
from ldf_server.store.memory import DatasetStore
from ldf_server.timeutil import format_instant, iso_duration
from ldf_server.vocabularies import expand_term
from ldf_server.pilots import PILOTS


class OutOfRange(LookupError):
    """A window or day the stream does not have (yet, or any more)."""

    def __init__(self, detail: str, *, gone: bool = False) -> None:
        super().__init__(detail)
        self.gone = gone


class StreamFragments:
    """Decides the pages of one dataset; knows nothing about HTTP."""

    def __init__(self, config: DatasetConfig, store: DatasetStore, urls: Urls) -> None:
        self.config = config
        self.ds = config.id
        self.pilot = PILOTS[config.pilot]
        self.timestamp_path = self.pilot.timestamp_path
        self.store = store
        self.urls = urls
        self.timeline = Timeline(window_ms=int(config.window * 1000), grace_ms=int(config.grace * 1000))

    # -- ranges ------------------------------------------------------------------
    def newest_window(self, now: int) -> int:
        """The last window a client may ask for: the open one, or a later one holding data."""
        open_start = self.timeline.window_start(now)
        last = self.store.window_starts()[-1:] or [open_start]
        return max(open_start, last[0])

    def check_window(self, start: int, now: int) -> None:
        if not self.timeline.is_window_start(start):
            raise OutOfRange(f"{format_instant(start)} is not the start of a window; use the search form (?time=) to find the page holding an instant")
        self._check_span(start, start + self.timeline.window_ms, now)

    def check_day(self, day: int, now: int) -> None:
        if day % DAY_MS:
            raise OutOfRange("not the start of a UTC day")
        self._check_span(day, day + DAY_MS, now)

    def window_for(self, instant: int, now: int) -> int:
        """The window holding an instant (for ``?time=``); raises OutOfRange outside the stream."""
        start = self.timeline.window_start(instant)
        self._check_span(start, start + self.timeline.window_ms, now)
        return start

    def _check_span(self, lo: int, hi: int, now: int) -> None:
        """A page covering [lo, hi) exists if it overlaps [oldest page, newest page]."""
        first_seen = self.store.first_seen
        if first_seen is not None and first_seen < hi <= self.store.retained_from:
            raise OutOfRange(
                "this page fell out of the retention window; data before "
                f"{format_instant(self.store.retained_from)} was removed",
                gone=True,
            )
        newest = self.newest_window(now)
        oldest = self.store.first_start()
        if oldest is None:
            oldest = max(newest, self.store.retained_from)
        if hi <= oldest:
            raise OutOfRange(f"the stream starts at {format_instant(oldest)}")
        if lo > newest:
            raise OutOfRange(f"no data yet: the newest page starts at {format_instant(newest)}")

    # -- cache tokens: cheap values that change whenever a document would ------------
    def window_token(self, start: int, now: int) -> object:
        if self.timeline.window_closed(start, now):
            return "immutable"
        window = self.store.window(start)
        return ("open", window.version if window else 0)

    def day_token(self, day: int, now: int) -> object:
        return "immutable" if self.timeline.day_closed(day, now) else ("open", self.store.version, self.timeline.window_start(now))

    def mutable_token(self, now: int) -> object:
        return (self.store.version, self.timeline.window_start(now), self.store.retained_from)

    # -- documents -----------------------------------------------------------------
    def stream_node(self, *, with_view: bool) -> dict[str, Any]:
        node: dict[str, Any] = {
            "@id": self.urls.stream(self.ds),
            "@type": "EventStream",
            "timestampPath": self.timestamp_path,
            "shape": self.urls.shape(self.ds),
        }
        if self.pilot.versions:
            node["versionOfPath"] = expand_term(self.pilot.site_term)
        if with_view:
            node["view"] = self.urls.view(self.ds)
        return node

    def stream(self, now: int) -> Fragment:
        """The stream description with its sites: the entry point of the dataset."""
        node = self.stream_node(with_view=True)
        node["title"] = dict(self.config.title)
        node["description"] = dict(self.config.description)
        node["license"] = self.config.licence_iri
        node["isPartOf"] = self.urls.catalog()
        sites = [site_node(self.urls, self.ds, self.pilot, s) for _, s in sorted(self.store.sites.items())]
        return Fragment({"@graph": [node, *sites]}, immutable=False, modified=self.store.modified)

    def view(self, now: int) -> Fragment:
        view = self.urls.view(self.ds)
        today = self.timeline.day_start(self.newest_window(now))
        first = self.store.first_start()
        days = []
        if first is not None:
            # A day is unlinked MAX_MUTABLE_AGE before retention can remove it (at its end plus
            # the retention period): every cached copy of this view has expired by then.
            unlink_before = self.timeline.day_start(now - int(self.config.retention * 1000) + MAX_MUTABLE_AGE * 1000)
            day = max(
                self.timeline.day_start(first), self.store.retained_from - self.store.retained_from % DAY_MS, unlink_before
            )
            while day < today:
                if self.store.has_windows_in(day, day + DAY_MS):
                    days.append(day)
                day += DAY_MS
        days.append(today)
        node = {
            "@id": view,
            "@type": "Node",
            "isPartOf": self.urls.stream(self.ds),
            "relation": [r for d in days for r in self._relations(self.urls.day(self.ds, d), d, d + DAY_MS)],
            "retentionPolicy": {
                "@type": "DurationAgoPolicy",
                "value": {"@value": iso_duration(self.config.retention), "@type": "xsd:duration"},
            },
            "search": {
                "@type": "IriTemplate",
                "template": view + "{?time}",
                "variableRepresentation": "hydra:BasicRepresentation",
                "mapping": [
                    {"@type": "IriTemplateMapping", "variable": "time", "property": self.timestamp_path, "required": True}
                ],
            },
        }
        # Without tree:shape here: clients that read the stream document and then the view
        # into one store (ldes-client does, across named graphs) would find two shapes.
        stream = {k: v for k, v in self.stream_node(with_view=True).items() if k != "shape"}
        # The relations change when a new day starts, even with no new member.
        modified = max(self.store.modified, today / 1000)
        return Fragment({"@graph": [stream, node]}, immutable=False, modified=modified)

    def day(self, day: int, now: int) -> Fragment:
        immutable = self.timeline.day_closed(day, now)
        if immutable:
            self.store.seal_before(day + DAY_MS)
        starts = self.store.window_starts(day, day + DAY_MS)
        open_start = self.timeline.window_start(now)
        if day <= open_start < day + DAY_MS and open_start not in starts:
            starts.append(open_start)
        w = self.timeline.window_ms
        node = {
            "@id": self.urls.day(self.ds, day),
            "@type": "Node",
            "isPartOf": self.urls.stream(self.ds),
            "relation": [r for s in starts for r in self._relations(self.urls.window(self.ds, s), s, s + w)],
        }
        if immutable:
            node["immutable"] = True
        # Last-Modified must move whenever the body does: when a window or the day closes, not
        # only when a member arrives, or caches revalidating with If-Modified-Since keep old bytes.
        windows = [self.store.window(s) for s in starts]
        content = max((w.modified for w in windows if w is not None), default=0.0)
        if immutable:
            modified = max(content, (day + DAY_MS + self.timeline.grace_ms) / 1000)
        else:
            modified = max(self.store.modified, open_start / 1000)
        return Fragment({"@graph": [self.stream_node(with_view=False), node]}, immutable=immutable, modified=modified)

    def window(self, start: int, now: int) -> Fragment:
        immutable = self.timeline.window_closed(start, now)
        end = start + self.timeline.window_ms
        if immutable:
            self.store.seal_before(end)  # from now on, late members for this page are refused
        window = self.store.window(start)
        members = window.members if window else []
        sites = self.store.sites
        stream = self.stream_node(with_view=False)
        stream["member"] = [member_node(self.urls, self.ds, self.pilot, m, sites.get(m.site)) for m in members]
        node: dict[str, Any] = {"@id": self.urls.window(self.ds, start), "@type": "Node", "isPartOf": self.urls.stream(self.ds)}
        if immutable:
            node["immutable"] = True
        modified = window.modified if window else 0.0
        if immutable:  # the body gained ldes:immutable when the window closed
            modified = max(modified, (end + self.timeline.grace_ms) / 1000)
        return Fragment({"@graph": [stream, node]}, immutable=immutable, modified=modified,
                        links=self._neighbours(start, now))

    def _neighbours(self, start: int, now: int) -> tuple[tuple[str, str], ...]:
        """The previous and next windows, when they are in the stream. Both depend only on when
        the stream began and on the clock, so an immutable page's links never change (a window
        before the oldest one kept answers 410, as the day nodes' links do)."""
        w = self.timeline.window_ms
        links = []
        first = self.store.first_seen
        if first is not None and start - w >= first:
            links.append(("prev", self.urls.window(self.ds, start - w)))
        if start + w <= self.newest_window(now):
            links.append(("next", self.urls.window(self.ds, start + w)))
        return tuple(links)

    def _relations(self, target: str, lo: int, hi: int) -> list[dict[str, Any]]:
        return [
            {"@type": "GreaterThanOrEqualToRelation", "node": target, "path": self.timestamp_path, "value": format_instant(lo)},
            {"@type": "LessThanRelation", "node": target, "path": self.timestamp_path, "value": format_instant(hi)},
        ]
