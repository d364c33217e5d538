"""Jinja2 rendering of resource views and the dashboard, to bytes (cached by the HTTP layer).

Autoescaping is on for every template: values come from city feeds and pushes, so a
label such as ``<script>`` is shown as text, never run. Links are made only of ``http(s)``
IRIs, so a value cannot become a ``javascript:`` link. Scripts live in static files
(the Content-Security-Policy allows no inline script).
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

import jinja2

from ldf_server.html import assets
from ldf_server.html.views import TpfView, columns, page_view

TEMPLATES = __file__.rsplit("/", 1)[0] + "/templates"


def _is_link(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith("https://") or value.startswith("http://"))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.tests["link"] = _is_link
    env.globals["columns"] = columns
    return env


def content_security_policy(map_tiles: str | None = None) -> str:
    """Scripts, styles and data only from this server; map tiles also from the configured tile server."""
    img = "'self' data:"
    if map_tiles:
        parts = urlsplit(map_tiles.replace("{s}", "a"))
        origin = f"{parts.scheme}://{parts.netloc}"
        if "{s}" in map_tiles:
            origin = f"{parts.scheme}://*.{parts.netloc.split('.', 1)[-1]}"
        img += " " + origin
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src {img}; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def resource(doc: dict[str, Any], page_iri: str, formats: list[str], home: str,
             links: tuple[tuple[str, str], ...] = ()) -> bytes:
    """The HTML view of one resource (``links``: navigation beyond what the document says)."""
    view = page_view(doc, page_iri, formats, links)
    return environment().get_template("resource.html").render(view=view, assets=assets.urls(), home=home).encode()


def dashboard(doc: dict[str, Any], page_iri: str, formats: list[str], home: str, config: dict[str, Any]) -> bytes:
    """The dashboard at ``/``, with the catalog's own view below it."""
    view = page_view(doc, page_iri, formats)
    return environment().get_template("dashboard.html").render(
        view=view, assets=assets.urls(), home=home, dashboard=config
    ).encode()


def tpf(view: TpfView, home: str) -> bytes:
    """The HTML view of a Triple Pattern Fragment."""
    return environment().get_template("tpf.html").render(view=view, assets=assets.urls(), home=home).encode()
