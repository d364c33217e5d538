"""The DCAT-AP catalog: complete enough for a regional open-data portal to harvest."""

from __future__ import annotations

import rdflib
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF

from ldf_server.app import create_app
from ldf_server.config import Contact, Publisher
from ldf_server.vocabularies import SPEC_LDES, SPEC_TPF
from tests.support.seeding import FLEMISH_LICENCES, BASE, crowd_dataset, crowd_feed, make_config, parking_dataset, seeded_state, simulator_feed


async def test_catalog_describes_every_dataset_for_harvesting(aiohttp_client, clock):
    config = make_config(datasets=[parking_dataset(), crowd_dataset()], feeds=[simulator_feed(), crowd_feed()])
    publisher = Publisher(name="Stad Gent", iri="https://stad.gent/id/agent/stad-gent")
    contact = Contact(name="Open data team", email="opendata@stad.gent")
    config = config.model_copy(update={"catalog": config.catalog.model_copy(update={"publisher": publisher, "contact": contact})})
    state = seeded_state(config, clock)
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    resp = await client.get("/", headers={"Accept": "text/turtle"})
    g = rdflib.Graph().parse(data=await resp.read(), format="turtle")
    catalog = rdflib.URIRef(BASE + "/")
    assert (catalog, RDF.type, DCAT.Catalog) in g
    assert {lit.language for lit in g.objects(catalog, DCTERMS.title)} == {"nl", "en"}
    publisher = g.value(catalog, DCTERMS.publisher)
    assert publisher is not None and g.value(publisher, FOAF.name) is not None

    datasets = set(g.objects(catalog, DCAT.dataset))
    assert {str(d) for d in datasets} == {f"{BASE}/{ds}#dataset" for ds in state.streams}
    for dataset in datasets:
        assert (dataset, RDF.type, DCAT.Dataset) in g
        for prop in (DCTERMS.title, DCTERMS.description):
            assert {lit.language for lit in g.objects(dataset, prop)} == {"nl", "en"}, (dataset, prop)
        assert str(g.value(dataset, DCTERMS.license)) in FLEMISH_LICENCES
        assert g.value(dataset, DCTERMS.publisher) == publisher
        contact_point = g.value(dataset, DCAT.contactPoint)
        assert str(g.value(contact_point, rdflib.URIRef("http://www.w3.org/2006/vcard/ns#hasEmail"))) == "mailto:opendata@stad.gent"
        assert str(g.value(dataset, DCTERMS.accrualPeriodicity)).startswith("http://publications.europa.eu/resource/authority/frequency/")
        assert any(str(t).startswith("http://publications.europa.eu/resource/authority/data-theme/") for t in g.objects(dataset, DCAT.theme))
        bbox = g.value(g.value(dataset, DCTERMS.spatial), DCAT.bbox)
        assert bbox is not None and str(bbox).startswith("POLYGON((")
        start = g.value(g.value(dataset, DCTERMS.temporal), DCAT.startDate)
        ds_id = str(dataset).removeprefix(BASE + "/").removesuffix("#dataset")
        assert start is not None and start.toPython().timestamp() * 1000 == state.streams[ds_id].store.first_start()

        services = {}
        for dist in g.objects(dataset, DCAT.distribution):
            assert (dist, RDF.type, DCAT.Distribution) in g
            assert g.value(dist, DCAT.accessURL) is not None and g.value(dist, DCTERMS.license) is not None
            service = g.value(dist, DCAT.accessService)
            if service is not None:
                assert (service, RDF.type, DCAT.DataService) in g
                assert g.value(service, DCAT.servesDataset) == dataset
                services[str(g.value(service, DCTERMS.conformsTo))] = str(g.value(service, DCAT.endpointURL))
        assert services == {SPEC_LDES: f"{BASE}/{ds_id}", SPEC_TPF: f"{BASE}/{ds_id}/tpf"}
        for endpoint in services.values():
            assert (await client.get(endpoint.removeprefix(BASE))).status == 200

    union = [s for s in g.objects(catalog, DCAT.service) if (s, DCTERMS.conformsTo, rdflib.URIRef(SPEC_TPF)) in g]
    assert len(union) == 1 and set(g.objects(union[0], DCAT.servesDataset)) == datasets
