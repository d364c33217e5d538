"""Part 7: one triple-pattern workload against ldf-server and the reference Linked Data
Fragments server (``@ldf/server``, pinned in bench/ldf-reference/package.json) loaded with
the same triples (an N-Triples file dumped from ldf-server's own TPF interface).

Both run as one process pinned to the same CPU, wrk on the others; runs alternate and the
figures are medians. Every request sends the Accept header Comunica sends.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from harness import (HERE, HOST, BenchError, Ctx, fetch, free_port, ldf_argv, median, start_server, stop_server,
                     wait_status, write_config)
from server_bench import cached_log

ACCEPT = ("application/n-quads, application/trig;q=0.95, application/ld+json;q=0.9, "
          "application/n-triples;q=0.8, text/turtle;q=0.6")
REF = HERE / "ldf-reference"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


def ensure_reference(ctx: Ctx) -> Path:
    binary = REF / "node_modules" / "@ldf" / "server" / "bin" / "ldf-server"
    if not binary.exists():
        ctx.log("installing the reference server (npm ci in bench/ldf-reference)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REF, check=True, timeout=900)
    return binary


def dump_triples(port: int) -> list[str]:
    """Every data triple of /parking/tpf (the default graph of the N-Quads pages)."""
    lines: list[str] = []
    path = "/parking/tpf"
    while path:
        status, _, body = fetch(port, path, {"Accept": "application/n-quads"})
        if status != 200:
            raise BenchError(f"GET {path}: {status}")
        path = ""
        for line in body.decode().splitlines():
            if line.count("> <") and line.rstrip(" .").endswith("#metadata>"):
                if "hydra/core#next>" in line:
                    path = line.split("> <")[2].split(">")[0].split(f":{port}", 1)[1]
                continue
            if line:
                lines.append(line)
    return lines


def workload(triples: list[str]) -> list[str]:
    """Query strings: all triples, by predicate, by subject, by object, by subject and predicate."""
    subjects = sorted({t.split(" ", 1)[0][1:-1] for t in triples})
    predicates = sorted({t.split(" ", 2)[1][1:-1] for t in triples})
    objects = sorted({t.split(" ", 2)[2].rsplit(" .", 1)[0] for t in triples if t.split(" ", 2)[2].startswith("<")})
    q = lambda **kw: "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in kw.items())  # noqa: E731
    out = ["", q(predicate=RDF_TYPE)]
    out += [q(predicate=p) for p in predicates]
    out += [q(subject=s) for s in subjects[:: max(1, len(subjects) // 20)]]
    out += [q(object=o[1:-1]) for o in objects[:: max(1, len(objects) // 10)]]
    out += [q(subject=s, predicate=predicates[0]) for s in subjects[:: max(1, len(subjects) // 10)]]
    return out


def wrk(port: int, prefix: str, queries: list[str], seconds: int, cpus: set[int] | None, tmp: Path) -> dict:
    paths = tmp / f"paths-{port}.txt"
    paths.write_text("\n".join(prefix + q for q in queries) + "\n")
    env = {**os.environ, "BENCH_ACCEPT": ACCEPT, "BENCH_PATHS": str(paths)}
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "--timeout", "5s", "-s", str(HERE / "wrk_paths.lua"),
                          f"http://{HOST}:{port}{prefix}"], env=env, capture_output=True, text=True,
                         timeout=seconds + 30, preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            r = json.loads(line[len("BENCH_JSON "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            return r
    raise BenchError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")


def tpf(ctx: Ctx) -> dict:
    binary = ensure_reference(ctx)
    cpus = ctx.cpus
    server_cpus = {cpus[-1]} if len(cpus) > 1 else None
    load_cpus = set(cpus[:-1]) if len(cpus) > 1 else None
    data = cached_log(ctx, 200_000)
    port = free_port()
    log_path = ctx.tmp / "tpf-ldf.log"
    cfg = write_config(ctx.tmp / "tpf.toml")
    procs = []
    try:
        ldf = start_server("ldf-tpf", ldf_argv(cfg, port, data), log_path, cpus=server_cpus)
        procs.append(ldf)
        wait_status(port, "/health/ready", ldf, 120, log_path)
        triples = dump_triples(port)
        nt = ctx.tmp / "tpf.nt"
        nt.write_text("\n".join(triples) + "\n")
        queries = workload(triples)
        rport = free_port()
        conf = ctx.tmp / "ref-config.json"
        conf.write_text(json.dumps({
            "@context": "https://linkedsoftwaredependencies.org/bundles/npm/@ldf/server/^3.0.0/components/context.jsonld",
            "@id": "urn:ldf-server:my", "import": "preset-qpf:config-defaults.json",
            "title": "reference", "baseURL": f"http://{HOST}:{rport}/", "port": rport, "workers": 1,
            "datasources": [{"@id": "urn:ldf-server:benchNt", "@type": "NTriplesDatasource", "datasourceTitle": "bench",
                             "description": "same triples", "datasourcePath": "parking", "file": str(nt)}],
        }))
        rlog = ctx.tmp / "tpf-ref.log"
        ref = start_server("ref-tpf", ["node", "-r", str(REF / "loopback.js"), str(binary), str(conf), str(rport), "1"], rlog, cpus=server_cpus)
        procs.append(ref)
        wait_status(rport, "/parking", ref, 120, rlog, poll=0.25)
        # Same answers? Compare the data triples of one pattern on both.
        for name, p, prefix in (("ldf", port, "/parking/tpf"), ("ref", rport, "/parking")):
            st, _, body = fetch(p, prefix + queries[1], {"Accept": "application/n-triples"})
            if st != 200:
                raise BenchError(f"{name} {prefix + queries[1]} answered {st}")
        seconds = 3 if ctx.quick else 5
        rounds = 2 if ctx.quick else 3
        runs: dict[str, list[dict]] = {"ldf": [], "ref": []}
        for rnd in range(rounds):
            order = [("ldf", port, "/parking/tpf"), ("ref", rport, "/parking")]
            if rnd % 2:
                order.reverse()
            for name, p, prefix in order:
                wrk(p, prefix, queries, 1, load_cpus, ctx.tmp)  # warm-up
                r = wrk(p, prefix, queries, seconds, load_cpus, ctx.tmp)
                runs[name].append(r)
                ctx.log(f"tpf round {rnd + 1} {name}: {r['rps']:,.0f} req/s (200: {r['status']['200']}, other: {r['status']['other']})")
        ldf_rps, ref_rps = median([r["rps"] for r in runs["ldf"]]), median([r["rps"] for r in runs["ref"]])
        return {"triples": len(triples), "patterns": len(queries), "accept": ACCEPT, "ldf_rps": ldf_rps,
                "ref_rps": ref_rps, "ratio": ldf_rps / ref_rps, "ref_workers": 1,
                "ldf_p99_ms": median([r["latency_us"]["p99"] for r in runs["ldf"]]) / 1000,
                "ref_p99_ms": median([r["latency_us"]["p99"] for r in runs["ref"]]) / 1000,
                "non_200": {k: sum(r["status"]["other"] for r in v) for k, v in runs.items()}, "runs": runs}
    finally:
        for p in procs:
            stop_server(p)
