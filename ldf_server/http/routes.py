"""The URL layout; everything is discoverable from ``/``."""

from __future__ import annotations

from aiohttp import web

from ldf_server.http import assets, dumps, events, handlers, metrics, openapi, push, tpf

DS = "{ds:[a-z][a-z0-9-]*}"


def add_routes(app: web.Application) -> None:
    r = app.router
    # aiohttp tries the routes whose paths start with a variable ({ds}) one by one, in the order
    # they are added (none of them overlap): the pages clients ask for most often go first.
    r.add_get(f"/{DS}/windows/{{start}}", handlers.window)
    r.add_get(f"/{DS}/latest", handlers.latest)
    r.add_get("/", handlers.catalog)
    r.add_get("/context.jsonld", handlers.context)
    r.add_get("/openapi.json", openapi.openapi_json)  # its PATHS table lists every route here
    r.add_get("/health/live", handlers.health_live)
    r.add_get("/health/ready", handlers.health_ready)
    r.add_get("/metrics", metrics.metrics_endpoint)
    r.add_get("/_assets/{name}", assets.asset)
    r.add_get("/tpf", tpf.all_datasets)
    r.add_get(f"/{DS}", handlers.stream)
    r.add_get(f"/{DS}/tpf", tpf.one_dataset)
    r.add_get(f"/{DS}/view", handlers.view)
    r.add_get(f"/{DS}/days/{{day}}", handlers.day)
    r.add_get(f"/{DS}/events", events.events)
    r.add_get(f"/{DS}/shape", handlers.shape)
    r.add_get(f"/{DS}/dumps", dumps.redirect)
    r.add_get(f"/{DS}/dumps/", dumps.index)
    r.add_get(f"/{DS}/dumps/{{name}}", dumps.day)
    r.add_get(f"/{DS}/sites/{{key:.+}}", handlers.site)
    r.add_get(f"/{DS}/members/{{key:.+}}", handlers.member)
    r.add_post(f"/{DS}/push/{{source:[a-z][a-z0-9-]*}}", push.push)
