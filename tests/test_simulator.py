"""The offline simulator: realistic, deterministic, and a full day of history at start-up."""

from __future__ import annotations

from ldf_server.adapters.registry import create_adapter
from ldf_server.config import FeedConfig
from ldf_server.timeutil import parse_instant

HOUR = 3_600_000


def simulator(**options):  # type: ignore[no-untyped-def]
    opts = {"cities": ["leuven", "kortrijk"], "seed": 1, "backfill": "24h", **options}
    return create_adapter(FeedConfig(id="sim", adapter="parking-simulator", dataset="parking", interval=30, options=opts))


def test_garages_fill_by_day_and_empty_by_night():
    sim = simulator()
    day = parse_instant("2026-03-31T00:00:00Z")  # a Tuesday
    for site in sim.sites:
        night = [sim.occupancy(site, day + h * HOUR) for h in (2, 3)]
        midday = [sim.occupancy(site, day + h * HOUR) for h in (10, 11, 12)]
        assert max(night) < 0.25, site.key
        assert max(midday) > max(night) + 0.2, site.key
        assert all(0.0 <= x <= 1.0 for x in night + midday)


def test_values_are_deterministic_and_within_capacity():
    t = parse_instant("2026-03-31T11:00:00Z")
    a, b = simulator().parse(b"", t), simulator().parse(b"", t)
    assert [m.values for m in a.members] == [m.values for m in b.members]
    capacity = {s.key: s.capacity for s in a.sites}
    for m in a.members:
        assert 0 <= m.values["vacantSpaces"] <= capacity[m.site]
        assert m.time == t
    other_seed = simulator(seed=2).parse(b"", t)
    assert [m.values for m in other_seed.members] != [m.values for m in a.members]


def test_backfill_covers_the_configured_span_at_the_poll_interval():
    sim = simulator()
    now = parse_instant("2026-03-31T12:00:10Z")
    batches = list(sim.backfill(now))
    members = [m for b in batches for m in b.members]
    times = sorted({m.time for m in members})
    assert times[0] == parse_instant("2026-03-30T12:00:00Z")
    assert times[-1] == parse_instant("2026-03-31T11:59:30Z")
    assert len(times) == 24 * 120
    assert len(members) == len(times) * len(sim.sites)
    # The live poll continues exactly where the backfill stopped.
    assert sim.parse(b"", now).members[0].time > times[-1]
