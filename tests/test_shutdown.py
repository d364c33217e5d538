"""SIGTERM as a real process: a request in flight completes, then the server exits 0 without a traceback."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CONFIG = """
[server]
host = "127.0.0.1"
base_url = "http://127.0.0.1:{port}"
shutdown_timeout = "2s"

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
cities = ["leuven", "kortrijk", "mechelen", "sint-niklaas"]
seed = 7
backfill = "3h"

[[push]]
id = "counter"
dataset = "parking"
key_sha256 = "{digest}"
sites = [ {{ key = "leuven/test-garage", label = "Test garage", capacity = 100 }} ]
"""
KEY = "shutdown-test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(port=port, digest=hashlib.sha256(KEY.encode()).hexdigest()))
    log_path = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDF_")}
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ldf_server", "--config", str(config), "--port", str(port)],
                                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(log_path.read_text())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("server not ready:\n" + log_path.read_text())
        yield port, proc, log_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def closed_page(port: int) -> str:
    """The path of a closed 15-minute page about an hour ago (the search form redirects to it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    conn.request("GET", f"/parking/view?time={hour_ago}")
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 302
    return resp.headers["Location"].removeprefix(f"http://127.0.0.1:{port}")


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body."""
    data = read_until(sock, b"\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the whole body was sent"
        body += chunk
    return int(status_line.split()[1]), headers, body


def server_has_read(port: int, client: socket.socket) -> bool:
    """Whether the server side of ``client``'s connection has no unread bytes (Linux /proc/net/tcp)."""
    local, remote = f"0100007F:{port:04X}", f"0100007F:{client.getsockname()[1]:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[4].split(":")[1], 16) == 0
    raise AssertionError("no such connection")


def test_sigterm_finishes_the_request_in_flight_then_exits_0(server):
    port, proc, log_path = server
    path = closed_page(port)

    # A page whose first N-Quads encoding (hundreds of members through pyld and rdflib) keeps
    # its handler busy, asked on a connection the server has already accepted.
    page = socket.create_connection(("127.0.0.1", port), timeout=60)
    page.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(page)[0] == 200
    # A push that announced its body and got "100 Continue", but never sends the body.
    push = socket.create_connection(("127.0.0.1", port), timeout=60)
    push.sendall(
        f"POST /parking/push/counter HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    assert read_until(push, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue")

    page.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: application/n-quads\r\n\r\n".encode())
    for _ in range(1000):  # until the server has read the request: it is in flight
        if server_has_read(port, page):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)

    status, headers, body = read_response(page)
    assert status == 200, body[:500]
    assert headers["content-type"] == "application/n-quads"
    lines = body.decode().splitlines()
    assert len(body) > 100_000 and all(line.endswith(" .") for line in lines), "every statement is complete"
    page_iri = f"<http://127.0.0.1:{port}{path}>"
    assert sum(1 for line in lines if line.startswith(page_iri)) >= 3, "the page describes itself"
    assert sum(1 for line in lines if "/parking/members/" in line.split(" ", 1)[0]) >= 100

    # The stalled upload is given shutdown_timeout (2 s, not aiohttp's 60 s), then cut: never acknowledged.
    assert proc.wait(timeout=30) == 0, log_path.read_text()
    assert push.recv(65536) == b"", "the unfinished push got no answer"
    assert refused(port), "nothing listens any more"
    page.close()
    push.close()
    log = log_path.read_text()
    assert "Traceback" not in log, log
    assert not re.search(r"Task was destroyed|Unclosed|Exception ignored|ERROR", log), log
