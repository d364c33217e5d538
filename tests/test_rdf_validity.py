"""Every served document is valid RDF: pyld and rdflib read the same triples; members fit the shape."""

from __future__ import annotations

import pyshacl
import rdflib
from rdflib.namespace import SH

from ldf_server.rdf.shapes import shape_graph
from tests.support.rdfcheck import assert_same_triples
from tests.support.seeding import BASE

TREE = rdflib.Namespace("https://w3id.org/tree#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")


async def every_document(client) -> dict[str, bytes]:
    """Crawl from / and return the body of every resource kind the server has."""
    docs: dict[str, bytes] = {}

    async def get(path: str) -> bytes:
        resp = await client.get(path)
        assert resp.status == 200, path
        docs[path] = await resp.read()
        return docs[path]

    await get("/")
    await get("/parking")
    await get("/parking/latest")
    await get("/parking/shape")
    view = rdflib.Graph().parse(data=await get("/parking/view"), format="json-ld")
    for day in sorted(set(view.objects(None, TREE.node))):
        day_graph = rdflib.Graph().parse(data=await get(str(day).removeprefix(BASE)), format="json-ld")
        for window in sorted(set(day_graph.objects(None, TREE.node))):
            await get(str(window).removeprefix(BASE))
    latest = rdflib.Graph().parse(data=docs["/parking/latest"], format="json-ld")
    for site in sorted(set(latest.subjects(rdflib.RDF.type, rdflib.URIRef("http://vocab.datex.org/terms#UrbanParkingSite")))):
        if str(site).startswith(BASE):
            await get(str(site).removeprefix(BASE))
    return docs


async def test_pyld_and_rdflib_read_the_same_triples_everywhere(client):
    docs = await every_document(client)
    kinds = {p.split("/")[2] if p.count("/") > 1 else p for p in docs}
    assert {"windows", "days", "sites", "latest", "shape", "view"} <= kinds, kinds
    for path, body in docs.items():
        try:
            assert_same_triples(body)
        except AssertionError as exc:
            raise AssertionError(f"{path}: {exc}") from None


async def test_every_member_conforms_to_the_dataset_shape(client, state):
    stream = rdflib.Graph().parse(data=await (await client.get("/parking")).read(), format="json-ld")
    shape_iri = stream.value(rdflib.URIRef(f"{BASE}/parking"), TREE.shape)
    assert shape_iri is not None
    shapes = rdflib.Graph().parse(data=await (await client.get(str(shape_iri).removeprefix(BASE))).read(), format="json-ld")
    assert (shape_iri, rdflib.RDF.type, SH.NodeShape) in shapes
    docs = await every_document(client)
    data = rdflib.Graph()
    members = set()
    for path, body in docs.items():
        if "/windows/" in path:
            g = rdflib.Graph().parse(data=body, format="json-ld")
            data += g
            members |= set(g.objects(rdflib.URIRef(f"{BASE}/parking"), TREE.member))
    assert len(members) == state.streams["parking"].store.member_count
    for member in members:
        shapes.add((shape_iri, SH.targetNode, member))
    conforms, _, report = pyshacl.validate(data, shacl_graph=shapes)
    assert conforms, report


def test_shape_rejects_a_bad_member():
    """The shape is not vacuous: a negative count and a missing timestamp are violations."""
    iri = "http://example.org/shape"
    shapes = shape_graph("parking", iri)
    member = rdflib.URIRef("http://example.org/m1")
    data = rdflib.Graph()
    data.add((member, DCT.isVersionOf, rdflib.URIRef("http://example.org/site")))
    data.add((member, rdflib.URIRef("http://vocab.datex.org/terms#parkingNumberOfVacantSpaces"), rdflib.Literal(-3)))
    shapes.add((rdflib.URIRef(iri), SH.targetNode, member))
    conforms, _, report = pyshacl.validate(data, shacl_graph=shapes)
    assert not conforms
    assert "generatedAtTime" in report and "MinInclusive" in report
