"""Fallback load generator for bench/http_bench.py, used only when wrk is not available.

One process: ``--connections`` keep-alive connections, each a coroutine sending GETs back
to back for ``--warmup`` seconds (not counted) and then ``--duration`` seconds. Prints one
line "BENCH_JSON {...}" with the same fields as bench/wrk_report.lua, plus the raw
latencies (µs) so that several processes can be merged.

An aiohttp client costs about as much CPU per request as an aiohttp server, so figures
measured with it are bounded by the client: they understate the servers' throughput and
pull the ldf/bare ratio towards 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter

import aiohttp

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


async def run(url: str, headers: dict[str, str], connections: int, warmup: float, duration: float) -> dict:
    status: Counter[int] = Counter()
    latencies: list[int] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    nbytes = 0
    measuring = False
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:

        async def worker(deadline: float) -> None:
            nonlocal nbytes
            while True:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    return
                try:
                    async with session.get(url, headers=headers, allow_redirects=False) as resp:
                        body = await resp.read()
                except asyncio.TimeoutError:
                    if measuring:
                        errors["timeout"] += 1
                    continue
                except aiohttp.ClientConnectionError:
                    if measuring:
                        errors["read"] += 1
                    continue
                if measuring:
                    latencies.append(int((time.perf_counter() - t0) * 1e6))
                    status[resp.status] += 1
                    nbytes += len(body)
                    if resp.status >= 400:
                        errors["status"] += 1

        if warmup > 0:
            end = time.perf_counter() + warmup
            await asyncio.gather(*(worker(end) for _ in range(connections)))
        measuring = True
        start = time.perf_counter()
        await asyncio.gather(*(worker(start + duration) for _ in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> int:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] if latencies else 0

    return {
        "requests": len(latencies),
        "duration_us": elapsed * 1e6,
        "bytes": nbytes,
        "errors": errors,
        "latency_us": {
            "mean": sum(latencies) / len(latencies) if latencies else 0.0,
            "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": latencies[-1] if latencies else 0,
        },
        "status": {"200": status[200], "304": status[304], "other": sum(status.values()) - status[200] - status[304]},
        "raw_latencies_us": latencies,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    args = p.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    coro = run(args.url, headers, args.connections, args.warmup, args.duration)
    result = uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
