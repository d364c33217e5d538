"""Public buildings' accessibility from JSON-LD shaped like the 2018 accessibility pilot's.

The document is flattened with pyld using only its own inline context: a remote
``@context`` is refused, never fetched. The real documents' bugs are corrected here, so
that the same buildings get the same IRIs as from the CSV export:

- ``"gebouw": "http://data.vlaanderen.be/ns/gebouw#"`` makes ``gebouw:14914874`` a term of
  the vocabulary; it is published as the registry's ``https://data.vlaanderen.be/id/gebouw/14914874``;
- ``"schema": "http://schema.org/image"`` breaks ``schema:name`` (a JSON-LD 1.0 processor
  reads ``http://schema.org/imagename``, a 1.1 processor the IRI ``schema:name``): all are
  read as the building's name;
- ``xsd:Integer`` (no such datatype) is read as ``xsd:integer``;
- ``http://data.vlaanderen.be/…`` and ``https://…`` are mixed: registry IRIs are published with https.

The member's time is when we read the document, as for the CSV export.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Iterator

import orjson
from pyld import jsonld

from ldf_server.adapters.base import AdapterOptions, PayloadError
from ldf_server.adapters.buildings import building_site, described, read_time, source_instant
from ldf_server.adapters.sources import FileOrUrlAdapter, FileOrUrlOptions
from ldf_server.records import Batch, Member, Site, building_member
from ldf_server.vocabularies import DCT, GEO, LOCN, RDFS_LABEL, SCHEMA, SCHEMA_HTTPS, WA, XSD

# Both schemes of data.vlaanderen.be, as the real documents mix them.
_VLAANDEREN = r"https?://data\.vlaanderen\.be/"
_BUILDING_IN_VOCAB = re.compile(_VLAANDEREN + r"ns/gebouw#(\d+)\Z")  # the gebouw: prefix bug
_BUILDING_IN_REGISTRY = re.compile(_VLAANDEREN + r"id/gebouw/(\d+)\Z")
_ADDRESS_IN_REGISTRY = re.compile(_VLAANDEREN + r"id/adres/(\d+)\Z")
_GEBOUW_TYPE = re.compile(_VLAANDEREN + r"ns/gebouw#Gebouw\Z")
_GEBOUW_ADRES = re.compile(_VLAANDEREN + r"ns/gebouw#Gebouw\.adres\Z")

SCHEMA_IMAGE = SCHEMA + "image"
NAME_PROPERTIES = (
    SCHEMA + "name", SCHEMA_HTTPS + "name",
    SCHEMA_IMAGE + "name",  # schema:name under "schema": "http://schema.org/image" (JSON-LD 1.0)
    "schema:name",  # the same under JSON-LD 1.1, where "schema" is not a prefix any more
    RDFS_LABEL,
)
WIDTH_PROPERTIES = {
    WA + "entranceDoorWidth": "entrance_width",
    WA + "elevatorDoorWidth": "elevator_width",
    WA + "toiletDoorWidth": "toilet_width",
}
INTEGER_TYPES = {XSD + "integer", XSD + "Integer", XSD + "int", XSD + "long", XSD + "short",
                 XSD + "positiveInteger", XSD + "nonNegativeInteger"}
NUMBER_TYPES = INTEGER_TYPES | {XSD + "decimal", XSD + "double", XSD + "float"}


class AccessibilityJsonLd(FileOrUrlAdapter):
    name: ClassVar[str] = "accessibility-jsonld"
    Options: ClassVar[type[AdapterOptions]] = FileOrUrlOptions
    accept: ClassVar[str] = "application/ld+json, application/json;q=0.9"

    def parse(self, payload: bytes, fetched_at: int) -> Batch:
        return parse_accessibility_jsonld(payload, fetched_at)


def parse_accessibility_jsonld(payload: bytes, fetched_at: int) -> Batch:
    """Pure mapping of one document (a building, a list or an ``@graph`` of them) to sites and members."""
    nodes = _flatten(payload)
    by_id = {n["@id"]: n for n in nodes if "@id" in n}
    buildings = [n for n in nodes if any(_GEBOUW_TYPE.match(t) for t in n.get("@type", []))]
    if not buildings:
        raise PayloadError("no gebouw:Gebouw in the document")
    time = read_time(fetched_at)
    batch = Batch()
    seen: set[str] = set()
    for building in buildings:
        try:
            site, member = _building(building, by_id, time)
        except (KeyError, TypeError, ValueError) as exc:
            batch.problems.append(f"building {building.get('@id', '?')}: {exc}")
            continue
        if site.key in seen:
            batch.problems.append(f"building {site.key} appears twice; the first is kept")
            continue
        seen.add(site.key)
        batch.sites.append(site)
        batch.members.append(member)
    if not batch.members:
        raise PayloadError("no building could be read: " + "; ".join(batch.problems[:3]))
    return batch


def _flatten(payload: bytes) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    if not isinstance(doc, (dict, list)):
        raise PayloadError("not a JSON-LD document (an object or an array)")
    refused: list[str] = []

    def no_remote(url: str, options: dict | None = None) -> dict:
        refused.append(url)
        raise PayloadError(f"remote context {url} is not fetched")

    try:
        flat = jsonld.flatten(doc, None, {"documentLoader": no_remote})
    except Exception as exc:  # pyld wraps every error, the loader's too, in JsonLdError
        if refused:
            raise PayloadError(f"remote contexts are not fetched (only the document's own context is used): {refused[0]}") from None
        raise PayloadError(f"not valid JSON-LD: {str(exc).splitlines()[0][:300]}") from None
    return flat if isinstance(flat, list) else []


def _building(node: dict[str, Any], by_id: dict[str, dict[str, Any]], time: int) -> tuple[Site, Member]:
    building_id = _registry_id(node.get("@id", ""), _BUILDING_IN_VOCAB, _BUILDING_IN_REGISTRY)
    name = next((v for p in NAME_PROPERTIES for v in _literals(node, p)), None)
    if not isinstance(name, str) or not name.strip():
        raise ValueError("no name")
    address = next((by_id.get(ref, {"@id": ref}) for p, refs in _refs(node, _GEBOUW_ADRES) for ref in refs), None)
    address_id = None
    parts: dict[str, str | None] = {}
    lat = lon = None
    if address is not None:
        address_id = _registry_id(address.get("@id", ""), _ADDRESS_IN_REGISTRY)
        for key, prop in (("street", "thoroughfare"), ("number", "locatorDesignator"),
                          ("post_code", "postCode"), ("municipality", "postName")):
            parts[key] = next((str(v) for v in _literals(address, LOCN + prop)), None)
        lat, lon = _position(address, by_id)
    if lat is None:
        lat, lon = _position(node, by_id)
    modified = next((str(v) for v in _literals(node, DCT + "modified")), None)
    image = next((ref for ref in _ids(node, SCHEMA_IMAGE)), None)
    site = building_site(
        name=name,
        building_id=building_id,
        address_id=address_id,
        lat=lat,
        lon=lon,
        modified=source_instant(modified) if modified else None,
        image=image,
        **parts,  # type: ignore[arg-type]
    )
    widths: dict[str, int] = {}
    for measured in _reachable(node, by_id):
        for prop, arg in WIDTH_PROPERTIES.items():
            for value in measured.get(prop, []):
                width = _integer(value, prop.removeprefix(WA))
                if arg in widths and widths[arg] != width:
                    raise ValueError(f"two different values for {prop.removeprefix(WA)}")
                widths[arg] = width
    return site, building_member(site.key, time, description=described(site), **widths)


def _registry_id(iri: str, *patterns: re.Pattern[str]) -> str | None:
    for pattern in patterns:
        match = pattern.match(iri)
        if match:
            return match.group(1)
    return None


def _refs(node: dict[str, Any], prop: re.Pattern[str]) -> Iterator[tuple[str, list[str]]]:
    for key, values in node.items():
        if prop.match(key):
            yield key, [v["@id"] for v in values if isinstance(v, dict) and "@id" in v]


def _ids(node: dict[str, Any], prop: str) -> Iterator[str]:
    for value in node.get(prop, []):
        if isinstance(value, dict) and "@id" in value and not value["@id"].startswith("_:"):
            yield value["@id"]


def _literals(node: dict[str, Any], prop: str) -> Iterator[Any]:
    for value in node.get(prop, []):
        if isinstance(value, dict) and "@value" in value:
            yield value["@value"]


def _reachable(start: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The building and the nodes it links to (its measurements), not entering other buildings."""
    seen = {start.get("@id")}
    todo = [start]
    while todo:
        node = todo.pop()
        yield node
        for key, values in node.items():
            if key.startswith("@") or not isinstance(values, list):
                continue
            for value in values:
                ref = value.get("@id") if isinstance(value, dict) and "@value" not in value else None
                target = by_id.get(ref) if ref else None
                if target is None or ref in seen or any(_GEBOUW_TYPE.match(t) for t in target.get("@type", [])):
                    continue
                seen.add(ref)
                todo.append(target)


def _position(node: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> tuple[float | None, float | None]:
    """geo:lat/geo:long on the node itself or on its geo:location point."""
    candidates = [node] + [by_id[ref] for ref in _all_ids(node, GEO + "location") if ref in by_id]
    for candidate in candidates:
        lat = next((v for v in candidate.get(GEO + "lat", [])), None)
        lon = next((v for v in candidate.get(GEO + "long", [])), None)
        if lat is not None and lon is not None:
            return _float(lat, "latitude"), _float(lon, "longitude")
    return None, None


def _all_ids(node: dict[str, Any], prop: str) -> list[str]:
    return [v["@id"] for v in node.get(prop, []) if isinstance(v, dict) and "@id" in v]


def _float(value: Any, what: str) -> float:
    raw = value.get("@value") if isinstance(value, dict) else None
    datatype = value.get("@type") if isinstance(value, dict) else None
    if isinstance(raw, bool) or raw is None or (datatype is not None and datatype not in NUMBER_TYPES):
        raise ValueError(f"{what} is not a number: {raw!r}")
    number = float(raw)
    if not math.isfinite(number):
        raise ValueError(f"{what} is not a number: {raw!r}")
    return number


def _integer(value: Any, what: str) -> int:
    """A width in whole centimetres: a JSON integer, or a string typed xsd:integer (or xsd:Integer)."""
    raw = value.get("@value") if isinstance(value, dict) else None
    datatype = value.get("@type") if isinstance(value, dict) else None
    if datatype is not None and datatype not in NUMBER_TYPES:
        raise ValueError(f"{what} has datatype {datatype}, not a number")
    if isinstance(raw, bool):
        raise ValueError(f"{what} is not a width in whole centimetres: {raw!r}")
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    raise ValueError(f"{what} is not a width in whole centimetres: {raw!r}")
