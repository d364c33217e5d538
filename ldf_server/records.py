"""Domain records: what adapters produce and the store keeps.

A :class:`Site` is the slowly changing description of a thing (a garage); a
:class:`Member` is one immutable, timestamped version of it. They are kept apart
so that a description is published once, not repeated in every member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class Site:
    """A parking site (or, later, a road segment or building) as described by its feed."""

    key: str  # unique within a dataset, URL-safe: "gent/P7"
    label: str
    city: str
    iri: str | None = None  # an IRI minted by the city itself, when it has one
    description: str | None = None
    capacity: int | None = None
    lat: float | None = None
    lon: float | None = None
    # Further description as compact JSON-LD terms (an address, a registry IRI, "@type", ...).
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Member:
    """One observed state of a site: immutable, identified by (site, series, time).

    ``series`` tells apart several members of one site at one instant, e.g. the
    pedestrian and cyclist counts of one road segment for one hour; it is empty for
    pilots with a single state per site (parking, accessibility).
    """

    site: str  # Site.key
    time: int  # epoch milliseconds, UTC
    values: Mapping[str, Any]  # properties as compact JSON-LD terms of the shared context
    series: str = ""

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.time, self.site, self.series)


@dataclass(slots=True)
class Batch:
    """What one poll of one feed yields."""

    sites: list[Site] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # records of the payload that were skipped, and why


PARKING_STATUSES = ("spacesAvailable", "almostFull", "full", "closed", "unknown")
OPENING_STATUSES = ("open", "closed", "unknown")


def parking_member(
    site: str,
    time_ms: int,
    vacant: int,
    *,
    status: str | None = None,
    opening: str | None = None,
) -> Member:
    """A parking member with DATEX II terms (see vocabularies/context.jsonld)."""
    values: dict[str, Any] = {"vacantSpaces": int(vacant)}
    if status is not None:
        values["siteStatus"] = status
    if opening is not None:
        values["openingStatus"] = opening
    return Member(site=site, time=time_ms, values=values)


def parking_status(vacant: int, capacity: int | None, is_open: bool = True) -> str:
    """DATEX II parkingSiteStatus derived from counts, for feeds that do not state it."""
    if not is_open:
        return "closed"
    if vacant <= 0:
        return "full"
    if capacity and vacant < max(5, capacity * 0.05):
        return "almostFull"
    return "spacesAvailable"


FUTURE_TOLERANCE_MS = 5 * 60 * 1000


def common_problem(member: Member, site: Site | None, now_ms: int) -> str | None:
    """Rules every pilot shares; pilot-specific ones live in :mod:`ldf_server.pilots`."""
    if site is None:
        return "unknown site"
    if member.time > now_ms + FUTURE_TOLERANCE_MS:
        return "timestamp in the future"
    if member.time < 0:
        return "timestamp before 1970"
    return None


# Crowdedness: the observable properties of ldf-server's vocabulary (vocabularies/ldf-server.ttl).
COUNTED = ("pedestrians", "cyclists", "cars", "heavyVehicles", "people")


def count_member(
    site: str,
    series: str,
    result_time: int,
    count: float,
    *,
    counted: str,
    start: int | None = None,
    end: int | None = None,
    direction: str | None = None,
    uptime: float | None = None,
    reliable: bool | None = None,
    sensor: str | None = None,
) -> Member:
    """A SOSA observation of a count; ``start``/``end`` (epoch ms) make the phenomenon time an interval."""
    from ldf_server.timeutil import format_instant

    if counted not in COUNTED:
        raise ValueError(f"unknown observed property {counted!r}")
    values: dict[str, Any] = {"@type": "Observation", "observedProperty": counted, "hasSimpleResult": count}
    if start is not None and end is not None:
        values["phenomenonTime"] = {
            "@type": "Interval",
            "hasBeginning": {"@type": "Instant", "inXSDDateTimeStamp": format_instant(start)},
            "hasEnd": {"@type": "Instant", "inXSDDateTimeStamp": format_instant(end)},
        }
    if direction is not None:
        values["direction"] = direction
    if uptime is not None:
        values["uptime"] = float(uptime)
    if reliable is not None:
        values["reliable"] = reliable
    if sensor is not None:
        values["madeBySensor"] = sensor
    return Member(site=site, time=result_time, values=values, series=series)


# Accessibility verdicts of the regional database (PLUS / PLMN / MIN) as terms of the context.
VERDICTS = {"PLUS": "accessible", "PLMN": "accessibleWithHelp", "MIN": "notAccessible"}


def building_member(
    site: str,
    time_ms: int,
    *,
    entrance_width: int | None = None,
    elevator_width: int | None = None,
    toilet_width: int | None = None,
    verdict: str | None = None,
    description: Mapping[str, Any] | None = None,
) -> Member:
    """One version of a building's accessibility data (door widths in cm, entrance verdict).

    ``description`` (name, position, address as context terms) is part of the version too,
    so a building that moves or is renamed gets a new version rather than a silent rewrite.
    """
    values: dict[str, Any] = dict(description or {})
    for term, value in (
        ("entranceDoorWidth", entrance_width),
        ("elevatorDoorWidth", elevator_width),
        ("toiletDoorWidth", toilet_width),
    ):
        if value is not None:
            values[term] = int(value)
    if verdict is not None:
        values["entranceAccessibility"] = VERDICTS[verdict]
    return Member(site=site, time=time_ms, values=values)
