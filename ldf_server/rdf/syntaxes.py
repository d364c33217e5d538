"""Every RDF syntax from one JSON-LD document: N-Quads, TriG, Turtle, N-Triples.

The fragments layer builds JSON-LD dicts; the other syntaxes are derived from them here
(pyld turns the dict into triples, rdflib writes Turtle and TriG). This is the slow path,
paid once per page and syntax: the bytes are cached like the JSON-LD ones, and a closed
page is encoded once per syntax.

Hypermedia metadata (the page node, its relations and search form, the stream node and
its ``tree:member`` links) goes into the named graph ``<page#metadata>`` in N-Quads and
TriG, so clients that query the data do not get the controls back as results; Turtle and
N-Triples cannot name graphs and carry the same triples in the default graph. JSON-LD keeps
one default graph so that it reads as plain JSON.
"""

from __future__ import annotations

from typing import Any, Iterable

import rdflib
from pyld import jsonld

from ldf_server.vocabularies import context

JSONLD = "application/ld+json"
NQUADS = "application/n-quads"
TRIG = "application/trig"
TURTLE = "text/turtle"
NTRIPLES = "application/n-triples"

# Offered in this order of preference when a client accepts several equally.
RDF_MEDIA_TYPES = (JSONLD, NQUADS, TRIG, TURTLE, NTRIPLES)
QUAD_SYNTAXES = (NQUADS, TRIG)

Triple = dict[str, Any]  # pyld's {"subject": {...}, "predicate": {...}, "object": {...}}


def metadata_graph(page_iri: str) -> str:
    return page_iri + "#metadata"


def split_triples(doc: dict[str, Any], meta_subjects: Iterable[str]) -> tuple[list[Triple], list[Triple]]:
    """(data, metadata) triples of a document: metadata are the triples about ``meta_subjects``
    and about the blank nodes reachable only through them (relations, search forms)."""
    dataset = jsonld.to_rdf({"@context": context(), **doc}, {"documentLoader": _no_remote})
    triples: list[Triple] = dataset.get("@default", [])
    meta = set(meta_subjects)
    # Blank nodes hanging off metadata subjects are metadata too (to a fixpoint: nested nodes).
    changed = True
    while changed:
        changed = False
        for t in triples:
            if t["subject"]["value"] in meta and t["object"]["type"] == "blank node" and t["object"]["value"] not in meta:
                meta.add(t["object"]["value"])
                changed = True
    data = [t for t in triples if t["subject"]["value"] not in meta]
    metadata = [t for t in triples if t["subject"]["value"] in meta]
    return data, metadata


def encode(media_type: str, doc: dict[str, Any], page_iri: str, meta_subjects: Iterable[str]) -> bytes:
    """The document in ``media_type`` (anything but JSON-LD, which :mod:`.jsonld` writes)."""
    data, metadata = split_triples(doc, meta_subjects)
    graph = metadata_graph(page_iri) if media_type in QUAD_SYNTAXES else None
    lines = [jsonld.JsonLdProcessor.to_nquad(t, None) for t in data]
    lines += [jsonld.JsonLdProcessor.to_nquad(t, graph) for t in metadata]
    return from_nquads(media_type, "".join(lines))


def from_nquads(media_type: str, nquads: str) -> bytes:
    """N-Quads text (graph names only where the syntax has them) as bytes of ``media_type``."""
    if media_type in (NQUADS, NTRIPLES):
        return nquads.encode("utf-8")
    if media_type == TRIG:
        ds = rdflib.Dataset()
        ds.parse(data=nquads, format="nquads")
        bind_prefixes(ds)
        return ds.serialize(format="trig").encode("utf-8")
    if media_type == TURTLE:
        g = rdflib.Graph()
        g.parse(data=nquads, format="nt")
        bind_prefixes(g)
        return g.serialize(format="turtle").encode("utf-8")
    raise ValueError(f"no serialiser for {media_type}")


def bind_prefixes(graph: rdflib.Graph) -> None:
    for prefix, value in context().items():
        if isinstance(value, str) and value.endswith(("#", "/")) and ":" in value and not prefix.startswith("@"):
            graph.bind(prefix, value, override=True)


def _no_remote(url: str, options: dict | None = None) -> dict:
    raise ValueError(f"documents never load remote contexts ({url})")
