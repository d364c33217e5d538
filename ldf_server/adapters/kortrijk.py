"""Kortrijk's parking counters (Parko): ``<bezettingparkings><parking capaciteit=".." vrij="..">P Veemarkt</parking>``.

Quirks handled here:

* The garage's **name is the element text**; capacity and free spaces are the attributes
  ``capaciteit`` and ``vrij``.
* No coordinates: sites have no position.
* No timestamp: the time of the poll (``fetched_at``, to the second) is the observation
  time, so two polls of an unchanged document are two observations.
* XML from a server we do not control: DOCTYPE/ENTITY declarations are refused before
  parsing (see :func:`~ldf_server.adapters.common.parse_xml`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import ClassVar

from ldf_server.adapters.base import AdapterOptions, HttpAdapter, HttpOptions, PayloadError
from ldf_server.adapters.common import City, parse_xml, poll_time, text_number
from ldf_server.adapters.text import slug
from ldf_server.records import Batch, Member, Site, parking_member, parking_status

ROOT = "bezettingparkings"


class KortrijkOptions(HttpOptions):
    city: City = "kortrijk"
    # Garage name (the element text) → an IRI the city minted for it, if any.
    site_iris: dict[str, str] = {}


class KortrijkParko(HttpAdapter):
    name: ClassVar[str] = "kortrijk-parko"
    Options: ClassVar[type[AdapterOptions]] = KortrijkOptions
    accept: ClassVar[str] = "application/xml, text/xml;q=0.9"

    def parse(self, payload: bytes, fetched_at: int) -> Batch:
        opts = self.options
        assert isinstance(opts, KortrijkOptions)
        return parse_kortrijk(payload, fetched_at, city=opts.city, site_iris=opts.site_iris)


def parse_kortrijk(payload: bytes, fetched_at: int, *, city: str, site_iris: dict[str, str]) -> Batch:
    """Pure mapping of one counters document, observed at ``fetched_at`` (epoch ms), to sites and members."""
    root = parse_xml(payload)
    if root.tag != ROOT:
        raise PayloadError(f"expected <{ROOT}>, got <{root.tag}>")
    observed = poll_time(fetched_at)
    batch = Batch()
    records = root.findall("parking")
    for index, element in enumerate(records):
        try:
            site, member = _record(element, observed, city, site_iris)
        except ValueError as exc:
            batch.problems.append(f"parking {index}: {exc}")
            continue
        batch.sites.append(site)
        batch.members.append(member)
    if records and not batch.members:
        raise PayloadError("no parking could be read: " + "; ".join(batch.problems[:3]))
    return batch


def _record(element: ET.Element, observed: int, city: str, site_iris: dict[str, str]) -> tuple[Site, Member]:
    name = " ".join((element.text or "").split())
    if not name:
        raise ValueError("no name (element text)")
    capacity = text_number(element.get("capaciteit"), "capaciteit", minimum=0)
    vacant = text_number(element.get("vrij"), "vrij")
    site = Site(key=f"{city}/{slug(name)}", label=name, city=city, iri=site_iris.get(name), capacity=capacity)
    return site, parking_member(site.key, observed, vacant, status=parking_status(vacant, capacity))
