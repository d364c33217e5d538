"""Triple Pattern Fragments over plain HTTP (no Node): the controls Comunica needs (DESIGN.md §4),
exact counts, stable paging, literal and malformed patterns, skolemised blank nodes.

The store holds all three pilots (tests/support/pilots.py) plus one hand-made garage whose
label is ``"Gent"``, description ``"Gent"@nl`` and capacity and vacant spaces ``5``.
Expected triples are derived from the store's sites and newest members, or by counting the
triples of every page, never from the server's TPF code.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
import rdflib
from yarl import URL

from ldf_server.app import create_app
from ldf_server.fragments.tpf import SNAPSHOTS_KEPT
from ldf_server.records import Site, parking_member
from tests.support.clock import FakeClock
from tests.support.pilots import (
    ACCESSIBILITY,
    CROWDS,
    NOW,
    PARKING,
    ZONE_COUNT,
    poll,
    seed,
    site_iri,
    three_pilots_config,
    three_pilots_state,
)
from tests.support.seeding import BASE

PAGE_SIZE = 100
NQUADS = "application/n-quads"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF = rdflib.RDF
RDFS_LABEL = rdflib.RDFS.label
HYDRA = rdflib.Namespace("http://www.w3.org/ns/hydra/core#")
VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
FOAF_PRIMARY_TOPIC = rdflib.URIRef("http://xmlns.com/foaf/0.1/primaryTopic")
DCT_DESCRIPTION = rdflib.URIRef("http://purl.org/dc/terms/description")
SOSA_RESULT = rdflib.URIRef("http://www.w3.org/ns/sosa/hasSimpleResult")
TOTAL_SPACES = rdflib.URIRef("http://vocab.datex.org/terms#parkingNumberOfSpaces")
VACANT_SPACES = rdflib.URIRef("http://vocab.datex.org/terms#parkingNumberOfVacantSpaces")
ADDRESS = rdflib.URIRef("https://data.vlaanderen.be/ns/gebouw#Gebouw.adres")
FULL_ADDRESS = rdflib.URIRef("http://www.w3.org/ns/locn#fullAddress")
POST_NAME = rdflib.URIRef("http://www.w3.org/ns/locn#postName")
DEFAULT_GRAPH = rdflib.graph.DATASET_DEFAULT_GRAPH_ID
CONTROL_PREDICATES = (str(HYDRA), str(VOID), str(FOAF_PRIMARY_TOPIC))
GENT_GARAGE = "gent/testgarage"


def iso(ms: int) -> str:
    assert ms % 1000 == 0, ms
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def member_iri(ds: str, site: str, series: str, ms: int) -> str:
    return f"{BASE}/{ds}/members/{site}/{series + '/' if series else ''}{iso(ms)}"


@dataclass
class Page:
    url: str  # the IRI the server must use for this page: BASE + the path and query sent
    data: list[tuple]  # default-graph triples, as rdflib terms
    graphs: dict[rdflib.URIRef, rdflib.Graph]  # named graphs

    @property
    def node(self) -> rdflib.URIRef:
        return rdflib.URIRef(self.url)

    @property
    def metadata(self) -> rdflib.Graph:
        name = rdflib.URIRef(self.url + "#metadata")
        assert set(self.graphs) == {name}, f"expected exactly the named graph <{name}>, got {sorted(self.graphs)}"
        return self.graphs[name]

    def link(self, kind: str) -> str | None:
        """The page's ``hydra:<kind>`` link; controls of this kind on any other node are an error."""
        found = [(s, o) for s, o in self.metadata.subject_objects(HYDRA[kind])]
        assert all(s == self.node for s, _ in found), f"hydra:{kind} on another node than <{self.url}>: {found}"
        assert len(found) <= 1, f"several hydra:{kind} links: {found}"
        return str(found[0][1]) if found else None

    def count(self) -> int:
        meta = self.metadata
        values = {}
        for prop in (VOID.triples, HYDRA.totalItems):
            objects = list(meta.objects(self.node, prop))
            assert len(objects) == 1, f"{prop} of <{self.url}>: {objects}"
            literal = objects[0]
            assert isinstance(literal, rdflib.Literal) and literal.datatype == rdflib.XSD.integer, literal
            values[prop] = int(literal)
        assert values[VOID.triples] == values[HYDRA.totalItems], values
        return values[VOID.triples]


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/"), url
    return url[len(BASE):]


async def get_page(client, path: str) -> Page:
    """GET ``path`` (sent byte for byte) as N-Quads."""
    resp = await client.get(URL(path, encoded=True), headers={"Accept": NQUADS})
    body = await resp.text()
    assert resp.status == 200, (path, resp.status, body[:500])
    assert resp.content_type == NQUADS, resp.content_type
    assert resp.url.raw_path_qs == path, "the client changed the URL it sent"
    ds = rdflib.Dataset()
    ds.parse(data=body, format="nquads")
    data, graphs = [], {}
    for s, p, o, g in ds.quads((None, None, None, None)):
        if g is None or g == DEFAULT_GRAPH:
            data.append((s, p, o))
        else:
            graphs.setdefault(g, rdflib.Graph()).add((s, p, o))
    return Page(BASE + path, data, graphs)


async def every_page(client, path: str) -> list[Page]:
    pages: list[Page] = []
    while path:
        assert path not in [path_of(p.url) for p in pages], f"hydra:next loops back to {path}"
        page = await get_page(client, path)
        pages.append(page)
        nxt = page.link("next")
        path = path_of(nxt) if nxt else ""
    return pages


def fragment(ds: str | None = None, **pattern: str) -> str:
    """The path of a fragment, its terms in the explicit representation, percent-encoded as Comunica does."""
    return (f"/{ds}/tpf" if ds else "/tpf") + ("?" + urlencode(pattern) if pattern else "")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def served(aiohttp_client, clock):
    config = three_pilots_config(BASE)
    state = three_pilots_state(config, clock)
    await seed(state)
    store = state.streams[PARKING].store
    store.upsert_sites([Site(key=GENT_GARAGE, label="Gent", city="gent", description="Gent", capacity=5)])
    t = int(clock() * 1000)
    assert store.add([parking_member(GENT_GARAGE, t - t % 1000, 5, status="almostFull", opening="open")]).added == 1
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    return client, state


# -- controls ------------------------------------------------------------------------------

CONTROL_CASES = [
    # (path, expected count or None = count the pages), chosen to cover one and several pages
    (fragment(CROWDS, predicate=str(RDFS_LABEL)), ZONE_COUNT),
    ("/crowds/tpf?predicate=http://www.w3.org/2000/01/rdf-schema%23label", ZONE_COUNT),  # another encoding of the same
    (fragment(ACCESSIBILITY), None),
    (fragment(), None),
    (fragment(PARKING, subject=f"{BASE}/parking/sites/{GENT_GARAGE}"), None),
    (fragment(PARKING, object='"no such literal"'), 0),
]


@pytest.mark.parametrize("path,count", CONTROL_CASES)
async def test_controls_on_every_page(served, path, count):
    client, _ = served
    pages = await every_page(client, path)
    total = sum(len(p.data) for p in pages)
    if count is not None:
        assert total == count, f"{path}: {total} data triples, expected {count}"
    all_data = [t for p in pages for t in p.data]
    assert len(set(all_data)) == len(all_data), "a triple on two pages"
    assert len(pages) == max(1, -(-total // PAGE_SIZE)), f"{len(pages)} pages for {total} triples"
    first_url = None
    for number, page in enumerate(pages, start=1):
        meta = page.metadata  # exactly one named graph: <page#metadata>
        assert page.count() == total, f"page {number} of {path}: a count other than the {total} triples"
        assert len(page.data) == min(PAGE_SIZE, total - (number - 1) * PAGE_SIZE)
        assert (rdflib.URIRef(page.url + "#metadata"), FOAF_PRIMARY_TOPIC, page.node) in meta
        subsets = set(meta.subjects(VOID.subset, page.node))
        assert len(subsets) == 1, f"expected one dataset with void:subset <{page.url}>: {subsets}"
        dataset = subsets.pop()
        assert dataset.startswith(BASE) and dataset != page.node
        # What Comunica's primary-topic split needs: the subject of `void:subset <page>` is the
        # metadata graph's primary topic, or it returns the controls as query results.
        assert (rdflib.URIRef(page.url + "#metadata"), FOAF_PRIMARY_TOPIC, dataset) in meta
        # One search form: one template, three mappings.
        forms = list(meta.objects(dataset, HYDRA.search))
        assert len(forms) == 1, forms
        form = forms[0]
        templates = list(meta.triples((None, HYDRA.template, None)))
        assert len(templates) == 1 and templates[0][0] == form, templates
        fragment_url = page.url.split("?")[0]
        assert str(templates[0][2]) == fragment_url + "{?subject,predicate,object}"
        assert (form, HYDRA.variableRepresentation, HYDRA.ExplicitRepresentation) in meta
        mappings = list(meta.objects(form, HYDRA.mapping))
        assert len(mappings) == 3, mappings
        pairs = set()
        for m in mappings:
            variables, props = list(meta.objects(m, HYDRA.variable)), list(meta.objects(m, HYDRA.property))
            assert len(variables) == 1 and len(props) == 1, (m, variables, props)
            pairs.add((str(variables[0]), props[0]))
        assert pairs == {("subject", RDF.subject), ("predicate", RDF.predicate), ("object", RDF.object)}
        # Paging links on the node that is the requested URL, and on no other.
        first, nxt, prev = page.link("first"), page.link("next"), page.link("previous")
        assert first is not None
        assert (nxt is not None) == (number < len(pages))
        assert (prev is not None) == (number > 1)
        if number == 1:
            first_url = first
        else:
            assert first == first_url, "hydra:first changes from page to page"
            previous = await get_page(client, path_of(prev))
            assert Counter(previous.data) == Counter(pages[number - 2].data), "hydra:previous leads elsewhere"
        # Controls only in the metadata graph, data only in the default graph.
        assert not [t for t in page.data if str(t[1]).startswith(CONTROL_PREDICATES)], "controls in the default graph"
        assert not set(page.data) & set(meta), "a data triple in the metadata graph"
    # hydra:first leads back to the same first page (same data, same snapshot).
    again = await get_page(client, path_of(first_url))
    assert Counter(again.data) == Counter(pages[0].data)


async def test_count_of_a_pattern_is_exact(served):
    client, state = served
    crowds, parking = state.streams[CROWDS].store, state.streams[PARKING].store
    page = await get_page(client, fragment(CROWDS, predicate=str(SOSA_RESULT)))
    assert page.count() == sum(len(series) for series in crowds.latest.values()) == ZONE_COUNT
    page = await get_page(client, fragment(predicate=str(RDFS_LABEL)))  # over all datasets
    labelled = sum(len(state.streams[ds].store.sites) for ds in (PARKING, CROWDS, ACCESSIBILITY))
    # Each building's newest version repeats its name (a rename is a new version).
    labelled += sum(1 for series in state.streams[ACCESSIBILITY].store.latest.values() for m in series.values() if "label" in m.values)
    assert page.count() == labelled
    page = await get_page(client, fragment(PARKING, predicate=str(VACANT_SPACES)))
    assert page.count() == len(parking.latest) == len(parking.sites)


# -- stable paging -------------------------------------------------------------------------

def newest_counts(state) -> Counter:
    store = state.streams[CROWDS].store
    return Counter(
        (rdflib.URIRef(member_iri(CROWDS, key, series, m.time)), SOSA_RESULT,
         rdflib.Literal(float(m.values["hasSimpleResult"]), datatype=rdflib.XSD.double))
        for key, by_series in store.latest.items() for series, m in by_series.items()
    )


async def test_paging_is_stable_while_the_store_changes(served, clock, monkeypatch):
    client, state = served
    path = fragment(CROWDS, predicate=str(SOSA_RESULT))
    before = newest_counts(state)
    assert sum(before.values()) > PAGE_SIZE, "precondition: the fragment spans two pages"

    first = await get_page(client, path)
    next_url = first.link("next")
    assert next_url is not None and "v=" in next_url, next_url

    clock.advance(300)
    await poll(state, CROWDS)  # every zone gets a newer count: other member IRIs
    after = newest_counts(state)
    assert not set(after) & set(before), "precondition: the poll replaced every newest member"
    fresh = await every_page(client, path)
    assert Counter(t for p in fresh for t in p.data) == after, "a request without a snapshot sees the current data"

    second = await get_page(client, path_of(next_url))
    assert second.link("next") is None
    walked = Counter(first.data) + Counter(second.data)
    assert walked == before, (
        f"pages of one snapshot: {sum(walked.values())} triples, missing {list((before - walked).elements())[:3]}, "
        f"unexpected {list((walked - before).elements())[:3]}"
    )
    back = await get_page(client, path_of(second.link("previous")))
    assert Counter(back.data) == Counter(first.data), "hydra:previous does not lead back to the same first page"

    # A snapshot younger than SNAPSHOT_SECONDS survives many newer ones ...
    for _ in range(SNAPSHOTS_KEPT):
        clock.advance(300)
        await poll(state, CROWDS)
        await get_page(client, path)
    assert (await client.get(URL(path_of(next_url), encoded=True), headers={"Accept": NQUADS})).status == 200
    # ... and once it is older, it expires when enough newer versions were served: 410 with a problem document.
    import ldf_server.fragments.tpf as tpf_module

    monkeypatch.setattr(tpf_module, "SNAPSHOT_SECONDS", 0.0)
    for _ in range(SNAPSHOTS_KEPT):
        clock.advance(300)
        await poll(state, CROWDS)
        await get_page(client, path)  # serving the current data makes a new snapshot
    resp = await client.get(URL(path_of(next_url), encoded=True), headers={"Accept": NQUADS})
    assert resp.status == 410, (resp.status, (await resp.text())[:300])
    assert resp.content_type == "application/problem+json"
    problem = await resp.json(content_type=None)
    assert problem["status"] == 410 and problem.get("title") and problem.get("detail"), problem


# -- literals and bad patterns -------------------------------------------------------------

async def test_integer_literal_object_selects_the_integer_triples(served):
    client, state = served
    store = state.streams[PARKING].store
    expected = Counter()
    for key, site in store.sites.items():
        if site.capacity == 5:
            expected[(rdflib.URIRef(site_iri(BASE, PARKING, site)), TOTAL_SPACES)] += 1
        newest = store.latest[key][""]
        if newest.values["vacantSpaces"] == 5:
            expected[(rdflib.URIRef(member_iri(PARKING, key, "", newest.time)), VACANT_SPACES)] += 1
    assert len(expected) >= 2, "precondition: the hand-made garage has 5 spaces and 5 vacant"
    for spelled in (f'"5"^^{XSD}integer', f'"5"^^<{XSD}integer>'):
        pages = await every_page(client, fragment(PARKING, object=spelled))
        got = [t for p in pages for t in p.data]
        assert Counter((s, p) for s, p, _ in got) == expected, spelled
        assert {o for _, _, o in got} == {rdflib.Literal("5", datatype=rdflib.XSD.integer)}
        assert pages[0].count() == len(expected)
    # The same lexical form as a string, or as a decimal, is another term: nothing matches.
    for other in ('"5"', f'"5"^^{XSD}decimal', f'"05"^^{XSD}integer'):
        page = await get_page(client, fragment(PARKING, object=other))
        assert page.data == [] and page.count() == 0, other


async def test_language_tagged_and_plain_literals_are_told_apart(served):
    client, state = served
    garage = rdflib.URIRef(site_iri(BASE, PARKING, state.streams[PARKING].store.sites[GENT_GARAGE]))
    page = await get_page(client, fragment(object='"Gent"@nl'))
    assert page.data == [(garage, DCT_DESCRIPTION, rdflib.Literal("Gent", lang="nl"))] and page.count() == 1
    page = await get_page(client, fragment(object='"Gent"@NL'))  # language tags are case-insensitive
    assert page.data == [(garage, DCT_DESCRIPTION, rdflib.Literal("Gent", lang="nl"))]

    buildings = state.streams[ACCESSIBILITY].store.sites.values()
    in_gent = sum(1 for s in buildings if s.properties["address"].get("postName") == "Gent")
    assert in_gent >= 1, "precondition: buildings in Gent"
    page = await get_page(client, fragment(object='"Gent"'))
    assert {o for _, _, o in page.data} == {rdflib.Literal("Gent")}
    assert Counter(p for _, p, _ in page.data) == Counter({RDFS_LABEL: 1, POST_NAME: in_gent})
    assert (garage, RDFS_LABEL, rdflib.Literal("Gent")) in page.data
    page_xsd = await get_page(client, fragment(object=f'"Gent"^^{XSD}string'))  # the same term, spelled out
    assert Counter(page_xsd.data) == Counter(page.data)


BAD_PATTERNS = [
    {"subject": '"Gent"'},
    {"predicate": '"label"'},
    {"predicate": "not an iri"},
    {"subject": "_:b0"},
    {"object": '"unterminated'},
    {"object": '"5"^^'},
    {"object": '"Gent"@'},
    {"page": "0"},
    {"page": "two"},
    {"limit": "10"},
]


@pytest.mark.parametrize("params", BAD_PATTERNS, ids=lambda p: urlencode(p))
async def test_bad_patterns_answer_400_problems(served, params):
    client, _ = served
    resp = await client.get(URL(fragment(PARKING, **params), encoded=True), headers={"Accept": NQUADS})
    assert resp.status == 400, (params, resp.status)
    assert resp.content_type == "application/problem+json"
    problem = await resp.json(content_type=None)
    assert problem["status"] == 400 and problem.get("detail"), problem


async def test_a_repeated_parameter_answers_a_400_problem(served):
    client, _ = served
    resp = await client.get(URL("/tpf?subject=http%3A%2F%2Fa.example%2F&subject=http%3A%2F%2Fb.example%2F", encoded=True))
    assert resp.status == 400 and resp.content_type == "application/problem+json"


# -- blank nodes ---------------------------------------------------------------------------

async def test_blank_nodes_are_skolemised_and_selectable(served):
    client, state = served
    genid = f"{BASE}/.well-known/genid/"
    pages = await every_page(client, fragment())
    triples = [t for p in pages for t in p.data]
    assert not [t for t in triples if any(isinstance(x, rdflib.BNode) for x in t)], "a blank node in a fragment"
    skolems = {x for t in triples for x in (t[0], t[2]) if str(x).startswith(genid)}
    assert skolems, "precondition: addresses and intervals without IRIs of their own"
    subjects = {s for s, _, _ in triples}
    assert skolems <= subjects, "a skolem IRI that is never a subject"

    # Every building's address: the address registry's IRI when the export has one, else a skolem
    # IRI that selects exactly that address.
    store = state.streams[ACCESSIBILITY].store
    for key, site in store.sites.items():
        address = site.properties["address"]
        page = await get_page(client, fragment(ACCESSIBILITY, subject=site_iri(BASE, ACCESSIBILITY, site), predicate=str(ADDRESS)))
        assert len(page.data) == 1, (key, page.data)
        node = page.data[0][2]
        if "@id" in address:
            assert str(node) == address["@id"]
        else:
            assert str(node).startswith(genid), (key, node)
        described = await get_page(client, fragment(ACCESSIBILITY, subject=str(node)))
        assert {t[0] for t in described.data} == {node}
        assert (node, FULL_ADDRESS, rdflib.Literal(address["fullAddress"])) in described.data, key
        assert (node, POST_NAME, rdflib.Literal(address["postName"])) in described.data, key
