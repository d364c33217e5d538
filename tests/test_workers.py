"""``workers = 2`` as real processes on 127.0.0.1: both serve, pushes reach the leader's log from
either, immutable pages are the same bytes everywhere, and no process outlives the leader.

Which process answers is read from ``/health/ready`` (its ``worker`` object) on the same
keep-alive connection as the request under test: the kernel gives each new connection to one
of the processes listening with ``SO_REUSEPORT``, and keeps it there.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from ldf_server.store.log import read_dataset
from ldf_server.timeutil import format_instant

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
base_url = "http://127.0.0.1:{port}"
data_dir = "{data_dir}"
workers = 2
shutdown_timeout = "2s"
fsync = "never"

[[datasets]]
id = "parking"
pilot = "parking"
title = {{ en = "Vacant spaces", nl = "Vrije plaatsen" }}
description = {{ en = "Simulated garages", nl = "Gesimuleerde garages" }}
window = "15m"

[[feeds]]
id = "sim"
adapter = "parking-simulator"
dataset = "parking"
interval = "30s"
[feeds.options]
cities = ["leuven", "kortrijk"]
seed = 7
backfill = "3h"

[[push]]
id = "counter"
dataset = "parking"
key_sha256 = "{digest}"
sites = [ {{ key = "leuven/test-garage", label = "Test garage", capacity = 100 }} ]
"""
KEY = "workers-test-key"
SITE = "leuven/test-garage"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(condition, timeout: float, what: str, step: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(step)
    raise AssertionError(f"not within {timeout:g} s: {what}")


class Conn:
    """One keep-alive connection, and the process at its other end."""

    def __init__(self, port: int) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        status, _, body = self.request("GET", "/health/ready")
        self.worker: dict[str, Any] = json.loads(body)["worker"]
        self.role: str = self.worker["role"]

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        self.http.request(method, path, body=body, headers=headers or {})
        resp = self.http.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()

    def close(self) -> None:
        self.http.close()


def conns_of_both(port: int, tries: int = 200) -> dict[str, Conn]:
    """A connection to the leader and one to a follower (new connections until both were seen)."""
    found: dict[str, Conn] = {}
    for _ in range(tries):
        conn = Conn(port)
        if conn.role in found:
            conn.close()
        else:
            found[conn.role] = conn
        if len(found) == 2:
            return found
    raise AssertionError(f"only {sorted(found)} answered {tries} new connections")


def start(tmp_path: Path) -> tuple[int, subprocess.Popen[bytes], Path]:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(port=port, data_dir=tmp_path / "data", digest=hashlib.sha256(KEY.encode()).hexdigest()))
    log_path = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDF_")}
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ldf_server", "--config", str(config)],
                                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)

    def both_ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(log_path.read_text())
        roles = set()
        for _ in range(20):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as resp:
                    roles.add(json.loads(resp.read())["worker"]["role"])
            except (OSError, KeyError, ValueError):
                return False
        return roles == {"leader", "follower"}

    try:
        wait_until(both_ready, 60, "both processes ready", step=0.2)
    except AssertionError:
        proc.kill()
        proc.wait()
        raise AssertionError(log_path.read_text()) from None
    return port, proc, log_path


def follower_pids(port: int) -> list[int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as resp:
        worker = json.loads(resp.read())["worker"]
    if worker["role"] == "follower":
        return [worker["pid"]]
    return [f["pid"] for f in worker["followers"]]


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    port, proc, log_path = start(tmp_path)
    children = follower_pids(port)
    try:
        yield port, proc, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children:  # never leave a follower behind, whatever the test did
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def push(conn: Conn, records: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    status, _, body = conn.request("POST", "/parking/push/counter", json.dumps(records).encode(),
                                   {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    return status, json.loads(body)


def newest_of(body: bytes, iri_end: str) -> str | None:
    for site in json.loads(body)["sites"]:
        if str(site.get("@id", "")).endswith(iri_end):
            return site.get("latestVersion", {}).get("observedAt")
    return None


def test_two_processes_serve_one_store(server):
    port, proc, tmp_path = server
    conns = conns_of_both(port)
    leader, follower = conns["leader"], conns["follower"]
    assert follower.worker["leader_pid"] == leader.worker["pid"] == proc.pid
    assert [f["pid"] for f in leader.worker["followers"]] == [follower.worker["pid"]]

    # A closed page: the same bytes and ETag from both processes, immutable in both.
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    status, headers, _ = leader.request("GET", f"/parking/view?time={hour_ago}")
    assert status == 302
    page = headers["location"].removeprefix(f"http://127.0.0.1:{port}")
    answers = {}
    for role, conn in conns.items():
        for fmt in ("", "?format=ttl"):
            status, headers, body = wait_until(
                lambda: (a := conn.request("GET", page + fmt))[0] == 200 and "immutable" in a[1]["cache-control"] and a,
                10, f"{page}{fmt} immutable on the {role}")
            answers[role, fmt] = (body, headers["etag"], headers["last-modified"])
    for fmt in ("", "?format=ttl"):
        assert answers["leader", fmt] == answers["follower", fmt], f"{page}{fmt} differs between the processes"
    status, _, _ = follower.request("GET", page, headers={"If-None-Match": answers["leader", ""][1]})
    assert status == 304, "the leader's ETag validates at the follower"

    # Pushes through both processes: each acknowledged one is in the leader's log, then in
    # `latest` and the SSE stream of both.
    events = Conn(port)
    while events.role != "follower":
        events.close()
        events = Conn(port)
    events.http.request("GET", "/parking/events", headers={"Accept": "text/event-stream"})
    stream = events.http.getresponse()
    assert stream.status == 200
    base = int(time.time()) - 40
    acknowledged = []
    via = set()
    for i in range(12):
        conn = Conn(port)
        at = format_instant((base + i) * 1000)
        status, answer = push(conn, [{"site": SITE, "observedAt": at, "vacantSpaces": 50 + i}])
        assert status == 200 and answer["accepted"] == 1, (conn.role, answer)
        acknowledged.append(at)
        via.add(conn.role)
        status, answer = push(conn, [{"site": SITE, "observedAt": at, "vacantSpaces": 50 + i}])
        assert status == 200 and answer == {"accepted": 0, "duplicates": 1, "records": 1}, "a resend is a duplicate"
        conn.close()
    assert via == {"leader", "follower"}, f"every push went to the {via}"
    logged = {format_instant(r["t"]) for r in read_dataset(tmp_path / "data" / "parking") if r.get("s") == SITE}
    assert set(acknowledged) <= logged, "an acknowledged push is in the leader's log"
    for role, conn in conns.items():
        wait_until(lambda: newest_of(conn.request("GET", "/parking/latest")[2], "/sites/leuven/test-garage") == acknowledged[-1],
                   5, f"the newest push ({acknowledged[-1]}) in the {role}'s latest: "
                      f"{newest_of(conn.request('GET', '/parking/latest')[2], '/sites/leuven/test-garage')}")
    seen = b""
    deadline = time.monotonic() + 10
    while acknowledged[-1].encode() not in seen and time.monotonic() < deadline:
        seen += stream.read1(65536)
    assert all(at.encode() in seen for at in acknowledged), "the follower streams every pushed member"
    events.close()

    # A follower refuses what the leader refuses, with the same answer, before reading a body.
    big = b"[" + b" " * (10 * 1024 * 1024) + b"]"
    cases = [
        ({"Authorization": "Bearer wrong", "Content-Type": "application/json"}, b"[]"),
        ({"Content-Type": "application/json"}, big),  # no key, oversize: 401, not 413
        ({"Authorization": "Bearer wrong", "Content-Type": "text/plain"}, big),
    ]
    for headers, body in cases:
        answers = []
        for conn in (leader, follower):
            status, got, text = conn.request("POST", "/parking/push/counter", body, headers)
            answers.append((status, got.get("content-type"), got.get("www-authenticate"), json.loads(text)["title"]))
        assert answers[0] == answers[1] and answers[0][0] == 401, (headers, answers)
        assert answers[0][1] == "application/problem+json"
    for path in ("/parking/push/nope", "/nope/push/counter"):
        assert leader.request("POST", path, b"[]", {"Content-Type": "application/json"})[0] == \
            follower.request("POST", path, b"[]", {"Content-Type": "application/json"})[0] == 404
    status, _, body = follower.request("GET", "/metrics")
    assert status == 200 and b'ldf_worker_info{index="1",pid="%d",role="follower"} 1.0' % follower.worker["pid"] in body
    for conn in conns.values():
        conn.close()


def test_sigterm_stops_every_process(server):
    port, proc, _ = server
    children = follower_pids(port)
    assert children and all(alive(pid) for pid in children)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not [pid for pid in children if alive(pid)], "a follower outlived the leader"


def test_followers_stop_when_the_leader_dies(server):
    port, proc, _ = server
    children = follower_pids(port)
    proc.kill()  # no chance to stop them: they notice the closed pipe
    proc.wait()
    wait_until(lambda: not any(alive(pid) for pid in children), 20, "followers gone after the leader was killed")
