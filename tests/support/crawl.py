"""Walk a dataset from the catalog down, collecting one URL of every kind of resource."""

from __future__ import annotations

import rdflib

from tests.support.seeding import BASE

TREE = rdflib.Namespace("https://w3id.org/tree#")
HYDRA = rdflib.Namespace("http://www.w3.org/ns/hydra/core#")


async def every_document(client, ds: str) -> dict[str, bytes]:
    """Path → JSON-LD body of the catalog, stream, view, every day and window, latest, sites, shape and dumps index."""
    docs: dict[str, bytes] = {}

    async def get(path: str) -> bytes:
        resp = await client.get(path)
        assert resp.status == 200, path
        docs[path] = await resp.read()
        return docs[path]

    await get("/")
    await get(f"/{ds}")
    await get(f"/{ds}/latest")
    await get(f"/{ds}/shape")
    await get(f"/{ds}/dumps/")
    view = rdflib.Graph().parse(data=await get(f"/{ds}/view"), format="json-ld")
    for day in sorted(set(view.objects(None, TREE.node))):
        day_graph = rdflib.Graph().parse(data=await get(str(day).removeprefix(BASE)), format="json-ld")
        for window in sorted(set(day_graph.objects(None, TREE.node))):
            await get(str(window).removeprefix(BASE))
    latest = rdflib.Graph().parse(data=docs[f"/{ds}/latest"], format="json-ld")
    for site in sorted(set(latest.objects(None, HYDRA.member))):
        if str(site).startswith(BASE):
            await get(str(site).removeprefix(BASE))
    return docs
