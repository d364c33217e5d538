"""What the offline simulators share: no transport, a state at any instant, and a backfill.

A simulator's members are a pure function of (seed, site, instant), so the history it
backfills at start-up and the values it produces live always agree.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Iterator

import aiohttp
from pydantic import field_validator

from ldf_server.adapters.base import Adapter, AdapterOptions
from ldf_server.records import Batch, Member, Site
from ldf_server.timeutil import parse_duration

BATCH_MS = 3_600_000  # backfill is ingested an hour at a time


class SimulatedOptions(AdapterOptions):
    seed: int = 2017
    backfill: float = 0.0  # seconds of history generated at start-up

    @field_validator("backfill", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)


class Simulator(Adapter):
    """Subclasses set ``self.sites`` in ``__init__`` and implement :meth:`member`."""

    sites: list[Site]

    @abstractmethod
    def member(self, site: Site, t: int) -> Member:
        """The member of ``site`` observed at ``t`` (epoch ms, whole seconds)."""

    async def fetch(self, session: aiohttp.ClientSession) -> bytes:
        return b""  # nothing to fetch: parse() computes the state at the poll time

    def parse(self, payload: bytes, fetched_at: int) -> Batch:
        t = fetched_at - fetched_at % 1000
        return Batch(sites=list(self.sites), members=[self.member(site, t) for site in self.sites])

    def backfill(self, now: int) -> Iterator[Batch]:
        opts = self.options
        assert isinstance(opts, SimulatedOptions)
        step = int(self.feed.interval * 1000)
        end = now - now % step
        t = end - int(opts.backfill * 1000)
        t -= t % step
        yield Batch(sites=list(self.sites))
        while t < end:
            batch_end = min(end, t + BATCH_MS)
            members = []
            while t < batch_end:
                members.extend(self.member(site, t) for site in self.sites)
                t += step
            yield Batch(members=members)
