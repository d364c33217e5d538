"""Replays recorded payloads of a real feed, re-timed to the present.

The default config uses this to show Ghent's real record shapes offline: each poll takes
the next recorded snapshot (cycling), parses it with the real feed's parser, and shifts
its times so that the newest record of the snapshot is observed at the poll time.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import ClassVar, Literal

import aiohttp
import orjson

from ldf_server.adapters.base import Adapter, AdapterOptions, FeedError, PayloadError
from ldf_server.adapters.ghent_ods import parse_ods_garages
from ldf_server.records import Batch, Member

_PARSERS = {"ghent-ods-garages": parse_ods_garages}


class ReplayOptions(AdapterOptions):
    # A bundled recording (``ghent_ods_replay.json``) or a path to one:
    # {"snapshots": [payload, payload, ...]} with payloads in the recorded feed's format.
    recording: str = "ghent_ods_replay.json"
    format: Literal["ghent-ods-garages"] = "ghent-ods-garages"  # a key of _PARSERS: checked at start-up
    city: str = "gent"
    site_iris: dict[str, str] = {}


class Replay(Adapter):
    name: ClassVar[str] = "replay"
    Options: ClassVar[type[AdapterOptions]] = ReplayOptions

    def __init__(self, feed, options) -> None:  # type: ignore[no-untyped-def]
        super().__init__(feed, options)
        self._snapshots: list[bytes] | None = None
        self._next = 0

    def _load(self) -> list[bytes]:
        opts = self.options
        assert isinstance(opts, ReplayOptions)
        path = Path(opts.recording)
        try:
            if path.is_absolute() or path.exists():
                raw = path.read_bytes()
            else:
                raw = resources.files("ldf_server").joinpath("data", opts.recording).read_bytes()
            snapshots = orjson.loads(raw)["snapshots"]
        except (OSError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise FeedError(f"cannot read recording {opts.recording}: {exc}") from exc
        if not snapshots:
            raise FeedError(f"recording {opts.recording} has no snapshots")
        return [orjson.dumps(s) for s in snapshots]

    async def fetch(self, session: aiohttp.ClientSession) -> bytes:
        if self._snapshots is None:
            self._snapshots = self._load()
        payload = self._snapshots[self._next % len(self._snapshots)]
        self._next += 1
        return payload

    def parse(self, payload: bytes, fetched_at: int) -> Batch:
        opts = self.options
        assert isinstance(opts, ReplayOptions)
        parser = _PARSERS.get(opts.format)
        if parser is None:
            raise PayloadError(f"no replay parser for format {opts.format!r}")
        batch = parser(payload, city=opts.city, site_iris=opts.site_iris)
        if batch.members:
            shift = (fetched_at - fetched_at % 1000) - max(m.time for m in batch.members)
            batch.members = [Member(m.site, m.time + shift, m.values) for m in batch.members]
        return batch
