"""The Telraam adapter: hourly counts per road segment, from the parser to the served stream.

Expectations are computed here from the fixtures (tests/fixtures/telraam/), with a mapping
written independently of the adapter: Telraam's ``pedestrian``/``bike``/``car``/``heavy``
and their ``_lft``/``_rgt`` directions, ``date`` the start of the hour in UTC.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
import rdflib
from aiohttp import web

from ldf_server.adapters.base import PayloadError
from ldf_server.adapters.poller import Poller
from ldf_server.adapters.registry import create_adapter, validate_options
from ldf_server.adapters.telraam import parse_traffic_report
from ldf_server.app import build_state, create_app
from ldf_server.config import FeedConfig
from ldf_server.store.ingest import ingest
from ldf_server.store.memory import DatasetStore
from tests.support.clock import FakeClock
from tests.support.crawl import every_document
from tests.support.rdfcheck import pyld_graph
from tests.support.stream_checks import TREE, assert_valid_documents, window_members
from tests.support.seeding import BASE, make_config

FIXTURES = Path(__file__).parent / "fixtures" / "telraam"
SOSA = rdflib.Namespace("http://www.w3.org/ns/sosa/")
TIME = rdflib.Namespace("http://www.w3.org/2006/time#")
LDFS = rdflib.Namespace("https://w3id.org/ldf-server/ns#")
XSD = rdflib.Namespace("http://www.w3.org/2001/XMLSchema#")

# Telraam field → observed property, as ldf-server's vocabulary names them.
KINDS = {"pedestrian": "pedestrians", "bike": "cyclists", "car": "cars", "heavy": "heavyVehicles"}
KEY_ENV = "LDF_TEST_TELRAAM_KEY"
SECRET = "t3lraam-s3cret-never-logged"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def records(name: str) -> list[dict]:
    return json.loads(fixture(name))["report"]


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_counts(recs: list[dict], min_uptime: float = 0.5) -> set[tuple]:
    """(segment, series, property, direction, count, begin, end, result time, uptime, reliable) per count."""
    out = set()
    for r in recs:
        start = datetime.fromisoformat(r["date"].replace("Z", "+00:00"))
        end = start + timedelta(hours=1)
        for field, prop in KINDS.items():
            for direction in (None, "lft", "rgt"):
                name = field if direction is None else f"{field}_{direction}"
                series = prop if direction is None else f"{prop}-{direction}"
                out.add((r["segment_id"], series, prop, direction, round(float(r[name]), 3),
                         iso(start), iso(end), iso(end), float(r["uptime"]), r["uptime"] >= min_uptime))
    return out


def parsed_counts(batch) -> set[tuple]:
    out = set()
    for m in batch.members:
        v = m.values
        pt = v["phenomenonTime"]
        out.add((int(m.site.removeprefix("telraam/")), m.series, v["observedProperty"], v.get("direction"),
                 v["hasSimpleResult"], pt["hasBeginning"]["inXSDDateTimeStamp"], pt["hasEnd"]["inXSDDateTimeStamp"],
                 iso(datetime.fromtimestamp(m.time / 1000, timezone.utc)), v["uptime"], v["reliable"]))
    return out


# -- the pure parser ------------------------------------------------------------------

def test_every_hour_gives_a_total_and_two_directions_per_kind_of_road_user():
    batch = parse_traffic_report(fixture("telraam_traffic_report.json"))
    recs = records("telraam_traffic_report.json")
    assert batch.problems == []
    assert len(batch.members) == 12 * len(recs) == 24
    assert parsed_counts(batch) == expected_counts(recs)
    # Every member is a SOSA observation of one property; series tell the twelve apart.
    assert all(m.values["@type"] == "Observation" for m in batch.members)
    assert len({m.key for m in batch.members}) == 24


def test_date_is_the_start_of_the_hour_and_the_result_is_at_its_end():
    batch = parse_traffic_report(fixture("telraam_traffic_report.json"))
    first = records("telraam_traffic_report.json")[0]
    assert first["date"] == "2020-10-30T07:00:00.000Z"
    cars = next(m for m in batch.members if m.series == "cars" and m.time == min(x.time for x in batch.members))
    assert cars.values["phenomenonTime"]["hasBeginning"]["inXSDDateTimeStamp"] == "2020-10-30T07:00:00Z"
    assert cars.values["phenomenonTime"]["hasEnd"]["inXSDDateTimeStamp"] == "2020-10-30T08:00:00Z"
    assert iso(datetime.fromtimestamp(cars.time / 1000, timezone.utc)) == "2020-10-30T08:00:00Z"
    assert cars.values["hasSimpleResult"] == round(first["car"], 3) == 619.178


def test_counts_stay_floats_scaled_by_uptime():
    batch = parse_traffic_report(fixture("telraam_traffic_report.json"))
    first = records("telraam_traffic_report.json")[0]
    by_series = {m.series: m.values["hasSimpleResult"] for m in batch.members if m.values["uptime"] == first["uptime"]}
    assert by_series["pedestrians-lft"] == round(first["pedestrian_lft"], 3) == 41.096
    assert by_series["cyclists-rgt"] == round(first["bike_rgt"], 3) == 106.849
    assert all(isinstance(m.values["hasSimpleResult"], float) for m in batch.members)
    directions = {m.series: m.values.get("direction") for m in batch.members}
    assert directions["heavyVehicles"] is None and "direction" not in next(
        m.values for m in batch.members if m.series == "heavyVehicles")
    assert directions["heavyVehicles-lft"] == "lft" and directions["heavyVehicles-rgt"] == "rgt"


def test_an_hour_the_camera_was_down_is_published_as_unreliable_not_dropped():
    batch = parse_traffic_report(fixture("telraam_traffic_report.json"))
    down = records("telraam_traffic_report.json")[1]
    assert down["uptime"] == 0.0
    end = datetime.fromisoformat(down["date"].replace("Z", "+00:00")) + timedelta(hours=1)
    hour = [m for m in batch.members if m.time == int(end.timestamp() * 1000)]
    assert len(hour) == 12
    assert {m.values["reliable"] for m in hour} == {False}
    assert {m.values["uptime"] for m in hour} == {0.0}
    assert {m.values["hasSimpleResult"] for m in hour} == {0.0}
    up = [m for m in batch.members if m not in hour]
    assert {m.values["reliable"] for m in up} == {True}  # uptime 0.73 >= 0.5


def test_min_uptime_sets_the_reliability_threshold():
    recs = records("telraam_traffic_report.json")
    strict = parse_traffic_report(fixture("telraam_traffic_report.json"), min_uptime=0.8)
    assert parsed_counts(strict) == expected_counts(recs, min_uptime=0.8)
    assert {m.values["reliable"] for m in strict.members} == {False}
    lax = parse_traffic_report(fixture("telraam_traffic_report.json"), min_uptime=0.0)
    assert {m.values["reliable"] for m in lax.members} == {True}


def test_one_site_per_segment_labelled_from_the_options():
    batch = parse_traffic_report(fixture("t2.json"), segments={348917: "Sint-Pietersnieuwstraat"})
    segments = sorted({r["segment_id"] for r in records("t2.json")})
    assert len(segments) == 2
    assert [(s.key, s.label) for s in sorted(batch.sites, key=lambda s: s.key)] == sorted(
        [("telraam/348917", "Sint-Pietersnieuwstraat"), (f"telraam/{segments[1]}", f"Telraam segment {segments[1]}")])
    assert parsed_counts(batch) == expected_counts(records("t2.json"))


def test_records_of_another_interval_or_with_missing_fields_are_skipped_with_a_problem():
    recs = records("mixed_bad_records.json")
    batch = parse_traffic_report(fixture("mixed_bad_records.json"))
    good = [r for r in recs if r["interval"] == "hourly" and "uptime" in r and "bike_rgt" in r
            and isinstance(r["car"], (int, float))]
    assert len(good) == 1
    assert parsed_counts(batch) == expected_counts(good)
    assert len(batch.problems) == 4
    text = " | ".join(batch.problems)
    for word in ("'daily'", "bike_rgt", "uptime", "car is not a number"):
        assert word in text, (word, text)


@pytest.mark.parametrize("name, words", [
    ("truncated.json", "not JSON"),
    ("report_not_list.json", "no 'report' list"),
    ("reports_renamed.json", "no 'report' list"),
    ("all_records_bad.json", "no report could be read"),
])
def test_payloads_that_are_not_a_traffic_report_are_payload_errors(name, words):
    with pytest.raises(PayloadError, match=words):
        parse_traffic_report(fixture(name))


def test_a_negative_count_is_refused_by_the_pilot_and_the_rest_of_the_hour_kept():
    rec = records("negative_count.json")[0]
    negative = [k for k, v in rec.items() if isinstance(v, float) and v < 0]
    assert negative == ["car_lft"]
    store = DatasetStore("traffic", 3600 * 1000, pilot="crowdedness", clock=FakeClock("2020-10-30T12:00:00Z"))
    result = ingest(store, parse_traffic_report(fixture("negative_count.json")), source="test")
    assert result.rejected == {"negative count": 1}
    assert result.added == 11
    assert store.newest("telraam/348917", "cars-lft") is None
    assert store.newest("telraam/348917", "cars-rgt").values["hasSimpleResult"] == round(rec["car_rgt"], 3)


def test_options_are_validated():
    def problems(options: dict) -> list[str]:
        return validate_options(FeedConfig(id="t", adapter="telraam-traffic", dataset="traffic", options=options))

    assert problems({"url": "https://telraam-api.net/v1/reports/traffic"}) == []
    assert problems({"url": "https://x.test/r", "segments": {"348917": "Kerkstraat"}, "min_uptime": 0.3}) == []
    assert any(p.startswith("options.min_uptime") for p in problems({"url": "https://x.test/r", "min_uptime": 1.5}))
    assert any(p.startswith("options.api_key") for p in problems({"url": "https://x.test/r", "api_key": "secret"}))
    assert any(p.startswith("options.url") for p in problems({"url": "ftp://x.test/r"}))
    assert any(p.startswith("options.api_key_env") for p in problems({"url": "https://x.test/r", "api_key_env": "not a name"}))


# -- end to end: a fake Telraam on 127.0.0.1, the poller, the served stream ----------------

class FakeTelraam:
    def __init__(self) -> None:
        self.body = b""
        self.keys: list[str | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.keys.append(request.headers.get("X-Api-Key"))
        return web.Response(body=self.body, content_type="application/json")


async def fake_sleep(seconds: float) -> None:
    fake_sleep.calls.append(seconds)  # type: ignore[attr-defined]


fake_sleep.calls = []  # type: ignore[attr-defined]


def traffic_config(url: str):
    dataset = {
        "id": "traffic", "pilot": "crowdedness",
        "title": {"en": "Road users counted", "nl": "Getelde weggebruikers"},
        "description": {"en": "Telraam hourly counts", "nl": "Telraam-tellingen per uur"},
        "licence": "cc0", "window": "1h", "grace": "10m", "retention": "7d",
    }
    feed = {"id": "telraam", "adapter": "telraam-traffic", "dataset": "traffic", "interval": "5m",
            "retries": 1, "backoff": "1s",
            "options": {"url": url, "api_key_env": KEY_ENV, "segments": {"348917": "Sint-Pietersnieuwstraat"}}}
    return make_config(datasets=[dataset], feeds=[feed])


def instant(literal) -> str:
    """A date-time literal in the form the expectations use (rdflib may write +00:00 for Z)."""
    return iso(datetime.fromisoformat(str(literal).replace("Z", "+00:00")))


def served_counts(graph: rdflib.Graph, members) -> set[tuple]:
    out = set()
    for m in members:
        pt = graph.value(m, SOSA.phenomenonTime)
        site = str(graph.value(m, SOSA.hasFeatureOfInterest))
        direction = graph.value(m, LDFS.direction)
        out.add((
            int(site.rsplit("/", 1)[1]),
            str(m).split("/")[-2],  # the series, in the member IRI
            str(graph.value(m, SOSA.observedProperty)).removeprefix(str(LDFS)),
            None if direction is None else str(direction),
            float(graph.value(m, SOSA.hasSimpleResult).toPython()),
            instant(graph.value(graph.value(pt, TIME.hasBeginning), TIME.inXSDDateTimeStamp)),
            instant(graph.value(graph.value(pt, TIME.hasEnd), TIME.inXSDDateTimeStamp)),
            instant(graph.value(m, SOSA.resultTime)),
            float(graph.value(m, LDFS.uptime).toPython()),
            graph.value(m, LDFS.reliable).toPython(),
        ))
    return out


async def test_telraam_feed_end_to_end(aiohttp_server, aiohttp_client, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(KEY_ENV, SECRET)
    upstream = FakeTelraam()
    app = web.Application()
    app.router.add_get("/v1/reports/traffic", upstream.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    config = traffic_config(str(server.make_url("/v1/reports/traffic")))
    clock = FakeClock("2020-10-30T09:05:00Z")
    state = build_state(config, clock=clock)
    store = state.streams["traffic"].store
    poller = Poller(create_adapter(config.feeds[0]), store, clock=clock, sleep=fake_sleep)

    first, second = records("telraam_traffic_report.json"), records("t2.json")
    new = [r for r in second if r not in first]
    assert len(new) == 2 and len(second) == len(first) + len(new)
    async with aiohttp.ClientSession() as session:
        upstream.body = fixture("telraam_traffic_report.json")
        one = await poller.poll_once(session)
        assert one is not None and (one.added, one.rejected_total) == (12 * len(first), 0)
        clock.set("2020-10-30T10:05:00Z")
        upstream.body = fixture("t2.json")
        two = await poller.poll_once(session)
        assert two is not None and (two.added, two.duplicates) == (12 * len(new), 12 * len(first))

    # The key went to Telraam, and nowhere else.
    assert upstream.keys == [SECRET, SECRET]
    assert SECRET not in caplog.text
    assert SECRET not in json.dumps(poller.status.as_json(clock()))

    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    expected = expected_counts(second)

    # latest: per segment, the counts of its newest hour.
    latest = await (await client.get("/traffic/latest")).json(content_type=None)
    assert latest["totalItems"] == 2
    by_site = {s["@id"]: s for s in latest["sites"]}
    assert by_site[f"{BASE}/traffic/sites/telraam/348917"]["label"] == "Sint-Pietersnieuwstraat"
    for segment in {r["segment_id"] for r in second}:
        newest = max((r for r in second if r["segment_id"] == segment), key=lambda r: r["date"])
        node = by_site[f"{BASE}/traffic/sites/telraam/{segment}"]
        got = {(o["observedProperty"], o.get("direction"), o["hasSimpleResult"], o["resultTime"], o["reliable"])
               for o in node["latestObservations"]}
        want = {(e[2], e[3], e[4], e[7], e[9]) for e in expected_counts([newest])}
        assert got == want and len(got) == 12

    # The window pages hold exactly the fixtures' counts, each in the page of its result time.
    docs = await every_document(client, "traffic")
    assert any(p.startswith("/traffic/sites/") for p in docs)
    graph, members = window_members(docs, "traffic")
    assert served_counts(graph, members) == expected
    for path, body in docs.items():
        if "/traffic/windows/" not in path:
            continue
        start = datetime.fromisoformat(path.rsplit("/", 1)[1].replace("Z", "+00:00"))
        page = rdflib.Graph().parse(data=body, format="json-ld")
        for m in page.objects(rdflib.URIRef(f"{BASE}/traffic"), TREE.member):
            result = datetime.fromisoformat(str(page.value(m, SOSA.resultTime)).replace("Z", "+00:00"))
            assert start <= result < start + timedelta(hours=1), (path, m)
    # The uptime-0 hour is served, flagged unreliable.
    down = [e for e in expected if e[8] == 0.0]
    assert len(down) == 12 and all(e[9] is False for e in down)
    # Every count is an xsd:double for every JSON-LD processor, whole (0.0) or not (619.178): a
    # spec-conformant processor (pyld) reads an untyped 0.0 as xsd:integer 0, rdflib as xsd:double.
    for path, body in docs.items():
        if path.startswith("/traffic/windows/") or path == "/traffic/latest":
            by_pyld = pyld_graph(json.loads(body))
            counts = list(by_pyld.objects(None, SOSA.hasSimpleResult))
            assert counts and {c.datatype for c in counts} == {XSD.double}, path

    assert_valid_documents("traffic", docs, expected_members=len(expected))


async def test_a_broken_upstream_never_stops_the_feed(aiohttp_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    upstream = FakeTelraam()
    app = web.Application()
    app.router.add_get("/v1/reports/traffic", upstream.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    config = traffic_config(str(server.make_url("/v1/reports/traffic")))
    clock = FakeClock("2020-10-30T12:00:00Z")
    state = build_state(config, clock=clock)
    store = state.streams["traffic"].store
    fake_sleep.calls.clear()  # type: ignore[attr-defined]
    poller = Poller(create_adapter(config.feeds[0]), store, clock=clock, sleep=fake_sleep)
    async with aiohttp.ClientSession() as session:
        upstream.body = fixture("truncated.json")
        assert await poller.poll_once(session) is None
        assert poller.status.last_error.startswith("PayloadError: not JSON")
        assert len(fake_sleep.calls) == config.feeds[0].retries  # type: ignore[attr-defined]
        upstream.body = fixture("reports_renamed.json")
        assert await poller.poll_once(session) is None
        assert poller.status.polls_failed == 2 and store.member_count == 0

        upstream.body = fixture("negative_count.json")
        result = await poller.poll_once(session)
        assert result is not None and result.added == 11
        assert poller.status.rejected_reasons == {"negative count": 1}

        monkeypatch.delenv(KEY_ENV)
        assert await poller.poll_once(session) is None
        assert poller.status.last_error == f"FeedError: environment variable {KEY_ENV} is not set"
    assert upstream.keys.count(None) == 0  # never asked Telraam without the key


async def test_real_api_mode_posts_a_segment_and_time_range(aiohttp_server, monkeypatch):
    """With `segment` set, the adapter asks the way the real Telraam API wants: a POST."""
    from datetime import datetime

    import aiohttp
    from aiohttp import web

    from ldf_server.adapters.registry import create_adapter
    from ldf_server.config import FeedConfig

    seen = []

    async def report(request):
        seen.append((request.method, await request.json(), request.headers.get("X-Api-Key")))
        return web.json_response({"report": []})

    app = web.Application()
    app.router.add_post("/v1/reports/traffic", report)
    server = await aiohttp_server(app)
    monkeypatch.setenv("TEST_TELRAAM_KEY", "k-123")
    adapter = create_adapter(FeedConfig(id="t", adapter="telraam-traffic", dataset="traffic", options={
        "url": str(server.make_url("/v1/reports/traffic")), "segment": 348917, "lookback": "3h",
        "api_key_env": "TEST_TELRAAM_KEY"}))
    async with aiohttp.ClientSession() as session:
        await adapter.fetch(session)
    [(method, body, key)] = seen
    assert method == "POST" and key == "k-123"
    assert body["id"] == "348917" and body["level"] == "segments" and body["format"] == "per-hour"
    start = datetime.strptime(body["time_start"], "%Y-%m-%d %H:%M:%SZ")
    end = datetime.strptime(body["time_end"], "%Y-%m-%d %H:%M:%SZ")
    assert (end - start).total_seconds() == 3 * 3600
