"""The current state of every site: one small document for apps that poll.

Read as plain JSON it is ``{"sites": [{"label": ..., "totalSpaces": ..., "latestVersion":
{"vacantSpaces": ..., "observedAt": ...}}]}``; the ``@context`` makes it Linked Data.
"""

from __future__ import annotations

from ldf_server.fragments.fragment import Fragment
from ldf_server.fragments.members import member_node, site_node
from ldf_server.fragments.stream import StreamFragments
from ldf_server.timeutil import format_instant


def latest(fragments: StreamFragments, now: int) -> Fragment:
    store, urls, ds = fragments.store, fragments.urls, fragments.ds
    sites = []
    for key, site in sorted(store.sites.items()):
        node = site_node(urls, ds, site)
        member = store.latest.get(key)
        if member is not None:
            node["latestVersion"] = member_node(urls, ds, member, site, with_site=False)
        sites.append(node)
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
    node = site_node(urls, ds, store.sites[key])
    node["isPartOf"] = urls.stream(ds)
    member = store.latest.get(key)
    if member is not None:
        node["latestVersion"] = member_node(urls, ds, member, store.sites[key], with_site=False)
    return Fragment(node, immutable=False, modified=store.modified)
