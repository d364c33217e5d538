"""Dumps as bytes: batches of JSON-LD nodes written as N-Quads or TriG, streaming.

Each batch goes through pyld once (as the pages do, so the triples are the same); blank
node labels are made unique per batch, because a dump is one document and pyld numbers
them from ``_:b0`` again for every batch. TriG is written batch by batch through rdflib's
Turtle writer (plain triples are valid TriG: the default graph), prefixes repeated per batch.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import rdflib
from pyld import jsonld

from ldf_server.rdf.syntaxes import NQUADS, TRIG, _FullPrecisionTurtle, _no_remote, _write, bind_prefixes
from ldf_server.vocabularies import context

FORMATS = {"nq": NQUADS, "trig": TRIG}


def nquads(nodes: list[dict[str, Any]], bnode_prefix: str) -> str:
    """N-Quads lines (default graph) of JSON-LD nodes, blank nodes labelled ``_:{bnode_prefix}…``."""
    dataset = jsonld.to_rdf({"@context": context(), "@graph": nodes}, {"documentLoader": _no_remote})
    lines = []
    for t in dataset.get("@default", []):
        for position in ("subject", "object"):
            term = t[position]
            if term["type"] == "blank node":
                term["value"] = f"_:{bnode_prefix}{term['value'][2:]}"
        lines.append(jsonld.JsonLdProcessor.to_nquad(t, None))
    return "".join(lines)


class DumpWriter:
    """Writes batches of nodes to a binary stream in one media type (N-Quads or TriG)."""

    def __init__(self, out: BinaryIO, media_type: str) -> None:
        if media_type not in (NQUADS, TRIG):
            raise ValueError(f"dumps are N-Quads or TriG, not {media_type}")
        self.out = out
        self.media_type = media_type
        self.batches = 0
        self.triples = 0

    def write(self, nodes: list[dict[str, Any]]) -> None:
        text = nquads(nodes, f"d{self.batches}x")
        self.batches += 1
        self.triples += text.count("\n")
        if self.media_type == NQUADS:
            self.out.write(text.encode("utf-8"))
            return
        graph = rdflib.Graph()
        graph.parse(data=text, format="nt")
        bind_prefixes(graph)
        self.out.write(_write(_FullPrecisionTurtle(graph)))
        self.out.write(b"\n")
