"""Per-request Python cost of the hot paths, without sockets: ldf-server next to a bare handler.

wrk on a shared 2-core machine varies by ±10 % or more from run to run. Here each server's
connection protocol (ldf-server's guarded one, and aiohttp's plain one for the bare app of
``bench/bare_server.py``) is fed raw request bytes by hand on a uvloop loop, with a transport
that only keeps what is written, so what is measured is the Python work per request (parse,
route, handle, build and serialise the response), not the kernel's. The figures lack the
``write``/``read`` system calls that both servers pay equally, so the ratios here are a bit
stricter than wrk's. CPU times still follow the machine's load (``--min`` helps); the
instruction counts below do not.

    .venv/bin/python bench/hotpath.py [--requests 20000] [--rounds 5] [--only latest_304] [--min]

Instruction counts, repeatable to a fraction of a percent on a busy machine (each measured
loop is dumped to its own callgrind.out.PID.N; divide its total by --requests):

    valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no .venv/bin/python bench/hotpath.py --callgrind \\
        --requests 1000 --rounds 1 --only latest_304 --servers ldf

The data: config/default.toml's simulated feeds backfilled once (no data directory, no pollers
running), so ``/parking/latest`` keeps its ETag for the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

ACCEPT = "application/ld+json"
OWN_HEADERS = {"date", "server", "content-length", "transfer-encoding", "connection", "keep-alive"}


class Sink:
    """A transport that keeps the bytes written and wakes whoever waits for a response."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []  # kept by reference: copying a 56 kB body would be measured too
        self.waiter: asyncio.Future[None] | None = None

    def write(self, data: bytes) -> None:
        self.chunks.append(data)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def writelines(self, chunks: Any) -> None:
        self.chunks.extend(chunks)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, *a: Any, **k: Any) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False


class Conn:
    """One kept-alive connection to a protocol factory."""

    def __init__(self, factory: Any) -> None:
        self.sink = Sink()
        self.proto = factory()
        self.proto.connection_made(self.sink)

    async def request(self, raw: bytes) -> bytes:
        await self.send(raw)
        return b"".join(self.sink.chunks)

    async def send(self, raw: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.sink.chunks.clear()
        self.sink.waiter = loop.create_future()
        self.proto.data_received(raw)
        await self.sink.waiter
        for _ in range(3):  # let the handler task finish its bookkeeping after the write
            await asyncio.sleep(0)


def raw_get(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1:8080", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse(resp: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [(k, v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
    return status, headers, body


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name.lower()), None)


async def ldf_factory() -> tuple[Any, Any]:
    from ldf_server.app import build_state, create_app
    from ldf_server.config import load_config
    from ldf_server.http import limits

    cfg = load_config(str(ROOT / "config" / "default.toml"))
    server = cfg.server.model_copy(update={"data_dir": None, "port": 0, "host": "127.0.0.1"})
    cfg = cfg.model_copy(update={"server": server})
    state = build_state(cfg)
    for poller in state.pollers:
        poller.backfill()
    app = create_app(cfg, state=state, run_feeds=False)
    runner = limits.GuardedAppRunner(app, server, access_log=None)
    await runner.setup()
    return runner, runner.server


async def bare_factory(resources: dict[str, dict]) -> tuple[Any, Any]:
    import bare_server
    from aiohttp import web

    app = web.Application()
    for res in resources.values():
        handler = bare_server.make_handler(res["body"], dict(res["headers"]), res["etag"], dict(res["headers_304"]))
        app.router.add_get(res["path"], handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner, runner.server


async def capture(conn: Conn) -> dict[str, dict]:
    when = (datetime.now(timezone.utc) - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, headers, _ = parse(await conn.request(raw_get(f"/parking/view?time={when}", {"Accept": ACCEPT})))
    location = header(headers, "Location")
    assert status == 302 and location, (status, headers)
    window = "/" + location.split("/", 3)[3]
    out = {}
    for key, path in (("latest", "/parking/latest"), ("window", window)):
        status, headers, body = parse(await conn.request(raw_get(path, {"Accept": ACCEPT})))
        assert status == 200, (path, status)
        etag = header(headers, "ETag")
        s304, h304, _ = parse(await conn.request(raw_get(path, {"Accept": ACCEPT, "If-None-Match": etag or ""})))
        assert s304 == 304, (path, s304)
        mirror = lambda hs: [(k, v) for k, v in hs if k.lower() not in OWN_HEADERS]  # noqa: E731
        out[key] = {"path": path, "body": body, "etag": etag, "headers": mirror(headers), "headers_304": mirror(h304)}
    return out


async def check(conn: Conn, raw: bytes, expect: int, warm: int = 200) -> None:
    status = parse(await conn.request(raw))[0]
    assert status == expect, (status, expect, raw)
    for _ in range(warm):
        await conn.send(raw)


async def repeat(conn: Conn, raw: bytes, n: int) -> float:
    """CPU microseconds per request over ``n`` requests on one connection."""
    send = conn.send
    t0 = time.process_time()
    for _ in range(n):
        await send(raw)
    return (time.process_time() - t0) * 1e6 / n


CALLGRIND_C = r"""
#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; CALLGRIND_TOGGLE_COLLECT; }
void cg_stop(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS_AT("measured"); CALLGRIND_STOP_INSTRUMENTATION; }
"""


def callgrind_markers() -> tuple[Callable[[], None], Callable[[], None]]:
    """Start and stop callgrind's counting around a measured loop (a tiny C library built with
    gcc from valgrind's header: Python cannot issue valgrind's client requests itself)."""
    import ctypes
    import shutil
    import subprocess
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="ldf-hotpath-"))
    (tmp / "cg.c").write_text(CALLGRIND_C)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(tmp / "libcg.so"), str(tmp / "cg.c")], check=True)
    lib = ctypes.CDLL(str(tmp / "libcg.so"))
    shutil.rmtree(tmp, ignore_errors=True)  # loaded: the file is no longer needed
    return lib.cg_start, lib.cg_stop


def run(args: argparse.Namespace) -> dict:
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ldf_runner, ldf_server = loop.run_until_complete(ldf_factory())
    ldf = Conn(ldf_server)
    resources = loop.run_until_complete(capture(ldf))
    bare_runner, bare_server = loop.run_until_complete(bare_factory(resources))
    bare = Conn(bare_server)
    start, stop = callgrind_markers() if args.callgrind else (lambda: None, lambda: None)
    cases = {f"{k}_{c}": (r["path"], c) for k, r in resources.items() for c in ("200", "304")}
    if args.only:
        cases = {k: v for k, v in cases.items() if k in args.only.split(",")}
    runs: dict[str, dict[str, list[float]]] = {k: {"ldf": [], "bare": []} for k in cases}
    try:
        for rnd in range(args.rounds):
            for key, (path, code) in cases.items():
                res = resources[key.split("_")[0]]
                headers = {"Accept": ACCEPT}
                if code == "304":
                    headers["If-None-Match"] = res["etag"]
                raw = raw_get(path, headers)
                order = ("ldf", "bare") if rnd % 2 == 0 else ("bare", "ldf")
                for name in order:
                    conn = ldf if name == "ldf" else bare
                    if name not in args.servers:
                        continue
                    loop.run_until_complete(check(conn, raw, int(code)))
                    start()
                    runs[key][name].append(loop.run_until_complete(repeat(conn, raw, args.requests)))
                    stop()
    finally:
        loop.run_until_complete(ldf_runner.cleanup())
        loop.run_until_complete(bare_runner.cleanup())
        loop.close()
    summary = {}
    for key, by in runs.items():
        row = {name: round(min(v) if args.min else statistics.median(v), 2) for name, v in by.items() if v}
        if "ldf" in row and "bare" in row:
            row["ratio_bare_over_ldf"] = round(row["bare"] / row["ldf"], 3)
        summary[key] = row
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=20000, help="requests per measurement (default 20000)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported (default 5)")
    p.add_argument("--only", default="", help="comma-separated cases: latest_200, latest_304, window_200, window_304")
    p.add_argument("--min", action="store_true",
                   help="report the lowest round instead of the median (steadier when other processes share the CPU)")
    p.add_argument("--callgrind", action="store_true",
                   help="under valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no: count only the measured loops "
                        "(one dump each; needs gcc and valgrind's headers)")
    p.add_argument("--servers", default="ldf,bare", help="which servers to measure (default ldf,bare)")
    args = p.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    summary = run(args)
    print(f"{'case':<12} {'ldf us':>8} {'bare us':>8} {'bare/ldf':>8}")
    for key, row in summary.items():
        print(f"{key:<12} {row.get('ldf', float('nan')):8.2f} {row.get('bare', float('nan')):8.2f} "
              f"{row.get('ratio_bare_over_ldf', float('nan')):8.3f}")
    print("BENCH_JSON " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
