"""ldes-client harvests the stream of every pilot (parking, crowdedness, accessibility) in time order."""

from __future__ import annotations

import aiohttp
import rdflib

from ldf_server.pilots import PILOTS
from ldf_server.timeutil import parse_instant
from tests.support.clock import FakeClock
from tests.support.live import live_server, require_ldes_client, run_ldes_client
from tests.support.seeding import crowd_dataset, crowd_feed, make_config, parking_dataset, seeded_state, simulator_feed

NOW = "2026-03-31T12:07:30Z"


def accessibility_dataset() -> dict:
    return parking_dataset(id="buildings", pilot="accessibility", title={"en": "Accessibility"},
                           description={"en": "Public buildings"}, window="1h", retention="3650d")


def accessibility_feed() -> dict:
    return {"id": "toevla", "adapter": "accessibility-csv", "dataset": "buildings", "interval": "1h",
            "options": {"path": "accessibility_buildings.csv"}}


def emitted_members(stdout: str, timestamp_path: str) -> list[tuple[str, str]]:
    """(subject, timestamp) of each printed member, in printed order."""
    out = []
    for block in stdout.replace("\r\n", "\n").split("\n\n"):
        if block.strip():
            g = rdflib.Graph().parse(data=block, format="turtle")
            stamped = list(g.subject_objects(rdflib.URIRef(timestamp_path)))
            assert len(stamped) == 1, block
            out.extend((str(s), str(t)) for s, t in stamped)
    return out


async def test_every_pilot_stream_is_harvested_completely():
    require_ldes_client()

    def build(base_url: str):
        config = make_config(
            base_url=base_url,
            datasets=[parking_dataset(window="1h"), crowd_dataset(), accessibility_dataset()],
            feeds=[simulator_feed(cities=["sint-niklaas"], backfill="3h"), crowd_feed(backfill="3h"), accessibility_feed()],
        )
        return config, seeded_state(config, FakeClock(NOW))

    async with live_server(build) as (base, state, log):
        async with aiohttp.ClientSession() as session:
            toevla = next(p for p in state.pollers if p.status.feed == "toevla")
            assert await toevla.poll_once(session) is not None
        harvests = {ds: await run_ldes_client(f"{base}/{ds}", "-o", "ascending", timeout=120) for ds in state.streams}

    for ds, harvest in harvests.items():
        assert harvest.returncode == 0, harvest.stderr[-2000:]
        stream = state.streams[ds]
        store = stream.store
        expected = {
            state.urls.member(ds, m.site, m.series, m.time)
            for start in store.window_starts() for m in store.window(start).members
        }
        assert len(expected) == store.member_count > 0, ds
        emitted = emitted_members(harvest.stdout, PILOTS[stream.config.pilot].timestamp_path)
        subjects = [s for s, _ in emitted]
        assert len(subjects) == len(set(subjects)), f"{ds}: members emitted twice"
        assert set(subjects) == expected, f"{ds}: {len(set(subjects))} emitted, {len(expected)} stored"
        times = [parse_instant(t) for _, t in emitted]
        assert times == sorted(times), f"{ds}: -o ascending emitted members out of time order"
    assert not log.failures(), log.failures()
