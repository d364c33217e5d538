"""Walk a dataset from the catalog down, collecting one URL of every kind of resource."""

from __future__ import annotations

from urllib.parse import quote

import rdflib

from tests.support.seeding import BASE

TREE = rdflib.Namespace("https://w3id.org/tree#")
HYDRA = rdflib.Namespace("http://www.w3.org/ns/hydra/core#")


async def every_document(client, ds: str, *, tpf: bool = False) -> dict[str, bytes]:
    """Path → JSON-LD body of the catalog, stream, view, every day and window, latest, sites, shape and
    dumps index (and with ``tpf``, the first Triple Pattern Fragments of the dataset and of all
    datasets, a pattern with a predicate, and the next page when there is one)."""
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
    if tpf:
        for path in (f"/{ds}/tpf", "/tpf", f"/{ds}/tpf?predicate={quote(str(rdflib.RDF.type), safe='')}"):
            page = rdflib.Dataset(default_union=True).parse(data=await get(path), format="json-ld")
            following = set(page.objects(None, HYDRA.next))
            for nxt in sorted(following)[:1]:
                await get(str(nxt).removeprefix(BASE))
    return docs
