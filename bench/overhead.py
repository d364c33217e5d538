"""Where ldf-server's per-request CPU time goes: the same server with one layer taken out at a
time, each loaded with wrk on ``/parking/latest`` (200), CPU microseconds per request.

    .venv/bin/python bench/overhead.py [--seconds 4] [--rounds 2]

Layers: ``full`` (as served), ``-fast-path`` (no shortcut for latest and window pages: router,
middleware and handler coroutine as for every other route), ``-middleware`` (neither the
shortcut nor the one middleware: no request id, metrics, CORS or problem documents),
``-limits`` (aiohttp's plain server instead of the guarded one: no head deadline, connection
count, raw-problem hooks or shortcut). A diagnostic for the README's Performance section, not
a target: every layer here is a feature (README "Limits", "Metrics"). For repeatable
instruction counts without sockets, see ``bench/hotpath.py``. Servers listen on 127.0.0.1 and
are stopped by process group.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

VARIANTS = ("full", "-fast-path", "-middleware", "-limits")


def serve(variant: str, port: int) -> None:
    """Child: build the app from config/default.toml (no data dir), drop a layer, serve."""
    sys.path.insert(0, str(HERE.parent))
    import uvloop
    from aiohttp import web

    from ldf_server.app import create_app
    from ldf_server.config import load_config
    from ldf_server.http import limits

    cfg = load_config(str(HERE.parent / "config" / "default.toml"))
    server = cfg.server.model_copy(update={"data_dir": None, "port": port, "host": "127.0.0.1"})
    cfg = cfg.model_copy(update={"server": server})
    from ldf_server.http.fastpath import FAST_PATH

    app = create_app(cfg)
    if variant in ("-fast-path", "-middleware"):
        del app[FAST_PATH]
    if variant == "-middleware":
        app.middlewares.clear()  # not frozen yet: the app starts below
    if variant == "-limits":
        web.run_app(app, host="127.0.0.1", port=port, loop=uvloop.new_event_loop(), print=None, access_log=None)
    else:
        limits.run(app, server, host="127.0.0.1", port=port, access_log=None, loop=uvloop.new_event_loop())


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    import harness
    from http_bench import fetch

    cpus = sorted(os.sched_getaffinity(0))
    server_cpus = {cpus[-1]} if len(cpus) > 1 else None
    load_cpus = set(cpus[:-1]) if len(cpus) > 1 else None
    tmp = Path(tempfile.mkdtemp(prefix="ldf-overhead-"))
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        for rnd in range(args.rounds):
            for variant in VARIANTS if rnd % 2 == 0 else tuple(reversed(VARIANTS)):
                port = harness.free_port()
                log = tmp / f"{variant}.log"
                proc = harness.start_server(variant, [sys.executable, __file__, "--serve", variant, str(port)], log,
                                            cpus=server_cpus)
                try:
                    harness.wait_status(port, "/parking/latest", proc, 90, log, poll=0.2)
                    fetch(port, "/parking/latest")
                    argv = ["wrk", "-t1", "-c64", f"-d{args.seconds}s", "-H", "Accept: application/ld+json",
                            f"http://127.0.0.1:{port}/parking/latest"]
                    subprocess.run(argv[:3] + ["-d1s"] + argv[4:], capture_output=True,
                                   preexec_fn=(lambda: os.sched_setaffinity(0, load_cpus)) if load_cpus else None)
                    cpu0 = _cpu(proc.pid)
                    out = subprocess.run(argv, capture_output=True, text=True,
                                         preexec_fn=(lambda: os.sched_setaffinity(0, load_cpus)) if load_cpus else None)
                    cpu = _cpu(proc.pid) - cpu0
                    reqs = int(next(ln for ln in out.stdout.splitlines() if "requests in" in ln).split()[0])
                    results[variant].append(cpu * 1e6 / reqs)
                    print(f"  {variant:<12} {cpu * 1e6 / reqs:6.1f} us/req ({reqs / args.seconds:,.0f} req/s)", file=sys.stderr)
                finally:
                    harness.stop_server(proc)
    finally:
        harness.stop_all()
    med = {v: sorted(x)[len(x) // 2] for v, x in results.items()}
    print(json.dumps({"cpu_us_per_request_median": med, "runs": results}, indent=2))
    return 0


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(main())
