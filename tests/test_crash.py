"""kill -9 during heavy ingestion loses no acknowledged record."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

KEY = "crash-test-key"
CONFIG = """
[server]
host = "127.0.0.1"
fsync = "always"

[[datasets]]
id = "crowds"
pilot = "crowdedness"
title = {{ en = "Counts" }}
description = {{ en = "Pushed people counts" }}
window = "1h"

[[push]]
id = "counters"
dataset = "crowds"
key_sha256 = "{digest}"
max_records = 1000
sites = [ {{ key = "gent/a", label = "A" }}, {{ key = "gent/b", label = "B" }} ]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(config: Path, port: int, data: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "LDF_PORT": str(port), "LDF_DATA_DIR": str(data), "LDF_BASE_URL": f"http://127.0.0.1:{port}"}
    return subprocess.Popen([sys.executable, "-m", "ldf_server", "--config", str(config)], env=env,
                            stdout=log.open("a"), stderr=subprocess.STDOUT)


async def wait_ready(base: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}")
            try:
                async with session.get(base + "/health/ready") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("server not ready")


async def test_kill_9_mid_ingestion_loses_no_acknowledged_record(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(digest=hashlib.sha256(KEY.encode()).hexdigest()))
    port, data, log = free_port(), tmp_path / "data", tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    proc = start(config, port, data, log)
    acked: set[tuple[str, str]] = set()
    now = int(time.time()) - 1800  # half an hour ago: inside the open hour or the one before
    counter = iter(range(10**9))

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            batch = []
            for _ in range(20):
                n = next(counter)
                t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + n // 2))
                site = "gent/a" if n % 2 else "gent/b"
                batch.append({"site": site, "resultTime": t, "observedProperty": "people", "hasSimpleResult": n})
            try:
                async with session.post(f"{base}/crowds/push/counters", json=batch,
                                        headers={"Authorization": f"Bearer {KEY}"}) as resp:
                    if resp.status == 200:
                        acked.update((r["site"], r["resultTime"]) for r in batch)
                    else:
                        raise AssertionError(await resp.text())
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return  # the server died under us: this batch was never acknowledged

    try:
        await wait_ready(base, proc)
        async with aiohttp.ClientSession() as session:
            workers = [asyncio.create_task(worker(session)) for _ in range(8)]
            while len(acked) < 2000:
                await asyncio.sleep(0.02)
                assert all(not w.done() or w.exception() is None for w in workers)
            proc.send_signal(signal.SIGKILL)  # mid-stream: workers are still sending
            proc.wait(timeout=10)
            await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), 30)
        assert proc.returncode == -signal.SIGKILL

        proc = start(config, port, data, log)
        await wait_ready(base, proc)
        served: set[tuple[str, str]] = set()
        async with aiohttp.ClientSession() as session:
            hours = sorted({t[:13] for _, t in acked})
            for hour in hours:
                async with session.get(f"{base}/crowds/windows/{hour}:00:00Z") as resp:
                    assert resp.status == 200, await resp.text()
                    page = await resp.json(content_type=None)
                members = next(n for n in page["@graph"] if n["@type"] == "EventStream")["member"]
                prefix = f"{base}/crowds/sites/"
                served.update((m["hasFeatureOfInterest"].removeprefix(prefix), m["resultTime"]) for m in members)
        missing = acked - served
        assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:3]}"
        assert "recovered" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)
