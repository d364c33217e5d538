"""The offline people-counter simulator: daily rhythm, determinism, SOSA members."""

from __future__ import annotations

from ldf_server.adapters.registry import create_adapter
from ldf_server.config import FeedConfig
from ldf_server.timeutil import format_instant, parse_instant

HOUR = 3_600_000


def simulator(**options):  # type: ignore[no-untyped-def]
    return create_adapter(FeedConfig(id="c", adapter="crowd-simulator", dataset="crowds", interval=300,
                                     options={"seed": 1, **options}))


def test_busy_at_lunch_quiet_at_night():
    sim = simulator()
    day = parse_instant("2026-03-31T00:00:00Z")
    for zone in sim.zones.values():
        assert sim.rate(zone, day + 12 * HOUR) > 5 * sim.rate(zone, day + 3 * HOUR)


def test_members_are_observations_over_the_poll_interval():
    sim = simulator()
    t = parse_instant("2026-03-31T12:00:00Z")
    a, b = sim.parse(b"", t), sim.parse(b"", t)
    assert [m.values for m in a.members] == [m.values for m in b.members]
    for m in a.members:
        assert m.series == "people" and m.time == t and m.values["observedProperty"] == "people"
        assert isinstance(m.values["hasSimpleResult"], int) and m.values["hasSimpleResult"] >= 0
        span = m.values["phenomenonTime"]
        assert span["hasBeginning"]["inXSDDateTimeStamp"] == format_instant(t - 300_000)
        assert span["hasEnd"]["inXSDDateTimeStamp"] == format_instant(t)
    assert len(a.members) == len(sim.zones)


def test_backfill_spans_the_configured_history():
    sim = simulator(backfill="2h")
    now = parse_instant("2026-03-31T12:02:00Z")
    members = [m for batch in sim.backfill(now) for m in batch.members]
    times = sorted({m.time for m in members})
    assert times[0] == parse_instant("2026-03-31T10:00:00Z") and times[-1] == parse_instant("2026-03-31T11:55:00Z")
    assert len(members) == len(times) * len(sim.zones) == 24 * len(sim.zones)
