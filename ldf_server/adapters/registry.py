"""The explicit registry of adapters: config entries select them by name.

Adding a city is a config entry and, at most, one adapter module listed here.
"""

from __future__ import annotations

from pydantic import ValidationError

from ldf_server.adapters.base import Adapter
from ldf_server.config import FeedConfig


def _adapters() -> dict[str, type[Adapter]]:
    # Imported lazily so that importing the registry has no side effects.
    from ldf_server.adapters.accessibility_csv import AccessibilityCsv
    from ldf_server.adapters.accessibility_jsonld import AccessibilityJsonLd
    from ldf_server.adapters.crowd_simulator import CrowdSimulator
    from ldf_server.adapters.ghent_datatank import GhentDatatank
    from ldf_server.adapters.ghent_datex2 import GhentDatex2
    from ldf_server.adapters.ghent_ods import GhentOdsGarages
    from ldf_server.adapters.ghent_ods_pr import GhentOdsParkAndRide
    from ldf_server.adapters.ixor import IxorParkings
    from ldf_server.adapters.kortrijk import KortrijkParko
    from ldf_server.adapters.replay import Replay
    from ldf_server.adapters.simulator import ParkingSimulator
    from ldf_server.adapters.telraam import TelraamTraffic

    return {cls.name: cls for cls in (
        ParkingSimulator, CrowdSimulator, GhentOdsGarages, Replay,
        TelraamTraffic, AccessibilityCsv, AccessibilityJsonLd,
        GhentDatex2, GhentOdsParkAndRide, GhentDatatank, KortrijkParko, IxorParkings,
    )}


def adapter_names() -> list[str]:
    return sorted(_adapters())


def adapter_class(name: str) -> type[Adapter]:
    try:
        return _adapters()[name]
    except KeyError:
        raise KeyError(f"unknown adapter {name!r} (known: {', '.join(adapter_names())})") from None


def options_model(name: str) -> type | None:
    """The options model of an adapter, or None for an unknown name (validation reports it)."""
    cls = _adapters().get(name)
    return cls.Options if cls is not None else None


def validate_options(feed: FeedConfig) -> list[str]:
    """Problems with a feed's adapter name and options, each naming its key."""
    try:
        cls = adapter_class(feed.adapter)
    except KeyError as exc:
        return [f"adapter: {exc.args[0]}"]
    try:
        cls.Options.model_validate(feed.options)
    except ValidationError as exc:
        return [
            "options." + ".".join(str(p) for p in err["loc"]) + ": " + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        ]
    return []


def create_adapter(feed: FeedConfig) -> Adapter:
    cls = adapter_class(feed.adapter)
    return cls(feed, cls.Options.model_validate(feed.options))
