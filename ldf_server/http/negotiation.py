"""Proactive content negotiation over ``Accept`` and ``Accept-Encoding`` (RFC 9110 §12)."""

from __future__ import annotations

from functools import lru_cache


def _q(params: list[str]) -> float:
    for p in params:
        name, _, value = p.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


@lru_cache(maxsize=512)
def parse_accept(header: str) -> tuple[tuple[str, str, float], ...]:
    """``text/turtle;q=0.5, */*`` → ((type, subtype, q), ...); malformed ranges are ignored."""
    ranges = []
    for part in header.split(",")[:64]:
        media, *params = part.split(";")
        kind, _, sub = media.strip().lower().partition("/")
        if kind and sub:
            ranges.append((kind, sub, _q(params)))
    return tuple(ranges)


def choose(header: str | None, offers: tuple[str, ...]) -> str | None:
    """The offer the client prefers (server order breaks ties); None when nothing is acceptable."""
    return _choose(header, offers if isinstance(offers, tuple) else tuple(offers))


@lru_cache(maxsize=1024)  # clients send few distinct Accept headers; this runs on every request
def _choose(header: str | None, offers: tuple[str, ...]) -> str | None:
    if not header or not header.strip():
        return offers[0]
    ranges = parse_accept(header)
    if not ranges:
        return offers[0]
    best, best_q = None, 0.0
    for offer in offers:
        kind, _, sub = offer.partition("/")
        q, specificity = 0.0, -1
        for rk, rs, rq in ranges:
            if rk == kind and rs == sub:
                s = 2
            elif rk == kind and rs == "*":
                s = 1
            elif rk == "*" and rs == "*":
                s = 0
            else:
                continue
            if s > specificity:
                q, specificity = rq, s
        if q > best_q:
            best, best_q = offer, q
    return best


@lru_cache(maxsize=256)
def accepts_gzip(header: str | None) -> bool:
    if not header:
        return False
    star = None
    for part in header.split(",")[:32]:
        coding, *params = part.split(";")
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            return _q(params) > 0
        if coding == "*":
            star = _q(params) > 0
    return bool(star)
