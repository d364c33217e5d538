"""The dashboard at ``/`` for browsers: what its script needs to find each pilot's data.

The page itself is the catalog's HTML view with the dashboard panels above it; the script
(``html/static/dashboard.js``) reads the datasets from a ``data-`` attribute (no inline
script: the Content-Security-Policy forbids it) and fetches ``latest``, the window pages and
the ``events`` stream of each, by paths under the server's own origin.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ldf_server.fragments.fragment import Fragment
from ldf_server.html import render
from ldf_server.http.state import ServerState


def config(state: ServerState) -> dict[str, Any]:
    prefix = urlsplit(state.urls.base).path.rstrip("/")
    datasets = []
    for ds, stream in state.streams.items():
        title = stream.config.title
        datasets.append({
            "id": ds,
            "pilot": stream.config.pilot,
            "title": title.get("en") or next(iter(title.values()), ds),
            "stream": f"{prefix}/{ds}",
            "view": f"{prefix}/{ds}/view",
            "latest": f"{prefix}/{ds}/latest",
            "events": f"{prefix}/{ds}/events",
        })
    return {"base": state.urls.base, "prefix": prefix, "datasets": datasets, "tiles": state.config.server.map_tiles}


def renderer(state: ServerState):  # type: ignore[no-untyped-def]
    """The HTML renderer ``respond`` calls for ``/`` (only on a cache miss)."""

    def page(fragment: Fragment, page_iri: str, formats: list[str]) -> bytes:
        return render.dashboard(fragment.doc, page_iri, formats, state.urls.catalog(), config(state))

    return page
