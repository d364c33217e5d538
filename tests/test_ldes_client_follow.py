"""ldes-client keeps in sync: ``-s`` resumes with only new members; ``--follow`` picks up new ones
while fetching every immutable page only once."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

from ldf_server.records import parking_member
from ldf_server.timeutil import format_instant
from tests.support.clock import FakeClock
from tests.support.live import CLIENTS_DIR, live_server, require_ldes_client, run_ldes_client
from tests.support.seeding import make_config, parking_dataset, seeded_state, simulator_feed

NOW = "2026-03-31T12:07:30Z"
GENERATED = "<http://www.w3.org/ns/prov#generatedAtTime>"


def build(base_url: str, clock=None):  # type: ignore[no-untyped-def]
    config = make_config(base_url=base_url, datasets=[parking_dataset(window="1h")],
                         feeds=[simulator_feed(cities=["sint-niklaas"], backfill="4h")])
    state = seeded_state(config, clock or FakeClock(NOW))
    return config, state


def member_subjects(stdout: str) -> list[str]:
    return [line.split(" ", 1)[0].strip("<>") for line in stdout.splitlines() if f" {GENERATED} " in line]


def add_member(state, seconds_after_now: int, vacant: int) -> str:
    store = state.streams["parking"].store
    site = sorted(store.sites)[0]
    t = int(store.clock() * 1000) + seconds_after_now * 1000
    assert store.add([parking_member(site, t, vacant)]).added == 1
    return state.urls.member("parking", site, "", t)


async def test_saved_state_resumes_with_only_new_members(tmp_path):
    require_ldes_client()
    saved = str(tmp_path / "state")
    async with live_server(build) as (base, state, log):
        first = await run_ldes_client(f"{base}/parking", "-s", saved)
        assert first.returncode == 0, first.stderr[-2000:]
        assert len(member_subjects(first.stdout)) == state.streams["parking"].store.member_count
        new = {add_member(state, 10, 7), add_member(state, 20, 8)}
        second = await run_ldes_client(f"{base}/parking", "-s", saved)
    assert second.returncode == 0, second.stderr[-2000:]
    assert set(member_subjects(second.stdout)) == new


async def test_follow_picks_up_a_new_member_and_fetches_immutable_pages_once(tmp_path):
    """With saved state (``-s``): ldes-client 0.3.0 remembers immutable pages only there, and
    without it refetches them every time it re-reads the mutable day node (checked by hand:
    12 fetches of one closed page in a few seconds). Runs on the wall clock so that
    Last-Modified and Date agree, as they do in production."""
    command = require_ldes_client()
    async with live_server(lambda base: build(base, time.time)) as (base, state, log):
        # Taken before the client starts: on the wall clock a window can close during the run
        # (say, at 20:01), and a page that was mutable when fetched may rightly be fetched again.
        closed_at_start, open_at_start = closed_and_open_pages(state)
        proc = await asyncio.create_subprocess_exec(
            *command, f"{base}/parking", "--follow", "--poll-interval", "300", "-s", str(tmp_path / "state"),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=str(CLIENTS_DIR), env={**os.environ, "NO_COLOR": "1"},
        )
        seen: list[str] = []

        async def read_until(predicate, timeout: float) -> None:
            async def loop() -> None:
                while not predicate():
                    line = await proc.stdout.readline()
                    if not line:
                        raise AssertionError("ldes-client stopped following")
                    text = line.decode()
                    if f" {GENERATED} " in text:
                        seen.append(text.split(" ", 1)[0].strip("<>"))
            await asyncio.wait_for(loop(), timeout)

        try:
            stored = state.streams["parking"].store.member_count
            await read_until(lambda: len(seen) >= stored, 60)
            new = add_member(state, 5, 3)
            await read_until(lambda: new in seen, 60)
            await asyncio.sleep(1.0)  # a few more polling rounds
        finally:
            proc.kill()
            await proc.wait()

    assert len(seen) == len(set(seen)) == stored + 1
    fetched = Counter(path for method, path, status in log.entries if path.startswith("/parking/windows/"))
    assert closed_at_start, "precondition: some pages are closed"
    for path in closed_at_start:
        assert fetched[path] == 1, f"{path} fetched {fetched[path]} times"
    assert fetched[open_at_start] >= 2, "the open page is polled again in follow mode"


def closed_and_open_pages(state) -> tuple[list[str], str]:  # type: ignore[no-untyped-def]
    store = state.streams["parking"].store
    timeline = state.streams["parking"].timeline
    now = int(store.clock() * 1000)
    closed = [f"/parking/windows/{format_instant(s)}" for s in store.window_starts() if timeline.window_closed(s, now)]
    return closed, f"/parking/windows/{format_instant(timeline.window_start(now))}"
