"""The Ixor vendor API used for Leuven, Mechelen and Sint-Niklaas: ``{"parkings": [...]}`` JSON.

Quirks handled here:

* HTTP Basic auth. The config names the environment variables holding the credentials
  (``username_env``, ``password_env``, both required); the secrets themselves never appear
  in the config, in error messages or in logs. A variable that is missing or empty fails
  the poll with an error naming the *variable*.
* Names contain spaces (``"De Bond"``): site keys use :func:`~ldf_server.adapters.text.slug`
  (``leuven/de-bond``), the label keeps the name as given.
* One API for several cities: ``city`` is a required option and the first part of every key.
* No timestamp in the payload: the time of the poll (to the second) is the observation time.
"""

from __future__ import annotations

import base64
import os
from typing import Any, ClassVar

import aiohttp
import orjson

from ldf_server.adapters.base import AdapterOptions, FeedError, HttpAdapter, HttpOptions, PayloadError, http_get
from ldf_server.adapters.common import City, EnvName, coordinate, poll_time, whole_number
from ldf_server.adapters.text import slug
from ldf_server.records import Batch, Member, Site, parking_member, parking_status


class IxorOptions(HttpOptions):
    username_env: EnvName  # type: ignore[assignment]  # required here, optional in HttpOptions
    password_env: EnvName  # type: ignore[assignment]
    city: City
    # Parking name (as in the feed) → an IRI the city minted for it, if any.
    site_iris: dict[str, str] = {}


class IxorParkings(HttpAdapter):
    name: ClassVar[str] = "ixor-parkings"
    Options: ClassVar[type[AdapterOptions]] = IxorOptions

    async def fetch(self, session: aiohttp.ClientSession) -> bytes:
        opts = self.options
        assert isinstance(opts, IxorOptions)
        headers = {"Accept": self.accept, "Authorization": basic_auth(opts)}
        return await http_get(session, opts.url, timeout=self.feed.timeout, headers=headers)

    def parse(self, payload: bytes, fetched_at: int) -> Batch:
        opts = self.options
        assert isinstance(opts, IxorOptions)
        return parse_ixor(payload, fetched_at, city=opts.city, site_iris=opts.site_iris)


def basic_auth(opts: IxorOptions) -> str:
    """The Authorization header (RFC 7617) from the named variables; errors name variables, never values."""
    # HttpAdapter.fetch would send an empty password when password_env is unset: refuse instead.
    for variable in (opts.username_env, opts.password_env):
        if not os.environ.get(variable):
            raise FeedError(f"environment variable {variable} (HTTP Basic credentials) is not set or empty")
    user, password = os.environ[opts.username_env], os.environ[opts.password_env]
    if ":" in user:
        raise FeedError(f"the user name in {opts.username_env} contains ':', which HTTP Basic auth cannot send")
    try:
        token = f"{user}:{password}".encode("latin-1")
    except UnicodeEncodeError:
        raise FeedError(f"{opts.username_env}/{opts.password_env} hold characters outside Latin-1") from None
    return "Basic " + base64.b64encode(token).decode("ascii")


def parse_ixor(payload: bytes, fetched_at: int, *, city: str, site_iris: dict[str, str]) -> Batch:
    """Pure mapping of one Ixor payload, observed at ``fetched_at`` (epoch ms), to sites and members."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    records = doc.get("parkings") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        raise PayloadError("no 'parkings' list in the payload")
    observed = poll_time(fetched_at)
    batch = Batch()
    for index, record in enumerate(records):
        try:
            site, member = _record(record, observed, city, site_iris)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            batch.problems.append(f"parking {index}: {type(exc).__name__}: {exc}")
            continue
        batch.sites.append(site)
        batch.members.append(member)
    if records and not batch.members:
        raise PayloadError("no parking could be read: " + "; ".join(batch.problems[:3]))
    return batch


def _record(record: Any, observed: int, city: str, site_iris: dict[str, str]) -> tuple[Site, Member]:
    if not isinstance(record["name"], str):
        raise TypeError(f"name is not a string: {record['name']!r}")
    name = " ".join(record["name"].split())
    if not name:
        raise ValueError("empty name")
    capacity = whole_number(record["totalCapacity"], "totalCapacity", minimum=0)
    vacant = whole_number(record["availableCapacity"], "availableCapacity")
    lat, lon = record.get("latitude"), record.get("longitude")
    site = Site(
        key=f"{city}/{slug(name)}",
        label=name,
        city=city,
        iri=site_iris.get(name),
        capacity=capacity,
        lat=None if lat is None else coordinate(lat, "latitude", 90),
        lon=None if lon is None else coordinate(lon, "longitude", 180),
    )
    return site, parking_member(site.key, observed, vacant, status=parking_status(vacant, capacity))
