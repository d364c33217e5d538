"""Every IRI the server publishes, minted from one public base URL.

A page's IRI in its body must be byte-for-byte the URL clients fetch, or LDES clients
silently stop after the first page, so the router and the documents share this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldf_server.timeutil import format_day, format_instant


@dataclass(frozen=True, slots=True)
class Urls:
    base: str  # no trailing slash

    def catalog(self) -> str:
        return self.base + "/"

    def context(self) -> str:
        return self.base + "/context.jsonld"

    def openapi(self) -> str:
        """The OpenAPI description of every route (``rel="service-desc"``, ``dcat:endpointDescription``)."""
        return self.base + "/openapi.json"

    def stream(self, ds: str) -> str:
        return f"{self.base}/{ds}"

    def dataset(self, ds: str) -> str:
        return f"{self.base}/{ds}#dataset"

    def view(self, ds: str) -> str:
        return f"{self.base}/{ds}/view"

    def day(self, ds: str, day_start: int) -> str:
        return f"{self.base}/{ds}/days/{format_day(day_start)}"

    def window(self, ds: str, start: int) -> str:
        return f"{self.base}/{ds}/windows/{format_instant(start)}"

    def latest(self, ds: str) -> str:
        return f"{self.base}/{ds}/latest"

    def events(self, ds: str) -> str:
        """The Server-Sent Events stream of new members."""
        return f"{self.base}/{ds}/events"

    def shape(self, ds: str) -> str:
        return f"{self.base}/{ds}/shape"

    def dumps(self, ds: str) -> str:
        """The index of the daily dumps (gzipped N-Quads, one per closed UTC day)."""
        return f"{self.base}/{ds}/dumps/"

    def dump(self, ds: str, day_start: int) -> str:
        return f"{self.base}/{ds}/dumps/{format_day(day_start)}.nq.gz"

    def site(self, ds: str, key: str) -> str:
        return f"{self.base}/{ds}/sites/{key}"

    def tpf(self, ds: str | None = None) -> str:
        """The Triple Pattern Fragments interface of one dataset, or of all together."""
        return f"{self.base}/{ds}/tpf" if ds else f"{self.base}/tpf"

    def genid(self) -> str:
        return f"{self.base}/.well-known/genid/"

    def member(self, ds: str, site_key: str, series: str, time_ms: int) -> str:
        middle = f"{site_key}/{series}" if series else site_key
        return f"{self.base}/{ds}/members/{middle}/{format_instant(time_ms)}"
