"""A store with all three pilots, for the Triple Pattern Fragments tests (Comunica and plain HTTP).

- parking: the simulator's garages of all four bundled cities (18 sites);
- crowdedness: the people-counter simulator with many zones, so that fragments such as
  ``?obs sosa:hasSimpleResult ?count`` hold more than one TPF page (100 triples);
- accessibility: the bundled ``accessibility_buildings.csv`` read by the ``accessibility-csv``
  adapter, as the default config does.

Everything is seeded the way a starting server does it: ``build_state`` with a fake clock,
then every poller's backfill and one poll.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from ldf_server.app import build_state
from ldf_server.config import Config
from ldf_server.http.state import ServerState
from tests.support.seeding import (
    BASE,
    crowd_dataset,
    crowd_feed,
    make_config,
    parking_dataset,
    simulator_feed,
)

NOW = "2026-03-31T12:07:30Z"
PARKING, CROWDS, ACCESSIBILITY = "parking", "crowds", "accessibility"
PARKING_CITIES = ["leuven", "kortrijk", "mechelen", "sint-niklaas"]
ZONE_COUNT = 120  # > one TPF page (100) of every per-zone pattern
ZONE_CITIES = ("gent", "leuven", "brugge")


def zones(count: int = ZONE_COUNT) -> list[dict[str, Any]]:
    return [
        {"name": f"Zone {i:03d}", "city": ZONE_CITIES[i % len(ZONE_CITIES)],
         "lat": round(50.8 + i * 0.0031, 4), "lon": round(3.2 + i * 0.0047, 4), "peak_per_hour": 600 + 10 * i}
        for i in range(count)
    ]


def accessibility_dataset() -> dict[str, Any]:
    return parking_dataset(
        id=ACCESSIBILITY, pilot="accessibility", window="1h", retention="3650d",
        title={"en": "Accessibility of public buildings", "nl": "Toegankelijkheid van publieke gebouwen"},
        description={"en": "Door widths of public buildings", "nl": "Deurbreedtes van publieke gebouwen"},
    )


def accessibility_feed() -> dict[str, Any]:
    return {"id": "toevla-export", "adapter": "accessibility-csv", "dataset": ACCESSIBILITY, "interval": "1h",
            "options": {"path": "accessibility_buildings.csv"}}


def three_pilots_config(base_url: str = BASE, *, zone_count: int = ZONE_COUNT) -> Config:
    return make_config(
        base_url=base_url,
        datasets=[parking_dataset(), crowd_dataset(), accessibility_dataset()],
        feeds=[
            simulator_feed(cities=PARKING_CITIES, backfill="1h"),
            crowd_feed(zones=zones(zone_count), backfill="1h"),
            accessibility_feed(),
        ],
    )


def three_pilots_state(config: Config, clock) -> ServerState:  # type: ignore[no-untyped-def]
    return build_state(config, clock=clock)


async def seed(state: ServerState) -> None:
    """Backfill every feed, then poll each once (the CSV export is only read by a poll)."""
    async with aiohttp.ClientSession() as session:
        for poller in state.pollers:
            poller.backfill()
            result = await poller.poll_once(session)
            assert result is not None, f"feed {poller.status.feed} failed: {poller.status.last_error}"
    state.ready = True
    for ds in state.streams:
        store = state.streams[ds].store
        assert store.sites and store.latest, f"precondition: dataset {ds} was seeded"


async def poll(state: ServerState, ds: str) -> None:
    """One more poll of the feeds of ``ds`` (after the test moved the clock)."""
    async with aiohttp.ClientSession() as session:
        for poller in state.pollers:
            if poller.status.dataset == ds:
                assert await poller.poll_once(session) is not None, poller.status.last_error


def site_iri(base: str, ds: str, site) -> str:  # type: ignore[no-untyped-def]
    """The IRI a site is published under: its own (a registry's) when it has one, else ours."""
    return site.iri or f"{base}/{ds}/sites/{site.key}"
