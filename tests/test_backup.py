"""deploy/backup.sh copies the durable log of a running server into a directory the server
restarts from: with every member acknowledged before the backup, and, when the server was
idle during it, with exactly the members the original serves."""

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

ROOT = Path(__file__).resolve().parents[1]
BACKUP = ROOT / "deploy" / "backup.sh"
KEY = "backup-test-key"
CONFIG = """
[server]
host = "127.0.0.1"

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
sites = [ {{ key = "gent/a", label = "A" }}, {{ key = "gent/b", label = "B" }} ]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m ldf_server`` on a free port of 127.0.0.1 with its data directory."""

    def __init__(self, config: Path, data: Path, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LDF_")}
        env.update({"LDF_SERVER__PORT": str(self.port), "LDF_SERVER__DATA_DIR": str(data), "LDF_SERVER__BASE_URL": self.base})
        self.proc = subprocess.Popen([sys.executable, "-m", "ldf_server", "--config", str(config)], env=env,
                                     stdout=log.open("a"), stderr=subprocess.STDOUT)

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                assert self.proc.poll() is None, f"server exited with {self.proc.returncode}"
                try:
                    async with session.get(self.base + "/health/ready") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("server not ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def members(self, hours: set[str]) -> set[tuple[str, str, int]]:
        """(site, resultTime, count) of every member on the pages of ``hours``."""
        out = set()
        async with aiohttp.ClientSession() as session:
            for hour in sorted(hours):
                async with session.get(f"{self.base}/crowds/windows/{hour}:00:00Z") as resp:
                    assert resp.status == 200, await resp.text()
                    page = await resp.json(content_type=None)
                stream = next(n for n in page["@graph"] if n["@type"] == "EventStream")
                prefix = f"{self.base}/crowds/sites/"
                out.update((m["hasFeatureOfInterest"].removeprefix(prefix), m["resultTime"], m["hasSimpleResult"])
                           for m in stream.get("member", []))
        return out


def stamp(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


async def backup(data: Path, dest: Path, keep: str = "5") -> Path:
    proc = await asyncio.create_subprocess_exec("sh", str(BACKUP), str(data), str(dest), keep,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return Path(out.decode().strip())


async def test_a_backup_of_a_running_server_restarts_with_its_members(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(digest=hashlib.sha256(KEY.encode()).hexdigest()))
    data, backups, log = tmp_path / "data", tmp_path / "backups", tmp_path / "server.log"
    start = int(time.time()) - 1800  # inside the open hour or the one before: both pages are mutable
    acked: set[tuple[str, str, int]] = set()
    counter = iter(range(10**9))

    async def push(session: aiohttp.ClientSession, base: str) -> None:
        batch = []
        for _ in range(25):
            n = next(counter)
            batch.append({"site": "gent/a" if n % 2 else "gent/b", "resultTime": stamp(start + n // 2),
                          "observedProperty": "people", "hasSimpleResult": n})
        async with session.post(f"{base}/crowds/push/counters", json=batch, headers={"Authorization": f"Bearer {KEY}"}) as resp:
            assert resp.status == 200, await resp.text()
        acked.update((r["site"], r["resultTime"], r["hasSimpleResult"]) for r in batch)

    original = Server(config, data, log)
    try:
        await original.ready()
        async with aiohttp.ClientSession() as session:
            for _ in range(20):
                await push(session, original.base)
            before = set(acked)

            # A backup while pushes keep coming: a copy of files being appended to.
            stop = asyncio.Event()

            async def keep_pushing() -> None:
                while not stop.is_set():
                    if start + (len(acked) + 25) // 2 > time.time():
                        # The next batch would be stamped in the future (and refused): a fast
                        # server outruns the clock while a slow machine runs the backup. Wait.
                        await asyncio.sleep(0.05)
                        continue
                    await push(session, original.base)

            pusher = asyncio.create_task(keep_pushing())
            busy = await backup(data, backups)
            stop.set()
            await pusher
            # Then one while the server is idle (still running).
            idle = await backup(data, backups)
        hours = {t[:13] for _, t, _ in acked}
        served = await original.members(hours)
        assert served == acked
    finally:
        original.stop()

    assert sorted(p.name for p in backups.iterdir()) == sorted([busy.name, idle.name]), "no .partial left behind"
    assert (busy / "crowds" / "meta.log").is_file() and any((busy / "crowds" / "days").glob("*.log"))

    for copy, expected in ((busy, None), (idle, served)):
        restored = Server(config, copy, log)
        try:
            await restored.ready()
            members = await restored.members(hours)
        finally:
            restored.stop()
        assert before <= members, f"{len(before - members)} members acknowledged before the backup are missing"
        assert members <= acked, "nothing that was never acknowledged"
        if expected is not None:
            assert members == expected, "an idle server's backup holds exactly what it served"


async def test_keeps_the_newest_and_refuses_a_missing_directory(tmp_path):
    data = tmp_path / "data" / "parking" / "days"
    data.mkdir(parents=True)
    (data / "2026-03-31.log").write_bytes(b"x")
    made = [await backup(tmp_path / "data", tmp_path / "b", keep="2") for _ in range(3)]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(p.name for p in made[1:])
    assert (made[2] / "parking" / "days" / "2026-03-31.log").read_bytes() == b"x"

    proc = subprocess.run(["sh", str(BACKUP), str(tmp_path / "nope"), str(tmp_path / "b")], capture_output=True, text=True)
    assert proc.returncode == 1 and "no data directory" in proc.stderr
    proc = subprocess.run(["sh", str(BACKUP), str(tmp_path / "data"), str(tmp_path / "b"), "many"], capture_output=True, text=True)
    assert proc.returncode == 2 and "KEEP must be a number" in proc.stderr
