"""The Ghent open-data garage adapter, ``parse`` only, on recorded-style payloads.

Expectations are read from the fixture files with ``json`` (see tests/support/ghent.py),
never copied from what the adapter computes.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone

import pytest

from ldf_server.adapters.base import PayloadError
from ldf_server.adapters.ghent_ods import GhentOdsGarages, parse_ods_garages
from ldf_server.adapters.registry import create_adapter
from ldf_server.records import Batch
from ldf_server.store.ingest import ingest
from ldf_server.store.memory import DatasetStore
from tests.support.clock import FakeClock
from tests.support.ghent import (
    GHENT_SITE_IRIS,
    expected_position,
    has_offset,
    instant_ms,
    is_closed,
    judge,
    raw,
    records,
)
from tests.support.seeding import make_config, parking_dataset

GOOD = ["ghent_ods_v1_garages.json", "t1.json", "t2.json", "t3.json", "late_record.json", "location_missing.json"]
GARBAGE = ["truncated.json", "error_page.html", "records_renamed.json", "records_not_list.json", "all_records_bad.json"]


def parse(name: str, site_iris: dict[str, str] | None = None) -> Batch:
    return parse_ods_garages(raw(name), city="gent", site_iris=site_iris or {})


def by_label(batch: Batch) -> dict[str, tuple]:
    """label → (site, member); fails if two sites share a label or a member has no site."""
    sites = {s.key: s for s in batch.sites}
    assert len(sites) == len(batch.sites), "two records mapped to one site key"
    out = {}
    for member in batch.members:
        site = sites[member.site]
        assert site.label not in out
        out[site.label] = (site, member)
    return out


@pytest.mark.parametrize("name", GOOD)
def test_every_record_of_a_good_payload_is_one_site_and_one_member(name):
    recs = records(name)
    batch = parse(name)
    assert batch.problems == []
    assert len(batch.members) == len(batch.sites) == len(recs)
    parsed = by_label(batch)
    assert set(parsed) == {r["fields"]["name"] for r in recs}
    for r in recs:
        f = r["fields"]
        site, member = parsed[f["name"]]
        assert site.capacity == f["totalcapacity"]
        assert site.description == f["description"]
        assert site.city == "gent"
        assert member.values["vacantSpaces"] == f["availablecapacity"]
        assert member.time == instant_ms(f["lastupdate"])
        assert member.series == ""


@pytest.mark.parametrize("name", GOOD)
def test_positions_are_lat_lon_whichever_field_they_came_from(name):
    parsed = by_label(parse(name))
    for r in records(name):
        site, _ = parsed[r["fields"]["name"]]
        # Ghent: lat ≈ 51, lon ≈ 3.7. A swapped pair would put the garage in the Gulf of Guinea.
        assert 50.95 < site.lat < 51.15 and 3.6 < site.lon < 3.85, (site.label, site.lat, site.lon)
        assert (site.lat, site.lon) == pytest.approx(expected_position(r), abs=1e-9)


def test_the_fallback_fixture_exercises_each_source_of_a_position():
    recs = {r["fields"]["name"]: r for r in records("location_missing.json")}
    parsed = by_label(parse("location_missing.json"))
    sources = Counter()
    for name, r in recs.items():
        f = r["fields"]
        display = json.loads(f["locationanddimension"])["coordinatesForDisplay"]
        display = (display["latitude"], display["longitude"])
        site, _ = parsed[name]
        if "location" in f:
            sources["location"] += 1
        elif isinstance(r.get("geometry"), dict):
            sources["geometry"] += 1
            lon, lat = r["geometry"]["coordinates"]
            # The display point differs here, so taking it instead of the geometry would be seen.
            assert display != pytest.approx((lat, lon), abs=1e-6)
            assert (site.lat, site.lon) == pytest.approx((lat, lon), abs=1e-9)
        else:
            sources["locationanddimension"] += 1
            assert (site.lat, site.lon) == pytest.approx(display, abs=1e-9)
    assert sources == {"location": 1, "geometry": 1, "locationanddimension": 1}


def test_lastupdate_with_a_plus_two_offset_is_the_right_utc_instant():
    [first, *_] = records("ghent_ods_v1_garages.json")
    text = first["fields"]["lastupdate"]
    assert text.endswith("+02:00")
    _, member = by_label(parse("ghent_ods_v1_garages.json"))[first["fields"]["name"]]
    # 13:36:45 in Ghent (CEST, +02:00) is 11:36:45 UTC, not 13:36:45 UTC.
    local = datetime.fromisoformat(text)
    utc = datetime(local.year, local.month, local.day, local.hour - 2, local.minute, local.second, tzinfo=timezone.utc)
    assert member.time == int(utc.timestamp() * 1000)
    assert datetime.fromtimestamp(member.time / 1000, tz=timezone.utc).hour == local.hour - 2


def _expected_status(fields: dict) -> tuple[str, set[str]]:
    """(opening status, acceptable site statuses) from the feed's 0/1 flags and counts."""
    vacant, total = fields["availablecapacity"], fields["totalcapacity"]
    if is_closed(fields):
        return "closed", {"closed"}
    if vacant <= 0:
        return "open", {"full"}
    if vacant < 5:
        return "open", {"almostFull"}
    if vacant >= total / 2:
        return "open", {"spacesAvailable"}
    return "open", {"spacesAvailable", "almostFull"}


def test_status_and_opening_follow_isopennow_and_temporaryclosed():
    flags, statuses = Counter(), Counter()
    for name in GOOD + ["capacity_out_of_range.json"]:
        parsed = by_label(parse(name))
        for r in records(name):
            f = r["fields"]
            _, member = parsed[f["name"]]
            opening, allowed = _expected_status(f)
            assert member.values["openingStatus"] == opening, (name, f["name"])
            assert member.values["siteStatus"] in allowed, (name, f["name"], member.values)
            flags[(f["isopennow"], f["temporaryclosed"])] += 1
            statuses[member.values["siteStatus"]] += 1
    # The fixtures cover every combination of the two flags, and every derived status.
    assert set(flags) == {(1, 0), (0, 1), (0, 0), (1, 1)}
    assert set(statuses) >= {"spacesAvailable", "almostFull", "full", "closed"}


def test_a_closed_garage_with_no_spaces_is_closed_not_full():
    [ramen] = [r for r in records("t2.json") if is_closed(r["fields"])]
    assert ramen["fields"]["availablecapacity"] == 0
    _, member = by_label(parse("t2.json"))[ramen["fields"]["name"]]
    assert member.values["siteStatus"] == "closed" and member.values["openingStatus"] == "closed"


def test_site_iris_come_from_the_site_iris_option():
    mapped = {k: v for k, v in GHENT_SITE_IRIS.items() if k != "Sint-Pietersplein"}
    feed = {
        "id": "gent",
        "adapter": "ghent-ods-garages",
        "dataset": "parking",
        "options": {"url": "http://127.0.0.1:9/records", "site_iris": mapped},
    }
    config = make_config(datasets=[parking_dataset()], feeds=[feed])
    adapter = create_adapter(config.feeds[0])
    assert isinstance(adapter, GhentOdsGarages)
    batch = adapter.parse(raw("t3.json"), 0)
    iris = {s.label: s.iri for s in batch.sites}
    assert set(iris) == {r["fields"]["name"] for r in records("t3.json")}
    for label, iri in iris.items():
        assert iri == mapped.get(label), label
    assert iris["Sint-Pietersplein"] is None  # not configured: the server mints its own


def test_the_id_field_is_a_web_page_not_the_site_iri():
    recs = records("ghent_ods_v1_garages.json")
    batch = parse("ghent_ods_v1_garages.json")
    pages = {r["fields"]["id"] for r in recs}
    assert all(p.startswith("https://stad.gent/nl/") for p in pages)
    assert all(s.iri is None for s in batch.sites)
    assert not any(page in s.key for s in batch.sites for page in pages)


@pytest.mark.parametrize("name", GARBAGE)
def test_garbage_raises_payload_error(name):
    body = raw(name)
    # The fixture really is what its name says.
    try:
        doc = json.loads(body)
    except json.JSONDecodeError:
        doc = None
    if name in ("truncated.json", "error_page.html"):
        assert doc is None
    elif name == "records_renamed.json":
        assert "records" not in doc and isinstance(doc["results"], list) and doc["results"]
    elif name == "records_not_list.json":
        assert isinstance(doc["records"], dict)
    else:
        assert doc["records"] and all(judge(r, 2**62) == "unreadable" for r in doc["records"])
    with pytest.raises(PayloadError):
        parse(name)


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b'"records"', b'{"records": null}', b"\xff\xfe{}"])
def test_other_garbage_raises_payload_error(body):
    with pytest.raises(PayloadError):
        parse_ods_garages(body, city="gent", site_iris={})


def test_an_empty_records_list_is_an_empty_batch():
    batch = parse_ods_garages(b'{"nhits": 0, "records": []}', city="gent", site_iris={})
    assert batch.members == [] and batch.sites == [] and batch.problems == []


@pytest.mark.parametrize(
    ("name", "word"),
    [
        ("bad_availablecapacity.json", "availablecapacity"),
        ("lastupdate_without_offset.json", "offset"),
        ("geometry_not_an_object.json", "record"),
    ],
)
def test_a_bad_record_is_skipped_with_a_problem_and_the_good_ones_kept(name, word):
    recs = records(name)
    bad = [r for r in recs if judge(r, 2**62) == "unreadable"]
    good = [r for r in recs if judge(r, 2**62) is None]
    assert bad and good and len(bad) + len(good) == len(recs)
    batch = parse(name)
    assert len(batch.problems) == len(bad)
    assert all(word in p for p in batch.problems), batch.problems
    # Each problem names the record by its position in the payload.
    assert {p.split(":")[0] for p in batch.problems} == {f"record {recs.index(r)}" for r in bad}
    parsed = by_label(batch)
    assert set(parsed) == {r["fields"]["name"] for r in good}
    for r in good:
        _, member = parsed[r["fields"]["name"]]
        assert member.time == instant_ms(r["fields"]["lastupdate"])
        assert member.values["vacantSpaces"] == r["fields"]["availablecapacity"]


def test_the_no_offset_fixture_has_exactly_one_naive_lastupdate():
    naive = [r for r in records("lastupdate_without_offset.json") if not has_offset(r["fields"]["lastupdate"])]
    assert len(naive) == 1 and datetime.fromisoformat(naive[0]["fields"]["lastupdate"]).tzinfo is None


def test_impossible_counts_are_parsed_as_reported_and_refused_when_stored():
    name = "capacity_out_of_range.json"
    recs = records(name)
    # Polled a minute after the payload's earliest update: a record far beyond that is in the future.
    now = min(instant_ms(r["fields"]["lastupdate"]) for r in recs) + 60_000
    verdicts = [judge(r, now) for r in recs]
    assert verdicts.count(None) >= 1 and "impossible count" in verdicts and "future" in verdicts
    batch = parse(name)
    # parse maps what the feed says; the sanity rules are the store's (so they are counted).
    assert batch.problems == [] and len(batch.members) == len(recs)
    parsed = by_label(batch)
    for r in recs:
        assert parsed[r["fields"]["name"]][1].values["vacantSpaces"] == r["fields"]["availablecapacity"]
    store = DatasetStore("parking", 300_000, clock=FakeClock(now / 1000))
    result = ingest(store, batch, source="test")
    assert result.added == verdicts.count(None)
    assert result.rejected_total == len(recs) - verdicts.count(None)
    kept = {store.sites[m.site].label for s in store.window_starts() for m in store.window(s).members}
    assert kept == {r["fields"]["name"] for r, v in zip(recs, verdicts) if v is None}
