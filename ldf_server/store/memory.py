"""In-memory, time-indexed store of one dataset.

Members live in fixed, epoch-aligned windows (the page width of the dataset), each kept
sorted by (time, site, series) as columns (:mod:`ldf_server.store.columns`: about 22
bytes a member), so a page is a slice that needs no sorting when served. Site
descriptions are stored apart from their versions, and ``latest`` holds the newest
member of every site for pollers.

Immutability guarantee: once a window has been served as immutable, the store is told
(:meth:`DatasetStore.seal_before`) and from then on refuses members older than that
horizon as *late*, so a page a client cached forever never changes.
"""

from __future__ import annotations

import gc
import logging
import time
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterable

from ldf_server.records import Member, Site
from ldf_server.store.columns import Names, SharedValues, Window

log = logging.getLogger(__name__)

EVENT_IDS_PER_SECOND = 1_000_000  # ids stay below 2**53 (exact in JavaScript) until the year 2255

RECENT_EVENTS = 1000  # new members kept, numbered, for live clients that resume (``/{ds}/events``)

if TYPE_CHECKING:
    from ldf_server.store.log import Journal


@dataclass(slots=True)
class AddResult:
    added: int = 0
    duplicates: int = 0
    conflicts: int = 0  # duplicates whose values differ from what was stored
    late: int = 0
    expired: int = 0


class DatasetStore:
    """Members and sites of one dataset. Not thread-safe: used from the event loop only."""

    def __init__(
        self, dataset_id: str, window_ms: int, *, pilot: str = "parking", clock: Callable[[], float] = time.time,
        recent_events: int = RECENT_EVENTS,
    ) -> None:
        self.dataset_id = dataset_id
        self.window_ms = window_ms
        self.pilot = pilot  # name of the pilot whose members this store holds
        self.clock = clock
        self.sites: dict[str, Site] = {}
        self.latest: dict[str, dict[str, Member]] = {}  # site → series → newest member
        self._windows: dict[int, Window] = {}
        self._starts: list[int] = []  # sorted starts of non-empty windows
        self.version = 0  # bumped on every change: mutable views key their caches on it
        self.modified = clock()
        self.sealed_before = 0  # members older than this are refused (served as immutable)
        self.retained_from = 0  # members older than this were compacted away
        self.member_count = 0
        self.first_seen: int | None = None  # start of the oldest window ever stored (kept after compaction)
        self._next_updates: dict[str, float] = {}
        self.journal: Journal | None = None  # the durable log, when the server has a data directory
        # Live push: every member added (not restored) gets the next sequence number; the newest
        # ``recent_events`` are kept so a client resuming after an id gets exactly what it missed.
        # The number of the newest event, in memory only. It starts at the start-up second times a
        # million, so a later process numbers above every id an earlier one gave out: an old id
        # is then older than the buffer and the client gets a gap, never someone else's members.
        self.sequence = int(clock()) * EVENT_IDS_PER_SECOND
        self.recent: deque[tuple[int, Member]] = deque(maxlen=recent_events)
        self.listeners: list[Callable[[], None]] = []  # called after members were added (wake live clients)
        self._iri_warned: set[str] = set()
        # Memory: windows keep members as columns of numbers; site keys, series names and flat
        # value dicts (parking: a few thousand distinct ones) are stored once, in these tables,
        # which every window of this store shares. See README, "Performance".
        self.names = Names()
        self.shared_values = SharedValues()
        self._replayed_newest: dict[tuple[int, int], int] = {}  # (site, series) → newest time appended by replay

    # -- writing -----------------------------------------------------------------
    def upsert_sites(self, sites: Iterable[Site]) -> int:
        """Store descriptions; returns how many were new or changed (journaled first).

        A site's IRI is permanent once it has members: every member names it (``isVersionOf``)
        and pages already served as immutable must keep their bytes, so a feed or config that
        later mints another IRI for the site is ignored for that field (and logged).
        """
        changed = []
        for site in {s.key: s for s in sites}.values():
            old = self.sites.get(site.key)
            if old is not None and old.iri != site.iri and site.key in self.latest:
                if site.key not in self._iri_warned:
                    self._iri_warned.add(site.key)
                    log.warning("%s: site %s keeps its published IRI %s (a new one, %s, would change immutable pages)",
                                self.dataset_id, site.key, old.iri or "(ours)", site.iri or "(ours)")
                site = replace(site, iri=old.iri)
            if old != site:
                changed.append(site)
        if changed and self.journal is not None:
            self.journal.append_sites(changed)
        for site in changed:
            self.sites[site.key] = site
        if changed:
            self._touch()
        return len(changed)

    def add(self, members: Iterable[Member]) -> AddResult:
        """Add members; idempotent on (site, series, time). Refuses late and expired members.

        New members are written to the journal before memory changes: if the journal
        fails (disk full), it raises and nothing was added, so nothing is acknowledged.
        """
        result = AddResult()
        now = self.clock()
        new: dict[tuple[int, str, str], Member] = {}
        for m in members:
            if m.time < self.retained_from:
                result.expired += 1
            elif m.time < self.sealed_before:
                if self._find(m) is not None:
                    result.duplicates += 1  # a resend of a member of a sealed page: harmless
                else:
                    result.late += 1
            elif m.key in new:
                result.duplicates += 1
            elif (stored := self._find(m)) is not None:
                result.duplicates += 1
                if stored.values != m.values:
                    result.conflicts += 1  # a feed revised a value it already reported: first one wins
            else:
                new[m.key] = m
        if new and self.journal is not None:
            self.journal.append_members(list(new.values()), now)
        for m in new.values():
            self._insert(m, now)
        result.added = len(new)
        if result.added:
            self._touch(now)
            self.announce(new.values())
        return result

    def announce(self, members: Iterable[Member]) -> None:
        """Number members into the live-event buffer and wake live clients: what :meth:`add` does
        for what it adds, and a follower process for what it reads from the leader's log."""
        for m in members:
            self.sequence += 1
            self.recent.append((self.sequence, m))
        for listener in list(self.listeners):
            listener()

    def events_after(self, after: int) -> tuple[int | None, list[tuple[int, Member]]]:
        """The buffered events numbered above ``after``, oldest first, and the first available id
        when some after ``after`` are no longer buffered (a gap), else None. An id above the newest
        (the server restarted since) is a gap too: everything buffered follows."""
        first = self.recent[0][0] if self.recent else self.sequence + 1
        if after > self.sequence:
            return first, list(self.recent)
        gap = first if after + 1 < first else None
        skip = max(0, after + 1 - first)
        return gap, [self.recent[i] for i in range(skip, len(self.recent))]

    def restore(self, records: Iterable[dict]) -> int:
        """Load what a journal replays (sites, horizons, members), bypassing the journal and the
        lateness rules: these members were accepted before. Returns members loaded."""
        from ldf_server.store.log import member_from_record, site_from_record

        # Replay creates millions of objects that all live on: the cyclic collector would scan
        # them again and again while they are made (a third of a large restart), for nothing.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._restore(records, member_from_record, site_from_record)
        finally:
            if was_enabled:
                gc.enable()

    def _restore(self, records: Iterable[dict], member_from_record, site_from_record) -> int:  # type: ignore[no-untyped-def]
        loaded = 0
        seen = False
        for record in records:
            seen = True
            if "site" in record:
                site = site_from_record(record["site"])
                self.sites[site.key] = site
            elif "horizons" in record:
                h = record["horizons"]
                self.sealed_before = max(self.sealed_before, h["sealed_before"])
                self.retained_from = max(self.retained_from, h["retained_from"])
                if h.get("first_seen") is not None:
                    self.first_seen = min(self.first_seen if self.first_seen is not None else h["first_seen"], h["first_seen"])
            else:
                if self._append_replayed(record):
                    loaded += 1
                    continue
                m = member_from_record(record)
                if m.time < self.retained_from or self.contains(m):
                    continue
                self._insert(m, record.get("a", self.clock()))
                loaded += 1
        self._settle_replayed_newest()
        if seen:  # nothing read changes nothing: cached views of a follower that tails an idle log stay valid
            self.version += 1
            self.modified = max((w.modified for w in self._windows.values()), default=self.modified)
        return loaded

    def _append_replayed(self, record: dict) -> bool:
        """The fast path of replay: a member after the last one of its existing window (a log
        replays in time order) is appended without a search and without a Member object.
        False: take the general path."""
        t = record["t"]
        window = self._windows.get(t - t % self.window_ms)
        if window is None or not window.times or t < self.retained_from:
            return False
        last = window.times[-1]
        if t < last:
            return False
        site = record["s"]
        series = record.get("r", "")
        names = self.names
        if t == last and (names.names[window.sites[-1]], names.names[window.series[-1]]) >= (site, series):
            return False
        s = names.ids.get(site)
        if s is None:
            s = names.id_of(site)
        r = names.id_of(series) if series else 0
        window.insert(len(window.times), t, s, r, window.value_ref(record["v"]))
        at = record.get("a")
        if at is None:
            at = self.clock()
        if at > window.modified:
            window.modified = at
        self.member_count += 1
        newest = self._replayed_newest
        if newest.get((s, r), -1) <= t:
            newest[(s, r)] = t
        return True

    def _settle_replayed_newest(self) -> None:
        """Bring ``latest`` up to date with what the fast path appended (one object per site,
        made once at the end instead of once per replayed record)."""
        names = self.names.names
        for (s, r), t in self._replayed_newest.items():
            site, series = names[s], names[r]
            current = self.latest.get(site, {}).get(series)
            if current is None or current.time <= t:
                member = self._find_key(t, site, series)
                if member is not None:
                    self.latest.setdefault(site, {})[series] = member
        self._replayed_newest.clear()

    def contains(self, m: Member) -> bool:
        """Whether a member with the same (site, series, time) is stored."""
        return self._find(m) is not None

    def _find(self, m: Member) -> Member | None:
        """The stored member with the same (site, series, time), if any."""
        return self._find_key(m.time, m.site, m.series)

    def _find_key(self, time: int, site: str, series: str) -> Member | None:
        window = self._windows.get(time - time % self.window_ms)
        if window is None or window.after_last(time, site, series):
            return None
        pos, found = window.position(time, site, series)
        return window.member(pos) if found else None

    def _insert(self, m: Member, at: float) -> None:
        start = m.time - m.time % self.window_ms
        window = self._windows.get(start)
        if window is None:
            window = self._windows[start] = Window(start, self.names, self.shared_values)
            insort(self._starts, start)
            if self.first_seen is None or start < self.first_seen:
                self.first_seen = start
        if window.after_last(m.time, m.site, m.series):
            pos = len(window)  # the usual case: members arrive in time order
        else:
            pos = window.position(m.time, m.site, m.series)[0]
        names = self.names
        window.insert(pos, m.time, names.id_of(m.site), names.id_of(m.series) if m.series else 0, window.value_ref(m.values))
        window.modified = max(window.modified, at)
        self.member_count += 1
        newest = self.latest.setdefault(m.site, {})
        current = newest.get(m.series)
        if current is None or current.time <= m.time:
            newest[m.series] = m

    def load_windows(self, windows: list[Window], newest: dict[tuple[int, int], int]) -> int:
        """Take whole windows built on this store's tables (a day snapshot) for starts it does
        not hold yet, with the newest time of each (site, series) number in them; returns
        members taken. Trusted like replay: these members were accepted before."""
        taken = []
        for window in windows:
            if window.start < self.retained_from or window.start in self._windows or not window.times:
                continue
            window.version = len(window)  # never the token of an empty or missing window
            self._windows[window.start] = window
            insort(self._starts, window.start)
            if self.first_seen is None or window.start < self.first_seen:
                self.first_seen = window.start
            taken.append(window)
        if taken:
            self.member_count += sum(len(w) for w in taken)
            pending = self._replayed_newest
            for key, t in newest.items():
                if pending.get(key, -1) <= t:
                    pending[key] = t
            self._settle_replayed_newest()
            self.version += 1
            self.modified = max(self.modified, max(w.modified for w in taken))
        return sum(len(w) for w in taken)

    def seal_before(self, instant_ms: int) -> None:
        """Promise that nothing older than ``instant_ms`` will change any more (journaled, so
        the promise survives a restart)."""
        if instant_ms > self.sealed_before:
            self.sealed_before = instant_ms
            self._journal_horizons()

    def probe_journal(self) -> None:
        """Write the horizons again (the last record wins, so it changes nothing): a journal
        that failed learns that it can write again even when no member arrives (a push-only
        dataset would otherwise stay out of the load balancer after the disk recovered)."""
        self._journal_horizons()

    def _journal_horizons(self) -> None:
        if self.journal is None:
            return
        from ldf_server.store.log import LogError

        try:
            self.journal.append_horizons(
                {"sealed_before": self.sealed_before, "retained_from": self.retained_from, "first_seen": self.first_seen}
            )
        except LogError:
            pass  # logged by the journal; the promise holds in memory, readiness reports the log

    def compact(self, cutoff_ms: int) -> int:
        """Drop every window that ends at or before ``cutoff_ms``; returns members removed."""
        cutoff_ms -= cutoff_ms % self.window_ms
        if cutoff_ms <= self.retained_from:
            self._drop_days(self.retained_from)  # retries a day file the disk refused to delete
            return 0
        removed = 0
        cut = bisect_left(self._starts, cutoff_ms)
        for start in self._starts[:cut]:
            removed += len(self._windows.pop(start))
        del self._starts[:cut]
        self.retained_from = cutoff_ms
        self.sealed_before = max(self.sealed_before, cutoff_ms)
        for site, series in list(self.latest.items()):
            for name, member in list(series.items()):
                if member.time < cutoff_ms:
                    del series[name]
            if not series:
                del self.latest[site]
        self.member_count -= removed
        if removed:
            self._touch()
        # Disk last: memory is consistent whatever happens below, and the horizon record
        # makes replay skip anything older even if a day file could not be deleted yet.
        self._journal_horizons()
        self._drop_days(cutoff_ms)
        return removed

    def _drop_days(self, cutoff_ms: int) -> None:
        if self.journal is not None:
            self.journal.drop_days_before(cutoff_ms - cutoff_ms % 86_400_000)

    def expect_update(self, source: str, at: float) -> None:
        """A feed says when it will next poll: mutable resources are cacheable until then."""
        self._next_updates[source] = at

    # -- reading -----------------------------------------------------------------
    def newest(self, site: str, series: str = "") -> Member | None:
        """The newest member of a site (and series), if any."""
        return self.latest.get(site, {}).get(series)

    def window(self, start: int) -> Window | None:
        return self._windows.get(start)

    def window_starts(self, lo: int | None = None, hi: int | None = None) -> list[int]:
        """Starts of non-empty windows in [lo, hi)."""
        i = 0 if lo is None else bisect_left(self._starts, lo)
        j = len(self._starts) if hi is None else bisect_left(self._starts, hi)
        return self._starts[i:j]

    def has_windows_in(self, lo: int, hi: int) -> bool:
        return bisect_left(self._starts, lo) < bisect_left(self._starts, hi)

    def first_start(self) -> int | None:
        return self._starts[0] if self._starts else None

    def members_between(self, lo: int, hi: int) -> list[Member]:
        """Members with lo <= time < hi, in time order."""
        out: list[Member] = []
        for start in self.window_starts(lo - lo % self.window_ms, hi):
            out.extend(self._windows[start].between(lo, hi))
        return out

    def next_update(self, now: float) -> float | None:
        """When a feed next brings data: the earliest expected poll, or ``now`` when one is overdue
        (a slow poll is under way: caches should come back at once, not in a full interval)."""
        if not self._next_updates:
            return None
        return max(now, min(self._next_updates.values()))

    def _touch(self, now: float | None = None) -> None:
        self.version += 1
        self.modified = self.clock() if now is None else now
