"""Public buildings' accessibility from rows of the regional accessibility database export (CSV).

One row per building: door widths in centimetres and the entrance verdict
``O_INKD_Inkomdeur_`` (PLUS / PLMN / MIN: accessible / with help / not accessible).
Quirks handled here: empty cells (a building without a lift has no lift door width);
registry identifiers (``GebouwId``, ``AdresId``) only for some buildings; a byte order
mark and ``;`` as separator, as spreadsheet exports write them; ``#`` comment lines
before the header. A member's time is when we read the file (``LaatstGewijzigd`` is the
source's own modification date and goes into the building's description), and the
accessibility pilot stores a member only when a building's data changed.
"""

from __future__ import annotations

import csv
import io
import math
from typing import ClassVar

from ldf_server.adapters.base import AdapterOptions, PayloadError
from ldf_server.adapters.buildings import building_site, described, read_time, registry_id, source_instant
from ldf_server.adapters.sources import FileOrUrlAdapter, FileOrUrlOptions
from ldf_server.records import VERDICTS, Batch, Member, Site, building_member

NAME, STREET, NUMBER, POST_CODE, MUNICIPALITY = (
    "AccommodatieNaam", "AccommodatieStraat", "AccommodatieNummer", "AccommodatiePostCode", "AccommodatieGemeente",
)
BUILDING_ID, ADDRESS_ID, LAT, LON, MODIFIED = "GebouwId", "AdresId", "Latitude", "Longitude", "LaatstGewijzigd"
VERDICT = "O_INKD_Inkomdeur_"
WIDTHS = {"entrance_width": "InkomdeurBreedteCm", "elevator_width": "LiftDeurBreedteCm", "toilet_width": "ToiletDeurBreedteCm"}
REQUIRED = (NAME, STREET, NUMBER, POST_CODE, MUNICIPALITY, VERDICT, *WIDTHS.values())


class AccessibilityCsv(FileOrUrlAdapter):
    name: ClassVar[str] = "accessibility-csv"
    Options: ClassVar[type[AdapterOptions]] = FileOrUrlOptions
    accept: ClassVar[str] = "text/csv"

    def parse(self, payload: bytes, fetched_at: int) -> Batch:
        return parse_accessibility_csv(payload, fetched_at)


def parse_accessibility_csv(payload: bytes, fetched_at: int) -> Batch:
    """Pure mapping of one export to one site and one member (read at ``fetched_at``) per building."""
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not UTF-8 text: {exc}") from None
    lines = text.splitlines(keepends=True)
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    if not lines:
        raise PayloadError("empty file: no CSV header")
    header_line = lines[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.DictReader(io.StringIO("".join(lines)), delimiter=delimiter, strict=True)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise PayloadError(f"not the expected CSV: missing column(s) {', '.join(missing)}")
    reader.fieldnames = header
    time = read_time(fetched_at)
    batch = Batch()
    seen: set[str] = set()
    try:
        for line_no, row in enumerate(reader, start=2):
            try:
                site, member = _row(row, time)
            except (KeyError, TypeError, ValueError) as exc:
                batch.problems.append(f"row {line_no} ({(row.get(NAME) or '').strip() or '?'}): {exc}")
                continue
            if site.key in seen:
                batch.problems.append(f"row {line_no}: building {site.key} appears twice; the first row is kept")
                continue
            seen.add(site.key)
            batch.sites.append(site)
            batch.members.append(member)
    except csv.Error as exc:
        raise PayloadError(f"not valid CSV: {exc}") from None
    if batch.problems and not batch.members:
        raise PayloadError("no row could be read: " + "; ".join(batch.problems[:3]))
    return batch


def _row(row: dict[str | None, str | list[str] | None], time: int) -> tuple[Site, Member]:
    if None in row:
        raise ValueError("more cells than columns")
    if any(v is None for v in row.values()):
        raise ValueError("fewer cells than columns")
    cells = {str(k): str(v).strip() for k, v in row.items()}
    verdict = cells[VERDICT].upper() or None
    if verdict is not None and verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {cells[VERDICT]!r} (expected {', '.join(VERDICTS)})")
    widths = {arg: _width(cells[column], column) for arg, column in WIDTHS.items()}
    modified = cells.get(MODIFIED)
    site = building_site(
        name=cells[NAME],
        building_id=registry_id(cells.get(BUILDING_ID)),
        address_id=registry_id(cells.get(ADDRESS_ID)),
        municipality=cells[MUNICIPALITY],
        street=cells[STREET],
        number=cells[NUMBER],
        post_code=cells[POST_CODE],
        lat=_coordinate(cells.get(LAT), LAT),
        lon=_coordinate(cells.get(LON), LON),
        modified=source_instant(modified) if modified else None,
    )
    return site, building_member(site.key, time, verdict=verdict, description=described(site), **widths)


def _width(cell: str, column: str) -> int | None:
    if not cell:
        return None
    if not cell.isdigit():
        raise ValueError(f"{column} is not a width in whole centimetres: {cell!r}")
    return int(cell)


def _coordinate(cell: str | None, column: str) -> float | None:
    if not cell:
        return None
    value = float(cell.replace(",", "."))
    if not math.isfinite(value):
        raise ValueError(f"{column} is not a number: {cell!r}")
    return value
