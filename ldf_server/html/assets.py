"""The static files browsers need, served at ``/_assets/{name}`` with the content digest in the name.

A digest in the URL lets every asset be cached as immutable, and a new release changes the
URL. Only the files listed in ``FILES`` are served: a request names an entry of this fixed
manifest or gets 404, so no path from a request ever reaches the file system.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Source file → media type. Licences of the vendored libraries are served too (redistribution terms).
FILES = {
    "leaflet.js": "text/javascript; charset=utf-8",
    "leaflet.css": "text/css; charset=utf-8",
    "leaflet-LICENSE.txt": "text/plain; charset=utf-8",
    "uplot.iife.min.js": "text/javascript; charset=utf-8",
    "uplot.min.css": "text/css; charset=utf-8",
    "uplot-LICENSE.txt": "text/plain; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Asset:
    name: str  # the served name, with the digest: leaflet.3f2a9c1b0d4e.js
    media_type: str
    body: bytes
    modified: float


def digest_name(source: str, body: bytes) -> str:
    stem, dot, ext = source.partition(".")
    digest = hashlib.blake2b(body, digest_size=6).hexdigest()
    return f"{stem}.{digest}{dot}{ext}"


@cache
def manifest() -> dict[str, Asset]:
    """Served name → asset, read once on first use (not at import time)."""
    out: dict[str, Asset] = {}
    for source, media_type in FILES.items():
        path = STATIC_DIR / source
        body = path.read_bytes()
        asset = Asset(digest_name(source, body), media_type, body, path.stat().st_mtime)
        out[asset.name] = asset
    return out


@cache
def urls(prefix: str = "/_assets/") -> dict[str, str]:
    """Source name → the URL path it is served under, for templates."""
    by_source = {}
    for asset in manifest().values():
        stem, _, rest = asset.name.partition(".")
        _, _, ext = rest.partition(".")
        by_source[f"{stem}.{ext}"] = prefix + asset.name
    return by_source
