"""The parking adapters' pure ``parse`` functions on recorded-style payloads.

Expectations come from a second, independent reading of the fixture files
(tests/support/parking_feeds.py) or are written out literally (UTC instants, IRIs),
never copied from what an adapter computes.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from ldf_server.adapters.base import PayloadError
from ldf_server.adapters.common import parse_xml
from ldf_server.adapters.ghent_datatank import GhentDatatank, datatank_time, parse_datatank
from ldf_server.adapters.ghent_datex2 import GhentDatex2, parse_datex2, parse_table
from ldf_server.adapters.ghent_ods import parse_ods_garages
from ldf_server.adapters.ghent_ods_pr import GhentOdsParkAndRide, parse_ods_park_and_ride
from ldf_server.adapters.ixor import IxorParkings, parse_ixor
from ldf_server.adapters.kortrijk import KortrijkParko, parse_kortrijk
from ldf_server.adapters.registry import create_adapter
from ldf_server.config import ConfigError, config_from_dict
from ldf_server.records import Batch
from ldf_server.store.ingest import IngestResult, ingest
from ldf_server.store.memory import DatasetStore
from tests.support import parking_feeds as feeds
from tests.support.clock import FakeClock
from tests.support.parking_feeds import GHENT_IRIS, Expected, raw, utc
from tests.support.seeding import parking_dataset

POLL_MS = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z: a poll time with milliseconds to drop
POLL_UTC = "2023-11-14T22:13:20Z"


def datex2(status: str, table: str = "table.xml", site_iris: dict | None = None) -> Batch:
    return parse_datex2(
        raw("ghent_datex2", table), raw("ghent_datex2", status), city="gent", site_iris=site_iris or {}
    )


def park_and_ride(name: str, site_iris: dict | None = None) -> Batch:
    return parse_ods_park_and_ride(raw("ghent_ods_park_and_ride", name), city="gent", site_iris=site_iris or {})


def datatank(name: str, site_iris: dict | None = None) -> Batch:
    return parse_datatank(raw("ghent_datatank", name), city="gent", site_iris=site_iris or {})


def kortrijk(name: str, fetched_at: int = POLL_MS) -> Batch:
    return parse_kortrijk(raw("kortrijk_parko", name), fetched_at, city="kortrijk", site_iris={})


def ixor(name: str, fetched_at: int = POLL_MS, site_iris: dict | None = None) -> Batch:
    return parse_ixor(raw("ixor_parkings", name), fetched_at, city="leuven", site_iris=site_iris or {})


# (parse the fixture, read it independently) per feed, for the parametrised tests.
FEEDS = {
    "ghent-datex2": (datex2, lambda n: feeds.datex2(raw("ghent_datex2", "table.xml"), raw("ghent_datex2", n))),
    "ghent-ods-park-and-ride": (park_and_ride, lambda n: feeds.ods_park_and_ride(raw("ghent_ods_park_and_ride", n))),
    "ghent-datatank": (datatank, lambda n: feeds.datatank(raw("ghent_datatank", n))),
    "kortrijk-parko": (kortrijk, lambda n: feeds.kortrijk(raw("kortrijk_parko", n), POLL_MS)),
    "ixor-parkings": (ixor, lambda n: feeds.ixor(raw("ixor_parkings", n), POLL_MS)),
}
GOOD = [
    ("ghent-datex2", "status_t1.xml"),
    ("ghent-datex2", "status_t2.xml"),
    ("ghent-ods-park-and-ride", "t1.json"),
    ("ghent-ods-park-and-ride", "t2.json"),
    ("ghent-datatank", "t1.json"),
    ("ghent-datatank", "t2.json"),
    ("ghent-datatank", "dst.json"),
    ("kortrijk-parko", "t1.xml"),
    ("kortrijk-parko", "t2.xml"),
    ("kortrijk-parko", "latin1.xml"),
    ("ixor-parkings", "t1.json"),
    ("ixor-parkings", "t2.json"),
]
BAD_RECORDS = [
    ("ghent-datex2", "status_t3_bad_records.xml"),
    ("ghent-ods-park-and-ride", "bad_records.json"),
    ("ghent-datatank", "bad_records.json"),
    ("kortrijk-parko", "bad_records.xml"),
    ("ixor-parkings", "bad_records.json"),
]


def members_by_label(batch: Batch) -> set[tuple[str, int, int]]:
    sites = {s.key: s for s in batch.sites}
    assert len(sites) == len(batch.sites), "two records mapped to one site key"
    return {(sites[m.site].label, m.time, m.values["vacantSpaces"]) for m in batch.members}


def ingest_batch(batch: Batch) -> IngestResult:
    """Ingest into a fresh parking store whose clock is after every member (no 'future' refusals)."""
    latest = max((m.time for m in batch.members), default=0)
    store = DatasetStore("parking", 15 * 60 * 1000, pilot="parking", clock=FakeClock(latest / 1000 + 60))
    return ingest(store, batch, source="test")


# -- good payloads -------------------------------------------------------------------


@pytest.mark.parametrize(("feed", "name"), GOOD)
def test_every_record_of_a_good_payload_becomes_one_member_of_its_site(feed, name):
    parse, expect = FEEDS[feed]
    batch, expected = parse(name), expect(name)
    assert expected.unreadable == expected.impossible == 0, "a GOOD fixture must have only good records"
    assert batch.problems == []
    assert members_by_label(batch) == expected.members()
    assert len(batch.members) == len(expected.good)
    # Every member belongs to a site of the batch, and every record's site is described.
    assert {m.site for m in batch.members} <= {s.key for s in batch.sites}
    assert {s.label for s in batch.sites} >= set(expected.good)
    result = ingest_batch(batch)
    assert result.added == len(expected.good) and result.rejected == {}


def test_datex2_joins_six_table_sites_with_six_status_records():
    batch = datex2("status_t1.xml")
    assert len(batch.sites) == 6 and len(batch.members) == 6
    sites = {s.key: s for s in batch.sites}
    assert {sites[m.site].label for m in batch.members} == set(GHENT_IRIS)
    p07 = next(s for s in batch.sites if s.label == "P07 Sint-Michiels")
    assert (p07.key, p07.capacity, p07.description) == ("gent/p07-sint-michiels", 450, "Sint-Michiels")
    # The GroupOfParkingSites ("Gent") that holds them is not a site.
    assert "Gent" not in {s.label for s in batch.sites}


def test_datex2_table_alone_reads_six_sites_by_uuid():
    sites, problems = parse_table(raw("ghent_datex2", "table.xml"), city="gent", site_iris={})
    assert problems == []
    assert sites["49334d1d-b47a-4f3b-a0af-0fa1bcdc7c8e"].label == "P08 Ramen"
    assert len(sites) == 6


def test_datex2_states_status_and_opening_as_given():
    batch = datex2("status_t1.xml")
    sites = {s.key: s for s in batch.sites}
    by_label = {sites[m.site].label: m.values for m in batch.members}
    assert by_label["P08 Ramen"] == {"vacantSpaces": 0, "siteStatus": "full", "openingStatus": "open"}
    assert by_label["P07 Sint-Michiels"]["siteStatus"] == "spacesAvailable"
    assert datex2("status_t2.xml").members[4].values["siteStatus"] == "almostFull"


# -- IRIs ----------------------------------------------------------------------------


@pytest.mark.parametrize("parse", [lambda: datex2("status_t1.xml"), lambda: datatank("bad_records.json")])
def test_ghent_iris_follow_from_the_pxx_prefix_without_a_mapping(parse):
    batch = parse()
    assert batch.sites
    for site in batch.sites:
        assert site.iri == GHENT_IRIS[site.label], site.label


def test_ghent_iris_can_be_mapped_by_name_or_by_number():
    mapping = {
        "P07 Sint-Michiels": "https://example.org/by-name",
        "P10": "https://example.org/by-number",
        "P1": "https://example.org/by-short-number",
    }
    for batch in (datex2("status_t1.xml", site_iris=mapping), datatank("t1.json", site_iris=mapping)):
        iris = {s.label: s.iri for s in batch.sites}
        assert iris["P07 Sint-Michiels"] == "https://example.org/by-name"
        assert iris["P01 Vrijdagmarkt"] == "https://example.org/by-short-number"
        if "P10 Sint-Pietersplein" in iris:
            assert iris["P10 Sint-Pietersplein"] == "https://example.org/by-number"
        if "P02 Reep" in iris:
            assert iris["P02 Reep"] == "https://stad.gent/id/parking/P2"


def test_names_without_a_number_get_an_iri_only_from_the_mapping():
    assert {s.iri for s in park_and_ride("t2.json").sites} == {None}
    mapped = park_and_ride("t1.json", {"P+R Wondelgem": "https://stad.gent/id/parking/PR-Wondelgem"})
    assert mapped.sites[0].iri == "https://stad.gent/id/parking/PR-Wondelgem"
    assert {s.iri for s in ixor("t1.json", site_iris={"De Bond": "https://example.org/leuven#De-Bond"}).sites} == {
        None,
        "https://example.org/leuven#De-Bond",
    }


def test_names_with_spaces_get_url_safe_keys():
    keys = {s.label: s.key for s in ixor("t1.json").sites}
    assert keys["De Bond"] == "leuven/de-bond" and keys["Heilig Hart"] == "leuven/heilig-hart"
    assert {s.key for s in kortrijk("t1.xml").sites} >= {"kortrijk/p-veemarkt", "kortrijk/p-p-r-expo"}
    assert park_and_ride("t1.json").sites[0].key == "gent/p-r-wondelgem"


# -- positions -----------------------------------------------------------------------


def test_positions_are_lat_lon():
    p07 = next(s for s in datex2("status_t1.xml").sites if s.label == "P07 Sint-Michiels")
    assert (p07.lat, p07.lon) == (51.05367, 3.7186)
    for site in datex2("status_t1.xml").sites + datatank("t1.json").sites + park_and_ride("t2.json").sites:
        assert 50.95 < site.lat < 51.15 and 3.6 < site.lon < 3.85, (site.label, site.lat, site.lon)  # Ghent
    for site in ixor("t1.json").sites:
        assert 50.8 < site.lat < 50.95 and 4.6 < site.lon < 4.8, (site.label, site.lat, site.lon)  # Leuven
    # The second P+R has only `latitude`/`longitude` fields, no `location`.
    record = json.loads(raw("ghent_ods_park_and_ride", "t2.json"))["records"][1]["fields"]
    assert "location" not in record
    arsenaal = next(s for s in park_and_ride("t2.json").sites if s.label == "P+R Gentbrugge Arsenaal")
    assert (arsenaal.lat, arsenaal.lon) == (record["latitude"], record["longitude"])


def test_kortrijk_sites_have_no_position():
    assert {(s.lat, s.lon) for s in kortrijk("t1.xml").sites} == {(None, None)}


# -- times ---------------------------------------------------------------------------


def test_datex2_offsets_become_utc():
    t1 = datex2("status_t1.xml")
    assert {utc(m.time) for m in t1.members} == {"2017-11-08T06:00:01Z"}  # 07:00:01.000+01:00
    # status_t2 writes one record's time in UTC ("…06:05:01Z") and the others at +01:00: one instant.
    assert {utc(m.time) for m in datex2("status_t2.xml").members} == {"2017-11-08T06:05:01Z"}


def test_park_and_ride_offsets_become_utc():
    assert utc(park_and_ride("t1.json").members[0].time) == "2022-07-15T11:35:00Z"  # 13:35+02:00


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-04-12T12:58:15.673Z", 1460465895673),  # the ISO format, milliseconds kept
        ("13/12/2019 16:29:00", "2019-12-13T15:29:00Z"),  # winter: CET, +01:00
        ("15/07/2019 12:00:00", "2019-07-15T10:00:00Z"),  # summer: CEST, +02:00
        ("31/03/2019 01:30:00", "2019-03-31T00:30:00Z"),  # the day clocks go forward, before the change
        ("31/03/2019 03:30:00", "2019-03-31T01:30:00Z"),  # ... and after it
        ("27/10/2019 01:30:00", "2019-10-26T23:30:00Z"),  # the day clocks go back, before the change
        ("27/10/2019 02:30:00", "2019-10-27T00:30:00Z"),  # the repeated hour: its first occurrence (CEST)
        ("27/10/2019 03:30:00", "2019-10-27T02:30:00Z"),  # ... and after the change
        ("2019-12-13T15:34:00.000Z", "2019-12-13T15:34:00Z"),
    ],
)
def test_datatank_times_in_either_format_become_utc(text, expected):
    got = datatank_time(text)
    assert (got if isinstance(expected, int) else utc(got)) == expected


@pytest.mark.parametrize(
    "text", ["31/02/2019 16:39:00", "2019-12-13T15:34:00", "13-12-2019 16:29", "", None, 1576250940]
)
def test_datatank_times_that_cannot_be_placed_are_refused(text):
    with pytest.raises(ValueError):
        datatank_time(text)


def test_datatank_observation_time_is_the_status_date_across_daylight_saving():
    batch = datatank("dst.json")
    sites = {s.key: s.label for s in batch.sites}
    assert {sites[m.site]: utc(m.time) for m in batch.members} == {
        "P07 Sint-Michiels": "2019-03-31T00:30:00Z",
        "P01 Vrijdagmarkt": "2019-03-31T01:30:00Z",
        "P04 Savaanstraat": "2019-10-26T23:30:00Z",
        "P08 Ramen": "2019-10-27T02:30:00Z",
        "P02 Reep": "2019-07-15T10:00:00Z",
    }
    # Not the description's 2016 ISO date, which every record also carries.
    described = {r["lastModifiedDate"] for r in json.loads(raw("ghent_datatank", "dst.json"))}
    assert described == {"2016-04-12T12:58:15.673Z"}
    assert min(m.time for m in batch.members) > datatank_time("2016-04-12T12:58:15.673Z")


def test_datatank_records_mixing_both_formats_in_one_payload():
    batch = datatank("t2.json")
    assert [utc(m.time) for m in batch.members] == ["2019-12-13T15:34:00Z", "2019-12-13T15:34:00Z"]


@pytest.mark.parametrize("parse", [kortrijk, ixor])
def test_feeds_without_a_timestamp_are_observed_at_the_poll_to_the_second(parse):
    name = "t1.xml" if parse is kortrijk else "t1.json"
    batch = parse(name)
    assert {utc(m.time) for m in batch.members} == {POLL_UTC}
    assert {m.time for m in batch.members} == {POLL_MS - 123}
    later = parse(name, fetched_at=POLL_MS + 60_000)
    assert {m.time for m in later.members} == {POLL_MS - 123 + 60_000}


# -- capacity ------------------------------------------------------------------------


def test_datatank_capacity_is_the_status_capacity_not_the_description():
    [p07, p01] = json.loads(raw("ghent_datatank", "t1.json"))
    assert p07["totalCapacity"] != p07["parkingStatus"]["totalCapacity"]  # the quirk is in the fixture
    sites = {s.label: s for s in datatank("t1.json").sites}
    assert sites["P07 Sint-Michiels"].capacity == p07["parkingStatus"]["totalCapacity"] == 465
    assert sites["P01 Vrijdagmarkt"].capacity == 647
    # Hence 460 vacant (above the described 450, within the current 465) is a good count.
    batch = datatank("bad_records.json")
    result = ingest_batch(batch)
    assert ("P07 Sint-Michiels", 460) in {(label, v) for label, _, v in members_by_label(batch)}
    assert result.added == len(feeds.datatank(raw("ghent_datatank", "bad_records.json")).good) == 2


def test_datatank_capacity_falls_back_to_the_description_when_the_status_has_none():
    [p07, _] = json.loads(raw("ghent_datatank", "t1.json"))
    del p07["parkingStatus"]["totalCapacity"]
    batch = parse_datatank(json.dumps([p07]).encode(), city="gent", site_iris={})
    assert batch.sites[0].capacity == 450


# -- bad records ---------------------------------------------------------------------


@pytest.mark.parametrize(("feed", "name"), BAD_RECORDS)
def test_bad_records_are_skipped_with_a_problem_or_refused_by_the_store(feed, name):
    parse, expect = FEEDS[feed]
    batch, expected = parse(name), expect(name)
    assert expected.good and expected.unreadable >= 2 and expected.impossible == 2, "fixture covers each kind"
    # Unreadable records (missing count, not a number, no offset, unknown site) are skipped, each noted.
    assert len(batch.problems) == expected.unreadable, batch.problems
    # Readable but impossible ones reach the store, whose parking rules refuse them by name.
    result = ingest_batch(batch)
    assert result.rejected == {
        "negative vacant spaces": 1,
        "more vacant spaces than capacity": 1,
        "unreadable record": expected.unreadable,
    }
    assert result.added == len(expected.good)
    assert expected.members() <= members_by_label(batch)


def test_problems_say_what_was_wrong():
    datex = " ".join(datex2("status_t3_bad_records.xml").problems)
    assert "unknown parking site deadbeef-0000-4000-8000-000000000000" in datex
    assert "parkingNumberOfVacantSpaces is missing" in datex and "without an offset" in datex
    assert "'availablespaces'" in park_and_ride("bad_records.json").problems[0]
    assert "availableCapacity" in datatank("bad_records.json").problems[0]
    assert "vrij is missing" in kortrijk("bad_records.xml").problems[0]
    assert "'550'" in ixor("bad_records.json").problems[1]


def test_a_negative_capacity_is_unreadable():
    doc = (
        b'<bezettingparkings><parking capaciteit="-5" vrij="0">P X</parking>'
        b'<parking capaciteit="5" vrij="1">P Y</parking></bezettingparkings>'
    )
    batch = parse_kortrijk(doc, POLL_MS, city="kortrijk", site_iris={})
    assert [s.label for s in batch.sites] == ["P Y"] and "capaciteit is below 0" in batch.problems[0]
    parkings = json.loads(raw("ixor_parkings", "t1.json"))["parkings"]
    parkings[0]["totalCapacity"] = -600
    batch = parse_ixor(json.dumps({"parkings": parkings}).encode(), POLL_MS, city="leuven", site_iris={})
    assert len(batch.members) == len(parkings) - 1 and "totalCapacity is below 0" in batch.problems[0]


# -- garbage -------------------------------------------------------------------------

GARBAGE = [
    (datex2, "status_truncated.xml", "not well-formed"),
    (datex2, "status_wrong_root.xml", "expected a DATEX II v2 d2LogicalModel, got <html>"),
    (datex2, "status_datex3.xml", "expected a DATEX II v2"),
    (datex2, "status_doctype.xml", "DOCTYPE"),
    (datex2, "table.xml", "no parkingStatusPublication"),  # the table where the status should be
    (park_and_ride, "truncated.json", "not JSON"),
    (park_and_ride, "garage_fields.json", "no record could be read"),
    (park_and_ride, "records_not_list.json", "no 'records' list"),
    (datatank, "truncated.json", "not JSON"),
    (datatank, "wrong_shape.json", "expected a JSON array"),
    (datatank, "error_page.html", "not JSON"),
    (kortrijk, "truncated.xml", "not well-formed"),
    (kortrijk, "wrong_root.xml", "expected <bezettingparkings>, got <parkings>"),
    (kortrijk, "doctype.xml", "DOCTYPE"),
    (kortrijk, "doctype_utf16.xml", "not utf-8"),
    (ixor, "truncated.json", "not JSON"),
    (ixor, "wrong_shape.json", "no 'parkings' list"),
    (ixor, "login_page.html", "not JSON"),
]


@pytest.mark.parametrize(("parse", "name", "message"), GARBAGE, ids=[f"{p.__name__}-{n}" for p, n, _ in GARBAGE])
def test_garbage_is_a_payload_error(parse, name, message):
    with pytest.raises(PayloadError, match=re.escape(message)):
        parse(name)


def test_datex2_table_with_a_doctype_is_refused():
    with pytest.raises(PayloadError, match="DOCTYPE"):
        datex2("status_t1.xml", table="table_doctype.xml")


def test_datex2_status_referring_only_to_unknown_sites_is_a_payload_error():
    status = raw("ghent_datex2", "status_t1.xml").replace(b'id="', b'id="x')
    with pytest.raises(PayloadError, match="unknown parking site"):
        parse_datex2(raw("ghent_datex2", "table.xml"), status, city="gent", site_iris={})


def test_the_two_ghent_ods_datasets_do_not_read_each_other():
    with pytest.raises(PayloadError):
        parse_ods_garages(raw("ghent_ods_park_and_ride", "t1.json"), city="gent", site_iris={})


@pytest.mark.parametrize("payload", [b"", b"null", b"[]garbage", b"\xff\xfe\x00"])
def test_empty_and_binary_payloads_are_payload_errors(payload):
    for parse in (
        lambda p: parse_ods_park_and_ride(p, city="gent", site_iris={}),
        lambda p: parse_datatank(p, city="gent", site_iris={}),
        lambda p: parse_kortrijk(p, POLL_MS, city="kortrijk", site_iris={}),
        lambda p: parse_ixor(p, POLL_MS, city="leuven", site_iris={}),
        lambda p: parse_datex2(raw("ghent_datex2", "table.xml"), p, city="gent", site_iris={}),
    ):
        with pytest.raises(PayloadError):
            parse(payload)


def test_entity_expansion_is_refused_before_any_parsing():
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + b"a" * 1000 + b'">' + b"".join(
        b'<!ENTITY %s "%s">' % (f"e{i + 1}".encode(), f"&e{i};".encode() * 10 if i else b"&a;" * 10) for i in range(12)
    ) + b"]><r>&e12;</r>"
    started = time.perf_counter()
    with pytest.raises(PayloadError, match="DOCTYPE"):
        parse_xml(bomb)
    assert time.perf_counter() - started < 0.5


def test_latin1_xml_is_read_as_declared():
    assert [s.label for s in kortrijk("latin1.xml").sites] == ["P Kortrijk Weide - Café"]


# -- configuration -------------------------------------------------------------------

OPTIONS = {
    "ghent-datex2": (GhentDatex2, {"table_url": "http://127.0.0.1/t", "status_url": "http://127.0.0.1/s"}),
    "ghent-ods-park-and-ride": (GhentOdsParkAndRide, {"url": "http://127.0.0.1/pr"}),
    "ghent-datatank": (GhentDatatank, {"url": "http://127.0.0.1/dt"}),
    "kortrijk-parko": (KortrijkParko, {"url": "http://127.0.0.1/k"}),
    "ixor-parkings": (
        IxorParkings,
        {"url": "http://127.0.0.1/i", "username_env": "IXOR_USER", "password_env": "IXOR_PASSWORD", "city": "leuven"},
    ),
}


def feed_config(adapter: str, options: dict):
    feed = {"id": "feed", "adapter": adapter, "dataset": "parking", "options": options}
    return config_from_dict({"datasets": [parking_dataset()], "feeds": [feed]}, env={})


@pytest.mark.parametrize("adapter", sorted(OPTIONS))
def test_each_adapter_is_registered_under_its_name(adapter):
    cls, options = OPTIONS[adapter]
    made = create_adapter(feed_config(adapter, options).feeds[0])
    assert type(made) is cls and made.name == adapter


@pytest.mark.parametrize("adapter", sorted(OPTIONS))
def test_unknown_options_are_configuration_errors(adapter):
    _, options = OPTIONS[adapter]
    with pytest.raises(ConfigError, match=r"options\.colour"):
        feed_config(adapter, {**options, "colour": "blue"})


@pytest.mark.parametrize("missing", ["username_env", "password_env", "city"])
def test_ixor_requires_credential_variables_and_a_city(missing):
    _, options = OPTIONS["ixor-parkings"]
    with pytest.raises(ConfigError, match=rf"options\.{missing}: Field required"):
        feed_config("ixor-parkings", {k: v for k, v in options.items() if k != missing})


def test_ixor_credential_options_are_variable_names_not_secrets():
    _, options = OPTIONS["ixor-parkings"]
    with pytest.raises(ConfigError) as info:
        feed_config("ixor-parkings", {**options, "password_env": "hunter2 is my password!"})
    assert "options.password_env" in str(info.value) and "hunter2" not in str(info.value)


def test_datex2_table_refresh_is_a_duration_defaulting_to_an_hour():
    _, options = OPTIONS["ghent-datex2"]
    assert create_adapter(feed_config("ghent-datex2", options).feeds[0]).options.table_refresh == 3600
    adapter = create_adapter(feed_config("ghent-datex2", {**options, "table_refresh": "30m"}).feeds[0])
    assert adapter.options.table_refresh == 1800
    with pytest.raises(ConfigError, match="table_url"):
        feed_config("ghent-datex2", {"status_url": "http://127.0.0.1/s"})


def test_expected_readers_agree_on_what_the_fixtures_hold():
    # Guards the independent readers themselves: counts written out from the fixture files.
    assert len(feeds.datex2(raw("ghent_datex2", "table.xml"), raw("ghent_datex2", "status_t1.xml")).good) == 6
    bad = feeds.datex2(raw("ghent_datex2", "table.xml"), raw("ghent_datex2", "status_t3_bad_records.xml"))
    assert (len(bad.good), bad.unreadable, bad.impossible) == (2, 3, 2)
    assert isinstance(bad, Expected)
    assert len(feeds.kortrijk(raw("kortrijk_parko", "t1.xml"), POLL_MS).good) == 5
    assert len(feeds.ixor(raw("ixor_parkings", "t1.json"), POLL_MS).good) == 6


def test_datatank_repeated_autumn_hour_follows_the_poll_time():
    """27 Oct 2019, 02:30 local happens twice: the occurrence not after the poll is the right one."""
    from ldf_server.adapters.ghent_datatank import datatank_time
    from ldf_server.timeutil import parse_instant

    first = parse_instant("2019-10-27T00:30:00Z")  # 02:30 CEST
    second = parse_instant("2019-10-27T01:30:00Z")  # 02:30 CET, an hour later
    assert datatank_time("27/10/2019 02:30:00", before=parse_instant("2019-10-27T00:31:00Z")) == first
    assert datatank_time("27/10/2019 02:30:00", before=parse_instant("2019-10-27T01:31:00Z")) == second
    assert datatank_time("27/10/2019 02:30:00") == first
    assert datatank_time("27/10/2019 03:30:00", before=parse_instant("2019-10-27T02:31:00Z")) == parse_instant("2019-10-27T02:30:00Z")
