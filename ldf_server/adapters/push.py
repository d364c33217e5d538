"""Observations pushed by a city's own sensors: JSON records (or JSON-LD nodes) → members.

Plain JSON records name their site by key (``"site": "gent/korenmarkt"``) and use the
terms of the shared context for values; JSON-LD is first compacted against that context,
so a record may name its site by IRI (``isVersionOf`` / ``hasFeatureOfInterest``). Every
record is checked field by field and every problem is reported with the record's index.
"""

from __future__ import annotations

from typing import Any, Callable

from pyld import jsonld

from ldf_server.pilots import Pilot
from ldf_server.records import COUNTED, OPENING_STATUSES, PARKING_STATUSES, Member, count_member, parking_member
from ldf_server.timeutil import InstantError, parse_instant
from ldf_server.vocabularies import context

_PARKING_FIELDS = {"site", "isVersionOf", "observedAt", "vacantSpaces", "siteStatus", "openingStatus"}
_CROWD_FIELDS = {"site", "hasFeatureOfInterest", "resultTime", "observedProperty", "hasSimpleResult", "start", "end",
                 "phenomenonTime", "direction", "@type"}


class PushFormatError(ValueError):
    """The body as a whole cannot be read as records (not a list or object, bad JSON-LD)."""


def records_of(doc: Any, *, json_ld: bool, own_context_url: str) -> list[Any]:
    """The list of records in a pushed body (one object, a list, or a JSON-LD @graph)."""
    if json_ld:
        doc = _compact(doc, own_context_url)
        if isinstance(doc, dict) and "@graph" in doc:
            doc = doc["@graph"]
        elif isinstance(doc, dict):
            doc = {k: v for k, v in doc.items() if k != "@context"}
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list):
        return doc
    raise PushFormatError("the body must be a JSON object or an array of objects")


def _compact(doc: Any, own_context_url: str) -> Any:
    refused: list[str] = []

    def loader(url: str, options: dict | None = None) -> dict:
        if url == own_context_url:
            return {"contextUrl": None, "documentUrl": url, "document": {"@context": context()}}
        refused.append(url)
        raise PushFormatError(url)

    try:
        return jsonld.compact(doc, {"@context": context()}, {"documentLoader": loader})
    except Exception as exc:  # pyld wraps everything in JsonLdError
        if refused:
            raise PushFormatError(f"remote contexts other than {own_context_url} are not fetched: {refused[0]}") from None
        raise PushFormatError(f"not valid JSON-LD: {str(exc).splitlines()[0][:300]}") from None


def parse_records(
    records: list[Any], *, pilot: Pilot, resolve_site: Callable[[str], str | None]
) -> tuple[list[Member], list[dict[str, Any]]]:
    """Members of the valid records, and ``[{"index": i, "errors": [...]}, ...]`` for the others."""
    members: list[Member] = []
    errors: list[dict[str, Any]] = []
    parse = _parking if pilot.name == "parking" else _crowd
    for index, record in enumerate(records):
        problems: list[str] = []
        member = None
        if not isinstance(record, dict):
            problems.append("a record must be a JSON object")
        else:
            member = parse(record, resolve_site, problems)
        if problems or member is None:
            errors.append({"index": index, "errors": problems or ["unreadable record"]})
        else:
            members.append(member)
    return members, errors


def _site(record: dict, link_term: str, resolve_site: Callable[[str], str | None], problems: list[str]) -> str | None:
    ref = record.get("site", record.get(link_term))
    if isinstance(ref, dict):
        ref = ref.get("@id")
    if not isinstance(ref, str) or not ref:
        problems.append(f"site: give the site's key as 'site' (or its IRI as '{link_term}')")
        return None
    key = resolve_site(ref)
    if key is None:
        problems.append(f"site: {ref!r} is not a known site of this source")
    return key


def _time(record: dict, term: str, problems: list[str], *, required: bool = True) -> int | None:
    value = record.get(term)
    if value is None:
        if required:
            problems.append(f"{term}: required (an ISO 8601 date-time with a time zone)")
        return None
    if isinstance(value, dict):
        value = value.get("@value")
    if not isinstance(value, str):
        problems.append(f"{term}: must be an ISO 8601 date-time string")
        return None
    try:
        return parse_instant(value)
    except InstantError as exc:
        problems.append(f"{term}: {exc}")
        return None


def _unknown(record: dict, allowed: set[str], problems: list[str]) -> None:
    extra = sorted(k for k in record if k not in allowed and k not in ("@id", "@context"))
    if extra:
        problems.append(f"unknown field(s) {extra}; allowed: {sorted(allowed - {'@type'})}")


def _parking(record: dict, resolve_site: Callable[[str], str | None], problems: list[str]) -> Member | None:
    _unknown(record, _PARKING_FIELDS, problems)
    site = _site(record, "isVersionOf", resolve_site, problems)
    t = _time(record, "observedAt", problems)
    vacant = record.get("vacantSpaces")
    if not isinstance(vacant, int) or isinstance(vacant, bool) or vacant < 0:
        problems.append("vacantSpaces: required, a whole number ≥ 0")
    status, opening = record.get("siteStatus"), record.get("openingStatus")
    if status is not None and status not in PARKING_STATUSES:
        problems.append(f"siteStatus: one of {list(PARKING_STATUSES)}")
    if opening is not None and opening not in OPENING_STATUSES:
        problems.append(f"openingStatus: one of {list(OPENING_STATUSES)}")
    if problems or site is None or t is None:
        return None
    return parking_member(site, t, vacant, status=status, opening=opening)


def _crowd(record: dict, resolve_site: Callable[[str], str | None], problems: list[str]) -> Member | None:
    _unknown(record, _CROWD_FIELDS, problems)
    site = _site(record, "hasFeatureOfInterest", resolve_site, problems)
    t = _time(record, "resultTime", problems)
    counted = record.get("observedProperty")
    if isinstance(counted, dict):
        counted = counted.get("@id")
    if counted not in COUNTED:
        problems.append(f"observedProperty: one of {list(COUNTED)}")
    count = record.get("hasSimpleResult")
    if not isinstance(count, (int, float)) or isinstance(count, bool) or count < 0 or count != count or count == float("inf"):
        problems.append("hasSimpleResult: required, a number ≥ 0")
    start, end = _time(record, "start", problems, required=False), _time(record, "end", problems, required=False)
    if isinstance(record.get("phenomenonTime"), dict):
        span = record["phenomenonTime"]
        begins, ends = span.get("hasBeginning"), span.get("hasEnd")
        start = _time(begins if isinstance(begins, dict) else {}, "inXSDDateTimeStamp", problems)
        end = _time(ends if isinstance(ends, dict) else {}, "inXSDDateTimeStamp", problems)
    if (start is None) != (end is None) or (start is not None and end is not None and start >= end):
        problems.append("start/end: give both, with start before end")
    direction = record.get("direction")
    if direction is not None and (not isinstance(direction, str) or not direction.isidentifier()):
        problems.append("direction: a short name such as 'in', 'out', 'lft' or 'rgt'")
    if problems or site is None or t is None:
        return None
    series = f"{counted}-{direction}" if direction else str(counted)
    return count_member(site, series, t, count, counted=str(counted), start=start, end=end, direction=direction)
