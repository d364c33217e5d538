"""The durable log: torn tails, restarts that serve the same bytes, retention on disk, full disks."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
import hashlib

import pytest

from ldf_server.app import build_state, create_app, open_journals
from ldf_server.records import parking_member
from ldf_server.store.log import DatasetLog, LogError, LogReader, encode_record, read_records, recover
from ldf_server.timeutil import parse_instant
from tests.support.clock import FakeClock
from tests.support.seeding import make_config, parking_dataset, simulator_feed

NOW = "2026-03-31T12:07:30Z"


def test_recovery_cuts_a_torn_tail_at_every_byte_offset(tmp_path):
    path = tmp_path / "x.log"
    records = [{"n": i, "text": "é" * i} for i in range(5)]
    blobs = [encode_record(r) for r in records]
    full = b"".join(blobs)
    last_start = len(full) - len(blobs[-1])
    for cut in range(last_start, len(full)):
        path.write_bytes(full[:cut])
        result = recover(path)
        assert result.records == records[:-1], cut
        assert result.torn == (cut != last_start)
        assert path.stat().st_size == last_start, "the torn tail is removed"
        with open(path, "ab") as f:  # appends continue right after the good data
            f.write(blobs[-1])
        assert read_records(path).records == records


def test_a_corrupt_record_ends_the_readable_log(tmp_path):
    path = tmp_path / "x.log"
    blobs = [encode_record({"n": i}) for i in range(4)]
    data = bytearray(b"".join(blobs))
    data[len(blobs[0]) + len(blobs[1]) - 2] ^= 0xFF  # flip a bit in the payload of record 1
    path.write_bytes(bytes(data))
    result = recover(path)
    assert result.records == [{"n": 0}] and result.torn
    assert path.stat().st_size == len(blobs[0])
    aside = tmp_path / f"x.log.corrupt-{len(blobs[0])}"
    assert aside.read_bytes() == bytes(data[len(blobs[0]):]), "damage in the middle: the cut bytes are kept aside"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.log", aside.name]


def test_a_torn_tail_is_not_kept_aside(tmp_path):
    path = tmp_path / "x.log"
    blob = encode_record({"n": 1})
    path.write_bytes(encode_record({"n": 0}) + blob[:-3])
    assert recover(path).records == [{"n": 0}]
    assert [p.name for p in tmp_path.iterdir()] == ["x.log"], "an interrupted append is an expected crash, not damage"


def test_another_process_can_tail_the_log(tmp_path):
    journal = DatasetLog(tmp_path / "ds")
    t0 = parse_instant("2026-03-31T10:00:00Z")
    journal.append_members([parking_member("a/b", t0, 1)], at=1.0)
    reader = LogReader(tmp_path / "ds" / "days" / "2026-03-31.log")
    assert [r["t"] for r in reader.poll()] == [t0]
    assert reader.poll() == []
    blob = encode_record({"s": "a/b", "t": t0 + 1000, "v": {"vacantSpaces": 2}, "a": 2.0})
    with open(reader.path, "ab") as f:  # a writer in the middle of a record
        f.write(blob[:7])
        f.flush()
        assert reader.poll() == [], "half a record is never read"
        f.write(blob[7:])
    assert [r["t"] for r in reader.poll()] == [t0 + 1000]
    journal.close()


SYNTAXES = ("application/ld+json", "application/n-quads", "application/trig", "text/turtle",
            "application/n-triples", "text/html")


async def immutable_representations(client) -> dict[tuple[str, str], tuple[bytes, str, str]]:  # type: ignore[no-untyped-def]
    """(path, media type) → (body, ETag, Last-Modified) of every immutable resource of the dataset."""
    from tests.support.crawl import every_document

    found = {}
    for path in await every_document(client, "parking"):
        for media in SYNTAXES:
            resp = await client.get(path, headers={"Accept": media})
            if "immutable" in resp.headers.get("Cache-Control", ""):
                found[(path, media)] = (await resp.read(), resp.headers["ETag"], resp.headers["Last-Modified"])
    return found


def restart(config, clock, data_dir):
    state = build_state(config, clock=clock)
    open_journals(state, data_dir)
    return state


async def test_restart_serves_the_same_bytes_and_keeps_its_promises(aiohttp_client, tmp_path):
    clock = FakeClock(NOW)
    config = make_config(feeds=[simulator_feed(backfill="6h")])
    first = build_state(config, clock=clock)
    open_journals(first, tmp_path)
    for poller in first.pollers:
        poller.backfill()
    first.ready = True
    client = await aiohttp_client(create_app(config, state=first, run_feeds=False))
    page = "/parking/windows/2026-03-31T11:45:00Z"
    before = await client.get(page, headers={"Accept": "application/n-quads"})
    body, etag = await before.read(), before.headers["ETag"]
    latest = await (await client.get("/parking/latest")).read()
    immutable = await immutable_representations(client)
    assert len(immutable) >= 6 * 20, "precondition: every closed page in every syntax"
    for stream in first.streams.values():
        stream.store.journal.close()

    second = restart(config, clock, tmp_path)
    store = second.streams["parking"].store
    assert store.member_count == first.streams["parking"].store.member_count > 0
    assert store.sealed_before == first.streams["parking"].store.sealed_before
    second.ready = True
    client2 = await aiohttp_client(create_app(config, state=second, run_feeds=False))
    again = await client2.get(page, headers={"Accept": "application/n-quads"})
    assert await again.read() == body and again.headers["ETag"] == etag
    assert again.headers["Last-Modified"] == before.headers["Last-Modified"]
    assert await (await client2.get("/parking/latest")).read() == latest
    assert await immutable_representations(client2) == immutable, "every closed page, every syntax: same bytes and ETag"
    # The page was served as immutable before the restart: it still refuses late members.
    key = sorted(store.sites)[0]
    assert store.add([parking_member(key, parse_instant("2026-03-31T11:50:01Z"), 1)]).late == 1


async def test_retention_removes_days_on_disk_and_gone_pages_answer_410(aiohttp_client, tmp_path):
    clock = FakeClock("2026-03-31T06:00:00Z")
    config = make_config(datasets=[parking_dataset(retention="1d")], feeds=[simulator_feed(backfill="30h")])
    state = build_state(config, clock=clock)
    open_journals(state, tmp_path)
    for poller in state.pollers:
        poller.backfill()
    days = sorted(p.stem for p in (tmp_path / "parking" / "days").glob("*.log"))
    assert days == ["2026-03-30", "2026-03-31"]
    from ldf_server.app import apply_retention

    clock.set("2026-04-01T01:00:00Z")
    assert apply_retention(state) > 0
    assert sorted(p.stem for p in (tmp_path / "parking" / "days").glob("*.log")) == ["2026-03-31"]
    state.streams["parking"].store.journal.close()

    restarted = restart(config, clock, tmp_path)
    restarted.ready = True
    client = await aiohttp_client(create_app(config, state=restarted, run_feeds=False))
    gone = await client.get("/parking/windows/2026-03-30T12:00:00Z")
    assert gone.status == 410
    assert "retention" in (await gone.json(content_type=None))["detail"]
    assert (await client.get("/parking/windows/2026-03-31T01:00:00Z")).status == 200
    view = await (await client.get("/parking/view")).json(content_type=None)
    assert all("2026-03-30" not in r["node"] for r in view["@graph"][1]["relation"]), "no relation to a removed page"


async def test_a_day_is_unlinked_from_the_view_before_retention_removes_it(aiohttp_client):
    clock = FakeClock("2026-03-31T06:00:00Z")
    config = make_config(datasets=[parking_dataset(retention="1d")], feeds=[simulator_feed(backfill="30h")])
    state = build_state(config, clock=clock)
    for poller in state.pollers:
        poller.backfill()
    state.ready = True
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))

    async def linked_days() -> set[str]:
        resp = await client.get("/parking/view")
        view = await resp.json(content_type=None)
        node = next(n for n in view["@graph"] if n["@id"].endswith("/parking/view"))
        assert int(resp.headers["Cache-Control"].split("max-age=")[1].split(",")[0]) <= 3600
        return {r["node"].rsplit("/", 1)[1] for r in node["relation"]}

    # 2026-03-30 is removed when 2026-04-01 begins (1 day of retention after its end).
    clock.set("2026-03-31T22:59:00Z")
    assert "2026-03-30" in await linked_days()
    clock.set("2026-03-31T23:00:01Z")  # within the longest max-age of a view before removal
    assert await linked_days() == {"2026-03-31"}, "no cached view may outlive the day it links to"
    assert (await client.get("/parking/days/2026-03-30")).status == 200, "unlinked first, still served until removed"


def test_a_failed_write_stores_nothing_and_the_log_recovers(tmp_path, monkeypatch):
    clock = FakeClock(NOW)
    config = make_config(feeds=[simulator_feed(backfill="1h")])
    state = build_state(config, clock=clock)
    open_journals(state, tmp_path)
    for poller in state.pollers:
        poller.backfill()
    store = state.streams["parking"].store
    journal = store.journal
    count, version = store.member_count, store.version
    site = sorted(store.sites)[0]
    t = parse_instant(NOW) - 1000

    day_file = journal._appenders[next(k for k in journal._appenders if k.startswith("days/"))]
    real_file = day_file.file
    day_file.file = DiskFull(real_file)  # the next write lands half a record, then ENOSPC
    with pytest.raises(LogError):
        store.add([parking_member(site, t, 5)])
    assert store.member_count == count and store.version == version and store.newest(site).time != t
    assert journal.last_error and "No space left" in journal.last_error

    assert store.add([parking_member(site, t, 5)]).added == 1, "space is back: the retry is stored"
    assert journal.last_error is None
    journal.close()
    replayed = [r for r in DatasetLog(tmp_path / "parking").replay() if "t" in r]
    assert len(replayed) == count + 1, "the half-written record was rolled back, the retry is there once"


def _appended_log(tmp_path):
    log = DatasetLog(tmp_path / "ds")
    log._write("meta.log", encode_record({"n": 0}))
    return log, log._appenders["meta.log"]


def test_a_write_after_a_failed_repair_is_refused_until_the_file_is_cut_back(tmp_path, monkeypatch):
    journal, appender = _appended_log(tmp_path)
    appender.file = DiskFull(appender.file)
    real_open = open
    repairs_fail = True

    def open_failing_repair(path, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if mode == "r+b" and repairs_fail:
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", open_failing_repair)
    with pytest.raises(LogError):
        journal._write("meta.log", encode_record({"n": 1}))
    with pytest.raises(LogError, match="cannot repair"):
        journal._write("meta.log", encode_record({"n": 2}))  # would land after the half record
    assert journal.last_error and "cannot repair" in journal.last_error

    repairs_fail = False
    journal._write("meta.log", encode_record({"n": 3}))
    assert journal.last_error is None
    journal.close()
    result = recover(tmp_path / "ds" / "meta.log")
    assert result.records == [{"n": 0}, {"n": 3}] and not result.torn, "every acknowledged record survives recovery"


def test_a_file_that_cannot_be_reopened_gives_log_errors_not_crashes(tmp_path, monkeypatch):
    journal, appender = _appended_log(tmp_path)
    appender.file = DiskFull(appender.file)
    real_open = open
    reopen_fails = True

    def open_failing_append(path, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if mode == "ab" and reopen_fails:
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", open_failing_append)
    for n in (1, 2):
        with pytest.raises(LogError):  # not ValueError from a closed file
            journal._write("meta.log", encode_record({"n": n}))
    reopen_fails = False
    journal._write("meta.log", encode_record({"n": 3}))
    journal.close()
    assert recover(tmp_path / "ds" / "meta.log").records == [{"n": 0}, {"n": 3}]


class DiskFull:
    """A file whose writes put half the bytes on disk, then fail like a full disk."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real = real

    def write(self, blob: bytes) -> int:
        self.real.write(blob[: len(blob) // 2])
        self.real.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.real, name)


async def test_unwritable_data_directory_keeps_serving_and_refuses_pushes(aiohttp_client, tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    clock = FakeClock(NOW)
    config = make_config(
        datasets=[parking_dataset()], feeds=[simulator_feed(backfill="1h")],
        push=[{"id": "garage", "dataset": "parking", "key_sha256": hashlib.sha256(b"k").hexdigest(),
               "sites": [{"key": "gent/p7", "label": "P7", "capacity": 100}]}],
    )
    state = build_state(config, clock=clock)
    open_journals(state, blocker)
    for poller in state.pollers:
        poller.backfill()  # logs the error, does not crash
    journal = state.streams["parking"].store.journal
    assert journal.last_error
    state.ready = True
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    assert (await client.get("/parking/view")).status == 200
    record = {"site": "gent/p7", "observedAt": NOW, "vacantSpaces": 3}
    resp = await client.post("/parking/push/garage", json=record, headers={"Authorization": "Bearer k"})
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert "nothing was stored" in (await resp.json(content_type=None))["detail"]
    assert state.streams["parking"].store.newest("gent/p7") is None


async def test_readiness_and_metrics_follow_the_log(aiohttp_client, tmp_path):
    clock = FakeClock(NOW)
    config = make_config(feeds=[simulator_feed(backfill="1h")], data_dir=str(tmp_path))
    state = build_state(config, clock=clock)
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))  # opens the journals
    store = state.streams["parking"].store
    for poller in state.pollers:
        poller.backfill()
    site = sorted(store.sites)[0]
    assert (await client.get("/health/ready")).status == 200
    metrics = await (await client.get("/metrics")).text()
    appended = [line for line in metrics.splitlines() if line.startswith("ldf_log_appended_bytes_total")]
    assert appended and float(appended[0].split()[-1]) == store.journal.bytes_appended > 0

    day_file = store.journal._appenders[next(k for k in store.journal._appenders if k.startswith("days/"))]
    day_file.file = DiskFull(day_file.file)
    with pytest.raises(LogError):
        store.add([parking_member(site, parse_instant(NOW) - 500, 1)])
    ready = await client.get("/health/ready")
    assert ready.status == 503
    assert "No space left" in str(await ready.json())
    # The failed write was rolled back and the file reopened: space is back.
    store.add([parking_member(site, parse_instant(NOW) - 400, 1)])
    assert (await client.get("/health/ready")).status == 200


async def test_readiness_recovers_without_new_data_once_the_log_can_write(aiohttp_client, tmp_path):
    import asyncio

    from ldf_server.app import _probe_failed_journals

    clock = FakeClock(NOW)
    config = make_config(feeds=[simulator_feed(backfill="1h")], data_dir=str(tmp_path))
    state = build_state(config, clock=clock)
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    store = state.streams["parking"].store
    for poller in state.pollers:
        poller.backfill()
    day_file = store.journal._appenders[next(k for k in store.journal._appenders if k.startswith("days/"))]
    day_file.file = DiskFull(day_file.file)
    with pytest.raises(LogError):
        store.add([parking_member(sorted(store.sites)[0], parse_instant(NOW) - 500, 1)])
    assert (await client.get("/health/ready")).status == 503
    count = store.member_count

    probe = asyncio.create_task(_probe_failed_journals(state, every=0.01))  # no member arrives meanwhile
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if store.journal.last_error is None:
                break
    finally:
        probe.cancel()
    assert (await client.get("/health/ready")).status == 200, "a successful probe write brings readiness back"
    assert store.member_count == count


def test_a_day_file_that_cannot_be_deleted_leaves_memory_consistent_and_is_retried(tmp_path, monkeypatch):
    from pathlib import Path

    from ldf_server.app import apply_retention

    clock = FakeClock("2026-03-31T06:00:00Z")
    config = make_config(datasets=[parking_dataset(retention="1d")], feeds=[simulator_feed(backfill="30h")])
    state = build_state(config, clock=clock)
    open_journals(state, tmp_path)
    for poller in state.pollers:
        poller.backfill()
    store = state.streams["parking"].store
    real_unlink = Path.unlink

    def refuse(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    clock.set("2026-04-01T01:00:00Z")
    removed = apply_retention(state)  # does not raise
    assert removed > 0
    kept = sum(len(store.window(s).members) for s in store.window_starts())
    assert store.member_count == kept, "memory is consistent although the disk refused"
    assert all(m.time >= store.retained_from for series in store.latest.values() for m in series.values())
    assert "2026-03-30" in store.journal.last_error
    assert (tmp_path / "parking" / "days" / "2026-03-30.log").exists()

    # Replay skips what fell out of retention even while its file is still there.
    store.journal.close()
    again = restart(config, clock, tmp_path).streams["parking"].store
    assert again.member_count == kept

    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert again.compact(parse_instant("2026-03-31T00:00:00Z")) == 0  # the next round, nothing new to drop...
    assert not (tmp_path / "parking" / "days" / "2026-03-30.log").exists(), "...deletes what was left"
    assert again.member_count == kept
    assert not (tmp_path / "parking" / "days" / "2026-03-30.log").exists()


def test_interval_mode_syncs_every_written_file_once_the_interval_has_passed(tmp_path, monkeypatch):
    import ldf_server.store.log as log_module

    synced: list[str] = []
    real_fsync = log_module.os.fsync
    monkeypatch.setattr(log_module.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    journal = DatasetLog(tmp_path / "ds", fsync="interval", fsync_interval=60)
    t0 = parse_instant("2026-03-31T10:00:00Z")
    journal.append_members([parking_member("a/b", t0, 1)], at=1.0)  # the first write: the interval has passed since 0
    assert [Path(p).name for p in synced] == ["2026-03-31.log"]
    synced.clear()
    journal.append_sites([])
    journal.append_horizons({"sealed_before": t0, "retained_from": 0, "first_seen": t0})
    journal.append_members([parking_member("a/b", t0 + 1000, 2)], at=2.0)
    assert synced == [], "within the interval: no sync"
    assert journal.sync_due() == 0
    later = time.monotonic() + 61
    assert journal.sync_due(now=later) == 2, "after a quiet interval, both files written meanwhile are synced"
    assert sorted(Path(p).name for p in synced) == ["2026-03-31.log", "meta.log"]
    assert journal.sync_due(now=later + 61) == 0, "nothing written since: nothing to sync"
    journal.close()
