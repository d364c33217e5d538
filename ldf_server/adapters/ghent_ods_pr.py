"""Ghent's open data portal, park-and-ride occupancy (dataset ``real-time-bezetting-pr-gent``).

Same Opendatasoft API v1 envelope and quirks as the garage dataset (see
:mod:`ldf_server.adapters.ghent_ods`, whose parser this reuses), but the counts have
**different field names**: ``numberofspaces`` / ``availablespaces`` instead of
``totalcapacity`` / ``availablecapacity``; the position is also given as plain
``latitude`` / ``longitude`` fields next to ``location`` ([lat, lon]). A garage payload
sent to this adapter (or the reverse) reads no record and fails as a whole.
"""

from __future__ import annotations

from typing import ClassVar

from ldf_server.adapters.base import AdapterOptions, HttpAdapter
from ldf_server.adapters.ghent_ods import GhentOdsOptions, parse_ods
from ldf_server.records import Batch


class GhentOdsParkAndRide(HttpAdapter):
    name: ClassVar[str] = "ghent-ods-park-and-ride"
    Options: ClassVar[type[AdapterOptions]] = GhentOdsOptions

    def parse(self, payload: bytes, fetched_at: int) -> Batch:
        opts = self.options
        assert isinstance(opts, GhentOdsOptions)
        return parse_ods_park_and_ride(payload, city=opts.city, site_iris=opts.site_iris)


def parse_ods_park_and_ride(payload: bytes, *, city: str, site_iris: dict[str, str]) -> Batch:
    """Pure mapping of one park-and-ride payload to sites and members."""
    return parse_ods(payload, city=city, site_iris=site_iris, capacity="numberofspaces", vacant="availablespaces")
