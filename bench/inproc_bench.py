"""In-process parts of the suite: encoding (6), ingest into the store (3a), memory per member (4).

Each measurement that needs a clean heap runs in a child process of its own
(``python bench/inproc_bench.py <what> <args>`` prints one JSON line), so the
figures of one do not inherit the garbage of another.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from ldf_server.records import Site, count_member, parking_member  # noqa: E402
from ldf_server.store.memory import DatasetStore  # noqa: E402

STATUSES = ("spacesAvailable", "almostFull", "full")
SITES = 100
STEP_MS = 60_000


def parking_members(n: int, *, end_ms: int, sites: int = SITES):
    """``n`` parking members of ``sites`` sites, one a minute each, ending at ``end_ms``, in time order."""
    steps = -(-n // sites)
    first = end_ms - steps * STEP_MS
    keys = [f"bench/site-{i:04d}" for i in range(sites)]
    made = 0
    for s in range(steps):
        t = first + s * STEP_MS
        for i, key in enumerate(keys):
            if made >= n:
                return
            vacant = (s * 7 + i * 13) % 1000
            yield parking_member(key, t, vacant, status=STATUSES[vacant % 3], opening="open")
            made += 1


def crowd_members(n: int, *, end_ms: int, sites: int = 50):
    """The largest crowdedness members: interval phenomenon time, direction, uptime, sensor."""
    steps = -(-n // (sites * 2))
    first = end_ms - steps * 3_600_000
    made = 0
    for s in range(steps):
        t = first + s * 3_600_000
        for i in range(sites):
            for counted in ("pedestrians", "cyclists"):
                if made >= n:
                    return
                yield count_member(f"bench/zone-{i:03d}", counted, t + 3_600_000, float((s * 31 + i) % 500),
                                   counted=counted, start=t, end=t + 3_600_000, direction="in", uptime=0.97,
                                   reliable=True, sensor=f"https://example.org/sensor/{i}")
                made += 1


def _store(pilot: str = "parking", window_ms: int = 300_000) -> DatasetStore:
    st = DatasetStore(pilot, window_ms, pilot=pilot, recent_events=1)
    return st


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------------------ children


def child_memory(n: int, pilot: str, trace: bool) -> dict:
    end = (int(time.time() * 1000) // 60_000) * 60_000
    gen = parking_members if pilot == "parking" else crowd_members
    st = _store(pilot, 300_000 if pilot == "parking" else 3_600_000)
    gc.collect()
    if trace:
        tracemalloc.start()
    rss0 = _rss()
    t0 = time.perf_counter()
    batch = []
    for m in gen(n, end_ms=end):
        batch.append(m)
        if len(batch) == 10_000:
            st.add(batch)
            batch = []
    st.add(batch)
    elapsed = time.perf_counter() - t0
    gc.collect()
    rss1 = _rss()
    traced = tracemalloc.get_traced_memory()[0] if trace else None
    return {"members": st.member_count, "rss_bytes": rss1 - rss0, "rss_per_member": (rss1 - rss0) / st.member_count,
            "traced_bytes": traced, "traced_per_member": traced / st.member_count if traced else None,
            "load_s": elapsed, "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def child_ingest(n: int, batch: int, fsync: str) -> dict:
    """Members/s through ``ingest()`` (sanity rules + idempotent add) with the durable log on."""
    from ldf_server.records import Batch
    from ldf_server.store.ingest import ingest
    from ldf_server.store.log import DatasetLog

    end = (int(time.time() * 1000) // 60_000) * 60_000 - 60_000
    members = list(parking_members(n, end_ms=end))
    with tempfile.TemporaryDirectory(prefix="ldf-bench-ingest-") as tmp:
        st = _store()
        st.journal = DatasetLog(Path(tmp) / "parking", fsync=fsync)
        st.upsert_sites(Site(key=f"bench/site-{i:04d}", label="x", city="bench", capacity=1000) for i in range(SITES))
        t0 = time.perf_counter()
        added = 0
        for i in range(0, len(members), batch):
            added += ingest(st, Batch(members=members[i:i + batch]), source="bench").added
        elapsed = time.perf_counter() - t0
        log_bytes = st.journal.bytes_appended
        st.journal.close()
    return {"members": added, "seconds": elapsed, "members_per_s": added / elapsed, "batch": batch,
            "fsync": fsync, "log_bytes": log_bytes}


def child_encoding(members: int, rounds: int) -> dict:
    """A page of ``members`` parking members: JSON-LD straight from dicts with orjson versus
    through rdflib (graph from the same triples, its JSON-LD serialiser), and the other syntaxes."""
    import rdflib

    from ldf_server.config import DatasetConfig
    from ldf_server.fragments.stream import StreamFragments
    from ldf_server.fragments.urls import Urls
    from ldf_server.rdf import jsonld, syntaxes
    from ldf_server.vocabularies import context

    window_ms = 300_000
    # One window holding `members` members: that many sites, all in the same 5 minutes.
    now = int(time.time() * 1000)
    start = now - now % window_ms - 2 * 86_400_000
    st = _store()
    sites = [Site(key=f"bench/site-{i:04d}", label=f"Site {i}", city="bench", capacity=1000, lat=51.0 + i / 1e4,
                  lon=3.7 + i / 1e4) for i in range(members)]
    st.upsert_sites(sites)
    st.add(parking_member(s.key, start + 1000 + i, (i * 13) % 1000, status="spacesAvailable", opening="open")
           for i, s in enumerate(sites))
    ds = DatasetConfig(id="parking", pilot="parking", title={"en": "b"}, description={"en": "b"})
    urls = Urls("http://127.0.0.1:8080")
    frag = StreamFragments(ds, st, urls)
    page_iri = urls.window("parking", start)
    meta = (page_iri, urls.stream("parking"))

    def best(fn, k: int = rounds) -> float:
        times = []
        for _ in range(k):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    doc = frag.window(start, now).doc
    direct_build_encode = best(lambda: jsonld.encode(frag.window(start, now).doc))
    direct_encode = best(lambda: jsonld.encode(doc))
    nquads_text = syntaxes.encode(syntaxes.NQUADS, doc, page_iri, meta).decode()

    def via_rdflib() -> bytes:
        g = rdflib.Graph()
        g.parse(data=nquads_text, format="nquads")
        return g.serialize(format="json-ld", context=context(), auto_compact=True).encode()

    g = rdflib.Dataset()
    g.parse(data=nquads_text, format="nquads")
    k = max(1, rounds // 4)
    rdflib_total = best(via_rdflib, k)
    rdflib_serialize = best(lambda: g.serialize(format="json-ld", context=context(), auto_compact=True), k)
    out = {"members": members, "triples": nquads_text.count("\n"), "jsonld_bytes": len(jsonld.encode(doc)),
           "direct_build_encode_s": direct_build_encode, "direct_encode_s": direct_encode,
           "rdflib_parse_serialize_s": rdflib_total, "rdflib_serialize_s": rdflib_serialize,
           "ratio_rdflib_over_direct": rdflib_serialize / direct_build_encode}
    for name, media in (("nquads", syntaxes.NQUADS), ("turtle", syntaxes.TURTLE), ("trig", syntaxes.TRIG)):
        s = best(lambda media=media: syntaxes.encode(media, doc, page_iri, meta), k)
        out[f"{name}_s"] = s
        out[f"{name}_members_per_s"] = members / s
    out["jsonld_members_per_s"] = members / direct_build_encode
    return out


# ------------------------------------------------------------------------------ parent side


def in_child(*args: object, timeout: float = 900) -> dict:
    out = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT, start_new_session=True)
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"inproc_bench {args} failed ({out.returncode}):\n{out.stderr[-2000:]}")


if __name__ == "__main__":
    what, *rest = sys.argv[1:]
    if what == "memory":
        res = child_memory(int(rest[0]), rest[1], rest[2] == "trace")
    elif what == "ingest":
        res = child_ingest(int(rest[0]), int(rest[1]), rest[2])
    elif what == "encoding":
        res = child_encoding(int(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown part {what}")
    print(json.dumps(res))
