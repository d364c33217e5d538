"""Independent checks that a served JSON-LD document is valid RDF.

pyld (with a frozen document loader: never the network) and rdflib each turn the same
bytes into triples; the two graphs must be isomorphic. Keys that are not defined terms
are reported too, because JSON-LD processors drop them silently.
"""

from __future__ import annotations

import json
from typing import Any

import rdflib
from pyld import jsonld
from rdflib.compare import to_isomorphic

from ldf_server.vocabularies import context

_CONTEXT_DOC = {"@context": context()}


def frozen_loader(url: str, options: dict | None = None) -> dict:
    """Serves only our own context; anything else is a test failure, never a fetch."""
    if url.endswith("/context.jsonld"):
        return {"contextUrl": None, "documentUrl": url, "document": _CONTEXT_DOC}
    raise AssertionError(f"a document tried to load {url} over the network")


def pyld_graph(doc: dict[str, Any], base: str | None = None) -> rdflib.Dataset:
    nquads = jsonld.to_rdf(doc, {"format": "application/n-quads", "documentLoader": frozen_loader, "base": base or ""})
    ds = rdflib.Dataset()
    ds.parse(data=nquads, format="nquads")
    return ds


def rdflib_graph(body: bytes, base: str | None = None) -> rdflib.Dataset:
    ds = rdflib.Dataset()
    ds.parse(data=body, format="json-ld", publicID=base)
    return ds


def normalised(ds: rdflib.Dataset) -> rdflib.Graph:
    """All triples in one graph, literals in canonical lexical form ("1.46E2" and "146" as xsd:double
    agree; ``"x"^^xsd:string`` is ``"x"``, as in RDF 1.1: pyld drops the datatype, rdflib keeps it)."""
    g = rdflib.Graph()
    for s, p, o, _ in ds.quads((None, None, None, None)):
        if isinstance(o, rdflib.Literal) and o.datatype == rdflib.XSD.string:
            o = rdflib.Literal(str(o))
        elif isinstance(o, rdflib.Literal) and o.datatype is not None and o.value is not None:
            value = float(o.value) if o.datatype in _FLOATING else o.value
            o = rdflib.Literal(value, datatype=o.datatype)
        g.add((s, p, o))
    return g


_FLOATING = {rdflib.XSD.double, rdflib.XSD.float}


def assert_same_triples(body: bytes, base: str | None = None) -> rdflib.Graph:
    """pyld and rdflib agree on the triples of ``body``; returns the graph."""
    doc = json.loads(body)
    by_pyld = normalised(pyld_graph(doc, base))
    by_rdflib = normalised(rdflib_graph(body, base))
    assert len(by_pyld) > 0, "the document yields no triples"
    assert len(by_pyld) == len(by_rdflib), f"pyld {len(by_pyld)} triples, rdflib {len(by_rdflib)}"
    assert to_isomorphic(by_pyld) == to_isomorphic(by_rdflib), "pyld and rdflib read different triples"
    undefined = undefined_terms(doc)
    assert not undefined, f"keys that are not terms of the context (JSON-LD drops them): {sorted(undefined)}"
    return by_pyld


def _is_language_map(term: str) -> bool:
    definition = context().get(term)
    return isinstance(definition, dict) and definition.get("@container") == "@language"


def undefined_terms(doc: Any) -> set[str]:
    terms = set(context())
    found: set[str] = set()
    if isinstance(doc, list):
        for item in doc:
            found |= undefined_terms(item)
    elif isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("@context", "@value") or _is_language_map(key):
                continue
            if not key.startswith("@") and key not in terms and ":" not in key:
                found.add(key)
            found |= undefined_terms(value)
    return found
