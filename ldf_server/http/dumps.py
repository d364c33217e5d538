"""``/{ds}/dumps/``: one gzipped N-Quads file per closed UTC day, for researchers.

A day's dump exists once the day is over (plus the grace for late data): from then on
its bytes never change, so they are built once, in a worker thread (pyld is slow and
must not stall other clients), cached with the pages, and served as immutable. Serving
it seals the day in the store, as serving its immutable pages does.

A dump holds the sites' descriptions as they are when it is built, and a description may
change later: so with a data directory the bytes built first are kept as a file,
``{data_dir}/{ds}/dumps/YYYY-MM-DD.nq.gz``, and served from it ever after (after a cache
eviction, after a restart, by every process: a follower asks its leader, which builds and
keeps it). Retention deletes the file with its day.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import os
import re
from pathlib import Path
from typing import Awaitable, Callable, Mapping

from aiohttp import web

from ldf_server.fragments import dumps as dumps_doc
from ldf_server.fragments.fragment import Fragment
from ldf_server.fragments.stream import OutOfRange
from ldf_server.config import DatasetConfig
from ldf_server.fragments.timeline import DAY_MS
from ldf_server.fragments.urls import Urls
from ldf_server.pilots import PILOTS
from ldf_server.rdf.dump import DumpWriter
from ldf_server.rdf.syntaxes import NQUADS
from ldf_server.records import Member, Site
from ldf_server.http.handlers import dataset_of
from ldf_server.http.problems import Problem
from ldf_server.http.representations import Encoded
from ldf_server.http.respond import IMMUTABLE, not_modified, respond
from ldf_server.timeutil import InstantError, format_day, format_instant, parse_instant

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/gzip"
_NAME = re.compile(r"^(\d{4}-\d\d-\d\d)\.nq\.gz$")


def gzipped_dump(urls: Urls, ds: DatasetConfig, sites: Mapping[str, Site], members: list[Member]) -> bytes:
    """A day's dump as gzipped N-Quads; reproducible (no timestamp in the gzip header)."""
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
        writer = DumpWriter(gz, NQUADS)  # type: ignore[arg-type]
        for nodes in dumps_doc.dump_batches(urls, ds.id, PILOTS[ds.pilot], sites, members):
            writer.write(nodes)
    return raw.getvalue()


def dump_file(data_dir: str | None, ds: str, day: str) -> Path | None:
    """Where a day's dump is kept once built (None: no data directory, memory only)."""
    return Path(data_dir) / ds / "dumps" / f"{day}.nq.gz" if data_dir else None


def _kept_or_built(kept: Path | None, urls: Urls, ds: DatasetConfig, sites: Mapping[str, Site], members: list[Member]) -> bytes:
    """The kept file's bytes, or a new dump, kept (atomically: temp file, fsync, rename)."""
    if kept is not None and kept.exists():
        return kept.read_bytes()
    body = gzipped_dump(urls, ds, sites, members)
    if kept is not None:
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            tmp = kept.with_name(f".{kept.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, kept)
        except OSError as exc:  # served anyway; built again (maybe other bytes) only after an eviction
            log.error("could not keep the dump %s: %s", kept, exc)
    return body


async def _from_leader(fetch: Callable[[str], Awaitable[tuple[int, bytes]]], path: str, kept: Path) -> bytes:
    """A follower's dump: the file the leader keeps, which it builds when asked for it first."""
    if kept.exists():
        return await asyncio.to_thread(kept.read_bytes)
    status, body = await fetch(path)
    if status != 200:
        raise Problem(503, "the process that builds the dumps could not give this one now; retry shortly",
                      title="Dump unavailable", headers={"Retry-After": "5"})
    return body


def remove_dumps_before(data_dir: str | None, ds: str, day: str) -> int:
    """Retention: delete the kept dumps of days before ``day`` (YYYY-MM-DD)."""
    folder = Path(data_dir) / ds / "dumps" if data_dir else None
    removed = 0
    if folder is not None and folder.is_dir():
        for path in folder.iterdir():
            if path.name.lstrip(".")[:10] < day:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


async def index(request: web.Request) -> web.Response:
    state, fragments = dataset_of(request)
    now = state.now_ms()
    store, timeline = fragments.store, fragments.timeline
    iri = state.urls.dumps(fragments.ds)

    def build() -> Fragment:
        days = dumps_doc.closed_days(store.window_starts(), now, timeline.grace_ms, store.retained_from)
        return dumps_doc.dumps_index(state.urls, fragments.ds, fragments.config.licence_iri, days, store.modified)

    # A new dump appears when a day closes: the token moves with the day of (now - grace).
    token = ("dumps", store.version, store.retained_from, (now - timeline.grace_ms) // DAY_MS)
    return respond(request, state.cache, token=token, page_iri=iri, build=build, max_age=state.max_age(fragments))


async def redirect(request: web.Request) -> web.Response:
    state, fragments = dataset_of(request)
    return web.Response(status=301, headers={"Location": state.urls.dumps(fragments.ds), "Cache-Control": "public, max-age=86400"})


async def day(request: web.Request) -> web.Response:
    state, fragments = dataset_of(request)
    now = state.now_ms()
    name = request.match_info["name"]
    match = _NAME.match(name)
    start: int | None = None
    if match:
        try:
            start = parse_instant(match.group(1) + "T00:00:00Z")
        except InstantError:
            start = None
    if start is None or format_day(start) != match.group(1):  # type: ignore[union-attr]
        raise Problem(400, f"{name[:40]!r} is not a day's dump; ask for YYYY-MM-DD.nq.gz (a UTC day), "
                           f"see {state.urls.dumps(fragments.ds)}", title="Bad day")
    try:
        fragments.check_day(start, now)
    except OutOfRange as exc:
        if exc.gone:
            raise Problem(410, str(exc), title="Day removed by the retention policy") from None
        raise Problem(404, str(exc), title="No such day") from None
    end = start + DAY_MS
    if not fragments.timeline.day_closed(start, now):
        ready = end + fragments.timeline.grace_ms
        raise Problem(409, f"{match.group(1)} is not over yet: its dump exists from {format_instant(ready)}",  # type: ignore[union-attr]
                      title="Day not closed", headers={"Retry-After": str(max(1, (ready - now + 999) // 1000))})
    store = fragments.store
    if not store.has_windows_in(start, end):
        raise Problem(404, f"no members were observed on {match.group(1)}", title="No such day")  # type: ignore[union-attr]
    key = (request.path, "dump")
    item = state.cache.get(key, "immutable")
    if item is None:
        build = state.dump_builds.get(request.path)
        if build is None:
            kept = dump_file(state.config.server.data_dir, fragments.ds, match.group(1))  # type: ignore[union-attr]
            if state.fetch_from_leader is not None and kept is not None:
                work = _from_leader(state.fetch_from_leader, request.path, kept)
            else:
                if state.fetch_from_leader is None:
                    store.seal_before(end)  # from now on, late members for this day are refused
                members = store.members_between(start, end)  # snapshots: the thread never touches the store
                sites = dict(store.sites)
                work = asyncio.get_running_loop().run_in_executor(
                    None, _kept_or_built, kept, state.urls, fragments.config, sites, members)
            build = state.dump_builds[request.path] = asyncio.ensure_future(work)
            build.add_done_callback(lambda _: state.dump_builds.pop(request.path, None))
        body = await asyncio.shield(build)  # a client that leaves does not cancel the others' build
        item = state.cache.get(key, "immutable")
        if item is None:
            modified = (end + fragments.timeline.grace_ms) / 1000
            item = Encoded.of(Fragment({}, immutable=True, modified=modified), "immutable", body)
            state.cache.put(key, item)
    headers = {
        "Content-Type": MEDIA_TYPE,
        "Content-Disposition": f'attachment; filename="{fragments.ds}-{match.group(1)}.nq.gz"',  # type: ignore[union-attr]
        "Cache-Control": IMMUTABLE,
        "ETag": item.etag,
        "Last-Modified": item.last_modified,
    }
    if not_modified(request, item):
        headers.pop("Content-Type")
        return web.Response(status=304, headers=headers)
    return web.Response(body=item.body, headers=headers)
