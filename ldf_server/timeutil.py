"""Instants as integer milliseconds since the epoch, always written in UTC with ``Z``.

Parsing and formatting are memoised: page URLs repeat, and these are on the hot path.

Local times without an offset are the classic source of daylight-saving bugs in page
names, so every instant that crosses a boundary (feeds, URLs, documents) is normalised
here and nowhere else.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import format_datetime
from functools import lru_cache

MS_PER_S = 1000
MIN_MS = -62135596800000  # 0001-01-01T00:00:00Z: the first instant UTC page names can spell
MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z

_INSTANT_CHARS = re.compile(r"^\d{4}-\d\d-\d\d[Tt ][0-9:.,]+([Zz]|[+-]\d\d(:?\d\d)?)?\Z")
_SPACED_OFFSET = re.compile(r"(?<=\d) (\d\d:?\d\d)\Z")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


class InstantError(ValueError):
    """A string that is not an ISO 8601 instant with a time zone."""


@lru_cache(maxsize=4096)
def parse_instant(text: str) -> int:
    """Parse an ISO 8601 date-time *with an offset* into epoch milliseconds."""
    text = text.strip()
    # An unencoded "+01:00" in a query string arrives as " 01:00": take it as meant.
    text = _SPACED_OFFSET.sub(r"+\1", text)
    if not _INSTANT_CHARS.match(text) or len(text) > 40:
        raise InstantError("expected an ISO 8601 date-time such as 2024-03-31T01:30:00Z")
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InstantError(f"{text!r} is not an ISO 8601 date-time") from exc
    if value.tzinfo is None:
        raise InstantError(f"{text!r} has no time zone; add Z or an offset such as +01:00")
    try:
        ms = to_ms(value)
    except (OverflowError, ValueError) as exc:
        raise InstantError(f"{text!r} is outside the supported range") from exc
    if not MIN_MS <= ms <= MAX_MS:  # an offset can push year 1 or 9999 outside what UTC can name
        raise InstantError(f"{text!r} is outside the supported range (years 1 to 9999, UTC)")
    return ms


def to_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


@lru_cache(maxsize=4096)
def format_instant(ms: int) -> str:
    """Canonical UTC form: ``2024-03-31T01:30:00Z``, with milliseconds only when present."""
    dt = from_ms(ms - ms % 1000)
    text = f"{dt.year:04d}" + dt.strftime("-%m-%dT%H:%M:%S")  # %Y does not pad years below 1000
    frac = ms % 1000
    return f"{text}.{frac:03d}Z" if frac else text + "Z"


def format_day(ms: int) -> str:
    """The UTC calendar day of an instant: ``2024-03-31``."""
    dt = from_ms(ms)
    return f"{dt.year:04d}" + dt.strftime("-%m-%d")


def http_date(seconds: float) -> str:
    """An RFC 9110 HTTP-date (for Last-Modified)."""
    return format_datetime(datetime.fromtimestamp(int(seconds), tz=timezone.utc), usegmt=True)


def parse_http_date(text: str) -> float | None:
    """Seconds since the epoch of an HTTP-date, or None when it does not parse."""
    from email.utils import parsedate_to_datetime

    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def parse_duration(value: object) -> float:
    """Seconds of a duration written as a number of seconds or ``500ms``, ``30s``, ``5m``, ``24h``, ``7d``, ``2w``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 24h or 7d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 5m, 24h or 7d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def iso_duration(seconds: float) -> str:
    """xsd:duration of whole seconds, in the largest exact unit (``P7D``, ``PT6H``)."""
    s = int(seconds)
    if s % 86400 == 0:
        return f"P{s // 86400}D"
    if s % 3600 == 0:
        return f"PT{s // 3600}H"
    if s % 60 == 0:
        return f"PT{s // 60}M"
    return f"PT{s}S"
