"""Route handlers: parse the request, look up bytes, set headers. Nothing else."""

from __future__ import annotations

from aiohttp import web

from ldf_server.fragments import catalog as catalog_doc
from ldf_server.fragments import latest as latest_doc
from ldf_server.fragments.fragment import Fragment
from ldf_server.fragments.stream import OutOfRange, StreamFragments
from ldf_server.http import dashboard
from ldf_server.http.health import readiness
from ldf_server.http.problems import Problem
from ldf_server.http.respond import JSONLD_OFFERS, respond
from ldf_server.http.state import STATE, ServerState
from ldf_server.rdf import jsonld
from ldf_server.rdf.shapes import shape_fragment
from ldf_server.timeutil import InstantError, format_day, format_instant, parse_instant

STATIC_MAX_AGE = 86400


def dataset_of(request: web.Request) -> tuple[ServerState, StreamFragments]:
    state = request.app[STATE]
    ds = request.match_info["ds"]
    stream = state.streams.get(ds)
    if stream is None:
        raise Problem(404, f"there is no dataset {ds!r}; the catalog at {state.urls.catalog()} lists them all", title="Unknown dataset")
    return state, stream


def _out_of_range(exc: OutOfRange) -> Problem:
    if exc.gone:
        return Problem(410, str(exc), title="Page removed by the retention policy")
    return Problem(404, str(exc), title="No such page")


async def catalog(request: web.Request) -> web.Response:
    state = request.app[STATE]
    streams = list(state.streams.values())
    token = tuple((s.store.version, s.store.retained_from) for s in streams)
    resp = respond(
        request, state.cache, token=token, page_iri=state.urls.catalog(),
        build=lambda: catalog_doc.catalog(state.config.catalog, state.urls, streams),
        max_age=min((state.max_age(s) for s in streams), default=60), page=dashboard.renderer(state),
    )
    resp.headers["Link"] = f'<{state.urls.openapi()}>; rel="service-desc"; type="application/openapi+json"'  # RFC 8631
    return resp


async def context(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return respond(
        request, state.cache, token="static", page_iri=state.urls.context(), offers=JSONLD_OFFERS,
        build=lambda: Fragment({}, immutable=False, modified=state.started), body=jsonld.context_document,
        max_age=STATIC_MAX_AGE,
    )


async def stream(request: web.Request) -> web.Response:
    state, fragments = dataset_of(request)
    now = state.now_ms()
    iri = state.urls.stream(fragments.ds)
    return respond(
        request, state.cache, token=fragments.mutable_token(now), page_iri=iri, meta=(iri,),
        build=lambda: fragments.stream(now), max_age=state.max_age(fragments),
    )


async def view(request: web.Request) -> web.Response:
    state, fragments = dataset_of(request)
    now = state.now_ms()
    if "time" in request.query:
        return _search(state, fragments, request.query.getall("time"), now)
    unknown = sorted(set(request.query) - {"time", "format"})
    if unknown:
        raise Problem(400, f"unknown query parameter(s): {', '.join(unknown)}; the search form takes only 'time'")
    iri = state.urls.view(fragments.ds)
    return respond(
        request, state.cache, token=fragments.mutable_token(now), page_iri=iri,
        meta=(iri, state.urls.stream(fragments.ds)), build=lambda: fragments.view(now), max_age=state.max_age(fragments),
    )


def _search(state: ServerState, fragments: StreamFragments, values: list[str], now: int) -> web.Response:
    """``?time=`` (the Hydra search form): 302 to the canonical page holding that instant."""
    if len(values) != 1:
        raise Problem(400, "give exactly one 'time' parameter", title="Bad time")
    try:
        instant = parse_instant(values[0])
    except InstantError as exc:
        raise Problem(400, str(exc), title="Bad time") from None
    try:
        start = fragments.window_for(instant, now)
    except OutOfRange as exc:
        raise _out_of_range(exc) from None
    return web.Response(
        status=302,
        headers={
            "Location": state.urls.window(fragments.ds, start),
            "Cache-Control": f"public, max-age={state.max_age(fragments)}",
            "Vary": "Accept",
        },
    )


async def day(request: web.Request) -> web.Response:
    state, fragments = dataset_of(request)
    now = state.now_ms()
    text = request.match_info["day"]
    try:
        start = parse_instant(text + "T00:00:00Z") if len(text) == 10 else None
    except InstantError:
        start = None
    if start is None or format_day(start) != text:
        raise Problem(404, f"{text!r} is not a day (YYYY-MM-DD, UTC)", title="No such page")
    try:
        fragments.check_day(start, now)
    except OutOfRange as exc:
        raise _out_of_range(exc) from None
    iri = state.urls.day(fragments.ds, start)
    return respond(
        request, state.cache, token=fragments.day_token(start, now), page_iri=iri,
        meta=(iri, state.urls.stream(fragments.ds)), build=lambda: fragments.day(start, now),
        max_age=lambda: state.max_age(fragments),  # asked only while the day is open
    )


# Window pages are what clients fetch most: what is worked out from the URL alone (the instant
# of a canonical start, the page's IRI and metadata subjects) is remembered, up to a bound.
MEMO_MAX = 4096
_canonical_starts: dict[str, int] = {}  # URL text of a canonical instant → epoch ms
_window_iris: dict[tuple[object, str, int], tuple[str, tuple[str, str]]] = {}  # (urls, ds, start) → iri, meta


def _remember(memo: dict, key: object, value: object) -> None:  # type: ignore[type-arg]
    if len(memo) >= MEMO_MAX:
        memo.clear()
    memo[key] = value


async def window(request: web.Request) -> web.Response:
    state, fragments = dataset_of(request)
    return window_page(request, state, fragments, request.match_info["start"])


def window_page(request: web.BaseRequest, state: ServerState, fragments: StreamFragments, text: str) -> web.Response:
    """``/{ds}/windows/{start}`` once routed (also by ``http/fastpath.py``, which routes it itself)."""
    now = state.now_ms()
    start = _canonical_starts.get(text)
    if start is None:
        try:
            start = parse_instant(text)
        except InstantError:
            raise Problem(404, f"{text!r} is not a page of this stream; use the search form (?time=) on {state.urls.view(fragments.ds)}", title="No such page") from None
        canonical = format_instant(start)
        if canonical != text:
            if not fragments.timeline.is_window_start(start):
                raise Problem(404, f"{text} is not the start of a page; ask {state.urls.view(fragments.ds)}?time={canonical}", title="No such page")
            return web.Response(status=301, headers={"Location": state.urls.window(fragments.ds, start), "Cache-Control": "public, max-age=86400"})
        _remember(_canonical_starts, text, start)
    try:
        fragments.check_window(start, now)
    except OutOfRange as exc:
        raise _out_of_range(exc) from None
    urls = state.urls
    iris = _window_iris.get((urls, fragments.ds, start))
    if iris is None:
        iri = urls.window(fragments.ds, start)
        iris = (iri, (iri, urls.stream(fragments.ds)))
        _remember(_window_iris, (urls, fragments.ds, start), iris)
    return respond(
        request, state.cache, token=fragments.window_token(start, now), page_iri=iris[0],
        meta=iris[1], build=lambda: fragments.window(start, now),
        max_age=lambda: state.max_age(fragments),  # asked only while the page is open
        state=state,
    )


async def member(request: web.Request) -> web.Response:
    """A member's IRI dereferences: 303 See Other to the page that holds it (the member is a
    thing the page describes, not a document of its own)."""
    state, fragments = dataset_of(request)
    now = state.now_ms()
    key = request.match_info["key"]
    _, _, text = key.rpartition("/")
    try:
        instant = parse_instant(text)
    except InstantError:
        raise Problem(404, f"{key[:100]!r} is not a member of this stream", title="No such member") from None
    start = fragments.timeline.window_start(instant)
    try:
        fragments.check_window(start, now)
    except OutOfRange as exc:
        raise _out_of_range(exc) from None
    iri = state.urls.base + request.path
    window = fragments.store.window(start)
    members = window.members if window is not None else []
    if not any(state.urls.member(fragments.ds, m.site, m.series, m.time) == iri for m in members):
        raise Problem(404, f"no member {key[:100]!r} in this stream", title="No such member")
    return web.Response(status=303, headers={"Location": state.urls.window(fragments.ds, start),
                                             "Cache-Control": "public, max-age=86400"})


async def latest(request: web.Request) -> web.Response:
    state, fragments = dataset_of(request)
    return latest_page(request, state, fragments)


def latest_page(request: web.BaseRequest, state: ServerState, fragments: StreamFragments) -> web.Response:
    """``/{ds}/latest`` once routed (also by ``http/fastpath.py``, which routes it itself)."""
    now = state.now_ms()
    iri = state.urls.latest(fragments.ds)
    return respond(
        request, state.cache, token=fragments.store.version, page_iri=iri, meta=(iri,),
        build=lambda: latest_doc.latest(fragments, now), max_age=state.max_age(fragments), state=state,
    )


async def site(request: web.Request) -> web.Response:
    state, fragments = dataset_of(request)
    key = request.match_info["key"]
    if key not in fragments.store.sites:
        raise Problem(404, f"no site {key!r} in dataset {fragments.ds!r}", title="Unknown site")
    return respond(
        request, state.cache, token=fragments.store.version, page_iri=state.urls.site(fragments.ds, key),
        build=lambda: latest_doc.site(fragments, key), max_age=state.max_age(fragments),
    )


async def shape(request: web.Request) -> web.Response:
    state, fragments = dataset_of(request)
    iri = state.urls.shape(fragments.ds)
    return respond(
        request, state.cache, token="static", page_iri=iri,
        build=lambda: shape_fragment(fragments.config.pilot, iri, state.started), max_age=STATIC_MAX_AGE,
    )


async def health_live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def health_ready(request: web.Request) -> web.Response:
    """200 ``ok`` / ``degraded`` (stale feeds), 503 ``starting`` / ``failing``: see ``http/health.py``."""
    status, body = readiness(request.app[STATE])
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})
