"""Ghent's legacy datatank (``bezettingparkingsrealtime.json``, 2015–2019): a JSON array.

Quirks handled here:

* Two date formats in one record: the description's ``lastModifiedDate`` is ISO 8601 UTC
  (``2016-04-12T12:58:15.673Z``), the status's is local time without an offset
  (``13/12/2019 16:29:00``), which is Europe/Brussels wall-clock time: converted with
  ``zoneinfo`` so CET (+01:00) and CEST (+02:00) are both right. Either format is accepted
  in either field. In the repeated hour when clocks go back (e.g. 27/10/2019 02:30) the
  local time is ambiguous and the first occurrence (CEST) is taken; a time in the skipped
  hour in spring is read with the offset before the change.
* The observation time is ``parkingStatus.lastModifiedDate`` (when the counts were taken);
  the top-level date only says when the garage's description last changed (2016).
* ``parkingStatus.totalCapacity`` can differ from the top-level ``totalCapacity`` (465 vs
  450 for P07): see :func:`_record` for which one is the capacity.
* Names are ``"P07 Sint-Michiels"``: the IRI Ghent minted follows from the ``Pxx`` prefix.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import orjson

from ldf_server.adapters.base import AdapterOptions, HttpAdapter, HttpOptions, PayloadError
from ldf_server.adapters.common import City, coordinate, ghent_site_iri, whole_number
from ldf_server.adapters.text import slug
from ldf_server.records import Batch, Member, Site, parking_member, parking_status
from ldf_server.timeutil import to_ms

BRUSSELS = ZoneInfo("Europe/Brussels")
_LOCAL = re.compile(r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}(:\d{2})?$")


class GhentDatatankOptions(HttpOptions):
    city: City = "gent"
    # Parking name ("P07 Sint-Michiels") or number ("P07" or "P7") → IRI; by default derived from Pxx.
    site_iris: dict[str, str] = {}


class GhentDatatank(HttpAdapter):
    name: ClassVar[str] = "ghent-datatank"
    Options: ClassVar[type[AdapterOptions]] = GhentDatatankOptions

    def parse(self, payload: bytes, fetched_at: int) -> Batch:
        opts = self.options
        assert isinstance(opts, GhentDatatankOptions)
        return parse_datatank(payload, city=opts.city, site_iris=opts.site_iris, fetched_at=fetched_at)


def parse_datatank(
    payload: bytes, *, city: str, site_iris: dict[str, str], fetched_at: int | None = None
) -> Batch:
    """Pure mapping of one datatank payload to sites and members."""
    try:
        records = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    if not isinstance(records, list):
        raise PayloadError(f"expected a JSON array of parkings, got {type(records).__name__}")
    batch = Batch()
    for index, record in enumerate(records):
        try:
            site, member = _record(record, city, site_iris, fetched_at)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            batch.problems.append(f"record {index}: {type(exc).__name__}: {exc}")
            continue
        batch.sites.append(site)
        batch.members.append(member)
    if records and not batch.members:
        raise PayloadError("no record could be read: " + "; ".join(batch.problems[:3]))
    return batch


def datatank_time(text: Any, *, before: int | None = None) -> int:
    """Epoch ms of either datatank format: ISO 8601 with an offset, or Brussels ``dd/mm/yyyy HH:MM:SS``.

    A local time in the hour that repeats when clocks go back is ambiguous: the second
    occurrence is taken when it is not after ``before`` (the poll time), else the first.
    """
    if not isinstance(text, str):
        raise ValueError(f"not a date: {text!r}")
    text = text.strip()
    if _LOCAL.match(text):
        layout = "%d/%m/%Y %H:%M:%S" if text.count(":") == 2 else "%d/%m/%Y %H:%M"
        local = datetime.strptime(text, layout).replace(tzinfo=BRUSSELS)
        first, second = to_ms(local), to_ms(local.replace(fold=1))
        return second if second != first and before is not None and second <= before else first
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"ISO date without an offset: {text!r}")
    return to_ms(value)


def _record(record: Any, city: str, site_iris: dict[str, str], fetched_at: int | None) -> tuple[Site, Member]:
    if not isinstance(record["name"], str):
        raise TypeError(f"name is not a string: {record['name']!r}")
    name = record["name"].strip()
    if not name:
        raise ValueError("empty name")
    status = record["parkingStatus"]
    if not isinstance(status, dict):
        raise TypeError("parkingStatus is not an object")
    vacant = whole_number(status["availableCapacity"], "parkingStatus.availableCapacity")
    # Capacity: parkingStatus.totalCapacity, the top-level one only when the status has none.
    # The status block is rewritten with every count (its lastModifiedDate is the observation
    # time) and its availableCapacity is counted against its own totalCapacity, while the
    # top-level block is the garage's description, last changed years earlier (2016). A
    # vacant count must be judged against the capacity of the same moment, else a garage
    # with spaces added since (P07: 465 now, 450 described) would have good counts refused.
    declared = status.get("totalCapacity", record.get("totalCapacity"))
    capacity = None if declared is None else whole_number(declared, "totalCapacity", minimum=0)
    observed = datatank_time(status["lastModifiedDate"], before=fetched_at)
    is_open = status.get("open", True)
    if not isinstance(is_open, bool):
        raise TypeError(f"parkingStatus.open is not a boolean: {is_open!r}")
    lat = record.get("latitude")
    lon = record.get("longitude")
    site = Site(
        key=f"{city}/{slug(name)}",
        label=name,
        city=city,
        iri=ghent_site_iri(name, site_iris),
        description=str(record.get("description") or "").strip() or None,
        capacity=capacity,
        lat=None if lat is None else coordinate(lat, "latitude", 90),
        lon=None if lon is None else coordinate(lon, "longitude", 180),
    )
    member = parking_member(
        site.key,
        observed,
        vacant,
        status=parking_status(vacant, capacity, is_open),
        opening="open" if is_open else "closed",
    )
    return site, member
