"""The whole benchmark of issue 6 in one command (``./bench/run``): one table, one JSON file.

Parts (``--only``/``--skip`` take their names):

  http      latest and an immutable page (200 and 304) at 64 and 256 connections, with wrk,
            next to a bare aiohttp + uvloop handler sending the same bytes (bench/http_bench.py)
  harvest   members/s walking a whole stream (view → days → windows) over HTTP, cold and warm
  ingest    members/s into the store in-process (ingest(), durable log, fsync always) and
            through the push API (POST batches of 1000, fsync always)
  memory    bytes per stored member (RSS and tracemalloc), parking and the largest crowdedness members
  restart   seconds from process start until /health/ready with the log of 10 million members,
            first from the log alone, then again with the day snapshots that first run wrote
  encoding  a 500-member page as JSON-LD directly versus through rdflib; N-Quads/Turtle/TriG rates
  tpf       one triple-pattern workload against ldf-server and the reference @ldf/server

``--quick`` runs smaller sizes (harvest 200k, memory 1M, restart 1M) and shorter runs, and
says so in the table and the JSON. Every figure is measured in the same run as the figure
it is compared with; targets are checked on those ratios and rates. Nothing here asserts
anything in the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from http_bench import git_info, versions, wrk_version  # noqa: E402

PARTS = ("http", "harvest", "ingest", "memory", "restart", "encoding", "tpf")


def part_http(ctx: harness.Ctx) -> dict:
    out = {}
    for conns in (64, 256):
        path = ctx.tmp / f"http-{conns}.json"
        argv = [sys.executable, str(HERE / "http_bench.py"), "--connections", str(conns), "--output", str(path)]
        argv += ["--rounds", "2", "--duration", "3", "--warmup", "1"] if ctx.quick else ["--rounds", "3", "--duration", "4", "--warmup", "1"]
        if conns == 64 and not ctx.quick:
            argv += ["--workers", "2"]  # one process per core next to the bare server on as many (SO_REUSEPORT)
        ctx.log(f"http: {conns} connections (bench/http_bench.py)")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            stdout, _ = proc.communicate(timeout=1200)
        finally:
            if proc.poll() is None:  # interrupted: SIGTERM lets http_bench stop its own servers
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if proc.returncode != 0:
            raise RuntimeError(f"http_bench failed:\n{stdout[-3000:]}")
        res = json.loads(path.read_text())
        table_start = stdout.find("ldf-server vs bare")
        print(stdout[table_start:].split("results:")[0], file=sys.stderr)
        out[str(conns)] = {k: {"ldf_rps": v["ldf"]["rps_median"], "bare_rps": v["bare"]["rps_median"],
                               "ratio": v["ratio_ldf_over_bare"], "cpu_ratio": v["cpu_ratio_bare_over_ldf"],
                               "ldf_p50_ms": v["ldf"]["latency_p50_ms"], "ldf_p99_ms": v["ldf"]["latency_p99_ms"],
                               "bare_p50_ms": v["bare"]["latency_p50_ms"], "bare_p99_ms": v["bare"]["latency_p99_ms"],
                               "ratio_per_round": v["ratio_per_round"]}
                           for k, v in res["summary"].items()}
        for k, v in res["summary"].items():
            if "ldfw" in v:
                out[str(conns)][k].update({"workers": res["workers"], "ldfw_rps": v["ldfw"]["rps_median"],
                                           "barew_rps": v["barew"]["rps_median"], "ratio_ldfw_over_barew": v["ratio_ldfw_over_barew"],
                                           "ratio_ldfw_over_ldf": v["ratio_ldfw_over_ldf"]})
        out[f"notes_{conns}"] = res["notes"]
    return out


def part_harvest(ctx: harness.Ctx) -> dict:
    import server_bench
    return server_bench.harvest(ctx)


def part_ingest(ctx: harness.Ctx) -> dict:
    import inproc_bench
    import server_bench
    n = 200_000 if ctx.quick else 500_000
    runs = [inproc_bench.in_child("ingest", n, 1000, "always") for _ in range(3)]
    best = max(runs, key=lambda r: r["members_per_s"])
    ctx.log(f"ingest in-process: {best['members_per_s']:,.0f} members/s (batches of 1000, fsync always)")
    return {"inprocess": {**best, "runs_per_s": [r["members_per_s"] for r in runs]}, "push": server_bench.push(ctx)}


def part_memory(ctx: harness.Ctx) -> dict:
    import inproc_bench
    out = {}
    sizes = [1_000_000] if ctx.quick else [1_000_000, 10_000_000]
    for n in sizes:
        r = inproc_bench.in_child("memory", n, "parking", "notrace", timeout=1800)
        out[f"parking_{n}"] = r
        ctx.log(f"memory parking {n:,}: {r['rss_per_member']:.0f} B/member RSS")
    n = 200_000 if ctx.quick else 1_000_000
    r = inproc_bench.in_child("memory", n, "parking", "trace")
    out[f"parking_{n}_traced"] = r
    ctx.log(f"memory parking {n:,} (tracemalloc): {r['traced_per_member']:.0f} B/member traced")
    r = inproc_bench.in_child("memory", n, "crowdedness", "trace")
    out[f"crowdedness_{n}"] = r
    ctx.log(f"memory crowdedness {n:,}: {r['rss_per_member']:.0f} B/member RSS, {r['traced_per_member']:.0f} traced")
    big = max(sizes)
    out["parking_per_member_at_largest"] = out[f"parking_{big}"]["rss_per_member"]
    out["largest"] = big
    return out


def part_restart(ctx: harness.Ctx) -> dict:
    import server_bench
    return server_bench.restart(ctx)


def part_encoding(ctx: harness.Ctx) -> dict:
    import inproc_bench
    r = inproc_bench.in_child("encoding", 500, 4 if ctx.quick else 12)
    ctx.log(f"encoding: JSON-LD direct {r['direct_build_encode_s'] * 1e3:.2f} ms, rdflib {r['rdflib_serialize_s'] * 1e3:.0f} ms "
            f"({r['ratio_rdflib_over_direct']:.0f}x); N-Quads {r['nquads_members_per_s']:,.0f}/s, Turtle {r['turtle_members_per_s']:,.0f}/s")
    return r


def part_tpf(ctx: harness.Ctx) -> dict:
    import tpf_bench
    return tpf_bench.tpf(ctx)


# ----------------------------------------------------------------------------- targets and table


def rows(results: dict, quick: bool) -> list[tuple[str, str, str, str, bool | None]]:
    """(what, measured, compared with, target, met) for the table and the JSON."""
    out: list[tuple[str, str, str, str, bool | None]] = []
    http = results.get("http")
    if isinstance(http, dict) and "64" in http:
        for conns in ("64", "256"):
            for key, label in (("latest_200", "latest"), ("window_200", "immutable page"),
                               ("latest_304", "latest 304"), ("window_304", "immutable 304")):
                c = http[conns][key]
                need = 1.0 if key.endswith("304") else 0.8
                out.append((f"{label}, {conns} conns", f"{c['ldf_rps']:,.0f} req/s p50 {c['ldf_p50_ms']:.1f} p99 {c['ldf_p99_ms']:.1f} ms",
                            f"bare {c['bare_rps']:,.0f} p50 {c['bare_p50_ms']:.1f} p99 {c['bare_p99_ms']:.1f} ms; ratio {c['ratio']:.2f} (CPU {c['cpu_ratio'] or 0:.2f})",
                            f">= {need:.1f}x bare", c["ratio"] >= need))
        for key, label in (("latest_200", "latest"), ("window_200", "immutable page"),
                           ("latest_304", "latest 304"), ("window_304", "immutable 304")):
            c = http["64"].get(key, {})
            if "ldfw_rps" in c:
                out.append((f"{label}, 64 conns, {c['workers']} processes", f"{c['ldfw_rps']:,.0f} req/s "
                            f"({c['ratio_ldfw_over_ldf']:.2f}x one process)",
                            f"bare, {c['workers']} processes: {c['barew_rps']:,.0f}; ratio {c['ratio_ldfw_over_barew']:.2f}",
                            "(reported: unpinned, wrk shares the cores)", None))
    h = results.get("harvest")
    if isinstance(h, dict) and "warm_members_per_s" in h:
        out.append((f"harvest {h['members_in_log']:,} members", f"warm {h['warm_members_per_s']:,.0f}/s",
                    f"cold {h['cold_members_per_s']:,.0f}/s", ">= 50,000/s warm", h["warm_members_per_s"] >= 50_000))
    i = results.get("ingest")
    if isinstance(i, dict) and "inprocess" in i:
        out.append(("ingest in-process (log, fsync)", f"{i['inprocess']['members_per_s']:,.0f}/s", "batches of 1000",
                    ">= 100,000/s", i["inprocess"]["members_per_s"] >= 100_000))
        out.append(("ingest push API (log, fsync)", f"{i['push']['members_per_s']:,.0f}/s", "batches of 1000, 4 clients",
                    ">= 20,000/s", i["push"]["members_per_s"] >= 20_000))
    m = results.get("memory")
    if isinstance(m, dict) and "largest" in m:
        for k, v in m.items():
            if isinstance(v, dict):
                target = "<= 64 B" if k.startswith("parking") else "(reported)"
                if v.get("traced_per_member"):  # RSS under tracemalloc includes its own bookkeeping: not shown
                    out.append((f"memory {k.replace('_', ' ')}", f"{v['traced_per_member']:.0f} B/member traced", "tracemalloc",
                                target, None))
                else:
                    out.append((f"memory {k.replace('_', ' ')}", f"{v['rss_per_member']:.0f} B/member RSS", "RSS growth",
                                target, v["rss_per_member"] <= 64 if k.startswith("parking") else None))
    r = results.get("restart")
    if isinstance(r, dict) and "ready_s" in r:
        out.append((f"restart with {r['members']:,} members", f"ready in {r['ready_s']:.1f} s (day snapshots)",
                    f"from the log alone {r['ready_log_only_s']:.1f} s; log {r['log_bytes'] / 1e9:.2f} GB; "
                    f"server RSS {r['server_rss_per_member']:.0f} B/member",
                    "<= 10 s at 10M", r["ready_s"] <= 10 if r["members"] >= 10_000_000 else None))
    e = results.get("encoding")
    if isinstance(e, dict) and "direct_build_encode_s" in e:
        out.append(("encode 500-member page", f"JSON-LD direct {e['direct_build_encode_s'] * 1e3:.2f} ms",
                    f"rdflib serializer {e['rdflib_serialize_s'] * 1e3:.0f} ms ({e['ratio_rdflib_over_direct']:.0f}x slower)",
                    "(reported)", None))
        out.append(("encode rates", f"N-Quads {e['nquads_members_per_s']:,.0f}/s", f"Turtle {e['turtle_members_per_s']:,.0f}/s, "
                    f"TriG {e['trig_members_per_s']:,.0f}/s, JSON-LD {e['jsonld_members_per_s']:,.0f}/s members", "(reported)", None))
    t = results.get("tpf")
    if isinstance(t, dict) and "ratio" in t:
        out.append((f"TPF, {t['patterns']} patterns", f"{t['ldf_rps']:,.0f} req/s p99 {t['ldf_p99_ms']:.0f} ms",
                    f"@ldf/server {t['ref_rps']:,.0f} req/s p99 {t['ref_p99_ms']:.0f} ms; ratio {t['ratio']:.2f}",
                    ">= 2x reference", t["ratio"] >= 2.0))
    return out


def table(rs: list[tuple[str, str, str, str, bool | None]]) -> str:
    w = [max(len(r[i]) for r in rs) for i in range(4)] if rs else [0] * 4
    lines = [f"{'what':<{w[0]}} | {'measured':<{w[1]}} | {'compared with (same run)':<{w[2]}} | {'target':<{w[3]}} | met"]
    lines.append("-" * len(lines[0]))
    for r in rs:
        met = "-" if r[4] is None else ("yes" if r[4] else "NO")
        lines.append(f"{r[0]:<{w[0]}} | {r[1]:<{w[1]}} | {r[2]:<{w[2]}} | {r[3]:<{w[3]}} | {met}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="ldf-server benchmark suite (issue 6).")
    p.add_argument("--only", help=f"comma-separated parts to run ({','.join(PARTS)})")
    p.add_argument("--skip", help="comma-separated parts to leave out")
    p.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs (about 4 minutes)")
    p.add_argument("--output", help="JSON file (default bench/results/suite-<timestamp>.json)")
    args = p.parse_args(argv)
    parts = [x for x in (args.only.split(",") if args.only else PARTS)]
    unknown = [x for x in parts + (args.skip.split(",") if args.skip else []) if x not in PARTS]
    if unknown:
        p.error(f"unknown parts {unknown}; known: {', '.join(PARTS)}")
    parts = [x for x in parts if x not in (args.skip.split(",") if args.skip else [])]

    def on_signal(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    tmp = Path(tempfile.mkdtemp(prefix="ldf-suite-"))
    ctx = harness.Ctx(quick=args.quick, tmp=tmp)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results: dict = {}
    timings: dict = {}
    started = time.monotonic()
    print(f"ldf-server benchmark suite: {', '.join(parts)}{' (QUICK: smaller sizes)' if args.quick else ''}",
          file=sys.stderr, flush=True)
    try:
        for name in parts:
            t0 = time.monotonic()
            print(f"[{name}]", file=sys.stderr, flush=True)
            try:
                results[name] = globals()[f"part_{name}"](ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - one failing part must not lose the others
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            finally:
                harness.stop_all()
            timings[name] = round(time.monotonic() - t0, 1)
    except KeyboardInterrupt:
        print("suite: interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        harness.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    rs = rows(results, args.quick)
    print()
    print(f"ldf-server benchmark suite{' (QUICK: smaller sizes, see bench/README.md)' if args.quick else ''}; "
          f"{os.cpu_count()} CPUs, ratios from runs in this same invocation")
    print(table(rs))
    for name, r in results.items():
        if isinstance(r, dict) and "error" in r:
            print(f"note: part {name} failed: {r['error'][:300]}")
    out = Path(args.output) if args.output else HERE / "results" / f"suite-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "generated": stamp, "quick": args.quick, "parts": parts, "elapsed_s": round(time.monotonic() - started, 1),
        "part_seconds": timings, "git": git_info(), "versions": {**versions(), "wrk": wrk_version(), "node": _node()},
        "machine": {"cpus": os.cpu_count(), "affinity": sorted(os.sched_getaffinity(0)), "loadavg": os.getloadavg()},
        "targets": [{"what": r[0], "measured": r[1], "compared_with": r[2], "target": r[3], "met": r[4]} for r in rs],
        "results": results,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {out.relative_to(HERE.parent) if out.is_relative_to(HERE.parent) else out} "
          f"({time.monotonic() - started:.0f} s)")
    return 0


def _node() -> str | None:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip() or None
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
