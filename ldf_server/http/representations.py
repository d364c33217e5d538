"""Encoded bytes per resource and syntax, built once and reused until the resource changes.

Serving a cached representation does no serialisation work: the handler compares a
cheap token (the store version, or "immutable") and sends the stored bytes, gzipping
once on first demand, with a header set built once per representation.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

from multidict import CIMultiDict

from ldf_server.fragments.fragment import Fragment
from ldf_server.http.cors import CORS_HEADERS
from ldf_server.rdf import jsonld
from ldf_server.timeutil import http_date

MIN_GZIP_BYTES = 860  # below about one packet, compression costs more than it saves
VARY = "Accept, Accept-Encoding"


MAX_HEADER_SETS = 32  # per representation: (media type, Cache-Control, coding, status) combinations kept


@dataclass(slots=True)
class Encoded:
    token: object
    body: bytes
    etag: str  # quoted strong entity tag of the identity encoding
    last_modified: str
    modified: float
    immutable: bool
    _gzipped: bytes | None = field(default=None, repr=False)
    gzip_etag: str = ""  # a different content coding is a different representation: its strong tag differs
    _headers: dict[tuple[str | None, str, bool], CIMultiDict[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.gzip_etag:
            self.gzip_etag = self.etag[:-1] + '-gz"'

    @classmethod
    def of(cls, fragment: Fragment, token: object, body: bytes | None = None) -> "Encoded":
        body = jsonld.encode(fragment.doc) if body is None else body
        digest = hashlib.blake2b(body, digest_size=12).hexdigest()
        return cls(
            token=token,
            body=body,
            etag=f'"{digest}"',
            last_modified=http_date(fragment.modified),
            modified=fragment.modified,
            immutable=fragment.immutable,
        )

    def headers(self, media: str | None, cache_control: str, gzipped: bool) -> CIMultiDict[str]:
        """The response headers of this representation (``media`` None: of a 304), built once per
        combination and copied into each response (aiohttp copies what it is given), CORS included."""
        key = (media, cache_control, gzipped)
        headers = self._headers.get(key)
        if headers is None:
            if len(self._headers) >= MAX_HEADER_SETS:  # a mutable page's max-age counts down: do not grow
                self._headers.clear()
            headers = self._headers[key] = CIMultiDict()
            if media is not None:
                headers["Content-Type"] = media
            headers["Last-Modified"] = self.last_modified
            headers["Vary"] = VARY
            headers["Cache-Control"] = cache_control
            if gzipped and media is not None:
                headers["Content-Encoding"] = "gzip"
            headers["ETag"] = self.gzip_etag if gzipped else self.etag
            headers.update(CORS_HEADERS)
        return headers

    def gzipped(self) -> bytes | None:
        if len(self.body) < MIN_GZIP_BYTES:
            return None
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped

    @property
    def size(self) -> int:
        return len(self.body) + (len(self._gzipped) if self._gzipped else 0)


HEADER_SETS_ALLOWANCE = 6 * 1024  # the prepared header sets an item gathers (a few, ~1 KB each)


def _counted(item: Encoded) -> int:
    """What an item is counted for: its body twice (room for the gzipped copy made later) and
    its header sets, so that many small pages cannot hold several times ``max_bytes``."""
    return len(item.body) * 2 + HEADER_SETS_ALLOWANCE


class RepresentationCache:
    """LRU of encoded representations bounded by total bytes."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], Encoded] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str], token: object) -> Encoded | None:
        item = self._items.get(key)
        if item is None or item.token != token:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: tuple[str, str], item: Encoded) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= _counted(old)
        self._items[key] = item
        self._bytes += _counted(item)
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= _counted(evicted)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total_bytes(self) -> int:
        """Bytes counted against ``max_bytes`` (each body twice, plus its header sets)."""
        return self._bytes
