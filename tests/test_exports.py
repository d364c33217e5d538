"""Exports for researchers: `ldf-server export` / `import`, the dataset lock, the daily dumps."""

from __future__ import annotations

import os
import gzip
import json
from pathlib import Path

import pytest
import rdflib

from ldf_server import cli, exports
from ldf_server.app import apply_retention, build_state, create_app, open_journals
from ldf_server.fragments.timeline import DAY_MS
from ldf_server.rdf.syntaxes import NQUADS, TRIG
from ldf_server.records import parking_member
from ldf_server.store.lock import DatasetLock, LockedError
from ldf_server.store.log import DatasetLog
from ldf_server.store.memory import DatasetStore
from ldf_server.timeutil import format_instant, parse_instant
from ldf_server.vocabularies import MEDIA_GZIP, MEDIA_NQUADS, PROV
from tests.support.clock import FakeClock
from tests.support.rdfcheck import assert_same_triples
from tests.support.seeding import (
    BASE, crowd_dataset, crowd_feed, make_config, parking_dataset, seeded_state, simulator_feed,
)

NOW = "2026-03-31T12:07:30Z"
DAY = "2026-03-30"  # closed at NOW; the simulator's 30 h of history start on it at 06:07:30
DAY_START = parse_instant(DAY + "T00:00:00Z")
GENERATED = rdflib.URIRef(PROV + "generatedAtTime")


def parking_config(data_dir: Path | None = None):  # type: ignore[no-untyped-def]
    extra = {"data_dir": str(data_dir)} if data_dir else {}
    return make_config(feeds=[simulator_feed(backfill="30h")], fsync="never", **extra)


def fill(config, data_dir: Path) -> DatasetStore:  # type: ignore[no-untyped-def]
    """A data directory holding the simulator's backfill, as a server would have logged it."""
    state = build_state(config, clock=FakeClock(NOW))
    open_journals(state, data_dir)
    for poller in state.pollers:
        poller.backfill()
    for stream in state.streams.values():
        stream.store.journal.close()  # type: ignore[union-attr]
    return next(iter(state.streams.values())).store


def restored(config, data_dir: Path, ds: str = "parking") -> DatasetStore:  # type: ignore[no-untyped-def]
    cfg = next(d for d in config.datasets if d.id == ds)
    store = DatasetStore(ds, int(cfg.window * 1000), pilot=cfg.pilot)
    store.restore(DatasetLog(data_dir / ds).replay())
    return store


def quads(path: Path, fmt: str) -> rdflib.Dataset:
    ds = rdflib.Dataset()
    ds.parse(data=gzip.decompress(path.read_bytes()).decode(), format=fmt)
    return ds


def triples(ds: rdflib.Dataset) -> set:
    return {(s, p, o) for s, p, o, _ in ds.quads((None, None, None, None))}


async def served_member_triples(client, store: DatasetStore, lo: int, hi: int) -> set:  # type: ignore[no-untyped-def]
    """The data (default graph) of every window page in [lo, hi), fetched as N-Quads."""
    out: set = set()
    for start in store.window_starts(lo, hi):
        resp = await client.get(f"/parking/windows/{format_instant(start)}", headers={"Accept": NQUADS})
        assert resp.status == 200
        page = rdflib.Dataset()
        page.parse(data=await resp.text(), format="nquads")
        out |= set(page.default_graph.triples((None, None, None)))
    return out


def members_of(store: DatasetStore) -> list:
    return store.members_between(0, 2**53)


async def test_export_equals_the_served_pages_and_import_is_refused_while_the_server_runs(aiohttp_client, tmp_path):
    data = tmp_path / "data"
    config = parking_config(data)
    fill(config, data)
    state = build_state(config, clock=FakeClock(NOW))
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))  # replays the log, takes the lock
    store = state.streams["parking"].store
    out = tmp_path / "day.nq.gz"
    result = exports.export(config, data, "parking", DAY_START, DAY_START + DAY_MS, NQUADS, out, progress=False)
    assert result.members == len(store.members_between(DAY_START, DAY_START + DAY_MS)) > 100

    dump = triples(quads(out, "nquads"))
    sites = {rdflib.URIRef(f"{BASE}/parking/sites/{key}") for key in store.sites}
    assert {t for t in dump if t[0] not in sites} == await served_member_triples(client, store, DAY_START, DAY_START + DAY_MS)
    assert {t[0] for t in dump if t[0] in sites} == sites, "every site description is in the dump"
    assert result.triples == len(dump)

    with pytest.raises(LockedError, match="in use"):
        exports.load(config, data, "parking", out, progress=False)
    with pytest.raises(LockedError, match="in use"):  # nor does a second server start on it
        await aiohttp_client(create_app(config, state=build_state(config, clock=FakeClock(NOW)), run_feeds=False))
    await client.close()  # the server stops and releases its lock
    assert exports.load(config, data, "parking", out, progress=False).added == 0


def test_round_trip_through_nquads_and_trig_restores_the_store_and_reimport_stores_nothing(tmp_path):
    source, target = tmp_path / "a", tmp_path / "b"
    config = parking_config(source)
    original = fill(config, source)
    lo, hi = parse_instant("2026-03-30T00:00:00Z"), parse_instant("2026-04-01T00:00:00Z")
    nq, trig = tmp_path / "all.nq.gz", tmp_path / "all.trig.gz"
    exports.export(config, source, "parking", lo, hi, NQUADS, nq, progress=False)
    exports.export(config, source, "parking", lo, hi, TRIG, trig, progress=False)
    assert triples(quads(nq, "nquads")) == triples(quads(trig, "trig")), "both syntaxes carry the same triples"

    first = exports.load(config, target, "parking", nq, progress=False)
    assert first.added == original.member_count and first.rejected_total == 0
    copy = restored(config, target)
    assert members_of(copy) == members_of(original)
    assert copy.sites == original.sites

    sizes = {p.name: p.stat().st_size for p in (target / "parking").rglob("*.log")}
    for dump in (trig, nq):
        again = exports.load(config, target, "parking", dump, progress=False)
        assert again.added == 0 and again.duplicates == original.member_count
    assert {p.name: p.stat().st_size for p in (target / "parking").rglob("*.log")} == sizes, "re-import wrote nothing"

    re_export = tmp_path / "again.nq.gz"
    exports.export(config, target, "parking", lo, hi, NQUADS, re_export, progress=False)
    assert re_export.read_bytes() == nq.read_bytes(), "the copy exports byte for byte the same dump"


def test_crowdedness_round_trip_keeps_series_and_nested_phenomenon_times(tmp_path):
    source, target = tmp_path / "a", tmp_path / "b"
    config = make_config(datasets=[crowd_dataset()], feeds=[crowd_feed(backfill="30h")], fsync="never")
    original = fill(config, source)
    assert any(m.series for m in members_of(original)) and any("phenomenonTime" in m.values for m in members_of(original))
    out = tmp_path / "crowds.trig.gz"
    exports.export(config, source, "crowds", 0, parse_instant(NOW), TRIG, out, progress=False)
    assert any(isinstance(o, rdflib.BNode) for o in quads(out, "trig").objects()), "intervals are blank nodes"
    assert exports.load(config, target, "crowds", out, progress=False).added == original.member_count
    copy = restored(config, target, "crowds")
    assert members_of(copy) == members_of(original)


def test_time_range_is_from_inclusive_to_exclusive(tmp_path):
    data = tmp_path / "data"
    config = parking_config(data)
    store = fill(config, data)
    times = sorted({m.time for m in members_of(store)})
    lo, hi = times[10], times[20]  # both instants carry members
    out = tmp_path / "range.nq.gz"
    result = exports.export(config, data, "parking", lo, hi, NQUADS, out, progress=False)
    stamps = {parse_instant(str(o)) for o in quads(out, "nquads").objects(None, GENERATED)}
    assert stamps == set(times[10:20])
    assert result.members == len(store.members_between(lo, hi))


def _run_with_terminal_stderr(args: list[str]) -> tuple[bytes, bytes]:
    """Run the CLI in a child whose stderr is a pseudo-terminal (as in an operator's shell)."""
    import os
    import pty
    import subprocess
    import sys

    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # rows, columns
    proc = subprocess.Popen([sys.executable, "-m", "ldf_server", *args], stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    err = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    out = proc.stdout.read()  # type: ignore[union-attr]
    assert proc.wait(timeout=120) == 0, err
    os.close(leader)
    return out, err


def test_cli_export_shows_progress_on_a_terminal_and_import_reports_a_lock(tmp_path, capsys):
    data = tmp_path / "data"
    config_file = tmp_path / "c.toml"
    config_file.write_text(
        f'[server]\nbase_url = "{BASE}"\n\n[[datasets]]\nid = "parking"\npilot = "parking"\nlicence = "cc0"\n'
        'window = "15m"\ntitle = { en = "P", nl = "P" }\ndescription = { en = "P", nl = "P" }\n'
    )
    fill(parking_config(data), data)
    out = tmp_path / "x.trig.gz"
    args = ["export", "-c", str(config_file), "--data-dir", str(data), "parking", "--from", DAY, "--to", "2026-03-31", "-o", str(out)]
    out_text, err_text = _run_with_terminal_stderr(args)
    assert out_text == b""
    assert b"export parking" in err_text and b"100%" in err_text and b"members" in err_text, "a terminal gets the bar"
    assert len(quads(out, "trig")) > 1000, "--format follows the file name"

    assert cli.main(["export", "-c", str(config_file), "--data-dir", str(data), "parking", "--from", "yesterday",
                     "--to", DAY, "-o", str(out)]) == 2
    with DatasetLock(data / "parking"):
        assert cli.main(["import", "-c", str(config_file), "--data-dir", str(data), "--no-progress", "parking", str(out)]) == 1
    assert "in use by another process" in capsys.readouterr().err
    assert cli.main(["import", "-c", str(config_file), "--data-dir", str(data), "--no-progress", "parking", str(out)]) == 0
    assert "0 new members" in capsys.readouterr().err


@pytest.fixture
def dump_clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def dump_client(aiohttp_client, dump_clock):  # type: ignore[no-untyped-def]
    config = make_config(datasets=[parking_dataset(retention="7d")], feeds=[simulator_feed(backfill="30h")])
    state = seeded_state(config, dump_clock)
    return await aiohttp_client(create_app(config, state=state, run_feeds=False)), state


async def problem(resp, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    return await resp.json(content_type=None)


async def test_day_dump_is_the_days_members_immutable_and_seals_the_day(dump_client):
    client, state = dump_client
    store = state.streams["parking"].store
    assert store.sealed_before < DAY_START + DAY_MS
    resp = await client.get(f"/parking/dumps/{DAY}.nq.gz")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/gzip"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="parking-{DAY}.nq.gz"'
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    body = await resp.read()
    dump = rdflib.Dataset()
    dump.parse(data=gzip.decompress(body).decode(), format="nquads")
    sites = {rdflib.URIRef(f"{BASE}/parking/sites/{key}") for key in store.sites}
    data = triples(dump)
    assert {t for t in data if t[0] not in sites} == await served_member_triples(client, store, DAY_START, DAY_START + DAY_MS)
    assert store.sealed_before >= DAY_START + DAY_MS
    late = store.add([parking_member(sorted(store.sites)[0], DAY_START + DAY_MS - 1000, 1)])
    assert late.late == 1, "a served dump never changes"

    again = await client.get(f"/parking/dumps/{DAY}.nq.gz", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304 and again.headers["ETag"] == resp.headers["ETag"]


async def test_dumps_index_lists_closed_days_and_the_catalog_links_it(dump_client):
    client, _ = dump_client
    moved = await client.get("/parking/dumps", allow_redirects=False)
    assert moved.status == 301 and moved.headers["Location"] == f"{BASE}/parking/dumps/"
    resp = await client.get("/parking/dumps/")
    assert resp.status == 200
    body = await resp.read()
    assert_same_triples(body)
    [dataset] = json.loads(body)["@graph"]
    assert [d["downloadURL"] for d in dataset["distribution"]] == [f"{BASE}/parking/dumps/{DAY}.nq.gz"], "today is not over"
    assert dataset["distribution"][0]["mediaType"] == MEDIA_NQUADS
    turtle = await client.get("/parking/dumps/", headers={"Accept": "text/turtle"})
    assert len(rdflib.Graph().parse(data=await turtle.text(), format="turtle")) == len(assert_same_triples(body))

    catalog = json.loads(await (await client.get("/")).read())
    [parking] = [d for d in catalog["dataset"] if d["@id"] == f"{BASE}/parking#dataset"]
    [dist] = [d for d in parking["distribution"] if d["accessURL"] == f"{BASE}/parking/dumps/"]
    assert dist["mediaType"] == MEDIA_NQUADS and dist["compressFormat"] == MEDIA_GZIP


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("2026-03-31.nq.gz", 409),  # today: not over yet
        ("2026-13-01.nq.gz", 400),
        ("2026-02-30.nq.gz", 400),
        ("latest.nq.gz", 400),
        (f"{DAY}.ttl", 400),
        ("2026-04-02.nq.gz", 404),  # the future
        ("2026-03-01.nq.gz", 404),  # before the stream
    ],
)
async def test_dump_errors_are_problems(dump_client, name, status):
    client, _ = dump_client
    body = await problem(await client.get(f"/parking/dumps/{name}"), status)
    assert body["status"] == status and body["detail"]


async def test_dump_of_a_day_without_members_is_404_and_after_retention_410(dump_client, dump_clock):
    client, state = dump_client
    dump_clock.set("2026-04-02T12:00:00Z")  # 2026-04-01 had no members (the feed is not polling)
    body = await problem(await client.get("/parking/dumps/2026-04-01.nq.gz"), 404)
    assert "no members" in body["detail"]
    dump_clock.set("2026-04-08T12:00:00Z")
    apply_retention(state)
    await problem(await client.get(f"/parking/dumps/{DAY}.nq.gz"), 410)
    retry = await client.get("/parking/dumps/2026-04-08.nq.gz")
    assert (await problem(retry, 409))["title"] == "Day not closed" and int(retry.headers["Retry-After"]) > 0


async def test_concurrent_first_requests_share_one_build(dump_client, monkeypatch):
    from ldf_server.http import dumps

    client, _ = dump_client
    calls: list[int] = []
    real = dumps.gzipped_dump

    def counting(*args):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(dumps, "gzipped_dump", counting)
    import asyncio

    responses = await asyncio.gather(*(client.get(f"/parking/dumps/{DAY}.nq.gz") for _ in range(3)))
    bodies = {await r.read() for r in responses}
    assert [r.status for r in responses] == [200, 200, 200] and len(bodies) == 1
    assert calls == [1]


async def test_a_served_page_in_nquads_imports_and_a_broken_file_is_refused(aiohttp_client, tmp_path, capsys):
    """Import reads any N-Quads of our members, also with named graphs (a page's metadata);
    members of sites it is not told about are rejected, as from a feed."""
    config = parking_config()
    state = seeded_state(config, FakeClock(NOW))
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    store = state.streams["parking"].store
    start = store.window_starts(DAY_START, DAY_START + DAY_MS)[3]
    page = await client.get(f"/parking/windows/{format_instant(start)}", headers={"Accept": NQUADS})
    text = await page.text()
    assert "#metadata>" in text, "the page has a named graph"
    alone = tmp_path / "alone.nq"
    alone.write_text(text)
    rejected = exports.load(config, tmp_path / "empty", "parking", alone, progress=False)
    assert rejected.added == 0 and rejected.rejected == {"unknown site": len(store.window(start).members)}  # type: ignore[union-attr]
    sites = await client.get("/parking", headers={"Accept": NQUADS})  # a page names its sites, the stream describes them
    text += await sites.text()
    path = tmp_path / "page.nq"
    path.write_text(text)
    data = tmp_path / "data"
    result = exports.load(config, data, "parking", path, progress=False)
    window = store.window(start)
    assert window is not None and result.added == len(window.members) > 0
    assert members_of(restored(config, data)) == window.members

    broken = tmp_path / "broken.nq.gz"
    broken.write_bytes(gzip.compress(b"<http://a> <http://b> .\n"))
    with pytest.raises(exports.ExportError, match="not valid"):
        exports.load(config, data, "parking", broken, progress=False)
    with pytest.raises(exports.ExportError, match="another base URL"):
        exports.load(make_config(base_url="https://data.example.be"), data, "parking", path, progress=False)
    unknown = tmp_path / "dump.bin"
    unknown.write_bytes(b"")
    with pytest.raises(exports.ExportError, match="cannot tell the syntax"):
        exports.load(config, data, "parking", unknown, progress=False)


def test_the_progress_bar_stays_off_when_stderr_is_not_a_terminal(tmp_path, capfd):
    data = tmp_path / "data"
    config = parking_config(data)
    fill(config, data)
    out = tmp_path / "day.nq.gz"
    assert exports.export(config, data, "parking", DAY_START, DAY_START + DAY_MS, NQUADS, out, progress=True).members > 0
    assert exports.load(config, tmp_path / "other", "parking", out, progress=True).added > 0
    err = capfd.readouterr().err
    assert "\r" not in err and "members/s" not in err, "a log file gets no carriage-return bar"


def test_an_export_removes_what_a_killed_export_to_the_same_file_left(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "data"
    config = parking_config(data)
    fill(config, data)
    out = tmp_path / "day.nq.gz"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    abandoned = tmp_path / f".day.nq.gz.{gone.pid}.tmp"
    running = tmp_path / f".day.nq.gz.{os.getppid()}.tmp"  # a live process: another export under way
    unrelated = tmp_path / f".other.nq.gz.{gone.pid}.tmp"
    for path in (abandoned, running, unrelated):
        path.write_bytes(b"partial")
    exports.export(config, data, "parking", DAY_START, DAY_START + DAY_MS, NQUADS, out, progress=False)
    assert not abandoned.exists()
    assert running.exists() and unrelated.exists()


async def test_a_days_dump_is_kept_as_a_file_and_never_changes(aiohttp_client, tmp_path, dump_clock):
    from dataclasses import replace

    from ldf_server.app import open_journals
    from ldf_server.http.representations import RepresentationCache

    config = make_config(datasets=[parking_dataset(retention="7d")], feeds=[simulator_feed(backfill="30h")])
    state = build_state(config, clock=dump_clock)
    open_journals(state, tmp_path)
    for poller in state.pollers:
        poller.backfill()
    state.ready = True
    state.config = state.config.model_copy(update={"server": state.config.server.model_copy(update={"data_dir": str(tmp_path)})})
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    first = await client.get(f"/parking/dumps/{DAY}.nq.gz")
    body = await first.read()
    kept = tmp_path / "parking" / "dumps" / f"{DAY}.nq.gz"
    assert first.status == 200 and kept.read_bytes() == body

    store = state.streams["parking"].store
    site = store.sites[sorted(store.sites)[0]]
    store.upsert_sites([replace(site, label=site.label + " (renamed)", capacity=(site.capacity or 0) + 5)])
    state.cache = RepresentationCache()  # evicted
    again = await client.get(f"/parking/dumps/{DAY}.nq.gz")
    assert await again.read() == body and again.headers["ETag"] == first.headers["ETag"], "an immutable dump never changes"

    dump_clock.set("2026-04-08T12:00:00Z")
    apply_retention(state)
    assert not kept.exists(), "retention deletes the kept dump with its day"
    for stream in state.streams.values():
        stream.store.journal.close()


async def test_a_follower_serves_the_dump_its_leader_keeps(aiohttp_client, tmp_path, dump_clock):
    config = make_config(datasets=[parking_dataset(retention="7d")], feeds=[simulator_feed(backfill="30h")])
    with_dir = config.model_copy(update={"server": config.server.model_copy(update={"data_dir": str(tmp_path)})})
    state = seeded_state(with_dir, dump_clock)  # a follower: reads the data directory, holds no lock
    asked: list[str] = []

    async def leader(path: str) -> tuple[int, bytes]:
        asked.append(path)
        (tmp_path / "parking" / "dumps").mkdir(parents=True, exist_ok=True)
        (tmp_path / "parking" / "dumps" / f"{DAY}.nq.gz").write_bytes(b"the leader's bytes")
        return 200, b"the leader's bytes"

    state.fetch_from_leader = leader
    client = await aiohttp_client(create_app(config, state=state, run_feeds=False))
    resp = await client.get(f"/parking/dumps/{DAY}.nq.gz")
    assert resp.status == 200 and await resp.read() == b"the leader's bytes"
    assert asked == [f"/parking/dumps/{DAY}.nq.gz"]
    # Another follower (or this one after a restart) reads the kept file without asking.
    fresh = seeded_state(with_dir, dump_clock)
    fresh.fetch_from_leader = leader
    client2 = await aiohttp_client(create_app(config, state=fresh, run_feeds=False))
    assert await (await client2.get(f"/parking/dumps/{DAY}.nq.gz")).read() == b"the leader's bytes"
    assert len(asked) == 1, "a kept file is read, not asked for again"
