"""``ldf-server export`` and ``ldf-server import``: dumps of a data directory, no server needed.

Export reads the durable log read-only (a server may be running and appending), so it
never changes the data directory; the members of ``[from, to)`` and every site
description are written as gzipped N-Quads or TriG, batch by batch, with the nodes the
pages serve (see :mod:`ldf_server.fragments.dumps`). Import goes through the same door
as a feed (:func:`ldf_server.store.ingest.ingest`): sanity rules, idempotent add, and
late members refused, so it never changes a page already served as immutable. It holds
the dataset's lock (:mod:`ldf_server.store.lock`), which a running server holds too.
"""

from __future__ import annotations

import gzip
import os
import sys
import time
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path
from typing import IO, Callable, Iterator

import rdflib
from rdflib.plugins.parsers.ntriples import ParseError, W3CNTriplesParser
from rdflib.term import Node
from tqdm import tqdm

from ldf_server.adapters.rdf_dump import parse_dump
from ldf_server.config import Config, DatasetConfig
from ldf_server.fragments.dumps import dump_batches
from ldf_server.fragments.members import site_node
from ldf_server.fragments.urls import Urls
from ldf_server.pilots import PILOTS
from ldf_server.rdf.dump import DumpWriter
from ldf_server.rdf.syntaxes import NQUADS, TRIG
from ldf_server.records import Batch, Member, Site
from ldf_server.store.ingest import IngestResult, ingest
from ldf_server.store.lock import DatasetLock
from ldf_server.store.log import DatasetLog, member_from_record, read_dataset, site_from_record
from ldf_server.store.memory import DatasetStore
from ldf_server.timeutil import format_day

RDFLIB_FORMATS = {NQUADS: "nquads", TRIG: "trig"}
IMPORT_CHUNK = 5000


class ExportError(Exception):
    """A dump that cannot be written or read (unknown dataset, unreadable file)."""


@dataclass
class ExportResult:
    members: int
    sites: int
    triples: int
    bytes: int


def dataset_config(config: Config, ds: str) -> DatasetConfig:
    for d in config.datasets:
        if d.id == ds:
            return d
    raise ExportError(f"no dataset {ds!r} in the config (it has: {', '.join(d.id for d in config.datasets)})")


def read_range(root: Path, lo: int, hi: int) -> tuple[dict[str, Site], list[Member]]:
    """Every site description and the members with ``lo <= time < hi`` in the log at ``root``,
    as a replay would restore them: first record of a member wins, nothing before the retention horizon."""
    sites: dict[str, Site] = {}
    members: dict[tuple[int, str, str], Member] = {}
    retained_from = 0
    if hi <= lo:
        return sites, []
    for record in read_dataset(root, format_day(lo), format_day(hi - 1)):
        if "site" in record:
            site = site_from_record(record["site"])
            sites[site.key] = site
        elif "horizons" in record:
            retained_from = max(retained_from, record["horizons"]["retained_from"])
        else:
            m = member_from_record(record)
            if lo <= m.time < hi:
                members.setdefault(m.key, m)
    return sites, sorted((m for m in members.values() if m.time >= retained_from), key=lambda m: m.key)


def encode_dump(
    urls: Urls, ds: DatasetConfig, sites: dict[str, Site], members: list[Member], out: IO[bytes], media_type: str,
    progress: tqdm | None = None,
) -> int:
    """Write the dump to ``out`` (uncompressed); returns the number of triples."""
    writer = DumpWriter(out, media_type)
    member_prefix = urls.member(ds.id, "", "", 0).rsplit("/", 2)[0] + "/"
    for nodes in dump_batches(urls, ds.id, PILOTS[ds.pilot], sites, members):
        writer.write(nodes)
        if progress is not None:
            progress.update(sum(1 for n in nodes if n["@id"].startswith(member_prefix)))
    return writer.triples


def export(
    config: Config, data_dir: Path, ds_id: str, lo: int, hi: int, media_type: str, output: Path, *, progress: bool = True,
) -> ExportResult:
    """Write ``[lo, hi)`` of a dataset to ``output`` as gzipped ``media_type``; atomically (temp file, rename)."""
    ds = dataset_config(config, ds_id)
    root = data_dir / ds_id
    if not root.is_dir():
        raise ExportError(f"{root} does not exist: nothing was ever logged for {ds_id!r} in {data_dir}")
    urls = Urls(config.server.public_base)
    sites, members = read_range(root, lo, hi)
    _remove_abandoned_temp_files(output)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    bar = tqdm(total=len(members), unit=" members", desc=f"export {ds_id}", file=sys.stderr,
               disable=_bar_off(progress), dynamic_ncols=True)
    try:
        with open(tmp, "wb") as f, gzip.GzipFile(filename="", fileobj=f, mode="wb", compresslevel=6, mtime=0) as gz:
            triples = encode_dump(urls, ds, sites, members, gz, media_type, bar)  # type: ignore[arg-type]
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    return ExportResult(members=len(members), sites=len(sites), triples=triples, bytes=output.stat().st_size)


def _remove_abandoned_temp_files(output: Path) -> None:
    """Delete what a killed export to the same file left (``.NAME.PID.tmp`` of a process that is
    gone); one whose process still runs is another export, left alone."""
    for tmp in output.parent.glob(f".{glob_escape(output.name)}.*.tmp"):
        pid = tmp.name[len(output.name) + 2:-len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_exists(int(pid)):
            tmp.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class _Triples:
    """An N-Triples parser sink that keeps the triples, and no RDF store (a day is ~250,000)."""

    def __init__(self) -> None:
        self.triples: list[tuple[Node, Node, Node]] = []

    def triple(self, s: Node, p: Node, o: Node) -> None:
        self.triples.append((s, p, o))


def read_dump(path: Path, media_type: str | None = None) -> list[tuple[Node, Node, Node]]:
    """The triples of a (gzipped or plain) N-Quads or TriG file, graph names dropped; the syntax
    from ``media_type`` or the file name. N-Quads without graph names (what export writes) is
    read line by line; anything else is parsed whole by rdflib."""
    name = path.name.removesuffix(".gz")
    if media_type is None:
        media_type = TRIG if name.endswith(".trig") else NQUADS if name.endswith((".nq", ".nquads")) else None
    if media_type is None:
        raise ExportError(f"cannot tell the syntax of {path.name}; name it .nq.gz or .trig.gz, or pass --format")

    def text() -> IO[str]:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        return gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8")

    try:
        if media_type == NQUADS:
            sink = _Triples()
            try:
                with text() as f:
                    W3CNTriplesParser(sink).parse(f)  # type: ignore[arg-type]
                return sink.triples
            except ParseError:
                pass  # graph names, or not N-Quads at all: rdflib decides below
        graph = rdflib.Dataset()
        with text() as f:
            graph.parse(data=f.read(), format=RDFLIB_FORMATS[media_type])
        return [(s, p, o) for s, p, o, _ in graph.quads((None, None, None, None))]
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ExportError(f"cannot read {path}: {exc}") from exc
    except Exception as exc:  # rdflib's parsers raise assorted types for bad syntax
        raise ExportError(f"{path} is not valid {media_type}: {exc}") from exc


def load(
    config: Config, data_dir: Path, ds_id: str, path: Path, *, media_type: str | None = None, progress: bool = True,
    clock: Callable[[], float] = time.time,
) -> IngestResult:
    """Import a dump into the data directory's log. Raises :class:`LockedError` while a server runs on it."""
    ds = dataset_config(config, ds_id)
    pilot = PILOTS[ds.pilot]
    urls = Urls(config.server.public_base)
    root = data_dir / ds_id
    with DatasetLock(root):
        batch = parse_dump(read_dump(path, media_type), urls, ds_id, pilot)
        if not batch.members:
            prefix = urls.member(ds_id, "", "", 0).rsplit("/", 2)[0] + "/"
            raise ExportError(f"{path} holds no member of {ds_id!r} (their IRIs start with {prefix} here); "
                              "if it was written with another base URL, pass that one as --base-url")
        server = config.server
        journal = DatasetLog(root, fsync="interval", fsync_interval=server.fsync_interval)
        store = DatasetStore(ds_id, int(ds.window * 1000), pilot=ds.pilot, clock=clock)
        try:
            store.restore(journal.replay())
            store.journal = journal
            # A site whose served description is unchanged is not rewritten (lat/long are served
            # rounded, so the parsed value may differ in digits nobody sees): re-import stores nothing.
            sites = [
                s for s in batch.sites
                if s.key not in store.sites
                or site_node(urls, ds_id, pilot, store.sites[s.key]) != site_node(urls, ds_id, pilot, s)
            ]
            total = IngestResult()
            store.upsert_sites(sites)
            with tqdm(total=len(batch.members), unit=" members", desc=f"import {ds_id}", file=sys.stderr,
                      disable=_bar_off(progress), dynamic_ncols=True) as bar:
                for chunk in _chunks(batch.members, IMPORT_CHUNK):
                    result = ingest(store, Batch(members=chunk), source=f"import {path.name}")
                    _accumulate(total, result)
                    bar.update(len(chunk))
            for problem in batch.problems:
                total.rejected["unreadable record"] = total.rejected.get("unreadable record", 0) + 1
        finally:
            journal.close()
    return total


def _chunks(items: list[Member], size: int) -> Iterator[list[Member]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _accumulate(total: IngestResult, result: IngestResult) -> None:
    for name in ("added", "unchanged", "duplicates", "conflicts", "late", "expired"):
        setattr(total, name, getattr(total, name) + getattr(result, name))
    for reason, n in result.rejected.items():
        total.rejected[reason] = total.rejected.get(reason, 0) + n


def _bar_off(progress: bool) -> bool | None:
    """tqdm's ``disable``: None shows the bar only when stderr is a terminal, so a cron job or
    a container's log gets no stream of carriage-return updates."""
    return None if progress else True
