"""Every served document is valid RDF: pyld and rdflib read the same triples; members fit the shape.

Run for every pilot, on a store seeded by that pilot's offline simulator.
"""

from __future__ import annotations

import pyshacl
import pytest
import rdflib
from rdflib.namespace import SH

from ldf_server.app import create_app
from ldf_server.rdf.shapes import shape_graph
from tests.support.crawl import every_document
from tests.support.rdfcheck import assert_same_triples
from tests.support.seeding import BASE, crowd_dataset, crowd_feed, make_config, seeded_state

TREE = rdflib.Namespace("https://w3id.org/tree#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
HYDRA = rdflib.Namespace("http://www.w3.org/ns/hydra/core#")

SETUPS = {  # dataset id → config seeded by that pilot's offline simulator
    "parking": lambda: make_config(),
    "crowds": lambda: make_config(datasets=[crowd_dataset()], feeds=[crowd_feed()]),
}


@pytest.fixture(params=sorted(SETUPS))
async def pilot(request, aiohttp_client, clock):
    config = SETUPS[request.param]()
    state = seeded_state(config, clock)
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    return request.param, client, state


async def test_pyld_and_rdflib_read_the_same_triples_everywhere(pilot):
    ds, client, _ = pilot
    docs = await every_document(client, ds, tpf=True)
    kinds = {p.split("/")[2] if p.count("/") > 1 else p for p in docs}
    assert {"windows", "days", "sites", "latest", "shape", "view"} <= kinds, kinds
    assert sum("tpf" in p for p in docs) >= 3, sorted(docs)
    for path, body in docs.items():
        try:
            assert_same_triples(body)
        except AssertionError as exc:
            raise AssertionError(f"{path}: {exc}") from None


async def test_every_member_conforms_to_the_dataset_shape(pilot):
    ds, client, state = pilot
    stream_iri = rdflib.URIRef(f"{BASE}/{ds}")
    stream = rdflib.Graph().parse(data=await (await client.get(f"/{ds}")).read(), format="json-ld")
    shape_iri = stream.value(stream_iri, TREE.shape)
    assert shape_iri is not None
    shapes = rdflib.Graph().parse(data=await (await client.get(str(shape_iri).removeprefix(BASE))).read(), format="json-ld")
    assert (shape_iri, rdflib.RDF.type, SH.NodeShape) in shapes
    docs = await every_document(client, ds)
    data = rdflib.Graph()
    members = set()
    for path, body in docs.items():
        if "/windows/" in path:
            g = rdflib.Graph().parse(data=body, format="json-ld")
            data += g
            members |= set(g.objects(stream_iri, TREE.member))
    assert len(members) == state.streams[ds].store.member_count > 0
    for member in members:
        shapes.add((shape_iri, SH.targetNode, member))
    conforms, _, report = pyshacl.validate(data, shacl_graph=shapes)
    assert conforms, report


@pytest.mark.parametrize(
    "pilot_name, triples, expected",
    [
        ("parking", [(DCT.isVersionOf, "site"), (rdflib.URIRef("http://vocab.datex.org/terms#parkingNumberOfVacantSpaces"), -3)],
         ["generatedAtTime", "MinInclusive"]),
        ("crowdedness", [(rdflib.URIRef("http://www.w3.org/ns/sosa/hasSimpleResult"), -1)],
         ["hasFeatureOfInterest", "resultTime", "ClassConstraint"]),
        ("accessibility", [(DCT.isVersionOf, "building"),
                           (rdflib.URIRef("http://semweb.mmlab.be/ns/wa#entranceDoorWidth"), 0)],
         ["generatedAtTime", "MinExclusive"]),
    ],
)
def test_shapes_reject_bad_members(pilot_name, triples, expected):
    """The shapes are not vacuous: missing and impossible values are violations."""
    iri = "http://example.org/shape"
    shapes = shape_graph(pilot_name, iri)
    member = rdflib.URIRef("http://example.org/m1")
    data = rdflib.Graph()
    for p, o in triples:
        data.add((member, p, rdflib.URIRef("http://example.org/" + o) if isinstance(o, str) else rdflib.Literal(o)))
    shapes.add((rdflib.URIRef(iri), SH.targetNode, member))
    conforms, _, report = pyshacl.validate(data, shacl_graph=shapes)
    assert not conforms
    for word in expected:
        assert word in report, (word, report)
