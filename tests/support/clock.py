"""A settable clock, so that which pages are closed is decided by the test, not by the wall."""

from __future__ import annotations

from ldf_server.timeutil import parse_instant


class FakeClock:
    def __init__(self, start: str | float) -> None:
        self.now = parse_instant(start) / 1000 if isinstance(start, str) else float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, instant: str) -> None:
        self.now = parse_instant(instant) / 1000
