"""Offline simulator of garage occupancy, so the default config serves live data with no network.

Occupancy model (from the pilots' samples README): each garage has a few daily events
that fill it along a Rayleigh CDF and empty it along an exponential decay;
occupied = round(min(1, sum of event levels) × capacity). Everything is derived from
(seed, garage, day, instant), so backfilled history and live polls agree and a restart
reproduces the same values.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import ClassVar

from pydantic import Field, field_validator

from ldf_server.adapters.base import AdapterOptions
from ldf_server.adapters.simulated import SimulatedOptions, Simulator
from ldf_server.adapters.text import slug
from ldf_server.records import Member, Site, parking_member, parking_status

DAY_MS = 86_400_000
HOUR = 3_600_000


@lru_cache(maxsize=1)
def bundled_garages() -> dict[str, dict]:
    text = resources.files("ldf_server").joinpath("data/simulated_garages.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


class SimulatorOptions(SimulatedOptions):
    cities: list[str] = Field(default_factory=lambda: ["leuven", "kortrijk", "mechelen"], min_length=1)

    @field_validator("cities")
    @classmethod
    def _known(cls, cities: list[str]) -> list[str]:
        unknown = sorted(set(cities) - set(bundled_garages()))
        if unknown:
            raise ValueError(f"unknown cities {unknown} (bundled: {sorted(bundled_garages())})")
        return cities


@dataclass(frozen=True, slots=True)
class _Event:
    start: float  # ms after midnight UTC
    level: float  # fraction of capacity at the peak
    sigma: float  # Rayleigh scale, ms
    duration: float  # ms of filling before the decay starts
    tau: float  # decay time constant, ms

    def level_at(self, x: float) -> float:
        if x <= 0:
            return 0.0
        if x <= self.duration:
            return self.level * (1 - math.exp(-(x * x) / (2 * self.sigma**2)))
        peak = self.level * (1 - math.exp(-(self.duration**2) / (2 * self.sigma**2)))
        return peak * math.exp(-(x - self.duration) / self.tau)


# (typical start hour UTC, spread, typical level): commuters, shoppers, evening visitors.
_PROFILES = ((6.5, 1.0, 0.45), (9.5, 1.5, 0.35), (17.0, 1.5, 0.25))


class ParkingSimulator(Simulator):
    name: ClassVar[str] = "parking-simulator"
    Options: ClassVar[type[AdapterOptions]] = SimulatorOptions

    def __init__(self, feed, options) -> None:  # type: ignore[no-untyped-def]
        super().__init__(feed, options)
        opts = self.options
        assert isinstance(opts, SimulatorOptions)
        self.sites: list[Site] = []
        for city in opts.cities:
            for garage in bundled_garages()[city]["garages"]:
                self.sites.append(
                    Site(
                        key=f"{city}/{slug(garage['name'])}",
                        label=garage["name"],
                        city=city,
                        description=f"Gesimuleerde parkeergarage {garage['name']} in {bundled_garages()[city]['label']}",
                        capacity=garage["capacity"],
                        lat=garage["lat"],
                        lon=garage["lon"],
                    )
                )
        self._events: dict[tuple[str, int], tuple[_Event, ...]] = {}

    def occupancy(self, site: Site, t: int) -> float:
        day = t // DAY_MS
        level = 0.0
        for d in (day - 1, day):
            for event in self._day_events(site.key, d):
                level += event.level_at(t - d * DAY_MS - event.start)
        return min(1.0, level)

    def member(self, site: Site, t: int) -> Member:
        capacity = site.capacity or 0
        occupied = round(self.occupancy(site, t) * capacity)
        # A little deterministic jitter per minute: cars come and go between events.
        jitter = random.Random(f"{site.key}:{t // 60000}").randint(-2, 2)
        vacant = max(0, min(capacity, capacity - occupied + jitter))
        return parking_member(site.key, t, vacant, status=parking_status(vacant, capacity), opening="open")

    def _day_events(self, key: str, day: int) -> tuple[_Event, ...]:
        cached = self._events.get((key, day))
        if cached is None:
            opts = self.options
            assert isinstance(opts, SimulatorOptions)
            rng = random.Random(f"{opts.seed}:{key}:{day}")
            weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
            events = []
            for hour, spread, level in _PROFILES:
                if weekend and hour < 8:
                    continue  # no commuters at the weekend
                events.append(
                    _Event(
                        start=max(0.0, rng.gauss(hour, spread / 2)) * HOUR,
                        level=max(0.02, rng.gauss(level * (1.3 if weekend else 1.0), 0.1)),
                        sigma=rng.uniform(0.5, 1.5) * HOUR,
                        duration=rng.uniform(2, 7) * HOUR,
                        tau=rng.uniform(0.7, 2.5) * HOUR,
                    )
                )
            cached = tuple(events)
            if len(self._events) > 4096:
                self._events.clear()
            self._events[(key, day)] = cached
        return cached
