"""The one way records enter a store: sanity rules first, then idempotent add."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ldf_server.pilots import PILOTS
from ldf_server.records import Batch, common_problem
from ldf_server.store.memory import DatasetStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestResult:
    added: int = 0
    unchanged: int = 0
    duplicates: int = 0
    conflicts: int = 0
    late: int = 0
    expired: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason → count

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def ingest(store: DatasetStore, batch: Batch, *, source: str) -> IngestResult:
    """Store a batch's sites and the members that pass the sanity rules."""
    pilot = PILOTS[store.pilot]
    store.upsert_sites(batch.sites)
    now_ms = int(store.clock() * 1000)
    result = IngestResult()
    good = []
    for member in batch.members:
        site = store.sites.get(member.site)
        problem = common_problem(member, site, now_ms) or pilot.check(member, site)  # type: ignore[arg-type]
        if problem is not None:
            result.rejected[problem] = result.rejected.get(problem, 0) + 1
            continue
        if not pilot.publish_unchanged:
            newest = store.newest(member.site, member.series)
            if newest is not None and newest.time <= member.time and newest.values == member.values:
                result.unchanged += 1
                continue
        good.append(member)
    for problem in batch.problems:
        result.rejected["unreadable record"] = result.rejected.get("unreadable record", 0) + 1
        log.warning("feed %s: skipped %s", source, problem)
    added = store.add(good)
    result.added, result.duplicates, result.late, result.expired = added.added, added.duplicates, added.late, added.expired
    result.conflicts = added.conflicts
    if result.rejected:
        log.warning("feed %s: rejected %s", source, result.rejected)
    if result.late:
        log.warning("feed %s: refused %d late members (their pages are already published as immutable)", source, result.late)
    if result.conflicts:
        log.warning("feed %s: %d records revise values already published for the same time; the first values stay", source, result.conflicts)
    return result
