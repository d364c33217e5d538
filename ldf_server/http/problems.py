"""RFC 9457 problem details: every 4xx and 5xx answers with ``application/problem+json``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Mapping

import orjson
from aiohttp import web

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise from a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self, instance: str | None = None) -> web.Response:
        return problem_response(self.status, self.detail, title=self.title, headers=self.headers, instance=instance, **self.extra)


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> web.Response:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body: dict[str, Any] = {"type": "about:blank", "title": title or phrase, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    resp = web.Response(status=status, body=orjson.dumps(body), headers=headers)
    resp.content_type = MEDIA_TYPE
    resp.headers["Cache-Control"] = "no-store"
    return resp
