"""``python -m ldf_server.healthcheck``: exit 0 when the local server is ready, 1 when not.

The container's ``HEALTHCHECK`` runs this. It asks ``/health/ready`` on the port the server
was configured with (the same file and environment variables the server reads), so a
server that is still replaying its log (``starting``) or cannot write its data directory
(``failing``) is unhealthy, while one whose upstream feeds are stale (``degraded``) is not:
it still serves its last good data. Standard library only, and no config validation, so a
probe costs a few milliseconds of start-up, not the server's imports.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tomllib
from typing import Mapping
from urllib.parse import urlsplit

from ldf_server.config_env import OverrideError, apply_environment

DEFAULT_CONFIG = "config/default.toml"
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def ready_url(env: Mapping[str, str]) -> str:
    """Where the configured server answers ``/health/ready``, seen from the same machine."""
    raw = {}
    path = env.get("LDF_CONFIG", DEFAULT_CONFIG)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        pass  # the server would not start either; probe the defaults and report what answers
    server = apply_environment(raw, env)[0].get("server") or {}
    host = str(server.get("host", "127.0.0.1"))
    host = WILDCARDS.get(host, host)
    port = server.get("port", 8080)
    return f"http://[{host}]:{port}/health/ready" if ":" in host else f"http://{host}:{port}/health/ready"


def probe(url: str, timeout: float) -> tuple[bool, str]:
    """(ready, one line saying why) for a ``/health/ready`` URL."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Accept": "application/json"})
        response = conn.getresponse()
        body = response.read(64 * 1024)
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{url}: no answer ({exc})"
    finally:
        conn.close()
    try:
        report = json.loads(body)
        status = report.get("status", "?")
        reasons = "; ".join(report.get("reasons") or [])
    except (ValueError, AttributeError):
        status, reasons = "?", ""
    line = f"{url}: {response.status} {status}" + (f" ({reasons})" if reasons else "")
    return response.status == 200, line


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ldf_server.healthcheck",
                                description="Exit 0 if the local ldf-server answers /health/ready with 200, else 1.")
    p.add_argument("--url", help="probe this URL instead of the configured port's /health/ready")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)")
    args = p.parse_args(argv)
    try:
        url = args.url or ready_url(os.environ if env is None else env)
    except OverrideError as exc:
        print(f"unhealthy: {exc}")
        return 1
    ok, line = probe(url, args.timeout)
    print(("healthy: " if ok else "unhealthy: ") + line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
