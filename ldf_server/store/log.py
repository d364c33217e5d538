"""The durable event log: checksummed, append-only files, one directory per dataset.

Layout under ``{data_dir}/{dataset}/``:

- ``days/YYYY-MM-DD.log``: the members observed on that UTC day. Retention drops whole
  days, so compaction on disk is deleting files, and it never rewrites a record.
- ``meta.log``: site descriptions (last one wins), the sealed horizon (pages served as
  immutable) and the retention horizon, so a restart serves the same bytes and 410s.

A record is ``<length: u32 LE><crc32: u32 LE><payload: JSON>``. Recovery reads records
until the first one that is incomplete or fails its checksum, and truncates the file
there: a torn tail from a crash is cut off, never half-read. When the bad record is not
the tail (a complete record with a bad checksum, followed by more bytes: damage rather
than a crash), the bytes cut off are first saved beside the file as ``NAME.log.corrupt-OFFSET``
so that nothing is destroyed that someone could still salvage.

Durability (``fsync`` in ``[server]``): ``always`` (the default) fsyncs each batch before
the write returns, so a push is acknowledged only once its records are on disk; it costs
one fsync per poll or push batch (about 0.1–10 ms depending on the disk), not per
record. ``interval`` fsyncs at most every ``fsync_interval`` seconds (a crash may lose
that much acknowledged data; a timer syncs what was written before a quiet spell); ``never``
leaves it to the operating system.

:class:`LogReader` reads a file from an offset and can be polled for what was appended
since, so another process can tail the log; :class:`Journal` is the small interface the
store writes through, so a distributed log could replace these files later.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import orjson

from ldf_server.records import Member, Site
from ldf_server.timeutil import format_day

log = logging.getLogger(__name__)

HEADER = struct.Struct("<II")
MAX_RECORD = 16 * 1024 * 1024
DAY_MS = 86_400_000


class LogError(OSError):
    """The log could not be written (disk full, unwritable directory): nothing was acknowledged."""


class Journal(Protocol):
    """What the store needs from a durable log."""

    def append_members(self, members: list[Member], at: float) -> None: ...
    def append_sites(self, sites: list[Site]) -> None: ...
    def append_horizons(self, horizons: dict[str, int | None]) -> None: ...
    def drop_days_before(self, day_ms: int) -> int: ...


def encode_record(payload: dict[str, Any]) -> bytes:
    body = orjson.dumps(payload)
    return HEADER.pack(len(body), zlib.crc32(body)) + body


@dataclass
class ReadResult:
    records: list[dict[str, Any]]
    good_offset: int  # end of the last complete, valid record
    torn: bool  # bytes after good_offset that are not a valid record
    damaged: bool = False  # a complete record failed its check and more bytes follow it
    last_header: tuple[int, bytes] | None = None  # (offset, length+crc header) of the last record read


def read_records(path: Path, offset: int = 0) -> ReadResult:
    """Every valid record from ``offset`` on, stopping at the first incomplete or corrupt one."""
    records: list[dict[str, Any]] = []
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    pos = 0
    last: tuple[int, bytes] | None = None
    while pos < len(data):
        if len(data) - pos < HEADER.size:
            return ReadResult(records, offset + pos, True, last_header=last)
        length, crc = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + length
        if length > MAX_RECORD or end > len(data):
            return ReadResult(records, offset + pos, True, last_header=last)
        body = data[pos + HEADER.size:end]
        if zlib.crc32(body) != crc:
            return ReadResult(records, offset + pos, True, damaged=end < len(data), last_header=last)
        try:
            records.append(orjson.loads(body))
        except orjson.JSONDecodeError:
            return ReadResult(records, offset + pos, True, damaged=end < len(data), last_header=last)
        last = (offset + pos, bytes(data[pos:pos + HEADER.size]))
        pos = end
    return ReadResult(records, offset + pos, False, last_header=last)


def recover(path: Path, offset: int = 0) -> ReadResult:
    """Read a file (from ``offset``: what a snapshot does not hold) and cut off a torn or
    corrupt tail, so appends continue after good data."""
    result = read_records(path, offset)
    if result.torn:
        size = path.stat().st_size
        if result.damaged:
            aside = path.with_name(f"{path.name}.corrupt-{result.good_offset}")
            with open(path, "rb") as f:
                f.seek(result.good_offset)
                aside.write_bytes(f.read())
            log.error("log %s: a corrupt record at offset %d is followed by more data; the %d bytes from there are kept in %s",
                      path, result.good_offset, size - result.good_offset, aside)
        log.warning("log %s: cut %d bytes of a torn or corrupt tail at offset %d", path, size - result.good_offset, result.good_offset)
        with open(path, "r+b") as f:
            f.truncate(result.good_offset)
            os.fsync(f.fileno())
    return result


class LogDiverged(Exception):
    """What a reader read is no longer in the file (its writer cut a failed write back and wrote
    other records there): the reader's copy must be rebuilt from the start."""


class LogReader:
    """Follow one log file from an offset: call :meth:`poll` for the records appended since.

    The header (length and checksum) of the last record read is kept and checked again before
    each read: a writer that cut a failed write back, after this reader had read part of it,
    and appended other records over it is detected (:class:`LogDiverged`) rather than read on
    from the middle of a record for ever.
    """

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self.last_header: tuple[int, bytes] | None = None

    def poll(self) -> list[dict[str, Any]]:
        try:
            size = self.path.stat().st_size
            if size < self.offset:
                raise LogDiverged(f"{self.path} is {size} bytes, shorter than the {self.offset} already read")
            if self.last_header is not None:
                at, header = self.last_header
                with open(self.path, "rb") as f:
                    f.seek(at)
                    if f.read(HEADER.size) != header:
                        raise LogDiverged(f"{self.path}: the record read at offset {at} has been replaced")
            if size == self.offset:
                return []
            result = read_records(self.path, self.offset)
        except FileNotFoundError:
            return []  # not created yet, or deleted by retention
        if result.damaged:
            raise LogDiverged(f"{self.path}: a damaged record at offset {result.good_offset} is followed by more data")
        self.offset = result.good_offset  # a record being written is picked up on a later poll
        if result.last_header is not None:
            self.last_header = result.last_header
        return result.records


class _Appender:
    """One open log file; a failed write is cut back to the last good offset before anything else is appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.good_offset = recover(path).good_offset if path.exists() else 0
        self.file = open(path, "ab")
        self.broken = False  # a failed write may have left bytes after good_offset

    def write(self, blob: bytes, *, sync: bool) -> None:
        if self.broken:
            self._heal()  # never append after a half-written record: recovery would cut both
        try:
            self.file.write(blob)
            self.file.flush()
            if sync:
                os.fsync(self.file.fileno())
        except (OSError, ValueError) as exc:
            self.broken = True
            try:
                self._heal()
            except LogError:
                pass  # tried again before the next write
            code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EIO
            reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            raise LogError(code, f"cannot append to {self.path}: {reason}") from exc
        self.good_offset += len(blob)

    def _heal(self) -> None:
        """Cut the file back to the last good record and reopen it, or raise :class:`LogError`."""
        try:
            self.file.close()
        except (OSError, ValueError):
            pass
        try:
            with open(self.path, "r+b") as f:
                f.truncate(self.good_offset)
            self.file = open(self.path, "ab")
        except OSError as exc:
            log.error("log %s: could not cut a failed write back to offset %d: %s", self.path, self.good_offset, exc)
            raise LogError(exc.errno or errno.EIO, f"cannot repair {self.path} after a failed write: {exc.strerror or exc}") from exc
        self.broken = False

    def sync(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        except (OSError, ValueError):
            pass
        try:
            self.file.close()
        except (OSError, ValueError):
            pass


class DatasetLog:
    """The durable log of one dataset (see the module docstring for the layout)."""

    def __init__(
        self,
        root: Path,
        *,
        fsync: str = "always",
        fsync_interval: float = 1.0,
        on_append: Callable[[int], None] | None = None,  # told the bytes of every successful append
    ) -> None:
        self.root = root
        self.on_append = on_append
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self._appenders: dict[str, _Appender] = {}
        self._unsynced: set[str] = set()  # files written since the last sync (``interval``)
        self._last_sync = 0.0
        self.bytes_appended = 0
        self.last_error: str | None = None

    # -- writing ---------------------------------------------------------------------
    def append_members(self, members: list[Member], at: float) -> None:
        by_day: dict[str, list[bytes]] = {}
        for m in members:
            record = {"s": m.site, "t": m.time, "v": m.values, "a": at}
            if m.series:
                record["r"] = m.series
            by_day.setdefault(format_day(m.time), []).append(encode_record(record))
        written: list[tuple[_Appender, int]] = []  # (file, its end before this batch)
        try:
            for day, blobs in sorted(by_day.items()):
                name = f"days/{day}.log"
                before = self._appenders[name].good_offset if name in self._appenders else None
                self._write(name, b"".join(blobs))
                written.append((self._appenders[name], before or 0))
        except LogError:
            # All or nothing: the store adds none of the batch, so no day file may keep part of
            # it (a replay, or a day snapshot taken from memory, would disagree with the log).
            for appender, before in written:
                appender.good_offset = before
                appender.broken = True
                try:
                    appender._heal()
                except LogError:
                    pass  # cut back before the next write to that file (broken stays set)
            raise

    def append_sites(self, sites: list[Site]) -> None:
        if sites:
            self._write("meta.log", b"".join(encode_record({"site": _site_record(s)}) for s in sites))

    def append_horizons(self, horizons: dict[str, int | None]) -> None:
        """``sealed_before``, ``retained_from`` and ``first_seen`` of the store (last record wins)."""
        self._write("meta.log", encode_record({"horizons": horizons}))

    def drop_days_before(self, day_ms: int) -> int:
        """Delete the day files before ``day_ms`` (retention); returns how many went."""
        cutoff = format_day(day_ms)
        dropped = 0
        for stale in (self.root / "days").glob("*.snap*"):  # a snapshot whose log went, or a crashed write's
            if stale.name[:10] < cutoff and not stale.with_name(stale.name[:10] + ".log").exists():
                stale.unlink(missing_ok=True)
        for path in sorted((self.root / "days").glob("*.log")):
            if path.stem < cutoff:
                appender = self._appenders.pop(f"days/{path.name}", None)
                try:
                    if appender:
                        appender.close()
                    path.with_suffix(".snap").unlink(missing_ok=True)  # first: a snapshot never outlives its log
                    path.unlink()
                except OSError as exc:
                    # Kept for the next round; replay skips it (the horizon record is older-proof).
                    self.last_error = f"retention could not delete {path.name}: {exc}"
                    log.error("durable log: %s", self.last_error)
                    continue
                dropped += 1
        return dropped

    def _write(self, name: str, blob: bytes) -> None:
        try:
            appender = self._appenders.get(name)
            if appender is None:
                appender = self._appenders[name] = _Appender(self.root / name)
            appender.write(blob, sync=self.fsync == "always")
        except OSError as exc:
            self.last_error = str(exc)
            log.error("durable log: %s", exc)
            raise exc if isinstance(exc, LogError) else LogError(exc.errno, str(exc)) from exc
        self.bytes_appended += len(blob)
        self.last_error = None
        if self.fsync == "interval":
            self._unsynced.add(name)
            self.sync_due()
        if self.on_append is not None:
            self.on_append(len(blob))

    def sync_due(self, now: float | None = None) -> int:
        """``interval``: fsync every file written since the last sync once ``fsync_interval`` has
        passed (called after each write and by the server's timer, so data written just before
        a quiet spell is synced too, not only when the next write comes). Returns files synced;
        a failure is logged and shows in readiness, and the files are tried again next time."""
        now = time.monotonic() if now is None else now
        if not self._unsynced or now - self._last_sync < self.fsync_interval:
            return 0
        synced = 0
        for name in sorted(self._unsynced):
            appender = self._appenders.get(name)
            try:
                if appender is not None:
                    appender.sync()
            except (OSError, ValueError) as exc:
                self.last_error = f"cannot sync {self.root / name}: {exc}"
                log.error("durable log: %s", self.last_error)
                return synced
            self._unsynced.discard(name)
            synced += 1
        self._last_sync = now
        return synced

    def close(self) -> None:
        for appender in self._appenders.values():
            appender.close()
        self._appenders.clear()

    # -- reading ---------------------------------------------------------------------
    def replay(self) -> Iterator[dict[str, Any]]:
        """Meta records first (sites, horizons), then the members day by day; tails recovered."""
        yield from self.replay_meta()
        for path in self.day_paths():
            yield from self.replay_day(path)

    def replay_meta(self) -> Iterator[dict[str, Any]]:
        meta = self.root / "meta.log"
        if meta.exists():
            yield from recover(meta).records

    def day_paths(self) -> list[Path]:
        """The day files, oldest first."""
        return sorted((self.root / "days").glob("*.log"))

    def replay_day(self, path: Path, offset: int = 0) -> Iterator[dict[str, Any]]:
        """The records of one day file from ``offset`` (where a snapshot of it ends); tail recovered."""
        yield from recover(path, offset).records


def read_dataset(root: Path, first_day: str | None = None, last_day: str | None = None) -> Iterator[dict[str, Any]]:
    """Like :meth:`DatasetLog.replay`, read-only: meta records, then the day files in
    [first_day, last_day]. Nothing is truncated, so a running server may be appending:
    a record being written is simply not read yet (exports, day dumps)."""
    meta = root / "meta.log"
    if meta.exists():
        yield from read_records(meta).records
    for path in sorted((root / "days").glob("*.log")):
        if (first_day is None or path.stem >= first_day) and (last_day is None or path.stem <= last_day):
            yield from read_records(path).records


def _site_record(site: Site) -> dict[str, Any]:
    return {
        "key": site.key, "label": site.label, "city": site.city, "iri": site.iri, "description": site.description,
        "capacity": site.capacity, "lat": site.lat, "lon": site.lon, "properties": dict(site.properties),
    }


def site_from_record(record: dict[str, Any]) -> Site:
    return Site(**record)


def member_from_record(record: dict[str, Any]) -> Member:
    return Member(site=record["s"], time=record["t"], values=record["v"], series=record.get("r", ""))
