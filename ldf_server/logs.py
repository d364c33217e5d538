"""Logging: structured JSON lines for machines, readable lines on a terminal, a request id in both.

Every request gets an id (the client's ``X-Request-Id`` when it sends a sane one, else a
new one), echoed in the response and attached to every log line written while the
request is handled, so one request can be followed through feeds, store and log.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import re
import sys
import uuid
from datetime import datetime, timezone
from typing import IO, Any

import orjson
from aiohttp import web

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# New ids: a random prefix per process and a counter (16 hex digits, like a uuid4 cut short):
# unique across restarts and processes without a call to the system's random source per request.
_ID_PREFIX = uuid.uuid4().hex[:8]
# prefix + the counter's low 32 bits in 8 hex digits, made by C code alone (no Python frame per id)
_new_ids = map(f"{_ID_PREFIX}{{:08x}}".format, map((0xFFFFFFFF).__and__, itertools.count(1)))
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure(level: str, *, stream: IO[str] | None = None, json_lines: bool | None = None) -> None:
    """JSON lines unless the stream is a terminal (or ``json_lines`` says otherwise)."""
    stream = stream or sys.stderr
    if json_lines is None:
        json_lines = not stream.isatty()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def new_request_id(offered: str | None) -> str:
    """The client's ``X-Request-Id`` when it is sane, else a new id."""
    if offered and _SANE_ID.match(offered):
        return offered
    return next(_new_ids)


@web.middleware
async def with_request_id(request: web.Request, handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
    """The request id on its own, for apps other than ldf-server's (which sets it in ``http.middleware``)."""
    rid = new_request_id(request.headers.get("X-Request-Id"))
    token = request_id.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-Id"] = rid
        raise
    finally:
        request_id.reset(token)
    response.headers["X-Request-Id"] = rid
    return response
