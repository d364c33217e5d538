"""``/openapi.json``: a valid OpenAPI 3.1 document that describes every route, and that real answers obey.

The completeness test holds ``http/openapi.py``'s PATHS table and the router to the same set of
(method, path) pairs in both directions: a route added without a description fails here.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import jsonschema
import pytest
import rdflib
from openapi_spec_validator import OpenAPIV31SpecValidator
from rdflib.namespace import RDF
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ldf_server.app import build_state, create_app
from ldf_server.http import openapi
from ldf_server.vocabularies import DCAT
from tests.support.seeding import BASE, crowd_dataset, crowd_feed, make_config, parking_dataset, simulator_feed

KEY = "key-of-the-counters"
DOC_URI = "urn:ldf-server:openapi"


@pytest.fixture
def oa_config():
    return make_config(
        datasets=[parking_dataset(), crowd_dataset()], feeds=[simulator_feed(), crowd_feed()],
        push=[{"id": "counters", "dataset": "crowds", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
               "sites": [{"key": "gent/korenmarkt", "label": "Korenmarkt"}]}],
    )


@pytest.fixture
async def oa_client(aiohttp_client, oa_config, clock):
    state = build_state(oa_config, clock=clock, env={})
    for poller in state.pollers:
        poller.backfill()
    state.ready = True
    return await aiohttp_client(create_app(oa_config, state=state, run_feeds=False))


async def fetch_doc(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    return await resp.json()


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) to what it names."""
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def validate_json(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    """Validate against a schema of the document, its ``$ref``s resolved inside the document."""
    registry = Registry().with_resource(DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
    wrapped = {"$ref": DOC_URI + schema["$ref"]} if "$ref" in schema else schema
    jsonschema.Draft202012Validator(wrapped, registry=registry,
                                    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(value)


async def conforms(doc: dict[str, Any], resp, route: str, method: str = "get") -> None:  # type: ignore[no-untyped-def]
    """The response's status, content type, required headers and JSON body are as ``route`` says."""
    path = resp.request_info.url.path
    responses = doc["paths"][route][method]["responses"]
    assert str(resp.status) in responses, f"{resp.status} is not documented for {method.upper()} {route} ({path})"
    described = resolve(doc, responses[str(resp.status)])
    for name, header in described.get("headers", {}).items():
        header = resolve(doc, header)
        if header.get("required"):
            assert name in resp.headers, f"{name} missing on {resp.status} of {path}"
    content = described.get("content")
    if resp.status in (301, 302, 303, 304) or method == "head":
        return
    assert content, f"{resp.status} of {path} has a body the description does not mention"
    media = resp.headers["Content-Type"].split(";")[0].strip()
    keys = {k.split(";")[0].strip(): v for k, v in content.items()}
    assert media in keys, f"{media} is not documented for {resp.status} of {path}: {sorted(keys)}"
    if media.endswith("json"):
        validate_json(doc, keys[media]["schema"], await resp.json(content_type=None))


class Recorder:
    """Issues requests and remembers which route template answered each one."""

    def __init__(self, client, doc) -> None:  # type: ignore[no-untyped-def]
        self.client, self.doc = client, doc
        self.seen: set[tuple[str, str, int]] = set()

    async def check(self, method: str, path: str, status: int, template: str, **kwargs: Any) -> Any:
        resp = await self.client.request(method, path, allow_redirects=False, **kwargs)
        if resp.status != status:
            streaming = resp.headers.get("Content-Type", "").startswith("text/event-stream")
            body = "(an event stream)" if streaming else await resp.text()  # a stream never ends: never read it
            resp.close()
            pytest.fail(f"{method} {path}: {resp.status}, expected {status}: {body}")
        await conforms(self.doc, resp, template, method.lower())
        self.seen.add((method.lower(), template, status))
        return resp


def test_the_paths_table_matches_the_router_both_ways(oa_config, state):
    app = create_app(oa_config, state=state, run_feeds=False)
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    gets = {path for method, path in routes if method == "get"}
    # HEAD is answered wherever GET is (aiohttp adds it), and the description says so once.
    routes = {(m, p) for m, p in routes if not (m == "head" and p in gets)}
    described = {(m, p) for p, ops in openapi.PATHS.items() for m in ops}
    assert routes - described == set(), "routes without a description: add them to PATHS in ldf_server/http/openapi.py"
    assert described - routes == set(), "described operations that no route serves"


async def test_the_document_is_valid_openapi_3_1_built_from_the_configuration(oa_client):
    doc = await fetch_doc(oa_client)
    OpenAPIV31SpecValidator(doc).validate()
    assert doc["openapi"].startswith("3.1.")
    assert doc["servers"] == [{"url": BASE, "description": doc["servers"][0]["description"]}]
    params = doc["components"]["parameters"]
    assert params["ds"]["schema"]["enum"] == ["crowds", "parking"]
    assert params["pushDataset"]["schema"]["enum"] == ["crowds"]
    assert params["source"]["schema"]["enum"] == ["counters"]
    # Path parameters are declared for every {name} in a path, with the router's patterns.
    for path, ops in doc["paths"].items():
        for op in ops.values():
            declared = {resolve(doc, p)["name"] for p in op.get("parameters", []) if resolve(doc, p)["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), path
            assert all(re.fullmatch(r"[1-5][0-9][0-9]", s) for s in op["responses"]), path
    day = params["day"]["schema"]["pattern"]
    assert re.search(day, "2026-03-31") and not re.search(day, "2026-3-31")


async def test_served_once_with_an_etag_and_negotiated(oa_client):
    first = await oa_client.get("/openapi.json", headers={"Accept-Encoding": "identity"})
    assert first.headers["Content-Type"] == "application/json"
    assert "max-age=" in first.headers["Cache-Control"] and "Accept" in first.headers["Vary"]
    etag = first.headers["ETag"]
    again = await oa_client.get("/openapi.json", headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert again.status == 304 and again.headers["ETag"] == etag
    typed = await oa_client.get("/openapi.json", headers={"Accept": "application/openapi+json", "Accept-Encoding": "identity"})
    assert typed.headers["Content-Type"] == "application/openapi+json"
    assert typed.headers["ETag"] == etag and await typed.read() == await first.read()
    refused = await oa_client.get("/openapi.json", headers={"Accept": "text/turtle"})
    assert refused.status == 406 and refused.headers["Content-Type"].startswith("application/problem+json")


async def test_the_catalog_links_to_the_description(oa_client):
    resp = await oa_client.get("/")
    link = resp.headers["Link"]
    assert link.startswith(f"<{BASE}/openapi.json>") and 'rel="service-desc"' in link
    assert (await oa_client.get(link[1:link.index(">")].removeprefix(BASE))).status == 200

    turtle = await oa_client.get("/", headers={"Accept": "text/turtle"})
    g = rdflib.Graph().parse(data=await turtle.read(), format="turtle")
    services = set(g.subjects(RDF.type, rdflib.URIRef(DCAT + "DataService")))
    assert len(services) == 5  # LDES and TPF per dataset, TPF over all
    for service in services:
        assert g.value(service, rdflib.URIRef(DCAT + "endpointDescription")) == rdflib.URIRef(f"{BASE}/openapi.json"), service


async def test_real_answers_of_every_operation_conform(oa_client, clock):
    doc = await fetch_doc(oa_client)
    r = Recorder(oa_client, doc)
    await r.check("GET", "/", 200, "/")
    await r.check("GET", "/", 200, "/", headers={"Accept": "text/turtle"})
    await r.check("GET", "/", 406, "/", headers={"Accept": "image/png"})
    await r.check("GET", "/context.jsonld", 200, "/context.jsonld")
    await r.check("GET", "/openapi.json", 200, "/openapi.json")
    await r.check("GET", "/health/live", 200, "/health/live")
    await r.check("GET", "/health/ready", 200, "/health/ready")
    await r.check("GET", "/metrics", 200, "/metrics")
    for ds in ("parking", "crowds"):
        await r.check("GET", f"/{ds}", 200, "/{ds}")
        root = await r.check("GET", f"/{ds}", 200, "/{ds}", headers={"Accept": "application/n-quads"})
        await r.check("GET", f"/{ds}", 304, "/{ds}", headers={"If-None-Match": root.headers["ETag"],
                                                               "Accept": "application/n-quads"})
        await r.check("GET", f"/{ds}/view", 200, "/{ds}/view")
        moved = await r.check("GET", f"/{ds}/view?time=2026-03-31T11:01:00Z", 302, "/{ds}/view")
        window = moved.headers["Location"].removeprefix(BASE)
        await r.check("GET", window, 200, "/{ds}/windows/{start}")
        await r.check("GET", window, 200, "/{ds}/windows/{start}", headers={"Accept": "application/trig"})
        await r.check("GET", window.replace("T11:00:00Z", "T11:00:00.000Z"), 301, "/{ds}/windows/{start}")
        await r.check("GET", f"/{ds}/days/2026-03-31", 200, "/{ds}/days/{day}")
        await r.check("GET", f"/{ds}/days/2026-02-30", 404, "/{ds}/days/{day}")
        await r.check("GET", f"/{ds}/days/2025-03-31", 404, "/{ds}/days/{day}")  # before the stream starts
        await r.check("GET", f"/{ds}/latest", 200, "/{ds}/latest")
        await r.check("GET", f"/{ds}/shape", 200, "/{ds}/shape", headers={"Accept": "text/turtle"})
        await r.check("GET", f"/{ds}/tpf", 200, "/{ds}/tpf")
        await r.check("GET", f"/{ds}/tpf?page=2x", 400, "/{ds}/tpf")
    await r.check("GET", "/parking/view?time=tomorrow", 400, "/{ds}/view")
    await r.check("GET", "/nothing/latest", 404, "/{ds}/latest")
    await r.check("GET", "/parking/latest", 406, "/{ds}/latest", headers={"Accept": "text/csv"})
    latest = await (await oa_client.get("/parking/latest")).json(content_type=None)
    site = latest["sites"][0]["@id"].removeprefix(BASE)
    await r.check("GET", site, 200, "/{ds}/sites/{key}")
    await r.check("GET", "/parking/sites/nowhere/none", 404, "/{ds}/sites/{key}")
    page = await (await oa_client.get(window)).json(content_type=None)
    member = next(n for n in page["@graph"] if "member" in n)["member"][0]["@id"].removeprefix(BASE)
    seen_at = await r.check("GET", member, 303, "/{ds}/members/{key}")
    assert seen_at.headers["Location"].removeprefix(BASE) == window
    await r.check("GET", member.replace(":00Z", ":01Z"), 404, "/{ds}/members/{key}")
    await r.check("GET", "/tpf?subject=%3Fs&predicate=http%3A%2F%2Fpurl.org%2Fdc%2Fterms%2FisVersionOf", 200, "/tpf")
    await r.check("GET", "/tpf?v=gone&page=2", 410, "/tpf")

    events = await oa_client.get("/parking/events", headers={"Last-Event-ID": "0"})
    assert events.status == 200 and events.headers["Content-Type"].startswith("text/event-stream")
    operation = doc["paths"]["/{ds}/events"]["get"]["responses"]["200"]
    assert "text/event-stream" in operation["content"] and "Cache-Control" in events.headers
    events.close()
    await r.check("GET", "/parking/events", 400, "/{ds}/events", headers={"Last-Event-ID": "yesterday"})
    await r.check("GET", "/parking/events?lastEventId=-1", 400, "/{ds}/events")
    # Found by schemathesis: an empty header made a malformed query parameter be ignored.
    await r.check("GET", "/parking/events?lastEventId=%C2%84", 400, "/{ds}/events", headers={"Last-Event-ID": ""})

    push = "/crowds/push/counters"
    auth = {"Authorization": f"Bearer {KEY}"}
    record = {"site": "gent/korenmarkt", "resultTime": "2026-03-31T12:07:00Z", "observedProperty": "people",
              "hasSimpleResult": 4}
    validate_json(doc, {"$ref": "#/components/schemas/PushBody"}, record)
    await r.check("POST", push, 200, "/{ds}/push/{source}", json=record, headers=auth)
    await r.check("POST", push, 200, "/{ds}/push/{source}", json=[record], headers={"X-API-Key": KEY})
    await r.check("POST", push, 401, "/{ds}/push/{source}", json=record)
    await r.check("POST", push, 415, "/{ds}/push/{source}", data="x", headers={**auth, "Content-Type": "text/plain"})
    await r.check("POST", push, 400, "/{ds}/push/{source}", data="{", headers={**auth, "Content-Type": "application/json"})
    await r.check("POST", push, 422, "/{ds}/push/{source}", json={**record, "hasSimpleResult": -1}, headers=auth)
    await r.check("POST", "/crowds/push/nobody", 404, "/{ds}/push/{source}", json=record, headers=auth)

    # HTML views and their assets, the daily dumps.
    page = await r.check("GET", "/parking/latest?format=html", 200, "/{ds}/latest")
    assert page.headers["Content-Type"].startswith("text/html")
    await r.check("GET", "/parking/latest?format=xml", 400, "/{ds}/latest")
    from ldf_server.html import assets

    await r.check("GET", f"/_assets/{sorted(assets.manifest())[0]}", 200, "/_assets/{name}")
    await r.check("GET", "/_assets/..%2Fsecrets", 404, "/_assets/{name}")
    await r.check("GET", "/parking/dumps", 301, "/{ds}/dumps")
    await r.check("GET", "/parking/dumps/", 200, "/{ds}/dumps/")
    await r.check("GET", "/parking/dumps/yesterday.nq.gz", 400, "/{ds}/dumps/{name}")
    await r.check("GET", "/parking/dumps/2026-03-31.nq.gz", 409, "/{ds}/dumps/{name}")
    await r.check("GET", "/parking/dumps/2026-03-30.nq.gz", 404, "/{ds}/dumps/{name}")
    clock.advance(86_400)  # the day is over: its dump exists
    dump = await r.check("GET", "/parking/dumps/2026-03-31.nq.gz", 200, "/{ds}/dumps/{name}")
    assert dump.headers["Content-Type"] == "application/gzip" and "attachment" in dump.headers["Content-Disposition"]

    # Every described operation was exercised, and answered with a documented 200 at least once.
    operations = {(m, p) for p, ops in doc["paths"].items() for m in ops} - {("get", "/{ds}/events")}
    operations -= {("get", "/{ds}/dumps"), ("get", "/{ds}/members/{key}")}  # only ever redirects, checked above
    assert {(m, p) for m, p, s in r.seen if s == 200} == operations
