"""What a dump of a dataset holds, and the index of the daily dumps.

A dump (``ldf-server export``, ``/{ds}/dumps/{day}.nq.gz``) carries the description of
every site and the members of a time range, as the very nodes the pages serve
(:func:`member_node`, :func:`site_node`), so its triples are those of the pages' members;
the page controls (relations, ``tree:member`` links) are left out: a dump is data.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from ldf_server.fragments.fragment import Fragment
from ldf_server.fragments.members import member_node, site_node
from ldf_server.fragments.timeline import DAY_MS
from ldf_server.fragments.urls import Urls
from ldf_server.pilots import Pilot
from ldf_server.records import Member, Site
from ldf_server.timeutil import format_day, format_instant
from ldf_server.vocabularies import MEDIA_GZIP, MEDIA_NQUADS

BATCH = 1000  # nodes per batch: small enough to stream, large enough that pyld's setup is paid rarely


def dump_batches(
    urls: Urls, ds: str, pilot: Pilot, sites: Mapping[str, Site], members: Iterable[Member], *, batch: int = BATCH
) -> Iterator[list[dict[str, Any]]]:
    """JSON-LD nodes of the sites (first, sorted by key), then of the members, in batches."""
    ordered = [site_node(urls, ds, pilot, s) for _, s in sorted(sites.items())]
    for i in range(0, len(ordered), batch):
        yield ordered[i:i + batch]
    nodes: list[dict[str, Any]] = []
    for m in members:
        nodes.append(member_node(urls, ds, pilot, m, sites.get(m.site)))
        if len(nodes) >= batch:
            yield nodes
            nodes = []
    if nodes:
        yield nodes


def closed_days(starts: Iterable[int], now: int, grace_ms: int, retained_from: int) -> list[int]:
    """UTC days that hold a window, are over (plus the grace for late data) and still retained."""
    days = {s - s % DAY_MS for s in starts}
    return sorted(d for d in days if now >= d + DAY_MS + grace_ms and d + DAY_MS > retained_from)


def dumps_index(urls: Urls, ds: str, licence: str, days: list[int], modified: float) -> Fragment:
    """The dataset with one ``dcat:Distribution`` per daily dump, newest first."""
    distributions = [
        {
            "@id": urls.dump(ds, day),
            "@type": "Distribution",
            "title": {"en": f"Members observed on {format_day(day)} (UTC), gzipped N-Quads",
                      "nl": f"Leden waargenomen op {format_day(day)} (UTC), gzipped N-Quads"},
            "accessURL": urls.dumps(ds),
            "downloadURL": urls.dump(ds, day),
            "mediaType": MEDIA_NQUADS,
            "compressFormat": MEDIA_GZIP,
            "license": licence,
            "temporal": {"@id": urls.dump(ds, day) + "#temporal", "@type": "PeriodOfTime",
                         "startDate": format_instant(day)},
        }
        for day in reversed(days)
    ]
    node = {"@id": urls.dataset(ds), "@type": "Dataset", "distribution": distributions}
    return Fragment({"@graph": [node]}, immutable=False, modified=modified)
