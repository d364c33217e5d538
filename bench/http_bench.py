"""HTTP throughput of ldf-server next to a bare aiohttp + uvloop server sending the same bytes.

Run it through ``bench/run`` (which installs what it needs); see bench/README.md.

Steps: start ldf-server (config/default.toml, 24 h of simulated history) on a free
127.0.0.1 port; fetch ``/parking/latest`` and a closed, immutable window page (found by
following ``/parking/view?time=<now - 6 h>``); start ``bench/bare_server.py`` serving
those exact bytes and headers at the same paths; then load both with wrk, alternating
ldf and bare run by run, for several rounds, and report medians and ratios. Both servers
are stopped on exit, error or Ctrl-C. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"
ACCEPT = "application/ld+json"
RESULTS = HERE / "results" / "latest.json"
# Headers aiohttp writes itself on every response; everything else is mirrored by bare_server.
OWN_HEADERS = {"date", "server", "content-length", "transfer-encoding", "connection", "keep-alive"}


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------- processes


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    log_path: Path

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def cpu_seconds(self) -> float:
        """User + system CPU time the server's processes (its session: workers too) have used so far."""
        ticks = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.proc.pid:  # the session started_new_session gave the server
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start(name: str, argv: list[str], log_path: Path, cpus: set[int] | None) -> subprocess.Popen:
    def preexec() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    log = open(log_path, "wb")
    try:
        # A session of its own: the process group is killed as a whole in stop().
        return subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=preexec,
        )
    finally:
        log.close()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def machine_ticks() -> list[int]:
    """The first 8 counters of /proc/stat's cpu line (user … steal), in clock ticks."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def wait_ready(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchError(f"{server.name} exited with code {server.proc.returncode}:\n{server.log_tail()}")
        try:
            status, _, _ = fetch(server.port, path)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise BenchError(f"{server.name} not ready after {timeout:.0f} s:\n{server.log_tail()}")


# --------------------------------------------------------------------------- HTTP helpers


def fetch(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept": ACCEPT, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def max_age(headers: list[tuple[str, str]]) -> int | None:
    for part in (header(headers, "Cache-Control") or "").split(","):
        k, _, v = part.strip().partition("=")
        if k == "max-age" and v.isdigit():
            return int(v)
    return None


@dataclass
class Resource:
    key: str
    path: str
    body: bytes
    headers: list[tuple[str, str]]  # 200 headers to mirror
    headers_304: list[tuple[str, str]]
    etag: str


def capture(port: int, key: str, path: str) -> Resource:
    status, headers, body = fetch(port, path)
    if status != 200:
        raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
    etag = header(headers, "ETag")
    if not etag:
        raise BenchError(f"GET {path} has no ETag")
    status, headers_304, _ = fetch(port, path, {"If-None-Match": etag})
    for _ in range(8):
        if status == 304:
            break
        # /latest changes at every poll, and right after start-up the feeds' first polls come
        # in a burst: try again with a fresh tag a little later.
        time.sleep(0.5)
        status, headers, body = fetch(port, path)
        etag = header(headers, "ETag") or ""
        status, headers_304, _ = fetch(port, path, {"If-None-Match": etag})
    if status != 304:
        raise BenchError(f"GET {path} with If-None-Match: {etag} answered {status}, not 304")
    mirror = lambda hs: [(k, v) for k, v in hs if k.lower() not in OWN_HEADERS]  # noqa: E731
    return Resource(key, path, body, mirror(headers), mirror(headers_304), etag)


def write_spec(resources: dict[str, Resource], tmp: Path, prefix: str) -> Path:
    """The bare server's spec: the captured bytes and headers of each resource, at its path."""
    routes = []
    for res in resources.values():
        body_file = tmp / f"{prefix}{res.key}.body"
        body_file.write_bytes(res.body)
        routes.append({"path": res.path, "body_file": str(body_file), "etag": res.etag,
                       "headers": res.headers, "headers_304": res.headers_304})
    path = tmp / f"{prefix}spec.json"
    path.write_text(json.dumps({"routes": routes}))
    return path


def find_window(port: int, when: str | None = None) -> str:
    when = when or (datetime.now(timezone.utc) - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, headers, body = fetch(port, f"/parking/view?time={when}")
    location = header(headers, "Location")
    if status != 302 or not location:
        raise BenchError(f"/parking/view?time={when} answered {status} without a redirect: {body[:300]!r}")
    path = urlsplit(location).path
    for _ in range(40):  # with workers, a follower serves it as immutable once the leader sealed it (~1 s)
        status, headers, _ = fetch(port, path)
        cc = header(headers, "Cache-Control") or ""
        if status == 200 and "immutable" in cc:
            break
        time.sleep(0.25)
    if status != 200 or "immutable" not in cc:
        raise BenchError(f"{path} answered {status} with Cache-Control {cc!r}; expected a closed, immutable page")
    return path


# --------------------------------------------------------------------------- load generators


@dataclass
class LoadGen:
    kind: str  # "wrk" or "aiohttp"
    threads: int
    connections: int
    cpus: set[int] | None
    version: str = ""

    def run(self, port: int, path: str, seconds: float, inm: str | None, count: bool) -> dict:
        url = f"http://{HOST}:{port}{path}"
        if self.kind == "wrk":
            return self._wrk(url, seconds, inm, count)
        return self._aiohttp(url, seconds, inm)

    def _preexec(self) -> None:
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)

    def _wrk(self, url: str, seconds: float, inm: str | None, count: bool) -> dict:
        env = {**os.environ, "BENCH_ACCEPT": ACCEPT, "BENCH_INM": inm or "", "BENCH_COUNT": "1" if count else "0"}
        argv = ["wrk", f"-t{self.threads}", f"-c{self.connections}", f"-d{max(1, round(seconds))}s",
                "--timeout", "5s", "-s", str(HERE / "wrk_report.lua"), url]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 30,
                             preexec_fn=self._preexec)
        for line in out.stdout.splitlines():
            if line.startswith("BENCH_JSON "):
                return json.loads(line[len("BENCH_JSON "):])
        raise BenchError(f"wrk printed no result (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")

    def _aiohttp(self, url: str, seconds: float, inm: str | None) -> dict:
        # `threads` processes, each with its share of the connections; warm-up is a separate call.
        per = max(1, self.connections // self.threads)
        argv = [sys.executable, str(HERE / "aiohttp_load.py"), url, "--connections", str(per),
                "--warmup", "0", "--duration", str(seconds), "--header", f"Accept:{ACCEPT}"]
        if inm:
            argv += ["--header", f"If-None-Match:{inm}"]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=self._preexec) for _ in range(self.threads)]
        parts = []
        try:
            for p in procs:
                out, err = p.communicate(timeout=seconds + 30)
                line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
                if line is None:
                    raise BenchError(f"aiohttp_load printed no result (exit {p.returncode}):\n{err}")
                parts.append(json.loads(line[len("BENCH_JSON "):]))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        lat = sorted(x for part in parts for x in part.pop("raw_latencies_us"))
        pct = lambda q: lat[min(len(lat) - 1, int(len(lat) * q / 100))] if lat else 0  # noqa: E731
        return {
            "requests": sum(p["requests"] for p in parts),
            "duration_us": max(p["duration_us"] for p in parts),
            "bytes": sum(p["bytes"] for p in parts),
            "errors": {k: sum(p["errors"][k] for p in parts) for k in parts[0]["errors"]},
            "latency_us": {"mean": sum(lat) / len(lat) if lat else 0.0, "p50": pct(50), "p90": pct(90),
                           "p99": pct(99), "max": lat[-1] if lat else 0},
            "status": {k: sum(p["status"][k] for p in parts) for k in ("200", "304", "other")},
        }


def wrk_version() -> str | None:
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].split(" Copyright")[0] if text else "wrk"


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Case:
    resource: str  # "latest" or "window"
    conditional: bool  # If-None-Match: <ETag> → 304 path

    @property
    def key(self) -> str:
        return f"{self.resource}_{'304' if self.conditional else '200'}"


@dataclass
class Bench:
    args: argparse.Namespace
    loadgen: LoadGen
    servers: dict[str, Server]
    resources: dict[str, dict[str, Resource]]  # server name → resource key → Resource
    runs: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    loadgens: dict[str, LoadGen] = field(default_factory=dict)  # per server, when not ``loadgen`` (unpinned runs)

    def etag_for(self, server: str, case: Case, needed_s: float) -> str:
        res = self.resources[server][case.resource]
        if not server.startswith("ldf") or case.resource != "latest":
            return res.etag
        # /latest changes at every poll (every 30 s). Take a fresh tag and, if the next poll
        # falls inside this run, wait for it first, so that the run measures 304s only.
        for _ in range(3):
            _, headers, _ = fetch(self.servers[server].port, res.path)
            age = max_age(headers)
            if age is None or age > needed_s:
                return header(headers, "ETag") or res.etag
            time.sleep(age + 0.5)
        return header(headers, "ETag") or res.etag

    def one(self, server_name: str, case: Case) -> dict:
        server = self.servers[server_name]
        path = self.resources[server_name][case.resource].path
        loadgen = self.loadgens.get(server_name, self.loadgen)
        a = self.args
        inm = self.etag_for(server_name, case, a.warmup + a.duration + 1) if case.conditional else None
        if a.warmup > 0:
            loadgen.run(server.port, path, a.warmup, inm, count=False)
        cpu0, stat0 = server.cpu_seconds(), machine_ticks()
        r = loadgen.run(server.port, path, a.duration, inm, count=case.conditional)
        r["server_cpu_s"] = server.cpu_seconds() - cpu0
        stat1 = machine_ticks()
        total = sum(stat1) - sum(stat0)
        r["machine_steal"] = (stat1[7] - stat0[7]) / total if total > 0 else None
        seconds = r["duration_us"] / 1e6
        r["rps"] = r["requests"] / seconds if seconds else 0.0
        r["server_busy"] = r["server_cpu_s"] / seconds if seconds else None
        r["server_cpu_us_per_req"] = r["server_cpu_s"] * 1e6 / r["requests"] if r["requests"] else None
        if server.proc.poll() is not None:
            raise BenchError(f"{server.name} exited during the run:\n{server.log_tail()}")
        return r

    def run_all(self) -> None:
        cases = [Case(res, cond) for res in ("latest", "window") for cond in (False, True)]
        names = list(self.servers)
        total = len(cases) * len(names) * self.args.rounds
        n = 0
        for rnd in range(self.args.rounds):
            order = names if rnd % 2 == 0 else names[::-1]  # alternate who goes first
            for case in cases:
                for name in order:
                    n += 1
                    r = self.one(name, case)
                    self.runs.setdefault(case.key, {}).setdefault(name, []).append(r)
                    extra = ""
                    if "status" in r:
                        s = r["status"]
                        extra = f"  (200: {s['200']}, 304: {s['304']}, other: {s['other']})"
                    print(f"  [{n:2d}/{total}] round {rnd + 1} {case.key:<11} {name:<5} {r['rps']:9,.0f} req/s{extra}",
                          file=sys.stderr, flush=True)

    def summary(self) -> dict:
        out = {}
        for key, by_server in self.runs.items():
            row: dict = {}
            for name, runs in by_server.items():
                rps = [r["rps"] for r in runs]
                cpu = [r["server_cpu_us_per_req"] for r in runs if r["server_cpu_us_per_req"] is not None]
                row[name] = {
                    "rps_median": statistics.median(rps),
                    "rps_runs": rps,
                    "rps_spread": (max(rps) - min(rps)) / statistics.median(rps) if statistics.median(rps) else None,
                    "latency_p50_ms": statistics.median(r["latency_us"]["p50"] for r in runs) / 1000,
                    "latency_p99_ms": statistics.median(r["latency_us"]["p99"] for r in runs) / 1000,
                    "server_cpu_us_per_req": statistics.median(cpu) if cpu else None,
                    "server_busy_median": statistics.median(r["server_busy"] for r in runs),
                    "machine_steal_max": max((r["machine_steal"] or 0.0) for r in runs),
                    "errors": {k: sum(r["errors"][k] for r in runs) for k in runs[0]["errors"]},
                }
                if "status" in runs[0]:
                    row[name]["status"] = {k: sum(r["status"][k] for r in runs) for k in ("200", "304", "other")}
            ldf, bare = by_server["ldf"], by_server["bare"]
            per_round = [a["rps"] / b["rps"] for a, b in zip(ldf, bare) if b["rps"]]
            row["ratio_ldf_over_bare"] = row["ldf"]["rps_median"] / row["bare"]["rps_median"]
            row["ratio_per_round"] = per_round
            lc, bc = row["ldf"]["server_cpu_us_per_req"], row["bare"]["server_cpu_us_per_req"]
            # What the throughput ratio would be if both servers had a whole CPU to themselves.
            row["cpu_ratio_bare_over_ldf"] = bc / lc if lc and bc else None
            if "ldfw" in by_server:  # several processes: next to the same number of bare ones, and to one process
                w = row["ldfw"]["rps_median"]
                row["ratio_ldfw_over_barew"] = w / row["barew"]["rps_median"]
                row["ratio_ldfw_over_ldf"] = w / row["ldf"]["rps_median"]
                row["ratio_ldfw_over_bare"] = w / row["bare"]["rps_median"]
                row["ratio_ldfw_over_barew_per_round"] = [
                    a["rps"] / b["rps"] for a, b in zip(by_server["ldfw"], by_server["barew"]) if b["rps"]]
            out[key] = row
        return out


LEGEND = """\
ldf/bare: ldf-server req/s over bare req/s, medians of the rounds (1.00 = no overhead); per round: that ratio
in each round. CPU us/req: server process CPU time per answered request (median); ratio: bare/ldf of it, the
throughput ratio if each server had a CPU to itself (steadier than req/s on a noisy machine). busy: share of a
CPU the server used while measured; well under 100% means something else (load generator, other tenants) held
the CPU, and the req/s figures of that cell are less trustworthy."""

LABELS = {
    "latest_200": ("GET /parking/latest", "200"),
    "latest_304": ("GET /parking/latest", "304 INM"),
    "window_200": ("GET window (immutable)", "200"),
    "window_304": ("GET window (immutable)", "304 INM"),
}


def table(summary: dict, resources: dict[str, Resource]) -> str:
    head = (f"{'resource':<22} {'answer':<7} {'body B':>6} | {'ldf req/s':>9} {'bare req/s':>10} {'ldf/bare':>8} "
            f"{'per round':<15} | {'CPU us/req ldf bare':>19} {'ratio':>5} | {'busy ldf bare':>13}")
    lines = [head, "-" * len(head)]
    for key in ("latest_200", "latest_304", "window_200", "window_304"):
        if key not in summary:
            continue
        row = summary[key]
        ldf, bare = row["ldf"], row["bare"]
        label, answer = LABELS[key]
        size = "0" if key.endswith("304") else str(len(resources[key.split("_")[0]].body))
        rounds = " ".join(f"{x:.2f}" for x in row["ratio_per_round"])
        cpu = " ".join("-" if s["server_cpu_us_per_req"] is None else f"{s['server_cpu_us_per_req']:.0f}" for s in (ldf, bare))
        cr = "-" if row["cpu_ratio_bare_over_ldf"] is None else f"{row['cpu_ratio_bare_over_ldf']:.2f}"
        busy = " ".join(f"{s['server_busy_median']:.0%}" for s in (ldf, bare))
        lines.append(f"{label:<22} {answer:<7} {size:>6} | {ldf['rps_median']:9,.0f} {bare['rps_median']:10,.0f} "
                     f"{row['ratio_ldf_over_bare']:8.2f} {rounds:<15} | {cpu:>19} {cr:>5} | {busy:>13}")
    return "\n".join(lines)


def workers_table(summary: dict, workers: int) -> str:
    head = (f"{'resource':<22} {'answer':<7} | {'ldf1 req/s':>10} {'bare1 req/s':>11} | {f'ldf{workers}w req/s':>12} "
            f"{f'bare{workers}p req/s':>13} | {'ldfNw/bareNp':>12} {'per round':<15} {'ldfNw/ldf1':>10} {'ldfNw/bare1':>11} | "
            f"{'busy ldfNw bareNp':>17}")
    lines = [head, "-" * len(head)]
    for key in ("latest_200", "latest_304", "window_200", "window_304"):
        row = summary.get(key)
        if not row or "ldfw" not in row:
            continue
        label, answer = LABELS[key]
        rounds = " ".join(f"{x:.2f}" for x in row["ratio_ldfw_over_barew_per_round"])
        busy = " ".join(f"{row[s]['server_busy_median']:.0%}" for s in ("ldfw", "barew"))
        lines.append(f"{label:<22} {answer:<7} | {row['ldf']['rps_median']:10,.0f} {row['bare']['rps_median']:11,.0f} | "
                     f"{row['ldfw']['rps_median']:12,.0f} {row['barew']['rps_median']:13,.0f} | "
                     f"{row['ratio_ldfw_over_barew']:12.2f} {rounds:<15} {row['ratio_ldfw_over_ldf']:10.2f} "
                     f"{row['ratio_ldfw_over_bare']:11.2f} | {busy:>17}")
    return "\n".join(lines)


def git_info() -> dict:
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for mod in ("aiohttp", "uvloop", "orjson"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - informational only
            out[mod] = None
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="ldf-server vs a bare aiohttp + uvloop server, measured with wrk.")
    p.add_argument("--duration", type=float, default=5, help="seconds measured per run (default 5)")
    p.add_argument("--warmup", type=float, default=1, help="seconds of load before each run, not measured (default 1)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; each runs every case on both servers (default 3)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=64, help="open connections (default 64)")
    p.add_argument("--loadgen", choices=["auto", "wrk", "aiohttp"], default="auto",
                   help="load generator: wrk, or the aiohttp fallback (auto: wrk when installed)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the servers to the last CPU and the load generator to the others")
    p.add_argument("--workers", type=int, default=0,
                   help="also measure ldf-server with this many worker processes next to bare_server with as many "
                        "processes (both SO_REUSEPORT, unpinned, wrk unpinned too); 0: skip (default)")
    p.add_argument("--config", default=str(ROOT / "config" / "default.toml"), help="ldf-server config")
    p.add_argument("--output", default=str(RESULTS), help=f"JSON results file (default {RESULTS.relative_to(ROOT)})")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = wrk_version()
    kind = args.loadgen if args.loadgen != "auto" else ("wrk" if wrk else "aiohttp")
    if kind == "wrk" and not wrk:
        print("http_bench: wrk is not installed (bench/run installs it)", file=sys.stderr)
        return 2
    ncpu = len(os.sched_getaffinity(0))
    pin = not args.no_pin and ncpu >= 2
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus = {cpus[-1]} if pin else None
    load_cpus = set(cpus[:-1]) if pin else None
    loadgen = LoadGen(kind, args.threads, args.connections, load_cpus, version=wrk if kind == "wrk" and wrk else "aiohttp client (fallback)")

    # SIGTERM/SIGHUP unwind like Ctrl-C, so the finally below stops the servers.
    def on_signal(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    tmp = Path(tempfile.mkdtemp(prefix="ldf-bench-"))
    procs: list[subprocess.Popen] = []
    started = time.monotonic()
    try:
        fallback = kind != "wrk"
        print(f"ldf-server HTTP benchmark: {loadgen.version}, {args.threads} {'processes' if fallback else 'threads'}, "
              f"{args.connections} connections, {args.duration:g} s per run after {args.warmup:g} s warm-up, "
              f"{args.rounds} rounds" + (f"; servers pinned to CPU {cpus[-1]}, load to CPU {','.join(map(str, cpus[:-1]))}" if pin else ""),
              file=sys.stderr, flush=True)
        if fallback:
            print("*** wrk not available: FALLBACK aiohttp load generator; figures are client-bound ***", file=sys.stderr)

        # ldf-server. Every address is given explicitly so LDF_* variables cannot redirect it.
        port = free_port()
        ldf_bin = Path(sys.executable).parent / "ldf-server"
        argv = [str(ldf_bin), "--config", args.config, "--host", HOST, "--port", str(port),
                "--base-url", f"http://{HOST}:{port}", "--data-dir", str(tmp / "data"), "--log-level", "warning"]
        proc = start("ldf", argv, tmp / "ldf.log", server_cpus)
        procs.append(proc)
        ldf = Server("ldf-server", port, proc, tmp / "ldf.log")
        t0 = time.monotonic()
        wait_ready(ldf, "/health/ready", timeout=90)
        print(f"  ldf-server ready on {HOST}:{port} in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)

        window_path = find_window(port)
        ldf_res = {"latest": capture(port, "latest", "/parking/latest"), "window": capture(port, "window", window_path)}

        # The bare server, serving those bytes and headers at the same paths.
        bport = free_port()
        proc = start("bare", [sys.executable, str(HERE / "bare_server.py"), "--host", HOST, "--port", str(bport),
                              "--spec", str(write_spec(ldf_res, tmp, ""))], tmp / "bare.log", server_cpus)
        procs.append(proc)
        bare = Server("bare_server", bport, proc, tmp / "bare.log")
        wait_ready(bare, "/parking/latest", timeout=30)
        bare_res = {k: capture(bport, k, r.path) for k, r in ldf_res.items()}
        for k in ldf_res:
            if bare_res[k].body != ldf_res[k].body:
                raise BenchError(f"bare server does not serve the same bytes for {k}")
        print(f"  bare server ready on {HOST}:{bport}; window page {window_path}", file=sys.stderr, flush=True)

        servers = {"ldf": ldf, "bare": bare}
        resources = {"ldf": ldf_res, "bare": bare_res}
        if args.workers > 1:
            # N processes each, unpinned (they share every CPU with wrk, which is unpinned for these runs too).
            wport = free_port()
            argv = [str(ldf_bin), "--config", args.config, "--host", HOST, "--port", str(wport), "--workers", str(args.workers),
                    "--base-url", f"http://{HOST}:{wport}", "--data-dir", str(tmp / "data-w"), "--log-level", "warning"]
            proc = start("ldfw", argv, tmp / "ldfw.log", None)
            procs.append(proc)
            ldfw = Server(f"ldf-server --workers {args.workers}", wport, proc, tmp / "ldfw.log")
            wait_ready(ldfw, "/health/ready", timeout=90)
            for _ in range(400):  # every process ready (each new connection may reach another one)
                if all(fetch(wport, "/health/ready")[0] == 200 for _ in range(8)):
                    break
                time.sleep(0.25)
            ldfw_res = {"latest": capture(wport, "latest", "/parking/latest"),
                        "window": capture(wport, "window", find_window(wport))}
            bwport = free_port()
            proc = start("barew", [sys.executable, str(HERE / "bare_server.py"), "--host", HOST, "--port", str(bwport),
                                   "--spec", str(write_spec(ldfw_res, tmp, "w-")), "--processes", str(args.workers)],
                         tmp / "barew.log", None)
            procs.append(proc)
            barew = Server(f"bare_server --processes {args.workers}", bwport, proc, tmp / "barew.log")
            wait_ready(barew, "/parking/latest", timeout=30)
            servers.update(ldfw=ldfw, barew=barew)
            resources.update(ldfw=ldfw_res, barew={k: capture(bwport, k, r.path) for k, r in ldfw_res.items()})
            print(f"  ldf-server --workers {args.workers} on {HOST}:{wport}, bare_server --processes {args.workers} on "
                  f"{HOST}:{bwport}; unpinned", file=sys.stderr, flush=True)
        unpinned = LoadGen(kind, args.threads, args.connections, None, version=loadgen.version)
        bench = Bench(args, loadgen, servers, resources, loadgens={"ldfw": unpinned, "barew": unpinned})
        bench.run_all()
        summary = bench.summary()
    except BenchError as exc:
        print(f"http_bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("http_bench: interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    for key, row in summary.items():
        for name in ("ldf", "bare"):
            errs = {k: v for k, v in row[name]["errors"].items() if v}
            if errs:
                bench.notes.append(f"{key} {name}: wrk errors {errs}")
            if row[name]["server_busy_median"] < 0.85:
                bench.notes.append(f"{key} {name}: server busy only {row[name]['server_busy_median']:.0%} of a CPU "
                                   f"(steal up to {row[name]['machine_steal_max']:.0%}): req/s held back by the machine")
            st = row[name].get("status")
            if key.endswith("_304") and st and (st["200"] or st["other"]):
                bench.notes.append(f"{key} {name}: not every answer was 304: {st}")

    elapsed = time.monotonic() - started
    print()
    print(f"ldf-server vs bare aiohttp + uvloop, same bytes and headers; {loadgen.version}, "
          f"{args.threads} {'processes' if kind != 'wrk' else 'threads'}, {args.connections} connections, "
          f"{args.duration:g} s x {args.rounds} rounds per cell, median")
    if kind != "wrk":
        print("FALLBACK LOAD GENERATOR (aiohttp client, not wrk): client-bound, ratios understate the gap")
    print(table(summary, ldf_res))
    print(LEGEND)
    if args.workers > 1:
        print()
        print(f"workers: ldf-server --workers {args.workers} (ldfNw) and bare_server --processes {args.workers} (bareNp), "
              f"SO_REUSEPORT, unpinned, wrk unpinned; ldf1/bare1 are the pinned single-process figures above")
        print(workers_table(summary, args.workers))
    for note in bench.notes:
        print(f"note: {note}")

    result = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": round(elapsed, 1),
        "workers": args.workers,
        "load_generator": {"kind": kind, "version": loadgen.version, "threads": args.threads,
                           "connections": args.connections, "fallback": kind != "wrk"},
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "rounds": args.rounds,
                     "accept": ACCEPT, "pinned": pin, "server_cpus": sorted(server_cpus or []),
                     "load_cpus": sorted(load_cpus or []), "cpu_count": os.cpu_count()},
        "git": git_info(),
        "versions": versions(),
        "resources": {k: {"path": r.path, "bytes": len(r.body), "etag": r.etag,
                          "content_type": header(r.headers, "Content-Type"),
                          "cache_control": header(r.headers, "Cache-Control")} for k, r in ldf_res.items()},
        "summary": summary,
        "runs": bench.runs,
        "notes": bench.notes,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
