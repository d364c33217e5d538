"""Reading the Ghent ODS fixtures *independently* of the adapter, to derive what tests expect.

Nothing here imports the adapter: expectations come from the recorded files via ``json`` and
``datetime``, so a test compares the adapter with a second reading of the same bytes.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ghent_ods"

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FUTURE_TOLERANCE_MS = 5 * 60 * 1000  # what the store tolerates ahead of its clock (see the brief)

# The IRIs Ghent minted for its garages (upstream-samples/README.md), keyed by the feed's `name`.
GHENT_SITE_IRIS = {
    "Sint-Michiels": "https://stad.gent/id/parking/P7",
    "Sint-Pietersplein": "https://stad.gent/id/parking/P10",
    "Vrijdagmarkt": "https://stad.gent/id/parking/P1",
    "Savaanstraat": "https://stad.gent/id/parking/P4",
    "Ramen": "https://stad.gent/id/parking/P8",
    "Reep": "https://stad.gent/id/parking/P2",
}


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def records(name: str) -> list[dict[str, Any]]:
    return json.loads(raw(name))["records"]


def instant_ms(text: str) -> int:
    """Epoch ms of an ISO date-time that carries an offset (fails loudly if it has none)."""
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"{text!r} has no offset"
    return (value - EPOCH) // timedelta(milliseconds=1)


def utc_text(ms: int) -> str:
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%SZ")


def has_offset(text: Any) -> bool:
    try:
        return datetime.fromisoformat(str(text)).tzinfo is not None
    except ValueError:
        return False


def is_closed(fields: dict[str, Any]) -> bool:
    return fields.get("isopennow") == 0 or fields.get("temporaryclosed") == 1


def expected_position(record: dict[str, Any]) -> tuple[float, float]:
    """(lat, lon) from the first field that has it: location [lat, lon], geometry [lon, lat], display point."""
    fields = record["fields"]
    if isinstance(fields.get("location"), list):
        lat, lon = fields["location"]
        return lat, lon
    geometry = record.get("geometry")
    if isinstance(geometry, dict):
        lon, lat = geometry["coordinates"]
        return lat, lon
    point = json.loads(fields["locationanddimension"])["coordinatesForDisplay"]
    return point["latitude"], point["longitude"]


def judge(record: dict[str, Any], now_ms: int) -> str | None:
    """Why a record must not become a member (None: it must). Coarse reasons, not the server's words."""
    fields = record.get("fields")
    if not isinstance(fields, dict):
        return "unreadable"
    vacant, total = fields.get("availablecapacity"), fields.get("totalcapacity")
    if type(vacant) is not int or type(total) is not int or not has_offset(fields.get("lastupdate")):
        return "unreadable"
    if fields.get("location") is None and not isinstance(record.get("geometry"), (dict, type(None))):
        return "unreadable"
    if vacant < 0 or vacant > total:
        return "impossible count"
    if instant_ms(fields["lastupdate"]) > now_ms + FUTURE_TOLERANCE_MS:
        return "future"
    return None
