"""Ghent's open data portal, garage occupancy (Opendatasoft API v1 ``records/1.0/search``).

Quirks of the real feed handled here: ``location`` is ``[lat, lon]`` while
``geometry.coordinates`` is GeoJSON ``[lon, lat]``; ``locationanddimension`` is a JSON
document encoded as a string; booleans are 0/1; ``lastupdate`` has a local offset;
``id`` is a web page URL rather than an identifier of the garage.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import orjson

from ldf_server.adapters.base import AdapterOptions, HttpAdapter, HttpOptions, PayloadError
from ldf_server.adapters.text import slug
from ldf_server.records import Batch, Site, parking_member, parking_status
from ldf_server.timeutil import to_ms


class GhentOdsOptions(HttpOptions):
    city: str = "gent"
    # Garage name (as in the feed) → the IRI the city minted for it, e.g. https://stad.gent/id/parking/P7.
    site_iris: dict[str, str] = {}


class GhentOdsGarages(HttpAdapter):
    name: ClassVar[str] = "ghent-ods-garages"
    Options: ClassVar[type[AdapterOptions]] = GhentOdsOptions

    def parse(self, payload: bytes, fetched_at: int) -> Batch:
        opts = self.options
        assert isinstance(opts, GhentOdsOptions)
        return parse_ods_garages(payload, city=opts.city, site_iris=opts.site_iris)


def parse_ods_garages(payload: bytes, *, city: str, site_iris: dict[str, str]) -> Batch:
    """Pure mapping of one Opendatasoft garage payload to sites and members."""
    return parse_ods(payload, city=city, site_iris=site_iris, capacity="totalcapacity", vacant="availablecapacity")


def parse_ods(payload: bytes, *, city: str, site_iris: dict[str, str], capacity: str, vacant: str) -> Batch:
    """Any of Ghent's Opendatasoft parking datasets: they differ in the names of the two count fields."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    records = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        raise PayloadError("no 'records' list in the payload")
    batch = Batch()
    for index, record in enumerate(records):
        try:
            site, member = _record(record, city, site_iris, capacity, vacant)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            batch.problems.append(f"record {index}: {type(exc).__name__}: {exc}")
            continue
        batch.sites.append(site)
        batch.members.append(member)
    if records and not batch.members:
        raise PayloadError("no record could be read: " + "; ".join(batch.problems[:3]))
    return batch


def _record(
    record: Any, city: str, site_iris: dict[str, str], capacity_field: str, vacant_field: str
) -> tuple[Site, Any]:
    fields = record["fields"]
    name = str(fields["name"]).strip()
    if not name:
        raise ValueError("empty name")
    capacity = _int(fields[capacity_field], capacity_field)
    vacant = _int(fields[vacant_field], vacant_field)
    updated = datetime.fromisoformat(str(fields["lastupdate"]))
    if updated.tzinfo is None:
        raise ValueError("lastupdate has no offset")
    lat, lon = _position(record, fields)
    is_open = _flag(fields.get("isopennow", 1), "isopennow") and not _flag(fields.get("temporaryclosed", 0), "temporaryclosed")
    site = Site(
        key=f"{city}/{slug(name)}",
        label=name,
        city=city,
        iri=site_iris.get(name),
        description=fields.get("description") or None,
        capacity=capacity,
        lat=lat,
        lon=lon,
    )
    member = parking_member(
        site.key,
        to_ms(updated),
        vacant,
        status=parking_status(vacant, capacity, is_open),
        opening="open" if is_open else "closed",
    )
    return site, member


def _flag(value: Any, field: str) -> bool:
    """The portal's 0/1 booleans (sometimes strings): ``bool("0")`` would be True."""
    if value in (0, 1, True, False):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise ValueError(f"{field} is not 0 or 1: {value!r}")


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{field} is not a whole number: {value!r}")
    return int(value)


def _position(record: dict[str, Any], fields: dict[str, Any]) -> tuple[float | None, float | None]:
    """Prefer ``location`` ([lat, lon]); fall back to GeoJSON geometry ([lon, lat]), then named fields."""
    loc = fields.get("location")
    if isinstance(loc, list) and len(loc) == 2:
        return float(loc[0]), float(loc[1])
    coords = (record.get("geometry") or {}).get("coordinates")
    if isinstance(coords, list) and len(coords) == 2:
        return float(coords[1]), float(coords[0])
    dims = fields.get("locationanddimension")
    if isinstance(dims, str):
        point = orjson.loads(dims).get("coordinatesForDisplay") or {}
        if "latitude" in point and "longitude" in point:
            return float(point["latitude"]), float(point["longitude"])
    if "latitude" in fields and "longitude" in fields:  # the park-and-ride dataset's own fields
        return float(fields["latitude"]), float(fields["longitude"])
    return None, None
