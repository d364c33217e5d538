"""Encoded bytes per resource and syntax, built once and reused until the resource changes.

Serving a cached representation does no serialisation work: the handler compares a
cheap token (the store version, or "immutable") and sends the stored bytes, gzipping
once on first demand.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

from ldf_server.fragments.fragment import Fragment
from ldf_server.rdf import jsonld
from ldf_server.timeutil import http_date

MIN_GZIP_BYTES = 860  # below about one packet, compression costs more than it saves


@dataclass(slots=True)
class Encoded:
    token: object
    body: bytes
    etag: str  # quoted strong entity tag of the identity encoding
    last_modified: str
    modified: float
    immutable: bool
    _gzipped: bytes | None = field(default=None, repr=False)

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

    @property
    def gzip_etag(self) -> str:
        # A different content coding is a different representation: its strong tag differs.
        return self.etag[:-1] + '-gz"'

    def gzipped(self) -> bytes | None:
        if len(self.body) < MIN_GZIP_BYTES:
            return None
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped

    @property
    def size(self) -> int:
        return len(self.body) + (len(self._gzipped) if self._gzipped else 0)


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
            self._bytes -= len(old.body) * 2
        self._items[key] = item
        self._bytes += len(item.body) * 2  # room for the gzipped copy made later
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= len(evicted.body) * 2

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total_bytes(self) -> int:
        """Bytes counted against ``max_bytes`` (each body twice: room for its gzipped copy)."""
        return self._bytes
