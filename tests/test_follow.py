"""A follower's copy of a dataset: read-only replay and tail of the leader's log, in one process.

The leader is a store with a journal, as in a running server; the follower is a second store
fed only by :class:`LogFollower`. Time comes from a fake clock, so which pages are closed is
decided here.
"""

from __future__ import annotations

import os

from ldf_server.config import ConfigError, config_from_dict, load_config
from ldf_server.fragments.timeline import Timeline
from ldf_server.records import Site, parking_member
from ldf_server.store.follow import LogFollower
from ldf_server.store.log import DatasetLog
from ldf_server.store.memory import DatasetStore
from ldf_server.timeutil import parse_instant
from ldf_server.workers import SealedTimeline
from tests.support.clock import FakeClock

WINDOW_MS = 300_000
DAY = 86_400_000
SITE = Site(key="gent/reep", label="Reep", city="gent", capacity=470)


def pair(tmp_path, clock):  # type: ignore[no-untyped-def]
    leader = DatasetStore("parking", WINDOW_MS, clock=clock)
    leader.journal = DatasetLog(tmp_path / "parking", fsync="never")
    follower = DatasetStore("parking", WINDOW_MS, clock=clock)
    return leader, follower, LogFollower(tmp_path / "parking", follower)


def snapshot(store: DatasetStore) -> tuple:  # type: ignore[type-arg]
    windows = {s: [(m.site, m.time, dict(m.values)) for m in store.window(s).members] for s in store.window_starts()}  # type: ignore[union-attr]
    latest = {k: {r: (m.time, dict(m.values)) for r, m in v.items()} for k, v in store.latest.items()}
    return windows, latest, dict(store.sites), store.member_count, store.retained_from, store.first_seen


def file_states(root) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_replay_then_tail_gives_the_leaders_store_without_writing(tmp_path):
    clock = FakeClock("2026-03-31T12:00:00Z")
    t0 = parse_instant("2026-03-31T10:00:00Z")
    leader, follower, tail = pair(tmp_path, clock)
    leader.upsert_sites([SITE])
    leader.add([parking_member("gent/reep", t0 + i * 30_000, 100 + i) for i in range(50)])
    leader.journal.close()  # type: ignore[union-attr]
    leader.journal = DatasetLog(tmp_path / "parking", fsync="never")
    before = file_states(tmp_path)
    assert tail.replay() == 50
    assert file_states(tmp_path) == before, "reading changes no file"
    assert snapshot(follower) == snapshot(leader)

    woken = []
    follower.listeners.append(lambda: woken.append(follower.sequence))
    first_id = follower.sequence
    leader.add([parking_member("gent/reep", t0 + 3_600_000 + i * 30_000, 7 + i) for i in range(3)])
    leader.seal_before(t0 + 3_600_000)
    assert tail.bytes_behind() > 0
    before = file_states(tmp_path)
    assert tail.poll() == 3
    assert file_states(tmp_path) == before, "tailing changes no file"
    assert tail.bytes_behind() == 0
    assert snapshot(follower) == snapshot(leader)
    assert follower.sealed_before == leader.sealed_before == t0 + 3_600_000
    # Live clients are woken, and the new members are numbered in the follower's own event buffer.
    assert woken and [i for i, _ in follower.recent] == [first_id + 1, first_id + 2, first_id + 3]
    assert [m.values["vacantSpaces"] for _, m in follower.recent] == [7, 8, 9]
    assert tail.poll() == 0 and woken == [first_id + 3]


def test_a_new_day_file_and_retention_are_followed(tmp_path):
    clock = FakeClock("2026-03-31T23:50:00Z")
    day1 = parse_instant("2026-03-30T12:00:00Z")
    day2 = parse_instant("2026-03-31T23:40:00Z")
    leader, follower, tail = pair(tmp_path, clock)
    leader.upsert_sites([SITE])
    leader.add([parking_member("gent/reep", day1, 1), parking_member("gent/reep", day2, 2)])
    tail.replay()
    clock.set("2026-04-01T00:10:00Z")
    leader.add([parking_member("gent/reep", parse_instant("2026-04-01T00:05:00Z"), 3)])  # a new day file
    assert tail.poll() == 1
    leader.compact(parse_instant("2026-03-31T00:00:00Z"))  # retention: a horizon record, a file deleted
    assert not (tmp_path / "parking" / "days" / "2026-03-30.log").exists()
    tail.poll()
    assert snapshot(follower) == snapshot(leader)
    assert follower.window_starts()[0] == leader.window_starts()[0] > day1, "the follower dropped the old day too"


def test_a_follower_marks_pages_immutable_only_below_the_leaders_horizon(tmp_path):
    clock = FakeClock("2026-03-31T12:00:00Z")
    leader, follower, tail = pair(tmp_path, clock)
    plain = Timeline(WINDOW_MS, 60_000)
    sealed = SealedTimeline(WINDOW_MS, 60_000, follower)
    start = parse_instant("2026-03-31T11:50:00Z")
    now = parse_instant("2026-03-31T12:00:00Z")  # the window ended 5 minutes ago: closed by the time rule
    assert plain.window_closed(start, now)
    assert not sealed.window_closed(start, now), "not before the leader sealed it"
    leader.seal_before(start + WINDOW_MS)
    tail.poll()
    assert sealed.window_closed(start, now)
    assert not sealed.window_closed(start + WINDOW_MS, now), "a later window is not sealed yet"
    day = parse_instant("2026-03-30T00:00:00Z")
    assert sealed.day_closed(day, now) and not sealed.day_closed(day + DAY, now)


def test_workers_setting(tmp_path):
    base = {"datasets": [{"id": "parking", "pilot": "parking", "title": {"en": "P"}, "description": {"en": "P"}}]}
    assert config_from_dict(base).server.worker_count == 1
    try:
        config_from_dict({**base, "server": {"workers": 2}})
    except ConfigError as exc:
        assert "workers = 2 needs a data_dir" in str(exc)
    else:
        raise AssertionError("workers > 1 without a data_dir must be refused")
    config = config_from_dict({**base, "server": {"data_dir": "data"}}, env={"LDF_SERVER__WORKERS": "auto"})
    assert config.server.worker_count == len(os.sched_getaffinity(0))
    config = config_from_dict({**base, "server": {"data_dir": "data"}}, env={"LDF_SERVER__WORKERS": "3"})
    assert config.server.worker_count == 3
    path = tmp_path / "c.toml"
    path.write_text('[server]\ndata_dir = "d"\n[[datasets]]\nid = "parking"\npilot = "parking"\n'
                    'title = { en = "P" }\ndescription = { en = "P" }\n')
    assert load_config(path, env={}, overrides={"workers": 2}).server.worker_count == 2
    for bad in (0, "many"):
        try:
            config_from_dict({**base, "server": {"data_dir": "d", "workers": bad}})
        except ConfigError as exc:
            assert "server.workers" in str(exc)
        else:
            raise AssertionError(f"workers = {bad!r} must be refused")


def test_a_follower_loads_the_leaders_day_snapshots_read_only_and_tails_past_them(tmp_path):
    from ldf_server.store import snapshot as snapshots

    clock = FakeClock("2026-03-31T12:00:00Z")
    day1 = parse_instant("2026-03-30T10:00:00Z")
    leader, follower, tail = pair(tmp_path, clock)
    leader.upsert_sites([SITE])
    leader.add([parking_member("gent/reep", day1 + i * 60_000, i % 7) for i in range(120)])
    leader.seal_before(parse_instant("2026-03-31T00:00:00Z"))
    assert snapshots.write_all(snapshots.due(leader, leader.journal)) == (1, 0)  # type: ignore[arg-type]
    leader.add([parking_member("gent/reep", parse_instant("2026-03-31T10:00:00Z"), 42)])
    before = file_states(tmp_path)
    loaded: list = []
    original = snapshots.load_snapshot

    def spy(store, snap, log_path):  # type: ignore[no-untyped-def]
        loaded.append(snap.name)
        return original(store, snap, log_path)

    snapshots.load_snapshot = spy  # type: ignore[assignment]
    try:
        assert tail.replay() == 121
    finally:
        snapshots.load_snapshot = original  # type: ignore[assignment]
    assert loaded == ["2026-03-30.snap"], "the closed day came from its snapshot"
    assert file_states(tmp_path) == before, "nothing written, nothing deleted"
    assert snapshot(follower) == snapshot(leader)
    leader.add([parking_member("gent/reep", parse_instant("2026-03-31T10:01:00Z"), 43)])
    assert tail.poll() == 1, "the reader of the snapshotted day starts after it; only the new member is read"
    assert snapshot(follower) == snapshot(leader)


def test_workers_with_a_system_picked_port_need_a_base_url(tmp_path):
    from tests.support.seeding import parking_dataset

    base = {"datasets": [parking_dataset()], "feeds": [], "push": []}
    try:
        config_from_dict({**base, "server": {"workers": 2, "port": 0, "data_dir": str(tmp_path)}}, env={})
    except ConfigError as exc:
        assert "base_url" in str(exc)
    else:
        raise AssertionError("accepted workers = 2 with port = 0 and no base_url")
    ok = config_from_dict({**base, "server": {"workers": 2, "port": 0, "data_dir": str(tmp_path),
                                              "base_url": "http://127.0.0.1:8080"}}, env={})
    assert ok.server.worker_count == 2


def test_a_reader_notices_when_what_it_read_was_cut_back_and_written_over(tmp_path):
    import pytest

    from ldf_server.store.log import LogDiverged, LogReader, encode_record

    path = tmp_path / "x.log"
    good = encode_record({"n": 0})
    path.write_bytes(good + encode_record({"n": 1, "a": 1.0}))
    reader = LogReader(path)
    assert [r["n"] for r in reader.poll()] == [0, 1]
    # The writer's fsync failed: it cuts record 1 back and appends others in its place.
    path.write_bytes(good + encode_record({"n": 2, "a": 2.0, "pad": "x" * 40}))
    with pytest.raises(LogDiverged, match="replaced"):
        reader.poll()
    path.write_bytes(good)
    with pytest.raises(LogDiverged, match="shorter"):
        reader.poll()
    fresh = LogReader(path)
    assert [r["n"] for r in fresh.poll()] == [0] and fresh.poll() == []
    path.unlink()
    assert fresh.poll() == [], "a file deleted by retention reads as nothing new"


def test_a_failed_poll_loses_nothing_and_an_idle_one_changes_nothing(tmp_path, monkeypatch):
    from ldf_server.store.log import LogReader

    clock = FakeClock("2026-03-31T12:00:00Z")
    t0 = parse_instant("2026-03-31T10:00:00Z")
    leader, follower, tail = pair(tmp_path, clock)
    leader.upsert_sites([SITE])
    leader.add([parking_member("gent/reep", t0, 1)])
    tail.replay()
    version = follower.version
    assert tail.poll() == 0 and follower.version == version, "an idle poll keeps every cached view valid"

    renamed = Site(key="gent/reep", label="Reep (renamed)", city="gent", capacity=500)
    leader.upsert_sites([renamed])
    leader.add([parking_member("gent/reep", t0 + 60_000, 2)])
    real_poll = LogReader.poll

    def day_files_fail(self):  # type: ignore[no-untyped-def]
        if self.path.name.endswith(".log") and self.path.parent.name == "days":
            raise OSError(24, "Too many open files")
        return real_poll(self)

    monkeypatch.setattr(LogReader, "poll", day_files_fail)
    try:
        tail.poll()
    except OSError:
        pass
    else:
        raise AssertionError("the failing read was not reported")
    monkeypatch.setattr(LogReader, "poll", real_poll)
    assert tail.poll() == 1
    assert follower.sites["gent/reep"] == renamed, "the site record read before the failure was read again"
    assert snapshot(follower) == snapshot(leader)


def test_auto_workers_honour_a_containers_cpu_quota(tmp_path):
    from ldf_server.config import usable_cpus

    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("50000 100000\n")  # half a CPU: still one process
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == affinity
    assert usable_cpus(tmp_path / "missing") == affinity
    cpu_max.write_text(f"{(affinity + 8) * 100000} 100000\n")
    assert usable_cpus(cpu_max) == affinity, "a quota above the CPUs there are changes nothing"


def test_a_follower_that_cannot_read_what_the_log_holds_stops_being_ready(tmp_path):
    from ldf_server.workers import STALL_LIMIT_S, _follow_check

    clock = FakeClock("2026-03-31T12:00:00Z")
    t0 = parse_instant("2026-03-31T10:00:00Z")
    leader, follower, tail = pair(tmp_path, clock)
    leader.upsert_sites([SITE])
    leader.add([parking_member("gent/reep", t0, 1)])
    tail.replay()
    assert tail.poll() == 0 and _follow_check(tail)[0] and tail.stalled_for(tail.bytes_behind()) == 0
    with open(tmp_path / "parking" / "days" / "2026-03-31.log", "ab") as f:
        f.write(b"\x40\x00\x00\x00half a record")  # the leader died in the middle of a write
    assert tail.poll() == 0 and tail.bytes_behind() > 0
    assert _follow_check(tail)[0], "a record being written is normal for a moment"
    tail.last_progress -= STALL_LIMIT_S + 1
    ok, detail = _follow_check(tail)
    assert not ok and "stalled" in detail
