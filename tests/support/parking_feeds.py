"""Reading the parking-feed fixtures *independently* of the adapters, to derive what tests expect.

Nothing here imports an adapter: each payload is read a second time with ``json``,
``xml.etree`` and ``datetime`` straight from the feed's documented shape, so a test compares
the adapter with a second reading of the same bytes. A record is *good* (must become a
member), *unreadable* (the adapter must skip it with a problem) or *impossible* (readable,
but the store's parking rules must refuse it: a negative count, more vacant than capacity).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
BRUSSELS = ZoneInfo("Europe/Brussels")
DATEX = "{http://datex2.eu/schema/2/2_0}"

# The IRIs Ghent minted (upstream-samples/README.md), by the name its DATEX II and datatank feeds use.
GHENT_IRIS = {
    "P07 Sint-Michiels": "https://stad.gent/id/parking/P7",
    "P10 Sint-Pietersplein": "https://stad.gent/id/parking/P10",
    "P01 Vrijdagmarkt": "https://stad.gent/id/parking/P1",
    "P04 Savaanstraat": "https://stad.gent/id/parking/P4",
    "P08 Ramen": "https://stad.gent/id/parking/P8",
    "P02 Reep": "https://stad.gent/id/parking/P2",
}


def raw(feed: str, name: str) -> bytes:
    return (FIXTURES / feed / name).read_bytes()


def ms(value: datetime) -> int:
    return (value - EPOCH) // timedelta(milliseconds=1)


def utc(ms_: int) -> str:
    return (EPOCH + timedelta(milliseconds=ms_)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Expected:
    good: dict[str, tuple[int, int]] = field(default_factory=dict)  # label → (time ms, vacant)
    unreadable: int = 0
    impossible: int = 0

    def judge(self, label: str, time: int, vacant: int, capacity: int | None) -> None:
        if vacant < 0 or (capacity is not None and vacant > capacity):
            self.impossible += 1
        else:
            assert label not in self.good, f"fixture has {label!r} twice"
            self.good[label] = (time, vacant)

    def members(self) -> set[tuple[str, int, int]]:
        return {(label, t, v) for label, (t, v) in self.good.items()}


def _is_int(value: Any) -> bool:
    return type(value) is int


def _aware_ms(text: Any) -> int | None:
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return ms(value) if value.tzinfo is not None else None


def datex2(table: bytes, status: bytes) -> Expected:
    sites = {}
    for site in ET.fromstring(table).iter(f"{DATEX}parkingSite"):
        name = site.find(f"{DATEX}parkingName/{DATEX}values/{DATEX}value").text  # type: ignore[union-attr]
        sites[site.get("id")] = (name, int(site.findtext(f"{DATEX}parkingNumberOfSpaces")))  # type: ignore[arg-type]
    exp = Expected()
    for record in ET.fromstring(status).iter(f"{DATEX}parkingRecordStatus"):
        uuid = record.find(f"{DATEX}parkingRecordReference").get("id")  # type: ignore[union-attr]
        vacant = record.findtext(f"{DATEX}parkingOccupancy/{DATEX}parkingNumberOfVacantSpaces")
        when = _aware_ms(record.findtext(f"{DATEX}parkingStatusOriginTime"))
        if uuid not in sites or vacant is None or when is None:
            exp.unreadable += 1
            continue
        name, capacity = sites[uuid]
        exp.judge(name, when, int(vacant), capacity)
    return exp


def ods_park_and_ride(payload: bytes) -> Expected:
    exp = Expected()
    for record in json.loads(payload)["records"]:
        f = record["fields"]
        vacant, capacity, when = f.get("availablespaces"), f.get("numberofspaces"), _aware_ms(f.get("lastupdate"))
        if not (_is_int(vacant) and _is_int(capacity)) or when is None:
            exp.unreadable += 1
            continue
        exp.judge(f["name"], when, vacant, capacity)
    return exp


def datatank_local(text: str) -> int:
    """``dd/mm/yyyy HH:MM:SS`` as Brussels wall-clock time (first occurrence when ambiguous)."""
    return ms(datetime.strptime(text, "%d/%m/%Y %H:%M:%S").replace(tzinfo=BRUSSELS))


def datatank(payload: bytes) -> Expected:
    exp = Expected()
    for record in json.loads(payload):
        status = record["parkingStatus"]
        vacant, capacity = status.get("availableCapacity"), status.get("totalCapacity")
        stated = status["lastModifiedDate"]
        try:
            when = datatank_local(stated) if "/" in stated else _aware_ms(stated)
        except ValueError:
            when = None
        if not (_is_int(vacant) and _is_int(capacity)) or when is None:
            exp.unreadable += 1
            continue
        exp.judge(record["name"], when, vacant, capacity)
    return exp


def kortrijk(payload: bytes, poll_ms: int) -> Expected:
    exp = Expected()
    for parking in ET.fromstring(payload).findall("parking"):
        name, vacant, capacity = (parking.text or "").strip(), parking.get("vrij"), parking.get("capaciteit")
        if not name or vacant is None or not re.fullmatch(r"-?\d+", vacant) or not (capacity or "").isdigit():
            exp.unreadable += 1
            continue
        exp.judge(name, poll_ms - poll_ms % 1000, int(vacant), int(capacity))  # type: ignore[arg-type]
    return exp


def ixor(payload: bytes, poll_ms: int) -> Expected:
    exp = Expected()
    for parking in json.loads(payload)["parkings"]:
        vacant, capacity = parking.get("availableCapacity"), parking.get("totalCapacity")
        if not (_is_int(vacant) and _is_int(capacity)):
            exp.unreadable += 1
            continue
        exp.judge(parking["name"], poll_ms - poll_ms % 1000, vacant, capacity)
    return exp
