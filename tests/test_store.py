"""The time-indexed store: idempotent, ordered, sealed against late members, bounded by retention."""

from __future__ import annotations

from ldf_server.records import Batch, Site, parking_member
from ldf_server.store.ingest import ingest
from ldf_server.store.memory import DatasetStore
from ldf_server.timeutil import parse_instant
from tests.support.clock import FakeClock

T0 = parse_instant("2026-03-31T10:00:00Z")
W = 300_000
SITE = Site(key="gent/p7", label="Sint-Michiels", city="gent", capacity=450)


def store(clock=None) -> DatasetStore:  # type: ignore[no-untyped-def]
    s = DatasetStore("parking", W, clock=clock or FakeClock("2026-03-31T12:00:00Z"))
    s.upsert_sites([SITE])
    return s


def test_members_are_grouped_per_window_in_time_order():
    s = store()
    times = [T0 + 7_000, T0 + 1_000, T0 + W + 5, T0 + 4_000]
    assert s.add([parking_member("gent/p7", t, 10) for t in times]).added == 4
    assert s.window_starts() == [T0, T0 + W]
    assert [m.time for m in s.window(T0).members] == sorted(times)[:3]
    assert s.member_count == 4


def test_adding_is_idempotent_on_site_and_time():
    s = store()
    m = parking_member("gent/p7", T0, 10)
    assert s.add([m]).added == 1
    version = s.version
    again = s.add([parking_member("gent/p7", T0, 10), m])
    assert again.added == 0 and again.duplicates == 2
    assert s.version == version and s.member_count == 1


def test_latest_is_never_replaced_by_an_older_member():
    s = store()
    s.add([parking_member("gent/p7", T0 + 60_000, 5)])
    s.add([parking_member("gent/p7", T0, 99)])
    assert s.newest("gent/p7").values["vacantSpaces"] == 5


def test_sealed_history_refuses_late_members():
    s = store()
    s.seal_before(T0 + W)
    result = s.add([parking_member("gent/p7", T0 + W - 1, 1), parking_member("gent/p7", T0 + W, 2)])
    assert result.late == 1 and result.added == 1


def test_site_descriptions_are_kept_apart_and_versioned():
    s = store()
    version = s.version
    assert s.upsert_sites([SITE]) == 0 and s.version == version
    moved = Site(key="gent/p7", label="Sint-Michiels", city="gent", capacity=460)
    assert s.upsert_sites([moved]) == 1 and s.sites["gent/p7"].capacity == 460 and s.version > version


def test_a_site_keeps_its_published_iri_once_it_has_members():
    s = store()
    minted = Site(key="gent/p9", label="P9", city="gent", iri="https://stad.gent/id/parking/P9")
    s.upsert_sites([minted])
    s.upsert_sites([Site(key="gent/p9", label="P9", city="gent", iri="https://example.org/other")])
    assert s.sites["gent/p9"].iri == "https://example.org/other", "no member names it yet: the IRI may change"
    s.add([parking_member("gent/p9", T0, 3)])
    renamed = Site(key="gent/p9", label="P9 Reep", city="gent", iri="https://stad.gent/id/parking/P9")
    assert s.upsert_sites([renamed]) == 1
    assert s.sites["gent/p9"].iri == "https://example.org/other", "members (and sealed pages) name the old IRI"
    assert s.sites["gent/p9"].label == "P9 Reep", "the rest of the description still changes"


def test_compaction_drops_old_windows_and_refuses_expired_members():
    s = store()
    s.add([parking_member("gent/p7", T0 + i * W, i) for i in range(6)])
    removed = s.compact(T0 + 3 * W)
    assert removed == 3 and s.window_starts() == [T0 + 3 * W, T0 + 4 * W, T0 + 5 * W]
    assert s.member_count == 3 and s.retained_from == T0 + 3 * W
    assert s.add([parking_member("gent/p7", T0 + W, 1)]).expired == 1
    assert s.members_between(T0, T0 + 10 * W)[0].time == T0 + 3 * W


def test_ingest_applies_sanity_rules_and_counts_rejections():
    clock = FakeClock("2026-03-31T12:00:00Z")
    s = DatasetStore("parking", W, clock=clock)
    now = int(clock.now * 1000)
    batch = Batch(
        sites=[SITE],
        members=[
            parking_member("gent/p7", now - 1000, 10),  # fine
            parking_member("gent/p7", now - 2000, -1),  # negative
            parking_member("gent/p7", now - 3000, 451),  # above capacity
            parking_member("gent/p7", now + 3_600_000, 5),  # an hour in the future
            parking_member("gent/unknown", now - 1000, 5),  # unknown site
        ],
        problems=["record 7: KeyError: 'name'"],
    )
    result = ingest(s, batch, source="test")
    assert result.added == 1 and s.member_count == 1
    assert result.rejected == {
        "negative vacant spaces": 1,
        "more vacant spaces than capacity": 1,
        "timestamp in the future": 1,
        "unknown site": 1,
        "unreadable record": 1,
    }
