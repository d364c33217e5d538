"""Parts of the suite that run ldf-server as a process: harvest (2), push ingest (3b), restart (5).

Servers listen on free 127.0.0.1 ports and are stopped by process group (harness.stop_all).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import orjson

from harness import (HOST, Ctx, ldf_argv, site_keys, start_server, stop_server, wait_status, write_config,
                     write_parking_log)

CACHE = Path(__file__).resolve().parent / "results" / "cache"


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cached_log(ctx: Ctx, n: int) -> Path:
    """A data directory whose parking log holds ``n`` members (100 sites, one a minute), kept
    in bench/results/cache between runs (writing 10 million records takes a while)."""
    path = CACHE / f"parking-{n}"
    if not (path / ".complete").exists():
        shutil.rmtree(path, ignore_errors=True)
        ctx.log(f"writing a durable log of {n:,} parking members to {path} (cached for later runs)")
        t0 = time.monotonic()
        write_parking_log(path, n)
        (path / ".complete").write_text("")
        ctx.log(f"  written in {time.monotonic() - t0:.1f} s")
    return path


def copy_data(ctx: Ctx, src: Path, name: str) -> Path:
    dst = ctx.tmp / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".complete"))
    return dst


# --------------------------------------------------------------------------- harvest


async def _walk(port: int, connections: int) -> tuple[int, int, float]:
    """Follow the stream from its view through every day node to every window page.
    Returns (members, pages, seconds)."""
    base = f"http://{HOST}:{port}"
    headers = {"Accept": "application/ld+json"}
    conn = aiohttp.TCPConnector(limit=connections)
    members = pages = 0
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=conn, headers=headers) as session:
        async def get(url: str) -> dict:
            async with session.get(url) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"GET {url}: {resp.status}")
                return orjson.loads(await resp.read())

        def targets(doc: dict) -> list[str]:
            out: list[str] = []
            for node in doc["@graph"]:
                for rel in node.get("relation", ()):
                    if rel["node"] not in out:
                        out.append(rel["node"])
            return out

        view = await get(f"{base}/parking/view")
        days = await asyncio.gather(*(get(u) for u in targets(view)))
        windows = [u for d in days for u in targets(d)]
        sem = asyncio.Semaphore(connections)

        async def page(url: str) -> int:
            async with sem:
                doc = await get(url)
            return sum(len(n.get("member", ())) for n in doc["@graph"])

        counts = await asyncio.gather(*(page(u) for u in windows))
        members, pages = sum(counts), len(windows) + len(days) + 1
    return members, pages, time.perf_counter() - t0


def harvest(ctx: Ctx) -> dict:
    n = 200_000 if ctx.quick else 1_000_000
    data = cached_log(ctx, n)  # replay changes nothing but a horizon record in meta.log
    cfg = write_config(ctx.tmp / "harvest.toml", window="5m")
    port = __import__("harness").free_port()
    log_path = ctx.tmp / "harvest.log"
    proc = start_server("ldf-harvest", ldf_argv(cfg, port, data), log_path)
    try:
        ready = wait_status(port, "/health/ready", proc, 600, log_path)
        ctx.log(f"harvest: server ready with {n:,} members in {ready:.1f} s")
        out: dict = {"members_in_log": n, "connections": 8, "runs": []}
        for label in ("cold", "warm", "warm"):
            members, pages, secs = asyncio.run(_walk(port, 8))
            out["runs"].append({"run": label, "members": members, "pages": pages, "seconds": secs,
                                "members_per_s": members / secs})
            ctx.log(f"harvest {label}: {members:,} members, {pages} pages in {secs:.2f} s = {members / secs:,.0f} members/s")
        out["cold_members_per_s"] = out["runs"][0]["members_per_s"]
        out["warm_members_per_s"] = max(r["members_per_s"] for r in out["runs"][1:])
        out["members_seen"] = out["runs"][0]["members"]
        return out
    finally:
        stop_server(proc)


# --------------------------------------------------------------------------- push


async def _push(port: int, batches: list[bytes], concurrency: int) -> tuple[int, float]:
    url = f"http://{HOST}:{port}/parking/push/bench"
    headers = {"Content-Type": "application/json", "X-API-Key": os.environ["LDF_BENCH_PUSH_KEY"]}
    accepted = 0
    queue = list(reversed(batches))
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker() -> None:
            nonlocal accepted
            while queue:
                body = queue.pop()
                async with session.post(url, data=body, headers=headers) as resp:
                    doc = await resp.json()
                    if resp.status != 200:
                        raise RuntimeError(f"push answered {resp.status}: {str(doc)[:300]}")
                    accepted += doc["accepted"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted, time.perf_counter() - t0


def push(ctx: Ctx) -> dict:
    n = 100_000 if ctx.quick else 300_000
    batch, sites = 1000, 100
    keys = site_keys(sites)
    os.environ["LDF_BENCH_PUSH_KEY"] = "bench-" + os.urandom(8).hex()
    cfg = write_config(ctx.tmp / "push.toml", window="5m", push_sites=keys, fsync="always")
    now = int(time.time() * 1000) // 1000 * 1000
    steps = n // sites
    first = now - steps * 1000 - 60_000  # one a second per site, all in the past
    records = []
    for s in range(steps):
        t = datetime.fromtimestamp((first + s * 1000) / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for i, k in enumerate(keys):
            records.append({"site": k, "observedAt": t, "vacantSpaces": (s * 7 + i * 13) % 1000})
    batches = [orjson.dumps(records[i:i + batch]) for i in range(0, len(records), batch)]
    port = __import__("harness").free_port()
    log_path = ctx.tmp / "push.log"
    proc = start_server("ldf-push", ldf_argv(cfg, port, ctx.tmp / "push-data"), log_path)
    try:
        wait_status(port, "/health/ready", proc, 60, log_path)
        warm = batches[:5]
        # Warm-up: the first batches (not counted) are pushed again below and count as duplicates.
        asyncio.run(_push(port, warm, 1))
        accepted, secs = asyncio.run(_push(port, batches[5:], 4))
        ctx.log(f"push: {accepted:,} members in {secs:.2f} s = {accepted / secs:,.0f} members/s (batches of {batch}, fsync always)")
        return {"members": accepted, "seconds": secs, "members_per_s": accepted / secs, "batch": batch,
                "concurrency": 4, "fsync": "always"}
    finally:
        stop_server(proc)
        os.environ.pop("LDF_BENCH_PUSH_KEY", None)


# --------------------------------------------------------------------------- restart


def restart(ctx: Ctx) -> dict:
    """Ready time twice on one copy of the log: first from the log alone (what a server meets
    when nothing else is on disk, e.g. a copied log), which then seals the closed days and
    writes their snapshots; then a normal restart, which loads those and parses only the
    open day."""
    n = 1_000_000 if ctx.quick else 10_000_000
    data = copy_data(ctx, cached_log(ctx, n), "restart-data")  # a copy: snapshots are written into it
    log_bytes = sum(p.stat().st_size for p in data.rglob("*.log"))
    days = data / "parking" / "days"
    cfg = write_config(ctx.tmp / "restart.toml", window="5m")
    out: dict = {"members": n, "log_bytes": log_bytes}
    for label, runs in (("log_only", 1), ("snapshots", 1 if not ctx.quick else 2)):
        times = []
        for _ in range(runs):
            port = __import__("harness").free_port()
            log_path = ctx.tmp / f"restart-{label}.log"
            proc = start_server("ldf-restart", ldf_argv(cfg, port, data), log_path)
            try:
                secs = wait_status(port, "/health/ready", proc, 900, log_path, poll=0.1)
                times.append(secs)
                rss = _rss(proc.pid)
                ctx.log(f"restart ({label.replace('_', ' ')}): ready with {n:,} members in {secs:.1f} s (RSS {rss / 1e6:,.0f} MB)")
                if label == "log_only":
                    out["snapshots_written"], out["snapshot_s"] = _wait_for_snapshots(days, proc)
                    ctx.log(f"  {out['snapshots_written']} day snapshots written in {out['snapshot_s']:.1f} s after ready "
                            f"({sum(p.stat().st_size for p in days.glob('*.snap')) / 1e6:,.0f} MB)")
                else:
                    out["server_rss_bytes"], out["server_rss_per_member"] = rss, rss / n
            finally:
                stop_server(proc)
        out[f"ready_{label}_s"] = min(times)
        out[f"runs_{label}_s"] = times
    out["ready_s"] = out["ready_snapshots_s"]  # a restart of a server that ran before: the target
    return out


def _wait_for_snapshots(days: Path, proc, timeout: float = 600) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """Until every closed day (before today, UTC) has its snapshot: (how many, seconds)."""
    from ldf_server.timeutil import format_day

    t0 = time.monotonic()
    closed = {p.stem for p in days.glob("*.log") if p.stem < format_day(int(time.time() * 1000) - 120_000)}
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        if {p.stem for p in days.glob("*.snap")} >= closed:
            break
        time.sleep(0.2)
    return len(list(days.glob("*.snap"))), time.monotonic() - t0
