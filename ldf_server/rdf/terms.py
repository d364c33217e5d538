"""Bytes in every syntax from triples already written as N-Triples terms (the TPF path).

N-Quads, N-Triples and JSON-LD are written directly (no RDF library per request);
Turtle and TriG go through rdflib.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import orjson
import rdflib

from ldf_server.fragments.triples import Term, Triple
from ldf_server.rdf.syntaxes import JSONLD, NQUADS, NTRIPLES, QUAD_SYNTAXES, TRIG, TURTLE, bind_prefixes
from ldf_server.vocabularies import XSD

_LITERAL = re.compile(r'^"(?P<lex>.*)"(?:@(?P<lang>\S+)|\^\^<(?P<dt>[^>]*)>)?$', re.S)
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n", "\\r": "\r"}


def _value(term: Term) -> dict[str, Any]:
    if term.startswith("<"):
        return {"@id": term[1:-1]}
    m = _LITERAL.match(term)
    assert m is not None, term
    lex = re.sub(r'\\[\\"nr]', lambda e: _UNESCAPE[e.group(0)], m.group("lex"))
    if m.group("lang"):
        return {"@value": lex, "@language": m.group("lang")}
    return {"@value": lex, "@type": m.group("dt") or XSD + "string"}


def _nodes(triples: Iterable[Triple]) -> list[dict[str, Any]]:
    nodes: dict[str, dict[str, Any]] = {}
    for s, p, o in triples:
        node = nodes.setdefault(s, {"@id": s[1:-1]})
        if p == "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>" and o.startswith("<"):
            node.setdefault("@type", []).append(o[1:-1])
        else:
            node.setdefault(p[1:-1], []).append(_value(o))
    return list(nodes.values())


def encode(media_type: str, data: list[Triple], metadata: list[Triple], graph: str) -> bytes:
    if media_type == JSONLD or media_type == "application/json":
        doc = _nodes(data) + [{"@id": graph, "@graph": _nodes(metadata)}]
        return orjson.dumps(doc)
    named = f"<{graph}>" if media_type in QUAD_SYNTAXES else None
    lines = [f"{s} {p} {o} .\n" for s, p, o in data]
    lines += [f"{s} {p} {o} {named} .\n" if named else f"{s} {p} {o} .\n" for s, p, o in metadata]
    text = "".join(lines)
    if media_type in (NQUADS, NTRIPLES):
        return text.encode("utf-8")
    if media_type == TRIG:
        ds = rdflib.Dataset()
        ds.parse(data=text, format="nquads")
        bind_prefixes(ds)
        return ds.serialize(format="trig").encode("utf-8")
    if media_type == TURTLE:
        g = rdflib.Graph()
        g.parse(data=text, format="nt")
        bind_prefixes(g)
        return g.serialize(format="turtle").encode("utf-8")
    raise ValueError(f"no serialiser for {media_type}")
