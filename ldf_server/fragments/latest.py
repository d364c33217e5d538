"""The current state of every site: one small document for apps that poll.

Read as plain JSON it is ``{"sites": [{"label": ..., "totalSpaces": ..., "latestVersion":
{"vacantSpaces": ..., "observedAt": ...}}]}`` (for crowdedness, ``latestObservations`` is a
list: one count per mode and direction); the ``@context`` makes it Linked Data.
"""

from __future__ import annotations

from ldf_server.fragments.fragment import Fragment
from ldf_server.fragments.members import with_newest
from ldf_server.fragments.stream import StreamFragments
from ldf_server.timeutil import format_instant


def latest(fragments: StreamFragments, now: int) -> Fragment:
    store, urls, ds = fragments.store, fragments.urls, fragments.ds
    pilot = fragments.pilot
    sites = [with_newest(urls, ds, pilot, site, store.latest.get(key, {})) for key, site in sorted(store.sites.items())]
    doc = {
        "@id": urls.latest(ds),
        "@type": "Collection",
        "isPartOf": urls.stream(ds),
        "modified": format_instant(int(store.modified * 1000)),
        "totalItems": len(sites),
        "sites": sites,
    }
    return Fragment(doc, immutable=False, modified=store.modified)


def site(fragments: StreamFragments, key: str) -> Fragment:
    """One site's description with its newest version (what a site IRI we minted dereferences to)."""
    store, urls, ds = fragments.store, fragments.urls, fragments.ds
    node = with_newest(urls, ds, fragments.pilot, store.sites[key], store.latest.get(key, {}))
    node["isPartOf"] = urls.stream(ds)
    return Fragment(node, immutable=False, modified=store.modified)
