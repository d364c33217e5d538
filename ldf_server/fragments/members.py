"""JSON-LD nodes of sites and members, built directly as dicts (no RDF library per request)."""

from __future__ import annotations

from typing import Any

from ldf_server.fragments.urls import Urls
from ldf_server.pilots import Pilot
from ldf_server.records import Member, Site
from ldf_server.timeutil import format_instant


def site_iri(urls: Urls, ds: str, site: Site | None, key: str) -> str:
    """The IRI a city or registry minted for a site when there is one, else ours."""
    return site.iri if site is not None and site.iri else urls.site(ds, key)


def member_node(
    urls: Urls, ds: str, pilot: Pilot, member: Member, site: Site | None, *, with_site: bool = True
) -> dict[str, Any]:
    node: dict[str, Any] = {"@id": urls.member(ds, member.site, member.series, member.time)}
    if with_site:
        node[pilot.site_term] = site_iri(urls, ds, site, member.site)
    node[pilot.timestamp_term] = format_instant(member.time)
    node.update(member.values)
    return node


def site_node(urls: Urls, ds: str, pilot: Pilot, site: Site) -> dict[str, Any]:
    node: dict[str, Any] = {"@id": site_iri(urls, ds, site, site.key), "@type": pilot.site_type, "label": site.label}
    if site.description:
        node["description"] = {"nl": site.description}
    if site.capacity is not None:
        node["totalSpaces"] = site.capacity
    if site.lat is not None and site.lon is not None:
        # 7 decimals (about 1 cm): more digits than a double prints identically everywhere
        # make JSON-LD processors disagree on the literal.
        node["lat"] = round(site.lat, 7)
        node["long"] = round(site.lon, 7)
    node.update(site.properties)
    return node


def with_newest(urls: Urls, ds: str, pilot: Pilot, site: Site, newest: dict[str, Member]) -> dict[str, Any]:
    """A site node with its newest member(s) nested under ``pilot.latest_term``."""
    node = site_node(urls, ds, pilot, site)
    if pilot.versions:
        member = newest.get("")
        if member is not None:
            node[pilot.latest_term] = member_node(urls, ds, pilot, member, site, with_site=False)
    elif newest:
        node[pilot.latest_term] = [
            member_node(urls, ds, pilot, m, site, with_site=False) for _, m in sorted(newest.items())
        ]
    return node
