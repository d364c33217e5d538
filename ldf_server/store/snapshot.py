"""Day snapshots: a closed day's windows written as columns, so a restart copies instead of parsing.

Replaying a log costs a JSON parse and a few dict look-ups per record: about 3 s per million
members, 30 s for ten million. But a sealed day never changes again (late members are
refused), so its windows can be written once, as the arrays the store keeps
(:mod:`ldf_server.store.columns`), beside the day's log: ``days/YYYY-MM-DD.snap``. A restart
reads meta.log, then for each day its snapshot (when it is valid) plus whatever the log
holds after it, and only the open day(s) by parsing.

The log stays the only truth. A snapshot records the size of the log it reflects and a
checksum of the log's bytes up to that size; it is used only when the log still starts
with exactly those bytes, its own checksum holds, every number in it refers to an entry of
its tables, and the window width and byte order match. Anything else (a log cut back by
recovery, an imported log, a changed configuration, a damaged file) and the day is replayed
from the log as before; the server deletes that snapshot and writes a new one later.
Retention deletes a day's snapshot before its log.

Each snapshot repeats the tables of names and shared values up to the last entry its day
uses: small for the pilots as they are (a few thousand parking states; crowdedness values
are nested and kept per window), but a pilot with flat values of very many distinct kinds
would repeat up to ``SHARED_VALUES_MAX`` of them per day.

File layout: ``<magic 8><log size u64><header length u32><crc32 u32>`` then the JSON header
(tables of names and shared values, windows, the newest time of each site and series)
and the arrays of every window, in the header's order. The crc covers everything else.
"""

from __future__ import annotations

import logging
import os
import struct
import sys
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import orjson

from ldf_server.store.columns import NAME_CODE, TIME_CODE, VALUE_CODE, Window
from ldf_server.store.log import DAY_MS, DatasetLog
from ldf_server.store.memory import DatasetStore
from ldf_server.timeutil import format_day, parse_instant

log = logging.getLogger(__name__)

MAGIC = b"LDFSNAP1"
FIXED = struct.Struct("<8sQII")  # magic, log size, header length, crc32 of all the rest
COVERED = struct.Struct("<8sQI")  # the fixed fields the crc covers (all but itself)
COLUMNS = ("times", "sites", "series", "values")
CODES = {"times": TIME_CODE, "sites": NAME_CODE, "series": NAME_CODE, "values": VALUE_CODE}

Wrap = Callable[[Iterator[dict[str, Any]]], Iterator[dict[str, Any]]]


class Unusable(Exception):
    """A snapshot that must not be trusted; the day is replayed from its log instead."""


def snapshot_path(log_path: Path) -> Path:
    return log_path.with_suffix(".snap")


# -- restoring --------------------------------------------------------------------------


def restore_dataset(store: DatasetStore, journal: DatasetLog, wrap: Wrap = lambda records: records) -> int:
    """Load a dataset's log into its store: meta records, then each day from its snapshot
    (when valid) and the log after it. ``wrap`` sees every record iterator (to stop early).
    A snapshot that cannot be used is deleted, so that a new one is written."""
    loaded = store.restore(wrap(journal.replay_meta()))
    for path in journal.day_paths():
        offset = 0
        snap = snapshot_path(path)
        if snap.exists() and path.stem >= format_day(store.retained_from):
            try:
                offset, taken = load_snapshot(store, snap, path)
                loaded += taken
            except (Unusable, OSError) as why:
                log.warning("snapshot %s not used (%s): the day is replayed from its log and snapshotted again", snap, why)
                snap.unlink(missing_ok=True)
        loaded += store.restore(wrap(journal.replay_day(path, offset)))
    return loaded


def load_snapshot(store: DatasetStore, snap: Path, log_path: Path) -> tuple[int, int]:
    """Put a day snapshot's windows into ``store``; returns (log offset it reflects, members
    taken). Raises :class:`Unusable` (having changed nothing) when it cannot be trusted."""
    data = memoryview(snap.read_bytes())
    if len(data) < FIXED.size:
        raise Unusable("truncated")
    magic, log_size, header_len, crc = FIXED.unpack_from(data)
    if magic != MAGIC:
        raise Unusable("not a snapshot of this version")
    if zlib.crc32(data[FIXED.size:], zlib.crc32(COVERED.pack(magic, log_size, header_len))) != crc:
        raise Unusable("checksum mismatch")
    if log_path.stat().st_size < log_size:
        raise Unusable("the log is shorter than the snapshot (cut back by recovery?)")
    try:
        header = orjson.loads(data[FIXED.size:FIXED.size + header_len])
        if header["log_crc"] != _log_crc(log_path, log_size):
            raise Unusable("the log is not the one the snapshot was made from")
        if header["window_ms"] != store.window_ms:
            raise Unusable(f"made with windows of {header['window_ms']} ms, now {store.window_ms} ms")
        if header["byteorder"] != sys.byteorder:
            raise Unusable("made on a machine of the other byte order")
        windows = _read_windows(store, header, data[FIXED.size + header_len:])
        newest_records = [(int(s), int(r), int(t)) for s, r, t in header["newest"]]
    except (ValueError, KeyError, IndexError, TypeError) as exc:  # a checksum collision, or a writer's bug
        raise Unusable(f"unreadable header: {type(exc).__name__}: {exc}") from exc
    if any(store.window(w.start) is not None for w in windows):
        raise Unusable("its windows are already loaded")
    # Nothing in the store has changed so far; from here on the snapshot is taken.
    names, renumber_values = _table_maps(store, header)
    newest: dict[tuple[int, int], int] = {}
    for s, r, t in newest_records:
        key = (s, r) if names is None else (names[s], names[r])
        newest[key] = max(t, newest.get(key, t))
    if names is not None or renumber_values:
        for w in windows:
            _renumber(w, names, header["values"] if renumber_values else None)
    return log_size, store.load_windows(windows, newest)


def _read_windows(store: DatasetStore, header: dict[str, Any], body: memoryview) -> list[Window]:
    """The windows as arrays, each number checked against its table (before any is used)."""
    windows = []
    offset = 0
    names, values = len(header["names"]), len(header["values"])
    for start, modified, count, own in header["windows"]:
        w = Window(int(start), store.names, store.shared_values)
        w.modified = float(modified)
        w.own = list(own)
        for column in COLUMNS:
            arr: array = getattr(w, column)
            size = int(count) * arr.itemsize
            if offset + size > len(body):
                raise Unusable("shorter than its header says")
            arr.frombytes(body[offset:offset + size])
            offset += size
        if w.times and not (
            w.start <= w.times[0] and w.times[-1] < w.start + store.window_ms
            and max(w.sites) < names and max(w.series) < names
            and max(w.values) < values and min(w.values) >= -len(w.own)
        ):
            raise Unusable(f"the window at {w.start} refers to what it does not hold")
        windows.append(w)
    if offset != len(body):
        raise Unusable("longer than its header says")
    return windows


def _table_maps(store: DatasetStore, header: dict[str, Any]) -> tuple[list[int] | None, bool]:
    """Make the store's tables agree with the snapshot's. Usually one is a prefix of the other
    (snapshots written by one process, or a store that adopted them): the rest is appended
    and numbers stay as they are. Otherwise, numbers are mapped one by one: the names' map
    is returned, and True when the values must be renumbered."""
    names: list[str] = header["names"]
    held = store.names.names
    if held[:len(names)] == names[:len(held)]:
        store.names.extend(names[len(held):])
        name_map = None
    else:
        name_map = [store.names.id_of(n) for n in names]
    values: list[Mapping[str, Any]] = header["values"]
    shared = store.shared_values.values
    n = min(len(shared), len(values))
    if orjson.dumps(shared[:n]) == orjson.dumps(values[:n]) and len(shared) + len(values) - n <= store.shared_values.limit:
        store.shared_values.extend(values[n:])
        return name_map, False
    return name_map, True


def _renumber(w: Window, names: list[int] | None, table: list[Mapping[str, Any]] | None) -> None:
    """Map a window's numbers onto the store's tables (a value may land in the window's own list)."""
    if names is not None:
        w.sites = array(NAME_CODE, [names[i] for i in w.sites])
        w.series = array(NAME_CODE, [names[i] for i in w.series])
    if table is not None:
        w.values = array(VALUE_CODE, [w.value_ref(table[v]) if v >= 0 else v for v in w.values])


def _log_crc(log_path: Path, size: int) -> int:
    """The crc32 of the log's first ``size`` bytes (a sequential read: about 0.1 s for a
    year of one city's parking; no parsing)."""
    crc = 0
    with open(log_path, "rb") as f:
        while size > 0:
            chunk = f.read(min(size, 1 << 20))
            if not chunk:
                raise Unusable("the log is shorter than the snapshot")
            crc = zlib.crc32(chunk, crc)
            size -= len(chunk)
    return crc


# -- writing ----------------------------------------------------------------------------


@dataclass
class DayCapture:
    """What a snapshot of one day needs, taken on the event loop (the writing is done in a thread)."""

    day: int
    log_path: Path
    log_size: int
    window_ms: int
    windows: list[Window]
    names: list[str]
    values: list[Mapping[str, Any]]


def due(store: DatasetStore, journal: DatasetLog) -> Iterator[DayCapture]:
    """The sealed days whose snapshot is missing or older than their log, one at a time. Run on
    the event loop: each leaves it with copies of one day's windows (a memory copy per array),
    so the thread that writes them reads nothing the loop can change, and a first run over a
    long history holds one day's copy at a time, not the whole store's."""
    for path in journal.day_paths():
        day = _day_of(path)
        if day is None or day + DAY_MS > store.sealed_before or day < store.retained_from:
            continue
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue  # retention removed it meanwhile
        if _snapshot_log_size(snapshot_path(path)) == size:
            continue
        windows = [w.copy() for s in store.window_starts(day, day + DAY_MS) if (w := store.window(s)) is not None]
        yield DayCapture(day, path, size, store.window_ms, windows, list(store.names.names), list(store.shared_values.values))


def write(capture: DayCapture) -> int:
    """Write one day's snapshot atomically (temporary file, fsync, rename); returns its bytes."""
    newest: dict[tuple[int, int], int] = {}
    for w in capture.windows:
        for t, s, r in zip(w.times, w.sites, w.series):
            newest[(s, r)] = t  # windows and their members are in time order: the last one wins
    # The tables up to the last entry this day uses: still a prefix of the store's (what loading
    # relies on), and an early day does not carry entries first seen later.
    used = [w for w in capture.windows if len(w)]
    names = 1 + max((max(max(w.sites), max(w.series)) for w in used), default=0)
    values = 1 + max((max(w.values) for w in used), default=-1)
    header = orjson.dumps({
        "day": format_day(capture.day), "window_ms": capture.window_ms, "byteorder": sys.byteorder,
        "log_crc": _log_crc(capture.log_path, capture.log_size),
        "names": capture.names[:names], "values": capture.values[:values],
        "windows": [[w.start, w.modified, len(w), w.own] for w in capture.windows],
        "newest": [[s, r, t] for (s, r), t in newest.items()],
    })
    body = b"".join(getattr(w, column).tobytes() for w in capture.windows for column in COLUMNS)
    crc = zlib.crc32(body, zlib.crc32(header, zlib.crc32(COVERED.pack(MAGIC, capture.log_size, len(header)))))
    path = snapshot_path(capture.log_path)
    tmp = path.with_suffix(".snap.tmp")
    with open(tmp, "wb") as f:
        f.write(FIXED.pack(MAGIC, capture.log_size, len(header), crc))
        f.write(header)
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if not capture.log_path.exists():  # retention removed the day meanwhile: no orphan
        path.unlink(missing_ok=True)
    return FIXED.size + len(header) + len(body)


def write_all(captures: Iterable[DayCapture]) -> tuple[int, int]:
    """Write snapshots in turn (in a thread); returns (written, failed). A failure is logged
    and costs only time at the next restart."""
    written = failed = 0
    for capture in captures:
        try:
            write(capture)
            written += 1
        except (OSError, Unusable) as exc:
            failed += 1
            log.warning("could not write the snapshot of %s: %s", capture.log_path, exc)
    return written, failed


def _snapshot_log_size(snap: Path) -> int | None:
    try:
        with open(snap, "rb") as f:
            head = f.read(FIXED.size)
    except OSError:
        return None
    if len(head) < FIXED.size:
        return None
    magic, log_size, _, _ = FIXED.unpack(head)
    return log_size if magic == MAGIC else None


def _day_of(path: Path) -> int | None:
    try:
        return parse_instant(f"{path.stem}T00:00:00Z")
    except ValueError:
        return None
