"""What the accessibility adapters share: one public building as a site, whatever the source format.

Both the CSV export and the 2018 pilot's JSON-LD describe the same buildings, so both map
them here, to the same keys and IRIs: a building known to the building registry is
``toevla/<GebouwId>`` with IRI ``https://data.vlaanderen.be/id/gebouw/<GebouwId>``.
"""

from __future__ import annotations

from ldf_server.adapters.common import poll_time

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ldf_server.adapters.text import slug
from ldf_server.records import Site
from ldf_server.timeutil import format_instant, to_ms
from ldf_server.vocabularies import ADDRESS_REGISTRY, BUILDING_REGISTRY

PREFIX = "toevla"
LOCAL_TIME = ZoneInfo("Europe/Brussels")
COORDINATE_DECIMALS = 7


def read_time(fetched_at: int) -> int:
    """A member's time: when we read the source, to the second."""
    return poll_time(fetched_at)


def registry_id(value: str | None) -> str | None:
    """A registry identifier (digits), or None for an empty cell; anything else is a ValueError."""
    text = (value or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"registry identifier {text!r} is not a number")
    return text


def source_instant(text: str) -> str:
    """The source's own date-time as a UTC ``xsd:dateTime``; local times are Belgian time."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TIME)
    return format_instant(to_ms(value))


def building_site(
    *,
    name: str,
    building_id: str | None,
    address_id: str | None = None,
    municipality: str | None = None,
    street: str | None = None,
    number: str | None = None,
    post_code: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    modified: str | None = None,
    image: str | None = None,
) -> Site:
    name = name.strip()
    if not name:
        raise ValueError("the building has no name")
    if lat is not None and not -90 <= lat <= 90 or lon is not None and not -180 <= lon <= 180:
        raise ValueError(f"position ({lat}, {lon}) is not a WGS84 latitude and longitude")
    if (lat is None) != (lon is None):
        raise ValueError("only one of latitude and longitude is given")
    if lat is not None and lon is not None:
        # 7 decimals is about 1 cm. JSON-LD writes an xsd:double with 16 significant digits,
        # so a 17-digit coordinate of the source would read differently in different processors.
        lat, lon = round(lat, COORDINATE_DECIMALS), round(lon, COORDINATE_DECIMALS)
    if building_id:
        key = f"{PREFIX}/{building_id}"
    else:
        key = f"{PREFIX}/{slug(name)}" + (f"-{slug(municipality)}" if municipality else "")
    properties: dict[str, Any] = {}
    address = address_node(address_id, street, number, post_code, municipality)
    if address is not None:
        properties["address"] = address
    if modified is not None:
        properties["modified"] = modified
    if image is not None:
        properties["image"] = image
    return Site(
        key=key,
        label=name,
        city=slug(municipality) if municipality else PREFIX,
        iri=BUILDING_REGISTRY + building_id if building_id else None,
        lat=lat,
        lon=lon,
        properties=properties,
    )


def address_node(
    address_id: str | None,
    street: str | None,
    number: str | None,
    post_code: str | None,
    municipality: str | None,
) -> dict[str, Any] | None:
    """A ``locn:Address``: the address registry's IRI when known, and whatever parts are given."""
    node: dict[str, Any] = {}
    if address_id:
        node["@id"] = ADDRESS_REGISTRY + address_id
    node["@type"] = "Address"
    parts = {"thoroughfare": street, "locatorDesignator": number, "postCode": post_code, "postName": municipality}
    for term, value in parts.items():
        if value and value.strip():
            node[term] = value.strip()
    line = " ".join(p for p in (node.get("thoroughfare"), node.get("locatorDesignator")) if p)
    town = " ".join(p for p in (node.get("postCode"), node.get("postName")) if p)
    if line or town:
        node["fullAddress"] = ", ".join(p for p in (line, town) if p)
    if len(node) == 1:  # only the type: nothing is known
        return None
    return node


def described(site: Site) -> dict[str, Any]:
    """The parts of a building's description that belong in each of its versions."""
    out: dict[str, Any] = {"label": site.label}
    if site.lat is not None and site.lon is not None:
        out["lat"], out["long"] = site.lat, site.lon
    address = site.properties.get("address")
    if isinstance(address, dict) and "@id" in address:
        # Only registry addresses: an address without an IRI would be a second blank node
        # beside the site's own, duplicating its triples for SPARQL clients.
        out["address"] = address
    return out
