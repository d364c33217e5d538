"""Schemathesis fuzzes every operation of ``/openapi.json`` on a live server: no failures allowed.

The server listens on 127.0.0.1 on a seeded store (two datasets, one push source whose key
comes from an environment variable set here); the ``st`` CLI runs in a subprocess with a
fixed seed and a bounded number of cases per operation, positive and negative, and checks
that no answer is a 5xx, that every status, content type, required header and JSON body
(each event of an event stream) is one the description documents, that requests violating
the schema are refused with a 4xx, and that other methods answer 405 with ``Allow``.

It found one bug: an empty ``Last-Event-ID`` header made a malformed ``?lastEventId=`` be
ignored instead of refused.

Phases: examples, coverage and fuzzing. The stateful phase is left out: its link inference
reads same-origin URLs in bodies and, on the catalog, took ``/openapi.json`` for an instance
of ``/{ds}`` (ignoring both the literal path and the ``enum`` of ``ds``), then reported the
description for not being an event stream.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from ldf_server.app import build_state
from ldf_server.http import openapi
from tests.support.clock import FakeClock
from tests.support.live import live_server
from tests.support.seeding import crowd_dataset, crowd_feed, make_config, parking_dataset, simulator_feed

NOW = "2026-03-31T12:07:30Z"
KEY_ENV = "LDF_TEST_PUSH_KEY"
KEY = "fuzzing-key-of-the-counters"
# Every check but positive_data_acceptance, which cannot hold here: a schema-valid instant, page
# or record may still name nothing (404), something removed (410) or be refused as too old (422).
EXCLUDED_CHECKS = ("positive_data_acceptance",)
EXAMPLES_PER_OPERATION = 25
SEED = 20260331

# Headers for every request come from the environment (the key is never on the command line);
# an event stream is read for at most half a second or three events, then dropped.
CONFIG = f"""
headers = {{ Authorization = "Bearer ${{{KEY_ENV}}}" }}

[[operations]]
include-path = "/{{ds}}/events"
request-timeout = 0.5
max-stream-events = 3
"""


def build(base_url: str):  # type: ignore[no-untyped-def]
    config = make_config(
        base_url=base_url, datasets=[parking_dataset(), crowd_dataset()], feeds=[simulator_feed(), crowd_feed()],
        push=[{"id": "counters", "dataset": "crowds", "key_env": KEY_ENV,
               "sites": [{"key": "gent/korenmarkt", "label": "Korenmarkt"}, {"key": "gent/graslei", "label": "Graslei"}]}],
        sse_heartbeat="0.2s",
    )
    state = build_state(config, clock=FakeClock(NOW), env={KEY_ENV: KEY})
    for poller in state.pollers:
        poller.backfill()
    state.ready = True
    return config, state


async def test_schemathesis_finds_no_failure(tmp_path: Path):
    st = Path(sys.executable).with_name("st")
    if not st.is_file():
        pytest.fail(f"schemathesis is not installed ({st} is missing): pip install -e '.[test]'")
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    async with live_server(build) as (base_url, _state, log):
        proc = await asyncio.create_subprocess_exec(
            str(st), "--config-file", str(tmp_path / "schemathesis.toml"), "run", f"{base_url}/openapi.json",
            "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS), "--phases", "examples,coverage,fuzzing",
            "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED), "--workers", "1",
            "--request-timeout", "10", "--max-redirects", "0", "--no-color",
            cwd=str(tmp_path), env={**os.environ, KEY_ENV: KEY, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 240)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-6000:]

    operations = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert operations and tested, report[-3000:]
    # Every operation but GET /openapi.json, which schemathesis skips as the schema's own URL.
    expected = sum(len(ops) for ops in openapi.PATHS.values()) - 1
    assert int(operations.group(1)) == int(operations.group(2)) == int(tested.group(1)) == expected, report[-3000:]
    cases = int(re.search(r"(\d+) generated", report).group(1))  # type: ignore[union-attr]
    assert cases > expected * 10, report[-3000:]

    statuses = {(method, status) for method, _, status in log.entries}
    assert not [e for e in log.entries if e[2] >= 500]
    # The key from the environment was sent: pushes got past authentication (stored or refused as invalid).
    assert any(m == "POST" and s in (200, 422) for m, s in statuses), sorted(statuses)
    # Both well-formed and malformed requests were made.
    assert {200, 400, 404} <= {s for _, s in statuses}, sorted(statuses)
