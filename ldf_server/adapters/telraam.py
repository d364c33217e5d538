"""Telraam hourly traffic counts per road segment (``/v1/reports/traffic``): a crowdedness source.

Quirks of the real feed handled here: ``date`` is the *start* of the counted hour, in UTC;
counts are floats, already scaled up by ``uptime`` (the fraction of the hour the camera
was counting), so they stay floats; ``_lft``/``_rgt`` are the two directions of travel.
An hour with a low uptime is published with ``reliable: false``, never dropped: a camera
that was down (uptime 0, counts 0) is information too.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
import orjson
from pydantic import Field

from ldf_server.adapters.base import Adapter, AdapterOptions, FeedError, PayloadError, http_get
from ldf_server.config import Duration
from ldf_server.records import Batch, Member, Site, count_member
from ldf_server.timeutil import to_ms

HOUR_MS = 3600 * 1000
CITY = "telraam"
# Telraam's field prefix → the observed property of ldf-server's vocabulary.
MODES = {"pedestrian": "pedestrians", "bike": "cyclists", "car": "cars", "heavy": "heavyVehicles"}
DIRECTIONS = ("lft", "rgt")
DECIMALS = 3


class TelraamOptions(AdapterOptions):
    url: str = Field(pattern=r"^https?://")
    # Name of the environment variable holding the API key (sent as X-Api-Key): never the key itself.
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # Hours with a lower uptime are published with reliable = false.
    min_uptime: float = Field(default=0.5, ge=0, le=1)
    # Segment id → label (e.g. the street name); others are labelled "Telraam segment <id>".
    segments: dict[int, str] = {}
    # The real API wants a POST naming one segment and a time range: set `segment` to ask for
    # the last `lookback` of hourly counts; without it the URL is fetched with a plain GET
    # (a proxy or a recorded report).
    segment: int | None = None
    lookback: Duration = Field(default=6 * 3600.0, ge=3600)


class TelraamTraffic(Adapter):
    name: ClassVar[str] = "telraam-traffic"
    Options: ClassVar[type[AdapterOptions]] = TelraamOptions

    async def fetch(self, session: aiohttp.ClientSession) -> bytes:
        opts = self.options
        assert isinstance(opts, TelraamOptions)
        headers = {"Accept": "application/json"}
        if opts.api_key_env:
            key = os.environ.get(opts.api_key_env)
            if not key:
                raise FeedError(f"environment variable {opts.api_key_env} is not set")
            headers["X-Api-Key"] = key
        body = None
        if opts.segment is not None:
            now = time.time()
            body = {
                "level": "segments",
                "format": "per-hour",
                "id": str(opts.segment),
                "time_start": time.strftime("%Y-%m-%d %H:00:00Z", time.gmtime(now - opts.lookback)),
                "time_end": time.strftime("%Y-%m-%d %H:00:00Z", time.gmtime(now)),
            }
        return await http_get(session, opts.url, timeout=self.feed.timeout, headers=headers, json_body=body)

    def parse(self, payload: bytes, fetched_at: int) -> Batch:
        opts = self.options
        assert isinstance(opts, TelraamOptions)
        return parse_traffic_report(payload, min_uptime=opts.min_uptime, segments=opts.segments)


def site_key(segment_id: int) -> str:
    return f"{CITY}/{segment_id}"


def parse_traffic_report(payload: bytes, *, min_uptime: float = 0.5, segments: dict[int, str] | None = None) -> Batch:
    """Pure mapping of one traffic report to one site per segment and twelve counts per hour."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    report = doc.get("report") if isinstance(doc, dict) else None
    if not isinstance(report, list):
        raise PayloadError("no 'report' list in the payload")
    labels = segments or {}
    batch = Batch()
    seen: set[int] = set()
    for index, record in enumerate(report):
        try:
            segment, members = _record(record, min_uptime)
        except (KeyError, TypeError, ValueError) as exc:
            batch.problems.append(f"report {index}: {type(exc).__name__}: {exc}")
            continue
        if segment not in seen:
            seen.add(segment)
            label = labels.get(segment) or f"Telraam segment {segment}"
            batch.sites.append(Site(key=site_key(segment), label=label, city=CITY))
        batch.members.extend(members)
    if report and not batch.members:
        raise PayloadError("no report could be read: " + "; ".join(batch.problems[:3]))
    return batch


def _record(record: Any, min_uptime: float) -> tuple[int, list[Member]]:
    if not isinstance(record, dict):
        raise TypeError("a report is not an object")
    interval = record["interval"]
    if interval != "hourly":
        raise ValueError(f"interval {interval!r} is not 'hourly'")
    segment = record["segment_id"]
    if isinstance(segment, bool) or not isinstance(segment, int) or segment < 0:
        raise ValueError(f"segment_id is not an identifier: {segment!r}")
    start_dt = datetime.fromisoformat(str(record["date"]).replace("Z", "+00:00"))
    if start_dt.tzinfo is None:
        raise ValueError("date has no offset")
    start = to_ms(start_dt)
    if start % HOUR_MS:
        raise ValueError(f"date {record['date']!r} is not the start of an hour")
    end = start + HOUR_MS
    uptime = _number(record, "uptime")
    if not 0 <= uptime <= 1:
        raise ValueError(f"uptime {uptime!r} is not a fraction")
    reliable = uptime >= min_uptime
    key = site_key(segment)
    members = []
    for field, counted in MODES.items():
        for direction in (None, *DIRECTIONS):
            name = field if direction is None else f"{field}_{direction}"
            members.append(
                count_member(
                    key,
                    counted if direction is None else f"{counted}-{direction}",
                    end,
                    round(_number(record, name), DECIMALS),
                    counted=counted,
                    start=start,
                    end=end,
                    direction=direction,
                    uptime=uptime,
                    reliable=reliable,
                )
            )
    return segment, members


def _number(record: dict[str, Any], field: str) -> float:
    value = record[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} is not a number: {value!r}")
    return float(value)
