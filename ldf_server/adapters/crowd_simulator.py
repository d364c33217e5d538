"""Offline simulator of people counters, so the default config has live crowdedness data.

Each counting zone sees people at a rate that follows the day (a quiet night, a morning
rush, lunch, the evening out; busier at the weekend) with deterministic noise: the same
(seed, zone, instant) always gives the same count, so backfilled history and live polls
agree and a restart reproduces them.
"""

from __future__ import annotations

import math
import random
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ldf_server.adapters.base import AdapterOptions
from ldf_server.adapters.simulated import SimulatedOptions, Simulator
from ldf_server.adapters.text import slug
from ldf_server.records import Member, Site, count_member

HOUR = 3_600_000
DAY = 24 * HOUR
# (hour of day UTC, width in hours, weight): morning, lunch, evening out.
_BUMPS = ((7.0, 1.2, 0.6), (11.5, 1.5, 1.0), (18.5, 2.0, 0.8))


class Zone(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    city: str
    lat: float
    lon: float
    peak_per_hour: int = Field(default=1200, gt=0)


DEFAULT_ZONES = (
    Zone(name="Korenmarkt", city="gent", lat=51.0547, lon=3.7219, peak_per_hour=2400),
    Zone(name="Graslei", city="gent", lat=51.0545, lon=3.7205, peak_per_hour=1800),
    Zone(name="Sint-Baafsplein", city="gent", lat=51.0530, lon=3.7262, peak_per_hour=1500),
    Zone(name="Oude Markt", city="leuven", lat=50.8778, lon=4.7006, peak_per_hour=2000),
)


class CrowdSimulatorOptions(SimulatedOptions):
    seed: int = 2018
    zones: list[Zone] = Field(default_factory=lambda: list(DEFAULT_ZONES), min_length=1)


class CrowdSimulator(Simulator):
    name: ClassVar[str] = "crowd-simulator"
    Options: ClassVar[type[AdapterOptions]] = CrowdSimulatorOptions

    def __init__(self, feed, options) -> None:  # type: ignore[no-untyped-def]
        super().__init__(feed, options)
        opts = self.options
        assert isinstance(opts, CrowdSimulatorOptions)
        self.zones = {f"{z.city}/{slug(z.name)}": z for z in opts.zones}
        self.sites = [
            Site(key=key, label=z.name, city=z.city, lat=z.lat, lon=z.lon,
                 description=f"Gesimuleerde personenteller {z.name}")
            for key, z in self.zones.items()
        ]
        self.step = int(self.feed.interval * 1000)  # each count covers the interval before its poll

    def rate(self, zone: Zone, t: int) -> float:
        """Expected people per hour at instant t."""
        hour = (t % DAY) / HOUR
        level = 0.04 + sum(w * math.exp(-((hour - h) ** 2) / (2 * s * s)) for h, s, w in _BUMPS)
        weekend = ((t // DAY) + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        return zone.peak_per_hour * min(1.0, level) * (1.3 if weekend else 1.0)

    def member(self, site: Site, end: int) -> Member:
        opts = self.options
        assert isinstance(opts, CrowdSimulatorOptions)
        key = site.key
        zone = self.zones[key]
        start = end - self.step
        expected = self.rate(zone, start + self.step // 2) * self.step / HOUR
        noise = random.Random(f"{opts.seed}:{key}:{end}").gauss(0, math.sqrt(expected) if expected > 0 else 0)
        return count_member(key, "people", end, max(0, round(expected + noise)), counted="people", start=start, end=end)
