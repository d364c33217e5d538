"""Configs and seeded stores for tests: the real simulator, driven by a fake clock."""

from __future__ import annotations

from typing import Any

from ldf_server.app import build_state
from ldf_server.config import Config, config_from_dict
from ldf_server.http.state import ServerState

BASE = "http://127.0.0.1:8080"

# The two Flemish open licence IRIs, written out on purpose (not imported from the code under test).
FLEMISH_LICENCES = {
    "http://data.vlaanderen.be/id/licentie/creative-commons-zero-verklaring/v1.0",
    "http://data.vlaanderen.be/id/licentie/modellicentie-gratis-hergebruik/v1.0",
}


def parking_dataset(**overrides: Any) -> dict[str, Any]:
    ds = {
        "id": "parking",
        "pilot": "parking",
        "title": {"en": "Vacant spaces", "nl": "Vrije plaatsen"},
        "description": {"en": "Test parking dataset", "nl": "Testdataset parkeren"},
        "licence": "cc0",
        "window": "15m",
        "grace": "1m",
        "retention": "7d",
    }
    ds.update(overrides)
    return ds


def simulator_feed(**options: Any) -> dict[str, Any]:
    opts = {"cities": ["sint-niklaas"], "seed": 7, "backfill": "6h"}
    opts.update(options)
    return {"id": "sim", "adapter": "parking-simulator", "dataset": "parking", "interval": "5m", "options": opts}


def make_config(
    *,
    base_url: str = BASE,
    datasets: list | None = None,
    feeds: list | None = None,
    push: list | None = None,
    **server: Any,
) -> Config:
    return config_from_dict(
        {
            "server": {"base_url": base_url, **server},
            "datasets": datasets if datasets is not None else [parking_dataset()],
            "feeds": feeds if feeds is not None else [simulator_feed()],
            "push": push or [],
        },
        env={},
    )


def seeded_state(config: Config, clock) -> ServerState:  # type: ignore[no-untyped-def]
    """A state whose stores hold the simulator's backfilled history at ``clock``'s time."""
    state = build_state(config, clock=clock)
    for poller in state.pollers:
        poller.backfill()
    state.ready = True
    return state


def crowd_dataset(**overrides: Any) -> dict[str, Any]:
    return parking_dataset(
        id="crowds", pilot="crowdedness", title={"en": "People counts", "nl": "Tellingen"},
        description={"en": "Simulated people counters", "nl": "Gesimuleerde personentellers"},
        window="1h", **overrides,
    )


def crowd_feed(**options: Any) -> dict[str, Any]:
    opts = {"seed": 3, "backfill": "6h"}
    opts.update(options)
    return {"id": "crowd-sim", "adapter": "crowd-simulator", "dataset": "crowds", "interval": "5m", "options": opts}
