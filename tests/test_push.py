"""Push ingestion: authentication, every kind of bad input, idempotence, and what gets published."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from ldf_server.app import build_state, create_app
from ldf_server.timeutil import format_instant
from tests.support.seeding import BASE, make_config, parking_dataset

KEY_A = "key-of-counters-a"
KEY_B = "key-of-counters-b"
KEY_P = "key-of-the-garage"


def crowd_dataset():
    return parking_dataset(id="crowds", pilot="crowdedness", title={"en": "Crowds"}, description={"en": "People counts"})


@pytest.fixture
def push_config():
    return make_config(
        datasets=[parking_dataset(), crowd_dataset()],
        feeds=[],
        push=[
            {"id": "counters-a", "dataset": "crowds", "key_sha256": hashlib.sha256(KEY_A.encode()).hexdigest(),
             "sites": [{"key": "gent/korenmarkt", "label": "Korenmarkt", "lat": 51.0547, "lon": 3.7219},
                       {"key": "gent/graslei", "label": "Graslei"}],
             "max_records": 50},
            {"id": "counters-b", "dataset": "crowds", "key_env": "TEST_KEY_B",
             "sites": [{"key": "gent/sint-baafsplein", "label": "Sint-Baafsplein"}]},
            {"id": "garage", "dataset": "parking", "key_env": "TEST_KEY_P",
             "sites": [{"key": "gent/p7", "label": "Sint-Michiels", "iri": "https://stad.gent/id/parking/P7", "capacity": 450}]},
        ],
        max_push_body=4096,
    )


@pytest.fixture
async def push_client(aiohttp_client, push_config, clock):
    state = build_state(push_config, clock=clock, env={"TEST_KEY_B": KEY_B, "TEST_KEY_P": KEY_P})
    app = create_app(push_config, state=state, run_feeds=False)
    client = await aiohttp_client(app)
    client.state = state
    return client


def now_iso(clock, offset_s: float = 0) -> str:
    return format_instant(int((clock.now + offset_s) * 1000) // 1000 * 1000)


def count(clock, site="gent/korenmarkt", n=12, offset=-30, **extra):
    return {"site": site, "resultTime": now_iso(clock, offset), "observedProperty": "people", "hasSimpleResult": n, **extra}


async def post(client, path, body, *, key=KEY_A, content_type="application/json", headers=None):
    h = {"Content-Type": content_type, **(headers or {})}
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(path, data=data, headers=h)


async def problem(resp, status):
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    return await resp.json(content_type=None)


async def test_pushed_observation_appears_in_latest_and_in_the_stream(push_client, clock):
    resp = await post(push_client, "/crowds/push/counters-a", count(clock, n=17, start=now_iso(clock, -90), end=now_iso(clock, -30)))
    assert resp.status == 200, await resp.text()
    assert (await resp.json()) == {"accepted": 1, "duplicates": 0, "records": 1}
    latest = await (await push_client.get("/crowds/latest")).json(content_type=None)
    korenmarkt = next(s for s in latest["sites"] if s["label"] == "Korenmarkt")
    [obs] = korenmarkt["latestObservations"]
    assert obs["hasSimpleResult"] == 17 and obs["observedProperty"] == "people"
    assert obs["resultTime"] == now_iso(clock, -30)
    page = await push_client.get("/crowds/view", params={"time": now_iso(clock, -30)}, allow_redirects=False)
    doc = await (await push_client.get(page.headers["Location"].removeprefix(BASE))).json(content_type=None)
    members = next(n for n in doc["@graph"] if n["@type"] == "EventStream")["member"]
    assert [m["hasSimpleResult"] for m in members] == [17]
    assert members[0]["hasFeatureOfInterest"] == f"{BASE}/crowds/sites/gent/korenmarkt"
    assert members[0]["phenomenonTime"]["hasBeginning"]["inXSDDateTimeStamp"] == now_iso(clock, -90)


async def test_resending_is_harmless(push_client, clock):
    batch = [count(clock, n=5), count(clock, site="gent/graslei", n=7)]
    first = await (await post(push_client, "/crowds/push/counters-a", batch)).json()
    again = await (await post(push_client, "/crowds/push/counters-a", batch)).json()
    assert first["accepted"] == 2 and again == {"accepted": 0, "duplicates": 2, "records": 2}
    assert push_client.state.streams["crowds"].store.member_count == 2


async def test_json_ld_with_site_iris(push_client, clock):
    body = {
        "@context": f"{BASE}/context.jsonld",
        "@graph": [{"@type": "Observation", "hasFeatureOfInterest": f"{BASE}/crowds/sites/gent/graslei",
                    "observedProperty": "people", "hasSimpleResult": 3, "resultTime": now_iso(clock, -10)}],
    }
    resp = await post(push_client, "/crowds/push/counters-a", body, content_type="application/ld+json")
    assert resp.status == 200, await resp.text()
    assert push_client.state.streams["crowds"].store.newest("gent/graslei", "people").values["hasSimpleResult"] == 3


async def test_parking_push_by_city_iri(push_client, clock):
    record = {"isVersionOf": "https://stad.gent/id/parking/P7", "observedAt": now_iso(clock, -5), "vacantSpaces": 120}
    resp = await post(push_client, "/parking/push/garage", record, key=KEY_P)
    assert resp.status == 200, await resp.text()
    latest = await (await push_client.get("/parking/latest")).json(content_type=None)
    assert latest["sites"][0]["latestVersion"]["vacantSpaces"] == 120


async def test_401_without_a_key_or_with_a_wrong_one(push_client, clock):
    body = await problem(await post(push_client, "/crowds/push/counters-a", count(clock), key=None), 401)
    assert "Bearer" in body["detail"]
    resp = await post(push_client, "/crowds/push/counters-a", count(clock), key="guess")
    await problem(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert push_client.state.streams["crowds"].store.member_count == 0


async def test_x_api_key_header_works(push_client, clock):
    resp = await post(push_client, "/crowds/push/counters-b", count(clock, site="gent/sint-baafsplein"), key=None,
                      headers={"X-API-Key": KEY_B})
    assert resp.status == 200, await resp.text()


async def test_403_for_the_key_of_another_source(push_client, clock):
    await problem(await post(push_client, "/crowds/push/counters-a", count(clock), key=KEY_B), 403)
    await problem(await post(push_client, "/crowds/push/counters-b", count(clock, site="gent/sint-baafsplein"), key=KEY_A), 403)
    assert push_client.state.streams["crowds"].store.member_count == 0


async def test_a_source_may_only_push_for_its_own_sites(push_client, clock):
    body = await problem(await post(push_client, "/crowds/push/counters-a", count(clock, site="gent/sint-baafsplein")), 422)
    assert "not a known site" in body["errors"][0]["errors"][0]


async def test_413_over_the_size_limit(push_client, clock):
    big = [count(clock, n=i, offset=-i - 1) for i in range(200)]
    assert len(orjson.dumps(big)) > 4096
    await problem(await post(push_client, "/crowds/push/counters-a", big), 413)
    assert push_client.state.streams["crowds"].store.member_count == 0


async def test_413_for_too_many_records(aiohttp_client, push_config, clock):
    config = push_config.model_copy(update={"server": push_config.server.model_copy(update={"max_push_body": 1024 * 1024})})
    state = build_state(config, clock=clock, env={})
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    body = await problem(await post(client, "/crowds/push/counters-a", [count(clock, offset=-i - 1) for i in range(51)]), 413)
    assert "50" in body["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
async def test_415_for_a_wrong_content_type(push_client, clock, content_type):
    resp = await post(push_client, "/crowds/push/counters-a", count(clock), content_type=content_type)
    await problem(resp, 415)
    assert "application/json" in resp.headers["Accept-Post"]


async def test_422_lists_errors_per_record_and_stores_nothing(push_client, clock):
    batch = [
        count(clock, n=4),  # fine
        count(clock, n=-1),  # negative
        {"site": "gent/graslei", "resultTime": "yesterday", "observedProperty": "unicorns", "hasSimpleResult": "many"},
        count(clock, n=2, offset=3600),  # an hour in the future
        count(clock, n=2, extra_field=1),  # misspelt / unknown field
        "not an object",
    ]
    body = await problem(await post(push_client, "/crowds/push/counters-a", batch), 422)
    by_index = {e["index"]: " ".join(e["errors"]) for e in body["errors"]}
    assert sorted(by_index) == [1, 2, 3, 4, 5]
    assert "hasSimpleResult" in by_index[1]
    assert "resultTime" in by_index[2] and "observedProperty" in by_index[2] and "hasSimpleResult" in by_index[2]
    assert "future" in by_index[3]
    assert "extra_field" in by_index[4]
    assert "object" in by_index[5]
    assert push_client.state.streams["crowds"].store.member_count == 0, "all or nothing: the valid record was not stored"


async def test_refused_records_are_counted_logged_and_reported(push_client, clock, caplog):
    from tests.support.prom import scrape, value

    bad = [count(clock, n=4), count(clock, n=-1), count(clock, n=2, offset=3600), "not an object"]
    with caplog.at_level("WARNING", logger="ldf_server.http.push"):
        await problem(await post(push_client, "/crowds/push/counters-a", bad), 422)
    assert any("counters-a" in r.getMessage() and "3 invalid" in r.getMessage() for r in caplog.records)
    assert (await post(push_client, "/crowds/push/counters-a", [count(clock, n=4)])).status == 200

    samples = await scrape(push_client)
    rejected = {dict(labels)["reason"]: v for (n, labels), v in samples.items()
                if n == "ldf_feed_records_rejected_total" and dict(labels)["feed"] == "push:counters-a"}
    assert sum(rejected.values()) == 3 and len(rejected) >= 2, rejected
    assert all(len(reason) <= 60 and "'" not in reason for reason in rejected), "labels stay bounded"
    assert value(samples, "ldf_push_batches_total", feed="push:counters-a", outcome="refused") == 1
    assert value(samples, "ldf_push_batches_total", feed="push:counters-a", outcome="ok") == 1
    assert value(samples, "ldf_feed_members_added_total", feed="push:counters-a") == 1
    ready = await (await push_client.get("/health/ready")).json()
    assert ready["push"]["counters-a"]["records_rejected"] == 3
    assert ready["push"]["counters-a"]["rejected_reasons"] == rejected


@pytest.mark.parametrize("body", [b"{not json", b"", b"[" * 5000 + b"]" * 5000, b"42", b'"text"'])
async def test_malformed_bodies_are_4xx_problems(push_client, body):
    resp = await post(push_client, "/crowds/push/counters-a", body)
    assert 400 <= resp.status < 500
    assert resp.headers["Content-Type"].startswith("application/problem+json")


async def test_remote_json_ld_context_is_refused(push_client, clock):
    body = {"@context": "https://example.org/context.jsonld", **count(clock)}
    resp = await post(push_client, "/crowds/push/counters-a", body, content_type="application/ld+json")
    detail = (await problem(resp, 400))["detail"]
    assert "example.org" in detail


async def test_unknown_source_and_pilot_without_push(push_client, clock):
    await problem(await post(push_client, "/crowds/push/nobody", count(clock)), 404)
    await problem(await post(push_client, "/parking/push/counters-a", count(clock)), 404)


async def test_keys_are_never_logged(push_client, clock, caplog):
    caplog.set_level("DEBUG")
    await post(push_client, "/crowds/push/counters-a", count(clock, n=-5))
    await post(push_client, "/crowds/push/counters-a", count(clock), key=KEY_B)
    await post(push_client, "/crowds/push/counters-a", count(clock))
    assert KEY_A not in caplog.text and KEY_B not in caplog.text


async def test_resending_after_the_page_closed_is_still_harmless(push_client, clock):
    """A sensor that retries after a lost answer must not get stuck on a 422 once the page is sealed."""
    record = count(clock, n=9, offset=-30)
    first = await post(push_client, "/crowds/push/counters-a", [record])
    assert (await first.json())["accepted"] == 1
    clock.advance(3 * 3600)
    found = await push_client.get("/crowds/view", params={"time": record["resultTime"]}, allow_redirects=False)
    page = await push_client.get(found.headers["Location"].removeprefix(BASE))
    assert page.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    newer = count(clock, n=10, offset=-30)
    again = await post(push_client, "/crowds/push/counters-a", [record, newer])
    assert again.status == 200, await again.text()
    assert await again.json() == {"accepted": 1, "duplicates": 1, "records": 2}
    late = count(clock, site="gent/graslei", n=1, offset=-3 * 3600)  # new, but its page is sealed
    body = await problem(await post(push_client, "/crowds/push/counters-a", [late]), 422)
    assert "immutable" in body["errors"][0]["errors"][0]


async def test_browsers_may_push_after_a_cors_preflight(push_client):
    pre = await push_client.options("/crowds/push/counters-a", headers={
        "Origin": "https://console.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert pre.status == 204
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    allowed = pre.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed and "x-api-key" in allowed


async def test_json_ld_compaction_does_not_stop_the_server_from_answering(push_client, clock, monkeypatch):
    """pyld is pure Python and slow on large bodies: while it works, other clients are served."""
    import asyncio
    import threading

    from ldf_server.adapters import push as push_adapter

    release = threading.Event()
    real_compact = push_adapter.jsonld.compact

    def slow_compact(*args, **kwargs):  # type: ignore[no-untyped-def]
        release.wait(5)  # a blocked event loop could never release it: then this times out
        return real_compact(*args, **kwargs)

    monkeypatch.setattr(push_adapter.jsonld, "compact", slow_compact)
    body = {"@context": f"{BASE}/context.jsonld",
            "@graph": [{"@type": "Observation", "hasFeatureOfInterest": f"{BASE}/crowds/sites/gent/graslei",
                        "observedProperty": "people", "hasSimpleResult": 4, "resultTime": now_iso(clock, -10)}]}
    pushing = asyncio.create_task(post(push_client, "/crowds/push/counters-a", body, content_type="application/ld+json"))
    await asyncio.sleep(0.05)
    live = await push_client.get("/health/live")
    assert live.status == 200
    assert not pushing.done(), "the push answered before compaction was released"
    release.set()
    resp = await pushing
    assert resp.status == 200, await resp.text()
