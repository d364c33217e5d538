"""``GET /_assets/{name}``: the scripts, styles and licences of the browser views, served by ldf-server itself.

Names carry their content digest, so every asset is immutable; a name that is not in the
fixed manifest of ``ldf_server/html/assets.py`` is a 404 (nothing here touches the file system).
"""

from __future__ import annotations

from aiohttp import web

from ldf_server.fragments.fragment import Fragment
from ldf_server.html import assets
from ldf_server.http.problems import Problem
from ldf_server.http.representations import Encoded
from ldf_server.http.respond import send
from ldf_server.http.state import STATE

ASSET_CACHE_TOKEN = "asset"


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    found = assets.manifest().get(name)
    if found is None:
        raise Problem(404, f"no asset {name[:80]!r}; asset names carry a digest and come from the HTML pages", title="Unknown asset")
    cache = request.app[STATE].cache
    key = ("/_assets/" + found.name, found.media_type)
    item = cache.get(key, ASSET_CACHE_TOKEN)
    if item is None:
        item = Encoded.of(Fragment({}, immutable=True, modified=found.modified), ASSET_CACHE_TOKEN, found.body)
        cache.put(key, item)
    resp = send(request, item, found.media_type, max_age=0)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
