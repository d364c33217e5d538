"""``GET /tpf`` and ``GET /{dataset}/tpf``: Triple Pattern Fragments for SPARQL clients (Comunica)."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from aiohttp import web

from ldf_server.fragments.fragment import Fragment
from ldf_server.fragments.tpf import SnapshotGone, TpfSource
from ldf_server.fragments.triples import PatternError, Term, Triple, parse_term
from ldf_server.html import render as html
from ldf_server.html.views import FORMAT_LABELS, TermCell, TpfView
from ldf_server.http.problems import Problem
from ldf_server.http.representations import Encoded
from ldf_server.http.respond import HTML, PAGE_OFFERS, format_names, negotiate, send, send_html
from ldf_server.http.state import STATE, ServerState
from ldf_server.rdf import terms

PARAMS = {"subject", "predicate", "object", "page", "v", "format"}
HYDRA = "http://www.w3.org/ns/hydra/core#"
VOID_TRIPLES = "<http://rdfs.org/ns/void#triples>"

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
    media = negotiate(request, PAGE_OFFERS)
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
        if media == HTML:
            body = html.tpf(_view(request, source, page.data, page.metadata, page_iri), state.urls.catalog())
        else:
            body = terms.encode(media, page.data, page.metadata, page_iri + "#metadata")
        modified = max((st.store.modified for st in source.streams), default=state.started)
        item = Encoded.of(Fragment({}, immutable=False, modified=modified), version, body)
        state.tpf_cache.put(key, item)
    max_age = min((state.max_age(st) for st in source.streams), default=60)
    if media == HTML:
        return send_html(request, item, max_age=max_age)
    return send(request, item, media, max_age=max_age)


def _view(request: web.Request, source: TpfSource, data: list[Triple], metadata: list[Triple], page_iri: str) -> TpfView:
    """The fragment for people: every term links to the fragment of the triples sharing it."""

    def cell(term: Term, position: str) -> TermCell:
        pattern = {"subject": None, "predicate": None, "object": None, position: term}
        return TermCell(term, source.link(pattern["subject"], pattern["predicate"], pattern["object"], None, None))

    page = f"<{page_iri}>"
    total = next((int(o[1:].split('"', 1)[0]) for s, p, o in metadata if s == page and p == VOID_TRIPLES), len(data))
    pages = [(rel, o[1:-1]) for rel in ("first", "previous", "next")
             for s, p, o in metadata if s == page and p == f"<{HYDRA}{rel}>"]
    kept = [(k, v) for k, v in request.query.items() if k != "format"]
    formats = [(FORMAT_LABELS[f], f, "?" + urlencode([*kept, ("format", f)])) for f in format_names(PAGE_OFFERS) if f != "html"]
    return TpfView(
        title="Triple Pattern Fragment", iri=page_iri,
        triples=[(cell(s, "subject"), cell(p, "predicate"), cell(o, "object")) for s, p, o in data],
        total=total, pattern={k: request.query[k] for k in ("subject", "predicate", "object") if k in request.query},
        action=urlsplit(source.url).path, pages=pages, formats=formats,
    )
