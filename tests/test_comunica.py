"""The real Comunica SPARQL engine queries a server on a store with all three pilots over TPF.

Each test starts a server on 127.0.0.1 (tests/support/live.py) on a store seeded like a
starting server (tests/support/pilots.py), runs ``comunica-sparql`` against one of its TPF
interfaces and compares the bindings with rows computed from the store itself
(``store.sites`` / ``store.latest``), never from the server's TPF code. Every run logs at
info level, so each test also checks that Comunica identified the interface as a TPF
(``qpf``) source and that the server answered no request with an error.
If ``tests/clients/node_modules`` is missing these tests fail: run ``./scripts/test``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

import aiohttp
import rdflib

from ldf_server.http.state import ServerState
from tests.support.clock import FakeClock
from tests.support.comunica import ComunicaRun, require_comunica, run_comunica
from tests.support.live import RequestLog, live_server
from tests.support.pilots import (
    ACCESSIBILITY,
    CROWDS,
    NOW,
    PARKING,
    PARKING_CITIES,
    ZONE_COUNT,
    seed,
    site_iri,
    three_pilots_config,
    three_pilots_state,
)

TIMEOUT_S = 60.0
PAGE_SIZE = 100  # DESIGN.md: a TPF page holds 100 triples
PREFIXES = """
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX dct: <http://purl.org/dc/terms/>
PREFIX datex: <http://vocab.datex.org/terms#>
PREFIX geo: <http://www.w3.org/2003/01/geo/wgs84_pos#>
PREFIX sosa: <http://www.w3.org/ns/sosa/>
PREFIX wa: <http://semweb.mmlab.be/ns/wa#>
PREFIX locn: <http://www.w3.org/ns/locn#>
PREFIX gebouw: <https://data.vlaanderen.be/ns/gebouw#>
"""
HYDRA = "http://www.w3.org/ns/hydra/core#"
VOID = "http://rdfs.org/ns/void#"
FOAF_PRIMARY_TOPIC = "http://xmlns.com/foaf/0.1/primaryTopic"


@asynccontextmanager
async def three_pilots_server() -> AsyncIterator[tuple[str, ServerState, RequestLog]]:
    require_comunica()  # fail fast, before seeding, when the npm client is not installed

    def build(base_url: str):
        config = three_pilots_config(base_url)
        return config, three_pilots_state(config, FakeClock(NOW))

    async with live_server(build) as (base, state, log):
        await seed(state)  # before any client request
        yield base, state, log


async def query(base: str, log: RequestLog, source: str, sparql: str) -> ComunicaRun:
    """Run ``sparql`` against ``base + source``; checks the run is clean and the source was seen as TPF."""
    url = base + source
    run = await run_comunica(url, PREFIXES + sparql, timeout=TIMEOUT_S)
    assert run.returncode == 0, run.describe()
    how = run.identified(url)
    assert how == "qpf", f"Comunica identified {url} as {how!r}, not as a TPF (qpf) source\n{run.describe()}"
    assert not log.failures(), f"the server answered errors to Comunica: {log.failures()[:5]}"
    return run


async def test_garages_of_all_cities_with_capacity_and_vacant_spaces():
    async with three_pilots_server() as (base, state, log):
        run = await query(base, log, f"/{PARKING}/tpf", """
            SELECT ?garage ?label ?capacity ?vacant WHERE {
              ?garage a datex:UrbanParkingSite ; rdfs:label ?label ; datex:parkingNumberOfSpaces ?capacity .
              ?version dct:isVersionOf ?garage ; datex:parkingNumberOfVacantSpaces ?vacant .
            }""")
    store = state.streams[PARKING].store
    assert {site.city for site in store.sites.values()} == set(PARKING_CITIES), "precondition: garages of every city"
    assert store.member_count > len(store.sites), "precondition: the store holds older versions than the newest"
    expected = Counter(
        (site_iri(base, PARKING, site), site.label, site.capacity, store.latest[key][""].values["vacantSpaces"])
        for key, site in store.sites.items()
    )
    got = Counter(run.values("garage", "label", "capacity", "vacant"))
    assert got == expected, (
        f"missing: {sorted((expected - got).elements())[:5]}\nunexpected: {sorted((got - expected).elements())[:5]}"
    )
    fragments = {u for u in run.requested() if u.startswith(f"{base}/{PARKING}/tpf?")}
    assert len(fragments) >= 4, f"Comunica should have read one fragment per pattern, read {sorted(fragments)}"


async def test_public_buildings_with_an_entrance_of_at_least_90_cm_and_their_address():
    async with three_pilots_server() as (base, state, log):
        run = await query(base, log, f"/{ACCESSIBILITY}/tpf", """
            SELECT ?building ?name ?width ?address WHERE {
              ?version dct:isVersionOf ?building ; wa:entranceDoorWidth ?width .
              ?building rdfs:label ?name ; <https://data.vlaanderen.be/ns/gebouw#Gebouw.adres> ?a .
              ?a locn:fullAddress ?address .
              FILTER(?width >= 90)
            }""")
    store = state.streams[ACCESSIBILITY].store
    widths = {key: store.latest[key][""].values.get("entranceDoorWidth") for key in store.sites}
    assert any(w is not None and w < 90 for w in widths.values()), "precondition: some entrance is narrower"
    assert 90 in widths.values(), "precondition: one entrance is exactly 90 cm (the boundary is included)"
    assert any(s.iri for s in store.sites.values()) and any(not s.iri for s in store.sites.values()), (
        "precondition: buildings with a registry IRI and without one"
    )
    expected = Counter(
        (site_iri(base, ACCESSIBILITY, site), site.label, widths[key], site.properties["address"]["fullAddress"])
        for key, site in store.sites.items()
        if widths[key] is not None and widths[key] >= 90
    )
    got = Counter(run.values("building", "name", "width", "address"))
    assert got == expected, (
        f"missing: {sorted((expected - got).elements())[:5]}\nunexpected: {sorted((got - expected).elements())[:5]}"
    )


NEAR_DEGREES = 0.005  # about 350 m east-west, 550 m north-south in Flanders


NEAR_QUERY = f"""
    SELECT ?garage ?building WHERE {{
      ?garage a datex:UrbanParkingSite ; geo:lat ?glat ; geo:long ?glong .
      ?building a gebouw:Gebouw ; geo:lat ?blat ; geo:long ?blong .
      FILTER(abs(?glat - ?blat) < {NEAR_DEGREES} && abs(?glong - ?blong) < {NEAR_DEGREES})
    }}"""


async def test_garages_near_public_buildings_across_datasets():
    """A join over ``/tpf`` whose every solution needs triples of two datasets."""
    async with three_pilots_server() as (base, state, log):
        run = await query(base, log, "/tpf", NEAR_QUERY)
    assert_near_pairs(run, base, state)


async def test_the_same_join_federated_over_two_dataset_interfaces():
    """Federated SPARQL: Comunica joins the parking and the accessibility TPF interfaces itself."""
    async with three_pilots_server() as (base, state, log):
        sources = [f"{base}/{PARKING}/tpf", f"{base}/{ACCESSIBILITY}/tpf"]
        run = await run_comunica(sources, PREFIXES + NEAR_QUERY, timeout=TIMEOUT_S)
        assert run.returncode == 0, run.describe()
        for url in sources:
            assert run.identified(url) == "qpf", f"{url} was not identified as a TPF source\n{run.describe()}"
        assert not log.failures(), f"the server answered errors to Comunica: {log.failures()[:5]}"
    assert {u.split("?")[0] for u in run.requested() if "/tpf" in u} == set(sources), "both interfaces were read"
    assert_near_pairs(run, base, state)


def assert_near_pairs(run: ComunicaRun, base: str, state: ServerState) -> None:
    garages = [(site_iri(base, PARKING, s), s.lat, s.lon) for s in state.streams[PARKING].store.sites.values()]
    buildings = [(site_iri(base, ACCESSIBILITY, s), s.lat, s.lon) for s in state.streams[ACCESSIBILITY].store.sites.values()]
    expected, margins = Counter(), []
    for g, glat, glon in garages:
        for b, blat, blon in buildings:
            distance = max(abs(glat - blat), abs(glon - blon))
            margins.append(abs(distance - NEAR_DEGREES))
            if distance < NEAR_DEGREES:
                expected[(g, b)] += 1
    assert min(margins) > 1e-4, "precondition: no pair so close to the threshold that rounding could decide it"
    assert 3 <= len(expected) < len(garages) * len(buildings) // 4, f"precondition: a selective join, got {len(expected)} pairs"
    assert len({b for _, b in expected}) >= 3, "precondition: pairs in several cities"
    got = Counter(run.values("garage", "building"))
    assert got == expected, (
        f"missing: {sorted((expected - got).elements())[:5]}\nunexpected: {sorted((got - expected).elements())[:5]}"
    )


async def test_join_of_fragments_longer_than_one_page():
    """Every pattern has more matches than a page holds, so Comunica must follow ``hydra:next``."""
    async with three_pilots_server() as (base, state, log):
        run = await query(base, log, f"/{CROWDS}/tpf", """
            SELECT ?zone ?label ?count WHERE {
              ?observation sosa:hasFeatureOfInterest ?zone ; sosa:hasSimpleResult ?count .
              ?zone rdfs:label ?label .
            }""")
    store = state.streams[CROWDS].store
    assert len(store.sites) == ZONE_COUNT > PAGE_SIZE, "precondition: more zones than a TPF page holds"
    assert all(len(series) == 1 for series in store.latest.values()), "precondition: one newest count per zone"
    expected = Counter(
        (site_iri(base, CROWDS, site), site.label, float(next(iter(store.latest[key].values())).values["hasSimpleResult"]))
        for key, site in store.sites.items()
    )
    got = Counter(run.values("zone", "label", "count"))
    assert got == expected, (
        f"{sum(got.values())} rows for {sum(expected.values())} expected; "
        f"missing: {sorted((expected - got).elements())[:3]}\nunexpected: {sorted((got - expected).elements())[:3]}"
    )
    later_pages = [
        u for u in run.requested()
        if u.startswith(f"{base}/{CROWDS}/tpf?") and "predicate" in (q := parse_qs(urlsplit(u).query)) and q.get("page", ["1"]) != ["1"]
    ]
    assert later_pages, f"Comunica read no second page of any pattern fragment: {run.requested()}"


async def _every_page(session: aiohttp.ClientSession, url: str) -> tuple[list[rdflib.Dataset], list[str]]:
    """Every page of a fragment as N-Quads, following ``hydra:next`` from the node named by the page URL."""
    pages, urls = [], []
    while url:
        assert url not in urls, f"hydra:next loops back to {url}"
        async with session.get(url, headers={"Accept": "application/n-quads"}) as resp:
            assert resp.status == 200, (url, resp.status, await resp.text())
            body = await resp.text()
        ds = rdflib.Dataset()
        ds.parse(data=body, format="nquads")
        pages.append(ds)
        urls.append(url)
        nexts = [str(o) for _, _, o, _ in ds.quads((rdflib.URIRef(url), rdflib.URIRef(HYDRA + "next"), None, None))]
        assert len(nexts) <= 1, nexts
        url = nexts[0] if nexts else ""
    return pages, urls


async def test_select_all_over_one_dataset_returns_exactly_its_data_triples():
    async with three_pilots_server() as (base, state, log):
        source = f"{base}/{ACCESSIBILITY}/tpf"
        async with aiohttp.ClientSession() as session:
            pages, urls = await _every_page(session, source)
        run = await query(base, log, f"/{ACCESSIBILITY}/tpf", "SELECT * WHERE { ?s ?p ?o }")

    # Expected: the default-graph triples of every page; the controls live in named graphs.
    default = rdflib.graph.DATASET_DEFAULT_GRAPH_ID
    expected: Counter = Counter()
    metadata_graphs = set()
    for ds in pages:
        for s, p, o, g in ds.quads((None, None, None, None)):
            if g is None or g == default:
                expected[(s, p, o)] += 1
            else:
                metadata_graphs.add(g)
    assert len(pages) >= 2 and sum(expected.values()) > PAGE_SIZE, "precondition: the dataset spans several pages"
    assert {str(g) for g in metadata_graphs} == {u + "#metadata" for u in urls}, "one metadata graph per page"
    assert all(n == 1 for n in expected.values()), "a data triple on two pages"
    assert not [t for t in expected if str(t[1]).startswith((HYDRA, VOID))], "control triples in the default graph"
    # The data are the dataset's: every building, its newest version, nothing of the other datasets.
    store = state.streams[ACCESSIBILITY].store
    typed = {str(s) for s, p, o in expected if p == rdflib.RDF.type and str(o) == "https://data.vlaanderen.be/ns/gebouw#Gebouw"}
    assert typed == {site_iri(base, ACCESSIBILITY, site) for site in store.sites.values()}
    assert not [s for s, _, _ in expected if str(s).startswith((f"{base}/{PARKING}/", f"{base}/{CROWDS}/"))]

    got = Counter((row["s"], row["p"], row["o"]) for row in run.bindings())
    assert got == expected, (
        f"Comunica returned {sum(got.values())} triples, the pages hold {sum(expected.values())}; "
        f"unexpected: {sorted(map(str, (got - expected).elements()))[:5]}; missing: {sorted(map(str, (expected - got).elements()))[:5]}"
    )
    controls = [t for t in got if str(t[1]).startswith((HYDRA, VOID)) or str(t[1]) == FOAF_PRIMARY_TOPIC]
    assert not controls, f"control triples among Comunica's results: {controls[:5]}"
    in_metadata = [t for t in got if any(str(x).endswith("#metadata") or str(x).startswith(source) for x in t)]
    assert not in_metadata, f"triples about the fragment pages among Comunica's results: {in_metadata[:5]}"
    assert not [t for t in got if any(isinstance(x, rdflib.BNode) for x in t)], "blank nodes: they must be skolemised"
    assert any(str(s).startswith(f"{base}/.well-known/genid/") for s, _, _ in got), "skolemised addresses expected"


async def test_type_pattern_returns_no_control_triples():
    """``?x a ?type`` matches the controls' own types (void:Dataset, hydra:PartialCollectionView,
    ...): they must stay metadata, not become results."""
    async with three_pilots_server() as (base, state, log):
        run = await query(base, log, f"/{ACCESSIBILITY}/tpf", "SELECT ?x ?type WHERE { ?x a ?type }")
    store = state.streams[ACCESSIBILITY].store
    got = Counter(run.values("x", "type"))
    leaked = [(x, t) for x, t in got if t.startswith((HYDRA, VOID)) or "/tpf" in x]
    assert not leaked, f"control triples returned as query results: {leaked}"
    buildings = {(site_iri(base, ACCESSIBILITY, s), "https://data.vlaanderen.be/ns/gebouw#Gebouw") for s in store.sites.values()}
    assert buildings <= set(got), f"buildings missing: {sorted(buildings - set(got))[:3]}"
    assert all(n == 1 for n in got.values()), "a type triple returned twice"
    assert {t for _, t in got} == {
        "https://data.vlaanderen.be/ns/gebouw#Gebouw", "http://www.w3.org/ns/locn#Address",
    }, f"unexpected types: {sorted({t for _, t in got})}"
