"""The replay of recorded Ghent records in the default config: each poll serves the next snapshot, re-timed."""

from __future__ import annotations

import json
from importlib import resources

import aiohttp
import pytest

from ldf_server.app import build_state
from ldf_server.config import ConfigError, config_from_dict
from tests.support.clock import FakeClock
from tests.support.seeding import BASE, make_config, parking_dataset

IRIS = {"Sint-Michiels": "https://stad.gent/id/parking/P7", "Vrijdagmarkt": "https://stad.gent/id/parking/P1"}


def replay_feed(**options):  # type: ignore[no-untyped-def]
    return {"id": "gent-replay", "adapter": "replay", "dataset": "parking", "interval": "30s",
            "options": {"city": "gent", "site_iris": IRIS, **options}}


def recording() -> list[dict]:
    raw = resources.files("ldf_server").joinpath("data", "ghent_ods_replay.json").read_bytes()
    return json.loads(raw)["snapshots"]


async def test_each_poll_stores_the_next_snapshot_at_the_poll_time():
    clock = FakeClock("2026-03-31T10:00:00Z")
    state = build_state(make_config(datasets=[parking_dataset()], feeds=[replay_feed()]), clock=clock)
    poller, store = state.pollers[0], state.streams["parking"].store
    snapshots = recording()
    async with aiohttp.ClientSession() as session:
        for n in range(2):
            assert await poller.poll_once(session) is not None
            by_label = {site.label: key for key, site in store.sites.items()}
            records = [r["fields"] for r in snapshots[n]["records"]]
            assert len(by_label) == len(records) > 0
            for fields in records:
                newest = store.newest(by_label[fields["name"]])
                assert newest is not None and newest.values["vacantSpaces"] == fields["availablecapacity"]
            # The newest record of the snapshot is re-timed to the poll (to the second).
            assert max(store.newest(k).time for k in by_label.values()) == int(clock()) * 1000
            clock.advance(30)
    assert store.member_count == sum(len(s["records"]) for s in snapshots[:2])
    for label, iri in IRIS.items():
        assert next(s for s in store.sites.values() if s.label == label).iri == iri, "Ghent's own IRIs"
    assert poller.status.polls_ok == 2 and poller.status.records_rejected == 0


def test_a_format_without_a_parser_is_refused_at_start_up():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"server": {"base_url": BASE}, "datasets": [parking_dataset()],
                          "feeds": [replay_feed(format="ghent-datex2")]})
    assert "format" in str(err.value)
