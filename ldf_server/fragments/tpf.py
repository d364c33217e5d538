"""Triple Pattern Fragments over the current state: site and building descriptions with their
newest members, per dataset and over all datasets together.

Controls follow the TPF specification as Comunica needs them (DESIGN.md §4): a
``hydra:search`` form with one template and three mappings, exact ``void:triples`` /
``hydra:totalItems``, ``hydra:first`` / ``next`` / ``previous`` on the node whose IRI is the
requested URL, and all of it in the named graph ``<page#metadata>``.

Paging is stable: the index is a snapshot named by a version, page links carry it
(``&v=…``), and a few recent snapshots are kept, so a client walking the pages of one
fragment sees one consistent list even while feeds keep updating the data.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlencode

from ldf_server.fragments.members import with_newest
from ldf_server.fragments.stream import StreamFragments
from ldf_server.fragments.triples import Term, Triple, TripleIndex, doc_triples
from ldf_server.vocabularies import FOAF, HYDRA, RDF, VOID, XSD

PAGE_SIZE = 100
SNAPSHOTS_KEPT = 8  # at least this many recent snapshots ...
SNAPSHOT_SECONDS = 600.0  # ... and every snapshot younger than this, so long queries can finish,
SNAPSHOTS_MAX = 64  # ... but never more than this (pushes can change the data every second)


@dataclass(frozen=True, slots=True)
class TpfPage:
    data: list[Triple]
    metadata: list[Triple]
    version: str


class SnapshotGone(LookupError):
    """A page link names an index snapshot that is no longer kept."""


class TpfSource:
    """The TPF interface over one or more datasets."""

    def __init__(self, url: str, streams: list[StreamFragments], genid_base: str) -> None:
        self.url = url  # the fragment URL without query: {base}/{ds}/tpf or {base}/tpf
        self.dataset_iri = url + "#dataset"
        self.streams = streams
        self.genid_base = genid_base
        self._snapshots: OrderedDict[str, tuple[float, TripleIndex]] = OrderedDict()
        self._token: object = None

    def token(self) -> object:
        return tuple((s.ds, s.store.version) for s in self.streams)

    def current(self) -> tuple[str, TripleIndex]:
        token = self.token()
        if token != self._token or not self._snapshots:
            version = hashlib.blake2b(repr(token).encode(), digest_size=6).hexdigest()
            if version not in self._snapshots:
                now = time.monotonic()
                self._snapshots[version] = (now, TripleIndex.of(self._triples()))
                while len(self._snapshots) > SNAPSHOTS_MAX or (
                    len(self._snapshots) > SNAPSHOTS_KEPT and next(iter(self._snapshots.values()))[0] < now - SNAPSHOT_SECONDS
                ):
                    self._snapshots.popitem(last=False)
            self._token = token
            self._version = version
        return self._version, self._snapshots[self._version][1]

    def snapshot(self, version: str | None) -> tuple[str, TripleIndex]:
        if version is None:
            return self.current()
        self.current()  # make sure the newest exists too
        kept = self._snapshots.get(version)
        if kept is None:
            raise SnapshotGone(version)
        return version, kept[1]

    def _triples(self) -> list[Triple]:
        out: list[Triple] = []
        for stream in self.streams:
            store, urls, ds, pilot = stream.store, stream.urls, stream.ds, stream.pilot
            nodes = [with_newest(urls, ds, pilot, site, store.latest.get(key, {})) for key, site in sorted(store.sites.items())]
            out.extend(doc_triples({"@graph": nodes}, f"{self.genid_base}{ds}/"))
        return out

    # -- pages -----------------------------------------------------------------------
    def page(
        self, s: Term | None, p: Term | None, o: Term | None, number: int, page_iri: str, version: str | None
    ) -> TpfPage:
        version, index = self.snapshot(version)
        matches = index.match(s, p, o)
        total = len(matches)
        start = (number - 1) * PAGE_SIZE
        data = [index.triples[i] for i in matches[start:start + PAGE_SIZE]]
        return TpfPage(data, self._controls(s, p, o, number, total, page_iri, version), version)

    def link(self, s: Term | None, p: Term | None, o: Term | None, number: int | None, version: str | None) -> str:
        params = [(k, _explicit(v)) for k, v in (("subject", s), ("predicate", p), ("object", o)) if v is not None]
        if number is not None and number > 1:
            params.append(("page", str(number)))
        if version is not None:
            params.append(("v", version))
        return self.url + ("?" + urlencode(params) if params else "")

    def _controls(
        self, s: Term | None, p: Term | None, o: Term | None, number: int, total: int, page_iri: str, version: str
    ) -> list[Triple]:
        page, ds = f"<{page_iri}>", f"<{self.dataset_iri}>"
        search, integer = f"<{self.url}#search>", f"^^<{XSD}integer>"
        triples: list[Triple] = [
            (f"<{page_iri}#metadata>", f"<{FOAF}primaryTopic>", page),
            # Comunica takes as metadata only the graph whose foaf:primaryTopic is the subject
            # of `void:subset <page>` (here the dataset); without this triple it treats the
            # controls as data too, and patterns such as `?x a ?type` return them as results.
            (f"<{page_iri}#metadata>", f"<{FOAF}primaryTopic>", ds),
            (ds, f"<{RDF}type>", f"<{VOID}Dataset>"),
            (ds, f"<{RDF}type>", f"<{HYDRA}Collection>"),
            (ds, f"<{VOID}subset>", page),
            (ds, f"<{HYDRA}search>", search),
            (search, f"<{HYDRA}template>", f'"{self.url}{{?subject,predicate,object}}"'),
            (search, f"<{HYDRA}variableRepresentation>", f"<{HYDRA}ExplicitRepresentation>"),
            (page, f"<{RDF}type>", f"<{HYDRA}PartialCollectionView>"),
            (page, f"<{VOID}triples>", f'"{total}"{integer}'),
            (page, f"<{HYDRA}totalItems>", f'"{total}"{integer}'),
            (page, f"<{HYDRA}itemsPerPage>", f'"{PAGE_SIZE}"{integer}'),
            (page, f"<{HYDRA}first>", f"<{self.link(s, p, o, 1, version)}>"),
        ]
        for variable, prop in (("subject", "subject"), ("predicate", "predicate"), ("object", "object")):
            mapping = f"<{self.url}#{variable}>"
            triples += [
                (search, f"<{HYDRA}mapping>", mapping),
                (mapping, f"<{HYDRA}variable>", f'"{variable}"'),
                (mapping, f"<{HYDRA}property>", f"<{RDF}{prop}>"),
            ]
        if number * PAGE_SIZE < total:
            triples.append((page, f"<{HYDRA}next>", f"<{self.link(s, p, o, number + 1, version)}>"))
        if number > 1:
            triples.append((page, f"<{HYDRA}previous>", f"<{self.link(s, p, o, number - 1, version)}>"))
        return triples


def _explicit(term: Term) -> str:
    """An N-Triples term in the TPF explicit representation used in query strings."""
    if term.startswith("<"):
        return term[1:-1]
    if '"^^<' in term:
        lex, _, dt = term.rpartition("^^<")
        return f"{lex}^^{dt[:-1]}"
    return term
