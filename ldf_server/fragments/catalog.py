"""The DCAT-AP catalog at ``/``: every dataset with what a regional open-data portal harvests.

Titles and descriptions in Dutch and English, publisher, licence, themes, spatial coverage
(a bounding box derived from the sites), temporal coverage (from the oldest retained
member), update frequency, and distributions served by ``dcat:DataService``s that say
which specification they implement (LDES, TPF).
"""

from __future__ import annotations

from typing import Any, Iterable

from ldf_server.config import CatalogConfig, Contact, Publisher
from ldf_server.fragments.fragment import Fragment
from ldf_server.fragments.stream import StreamFragments
from ldf_server.fragments.urls import Urls
from ldf_server.timeutil import format_instant
from ldf_server.vocabularies import EU_DATA_THEME, EU_FREQUENCY, MEDIA_EVENT_STREAM, MEDIA_JSONLD, SPEC_LDES, SPEC_TPF
from ldf_server.vocabularies import MEDIA_GZIP, MEDIA_NQUADS

JSONLD_MEDIA_TYPE = MEDIA_JSONLD
SSE_MEDIA_TYPE = MEDIA_EVENT_STREAM
# What each pilot is about (EU data themes) and how often it changes (EU frequencies).
THEMES = {"parking": ["TRAN"], "crowdedness": ["TRAN", "SOCI"], "accessibility": ["SOCI", "GOVE"]}
FREQUENCY = {"parking": "CONT", "crowdedness": "CONT", "accessibility": "IRREG"}


def catalog(config: CatalogConfig, urls: Urls, streams: Iterable[StreamFragments]) -> Fragment:
    streams = list(streams)
    doc: dict[str, Any] = {
        "@id": urls.catalog(),
        "@type": "Catalog",
        "title": dict(config.title),
        "description": dict(config.description),
        "dataset": [_dataset(urls, s, config.publisher, config.contact) for s in streams],
        "service": [
            {
                "@id": f"{urls.tpf()}#service",
                "@type": "DataService",
                "title": {"en": "Triple Pattern Fragments over all datasets", "nl": "Triple Pattern Fragments over alle datasets"},
                "endpointURL": urls.tpf(),
                "conformsTo": SPEC_TPF,
                "servesDataset": [urls.dataset(s.ds) for s in streams],
                "endpointDescription": urls.openapi(),
            }
        ],
    }
    if config.publisher:
        doc["publisher"] = _agent(config.publisher)
    if config.contact:
        doc["contactPoint"] = _contact(urls.catalog() + "#contact", config.contact)
    modified = max((s.store.modified for s in streams), default=0.0)
    return Fragment(doc, immutable=False, modified=modified)


def _agent(publisher: Publisher) -> dict[str, Any]:
    return {"@id": publisher.iri, "@type": "Agent", "name": publisher.name}


def _contact(iri: str, contact: Contact) -> dict[str, Any]:
    return {"@id": iri, "@type": "Kind", "fn": contact.name, "hasEmail": f"mailto:{contact.email}"}


def _dataset(
    urls: Urls, fragments: StreamFragments, default_publisher: Publisher | None, default_contact: Contact | None
) -> dict[str, Any]:
    cfg, ds, store = fragments.config, fragments.ds, fragments.store
    dataset_iri = urls.dataset(ds)
    licence = cfg.licence_iri
    node: dict[str, Any] = {
        "@id": dataset_iri,
        "@type": "Dataset",
        "title": dict(cfg.title),
        "description": dict(cfg.description),
        "license": licence,
        "modified": format_instant(int(store.modified * 1000)),
        "theme": [EU_DATA_THEME + t for t in THEMES[cfg.pilot]],
        "accrualPeriodicity": EU_FREQUENCY + FREQUENCY[cfg.pilot],
        "distribution": [
            _distribution(f"{urls.stream(ds)}#ldes", urls.stream(ds), licence,
                          {"en": "Linked Data Event Stream (full history, time-fragmented)",
                           "nl": "Linked Data Event Stream (volledige historiek, per tijdvenster)"},
                          service=_service(urls, f"{urls.stream(ds)}#service", urls.stream(ds), SPEC_LDES, dataset_iri,
                                           {"en": "Linked Data Event Stream", "nl": "Linked Data Event Stream"})),
            _distribution(f"{urls.latest(ds)}#distribution", urls.latest(ds), licence,
                          {"en": "Latest state of every site", "nl": "Laatste toestand van elke site"}),
            _distribution(f"{urls.tpf(ds)}#distribution", urls.tpf(ds), licence,
                          {"en": "Triple Pattern Fragments of the current state", "nl": "Triple Pattern Fragments van de huidige toestand"},
                          service=_service(urls, f"{urls.tpf(ds)}#service", urls.tpf(ds), SPEC_TPF, dataset_iri,
                                           {"en": "Triple Pattern Fragments", "nl": "Triple Pattern Fragments"})),
            _distribution(f"{urls.events(ds)}#distribution", urls.events(ds), licence,
                          {"en": "Live push of new members (Server-Sent Events, JSON-LD)",
                           "nl": "Live push van nieuwe leden (Server-Sent Events, JSON-LD)"},
                          media_type=SSE_MEDIA_TYPE),
            _distribution(f"{urls.dumps(ds)}#distribution", urls.dumps(ds), licence,
                          {"en": "Daily dumps: every member of a closed UTC day (gzipped N-Quads)",
                           "nl": "Dagelijkse dumps: alle leden van een afgesloten UTC-dag (gzipped N-Quads)"},
                          media_type=MEDIA_NQUADS) | {"compressFormat": MEDIA_GZIP},
        ],
    }
    publisher = cfg.publisher or default_publisher
    if publisher:
        node["publisher"] = _agent(publisher)
    if cfg.contact:
        node["contactPoint"] = _contact(f"{urls.stream(ds)}#contact", cfg.contact)
    elif default_contact:
        node["contactPoint"] = f"{urls.catalog()}#contact"
    if cfg.keywords:
        node["keyword"] = {lang: list(words) for lang, words in cfg.keywords.items()}
    bbox = _bounding_box(fragments)
    if bbox:
        node["spatial"] = {"@id": f"{urls.stream(ds)}#spatial", "@type": "Location", "bbox": bbox}
    first = store.first_start()
    if first is not None:
        node["temporal"] = {"@id": f"{urls.stream(ds)}#temporal", "@type": "PeriodOfTime", "startDate": format_instant(first)}
    return node


def _distribution(
    iri: str, access: str, licence: str, title: dict[str, str], *, service: dict[str, Any] | None = None,
    media_type: str = JSONLD_MEDIA_TYPE,
) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@id": iri,
        "@type": "Distribution",
        "title": title,
        "accessURL": access,
        "mediaType": media_type,
        "license": licence,
    }
    if service:
        node["accessService"] = service
    return node


def _service(urls: Urls, iri: str, endpoint: str, spec: str, dataset: str, title: dict[str, str]) -> dict[str, Any]:
    return {"@id": iri, "@type": "DataService", "title": title, "endpointURL": endpoint, "conformsTo": spec,
            "servesDataset": dataset, "endpointDescription": urls.openapi()}


def _bounding_box(fragments: StreamFragments) -> str | None:
    """WKT polygon around every site with a position (longitude first, as WKT wants)."""
    points = [(s.lon, s.lat) for s in fragments.store.sites.values() if s.lat is not None and s.lon is not None]
    if not points:
        return None
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    w, e, s, n = (f"{v:.5f}" for v in (west, east, south, north))
    return f"POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"
