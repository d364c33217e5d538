"""One window of members kept as columns: why a stored parking member costs about 20 bytes.

A member as an object (site, time, values, series) costs about 75 bytes even when its
parts are shared; ten million of them are most of a server's memory. Here a window keeps
four parallel arrays instead: the time (8 bytes), the site and the series as numbers in
a table of names (4 + 4), and the values as a number in a table of shared value dicts (4).
:class:`~ldf_server.records.Member` objects are made again when a page is built (and that
page's bytes are cached), so nothing a client or the rest of the server sees changes.

Value dicts that cannot be shared (a nested interval, or beyond the shared table's limit)
are kept in the window's own list, numbered below zero, so they go with the window when
retention drops it. The arrays are also what a day snapshot writes to disk
(:mod:`ldf_server.store.snapshot`): loading them back is a copy, not a parse.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from typing import Any, Mapping

from ldf_server.records import Member

SHARED_VALUES_MAX = 200_000  # distinct flat value dicts shared between members (beyond: kept per window)

TIME_CODE, NAME_CODE, VALUE_CODE = "q", "I", "i"  # int64 ms; uint32 name number; int32 value number (<0: own)


class Names:
    """Site keys and series names, each stored once and referred to by its number (0 is "")."""

    __slots__ = ("names", "ids")

    def __init__(self, names: list[str] | None = None) -> None:
        self.names: list[str] = names if names else [""]
        self.ids: dict[str, int] = {n: i for i, n in enumerate(self.names)}

    def extend(self, names: list[str]) -> None:
        for name in names:
            self.id_of(name)

    def id_of(self, name: str) -> int:
        i = self.ids.get(name)
        if i is None:
            i = self.ids[name] = len(self.names)
            self.names.append(name)
        return i


class SharedValues:
    """Flat value dicts that many members hold (a parking state: a few thousand distinct ones).

    Types are part of the key: 1, 1.0 and True are equal in Python but encode differently
    (and so are 0.0 and -0.0).
    """

    __slots__ = ("values", "ids", "limit")

    def __init__(self, limit: int | None = None) -> None:
        self.values: list[Mapping[str, Any]] = []
        self.ids: dict[tuple, int] = {}
        self.limit = SHARED_VALUES_MAX if limit is None else limit

    def extend(self, values: list[Mapping[str, Any]]) -> None:
        """Append dicts as they are (a snapshot's table, whose numbers must stay the same)."""
        for v in values:
            try:
                self.ids.setdefault(_flat(v), len(self.values))
            except TypeError:
                pass  # held by number only (a JSON round trip made a tuple a list, say)
            self.values.append(v)

    def id_of(self, values: Mapping[str, Any]) -> int | None:
        """The number of an equal dict in the table (added if there is room), or None."""
        try:
            flat = _flat(values)
            i = self.ids.get(flat)  # type: ignore[arg-type]
        except TypeError:  # a nested value (an interval, a position) cannot be hashed
            return None
        if i is None:
            if len(self.values) >= self.limit:
                return None
            i = self.ids[flat] = len(self.values)  # type: ignore[index]
            self.values.append(values)
        return i


def _flat(values: Mapping[str, Any]) -> tuple:
    """A hashable key that tells apart what encodes differently although Python finds it equal:
    1, 1.0 and True (by type), and 0.0 and -0.0 (floats by their exact hex form)."""
    return tuple([(k, v.__class__, v.hex() if v.__class__ is float else v) for k, v in values.items()])


class Window:
    """The members of one epoch-aligned window, sorted by (time, site, series)."""

    __slots__ = ("start", "times", "sites", "series", "values", "own", "version", "modified", "names", "shared")

    def __init__(self, start: int, names: Names, shared: SharedValues) -> None:
        self.start = start
        self.times = array(TIME_CODE)
        self.sites = array(NAME_CODE)
        self.series = array(NAME_CODE)
        self.values = array(VALUE_CODE)
        self.own: list[Mapping[str, Any]] = []  # value dicts not in the shared table
        self.version = 0
        self.modified = 0.0  # wall-clock seconds of the last change
        self.names = names
        self.shared = shared

    def __len__(self) -> int:
        return len(self.times)

    def copy(self) -> Window:
        """A copy of the columns (a memory copy of each array), for a thread to read while the
        event loop may still change this window."""
        other = Window(self.start, self.names, self.shared)
        other.times, other.sites, other.series, other.values = (
            self.times[:], self.sites[:], self.series[:], self.values[:])
        other.own = list(self.own)
        other.version, other.modified = self.version, self.modified
        return other

    # -- reading -------------------------------------------------------------------
    def values_at(self, i: int) -> Mapping[str, Any]:
        v = self.values[i]
        return self.shared.values[v] if v >= 0 else self.own[-1 - v]

    def member(self, i: int) -> Member:
        names = self.names.names
        return Member(names[self.sites[i]], self.times[i], self.values_at(i), names[self.series[i]])

    @property
    def members(self) -> list[Member]:
        """The members, made as objects (for building a page, whose bytes are then cached)."""
        return self.slice(0, len(self.times))

    def slice(self, i: int, j: int) -> list[Member]:
        names = self.names.names
        shared, own = self.shared.values, self.own
        return [
            Member(names[s], t, shared[v] if v >= 0 else own[-1 - v], names[r])
            for t, s, r, v in zip(self.times[i:j], self.sites[i:j], self.series[i:j], self.values[i:j])
        ]

    def between(self, lo: int, hi: int) -> list[Member]:
        """Members with lo <= time < hi."""
        return self.slice(bisect_left(self.times, lo), bisect_left(self.times, hi))

    def last_key(self) -> tuple[int, str, str] | None:
        if not self.times:
            return None
        names = self.names.names
        return (self.times[-1], names[self.sites[-1]], names[self.series[-1]])

    def after_last(self, time: int, site: str, series: str) -> bool:
        """Whether (time, site, series) sorts after every member: the usual case, since feeds
        report in time order (one poll: many sites at one instant). No search needed."""
        times = self.times
        if not times or time > times[-1]:
            return True
        if time < times[-1]:
            return False
        names = self.names.names
        return (site, series) > (names[self.sites[-1]], names[self.series[-1]])

    def position(self, time: int, site: str, series: str) -> tuple[int, bool]:
        """Where (time, site, series) is or would go, and whether it is there."""
        times = self.times
        lo = bisect_left(times, time)
        hi = bisect_right(times, time, lo)
        if lo == hi:
            return lo, False
        names, sites, serieses = self.names.names, self.sites, self.series
        pos = lo + bisect_left(range(lo, hi), (site, series), key=lambda i: (names[sites[i]], names[serieses[i]]))
        return pos, pos < hi and names[sites[pos]] == site and names[serieses[pos]] == series

    # -- writing -------------------------------------------------------------------
    def value_ref(self, values: Mapping[str, Any]) -> int:
        """The number to store for ``values``: shared when it can be, else the window's own."""
        i = self.shared.id_of(values)
        if i is not None:
            return i
        self.own.append(values)
        return -len(self.own)

    def insert(self, pos: int, time: int, site: int, series: int, value: int) -> None:
        if pos == len(self.times):
            self.times.append(time)
            self.sites.append(site)
            self.series.append(series)
            self.values.append(value)
        else:
            self.times.insert(pos, time)
            self.sites.insert(pos, site)
            self.series.insert(pos, series)
            self.values.insert(pos, value)
        self.version += 1
