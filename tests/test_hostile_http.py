"""Hostile clients against a real server on 127.0.0.1, over raw sockets.

The server is started by :func:`ldf_server.http.limits.start_server`, the same code and
limits ``ldf-server`` runs with. Every answer that is an error must be a problem document;
slow clients and connection floods must not stop others from being served.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import orjson
import pytest

from ldf_server.app import create_app
from ldf_server.http.limits import start_server
from tests.support.clock import FakeClock
from tests.support.seeding import crowd_dataset, crowd_feed, make_config, parking_dataset, seeded_state, simulator_feed

NOW = "2026-03-31T12:07:30Z"
KEY = "key-of-the-counters"
PUSH = "/crowds/push/counters"
SAFETY_S = 20  # no exchange may hang a test: a bound on waiting, never an assertion on time


def hostile_config(**server):
    return make_config(
        datasets=[parking_dataset(), crowd_dataset()],
        feeds=[simulator_feed(), crowd_feed()],
        push=[{"id": "counters", "dataset": "crowds", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
               "sites": [{"key": "gent/korenmarkt", "label": "Korenmarkt"}]}],
        **server,
    )


@asynccontextmanager
async def real_server(**server) -> AsyncIterator[int]:
    """A seeded server with the production limits (overridden by ``server``); yields its port."""
    config = hostile_config(**server)
    app = create_app(config, state=seeded_state(config, FakeClock(NOW)), run_feeds=False)
    runner, site = await start_server(app, config.server, host="127.0.0.1", port=0)
    try:
        yield site.port
    finally:
        await runner.cleanup()


@pytest.fixture
async def port():
    async with real_server() as p:
        yield p


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def parse(raw: bytes) -> Answer | None:
    """The first response in ``raw``; None when the server closed without answering."""
    if not raw:
        return None
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, f"incomplete response: {raw[:300]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(rest)))
    return Answer(int(status_line.split()[1]), headers, rest[:length])


async def exchange(port: int, data: bytes, *, chunks: list[bytes] | None = None, pause: float = 0) -> Answer | None:
    """Send raw bytes (then optional further chunks, ``pause`` seconds apart) and read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        with suppress(ConnectionError):  # the server may answer and close before reading everything
            writer.write(data)
            await writer.drain()
            for chunk in chunks or []:
                await asyncio.sleep(pause)
                writer.write(chunk)
                await writer.drain()

    async def receive() -> bytes:
        out = b""
        with suppress(ConnectionError):
            while chunk := await reader.read(65536):
                out += chunk
        return out

    try:
        _, raw = await asyncio.wait_for(asyncio.gather(send(), receive()), SAFETY_S)
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()
    return parse(raw)


def request(method: str, target: str, *, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_problem(answer: Answer | None, *statuses: int) -> dict:
    assert answer is not None, "the server closed the connection without an answer"
    if statuses:
        assert answer.status in statuses, (answer.status, answer.body[:300])
    assert 400 <= answer.status < 500, (answer.status, answer.body[:300])
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    doc = orjson.loads(answer.body)
    assert doc["status"] == answer.status and doc["title"] and doc["detail"], doc
    return doc


# -- request line and headers -----------------------------------------------------------


async def test_a_normal_request_is_served(port):
    answer = await exchange(port, request("GET", "/parking/latest"))
    assert answer is not None and answer.status == 200
    assert orjson.loads(answer.body)["sites"]


async def test_an_oversized_request_line_is_a_414_problem(port):
    assert_problem(await exchange(port, request("GET", "/parking/sites/" + "a" * 20_000)), 414)


async def test_an_oversized_header_is_a_431_problem(port):
    assert_problem(await exchange(port, request("GET", "/", headers={"X-Padding": "b" * 20_000})), 431)


async def test_too_many_headers_is_a_431_problem(port):
    many = {f"X-H{i}": "v" for i in range(400)}
    assert_problem(await exchange(port, request("GET", "/", headers=many)), 431)


async def test_a_huge_header_section_in_many_lines_is_refused(port):
    many = {f"X-H{i}": "c" * 8000 for i in range(200)}  # each line within the limit, far too many of them
    assert_problem(await exchange(port, request("GET", "/", headers=many)), 431)


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX\x00Y: z\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS client hello
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
], ids=["garbage", "no-target", "bad-version", "header-without-colon", "nul-in-header", "two-lengths",
        "negative-length", "chunked-and-length", "tls", "http2-preface"])
async def test_requests_the_parser_refuses_are_400_problems(port, raw):
    assert_problem(await exchange(port, raw))


async def test_an_unknown_expectation_is_a_417_problem(port):
    assert_problem(await exchange(port, request("GET", "/", headers={"Expect": "telepathy"})), 417)


async def test_header_values_that_are_not_utf8_get_no_5xx(port):
    for name in ("Authorization", "X-API-Key", "Content-Type", "Accept", "If-None-Match", "If-Modified-Since"):
        raw = request("POST", PUSH, headers={"Content-Type": "application/json"}, body=b"[]")
        raw = raw.replace(b"Connection: close", b"Connection: close\r\n" + name.encode() + b": \xff\xfe\xc0\xaf")
        answer = await exchange(port, raw)
        assert_problem(answer)


# -- path traversal -------------------------------------------------------------------------

TRAVERSALS = [
    "/../../etc/passwd",
    "/..%2f..%2fetc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/context.jsonld/../../../etc/passwd",
    "/context.jsonld%00.txt",
    "/context.jsonld%2f..%2f..%2fpyproject.toml",
    "/parking/shape/..%2f..%2f..%2fpyproject.toml",
    "/parking/shape%00/../../etc/passwd",
    "/parking/sites/../../etc/passwd",
    "/parking/sites/..%2f..%2f..%2fetc%2fpasswd",
    "/parking/sites/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/parking/sites/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "/parking/sites/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "/parking/sites/gent%00/../../../etc/passwd",
    "/parking/sites/..\\..\\..\\windows\\win.ini",
    "/parking/sites//etc/passwd",
    "/parking/windows/..%2f..%2f..%2fetc%2fpasswd",
    "/parking/windows/2026-03-31T12:00:00Z/../../../../etc/passwd",
    "/parking/days/..%2f..%2fetc%2fpasswd",
    "/crowds/sites/%2e%2e%2f%2e%2e%2f%2e%2e%2fldf_server%2fconfig.py",
    "//etc/passwd",
    "/.%2e/.%2e/etc/passwd",
]


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_path_traversal_is_a_4xx_problem(port, target):
    for method in ("GET", "HEAD"):
        answer = await exchange(port, request(method, target))
        assert answer is not None and 400 <= answer.status < 500, (target, answer)
        if method == "GET":
            assert_problem(answer)
            assert b"root:" not in answer.body and b"[project]" not in answer.body


@pytest.mark.parametrize("target", ["../../etc/passwd", "http://127.0.0.1/../../etc/passwd", "*"])
async def test_odd_request_targets_are_4xx_problems(port, target):
    assert_problem(await exchange(port, request("GET", target)))


# -- push bodies ------------------------------------------------------------------------------

RECORD = {"site": "gent/korenmarkt", "resultTime": "2026-03-31T12:06:00Z", "observedProperty": "people",
          "hasSimpleResult": 3}
PUSH_HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
BAD_BODIES = {
    "nested-10000": b"[" * 10_000 + b"]" * 10_000,
    "nested-objects-10000": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "nested-just-under-orjson": b"[" * 1020 + b"]" * 1020,
    "invalid-utf8": b'[{"site": "gent/korenmarkt\xff\xfe"}]',
    "lone-surrogate": b'[{"site": "\\ud800"}]',
    "digits-10000": b'[{"site": "gent/korenmarkt", "hasSimpleResult": ' + b"9" * 10_000 + b"}]",
    "fraction-10000": b'[{"hasSimpleResult": 0.' + b"1" * 10_000 + b"}]",
    "exponent-huge": b'[{"hasSimpleResult": 1e999999999}]',
    "duplicate-keys": orjson.dumps(RECORD)[:-1] + b', "hasSimpleResult": 4}',
    "bom": b"\xef\xbb\xbf" + orjson.dumps([RECORD]),
    "nan": b'[{"hasSimpleResult": NaN}]',
    "truncated": orjson.dumps([RECORD])[:-5],
    "empty": b"",
    "trailing-garbage": orjson.dumps([RECORD]) + b"}",
    "scalar": b"42",
    "null": b"null",
    "array-of-scalars": b"[" + b"0," * 100_000 + b"0]",
    "utf16": "[]".encode("utf-16"),
}


@pytest.mark.parametrize("name", BAD_BODIES)
async def test_malformed_push_bodies_are_4xx_problems(port, name):
    doc = assert_problem(await exchange(port, request("POST", PUSH, headers=PUSH_HEADERS, body=BAD_BODIES[name])))
    assert doc["status"] in (400, 413, 422)


async def test_a_5_mb_push_is_a_413_problem(port):
    body = orjson.dumps([RECORD] * 50_000)
    assert len(body) > 5_000_000
    assert_problem(await exchange(port, request("POST", PUSH, headers=PUSH_HEADERS, body=body)), 413)


async def test_a_5_mb_chunked_push_without_length_is_a_413_problem(port):
    body = orjson.dumps([RECORD] * 50_000)
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    head = request("POST", PUSH, headers={**PUSH_HEADERS, "Transfer-Encoding": "chunked"})
    encoded = [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks] + [b"0\r\n\r\n"]
    assert_problem(await exchange(port, head, chunks=encoded), 413)


async def test_a_broken_chunked_body_is_a_400_problem(port):
    head = request("POST", PUSH, headers={**PUSH_HEADERS, "Transfer-Encoding": "chunked"})
    assert_problem(await exchange(port, head + b"5\r\n[1,2]\r\nzz\r\n"), 400)


async def test_a_valid_push_over_raw_sockets_is_accepted_and_its_duplicate_keys_twin_is_not(port):
    answer = await exchange(port, request("POST", PUSH, headers=PUSH_HEADERS, body=orjson.dumps([RECORD])))
    assert answer is not None and answer.status == 200, answer
    assert orjson.loads(answer.body)["accepted"] == 1
    twin = orjson.dumps([RECORD])[:-2] + b', "site": "gent/korenmarkt"}]'
    doc = assert_problem(await exchange(port, request("POST", PUSH, headers=PUSH_HEADERS, body=twin)), 400)
    assert "'site'" in doc["detail"]


async def test_a_push_body_sent_in_pieces_is_read_whole():
    async with real_server() as p:
        body = orjson.dumps([RECORD])
        head = request("POST", PUSH, headers={**PUSH_HEADERS, "Content-Length": str(len(body))})
        answer = await exchange(p, head, chunks=[body[:10], b"", body[10:30], body[30:]], pause=0.2)
        assert answer is not None and answer.status == 200, answer


async def test_a_push_body_that_stops_arriving_is_a_408_problem():
    async with real_server(body_timeout="1s") as p:
        reader, writer = await asyncio.open_connection("127.0.0.1", p)
        writer.write(request("POST", PUSH, headers={**PUSH_HEADERS, "Content-Length": "1000"}) + b'[{"site": ')
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(65536), SAFETY_S)  # the answer comes while the body is still "on its way"
        writer.close()
        assert_problem(parse(raw), 408)


# -- connections ------------------------------------------------------------------------------


async def get_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str) -> int:
    """A keep-alive GET on an open connection; its status."""
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SAFETY_S)
    answer = parse(head)
    assert answer is not None
    await asyncio.wait_for(reader.readexactly(int(answer.headers["content-length"])), SAFETY_S)
    return answer.status


async def test_connections_over_the_limit_are_refused_with_503_while_the_others_are_served():
    limit = 4
    async with real_server(max_connections=limit) as p:
        held = [await asyncio.open_connection("127.0.0.1", p) for _ in range(limit)]
        try:
            for reader, writer in held:  # every held connection is accepted and served (and stays open)
                assert await get_on(reader, writer, "/health/live") == 200
            extra = await exchange(p, request("GET", "/health/live"))
            if extra is not None:  # refused: either a 503 problem, or (if the client raced the close) nothing
                assert extra.status == 503 and extra.headers["retry-after"].isdigit()
                assert extra.headers["content-type"].startswith("application/problem+json")
                assert orjson.loads(extra.body)["status"] == 503
            for reader, writer in held:  # the held connections are still served
                assert await get_on(reader, writer, "/parking/latest") == 200
        finally:
            for _, writer in held:
                writer.close()
        for _ in range(100):  # once they are closed, new connections are served again
            answer = await exchange(p, request("GET", "/health/live"))
            if answer is not None and answer.status == 200:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"no connection was served after the held ones closed: {answer}")


async def trickle(port: int, data: bytes) -> tuple[int, bytes]:
    """Send one byte per second until the server closes; (bytes sent, what the server answered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent, answer = 0, b""
    try:
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            await writer.drain()
            sent += 1
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 1.0)  # the pause between bytes
            except asyncio.TimeoutError:
                continue
            answer += chunk
            while chunk:
                chunk = await reader.read(65536)
                answer += chunk
            break
    except ConnectionError:
        pass
    finally:
        writer.close()
    return sent, answer


async def test_clients_trickling_their_headers_are_cut_off_while_others_are_served():
    async with real_server(header_timeout="2s") as p:
        slow = request("GET", "/parking/latest", headers={"Accept": "application/json", "X-Slow": "x" * 40})
        tricklers = [asyncio.create_task(trickle(p, slow)) for _ in range(3)]
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", p)  # connects, never sends a byte
        statuses = []
        while not all(t.done() for t in tricklers):
            answer = await exchange(p, request("GET", "/parking/latest"))
            statuses.append(answer.status if answer else None)
            await asyncio.sleep(0.2)
        idle = await asyncio.wait_for(idle_reader.read(), SAFETY_S)
        idle_writer.close()
        assert statuses and all(s == 200 for s in statuses), statuses
        for task in tricklers:
            sent, answer = task.result()
            assert sent < len(slow), "the server waited for the whole trickled head"
            if answer:  # the server says why, before it closes
                assert_problem(parse(answer), 408)
        assert idle == b"", "a connection that sent nothing is closed without an answer"


# -- the real command line ------------------------------------------------------------------

CLI_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
max_header_size = 1024
max_request_line = 1024

[[datasets]]
id = "parking"
pilot = "parking"
title = {{ en = "Parking" }}
description = {{ en = "Parking" }}
"""


async def test_ldf_server_runs_with_the_limits(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        cli_port = s.getsockname()[1]
    config = tmp_path / "config.toml"
    config.write_text(CLI_CONFIG.format(port=cli_port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDF_")}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "ldf_server", "--config", str(config)], env=env,
                            cwd=Path(__file__).resolve().parents[1], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            with suppress(OSError):
                answer = await exchange(cli_port, request("GET", "/health/live"))
                if answer is not None and answer.status == 200:
                    break
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("ldf-server did not start")
        assert_problem(await exchange(cli_port, request("GET", "/", headers={"X-Big": "y" * 2000})), 431)
        assert_problem(await exchange(cli_port, request("GET", "/" + "z" * 2000)), 414)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=SAFETY_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == 0, (tmp_path / "server.log").read_text()


# -- raw characters in TPF query strings ------------------------------------------------------

RAW_TPF_TARGETS = [
    '/tpf?subject=?"x',
    "/tpf?subject=<http://a b>",
    "/tpf?object=%22x%22&v={}|^`",
    "/parking/tpf?predicate=%zz",
    "/parking/tpf?object=\"caf\xc3\xa9\"",
    "/crowds/tpf?page=%C2%B2",
    "/tpf?page=\xc2\xb2",
]
RDF_SYNTAXES = {"application/ld+json": "json-ld", "application/n-quads": "nquads", "application/trig": "trig",
                "text/turtle": "turtle", "application/n-triples": "nt"}


@pytest.mark.parametrize("target", RAW_TPF_TARGETS)
async def test_raw_characters_in_a_tpf_query_give_valid_rdf_or_a_problem(port, target):
    """A hand-typed query string may hold characters an IRI cannot: the fragment's own IRI is
    built from it, so it is percent-encoded rather than breaking Turtle or N-Quads."""
    import rdflib

    for media, syntax in RDF_SYNTAXES.items():
        raw = request("GET", "TARGET", headers={"Accept": media}).replace(b"TARGET", target.encode("latin-1"))
        answer = await exchange(port, raw)
        assert answer is not None
        if answer.status >= 400:
            assert_problem(answer)
            continue
        assert answer.status == 200, (target, media, answer.status)
        graph = rdflib.Dataset()
        graph.parse(data=answer.body, format=syntax)
        subjects = {str(s) for s, *_ in graph.quads((None, None, None, None))}
        assert not any(c in s for s in subjects for c in ' "{}|^`<>'), subjects
