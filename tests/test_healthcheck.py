"""``python -m ldf_server.healthcheck`` (the container's HEALTHCHECK) against a real server."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from ldf_server.healthcheck import ready_url
from tests.support.clock import FakeClock
from tests.support.live import live_server
from tests.support.seeding import make_config, seeded_state

NOW = "2026-03-31T12:07:30Z"


def build(base_url: str):  # type: ignore[no-untyped-def]
    config = make_config(base_url=base_url)
    return config, seeded_state(config, FakeClock(NOW))


async def healthcheck(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run the module as the container does: a separate process, configured by the environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LDF_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ldf_server.healthcheck", *args, env={**clean, **env},
        cwd=str(Path(__file__).resolve().parents[1]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


async def test_ready_server_is_healthy_and_a_starting_or_failing_one_is_not(tmp_path):
    async with live_server(build) as (base, state, _):
        port = base.rsplit(":", 1)[1]
        config = tmp_path / "config.toml"
        config.write_text(f'[server]\nhost = "0.0.0.0"\nport = {port}\n')  # the image listens on every address

        code, out = await healthcheck({"LDF_CONFIG": str(config)})
        assert code == 0, out
        assert out.startswith(f"healthy: http://127.0.0.1:{port}/health/ready: 200 degraded")  # stale feed: still healthy

        state.ready = False  # replaying the durable log
        code, out = await healthcheck({"LDF_CONFIG": str(config)})
        assert code == 1 and "503 starting" in out and "store: loading" in out, out

        state.ready = True
        state.health_checks["log"] = lambda: (False, "cannot append: No space left on device")
        code, out = await healthcheck({"LDF_PORT": port, "LDF_CONFIG": str(tmp_path / "missing.toml")})
        assert code == 1 and "503 failing" in out and "No space left on device" in out, out


async def test_nothing_listening_is_unhealthy():
    port = closed_port()
    code, out = await healthcheck({"LDF_SERVER__PORT": str(port), "LDF_CONFIG": "/nonexistent.toml"})
    assert code == 1
    assert out.startswith(f"unhealthy: http://127.0.0.1:{port}/health/ready: no answer"), out


async def test_url_option_and_bad_variables():
    code, out = await healthcheck({}, "--url", f"http://127.0.0.1:{closed_port()}/health/ready", "--timeout", "1")
    assert code == 1 and "no answer" in out
    code, out = await healthcheck({"LDF_SERVR__PORT": "1"})
    assert code == 1 and "LDF_SERVR__PORT" in out, out


def test_the_probed_address_follows_the_server_settings(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[server]\nhost = "0.0.0.0"\nport = 9000\n')
    assert ready_url({"LDF_CONFIG": str(config)}) == "http://127.0.0.1:9000/health/ready"
    assert ready_url({"LDF_CONFIG": str(config), "LDF_PORT": "9001"}) == "http://127.0.0.1:9001/health/ready"
    assert ready_url({"LDF_CONFIG": str(config), "LDF_PORT": "9001", "LDF_SERVER__PORT": "9002"}).endswith(":9002/health/ready")
    assert ready_url({"LDF_CONFIG": str(config), "LDF_HOST": "::"}) == "http://[::1]:9000/health/ready"
    assert ready_url({"LDF_CONFIG": str(config), "LDF_HOST": "10.0.0.5"}) == "http://10.0.0.5:9000/health/ready"
    assert ready_url({"LDF_CONFIG": str(tmp_path / "missing.toml")}) == "http://127.0.0.1:8080/health/ready"
