"""Day snapshots: a restart that loads them holds exactly what replaying the log gives, and a
snapshot that cannot be trusted is ignored, never believed."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest

from ldf_server.app import _snapshot_closed_days, apply_retention, build_state, open_journals
from ldf_server.fragments.timeline import Timeline
from ldf_server.records import parking_member
from ldf_server.store import snapshot
from ldf_server.store.log import DatasetLog, encode_record, read_records
from ldf_server.store.memory import DatasetStore
from ldf_server.timeutil import parse_instant
from tests.support.clock import FakeClock
from tests.support.seeding import crowd_dataset, crowd_feed, make_config, parking_dataset, simulator_feed

NOW = "2026-03-31T06:00:00Z"
DAY = 86_400_000


def config(window: str = "15m", retention: str = "7d"):  # type: ignore[no-untyped-def]
    return make_config(
        datasets=[parking_dataset(window=window, retention=retention), crowd_dataset(retention=retention)],
        feeds=[simulator_feed(backfill="54h"), crowd_feed(backfill="54h")],
    )


def content(store: DatasetStore) -> dict:
    """Everything a page or ``latest`` is built from, comparable with ==."""
    windows = {}
    for start in store.window_starts():
        w = store.window(start)
        windows[start] = (w.modified, [(m.site, m.time, orjson.dumps(m.values), m.series) for m in w.members])
    latest = {site: {r: (m.time, orjson.dumps(m.values)) for r, m in series.items()} for site, series in store.latest.items()}
    return {"windows": windows, "latest": latest, "count": store.member_count, "first_seen": store.first_seen,
            "sealed": store.sealed_before, "retained": store.retained_from}


def write_history(cfg, data_dir: Path, clock) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """Backfill into a logged store, seal the closed days and write their snapshots."""
    state = build_state(cfg, clock=clock)
    open_journals(state, data_dir)
    for poller in state.pollers:
        poller.backfill()
    out = {}
    for ds, stream in state.streams.items():
        stream.store.seal_before(Timeline.day_start(int(clock() * 1000) - stream.timeline.grace_ms))
        captures = list(snapshot.due(stream.store, stream.store.journal))
        assert snapshot.write_all(captures) == (len(captures), 0)
        out[ds] = content(stream.store)
        stream.store.journal.close()
    return out


def from_log_only(cfg, data_dir: Path, clock) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """What a replay of the log alone gives (snapshots ignored): the reference."""
    state = build_state(cfg, clock=clock)
    out = {}
    for ds, stream in state.streams.items():
        stream.store.restore(DatasetLog(data_dir / ds).replay())
        out[ds] = content(stream.store)
    return out


def restarted(cfg, data_dir: Path, clock, offsets: list | None = None, monkeypatch=None) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    if offsets is not None:
        original = DatasetLog.replay_day

        def spy(self, path, offset=0):  # type: ignore[no-untyped-def]
            offsets.append((path.parent.parent.name, path.stem, offset, path.stat().st_size))
            return original(self, path, offset)

        monkeypatch.setattr(DatasetLog, "replay_day", spy)
    state = build_state(cfg, clock=clock)
    open_journals(state, data_dir)
    out = {ds: content(stream.store) for ds, stream in state.streams.items()}
    for stream in state.streams.values():
        stream.store.journal.close()
    return out


def test_a_restart_from_snapshots_holds_exactly_what_the_log_replays(tmp_path, monkeypatch):
    clock = FakeClock(NOW)
    cfg = config()
    written = write_history(cfg, tmp_path, clock)
    snaps = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.snap"))
    assert snaps == [f"{ds}/days/2026-03-{d}.snap" for ds in ("crowds", "parking") for d in ("29", "30")], \
        "the two closed days of each dataset, not today"
    reference = from_log_only(cfg, tmp_path, clock)
    offsets: list = []
    again = restarted(cfg, tmp_path, clock, offsets, monkeypatch)
    assert again == written == reference
    assert len(offsets) == 6
    for ds, day, offset, size in offsets:
        assert offset == (size if day < "2026-03-31" else 0), (ds, day, "closed days come from their snapshot")
    assert written["parking"]["count"] > 500 and written["crowds"]["count"] > 500


def test_records_after_a_snapshot_are_replayed_from_the_log(tmp_path, monkeypatch):
    clock = FakeClock(NOW)
    cfg = config()
    written = write_history(cfg, tmp_path, clock)
    journal = DatasetLog(tmp_path / "parking")  # members of a closed day, written later (an import, say)
    key = sorted(written["parking"]["latest"])[0]
    journal.append_members([parking_member(key, parse_instant("2026-03-30T10:00:00.500Z"), 3)], at=1.0)
    journal.close()
    reference = from_log_only(cfg, tmp_path, clock)
    offsets: list = []
    again = restarted(cfg, tmp_path, clock, offsets, monkeypatch)
    assert ("parking", "2026-03-30") in {(ds, day) for ds, day, offset, size in offsets if 0 < offset < size}
    assert again == reference
    assert any(m[1] == parse_instant("2026-03-30T10:00:00.500Z")
               for w in again["parking"]["windows"].values() for m in w[1])


def _corrupt_snapshot(data_dir: Path) -> None:
    snap = data_dir / "parking" / "days" / "2026-03-30.snap"
    raw = bytearray(snap.read_bytes())
    raw[-3] ^= 0x01
    snap.write_bytes(bytes(raw))


def _cut_log(data_dir: Path) -> None:
    path = data_dir / "parking" / "days" / "2026-03-30.log"
    records = read_records(path).records
    path.write_bytes(b"".join(encode_record(r) for r in records[: len(records) // 2]))


def _same_size_other_log(data_dir: Path) -> None:
    path = data_dir / "parking" / "days" / "2026-03-30.log"
    records = read_records(path).records
    last = records[-1]["v"]
    last["vacantSpaces"] = (last["vacantSpaces"] + 1) % 10 if last["vacantSpaces"] < 9 else last["vacantSpaces"] - 1
    blob = b"".join(encode_record(r) for r in records)
    assert len(blob) == path.stat().st_size, "precondition: the same size, other bytes"
    path.write_bytes(blob)


@pytest.mark.parametrize("damage, reason", [
    (_corrupt_snapshot, "checksum"),
    (_cut_log, "shorter"),
    (_same_size_other_log, "not the one"),
])
def test_a_snapshot_that_cannot_be_trusted_is_ignored(tmp_path, caplog, damage, reason):
    clock = FakeClock(NOW)
    cfg = config()
    written = write_history(cfg, tmp_path, clock)
    damage(tmp_path)
    with caplog.at_level(logging.WARNING):
        again = restarted(cfg, tmp_path, clock)
    assert again == from_log_only(cfg, tmp_path, clock)
    assert any(reason in r.getMessage() and "2026-03-30.snap" in r.getMessage() for r in caplog.records)
    if damage is _corrupt_snapshot:
        assert again == written, "nothing was lost: the log had it all"


def test_a_snapshot_made_with_other_windows_is_ignored(tmp_path, caplog):
    clock = FakeClock(NOW)
    write_history(config(window="15m"), tmp_path, clock)
    other = config(window="5m")
    with caplog.at_level(logging.WARNING):
        again = restarted(other, tmp_path, clock)
    assert again == from_log_only(other, tmp_path, clock)
    assert all(len(w[1]) == 0 or all(m[1] // 300_000 == start // 300_000 for m in w[1])
               for start, w in again["parking"]["windows"].items())
    assert any("windows of 900000 ms" in r.getMessage() for r in caplog.records)


def test_tables_that_disagree_are_renumbered(tmp_path):
    clock = FakeClock(NOW)
    cfg = config()
    write_history(cfg, tmp_path, clock)
    state = build_state(cfg, clock=clock)
    for stream in state.streams.values():  # a store whose tables already hold other entries
        stream.store.names.id_of("elsewhere/zzz")
        stream.store.shared_values.id_of({"vacantSpaces": True})
    open_journals(state, tmp_path)
    assert {ds: content(s.store) for ds, s in state.streams.items()} == from_log_only(cfg, tmp_path, clock)


def test_retention_deletes_a_snapshot_with_its_day(tmp_path):
    clock = FakeClock(NOW)
    cfg = config(retention="1d")
    write_history(cfg, tmp_path, clock)
    assert (tmp_path / "parking" / "days" / "2026-03-29.snap").exists()
    state = build_state(cfg, clock=clock)
    open_journals(state, tmp_path)
    apply_retention(state)
    days = tmp_path / "parking" / "days"
    assert sorted(p.name for p in days.iterdir()) == ["2026-03-30.log", "2026-03-30.snap", "2026-03-31.log"]


async def test_the_server_seals_closed_days_and_writes_their_snapshots(tmp_path):
    clock = FakeClock(NOW)
    cfg = config()
    state = build_state(cfg, clock=clock)
    open_journals(state, tmp_path)
    for poller in state.pollers:
        poller.backfill()
    task = asyncio.create_task(_snapshot_closed_days(state, every=3600))
    try:
        for _ in range(200):
            if len(list(tmp_path.rglob("*.snap"))) == 4:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(list(tmp_path.rglob("*.snap"))) == 4
    for stream in state.streams.values():
        assert stream.store.sealed_before == parse_instant("2026-03-31T00:00:00Z"), "closed days are sealed first"
        stream.store.journal.close()
    assert restarted(cfg, tmp_path, clock) == {ds: content(s.store) for ds, s in state.streams.items()}


# -- regressions found in review ---------------------------------------------------------------


def _snap(data_dir: Path, day: str = "2026-03-30") -> Path:
    return data_dir / "parking" / "days" / f"{day}.snap"


def test_a_damaged_fixed_header_field_is_caught_and_the_snapshot_rewritten(tmp_path, caplog):
    clock = FakeClock(NOW)
    cfg = config()
    written = write_history(cfg, tmp_path, clock)
    raw = bytearray(_snap(tmp_path).read_bytes())
    raw[16] ^= 0x01  # the header length: outside what the first crc covered
    _snap(tmp_path).write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        assert restarted(cfg, tmp_path, clock) == written
    assert any("checksum" in r.getMessage() for r in caplog.records)
    assert not _snap(tmp_path).exists(), "an unusable snapshot is deleted..."
    state = build_state(cfg, clock=clock)
    open_journals(state, tmp_path)
    store = state.streams["parking"].store
    assert [c.log_path.stem for c in snapshot.due(store, store.journal)] == ["2026-03-30"], "...and written again"
    store.journal.close()


def test_damage_at_the_start_of_a_log_is_seen_through_its_snapshot(tmp_path):
    clock = FakeClock(NOW)
    cfg = config()
    write_history(cfg, tmp_path, clock)
    path = tmp_path / "parking" / "days" / "2026-03-30.log"
    raw = bytearray(path.read_bytes())
    raw[12] ^= 0x01  # inside the first record's payload
    path.write_bytes(bytes(raw))
    reference = from_log_only(cfg, tmp_path, clock)  # keeps nothing of that day from the damage on
    assert restarted(cfg, tmp_path, clock) == reference


def test_a_batch_over_two_days_is_all_or_nothing_in_the_log(tmp_path, monkeypatch):
    import ldf_server.store.log as log_module

    journal = DatasetLog(tmp_path / "parking")
    t0 = parse_instant("2026-03-30T23:59:00Z")
    journal.append_members([parking_member("a/b", t0, 1)], at=1.0)
    day1 = tmp_path / "parking" / "days" / "2026-03-30.log"
    size = day1.stat().st_size
    write = log_module._Appender.write

    def full_disk_on_the_second_day(self, blob, *, sync):  # type: ignore[no-untyped-def]
        if self.path.name == "2026-03-31.log":
            raise OSError(28, "No space left on device")
        return write(self, blob, sync=sync)

    monkeypatch.setattr(log_module._Appender, "write", full_disk_on_the_second_day)
    with pytest.raises(log_module.LogError):
        journal.append_members([parking_member("a/b", t0 + 1000, 2), parking_member("a/b", t0 + 120_000, 3)], at=2.0)
    assert day1.stat().st_size == size, "the first day keeps none of a batch the store refused"
    monkeypatch.setattr(log_module._Appender, "write", write)
    journal.append_members([parking_member("a/b", t0 + 2000, 4)], at=3.0)
    assert [r["v"]["vacantSpaces"] for r in read_records(day1).records] == [1, 4]
    journal.close()


def test_zero_and_negative_zero_are_kept_apart():
    store = DatasetStore("x", 60_000)
    t0 = parse_instant("2026-03-30T10:00:00Z")
    store.restore([{"s": "a", "t": t0, "v": {"x": 0.0}}, {"s": "b", "t": t0, "v": {"x": -0.0}}])
    assert [orjson.dumps(m.values) for m in store.window(t0).members] == [b'{"x":0.0}', b'{"x":-0.0}']


def test_a_capture_is_not_changed_by_what_the_store_does_next(tmp_path):
    clock = FakeClock(NOW)
    cfg = config()
    state = build_state(cfg, clock=clock)
    open_journals(state, tmp_path)
    for poller in state.pollers:
        poller.backfill()
    store = state.streams["parking"].store
    store.seal_before(parse_instant("2026-03-31T00:00:00Z"))
    captures = list(snapshot.due(store, store.journal))
    before = [(c.day, [(w.times.tobytes(), w.sites.tobytes(), w.values.tobytes()) for w in c.windows]) for c in captures]
    start = store.window_starts(parse_instant("2026-03-30T00:00:00Z"))[0]
    store.restore([{"s": "zz/new-site", "t": start + 1, "v": {"vacantSpaces": 1}}])  # what a follower's tail does
    assert before == [(c.day, [(w.times.tobytes(), w.sites.tobytes(), w.values.tobytes()) for w in c.windows]) for c in captures]
    store.journal.close()


def test_retention_removes_a_snapshot_whose_log_is_gone(tmp_path):
    days = tmp_path / "parking" / "days"
    days.mkdir(parents=True)
    (days / "2026-03-20.snap").write_bytes(b"orphan")
    (days / "2026-03-21.snap.tmp").write_bytes(b"crashed write")
    (days / "2026-03-29.snap").write_bytes(b"kept: after the cutoff")
    journal = DatasetLog(tmp_path / "parking")
    journal.drop_days_before(parse_instant("2026-03-25T00:00:00Z"))
    assert sorted(p.name for p in days.iterdir()) == ["2026-03-29.snap"]
