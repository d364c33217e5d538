"""Every RDF syntax of every resource carries the same triples; quads put the controls in a named graph."""

from __future__ import annotations

import json

import pytest
import rdflib
from rdflib.compare import to_isomorphic

from ldf_server.app import build_state, create_app
from tests.support.crawl import every_document
from tests.support.pilots import accessibility_dataset, accessibility_feed, seed
from tests.support.rdfcheck import normalised, pyld_graph
from tests.support.seeding import BASE, crowd_dataset, crowd_feed, make_config, seeded_state

SYNTAXES = {
    "application/n-quads": "nquads",
    "application/trig": "trig",
    "text/turtle": "turtle",
    "application/n-triples": "nt",
}
TREE = rdflib.Namespace("https://w3id.org/tree#")
CONFIGS = {
    "parking": lambda: make_config(),
    "crowds": lambda: make_config(datasets=[crowd_dataset()], feeds=[crowd_feed(backfill="3h")]),
    "accessibility": lambda: make_config(datasets=[accessibility_dataset()], feeds=[accessibility_feed()]),
}


@pytest.fixture(params=sorted(CONFIGS))
async def served(request, aiohttp_client, clock):
    config = CONFIGS[request.param]()
    if request.param == "accessibility":  # the CSV export is read by a poll, not a backfill
        state = build_state(config, clock=clock)
        await seed(state)
        clock.advance(7200)  # the export was read once: let its window close
    else:
        state = seeded_state(config, clock)
    return request.param, await aiohttp_client(create_app(config, state=state, run_feeds=False)), state


def parse(body: bytes, fmt: str, base: str) -> rdflib.Dataset:
    ds = rdflib.Dataset()
    ds.parse(data=body, format=fmt, publicID=base)
    return ds


async def test_all_syntaxes_carry_the_same_triples(served):
    ds, client, _ = served
    docs = await every_document(client, ds, tpf=True)
    for path, jsonld_body in docs.items():
        expected = normalised(pyld_graph(json.loads(jsonld_body)))
        for media, fmt in SYNTAXES.items():
            resp = await client.get(path, headers={"Accept": media})
            assert resp.status == 200 and resp.headers["Content-Type"] == media, (path, media)
            assert resp.headers["Vary"].startswith("Accept")
            got = normalised(parse(await resp.read(), fmt, str(resp.url)))
            assert len(got) == len(expected), (path, media, len(got), len(expected))
            assert to_isomorphic(got) == to_isomorphic(expected), (path, media)


async def test_quad_syntaxes_keep_controls_out_of_the_default_graph(served):
    ds, client, _ = served
    view = await client.get(f"/{ds}/view", headers={"Accept": "application/trig"})
    page = f"{BASE}/{ds}/view"
    data = parse(await view.read(), "trig", page)
    meta = data.graph(rdflib.URIRef(page + "#metadata"))
    assert (rdflib.URIRef(page), rdflib.RDF.type, TREE.Node) in meta
    assert len(list(meta.triples((rdflib.URIRef(page), TREE.relation, None)))) >= 2
    assert not list(data.default_graph.triples((rdflib.URIRef(page), None, None)))
    relation = next(meta.objects(rdflib.URIRef(page), TREE.relation))
    assert (relation, TREE.path, None) in meta, "a relation's own triples belong to the metadata too"


async def test_members_stay_in_the_default_graph(served):
    ds, client, state = served
    starts = state.streams[ds].store.window_starts()
    latest_window = starts[-2] if len(starts) > 1 else starts[-1]
    from ldf_server.timeutil import format_instant

    path = f"/{ds}/windows/{format_instant(latest_window)}"
    resp = await client.get(path, headers={"Accept": "application/n-quads"})
    page = BASE + path
    data = parse(await resp.read(), "nquads", page)
    members = set(data.graph(rdflib.URIRef(page + "#metadata")).objects(None, TREE.member))
    assert members and len(members) == len(state.streams[ds].store.window(latest_window).members)
    for member in members:
        assert list(data.default_graph.triples((member, None, None))), member


async def test_immutable_pages_are_encoded_once_per_syntax(served):
    ds, client, state = served
    from ldf_server.timeutil import format_instant

    start = state.streams[ds].store.window_starts()[0]
    path = f"/{ds}/windows/{format_instant(start)}"
    bodies = {}
    for media in SYNTAXES:
        bodies[media] = await (await client.get(path, headers={"Accept": media})).read()
    misses = state.cache.misses
    for media in SYNTAXES:
        again = await client.get(path, headers={"Accept": media})
        assert await again.read() == bodies[media]
        assert again.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert state.cache.misses == misses
    etags = {(await client.get(path, headers={"Accept": m})).headers["ETag"] for m in SYNTAXES}
    assert len(etags) == len(SYNTAXES), "each representation has its own entity tag"


def quad_set(ds: rdflib.Dataset, *, with_graphs: bool) -> set:
    out = set()
    for s, p, o, g in ds.quads((None, None, None, None)):
        if isinstance(o, rdflib.Literal) and o.datatype is not None and o.value is not None:
            o = rdflib.Literal(float(o.value) if o.datatype in (rdflib.XSD.double, rdflib.XSD.float) else o.value, datatype=o.datatype)
        graph = g.identifier if hasattr(g, "identifier") else g
        named = str(graph) if with_graphs and graph is not None and not str(graph).startswith("urn:x-rdflib:") else None
        out.add((s, p, o, named))
    return out


async def test_tpf_pages_in_every_syntax_carry_the_same_quads(served):
    ds, client, _ = served
    paths = ["/tpf", f"/{ds}/tpf", f"/{ds}/tpf?predicate=http%3A%2F%2Fwww.w3.org%2F1999%2F02%2F22-rdf-syntax-ns%23type"]
    for path in paths:
        body = await (await client.get(path, headers={"Accept": "application/ld+json"})).read()
        reference = rdflib.Dataset()
        reference.parse(data=pyld_graph(json.loads(body)).serialize(format="nquads"), format="nquads")
        graphs = {str(g) for _, _, _, g in reference.quads((None, None, None, None)) if g is not None and "#metadata" in str(g)}
        assert graphs, f"{path}: the JSON-LD has a metadata graph"
        for media, fmt in SYNTAXES.items():
            resp = await client.get(path, headers={"Accept": media})
            assert resp.status == 200 and resp.headers["Content-Type"] == media
            got = parse(await resp.read(), fmt, BASE + path)
            with_graphs = media in ("application/n-quads", "application/trig")
            assert quad_set(got, with_graphs=with_graphs) == quad_set(reference, with_graphs=with_graphs), (path, media)
