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

import io
from typing import Any, Iterable

import rdflib
from pyld import jsonld
from rdflib.plugins.serializers.trig import TrigSerializer
from rdflib.plugins.serializers.turtle import TurtleSerializer

from ldf_server.vocabularies import context

JSONLD = "application/ld+json"
NQUADS = "application/n-quads"
TRIG = "application/trig"
TURTLE = "text/turtle"
NTRIPLES = "application/n-triples"

# Offered in this order of preference when a client accepts several equally.
RDF_MEDIA_TYPES = (JSONLD, NQUADS, TRIG, TURTLE, NTRIPLES)
QUAD_SYNTAXES = (NQUADS, TRIG)

XSD_DOUBLE = rdflib.XSD.double
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
        return _write(_FullPrecisionTrig(ds))
    if media_type == TURTLE:
        g = rdflib.Graph()
        g.parse(data=nquads, format="nt")
        bind_prefixes(g)
        return _write(_FullPrecisionTurtle(g))
    raise ValueError(f"no serialiser for {media_type}")


def _write(serializer: TurtleSerializer) -> bytes:
    out = io.BytesIO()
    serializer.serialize(out, encoding="utf-8")
    return out.getvalue()


class _DoublesAsWritten(TurtleSerializer):
    """rdflib writes an ``xsd:double`` in Turtle shorthand with 7 significant digits
    (``5.105394e+01``), so a Turtle page would carry other coordinates than the JSON-LD
    and N-Quads of the same page; write the literal's own lexical form instead."""

    def label(self, node: rdflib.term.Node, position: int) -> str:
        if isinstance(node, rdflib.Literal) and node.datatype == XSD_DOUBLE:
            return node._literal_n3(use_plain=False, qname_callback=lambda dt: self.get_pname(dt, True))
        return super().label(node, position)


class _FullPrecisionTurtle(_DoublesAsWritten):
    pass


class _FullPrecisionTrig(_DoublesAsWritten, TrigSerializer):
    pass


def bind_prefixes(graph: rdflib.Graph) -> None:
    for prefix, value in context().items():
        if isinstance(value, str) and value.endswith(("#", "/")) and ":" in value and not prefix.startswith("@"):
            graph.bind(prefix, value, override=True)


def _no_remote(url: str, options: dict | None = None) -> dict:
    raise ValueError(f"documents never load remote contexts ({url})")
