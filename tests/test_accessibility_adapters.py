"""The accessibility adapters (CSV export, 2018 pilot JSON-LD): parsers, corrected IRIs, and the served stream.

Expectations are computed here from the fixtures (tests/fixtures/accessibility/) with
``csv``/``json`` and a mapping written independently of the adapters.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest
import rdflib
from aiohttp import web
from pyld import jsonld

from ldf_server.adapters.accessibility_csv import parse_accessibility_csv
from ldf_server.adapters.accessibility_jsonld import parse_accessibility_jsonld
from ldf_server.adapters.base import FeedError, PayloadError
from ldf_server.adapters.poller import Poller
from ldf_server.adapters.registry import create_adapter, validate_options
from ldf_server.app import build_state, create_app
from ldf_server.config import FeedConfig
from tests.support.clock import FakeClock
from tests.support.crawl import every_document
from tests.support.stream_checks import assert_valid_documents, window_members
from tests.support.seeding import BASE, make_config

FIXTURES = Path(__file__).parent / "fixtures" / "accessibility"
WA = rdflib.Namespace("http://semweb.mmlab.be/ns/wa#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
LDFS = rdflib.Namespace("https://w3id.org/ldf-server/ns#")

VERDICT_TERMS = {"PLUS": "accessible", "PLMN": "accessibleWithHelp", "MIN": "notAccessible"}
WIDTH_COLUMNS = {"entranceDoorWidth": "InkomdeurBreedteCm", "elevatorDoorWidth": "LiftDeurBreedteCm",
                 "toiletDoorWidth": "ToiletDeurBreedteCm"}
READ_AT = "2026-03-31T08:00:00.250Z"


MEASURES = {"entranceDoorWidth", "elevatorDoorWidth", "toiletDoorWidth", "entranceAccessibility"}


def measured(values) -> dict:  # type: ignore[no-untyped-def]
    """The measurements of a version (each version also repeats the building's name, position, address)."""
    return {k: v for k, v in values.items() if k in MEASURES}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def ms(instant: str) -> int:
    return int(datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp() * 1000)


def utc(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def words(text: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))


def rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(fixture(name).decode())))


def expected_from_row(row: dict[str, str]) -> dict:
    """What the fixture says about one building: key, IRIs, address, position, member values."""
    gebouw, adres = row["GebouwId"], row["AdresId"]
    values = {term: int(row[col]) for term, col in WIDTH_COLUMNS.items() if row[col]}
    values["entranceAccessibility"] = VERDICT_TERMS[row["O_INKD_Inkomdeur_"]]
    address = {"@type": "Address", "thoroughfare": row["AccommodatieStraat"],
               "locatorDesignator": row["AccommodatieNummer"], "postCode": row["AccommodatiePostCode"],
               "postName": row["AccommodatieGemeente"],
               "fullAddress": f"{row['AccommodatieStraat']} {row['AccommodatieNummer']}, "
                              f"{row['AccommodatiePostCode']} {row['AccommodatieGemeente']}"}
    if adres:
        address["@id"] = f"https://data.vlaanderen.be/id/adres/{adres}"
    return {
        "key": f"toevla/{gebouw}" if gebouw else f"toevla/{words(row['AccommodatieNaam'])}-{words(row['AccommodatieGemeente'])}",
        "iri": f"https://data.vlaanderen.be/id/gebouw/{gebouw}" if gebouw else None,
        "label": row["AccommodatieNaam"],
        "lat": round(float(row["Latitude"]), 7), "lon": round(float(row["Longitude"]), 7),  # about 1 cm
        "address": address,
        "modified": utc(row["LaatstGewijzigd"]),
        "values": values,
    }


# -- CSV: the pure parser -------------------------------------------------------------------

def test_csv_rows_become_buildings_with_registry_iris_and_addresses():
    batch = parse_accessibility_csv(fixture("accessibility_toevla_rows.csv"), ms(READ_AT))
    expected = {e["key"]: e for e in map(expected_from_row, rows("accessibility_toevla_rows.csv"))}
    assert batch.problems == []
    assert len(expected) == 3
    assert {"toevla/14914874", "toevla/bibliotheek-de-krook-gent", "toevla/stadhuis-mechelen-mechelen"} == set(expected)
    sites = {s.key: s for s in batch.sites}
    assert set(sites) == set(expected)
    for key, want in expected.items():
        site = sites[key]
        assert (site.label, site.iri, site.lat, site.lon) == (want["label"], want["iri"], want["lat"], want["lon"])
        assert dict(site.properties) == {"address": want["address"], "modified": want["modified"]}
    members = {m.site: m for m in batch.members}
    assert {k: measured(m.values) for k, m in members.items()} == {k: e["values"] for k, e in expected.items()}
    assert sites["toevla/14914874"].iri == "https://data.vlaanderen.be/id/gebouw/14914874"
    assert sites["toevla/14914874"].properties["address"]["@id"] == "https://data.vlaanderen.be/id/adres/1475186"
    assert "@id" not in sites["toevla/bibliotheek-de-krook-gent"].properties["address"]
    # 17 significant digits in the source; JSON-LD processors keep 16, so 7 decimals are published.
    assert sites["toevla/14914874"].lon == 3.7227842


def test_csv_empty_cells_are_omitted_and_the_member_time_is_the_read_time():
    batch = parse_accessibility_csv(fixture("accessibility_toevla_rows.csv"), ms(READ_AT))
    mechelen = next(m for m in batch.members if m.site == "toevla/stadhuis-mechelen-mechelen")
    row = next(r for r in rows("accessibility_toevla_rows.csv") if r["AccommodatieNaam"] == "Stadhuis Mechelen")
    assert row["LiftDeurBreedteCm"] == row["ToiletDeurBreedteCm"] == ""
    assert set(measured(mechelen.values)) == {"entranceDoorWidth", "entranceAccessibility"}
    assert mechelen.values["entranceAccessibility"] == "accessibleWithHelp"
    # Read at 08:00:00.250: the member is at 08:00:00 (second precision), not LaatstGewijzigd (2018).
    assert {m.time for m in batch.members} == {ms("2026-03-31T08:00:00Z")}
    assert all(m.series == "" for m in batch.members)


@pytest.mark.parametrize("name, kept, problem", [
    ("unknown_verdict.csv", 2, "unknown verdict 'PLUSMIN'"),
    ("non_numeric_width.csv", 2, "InkomdeurBreedteCm is not a width in whole centimetres: '1m20'"),
    ("ragged_rows.csv", 2, "fewer cells than columns"),
])
def test_csv_malformed_rows_are_skipped_with_a_problem(name, kept, problem):
    batch = parse_accessibility_csv(fixture(name), ms(READ_AT))
    assert len(batch.members) == len(batch.sites) == kept
    assert len(batch.problems) == 1 and problem in batch.problems[0], batch.problems
    good = {e["key"] for e in map(expected_from_row, rows("accessibility_toevla_rows.csv"))}
    assert {m.site for m in batch.members} < good


@pytest.mark.parametrize("name, message", [
    ("missing_column.csv", "missing column(s) O_INKD_Inkomdeur_"),
    ("not_csv.html", "missing column(s) AccommodatieNaam"),
    ("all_rows_bad.csv", "no row could be read"),
])
def test_csv_files_that_are_not_the_export_are_payload_errors(name, message):
    with pytest.raises(PayloadError) as info:
        parse_accessibility_csv(fixture(name), ms(READ_AT))
    assert message in str(info.value)


def test_csv_empty_or_binary_files_are_payload_errors():
    with pytest.raises(PayloadError, match="no CSV header"):
        parse_accessibility_csv(b"", ms(READ_AT))
    with pytest.raises(PayloadError, match="not UTF-8"):
        parse_accessibility_csv(b"\xff\xfe\x00A\x00c", ms(READ_AT))


def test_csv_as_a_spreadsheet_writes_it():
    """Byte order mark, a comment line, semicolons, decimal commas, a local time without offset."""
    raw = fixture("toevla_rows_excel.csv")
    assert raw.startswith(b"\xef\xbb\xbf#") and b";" in raw
    batch = parse_accessibility_csv(raw, ms(READ_AT))
    assert batch.problems == []
    [site] = batch.sites
    assert site.key == "toevla/stadhuis-mechelen-mechelen"
    assert (site.lat, site.lon) == (51.0279, 4.47833)
    assert site.properties["modified"] == "2018-06-25T08:00:00Z"  # 10:00 in Brussels in June is UTC+2


async def test_csv_bundled_demo_file_is_found_by_name_and_a_local_file_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    feed = FeedConfig(id="a11y", adapter="accessibility-csv", dataset="accessibility",
                      options={"path": "accessibility_buildings.csv"})
    adapter = create_adapter(feed)
    bundled = await adapter.fetch(None)  # type: ignore[arg-type]  (a file: no HTTP session needed)
    assert bundled.startswith(b"#") and b"ILLUSTRATIVE" in bundled.splitlines()[0]
    batch = adapter.parse(bundled, ms(READ_AT))
    assert batch.problems == [] and len(batch.members) == len(bundled.splitlines()) - 2
    assert {"toevla/14914874", "toevla/stadhuis-mechelen-mechelen"} <= {s.key for s in batch.sites}
    shutil.copy(FIXTURES / "unknown_verdict.csv", tmp_path / "accessibility_buildings.csv")
    assert await adapter.fetch(None) == fixture("unknown_verdict.csv")  # type: ignore[arg-type]
    missing = create_adapter(feed.model_copy(update={"options": {"path": "no/such/file.csv"}}))
    with pytest.raises(FeedError, match="cannot read no/such/file.csv"):
        await missing.fetch(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("adapter", ["accessibility-csv", "accessibility-jsonld"])
def test_options_need_exactly_one_source(adapter):
    def problems(options: dict) -> list[str]:
        return validate_options(FeedConfig(id="a", adapter=adapter, dataset="accessibility", options=options))

    assert problems({"path": "buildings.csv"}) == []
    assert problems({"url": "https://data.example.be/buildings"}) == []
    assert problems({}) and "exactly one" in problems({})[0]
    assert problems({"path": "b.csv", "url": "https://x.test/b"}) and "exactly one" in problems({"path": "b.csv", "url": "https://x.test/b"})[0]
    assert any(p.startswith("options.file") for p in problems({"file": "b.csv"}))
    assert any(p.startswith("options.url") for p in problems({"url": "file:///etc/passwd"}))


# -- JSON-LD: the pure parser ----------------------------------------------------------------

def sample_building() -> dict:
    """What the 2018 document says, read by hand (with its bugs corrected by the reader)."""
    doc = json.loads(fixture("accessibility_building_example.jsonld"))
    building_id = doc["@id"].split(":")[1]
    address_id = doc["gebouw:Gebouw.adres"]["@id"].rsplit("/", 1)[1]
    point = doc["gebouw:Gebouw.adres"]["http://www.w3.org/2003/01/geo/wgs84_pos#location"]
    widths = {}
    for part in doc["toevla:accessibilityMeasurement"]["toevla:accessibilityMeasurement_for"]:
        for key, value in part.items():
            if key.startswith("toevla:") and key.endswith("DoorWidth"):
                widths[key.removeprefix("toevla:")] = value["@value"]
    return {
        "id": building_id, "address_id": address_id, "name": doc["schema:name"], "image": doc["image"],
        "lat": round(point["http://www.w3.org/2003/01/geo/wgs84_pos#lat"], 7),
        "lon": round(point["http://www.w3.org/2003/01/geo/wgs84_pos#long"], 7), "widths": widths,
    }


def test_jsonld_building_is_published_with_corrected_iris():
    raw = fixture("accessibility_building_example.jsonld")
    # The bugs are in the fixture ...
    doc = json.loads(raw)
    assert doc["@context"]["gebouw"] == "http://data.vlaanderen.be/ns/gebouw#"
    assert doc["@context"]["schema"] == "http://schema.org/image"
    assert '"xsd:Integer"' in raw.decode() and doc["gebouw:Gebouw.adres"]["@id"].startswith("http://")
    # ... and not in what is published.
    want = sample_building()
    batch = parse_accessibility_jsonld(raw, ms(READ_AT))
    assert batch.problems == []
    [site], [member] = batch.sites, batch.members
    assert site.key == f"toevla/{want['id']}" == "toevla/14914874"
    assert site.iri == f"https://data.vlaanderen.be/id/gebouw/{want['id']}"
    assert site.label == want["name"] == "Stadhuis Gent"
    assert (site.lat, site.lon) == (want["lat"], want["lon"])
    assert dict(site.properties) == {
        "address": {"@id": f"https://data.vlaanderen.be/id/adres/{want['address_id']}", "@type": "Address"},
        "image": want["image"],
    }
    assert measured(member.values) == want["widths"] == {"entranceDoorWidth": 120, "elevatorDoorWidth": 110}
    assert all(type(v) is int for v in measured(member.values).values())
    assert member.time == ms("2026-03-31T08:00:00Z") and member.site == site.key


def test_jsonld_and_csv_agree_on_the_same_building():
    from_csv = parse_accessibility_csv(fixture("accessibility_toevla_rows.csv"), ms(READ_AT))
    from_jsonld = parse_accessibility_jsonld(fixture("accessibility_building_example.jsonld"), ms(READ_AT))
    csv_site = next(s for s in from_csv.sites if s.key == from_jsonld.sites[0].key)
    assert (csv_site.iri, csv_site.lat, csv_site.lon) == (from_jsonld.sites[0].iri, from_jsonld.sites[0].lat, from_jsonld.sites[0].lon)
    assert csv_site.properties["address"]["@id"] == from_jsonld.sites[0].properties["address"]["@id"]


@pytest.mark.parametrize("name", ["buildings_graph.jsonld", "buildings_list.jsonld"])
def test_jsonld_graph_or_list_of_buildings(name):
    batch = parse_accessibility_jsonld(fixture(name), ms(READ_AT))
    assert batch.problems == []
    sites = {s.key: s for s in batch.sites}
    assert set(sites) == {"toevla/14914874", "toevla/stadhuis-mechelen-mechelen"}
    mechelen = sites["toevla/stadhuis-mechelen-mechelen"]
    assert mechelen.iri is None and (mechelen.lat, mechelen.lon) == (51.0279, 4.47833)
    assert mechelen.properties["address"] == {"@type": "Address", "thoroughfare": "Grote Markt", "locatorDesignator": "21",
                                              "postCode": "2800", "postName": "Mechelen",
                                              "fullAddress": "Grote Markt 21, 2800 Mechelen"}
    values = {m.site: measured(m.values) for m in batch.members}
    assert values == {"toevla/14914874": sample_building()["widths"], "toevla/stadhuis-mechelen-mechelen": {"entranceDoorWidth": 95}}


@pytest.mark.parametrize("name, url", [
    ("remote_context.jsonld", "https://data.vlaanderen.be/context/gebouwenregister.jsonld"),
    ("remote_context_in_list.jsonld", "https://example.org/extra-context.jsonld"),
])
def test_jsonld_remote_context_is_refused_never_fetched(name, url, monkeypatch):
    fetched: list[str] = []

    def spy(u, options=None):  # pyld's default loader: must never be used
        fetched.append(u)
        raise RuntimeError("network")

    monkeypatch.setattr(jsonld, "_default_document_loader", spy)
    with pytest.raises(PayloadError) as info:
        parse_accessibility_jsonld(fixture(name), ms(READ_AT))
    assert "remote contexts are not fetched" in str(info.value) and url in str(info.value)
    assert fetched == []


@pytest.mark.parametrize("name, message", [
    ("truncated.jsonld", "not JSON"),
    ("no_building.jsonld", "no gebouw:Gebouw"),
    ("non_numeric_width.jsonld", "entranceDoorWidth is not a width in whole centimetres: 'breed'"),
])
def test_jsonld_documents_that_cannot_be_read_are_payload_errors(name, message):
    with pytest.raises(PayloadError) as info:
        parse_accessibility_jsonld(fixture(name), ms(READ_AT))
    assert message in str(info.value)


# -- end to end: poll, re-poll unchanged, poll a changed building, serve -----------------------

def a11y_config(options: dict, adapter: str):
    dataset = {
        "id": "accessibility", "pilot": "accessibility",
        "title": {"en": "Accessibility of public buildings", "nl": "Toegankelijkheid van publieke gebouwen"},
        "description": {"en": "Door widths and entrance verdicts", "nl": "Deurbreedtes en oordeel over de inkom"},
        "licence": "cc0", "window": "1h", "grace": "1m", "retention": "3650d",
    }
    feed = {"id": "a11y", "adapter": adapter, "dataset": "accessibility", "interval": "10m", "retries": 0,
            "options": options}
    return make_config(datasets=[dataset], feeds=[feed])


async def no_sleep(seconds: float) -> None:
    raise AssertionError("no retries expected")


def served_versions(docs: dict[str, bytes]) -> set[tuple]:
    """(site IRI, time, entrance, elevator, toilet, verdict) of every member on every window page."""
    graph, members = window_members(docs, "accessibility")
    out = set()
    for m in members:
        def value(p):
            v = graph.value(m, p)
            return None if v is None else v.toPython()
        verdict = graph.value(m, LDFS.entranceAccessibility)
        out.add((str(graph.value(m, DCT.isVersionOf)),
                 datetime.fromisoformat(str(graph.value(m, PROV.generatedAtTime)).replace("Z", "+00:00")),
                 value(WA.entranceDoorWidth), value(WA.elevatorDoorWidth), value(WA.toiletDoorWidth),
                 None if verdict is None else str(verdict).removeprefix(str(LDFS))))
    return out


def version(iri: str, at: str, values: dict) -> tuple:
    return (iri, datetime.fromisoformat(at.replace("Z", "+00:00")), values.get("entranceDoorWidth"),
            values.get("elevatorDoorWidth"), values.get("toiletDoorWidth"), values.get("entranceAccessibility"))


async def three_polls(poller: Poller, clock: FakeClock, change) -> list:
    """Poll, poll again unchanged 10 minutes later, change the source, poll 10 minutes after that."""
    results = []
    async with aiohttp.ClientSession() as session:
        results.append(await poller.poll_once(session))
        clock.advance(600)
        results.append(await poller.poll_once(session))
        change()
        clock.advance(600)
        results.append(await poller.poll_once(session))
    return results


async def test_csv_feed_end_to_end(tmp_path, aiohttp_client):
    source = tmp_path / "export.csv"
    shutil.copy(FIXTURES / "accessibility_toevla_rows.csv", source)
    config = a11y_config({"path": str(source)}, "accessibility-csv")
    clock = FakeClock(READ_AT)
    state = build_state(config, clock=clock)
    store = state.streams["accessibility"].store
    poller = Poller(create_adapter(config.feeds[0]), store, clock=clock, sleep=no_sleep)

    before = {e["key"]: e for e in map(expected_from_row, rows("accessibility_toevla_rows.csv"))}
    after = {e["key"]: e for e in map(expected_from_row, rows("toevla_rows_changed.csv"))}
    changed = [k for k in before if before[k]["values"] != after[k]["values"]]
    assert changed == ["toevla/stadhuis-mechelen-mechelen"] and set(before) == set(after)

    first, unchanged, third = await three_polls(
        poller, clock, lambda: shutil.copy(FIXTURES / "toevla_rows_changed.csv", source))
    assert (first.added, first.rejected_total) == (3, 0)
    assert (unchanged.added, unchanged.unchanged) == (0, 3)
    assert (third.added, third.unchanged) == (1, 2)

    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    t1, t3 = "2026-03-31T08:00:00Z", "2026-03-31T08:20:00Z"

    def iri(key: str) -> str:
        return before[key]["iri"] or f"{BASE}/accessibility/sites/{key}"

    # latest: every building's newest version; the changed one observed at the third poll.
    latest = await (await client.get("/accessibility/latest")).json(content_type=None)
    nodes = {s["@id"]: s for s in latest["sites"]}
    assert set(nodes) == {iri(k) for k in after}
    for key, want in after.items():
        node = nodes[iri(key)]
        version_ = dict(node["latestVersion"])
        assert version_.pop("observedAt") == (t3 if key in changed else t1)
        assert version_.pop("@id").startswith(f"{BASE}/accessibility/members/{key}/")
        assert measured(version_) == want["values"]
        assert version_["label"] == node["label"]
        if "@id" in node["address"]:  # registry addresses are part of each version
            assert version_["address"] == node["address"]
        assert node["label"] == want["label"] and node["address"] == want["address"]
        assert node["modified"] == want["modified"] and (node["lat"], node["long"]) == (want["lat"], want["lon"])
    assert nodes[iri("toevla/stadhuis-mechelen-mechelen")]["modified"] != before["toevla/stadhuis-mechelen-mechelen"]["modified"]

    # The stream: three versions at the first poll, exactly one at the third, none at the second.
    docs = await every_document(client, "accessibility")
    expected = {version(iri(k), t1, e["values"]) for k, e in before.items()}
    expected |= {version(iri(k), t3, after[k]["values"]) for k in changed}
    assert served_versions(docs) == expected and len(expected) == 4
    assert_valid_documents("accessibility", docs, expected_members=4)
    # Registry IRIs are the published identity of the building and its address.
    stream = rdflib.Graph().parse(data=docs["/accessibility"], format="json-ld")
    gent = rdflib.URIRef("https://data.vlaanderen.be/id/gebouw/14914874")
    assert (gent, rdflib.RDF.type, rdflib.URIRef("https://data.vlaanderen.be/ns/gebouw#Gebouw")) in stream
    assert stream.value(gent, rdflib.URIRef("https://data.vlaanderen.be/ns/gebouw#Gebouw.adres")) == rdflib.URIRef(
        "https://data.vlaanderen.be/id/adres/1475186")


async def test_jsonld_feed_end_to_end(aiohttp_server, aiohttp_client):
    served = {"body": fixture("accessibility_building_example.jsonld")}
    requests: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        requests.append(request.headers.get("Accept", ""))
        return web.Response(body=served["body"], content_type="application/ld+json")

    app = web.Application()
    app.router.add_get("/gebouwen/stadhuis-gent.jsonld", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    config = a11y_config({"url": str(server.make_url("/gebouwen/stadhuis-gent.jsonld"))}, "accessibility-jsonld")
    clock = FakeClock(READ_AT)
    state = build_state(config, clock=clock)
    store = state.streams["accessibility"].store
    poller = Poller(create_adapter(config.feeds[0]), store, clock=clock, sleep=no_sleep)

    def change() -> None:
        served["body"] = fixture("building_changed.jsonld")

    first, unchanged, third = await three_polls(poller, clock, change)
    assert len(requests) == 3 and "application/ld+json" in requests[0]
    assert (first.added, unchanged.added, unchanged.unchanged, third.added) == (1, 0, 1, 1)

    before = sample_building()
    changed_doc = json.loads(fixture("building_changed.jsonld"))
    after = {k.removeprefix("toevla:"): v["@value"]
             for part in changed_doc["toevla:accessibilityMeasurement"]["toevla:accessibilityMeasurement_for"]
             for k, v in part.items() if k.endswith("DoorWidth")}
    assert after != before["widths"]
    gent = f"https://data.vlaanderen.be/id/gebouw/{before['id']}"

    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    latest = await (await client.get("/accessibility/latest")).json(content_type=None)
    [node] = latest["sites"]
    assert node["@id"] == gent and node["label"] == before["name"]
    assert node["address"] == {"@id": f"https://data.vlaanderen.be/id/adres/{before['address_id']}", "@type": "Address"}
    assert node["image"] == before["image"]
    newest = dict(node["latestVersion"])
    assert newest.pop("observedAt") == "2026-03-31T08:20:00Z"
    newest.pop("@id")
    assert measured(newest) == after and newest["label"] == node["label"]

    docs = await every_document(client, "accessibility")
    assert served_versions(docs) == {version(gent, "2026-03-31T08:00:00Z", before["widths"]),
                                     version(gent, "2026-03-31T08:20:00Z", after)}
    assert_valid_documents("accessibility", docs, expected_members=2)
    # None of the document's broken IRIs is published.
    everything = b"".join(docs.values()).decode()
    for wrong in ("http://data.vlaanderen.be/ns/gebouw#", "http://data.vlaanderen.be/id/gebouw",
                  "http://data.vlaanderen.be/id/adres", "imagename", "XMLSchema#Integer"):
        assert wrong not in everything, wrong


def test_a_renamed_or_moved_building_gets_a_new_version():
    """The version carries name, position and address: a change to them is published, not overwritten."""
    from ldf_server.store.ingest import ingest
    from ldf_server.store.memory import DatasetStore
    from tests.support.clock import FakeClock

    text = fixture("accessibility_toevla_rows.csv")
    clock = FakeClock("2026-03-31T08:00:00Z")
    store = DatasetStore("accessibility", 3_600_000, pilot="accessibility", clock=clock)
    first = parse_accessibility_csv(text, int(clock.now * 1000))
    assert ingest(store, first, source="t").added == len(first.members)
    clock.advance(60)
    assert ingest(store, parse_accessibility_csv(text, int(clock.now * 1000)), source="t").added == 0
    clock.advance(60)
    batch = parse_accessibility_csv(text.replace(b"Stadhuis Gent", b"Stadhuis van Gent", 1), int(clock.now * 1000))
    assert ingest(store, batch, source="t").added == 1
    [renamed] = [m for m in batch.members if m.values["label"] == "Stadhuis van Gent"]
    assert store.newest(renamed.site).values["label"] == "Stadhuis van Gent"
    original = next(m for m in first.members if m.site == renamed.site)
    assert measured(store.newest(renamed.site).values) == measured(original.values), "only the name changed"
