"""The adapter interface and the HTTP transport most feeds share."""

from __future__ import annotations

import base64
import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Iterator, Mapping

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from ldf_server.config import FeedConfig
from ldf_server.records import Batch

MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


class FeedError(Exception):
    """The upstream could not be read (HTTP error, timeout, refused connection, too large)."""


class PayloadError(Exception):
    """The upstream answered, but not with something this adapter understands."""


class AdapterOptions(BaseModel):
    """Base of every adapter's options: unknown keys are configuration errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Adapter(ABC):
    """One upstream feed. Subclasses set ``name`` and ``Options`` and implement the halves."""

    name: ClassVar[str]
    Options: ClassVar[type[AdapterOptions]] = AdapterOptions

    def __init__(self, feed: FeedConfig, options: AdapterOptions) -> None:
        self.feed = feed
        self.options = options

    # A payload is usually the bytes of one response, but an adapter that joins several
    # documents (ghent-datex2: a static table and a dynamic status) returns a small object.
    @abstractmethod
    async def fetch(self, session: aiohttp.ClientSession) -> Any:
        """Get one payload; raise :class:`FeedError` when the upstream cannot be read."""

    @abstractmethod
    def parse(self, payload: Any, fetched_at: int) -> Batch:
        """Map a payload to records; raise :class:`PayloadError` when it cannot be understood.

        ``fetched_at`` (epoch ms) is the observation time for feeds that carry none.
        """

    def backfill(self, now: int) -> Iterator[Batch]:
        """History to load at start-up (only simulators have any)."""
        return iter(())


class HttpOptions(AdapterOptions):
    url: str = Field(pattern=r"^https?://")
    # Names of environment variables holding HTTP Basic credentials: never the secrets themselves.
    username_env: str | None = None
    password_env: str | None = None


class HttpAdapter(Adapter):
    """An adapter whose payload is the body of one HTTP GET."""

    Options: ClassVar[type[AdapterOptions]] = HttpOptions
    accept: ClassVar[str] = "application/json"

    async def fetch(self, session: aiohttp.ClientSession) -> bytes:
        opts = self.options
        assert isinstance(opts, HttpOptions)
        headers = {"Accept": self.accept}
        if opts.username_env:
            headers["Authorization"] = basic_auth(opts.username_env, opts.password_env)
        return await http_get(session, opts.url, timeout=self.feed.timeout, headers=headers)


def basic_auth(username_env: str, password_env: str | None) -> str:
    """An HTTP Basic ``Authorization`` value from two environment variables (never logged)."""
    user = os.environ.get(username_env)
    if not user:
        raise FeedError(f"environment variable {username_env} is not set")
    password = os.environ.get(password_env or "", "")
    if password_env and not password:
        raise FeedError(f"environment variable {password_env} is not set")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


async def http_get(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
) -> bytes:
    """The body of a 200 response to one GET (or a POST of ``json_body``), at most MAX_PAYLOAD_BYTES.

    Every failure is a :class:`FeedError` whose message holds no header value (headers may
    carry credentials).
    """
    method = "GET" if json_body is None else "POST"
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout), headers=dict(headers or {}), json=json_body
        ) as resp:
            if resp.status != 200:
                raise FeedError(f"HTTP {resp.status} from upstream")
            return await _read_capped(resp, MAX_PAYLOAD_BYTES)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise FeedError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body up to EOF, refusing more than ``limit`` bytes.

    ``StreamReader.read(n)`` returns only what has arrived so far (one chunk of a chunked
    or slow response), so a feed would be silently truncated; read to the end instead.
    """
    if resp.content_length is not None and resp.content_length > limit:
        raise FeedError(f"payload larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise FeedError(f"payload larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
