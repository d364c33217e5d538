"""Bytes in every syntax from triples already written as N-Triples terms (the TPF path).

N-Quads, N-Triples and JSON-LD are written directly (no RDF library per request);
Turtle and TriG go through rdflib.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import orjson

from ldf_server.fragments.triples import Term, Triple
from ldf_server.rdf.syntaxes import JSONLD, QUAD_SYNTAXES, from_nquads
from ldf_server.vocabularies import RDF_TYPE, XSD

_RDF_TYPE = f"<{RDF_TYPE}>"

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
        if p == _RDF_TYPE and o.startswith("<"):
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
    return from_nquads(media_type, "".join(lines))
