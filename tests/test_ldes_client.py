"""The real ``ldes-client`` (npm) harvests a server started on a seeded store.

The store holds the simulator's backfilled history (one city, 36 h of 5-minute
observations in 1-hour pages), so a harvest crosses a UTC day boundary and reads a few
dozen pages. Expected members are always derived from the store, never hard-coded.
If ``tests/clients/node_modules`` is missing these tests fail: run ``./scripts/test``.
"""

from __future__ import annotations

from collections import Counter
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import AsyncIterator

from ldf_server.http.state import ServerState
from ldf_server.records import Member
from tests.support.clock import FakeClock
from tests.support.live import RequestLog, iso_ms, live_server, require_ldes_client, run_ldes_client
from tests.support.seeding import make_config, parking_dataset, seeded_state, simulator_feed

NOW = "2026-03-31T12:07:30Z"
DS = "parking"
WINDOW = "1h"
DAY_MS = 86_400_000
TIMEOUT_S = 120.0


@asynccontextmanager
async def seeded_server() -> AsyncIterator[tuple[str, ServerState, RequestLog]]:
    require_ldes_client()  # fail fast, before seeding, when the npm client is not installed

    def build(base_url: str):
        config = make_config(
            base_url=base_url,
            datasets=[parking_dataset(window=WINDOW)],
            feeds=[simulator_feed(cities=["sint-niklaas"], backfill="36h")],
        )
        return config, seeded_state(config, FakeClock(NOW))

    async with live_server(build) as served:
        yield served


def iso_text(ms: int) -> str:
    assert ms % 1000 == 0, ms
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stored_members(state) -> list[Member]:
    store = state.streams[DS].store
    members = [m for start in store.window_starts() for m in store.window(start).members]
    assert len(members) == store.member_count, "the store's member_count disagrees with its windows"
    return members


def member_iri(state, m: Member) -> str:
    return state.urls.member(DS, m.site, m.series, m.time)


def window_ms(state) -> int:
    return state.streams[DS].timeline.window_ms


def requested_starts(log: RequestLog, kind: str) -> list[int]:
    """Start instants of the ``/parking/<kind>/<instant>`` pages the server was asked for."""
    prefix = f"/{DS}/{kind}/"
    out = []
    for path in log.paths(prefix):
        text = path[len(prefix):]
        out.append(iso_ms(text if "T" in text else text + "T00:00:00Z"))
    return out


def assert_clean_run(harvest, log: RequestLog) -> None:
    assert harvest.returncode == 0, f"ldes-client exited {harvest.returncode}; stderr:\n{harvest.stderr[-3000:]}"
    assert not log.failures(), f"the server answered errors to ldes-client: {log.failures()}"
    assert log.paths(f"/{DS}/windows/"), "ldes-client fetched no window page at all"


async def test_harvests_every_stored_member_exactly_once():
    async with seeded_server() as (base, state, log):
        harvest = await run_ldes_client(f"{base}/{DS}", timeout=TIMEOUT_S)
    assert_clean_run(harvest, log)
    members = stored_members(state)
    store = state.streams[DS].store
    days = {m.time - m.time % DAY_MS for m in members}
    assert len(days) >= 2, "precondition: the seeded history should span a UTC day boundary"

    emitted = harvest.members()
    assert len(emitted) == store.member_count, (
        f"ldes-client emitted {len(emitted)} members, the store holds {store.member_count}"
    )
    counts = Counter(iri for iri, _ in emitted)
    repeated = {iri: n for iri, n in counts.items() if n > 1}
    assert not repeated, f"members emitted more than once: {list(repeated.items())[:5]}"
    expected = {member_iri(state, m): m.time for m in members}
    missing = expected.keys() - counts.keys()
    assert not missing, f"{len(missing)} stored members never emitted, e.g. {sorted(missing)[:3]}"
    unknown = counts.keys() - expected.keys()
    assert not unknown, f"{len(unknown)} emitted members the store does not hold, e.g. {sorted(unknown)[:3]}"
    wrong_time = [(iri, t) for iri, t in emitted if t != expected[iri]]
    assert not wrong_time, f"members emitted with another timestamp than stored: {wrong_time[:3]}"

    # Server side: every non-empty window and every day node was read, through the view.
    assert set(requested_starts(log, "windows")) >= set(store.window_starts())
    assert set(requested_starts(log, "days")) >= days
    assert f"/{DS}/view" in log.paths()


async def test_ascending_order_follows_generated_at_time():
    async with seeded_server() as (base, state, log):
        harvest = await run_ldes_client(f"{base}/{DS}", "-o", "ascending", timeout=TIMEOUT_S)
    assert_clean_run(harvest, log)
    emitted = harvest.members()
    members = stored_members(state)
    assert sorted(iri for iri, _ in emitted) == sorted(member_iri(state, m) for m in members), (
        "in ascending mode ldes-client did not emit exactly the stored members"
    )
    times = [t for _, t in emitted]
    inversions = [(i, times[i - 1], times[i]) for i in range(1, len(times)) if times[i] < times[i - 1]]
    assert not inversions, f"{len(inversions)} members out of prov:generatedAtTime order, first at {inversions[0]}"


def _after_mid_window(state) -> int:
    """An instant inside a window of the first stored day, on no member's timestamp."""
    starts = state.streams[DS].store.window_starts()
    first_day = starts[0] - starts[0] % DAY_MS
    day_starts = [s for s in starts if s < first_day + DAY_MS]
    return day_starts[len(day_starts) * 3 // 4] + window_ms(state) // 2 + 37_000


def _after_day_boundary(state) -> int:
    """The start of the last stored UTC day: exactly where a window and a day node end."""
    last = state.streams[DS].store.window_starts()[-1]
    return last - last % DAY_MS


async def _assert_after(choose_t, *, t_on_members_allowed: bool) -> None:
    async with seeded_server() as (base, state, log):
        t = choose_t(state)
        harvest = await run_ldes_client(f"{base}/{DS}", "--after", iso_text(t), timeout=TIMEOUT_S)
    assert_clean_run(harvest, log)
    width = window_ms(state)
    members = stored_members(state)
    store = state.streams[DS].store
    assert any(s + width <= t for s in store.window_starts()), "precondition: some stored window ends at or before T"
    assert any(m.time >= t for m in members), "precondition: some stored member is at or after T"
    at_t = {member_iri(state, m) for m in members if m.time == t}
    if not t_on_members_allowed:
        assert not at_t, "precondition: T is on no member's timestamp"

    # Server side: no page that ends at or before T was requested.
    fetched_windows = requested_starts(log, "windows")
    early = sorted({s for s in fetched_windows if s + width <= t})
    assert not early, f"ldes-client fetched window pages that end at or before T: {early}"
    early_days = sorted({d for d in requested_starts(log, "days") if d + DAY_MS <= t})
    assert not early_days, f"ldes-client fetched day nodes that end at or before T: {early_days}"
    # ... but every non-empty window reaching past T was.
    needed = {s for s in store.window_starts() if s + width > t}
    assert needed <= set(fetched_windows), f"windows after T never fetched: {sorted(needed - set(fetched_windows))}"

    # Client side: every member at or after T was emitted, once, and nothing earlier.
    emitted = harvest.members()
    counts = Counter(iri for iri, _ in emitted)
    assert all(n == 1 for n in counts.values()), "a member was emitted more than once"
    at_or_after = {member_iri(state, m) for m in members if m.time >= t}
    emitted_iris = set(counts)
    assert emitted_iris <= at_or_after, f"members from before T emitted: {sorted(emitted_iris - at_or_after)[:3]}"
    missing = at_or_after - emitted_iris
    # ldes-client's --after is strict (a tree:GreaterThanRelation on each member), so members
    # exactly at T may be left out; nothing else may.
    assert missing <= at_t, f"{len(missing - at_t)} members after T never emitted, e.g. {sorted(missing - at_t)[:3]}"
    if not t_on_members_allowed:
        assert not missing


async def test_after_skips_earlier_pages_mid_window():
    await _assert_after(_after_mid_window, t_on_members_allowed=False)


async def test_after_on_a_day_boundary_skips_the_whole_earlier_day():
    await _assert_after(_after_day_boundary, t_on_members_allowed=True)
