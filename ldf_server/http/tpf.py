"""``GET /tpf`` and ``GET /{dataset}/tpf``: Triple Pattern Fragments for SPARQL clients (Comunica)."""

from __future__ import annotations

from aiohttp import web

from ldf_server.fragments.fragment import Fragment
from ldf_server.fragments.tpf import SnapshotGone, TpfSource
from ldf_server.fragments.triples import PatternError, parse_term
from ldf_server.http.problems import Problem
from ldf_server.http.representations import Encoded
from ldf_server.http.respond import RDF_OFFERS, negotiate, send
from ldf_server.http.state import STATE, ServerState
from ldf_server.rdf import terms

PARAMS = {"subject", "predicate", "object", "page", "v"}

# Characters that may stand as they are in an IRI's path and query (RFC 3987 iunreserved minus
# the non-ASCII, sub-delims, ":", "@", "/", "?", and "%" when it starts an escape).
_IRI_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?")
_HEX = frozenset("0123456789abcdefABCDEF")


def iri_safe(raw: str) -> str:
    """The requested path and query as a valid IRI, unchanged when it already is one.

    TPF clients find a fragment's controls by the IRI they requested, so a well-formed URL
    (which is what Comunica sends) must come back byte for byte; anything else (a raw space,
    quote or brace typed by hand, a stray ``%``) is percent-encoded so that every syntax
    stays valid RDF.
    """
    out: list[str] = []
    for i, c in enumerate(raw):
        if c in _IRI_SAFE:
            out.append(c)
        elif c == "%" and raw[i + 1 : i + 2] in _HEX and raw[i + 2 : i + 3] in _HEX:
            out.append(c)
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
    return "".join(out)


async def all_datasets(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return _serve(request, state, state.tpf[""])


async def one_dataset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ds = request.match_info["ds"]
    source = state.tpf.get(ds)
    if source is None:
        raise Problem(404, f"there is no dataset {ds!r}; the catalog at {state.urls.catalog()} lists them all", title="Unknown dataset")
    return _serve(request, state, source)


def _serve(request: web.Request, state: ServerState, source: TpfSource) -> web.Response:
    query = request.query
    unknown = sorted(set(query) - PARAMS)
    if unknown:
        raise Problem(400, f"unknown parameter(s) {unknown}; a fragment takes subject, predicate, object and page")
    if any(len(query.getall(k)) > 1 for k in query):
        raise Problem(400, "give each parameter at most once")
    try:
        s = parse_term(query.get("subject"), position="subject")
        p = parse_term(query.get("predicate"), position="predicate")
        o = parse_term(query.get("object"), position="object")
    except PatternError as exc:
        raise Problem(400, str(exc), title="Bad triple pattern") from None
    page_text = query.get("page", "1")
    if not (page_text.isascii() and page_text.isdigit()) or not 1 <= int(page_text) <= 1_000_000:
        raise Problem(400, "page must be a whole number from 1", title="Bad page number")
    media = negotiate(request, RDF_OFFERS)
    page_iri = state.urls.base + iri_safe(request.raw_path)
    try:
        version, _ = source.snapshot(query.get("v"))
    except SnapshotGone:
        raise Problem(410, "this page belongs to a snapshot of the data that is no longer kept; start again from the first page",
                      title="Snapshot expired") from None
    key = (request.raw_path, "tpf:" + media)
    item = state.tpf_cache.get(key, version)
    if item is None:
        page = source.page(s, p, o, int(page_text), page_iri, query.get("v"))
        body = terms.encode(media, page.data, page.metadata, page_iri + "#metadata")
        modified = max((st.store.modified for st in source.streams), default=state.started)
        item = Encoded.of(Fragment({}, immutable=False, modified=modified), version, body)
        state.tpf_cache.put(key, item)
    max_age = min((state.max_age(st) for st in source.streams), default=60)
    return send(request, item, media, max_age=max_age)
