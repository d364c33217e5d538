"""The DCAT catalog at ``/``: every dataset, its licence and where to get it."""

from __future__ import annotations

from typing import Any, Iterable

from ldf_server.config import CatalogConfig
from ldf_server.fragments.fragment import Fragment
from ldf_server.fragments.stream import StreamFragments
from ldf_server.fragments.urls import Urls
from ldf_server.timeutil import format_instant
from ldf_server.vocabularies import SPEC_LDES

JSONLD_MEDIA_TYPE = "https://www.iana.org/assignments/media-types/application/ld+json"


def catalog(config: CatalogConfig, urls: Urls, streams: Iterable[StreamFragments]) -> Fragment:
    streams = list(streams)
    doc: dict[str, Any] = {
        "@id": urls.catalog(),
        "@type": "Catalog",
        "title": dict(config.title),
        "description": dict(config.description),
        "dataset": [_dataset(urls, s) for s in streams],
    }
    if config.publisher:
        doc["publisher"] = {"@id": config.publisher.iri, "name": config.publisher.name}
    modified = max((s.store.modified for s in streams), default=0.0)
    return Fragment(doc, immutable=False, modified=modified)


def _dataset(urls: Urls, fragments: StreamFragments) -> dict[str, Any]:
    cfg, ds = fragments.config, fragments.ds
    dataset_iri = urls.dataset(ds)
    node: dict[str, Any] = {
        "@id": dataset_iri,
        "@type": "Dataset",
        "title": dict(cfg.title),
        "description": dict(cfg.description),
        "license": cfg.licence_iri,
        "modified": format_instant(int(fragments.store.modified * 1000)),
        "distribution": [
            {
                "@id": f"{urls.stream(ds)}#ldes",
                "@type": "Distribution",
                "title": {"en": "Linked Data Event Stream (full history, time-fragmented)", "nl": "Linked Data Event Stream (volledige historiek, per tijdvenster)"},
                "accessURL": urls.stream(ds),
                "mediaType": JSONLD_MEDIA_TYPE,
                "license": cfg.licence_iri,
                "accessService": {
                    "@id": f"{urls.stream(ds)}#service",
                    "@type": "DataService",
                    "title": {"en": f"LDES of {cfg.title.get('en') or next(iter(cfg.title.values()))}"},
                    "endpointURL": urls.stream(ds),
                    "conformsTo": SPEC_LDES,
                    "servesDataset": dataset_iri,
                },
            },
            {
                "@id": f"{urls.latest(ds)}#distribution",
                "@type": "Distribution",
                "title": {"en": "Latest state of every site", "nl": "Laatste toestand van elke site"},
                "accessURL": urls.latest(ds),
                "mediaType": JSONLD_MEDIA_TYPE,
                "license": cfg.licence_iri,
            },
        ],
    }
    if cfg.keywords:
        node["keyword"] = {lang: list(words) for lang, words in cfg.keywords.items()}
    if cfg.publisher:
        node["publisher"] = {"@id": cfg.publisher.iri, "name": cfg.publisher.name}
    return node
