"""SHACL shapes from ``vocabularies/``: parsed with rdflib once, served as JSON-LD."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
import rdflib

from ldf_server.fragments.fragment import Fragment
from ldf_server.pilots import PILOTS
from ldf_server.vocabularies import read_text

def shape_graph(pilot: str, iri: str) -> rdflib.Graph:
    """The pilot's member shape with ``<>`` resolved to ``iri``."""
    graph = rdflib.Graph()
    graph.parse(data=read_text(PILOTS[pilot].shape_file), format="turtle", publicID=iri)
    return graph


@lru_cache(maxsize=16)
def _shape_doc(pilot: str, iri: str) -> bytes:
    # Expanded JSON-LD (full IRIs): safe beside the inlined shared context.
    return shape_graph(pilot, iri).serialize(format="json-ld", auto_compact=False).encode()


def shape_fragment(pilot: str, iri: str, modified: float) -> Fragment:
    nodes: list[dict[str, Any]] = orjson.loads(_shape_doc(pilot, iri))
    return Fragment({"@graph": nodes}, immutable=False, modified=modified)
