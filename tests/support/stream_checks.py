"""Checks on a crawled dataset: every document reads as the same triples, every member fits the shape."""

from __future__ import annotations

import pyshacl
import rdflib
from rdflib.namespace import SH

from tests.support.rdfcheck import assert_same_triples
from tests.support.seeding import BASE

TREE = rdflib.Namespace("https://w3id.org/tree#")


def window_members(docs: dict[str, bytes], ds: str) -> tuple[rdflib.Graph, set[rdflib.term.Node]]:
    """All window pages of ``ds`` in one graph, and the members they list."""
    data = rdflib.Graph()
    members: set[rdflib.term.Node] = set()
    for path, body in docs.items():
        if path.startswith(f"/{ds}/windows/"):
            g = rdflib.Graph().parse(data=body, format="json-ld")
            data += g
            members |= set(g.objects(rdflib.URIRef(f"{BASE}/{ds}"), TREE.member))
    return data, members


def assert_valid_documents(ds: str, docs: dict[str, bytes], expected_members: int) -> None:
    """pyld and rdflib agree on every document; every member of every page conforms to the served shape."""
    for path, body in docs.items():
        try:
            assert_same_triples(body)
        except AssertionError as exc:
            raise AssertionError(f"{path}: {exc}") from None
    stream = rdflib.Graph().parse(data=docs[f"/{ds}"], format="json-ld")
    shape_iri = stream.value(rdflib.URIRef(f"{BASE}/{ds}"), TREE.shape)
    assert shape_iri is not None
    shapes = rdflib.Graph().parse(data=docs[str(shape_iri).removeprefix(BASE)], format="json-ld")
    assert (shape_iri, rdflib.RDF.type, SH.NodeShape) in shapes
    data, members = window_members(docs, ds)
    assert len(members) == expected_members
    for member in members:
        shapes.add((shape_iri, SH.targetNode, member))
    conforms, _, report = pyshacl.validate(data, shacl_graph=shapes)
    assert conforms, report
