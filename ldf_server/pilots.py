"""The three Smart Flanders pilots: how their members are shaped and which records are sane.

A :class:`Pilot` is the one place that knows, per kind of data, which term holds the
timestamp, how a member links to its site, which SHACL shape applies and which values
are impossible. Adapters, the store and the fragments consult it; adding a pilot is one
entry here, its terms in ``vocabularies/context.jsonld`` and its shape file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ldf_server.records import Member, Site
from ldf_server.vocabularies import PROV, SOSA

Check = Callable[[Member, Site], "str | None"]


@dataclass(frozen=True, slots=True)
class Pilot:
    name: str
    site_type: str  # JSON-LD type term of a site description
    timestamp_term: str  # term of a member's timestamp ...
    timestamp_path: str  # ... and its IRI (ldes:timestampPath, tree:path of relations)
    site_term: str  # term linking a member to its site
    versions: bool  # members are versions of their site (ldes:versionOfPath = site_term)
    latest_term: str  # term nesting the newest member(s) under a site in `latest`
    shape_file: str
    check: Check
    # When False, a member whose values equal its site's newest member is not stored:
    # a building is republished only when its data actually changed.
    publish_unchanged: bool = True


def _check_parking(member: Member, site: Site) -> str | None:
    vacant = member.values.get("vacantSpaces")
    if not isinstance(vacant, int) or isinstance(vacant, bool):
        return "vacant spaces missing or not a whole number"
    if vacant < 0:
        return "negative vacant spaces"
    if site.capacity is not None and vacant > site.capacity:
        return "more vacant spaces than capacity"
    return None


def _check_crowdedness(member: Member, site: Site) -> str | None:
    result = member.values.get("hasSimpleResult")
    if not isinstance(result, (int, float)) or isinstance(result, bool):
        return "count missing or not a number"
    if result < 0:
        return "negative count"
    return None


def _check_accessibility(member: Member, site: Site) -> str | None:
    for term in ("entranceDoorWidth", "elevatorDoorWidth", "toiletDoorWidth"):
        width = member.values.get(term)
        if width is not None and not (isinstance(width, int) and 0 < width < 1000):
            return f"{term} is not a width in centimetres"
    return None


PILOTS: dict[str, Pilot] = {
    p.name: p
    for p in (
        Pilot(
            name="parking",
            site_type="UrbanParkingSite",
            timestamp_term="observedAt",
            timestamp_path=PROV + "generatedAtTime",
            site_term="isVersionOf",
            versions=True,
            latest_term="latestVersion",
            shape_file="parking.shape.ttl",
            check=_check_parking,
        ),
        Pilot(
            name="crowdedness",
            site_type="FeatureOfInterest",
            timestamp_term="resultTime",
            timestamp_path=SOSA + "resultTime",
            site_term="hasFeatureOfInterest",
            versions=False,
            latest_term="latestObservations",
            shape_file="crowdedness.shape.ttl",
            check=_check_crowdedness,
        ),
        Pilot(
            name="accessibility",
            site_type="Gebouw",
            timestamp_term="observedAt",
            timestamp_path=PROV + "generatedAtTime",
            site_term="isVersionOf",
            versions=True,
            latest_term="latestVersion",
            shape_file="accessibility.shape.ttl",
            check=_check_accessibility,
            publish_unchanged=False,
        ),
    )
}
