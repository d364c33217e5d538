"""JSON-LD bytes, encoded once with orjson, with the shared context inlined.

Clients refetch a remote context for every document, so the context travels inline;
it is also served on its own at a stable URL for those who want to reference it.
"""

from __future__ import annotations

from typing import Any

import orjson

from ldf_server.vocabularies import context

MEDIA_TYPE = "application/ld+json"


def encode(doc: dict[str, Any]) -> bytes:
    """The document with ``@context`` first, as compact UTF-8 JSON."""
    return orjson.dumps({"@context": context(), **doc})


def context_document() -> bytes:
    return orjson.dumps({"@context": context()}, option=orjson.OPT_INDENT_2)
