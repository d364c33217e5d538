"""Turn an encoded representation into a response: caching headers, 304s, gzip."""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Iterable, Union

from aiohttp import web

from ldf_server.fragments.fragment import Fragment
from ldf_server.http.negotiation import accepts_gzip, choose
from ldf_server.http.problems import Problem
from ldf_server.http.representations import VARY, Encoded, RepresentationCache  # noqa: F401 - VARY: was defined here
from ldf_server.http.state import STATE, ServerState
from ldf_server.html import render as html
from ldf_server.html.views import FORMATS
from ldf_server.rdf import jsonld, syntaxes
from ldf_server.timeutil import parse_http_date

JSONLD_OFFERS = (jsonld.MEDIA_TYPE, "application/json")
# JSON-LD first: what a client that accepts anything (or sends no Accept) gets.
RDF_OFFERS = (jsonld.MEDIA_TYPE, "application/json", *syntaxes.RDF_MEDIA_TYPES[1:])
HTML = "text/html"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
# HTML last: browsers ask for it by name; "*/*" and no Accept still get JSON-LD.
PAGE_OFFERS = (*RDF_OFFERS, HTML)
HtmlRenderer = Callable[[Fragment, str, list[str]], bytes]
MaxAge = Union[int, Callable[[], int]]  # seconds, or a function asked only when the resource is mutable
IMMUTABLE = "public, max-age=31536000, immutable"


CHOSEN_MAX = 1024
_chosen: dict[tuple[str | None, tuple[str, ...]], str | None] = {}  # (Accept, offers) → media type


def negotiate(request: web.BaseRequest, offers: tuple[str, ...] = JSONLD_OFFERS) -> str:
    """The media type to answer with: ``?format=`` when given (links in a browser cannot set
    ``Accept``), else the ``Accept`` header."""
    if request.query_string and "format" in request.query:
        return _format(request.query.getall("format"), offers)
    key = (request.headers.get("Accept"), offers)
    media = _chosen.get(key, offers)  # (offers: not a media type, so "not yet chosen")
    if media is offers:
        media = choose(*key)
        if len(_chosen) >= CHOSEN_MAX:  # clients send few distinct Accept headers; strangers must not grow it
            _chosen.clear()
        _chosen[key] = media
    if media is None:
        raise Problem(
            406,
            f"this resource is available as {', '.join(offers)}",
            title="Not Acceptable",
            available=list(offers),
        )
    return media


def _format(values: list[str], offers: tuple[str, ...]) -> str:
    names = format_names(offers)
    if len(values) != 1 or values[0] not in FORMATS:
        raise Problem(400, f"format must be one of {', '.join(names)}", title="Bad format", available=names)
    media = FORMATS[values[0]]
    if media not in offers:
        raise Problem(406, f"this resource is available as {', '.join(names)}", title="Not Acceptable", available=names)
    return media


def format_names(offers: tuple[str, ...]) -> list[str]:
    """The ``?format=`` names of a resource's representations (links to the other formats)."""
    return [name for name, media in FORMATS.items() if media in offers]


def html_view(fragment: Fragment, page_iri: str, formats: list[str], home: str) -> bytes:
    return html.resource(fragment.doc, page_iri, formats, home, fragment.links)


def respond(
    request: web.BaseRequest,
    cache: RepresentationCache,
    *,
    token: object,
    build: Callable[[], Fragment],
    max_age: MaxAge,
    page_iri: str,
    meta: Iterable[str] = (),
    offers: tuple[str, ...] = PAGE_OFFERS,
    body: Callable[[], bytes] | None = None,
    page: HtmlRenderer | None = None,
    state: ServerState | None = None,
) -> web.Response:
    """Negotiate, then send the cached bytes of the resource in that syntax.

    The bytes are rebuilt only when ``token`` changed. ``meta`` names the subjects whose
    triples go into the page's metadata graph in quad syntaxes; ``body`` overrides the
    JSON-LD encoding (for documents that are not fragments, such as the context itself);
    ``page`` overrides the HTML view (the dashboard at ``/``). HTML is cached like the others.
    ``state``: the server's, when the request was not routed by the app (``http/fastpath.py``).
    """
    media = negotiate(request, offers)
    syntax = "jsonld" if media in JSONLD_OFFERS else media
    key = (request.path, syntax)
    item = cache.get(key, token)
    if item is None:
        state = state or request.app[STATE]
        fragment = build()
        if syntax == "jsonld":
            encoded = body() if body else None
        elif media == HTML:
            formats = format_names(offers)
            encoded = page(fragment, page_iri, formats) if page else html_view(fragment, page_iri, formats, state.urls.catalog())
        else:
            encoded = syntaxes.encode(media, fragment.doc, page_iri, meta)
        item = Encoded.of(fragment, token, encoded)
        cache.put(key, item)
    if media == HTML:
        return send_html(request, item, max_age=max_age, state=state)
    return send(request, item, media, max_age=max_age)


def send_html(request: web.BaseRequest, item: Encoded, *, max_age: MaxAge, state: ServerState | None = None) -> web.Response:
    """``send`` for an HTML view: its scripts only from this server (no inline script), no sniffing."""
    resp = send(request, item, HTML_CONTENT_TYPE, max_age=max_age)
    state = state or request.app[STATE]
    resp.headers["Content-Security-Policy"] = html.content_security_policy(state.config.server.map_tiles)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def not_modified(request: web.BaseRequest, item: Encoded) -> bool:
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        if inm == item.etag or inm == item.gzip_etag:  # what a cache sends back: the tag it was given
            return True
        if inm.strip() == "*":
            return True
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return item.etag in tags or item.gzip_etag in tags
    ims = request.headers.get("If-Modified-Since")
    if ims is not None:
        since = parse_http_date(ims)
        return since is not None and int(item.modified) <= since
    return False


@lru_cache(maxsize=256)
def cache_control(max_age: int) -> str:
    """``Cache-Control`` of a mutable resource that is expected to change in ``max_age`` seconds."""
    return f"public, max-age={max_age}, s-maxage={max(0, max_age - 1)}"


def send(request: web.BaseRequest, item: Encoded, media: str, *, max_age: MaxAge) -> web.Response:
    """The cached bytes with their headers, or 304. ``max_age`` may be a function: it is asked
    only for mutable resources (immutable ones are cached for a year)."""
    if item.immutable:
        cc = IMMUTABLE
    else:
        cc = cache_control(max_age() if callable(max_age) else max_age)
    gzipped = accepts_gzip(request.headers.get("Accept-Encoding")) and item.gzipped() is not None
    if not_modified(request, item):
        return web.Response(status=304, headers=item.headers(None, cc, gzipped))
    return web.Response(body=item._gzipped if gzipped else item.body, headers=item.headers(media, cc, gzipped))
