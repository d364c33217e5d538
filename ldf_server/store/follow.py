"""Follow a dataset's durable log read-only, applying what the leader appends to a local store.

A follower process (``[server] workers`` > 1, see :mod:`ldf_server.workers`) serves a copy of
each dataset that it never writes to disk: it reads ``meta.log`` and ``days/*.log`` with
:class:`~ldf_server.store.log.LogReader` (which never truncates, repairs, appends or deletes),
first in full, then every ``poll`` for what was appended since, and applies the records through
the store's public restore path (:meth:`DatasetStore.restore`), as a restart does.

Order within one poll: ``meta.log`` is read before the day files, and horizon records are
applied after the members read in the same poll. The leader writes a member to its day file
before it writes any horizon that covers it, so once a follower applies a sealed horizon it
holds every member the leader accepted below it: a page that the follower serves as immutable
because of that horizon is complete (see :class:`SealedTimeline` in ``ldf_server/workers.py``).

Two things ``restore`` does not do, done here:

- retention: a horizon record that raises ``retained_from`` is applied by
  :meth:`DatasetStore.compact` first (memory only: a follower's store has no journal), since
  ``restore`` records the horizon but keeps the windows below it;
- live clients: members read while tailing are announced (:meth:`DatasetStore.announce`, as
  ``add`` does), so ``/{ds}/events`` streams them.

The first replay loads a closed day from its snapshot when the leader has written a valid one
(:mod:`ldf_server.store.snapshot`, read-only as well) and reads the day's log only after it.

A record the leader wrote and then cut back after a failed write (disk full) may have been
read already. The reader notices (the file is shorter than what was read, or the last record
read has been replaced: :class:`~ldf_server.store.log.LogDiverged`) and the follower process
then exits, so that its leader starts it again from a clean replay: its pages must never
hold a member the leader's do not.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from ldf_server.records import Member
from ldf_server.store import snapshot
from ldf_server.store.log import LogReader, member_from_record
from ldf_server.timeutil import format_day
from ldf_server.store.memory import DatasetStore

log = logging.getLogger(__name__)

Appended = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]  # sites, members, horizons


class LogFollower:
    """Tails one dataset directory (``{data_dir}/{dataset}``) into one store. Not thread-safe:
    :meth:`replay` may run in a thread before the event loop uses the store, :meth:`poll` runs
    on the event loop."""

    def __init__(self, root: Path, store: DatasetStore) -> None:
        self.root = root
        self.store = store
        self.meta = LogReader(root / "meta.log")
        self.days: dict[str, LogReader] = {}  # file name → reader
        self.members_read = 0
        self.last_poll: float | None = None  # monotonic time of the last completed poll
        self.last_progress: float = time.monotonic()  # ... of the last poll that read something or was level
        self.last_error: str | None = None

    # -- reading -----------------------------------------------------------------------
    def _day_readers(self) -> list[LogReader]:
        """A reader per day file, new files (a new UTC day) included; deleted ones dropped."""
        try:
            names = sorted(p.name for p in (self.root / "days").glob("*.log"))
        except OSError:
            names = []
        for name in names:
            if name not in self.days:
                self.days[name] = LogReader(self.root / "days" / name)
        for name in [n for n in self.days if n not in names]:
            del self.days[name]  # retention deleted it
        return [self.days[n] for n in names]

    def _collect(self) -> Appended:
        """(sites, members, horizons) appended since the last read: meta first, then the days.
        All or nothing: if one file cannot be read, every reader goes back to where it was,
        so what the others read is read again next time rather than lost."""
        readers = [self.meta, *self._day_readers()]
        marks = [(r, r.offset, r.last_header) for r in readers]
        try:
            sites, horizons = [], []
            for record in self.meta.poll():
                (horizons if "horizons" in record else sites).append(record)
            members: list[dict[str, Any]] = []
            for reader in readers[1:]:
                members.extend(reader.poll())
        except BaseException:
            for reader, offset, header in marks:
                reader.offset, reader.last_header = offset, header
            raise
        return sites, members, horizons

    # -- applying ----------------------------------------------------------------------
    def _apply(self, sites: list[dict], members: Iterable[dict], horizons: list[dict]) -> int:
        store = self.store
        if sites:
            store.restore(sites)
        loaded = store.restore(members) if members else 0  # nothing read: nothing changes, not even the version
        for record in horizons:
            retained_from = record["horizons"].get("retained_from") or 0
            if retained_from > store.retained_from:
                store.compact(retained_from)  # no journal: drops the windows in memory only
            store.restore([record])
        return loaded

    def replay(self, stop: threading.Event | None = None) -> int:
        """Read everything there is now, one file at a time (as a restart does); returns the
        members loaded. ``stop`` ends it early. Nothing is served before it returns, so the
        horizons may go first here: members older than the retention horizon are then skipped."""
        sites, horizons = [], []
        for record in self.meta.poll():
            (horizons if "horizons" in record else sites).append(record)
        loaded = self._apply(sites, [], horizons)
        for reader in self._day_readers():
            if stop is not None and stop.is_set():
                break
            loaded += self._load_snapshot(reader)
            loaded += self.store.restore(reader.poll())
        self.members_read += loaded
        self.last_poll = self.last_progress = time.monotonic()
        return loaded

    def _load_snapshot(self, reader: LogReader) -> int:
        """Load a day's snapshot, if valid, and move the reader past the log it reflects."""
        snap = snapshot.snapshot_path(reader.path)
        if reader.offset or not snap.exists() or reader.path.stem < format_day(self.store.retained_from):
            return 0
        try:
            reader.offset, taken = snapshot.load_snapshot(self.store, snap, reader.path)
        except (snapshot.Unusable, OSError) as why:
            log.warning("snapshot %s not used (%s): the day is read from its log", snap, why)
            return 0
        return taken

    def poll(self, on_members: Callable[[DatasetStore, list[Member]], None] | None = None) -> int:
        """Apply what was appended since the last read; new members are announced to live clients."""
        return self.apply(self.read(), on_members)

    def read(self) -> Appended:
        """Read and parse what was appended (files only: may run in a thread, one at a time)."""
        try:
            return self._collect()
        except OSError as exc:
            self.last_error = f"cannot read {self.root}: {exc}"
            raise

    def apply(self, appended: Appended, on_members: Callable[[DatasetStore, list[Member]], None] | None = None) -> int:
        """Put what :meth:`read` returned into the store (on the event loop, which owns it)."""
        sites, members, horizons = appended
        loaded = self._apply(sites, members, horizons)
        if members:
            fresh = [m for m in map(member_from_record, members) if m.time >= self.store.retained_from]
            if fresh:
                (on_members or DatasetStore.announce)(self.store, fresh)
        self.members_read += loaded
        self.last_poll = time.monotonic()
        if any(appended) or not self.bytes_behind():
            self.last_progress = self.last_poll
        self.last_error = None
        return loaded

    def stalled_for(self, behind: int) -> float:
        """Seconds the log has held bytes this follower cannot read, given ``behind`` (what
        :meth:`bytes_behind` says now): a record the leader never finished, say. Readiness acts on it."""
        return time.monotonic() - self.last_progress if behind else 0.0

    def bytes_behind(self) -> int:
        """Bytes appended to the log that this follower has not read yet (a ``stat`` per file)."""
        behind = 0
        for reader in [self.meta, *self.days.values()]:
            try:
                behind += max(0, os.stat(reader.path).st_size - reader.offset)
            except OSError:
                continue
        for path in _day_files(self.root):
            if path.name not in self.days:
                try:
                    behind += path.stat().st_size
                except OSError:
                    continue
        return behind


def _day_files(root: Path) -> list[Path]:
    try:
        return sorted((root / "days").glob("*.log"))
    except OSError:
        return []

