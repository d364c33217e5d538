"""JSON-LD nodes of sites and members, built directly as dicts (no RDF library per request)."""

from __future__ import annotations

from typing import Any

from ldf_server.fragments.urls import Urls
from ldf_server.records import Member, Site
from ldf_server.timeutil import format_instant


def site_iri(urls: Urls, ds: str, site: Site | None, key: str) -> str:
    """The city's own IRI for a site when it minted one, else ours."""
    return site.iri if site is not None and site.iri else urls.site(ds, key)


def member_node(urls: Urls, ds: str, member: Member, site: Site | None, *, with_site: bool = True) -> dict[str, Any]:
    node: dict[str, Any] = {"@id": urls.member(ds, member.site, member.time)}
    if with_site:
        node["isVersionOf"] = site_iri(urls, ds, site, member.site)
    node["observedAt"] = format_instant(member.time)
    node.update(member.values)
    return node


def site_node(urls: Urls, ds: str, site: Site) -> dict[str, Any]:
    node: dict[str, Any] = {"@id": site_iri(urls, ds, site, site.key), "@type": "UrbanParkingSite", "label": site.label}
    if site.description:
        node["description"] = {"nl": site.description}
    if site.capacity is not None:
        node["totalSpaces"] = site.capacity
    if site.lat is not None and site.lon is not None:
        node["lat"] = site.lat
        node["long"] = site.lon
    return node
