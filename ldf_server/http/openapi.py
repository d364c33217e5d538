"""``GET /openapi.json``: an OpenAPI 3.1 description of every route, built once per app.

:data:`PATHS` holds one entry per route of ``routes.py`` (path in OpenAPI syntax → method →
operation). It is static: what depends on the configuration (the dataset names, the push
sources, the public base URL) lives in ``components`` and is filled in by
:func:`build_document` when the app starts, so every ``{ds}`` is an ``enum`` of the datasets
this server really has. A test holds :data:`PATHS` and the router to the same set of routes
in both directions: a new route without an entry here fails the suite.

Content negotiation is described by listing every media type under a response's
``content``, not by an ``Accept`` parameter: OpenAPI ignores header parameters named
``Accept``, ``Content-Type`` and ``Authorization``. ``HEAD`` is answered for every ``GET``
(same headers, no body) and is not listed separately.

Media type of the description itself: ``application/json`` by default, because
``application/openapi+json`` (the type OpenAPI 3.1 names) is not registered with IANA yet and
generic tools (browsers, ``curl | jq``, fuzzers, Swagger UI) all read ``application/json``;
a client that asks for ``application/openapi+json`` or the registered
``application/vnd.oai.openapi+json`` gets the same bytes labelled so.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from aiohttp import web

from ldf_server import __version__
from ldf_server.html import assets
from ldf_server.fragments.fragment import Fragment
from ldf_server.http.representations import Encoded
from ldf_server.http.respond import negotiate, send
from ldf_server.http.state import STATE, ServerState
from ldf_server.records import COUNTED, OPENING_STATUSES, PARKING_STATUSES
from ldf_server.rdf import syntaxes

OFFERS = ("application/json", "application/openapi+json", "application/vnd.oai.openapi+json")
MAX_AGE = 86400  # changes only when the server restarts with another configuration; ETag revalidates
IDENTIFIER = "^[a-z][a-z0-9-]*$"  # the router's pattern for {ds} and {source}

Json = dict[str, Any]


def _ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


# -- building blocks of PATHS -----------------------------------------------------------------

RDF_MEDIA = ("application/ld+json", "application/json", *syntaxes.RDF_MEDIA_TYPES[1:], "text/html")
CACHE_HEADERS = {name: _ref("headers", name) for name in ("ETag", "Cache-Control", "Vary", "Last-Modified")}
# Answered below the routes, to any request (http/limits.py): listed on every operation.
COMMON = {
    "400": _ref("responses", "BadRequest"),
    "408": _ref("responses", "RequestTimeout"),
    "414": _ref("responses", "UriTooLong"),
    "431": _ref("responses", "HeadersTooLarge"),
}


def _rdf(description: str, schema: str, *, headers: tuple[str, ...] = ()) -> Json:
    """A 200 in every RDF syntax: JSON-LD (also as ``application/json``) by the schema, the others as text."""
    json_schema = _ref("schemas", schema)
    return {
        "description": description + " JSON-LD by default; N-Quads, TriG, Turtle, N-Triples or HTML (for people) "
                       "by `Accept` or `?format=`.",
        "headers": {**CACHE_HEADERS, **{h: _ref("headers", h) for h in ("Content-Encoding", *headers)}},
        "content": {m: {"schema": json_schema if "json" in m else {"type": "string"}} for m in RDF_MEDIA},
    }


def _get(summary: str, description: str, responses: Json, *, parameters: list[Json] | None = None,
         tags: tuple[str, ...] = (), conditional: bool = True) -> Json:
    """A GET operation; ``conditional`` ones take ``If-None-Match`` / ``If-Modified-Since`` and answer 304."""
    params = list(parameters or [])
    ok = responses.get("200", {})
    if "text/html" in ok.get("content", {}):  # an RDF resource: ?format= and the start-up 503 apply
        params.append(_ref("parameters", "format"))
        responses = {**responses, "503": _ref("responses", "Starting")}
    if conditional:
        params += [_ref("parameters", "If-None-Match"), _ref("parameters", "If-Modified-Since")]
        responses = {**responses, "304": _ref("responses", "NotModified")}
    op: Json = {"summary": summary, "description": description, "responses": {**COMMON, **responses}}
    if tags:
        op["tags"] = list(tags)
    if params:
        op["parameters"] = params
    return op


DS = _ref("parameters", "ds")
NOT_FOUND = _ref("responses", "NotFound")
NOT_ACCEPTABLE = _ref("responses", "NotAcceptable")
GONE = _ref("responses", "Gone")
TPF_PARAMS = [_ref("parameters", n) for n in ("subject", "predicate", "object", "page", "v")]
LDES = ("Linked Data Event Streams",)

PATHS: dict[str, dict[str, Json]] = {
    "/": {"get": _get(
        "DCAT-AP catalog", "Every dataset with its distributions and the data services that serve them.",
        {"200": _rdf("The `dcat:Catalog`; `Link` names this description (`rel=\"service-desc\"`).", "Catalog",
                     headers=("Link",)),
         "406": NOT_ACCEPTABLE},
        tags=("Catalog",))},
    "/context.jsonld": {"get": _get(
        "The shared JSON-LD context", "Also inlined in every JSON-LD response.",
        {"200": {"description": "The context document.", "headers": CACHE_HEADERS,
                 "content": {m: {"schema": _ref("schemas", "ContextDocument")} for m in ("application/ld+json", "application/json")}},
         "406": NOT_ACCEPTABLE},
        tags=("Catalog",))},
    "/openapi.json": {"get": _get(
        "This description", "OpenAPI 3.1, built from the server's configuration when it started.",
        {"200": {"description": "The OpenAPI document.", "headers": CACHE_HEADERS,
                 "content": {m: {"schema": _ref("schemas", "OpenApiDocument")} for m in OFFERS}},
         "406": NOT_ACCEPTABLE},
        tags=("Catalog",))},
    "/health/live": {"get": _get(
        "Liveness", "200 while the process serves requests.",
        {"200": {"description": "Alive.", "headers": {"Cache-Control": _ref("headers", "Cache-Control")},
                 "content": {"application/json": {"schema": _ref("schemas", "Liveness")}}}},
        tags=("Operations",), conditional=False)},
    "/health/ready": {"get": _get(
        "Readiness", "`ok` / `degraded` (stale feeds) answer 200; `starting` / `failing` answer 503.",
        {"200": {"description": "Ready (`ok` or `degraded`).", "headers": {"Cache-Control": _ref("headers", "Cache-Control")},
                 "content": {"application/json": {"schema": _ref("schemas", "Readiness")}}},
         "503": {"description": "Not ready (`starting` or `failing`), or too many connections.",
                 "content": {"application/json": {"schema": _ref("schemas", "Readiness")},
                             "application/problem+json": {"schema": _ref("schemas", "Problem")}}}},
        tags=("Operations",), conditional=False)},
    "/metrics": {"get": _get(
        "Prometheus metrics", "The Prometheus text format 0.0.4.",
        {"200": {"description": "Every series.", "headers": {"Cache-Control": _ref("headers", "Cache-Control")},
                 "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}}},
        tags=("Operations",), conditional=False)},
    "/tpf": {"get": _get(
        "Triple Pattern Fragments over all datasets",
        "The triples of every dataset's current state (sites and their newest members) matching a pattern, "
        "with the TPF hypermedia controls (count, paging, search form) in the graph `<page#metadata>`.",
        {"200": _rdf("One page of matching triples.", "TpfPage"), "406": NOT_ACCEPTABLE, "410": GONE},
        parameters=TPF_PARAMS, tags=("Triple Pattern Fragments",))},
    "/{ds}": {"get": _get(
        "The event stream", "The `ldes:EventStream`, its `tree:view` and the description of every site.",
        {"200": _rdf("The stream.", "GraphDocument"), "404": NOT_FOUND, "406": NOT_ACCEPTABLE},
        parameters=[DS], tags=LDES)},
    "/{ds}/tpf": {"get": _get(
        "Triple Pattern Fragments of one dataset", "As `/tpf`, over one dataset.",
        {"200": _rdf("One page of matching triples.", "TpfPage"), "404": NOT_FOUND, "406": NOT_ACCEPTABLE, "410": GONE},
        parameters=[DS, *TPF_PARAMS], tags=("Triple Pattern Fragments",))},
    "/{ds}/view": {"get": _get(
        "The root node, or the page holding an instant",
        "Without `time`: the root `tree:Node` (one relation pair per UTC day, the retention policy and the "
        "search form `view{?time}`). With `time`: a 302 to the window page holding that instant.",
        {"200": _rdf("The root node.", "GraphDocument"),
         "302": {"description": "The canonical window page holding `time`.",
                 "headers": {"Location": _ref("headers", "Location"), "Cache-Control": _ref("headers", "Cache-Control")}},
         "404": NOT_FOUND, "406": NOT_ACCEPTABLE, "410": GONE},
        parameters=[DS, _ref("parameters", "time")], tags=LDES)},
    "/{ds}/days/{day}": {"get": _get(
        "A day node", "One relation pair per non-empty window of that UTC day; immutable once the day is closed.",
        {"200": _rdf("The day node.", "GraphDocument"), "404": NOT_FOUND, "406": NOT_ACCEPTABLE, "410": GONE},
        parameters=[DS, _ref("parameters", "day")], tags=LDES)},
    "/{ds}/windows/{start}": {"get": _get(
        "A window page", "The members observed in that window, in time order; immutable once closed.",
        {"200": _rdf("The page.", "GraphDocument"),
         "301": {"description": "`start` names a window start, but not in its canonical form.",
                 "headers": {"Location": _ref("headers", "Location"), "Cache-Control": _ref("headers", "Cache-Control")}},
         "404": NOT_FOUND, "406": NOT_ACCEPTABLE, "410": GONE},
        parameters=[DS, _ref("parameters", "start")], tags=LDES)},
    "/{ds}/latest": {"get": _get(
        "The newest version of every site", "A `hydra:Collection` that reads as plain JSON; poll it no faster than "
        "its `max-age` (the seconds until the next poll of the feeds).",
        {"200": _rdf("The latest state.", "Latest"), "404": NOT_FOUND, "406": NOT_ACCEPTABLE},
        parameters=[DS], tags=("Latest",))},
    "/{ds}/events": {"get": _get(
        "Live push of new members (Server-Sent Events)",
        "One `event: member` per new member (`id` its sequence number, `data` compact JSON-LD); resumable with "
        "`Last-Event-ID` or `?lastEventId=`; an `event: gap` with `data: {\"firstAvailable\": n}` when members "
        "were missed; `: heartbeat` comments when idle. The stream does not end while the server runs.",
        {"200": {"description": "The event stream.", "headers": {"Cache-Control": _ref("headers", "Cache-Control")},
                 "content": {"text/event-stream": {"schema": _ref("schemas", "ServerSentEvent")}}},
         "404": NOT_FOUND},
        parameters=[DS, _ref("parameters", "lastEventId"), _ref("parameters", "Last-Event-ID")],
        tags=("Latest",), conditional=False)},
    "/{ds}/shape": {"get": _get(
        "The SHACL shape of the members", "Every member of the dataset conforms to it.",
        {"200": _rdf("The shape.", "GraphDocument"), "404": NOT_FOUND, "406": NOT_ACCEPTABLE},
        parameters=[DS], tags=LDES)},
    "/{ds}/dumps": {"get": _get(
        "The daily dumps (redirect)", "A permanent redirect to `/{ds}/dumps/`.",
        {"301": {"description": "The index of the daily dumps.",
                 "headers": {"Location": _ref("headers", "Location"), "Cache-Control": _ref("headers", "Cache-Control")}},
         "404": NOT_FOUND},
        parameters=[DS], tags=("Exports",), conditional=False)},
    "/{ds}/dumps/": {"get": _get(
        "The daily dumps", "The dataset with one `dcat:Distribution` per closed UTC day (gzipped N-Quads), newest first.",
        {"200": _rdf("The index.", "GraphDocument"), "404": NOT_FOUND, "406": NOT_ACCEPTABLE},
        parameters=[DS], tags=("Exports",))},
    "/{ds}/dumps/{name}": {"get": _get(
        "A day's dump", "Every site description and every member observed on a closed UTC day, as gzipped "
        "N-Quads (`YYYY-MM-DD.nq.gz`); built once, immutable.",
        {"200": {"description": "The dump, as an attachment.",
                 "headers": {**{h: _ref("headers", h) for h in ("ETag", "Cache-Control", "Last-Modified")},
                             "Content-Disposition": _ref("headers", "Content-Disposition")},  # one representation: no Vary
                 "content": {"application/gzip": {"schema": {"type": "string", "contentMediaType": "application/gzip"}}}},
         "404": NOT_FOUND, "409": _ref("responses", "DayNotClosed"), "410": GONE,
         "503": _ref("responses", "Starting")},
        parameters=[DS, _ref("parameters", "dump")], tags=("Exports",))},
    "/_assets/{name}": {"get": _get(
        "A static asset of the HTML views", "Scripts, style sheets and licences of the dashboard and page views "
        "(Leaflet, uPlot and ldf-server's own). Names carry a digest of the content: immutable.",
        {"200": {"description": "The asset.", "headers": CACHE_HEADERS,
                 "content": {m: {"schema": {"type": "string"}} for m in ("text/javascript", "text/css", "text/plain")}},
         "404": NOT_FOUND},
        parameters=[_ref("parameters", "asset")], tags=("Catalog",))},
    "/{ds}/sites/{key}": {"get": _get(
        "A site", "The description and newest version of a site whose IRI this server minted.",
        {"200": _rdf("The site.", "Site"), "404": NOT_FOUND, "406": NOT_ACCEPTABLE},
        parameters=[DS, _ref("parameters", "key")], tags=("Latest",))},
    "/{ds}/members/{key}": {"get": _get(
        "A member", "A member's IRI: 303 See Other to the window page that holds it.",
        {"303": {"description": "The page holding the member.",
                 "headers": {"Location": _ref("headers", "Location"), "Cache-Control": _ref("headers", "Cache-Control")}},
         "404": NOT_FOUND, "410": GONE, "503": _ref("responses", "Starting")},
        parameters=[DS, _ref("parameters", "member")], tags=LDES, conditional=False)},
    "/{ds}/push/{source}": {"post": {
        "summary": "Push observations", "tags": ["Push"],
        "description": "A configured source pushes records for its own sites. All or nothing: if any record is "
        "invalid, none is stored and the 422 lists the errors of every bad record by index. Resending stored "
        "records is harmless.",
        "parameters": [_ref("parameters", "pushDataset"), _ref("parameters", "source")],
        "security": [{"bearer": []}, {"apiKey": []}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": _ref("schemas", "PushBody")},
            "application/ld+json": {"schema": _ref("schemas", "PushBody")}}},
        "responses": {
            **COMMON,
            "200": {"description": "Stored.", "headers": {"Cache-Control": _ref("headers", "Cache-Control")},
                    "content": {"application/json": {"schema": _ref("schemas", "PushResult")}}},
            "401": _ref("responses", "Unauthorized"),
            "403": _ref("responses", "Forbidden"),
            "404": NOT_FOUND,
            "413": _ref("responses", "ContentTooLarge"),
            "415": _ref("responses", "UnsupportedMediaType"),
            "422": _ref("responses", "InvalidRecords"),
            "503": _ref("responses", "StorageUnavailable"),
        }}},
}


# -- components -------------------------------------------------------------------------------

def _problem_response(description: str, headers: Json | None = None, schema: str = "Problem") -> Json:
    out: Json = {"description": description,
                 "content": {"application/problem+json": {"schema": _ref("schemas", schema)}}}
    if headers:
        out["headers"] = headers
    return out


def _header(description: str, schema: Json | None = None, *, required: bool = False) -> Json:
    return {"description": description, "required": required, "schema": schema or {"type": "string"}}


JSONLD_DOC: Json = {"type": "object", "required": ["@context"], "properties": {"@context": {"type": "object"}}}
GRAPH_NODE: Json = {"type": "object", "required": ["@id"], "properties": {"@id": {"type": "string"}}}
INSTANT = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
SITE_REF: Json = {"type": "string", "minLength": 1, "description": "A key (`city/name`) or IRI of one of the source's sites."}


def _schemas(site_keys: list[str]) -> Json:
    site = {**SITE_REF, "examples": site_keys} if site_keys else SITE_REF
    time = {"type": "string", "format": "date-time"}
    parking = {
        "type": "object", "additionalProperties": False, "required": ["observedAt", "vacantSpaces"],
        "properties": {
            "@id": {"type": "string"}, "@context": {},
            "site": site, "isVersionOf": {"type": "string", "format": "uri"}, "observedAt": time,
            "vacantSpaces": {"type": "integer", "minimum": 0},
            "siteStatus": {"enum": list(PARKING_STATUSES)}, "openingStatus": {"enum": list(OPENING_STATUSES)},
        },
    }
    crowd = {
        "type": "object", "additionalProperties": False, "required": ["resultTime", "observedProperty", "hasSimpleResult"],
        "properties": {
            "@id": {"type": "string"}, "@context": {}, "@type": {},
            "site": site, "hasFeatureOfInterest": {"type": "string", "format": "uri"}, "resultTime": time,
            "observedProperty": {"enum": list(COUNTED)}, "hasSimpleResult": {"type": "number", "minimum": 0},
            "start": time, "end": time, "direction": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "phenomenonTime": {"type": "object"},
        },
    }
    record = {"oneOf": [{"title": "Parking record", **parking}, {"title": "Counting record", **crowd}]}
    return {
        "Problem": {
            "type": "object", "required": ["type", "title", "status"], "description": "RFC 9457 problem details.",
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"}, "instance": {"type": "string"},
                "available": {"type": "array", "items": {"type": "string"}},
            },
        },
        "InvalidRecords": {
            "allOf": [_ref("schemas", "Problem")], "required": ["errors"],
            "properties": {"errors": {"type": "array", "items": {
                "type": "object", "required": ["index", "errors"],
                "properties": {"index": {"type": "integer", "minimum": 0},
                               "errors": {"type": "array", "items": {"type": "string"}}}}}},
        },
        "ContextDocument": JSONLD_DOC,
        "Catalog": {**JSONLD_DOC, "required": ["@context", "@id", "@type", "dataset"], "properties": {
            **JSONLD_DOC["properties"], "@type": {"const": "Catalog"},
            "dataset": {"type": "array", "items": GRAPH_NODE}, "service": {"type": "array", "items": GRAPH_NODE}}},
        "GraphDocument": {**JSONLD_DOC, "required": ["@context", "@graph"], "properties": {
            **JSONLD_DOC["properties"], "@graph": {"type": "array", "items": {"type": "object"}}}},
        "Latest": {**JSONLD_DOC, "required": ["@context", "@id", "@type", "sites"], "properties": {
            **JSONLD_DOC["properties"], "@type": {"const": "Collection"},
            "totalItems": {"type": "integer", "minimum": 0},
            "sites": {"type": "array", "items": GRAPH_NODE}}},
        "Site": {**JSONLD_DOC, "required": ["@context"]},
        "TpfPage": {"type": "array", "items": {"type": "object"},
                    "description": "Expanded JSON-LD: the data in the default graph, the controls in `<page#metadata>`."},
        "OpenApiDocument": {"type": "object", "required": ["openapi", "info", "paths"],
                            "properties": {"openapi": {"type": "string", "pattern": "^3\\.1\\."}}},
        "Liveness": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
        "Readiness": {
            "type": "object", "required": ["status", "reasons", "checks", "stale_feeds", "feeds", "datasets"],
            "properties": {
                "status": {"enum": ["ok", "degraded", "starting", "failing"]},
                "reasons": {"type": "array", "items": {"type": "string"}},
                "checks": {"type": "object", "additionalProperties": {
                    "type": "object", "required": ["ok", "critical", "detail"],
                    "properties": {"ok": {"type": "boolean"}, "critical": {"type": "boolean"}, "detail": {"type": "string"}}}},
                "stale_feeds": {"type": "array", "items": {"type": "string"}},
                "feeds": {"type": "array", "items": {"type": "object", "required": ["feed", "stale"]}},
                "datasets": {"type": "object", "additionalProperties": {
                    "type": "object", "required": ["members", "sites", "updated"],
                    "properties": {"members": {"type": "integer"}, "sites": {"type": "integer"}, "updated": {"type": "string"}}}},
                "worker": {"type": "object", "required": ["role", "index", "pid"],
                           "description": "Only with [server] workers > 1: which process answered (a follower also says "
                                          "how many bytes of the durable log it has not applied yet).",
                           "properties": {"role": {"enum": ["leader", "follower"]}, "index": {"type": "integer"},
                                          "pid": {"type": "integer"}, "log_bytes_behind": {"type": "integer"}}},
            },
        },
        "ServerSentEvent": {
            "description": "One event of the stream (`schema` of `text/event-stream` describes each event, as the "
                           "OpenAPI 3.2 media type registry reads it): `data` holds JSON.",
            "oneOf": [
                {"type": "object", "required": ["event", "id", "data"], "properties": {
                    "event": {"const": "member"}, "id": {"type": "string", "pattern": "^[0-9]+$"},
                    "retry": {"type": "integer"},
                    "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {
                        "type": "object", "required": ["@context", "@id"],
                        "properties": {"@context": {"type": "string", "format": "uri"}, "@id": {"type": "string"}}}}}},
                {"type": "object", "required": ["event", "data"], "properties": {
                    "event": {"const": "gap"}, "retry": {"type": "integer"},
                    "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {
                        "type": "object", "required": ["firstAvailable"],
                        "properties": {"firstAvailable": {"type": "integer", "minimum": 1}}}}}},
            ],
        },
        "PushRecord": record,
        "PushBody": {"oneOf": [
            _ref("schemas", "PushRecord"),
            {"type": "array", "items": _ref("schemas", "PushRecord")},
            {"type": "object", "required": ["@graph"], "description": "JSON-LD with the records in `@graph`.",
             "properties": {"@context": {}, "@graph": {"type": "array", "items": {"type": "object"}}}},
        ]},
        "PushResult": {
            "type": "object", "required": ["accepted", "duplicates", "records"],
            "properties": {"accepted": {"type": "integer", "minimum": 0}, "duplicates": {"type": "integer", "minimum": 0},
                           "records": {"type": "integer", "minimum": 0}},
        },
    }


def _identifier(description: str, values: list[str]) -> Json:
    schema: Json = {"type": "string", "pattern": IDENTIFIER}
    if values:
        schema = {"type": "string", "enum": values}
    return {"description": description, "schema": schema}


def _components(state: ServerState) -> Json:
    datasets = sorted(state.streams)
    sources = sorted(state.push_sources)
    push_datasets = sorted({s.config.dataset for s in state.push_sources.values()})
    site_keys = sorted({site.key for s in state.push_sources.values() for site in s.config.sites})
    query = {"in": "query", "required": False}
    asset_names = sorted(assets.manifest())
    return {
        "parameters": {
            "ds": {"name": "ds", "in": "path", "required": True, **_identifier("A dataset of the catalog.", datasets)},
            "pushDataset": {"name": "ds", "in": "path", "required": True,
                            **_identifier("A dataset that has push sources.", push_datasets)},
            "source": {"name": "source", "in": "path", "required": True,
                       **_identifier("A configured push source of that dataset.", sources)},
            "day": {"name": "day", "in": "path", "required": True, "description": "A UTC day.",
                    "schema": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}},
            "start": {"name": "start", "in": "path", "required": True,
                      "description": "The start of a window, in UTC with `Z` (e.g. `2026-03-31T08:00:00Z`).",
                      "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"}},
            "key": {"name": "key", "in": "path", "required": True,
                    "description": "The site's key, `city/name` (the router takes the rest of the path, slashes included).",
                    "schema": {"type": "string", "minLength": 1}},
            "format": {"name": "format", **query, "description": "The representation, overriding `Accept` (for "
                       "links in a browser).", "schema": {"enum": ["jsonld", "json", "nq", "trig", "ttl", "nt", "html"]}},
            "dump": {"name": "name", "in": "path", "required": True, "description": "`YYYY-MM-DD.nq.gz`: a UTC day.",
                     "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}\\.nq\\.gz$"}},
            "asset": {"name": "name", "in": "path", "required": True, "description": "An asset named by the HTML pages.",
                      **({"schema": {"type": "string", "enum": asset_names}} if asset_names else {"schema": {"type": "string"}})},
            "member": {"name": "key", "in": "path", "required": True,
                       "description": "`city/name[/series]/instant`, as in the member IRIs of the pages.",
                       "schema": {"type": "string", "minLength": 1}},
            "time": {"name": "time", **query, "description": "An ISO 8601 instant with a time zone: answers 302 "
                     "to the page holding it.", "schema": {"type": "string", "pattern": INSTANT}},
            "subject": {"name": "subject", **query, "description": "An IRI, or empty / a `?variable` for any.",
                        "schema": {"type": "string"}},
            "predicate": {"name": "predicate", **query, "description": "An IRI, or empty / a `?variable` for any.",
                          "schema": {"type": "string"}},
            "object": {"name": "object", **query, "description": "An IRI or a literal (`\"v\"`, `\"v\"@nl`, "
                       "`\"v\"^^<datatype>`), or empty / a `?variable` for any.", "schema": {"type": "string"}},
            "page": {"name": "page", **query, "description": "The page number, from 1.",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1}},
            "v": {"name": "v", **query, "description": "The data snapshot a page belongs to (from the `hydra:next` "
                  "link); a snapshot no longer kept answers 410.", "schema": {"type": "string"}},
            "lastEventId": {"name": "lastEventId", **query, "description": "As `Last-Event-ID`, for clients that cannot "
                            "set headers.", "schema": {"type": "string", "pattern": "^[0-9]{0,18}$"}},
            "Last-Event-ID": {"name": "Last-Event-ID", "in": "header", "required": False,
                              "description": "The id of the last event received: the stream resumes after it.",
                              "schema": {"type": "string", "pattern": "^[0-9]{0,18}$"}},
            "If-None-Match": {"name": "If-None-Match", "in": "header", "required": False,
                              "description": "ETags of representations held: 304 if one is current.",
                              "schema": {"type": "string"}},
            "If-Modified-Since": {"name": "If-Modified-Since", "in": "header", "required": False,
                                  "description": "An HTTP date: 304 if not modified since (ignored with `If-None-Match`).",
                                  "schema": {"type": "string"}},
        },
        "headers": {
            "ETag": _header("Strong entity tag of this representation (gzip has its own).", required=True),
            "Cache-Control": _header("`public, max-age=31536000, immutable` for closed pages; `max-age` = seconds until "
                                     "the next poll for mutable resources; `no-store` for live ones.", required=True),
            "Vary": _header("`Accept, Accept-Encoding`.", required=True),
            "Last-Modified": _header("When the resource last changed.", required=True),
            "Content-Encoding": _header("`gzip` when asked for with `Accept-Encoding`.", {"const": "gzip"}),
            "Location": _header("Where the resource is.", {"type": "string", "format": "uri"}, required=True),
            "Link": _header('`<…/openapi.json>; rel="service-desc"`: this description.', required=True),
            "WWW-Authenticate": _header("`Bearer realm=\"ldf-server push\"`.", required=True),
            "Retry-After": _header("Seconds to wait before retrying.", {"type": "string", "pattern": "^[0-9]+$"}),
            "Accept-Post": _header("The media types a push accepts.", required=True),
            "Content-Disposition": _header("`attachment; filename=\"{ds}-{day}.nq.gz\"`.", required=True),
        },
        "responses": {
            "NotModified": {"description": "The representation held (by `If-None-Match` / `If-Modified-Since`) is current.",
                            "headers": {"ETag": _ref("headers", "ETag"), "Cache-Control": _ref("headers", "Cache-Control")}},
            "BadRequest": _problem_response("A malformed request or parameter."),
            "NotFound": _problem_response("No such dataset, page, site or push source."),
            "NotAcceptable": _problem_response("None of the media types in `Accept` can be produced; `available` lists them."),
            "Gone": _problem_response("Removed by the retention policy (or, for TPF, a snapshot no longer kept)."),
            "RequestTimeout": _problem_response("The request head (or a push body) did not arrive in time."),
            "UriTooLong": _problem_response("The request target is longer than the server's limit."),
            "HeadersTooLarge": _problem_response("A header line is too long, or there are too many."),
            "Unauthorized": _problem_response("No API key, or an unknown one.",
                                              {"WWW-Authenticate": _ref("headers", "WWW-Authenticate")}),
            "Forbidden": _problem_response("The key belongs to another source."),
            "ContentTooLarge": _problem_response("The body, or the number of records, is over the limit."),
            "UnsupportedMediaType": _problem_response("The body is not `application/json` or `application/ld+json`.",
                                                      {"Accept-Post": _ref("headers", "Accept-Post")}),
            "InvalidRecords": _problem_response("Some records are invalid; nothing was stored.", schema="InvalidRecords"),
            "Starting": _problem_response("The server is still loading its store (replaying the durable log, "
                                          "backfilling); `/health/ready` says when it is done.",
                                          {"Retry-After": _ref("headers", "Retry-After")}),
            "DayNotClosed": _problem_response("The day is not over yet (plus the grace period for late observations).",
                                              {"Retry-After": _ref("headers", "Retry-After")}),
            "StorageUnavailable": _problem_response("The records could not be stored durably (or too many connections).",
                                                    {"Retry-After": _ref("headers", "Retry-After")}),
        },
        "schemas": _schemas(site_keys),
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "The push source's API key."},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The push source's API key."},
        },
    }


def build_document(state: ServerState) -> Json:
    """The whole description for this server's configuration (dataset names, push sources, base URL)."""
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "ldf-server",
            "version": __version__,
            "summary": "Linked Data Fragments of real-time open city data.",
            "description": (
                "Linked Data Event Streams, `latest` documents, Triple Pattern Fragments and a DCAT-AP catalog "
                "(at `/`). RDF resources are negotiated by `Accept`: JSON-LD (default, also as "
                "`application/json`), N-Quads, TriG, Turtle, N-Triples. `HEAD` works wherever `GET` does. "
                "Every response carries `Access-Control-Allow-Origin: *`; every error is "
                "`application/problem+json` (RFC 9457). A connection over the server's limit is answered 503 "
                "with `Retry-After` and closed."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": state.urls.base, "description": "This server (its configured public base URL)."}],
        "tags": [{"name": n} for n in ("Catalog", "Linked Data Event Streams", "Latest", "Triple Pattern Fragments",
                                       "Exports", "Push", "Operations")],
        "paths": copy.deepcopy(PATHS),
        "components": _components(state),
    }


# -- serving -----------------------------------------------------------------------------------

DOCUMENT: web.AppKey[Encoded] = web.AppKey("openapi_document", Encoded)


async def _build_on_startup(app: web.Application) -> None:
    state = app[STATE]
    body = orjson.dumps(build_document(state), option=orjson.OPT_INDENT_2)
    app[DOCUMENT] = Encoded.of(Fragment({}, immutable=False, modified=state.started), "static", body)


def setup(app: web.Application) -> None:
    """Build the description once, when the app starts (every route is added by then)."""
    app.on_startup.append(_build_on_startup)


async def openapi_json(request: web.Request) -> web.Response:
    media = negotiate(request, OFFERS)
    return send(request, request.app[DOCUMENT], media, max_age=MAX_AGE)
