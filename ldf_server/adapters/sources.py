"""Where payloads come from besides a plain GET: a GET with extra headers, a local or bundled file.

Exports such as the accessibility database are files that an operator replaces now and
then (``kill -HUP`` re-reads them at once); the same adapters also read them over HTTP.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import ClassVar

import aiohttp
from pydantic import Field, model_validator

from ldf_server.adapters.base import MAX_PAYLOAD_BYTES, Adapter, AdapterOptions, FeedError, http_get


def read_file(name: str) -> bytes:
    """A local file (relative to the current directory), else a file bundled in ``ldf_server/data/``."""
    path = Path(name)
    try:
        if path.is_absolute() or path.exists() or len(path.parts) != 1:
            target = path
        else:
            target = resources.files("ldf_server").joinpath("data", name)  # type: ignore[assignment]
        with target.open("rb") as fh:
            body = fh.read(MAX_PAYLOAD_BYTES + 1)
    except OSError as exc:
        raise FeedError(f"cannot read {name}: {exc.strerror or type(exc).__name__}") from exc
    if len(body) > MAX_PAYLOAD_BYTES:
        raise FeedError(f"{name} is larger than {MAX_PAYLOAD_BYTES} bytes")
    return body


class FileOrUrlOptions(AdapterOptions):
    # Exactly one: a file (relative paths resolve against the current directory; a bare
    # file name that does not exist there is looked up among the bundled data files) or a URL.
    path: str | None = Field(default=None, min_length=1)
    url: str | None = Field(default=None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _one_source(self) -> "FileOrUrlOptions":
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path (a file) or url")
        return self


class FileOrUrlAdapter(Adapter):
    """An adapter whose payload is a whole file, read from disk or fetched over HTTP."""

    Options: ClassVar[type[AdapterOptions]] = FileOrUrlOptions
    accept: ClassVar[str] = "*/*"

    async def fetch(self, session: aiohttp.ClientSession) -> bytes:
        opts = self.options
        assert isinstance(opts, FileOrUrlOptions)
        if opts.path is not None:
            return read_file(opts.path)
        assert opts.url is not None
        return await http_get(session, opts.url, timeout=self.feed.timeout, headers={"Accept": self.accept})
