"""A real server on 127.0.0.1 for tests that drive external clients (ldes-client).

The listening socket is bound *before* the config is built, so the base URL in every
document is byte-for-byte the address the client fetches (no bind-close-rebind race).
Every request is recorded by a middleware appended before the app starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest
import rdflib
from aiohttp import web

from ldf_server.app import create_app
from ldf_server.config import Config
from ldf_server.http.state import ServerState

CLIENTS_DIR = Path(__file__).resolve().parents[1] / "clients"
LDES_CLIENT_CLI = CLIENTS_DIR / "node_modules" / "ldes-client" / "dist" / "bin" / "cli.js"
PROV_GENERATED = rdflib.URIRef("http://www.w3.org/ns/prov#generatedAtTime")


def require_npm_cli(name: str, script: Path) -> list[str]:
    """The command that runs an npm client's CLI; fails (never skips) when it is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"Node.js ('node') is not on PATH; the {name} tests need it (install Node 20+, then run ./scripts/test)")
    if not script.is_file():
        pytest.fail(
            f"{name} is not installed ({script} is missing): run ./scripts/test, "
            "which installs the npm clients of tests/clients (npm ci --prefix tests/clients)"
        )
    return [node, str(script)]


def require_ldes_client() -> list[str]:
    return require_npm_cli("ldes-client", LDES_CLIENT_CLI)


def iso_ms(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 instant with an offset (independent of ldf_server.timeutil)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.tzinfo is not None, text
    return round(value.timestamp() * 1000)


@dataclass
class RequestLog:
    """(method, path, status) of every request the server answered, in order."""

    entries: list[tuple[str, str, int]] = field(default_factory=list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Exception as exc:  # a Problem, answered by the outer middleware
            status = getattr(exc, "status", 500)
            raise
        finally:
            self.entries.append((request.method, request.path, status))

    def paths(self, prefix: str = "/") -> list[str]:
        return [path for _, path, _ in self.entries if path.startswith(prefix)]

    def failures(self) -> list[tuple[str, str, int]]:
        return [e for e in self.entries if e[2] >= 400]


@asynccontextmanager
async def live_server(
    build: Callable[[str], tuple[Config, ServerState]],
) -> AsyncIterator[tuple[str, ServerState, RequestLog]]:
    """Serve ``build(base_url)`` on a free port of 127.0.0.1; yields (base_url, state, request log)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    runner: web.AppRunner | None = None
    try:
        config, state = build(base_url)
        app = create_app(config, state=state, run_feeds=False)
        log = RequestLog()
        app.middlewares.append(log.middleware)  # before setup: the middleware list freezes when the app starts
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        yield base_url, state, log
    finally:
        if runner is not None:
            await runner.cleanup()
        sock.close()


@dataclass
class Harvest:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def blocks(self) -> list[str]:
        """The members as printed: groups of triples separated by blank lines."""
        return [b for b in self.stdout.replace("\r\n", "\n").split("\n\n") if b.strip()]

    def members(self) -> list[tuple[str, int]]:
        """(member IRI, prov:generatedAtTime in epoch ms) of each printed member, in printed order.

        Each block must parse (as Turtle: the CLI writes N-Triples-like lines but with bare
        numeric literals such as ``79``, which strict N-Triples forbids) and hold exactly
        one subject with a timestamp.
        """
        out = []
        for block in self.blocks():
            g = rdflib.Graph()
            g.parse(data=block, format="turtle")
            stamped = list(g.subject_objects(PROV_GENERATED))
            assert len(stamped) == 1, f"expected one timestamped member in the block, got {len(stamped)}:\n{block}"
            subject, literal = stamped[0]
            out.append((str(subject), iso_ms(str(literal))))
        return out


async def run_ldes_client(url: str, *args: str, timeout: float = 120.0) -> Harvest:
    """Run the ldes-client CLI without blocking the loop that serves it; kill it after ``timeout``."""
    command = require_ldes_client()
    loop = asyncio.get_running_loop()
    started = loop.time()
    env = {**os.environ, "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(
        *command, url, *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=str(CLIENTS_DIR), env=env,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        stdout, stderr = await proc.communicate()
        pytest.fail(
            f"ldes-client {url} {' '.join(args)} did not finish within {timeout:.0f}s; "
            f"stderr tail:\n{stderr.decode(errors='replace')[-2000:]}"
        )
    finally:
        if proc.returncode is None:  # cancelled: never leave the child behind
            proc.kill()
            await proc.wait()
    return Harvest(proc.returncode, stdout.decode(), stderr.decode(errors="replace"), loop.time() - started)
