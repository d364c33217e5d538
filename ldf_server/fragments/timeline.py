"""Epoch-aligned time windows grouped per UTC day, and when they close.

Windows are aligned to the Unix epoch in UTC, so page names never depend on local time
or daylight saving. A window is *closed* once its end plus a grace period for late data
has passed; only then is it served as immutable.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Timeline:
    window_ms: int
    grace_ms: int

    def window_start(self, t: int) -> int:
        return t - t % self.window_ms

    def is_window_start(self, t: int) -> bool:
        return t % self.window_ms == 0

    @staticmethod
    def day_start(t: int) -> int:
        return t - t % DAY_MS

    def window_closed(self, start: int, now: int) -> bool:
        return now >= start + self.window_ms + self.grace_ms

    def day_closed(self, day: int, now: int) -> bool:
        return now >= day + DAY_MS + self.grace_ms

    def windows_of_day(self, day: int) -> range:
        return range(day, day + DAY_MS, self.window_ms)
