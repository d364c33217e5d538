"""Turn an encoded representation into a response: caching headers, 304s, gzip."""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from ldf_server.fragments.fragment import Fragment
from ldf_server.http.negotiation import accepts_gzip, choose
from ldf_server.http.problems import Problem
from ldf_server.http.representations import Encoded, RepresentationCache
from ldf_server.rdf import jsonld
from ldf_server.timeutil import parse_http_date

JSONLD_OFFERS = (jsonld.MEDIA_TYPE, "application/json")
IMMUTABLE = "public, max-age=31536000, immutable"
VARY = "Accept, Accept-Encoding"


def negotiate(request: web.Request, offers: tuple[str, ...] = JSONLD_OFFERS) -> str:
    media = choose(request.headers.get("Accept"), offers)
    if media is None:
        raise Problem(
            406,
            f"this resource is available as {', '.join(offers)}",
            title="Not Acceptable",
            available=list(offers),
        )
    return media


def cached(
    cache: RepresentationCache,
    key: str,
    token: object,
    build: Callable[[], Fragment],
    *,
    body: Callable[[], bytes] | None = None,
) -> Encoded:
    """The cached bytes of a resource, rebuilt only when its token changed.

    ``body`` overrides the JSON-LD encoding of the fragment (for documents that are not
    fragments, such as the context itself).
    """
    ck = (key, "jsonld")
    item = cache.get(ck, token)
    if item is None:
        item = Encoded.of(build(), token, body() if body else None)
        cache.put(ck, item)
    return item


def not_modified(request: web.Request, item: Encoded) -> bool:
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        if inm.strip() == "*":
            return True
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return item.etag in tags or item.gzip_etag in tags
    ims = request.headers.get("If-Modified-Since")
    if ims is not None:
        since = parse_http_date(ims)
        return since is not None and int(item.modified) <= since
    return False


def send(request: web.Request, item: Encoded, media: str, *, max_age: int) -> web.Response:
    headers = {
        "Content-Type": media,
        "Last-Modified": item.last_modified,
        "Vary": VARY,
        "Cache-Control": IMMUTABLE if item.immutable else f"public, max-age={max_age}, s-maxage={max(0, max_age - 1)}",
    }
    body = item.body
    etag = item.etag
    if accepts_gzip(request.headers.get("Accept-Encoding")):
        gz = item.gzipped()
        if gz is not None:
            body, etag = gz, item.gzip_etag
            headers["Content-Encoding"] = "gzip"
    headers["ETag"] = etag
    if not_modified(request, item):
        headers.pop("Content-Type")
        headers.pop("Content-Encoding", None)
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers)
