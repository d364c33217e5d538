"""Ghent's DATEX II v2 parking feeds: a static table and a dynamic status, joined by UUID.

Quirks handled here:

* Two documents: the table (``/datex2/v2/parkings/``) describes each ``parkingSite`` (name,
  capacity, position) under a UUID ``id``; the status (``/datex2/v2/parkingsstatus``) only
  refers to that UUID (``parkingRecordReference/@id``). They are joined here; a status record
  for a UUID the table does not know is skipped with a problem noted.
* The table changes rarely, so it is fetched on the first poll and then at most every
  ``table_refresh``; a refresh that fails (HTTP error or a table that does not read) keeps
  the last good table. ``fetch`` returns both documents as one :class:`Datex2Payload`, so
  ``parse`` stays a pure function of what was fetched.
* Namespaced XML (``http://datex2.eu/schema/2/2_0``), read with ElementTree after
  :func:`~ldf_server.adapters.common.parse_xml` has refused DOCTYPE/ENTITY declarations.
* Times carry offsets (``2017-11-08T07:00:01.000+01:00``) and are converted to UTC; a time
  without an offset is not guessed at (the record is skipped).
* Names are ``"P07 Sint-Michiels"``: the IRI Ghent minted (``https://stad.gent/id/parking/P7``)
  follows from the ``Pxx`` prefix unless ``site_iris`` maps the name or number.
"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, ClassVar

import aiohttp
from pydantic import Field

from ldf_server.adapters.base import Adapter, AdapterOptions, FeedError, PayloadError, http_get
from ldf_server.adapters.common import City, coordinate, ghent_site_iri, parse_xml, text_number
from ldf_server.adapters.text import slug
from ldf_server.config import Duration
from ldf_server.records import PARKING_STATUSES, Batch, Member, Site, parking_member, parking_status
from ldf_server.timeutil import to_ms

log = logging.getLogger(__name__)

NS = "{http://datex2.eu/schema/2/2_0}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
ACCEPT = "application/xml, text/xml;q=0.9"
# DATEX II statuses outside the five the vocabulary publishes.
_SITE_STATUS = {"fullAtEntrance": "full", "overcrowded": "full", "statusUnknown": "unknown"}
_OPENING = {"open": "open", "closed": "closed", "closedAbnormal": "closed"}


@dataclass(frozen=True, slots=True)
class Datex2Payload:
    table: bytes
    status: bytes


class GhentDatex2Options(AdapterOptions):
    table_url: str = Field(pattern=r"^https?://")
    status_url: str = Field(pattern=r"^https?://")
    city: City = "gent"
    # Parking name ("P07 Sint-Michiels") or number ("P07" or "P7") → IRI; by default derived from Pxx.
    site_iris: dict[str, str] = {}
    table_refresh: Duration = Field(default=3600.0, ge=1)


class GhentDatex2(Adapter):
    name: ClassVar[str] = "ghent-datex2"
    Options: ClassVar[type[AdapterOptions]] = GhentDatex2Options

    def __init__(self, feed, options) -> None:  # type: ignore[no-untyped-def]
        super().__init__(feed, options)
        self.clock: Callable[[], float] = time.monotonic  # when the table was last tried (tests replace it)
        self._table: bytes | None = None  # the last table that read
        self._table_tried: float | None = None

    async def fetch(self, session: aiohttp.ClientSession) -> Datex2Payload:
        opts = self.options
        assert isinstance(opts, GhentDatex2Options)
        now = self.clock()
        if self._table is None or self._table_tried is None or now - self._table_tried >= opts.table_refresh:
            self._table_tried = now
            try:
                table = await http_get(session, opts.table_url, timeout=self.feed.timeout, headers={"Accept": ACCEPT})
                parse_table(table, city=opts.city, site_iris=opts.site_iris)
            except (FeedError, PayloadError) as exc:
                if self._table is None:
                    raise type(exc)(f"parking table: {exc}") from exc
                log.warning("feed %s: parking table not refreshed, keeping the last good one: %s", self.feed.id, exc)
            else:
                self._table = table
        try:
            status = await http_get(session, opts.status_url, timeout=self.feed.timeout, headers={"Accept": ACCEPT})
        except FeedError as exc:
            raise FeedError(f"parking status: {exc}") from exc
        return Datex2Payload(self._table, status)

    def parse(self, payload: Datex2Payload, fetched_at: int) -> Batch:
        opts = self.options
        assert isinstance(opts, GhentDatex2Options)
        return parse_datex2(payload.table, payload.status, city=opts.city, site_iris=opts.site_iris)


def parse_datex2(table: bytes, status: bytes, *, city: str, site_iris: dict[str, str]) -> Batch:
    """Pure join of a table and a status document into sites and members."""
    sites, problems = parse_table(table, city=city, site_iris=site_iris)
    root = _publication(status, "parkingStatusPublication", "status")
    published = root.findtext(f"{NS}payloadPublication/{NS}publicationTime")
    batch = Batch(sites=list(sites.values()), problems=[f"table: {p}" for p in problems])
    records = list(root.iter(f"{NS}parkingRecordStatus"))
    for index, record in enumerate(records):
        try:
            batch.members.append(_status_member(record, sites, published))
        except ValueError as exc:
            batch.problems.append(f"status record {index}: {exc}")
    if records and not batch.members:
        raise PayloadError("no status record could be read: " + "; ".join(batch.problems[:3]))
    return batch


def parse_table(table: bytes, *, city: str, site_iris: dict[str, str]) -> tuple[dict[str, Site], list[str]]:
    """Sites of a table document by UUID, and the problems of the entries that were skipped."""
    root = _publication(table, "parkingTablePublication", "table")
    sites: dict[str, Site] = {}
    problems: list[str] = []
    for element in root.iter():
        if element.tag not in (f"{NS}parkingSite", f"{NS}parkingRecord") or _is_group(element):
            continue
        try:
            uuid = element.get("id") or ""
            if not uuid:
                raise ValueError("no id")
            sites[uuid] = _site(element, city, site_iris)
        except ValueError as exc:
            problems.append(f"parking site {element.get('id')!r}: {exc}")
    if not sites:
        raise PayloadError("no parking site could be read from the table" + "".join(f"; {p}" for p in problems[:3]))
    return sites, problems


def _publication(payload: bytes, kind: str, what: str) -> ET.Element:
    root = parse_xml(payload)
    if root.tag != f"{NS}d2LogicalModel":
        raise PayloadError(f"{what}: expected a DATEX II v2 d2LogicalModel, got <{root.tag}>")
    if root.find(f".//{NS}{kind}") is None:
        raise PayloadError(f"{what}: no {kind} in the document")
    return root


def _is_group(element: ET.Element) -> bool:
    return element.get(XSI_TYPE, "").endswith("GroupOfParkingSites")


def _site(element: ET.Element, city: str, site_iris: dict[str, str]) -> Site:
    name = _multilingual(element.find(f"{NS}parkingName"))
    if not name:
        raise ValueError("no parkingName")
    spaces = element.findtext(f"{NS}parkingNumberOfSpaces")
    capacity = None if spaces is None else text_number(spaces, "parkingNumberOfSpaces", minimum=0)
    point = element.find(f"{NS}parkingLocation/{NS}pointByCoordinates/{NS}pointCoordinates")
    lat = lon = None
    if point is not None:
        lat = coordinate(point.findtext(f"{NS}latitude"), "latitude", 90)
        lon = coordinate(point.findtext(f"{NS}longitude"), "longitude", 180)
    return Site(
        key=f"{city}/{slug(name)}",
        label=name,
        city=city,
        iri=ghent_site_iri(name, site_iris),
        description=_multilingual(element.find(f"{NS}parkingDescription")),
        capacity=capacity,
        lat=lat,
        lon=lon,
    )


def _multilingual(element: ET.Element | None) -> str | None:
    """The Dutch text of a DATEX II multilingual string, else its first value."""
    if element is None:
        return None
    values = [v for v in element.iter(f"{NS}value") if (v.text or "").strip()]
    chosen = next((v for v in values if v.get("lang") == "nl"), values[0] if values else None)
    return chosen.text.strip() if chosen is not None and chosen.text else None


def _status_member(record: ET.Element, sites: dict[str, Site], published: str | None) -> Member:
    reference = record.find(f"{NS}parkingRecordReference")
    uuid = reference.get("id") if reference is not None else None
    if not uuid:
        raise ValueError("no parkingRecordReference/@id")
    site = sites.get(uuid)
    if site is None:
        raise ValueError(f"unknown parking site {uuid} (not in the table)")
    vacant = text_number(
        record.findtext(f"{NS}parkingOccupancy/{NS}parkingNumberOfVacantSpaces"), "parkingNumberOfVacantSpaces"
    )
    stated = record.findtext(f"{NS}parkingStatusOriginTime") or published
    if not stated:
        raise ValueError("no parkingStatusOriginTime")
    observed = datetime.fromisoformat(stated.strip())
    if observed.tzinfo is None:
        raise ValueError(f"time without an offset: {stated.strip()!r}")
    opening = _OPENING.get((record.findtext(f"{NS}parkingSiteOpeningStatus") or "").strip(), "unknown")
    given = (record.findtext(f"{NS}parkingSiteStatus") or "").strip()
    status = _SITE_STATUS.get(given, given)
    if status not in PARKING_STATUSES:
        status = parking_status(vacant, site.capacity, opening != "closed")
    return parking_member(site.key, to_ms(observed), vacant, status=status, opening=opening)
