"""The one way records enter a store: sanity rules first, then idempotent add."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ldf_server.records import Batch, sanity_problem
from ldf_server.store.memory import DatasetStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestResult:
    added: int = 0
    duplicates: int = 0
    late: int = 0
    expired: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason → count

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def ingest(store: DatasetStore, batch: Batch, *, source: str) -> IngestResult:
    """Store a batch's sites and the members that pass the sanity rules."""
    store.upsert_sites(batch.sites)
    now_ms = int(store.clock() * 1000)
    result = IngestResult()
    good = []
    for member in batch.members:
        problem = sanity_problem(member, store.sites.get(member.site), now_ms)
        if problem is None:
            good.append(member)
        else:
            result.rejected[problem] = result.rejected.get(problem, 0) + 1
    for problem in batch.problems:
        result.rejected["unreadable record"] = result.rejected.get("unreadable record", 0) + 1
        log.warning("feed %s: skipped %s", source, problem)
    added = store.add(good)
    result.added, result.duplicates, result.late, result.expired = added.added, added.duplicates, added.late, added.expired
    if result.rejected:
        log.warning("feed %s: rejected %s", source, result.rejected)
    if result.late:
        log.info("feed %s: refused %d late members (their pages are already immutable)", source, result.late)
    return result
