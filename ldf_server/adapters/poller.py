"""One poller per feed: interval, timeout, retries with jittered backoff, and a status.

A failing feed never stops the server or other feeds: errors are logged and counted,
the last good data stays served, and the status says how stale the feed is.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import aiohttp

from ldf_server.adapters.base import Adapter, FeedError, PayloadError
from ldf_server.store.ingest import IngestResult, ingest
from ldf_server.store.log import LogError
from ldf_server.store.memory import DatasetStore
from ldf_server.timeutil import format_instant

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FeedStatus:
    feed: str
    adapter: str
    dataset: str
    interval: float
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    polls_ok: int = 0
    polls_failed: int = 0
    members_added: int = 0
    records_rejected: int = 0
    late: int = 0  # refused: their page was already published as immutable (raise `grace` if this grows)
    conflicts: int = 0  # re-reported with other values for the same time (the first values stay)
    rejected_reasons: dict[str, int] = field(default_factory=dict)

    def stale(self, now: float) -> bool:
        """No good poll within three intervals (or none at all yet)."""
        return self.last_success is None or now - self.last_success > 3 * self.interval

    def as_json(self, now: float) -> dict:
        out = asdict(self)
        for key in ("last_attempt", "last_success"):
            out[key] = format_instant(int(out[key] * 1000)) if out[key] else None
        out["stale"] = self.stale(now)
        return out


class Poller:
    def __init__(
        self,
        adapter: Adapter,
        store: DatasetStore,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], "asyncio.Future[None]"] = asyncio.sleep,  # type: ignore[assignment]
    ) -> None:
        self.adapter = adapter
        self.store = store
        self.clock = clock
        self.sleep = sleep
        feed = adapter.feed
        self.status = FeedStatus(feed=feed.id, adapter=feed.adapter, dataset=feed.dataset, interval=feed.interval)
        self._wake = asyncio.Event()

    def backfill(self) -> int:
        """Load the adapter's history (synchronously, before serving)."""
        added = 0
        try:
            for batch in self.adapter.backfill(int(self.clock() * 1000)):
                added += self._record(ingest(self.store, batch, source=self.adapter.feed.id)).added
        except LogError as exc:
            self.status.last_error = f"storage: {exc}"
            log.error("feed %s: backfill stopped, the durable log cannot be written: %s", self.adapter.feed.id, exc)
        if added:
            log.info("feed %s: backfilled %d members", self.adapter.feed.id, added)
        return added

    async def run(self, session: aiohttp.ClientSession) -> None:
        feed = self.adapter.feed
        while True:
            started = self.clock()
            self.store.expect_update(feed.id, started + feed.interval)
            await self.poll_once(session)
            next_at = started + feed.interval
            self.store.expect_update(feed.id, next_at)
            await self._wait(max(0.0, next_at - self.clock()))

    def wake(self) -> None:
        """Poll now instead of at the next interval (e.g. on SIGHUP after a file was replaced)."""
        self._wake.set()

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
        self._wake.clear()

    async def poll_once(self, session: aiohttp.ClientSession) -> IngestResult | None:
        """One poll with retries; returns what was ingested, or None when every try failed."""
        feed = self.adapter.feed
        deadline = self.clock() + feed.interval  # retries never run into the next poll
        for attempt in range(feed.retries + 1):
            self.status.last_attempt = self.clock()
            try:
                payload = await asyncio.wait_for(self.adapter.fetch(session), timeout=feed.timeout)
                batch = self.adapter.parse(payload, int(self.clock() * 1000))
            except (FeedError, PayloadError, TimeoutError, aiohttp.ClientError) as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self.status.last_error = error
                log.warning("feed %s: attempt %d/%d failed: %s", feed.id, attempt + 1, feed.retries + 1, error)
                if attempt < feed.retries:
                    # Exponential backoff with jitter (50–100 % of the step), never longer than the interval.
                    delay = min(feed.interval, feed.backoff * 2**attempt) * random.uniform(0.5, 1.0)
                    if self.clock() + delay > deadline:
                        break  # no time left for another try before the next poll
                    await self.sleep(delay)
                continue
            except Exception:  # an adapter bug must not kill the poller
                self.status.last_error = "internal error in adapter (see log)"
                log.exception("feed %s: adapter raised unexpectedly", feed.id)
                break
            try:
                result = self._record(ingest(self.store, batch, source=feed.id))
            except LogError as exc:  # disk full or unwritable: nothing was stored, try again next poll
                self.status.last_error = f"storage: {exc}"
                break
            self.status.polls_ok += 1
            self.status.consecutive_failures = 0
            self.status.last_success = self.clock()
            self.status.last_error = None
            return result
        self.status.polls_failed += 1
        self.status.consecutive_failures += 1
        return None

    def _record(self, result: IngestResult) -> IngestResult:
        self.status.members_added += result.added
        self.status.records_rejected += result.rejected_total
        self.status.late += result.late
        self.status.conflicts += result.conflicts
        for reason, n in result.rejected.items():
            self.status.rejected_reasons[reason] = self.status.rejected_reasons.get(reason, 0) + n
        return result
