"""Turn the same JSON-LD documents the RDF syntaxes are made from into what a page shows.

No second model of the data: a resource's HTML is its fragment's nodes as tables. A node's
properties form one table; a property holding many nodes (a page's members, the sites of
``latest``, the datasets of the catalog) becomes a table of its own with one row per node;
``tree:relation`` pairs are folded into one row per linked page (from, to).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ?format= names for the links to the other representations (also accepted by http/respond.py).
FORMATS = {
    "jsonld": "application/ld+json",
    "json": "application/json",
    "nq": "application/n-quads",
    "trig": "application/trig",
    "ttl": "text/turtle",
    "nt": "application/n-triples",
    "html": "text/html",
}
FORMAT_LABELS = {"jsonld": "JSON-LD", "json": "JSON", "nq": "N-Quads", "trig": "TriG", "ttl": "Turtle",
                 "nt": "N-Triples", "html": "HTML"}
TITLES = {
    "Catalog": "Catalog", "EventStream": "Event stream", "Collection": "Latest state",
    "UrbanParkingSite": "Parking site", "FeatureOfInterest": "Counting site", "Gebouw": "Building",
    "NodeShape": "SHACL shape",
}


@dataclass
class Section:
    heading: str
    node: dict[str, Any] | None = None  # a node's other properties, as a key/value table
    rows: list[dict[str, Any]] = field(default_factory=list)  # many nodes, one row each
    columns: list[str] = field(default_factory=list)


@dataclass
class Relation:
    target: str
    lower: str | None = None  # tree:GreaterThanOrEqualToRelation value
    upper: str | None = None  # tree:LessThanRelation value


@dataclass
class PageView:
    title: str
    iri: str
    sections: list[Section]
    relations: list[Relation]
    formats: list[tuple[str, str, str]]  # (label, ?format= name, link)
    links: list[tuple[str, str]]  # (label, IRI): where to go from here


def nodes_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    graph = doc.get("@graph")
    return [n for n in graph if isinstance(n, dict)] if isinstance(graph, list) else [doc]


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The union of the rows' keys, in first-seen order (``@id`` first)."""
    seen: dict[str, None] = {"@id": None} if any("@id" in r for r in rows) else {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _is_node_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 1 and all(isinstance(v, dict) for v in value)


def _is_flat(node: dict[str, Any]) -> bool:
    """No property holds several nodes: the node fits in one table row."""
    return not any(isinstance(v, list) and any(isinstance(x, dict) for x in v) for v in node.values())


def _relations(items: list[Any]) -> list[Relation]:
    out: dict[str, Relation] = {}
    for rel in items:
        if not isinstance(rel, dict) or not isinstance(rel.get("node"), str):
            continue
        r = out.setdefault(rel["node"], Relation(rel["node"]))
        if rel.get("@type") == "GreaterThanOrEqualToRelation":
            r.lower = str(rel.get("value"))
        elif rel.get("@type") == "LessThanRelation":
            r.upper = str(rel.get("value"))
    return list(out.values())


def title_of(node: dict[str, Any]) -> str:
    kind = node.get("@type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    label = node.get("label") or node.get("title")
    if isinstance(label, dict):
        label = label.get("en") or next(iter(label.values()), None)
    name = TITLES.get(kind, kind) if isinstance(kind, str) else None
    if kind == "Node":
        name = "Page" if "relation" not in node else "Node"
        iri = node.get("@id")
        if isinstance(iri, str) and not isinstance(label, str):
            label = iri.rstrip("/").rsplit("/", 1)[-1]  # the day or the window's start
    if name and isinstance(label, str):
        return f"{name}: {label}"
    return name or (label if isinstance(label, str) else "Resource")


def page_view(doc: dict[str, Any], page_iri: str, formats: list[str], extra_links: tuple[tuple[str, str], ...] = ()) -> PageView:
    nodes = nodes_of(doc)
    main = next((n for n in nodes if n.get("@id") == page_iri), nodes[0] if nodes else {})
    ordered = [main, *(n for n in nodes if n is not main)]
    sections: list[Section] = []
    relations: list[Relation] = []
    links: list[tuple[str, str]] = []
    for node in ordered:
        own: dict[str, Any] = {}
        lists: list[Section] = []
        for key, value in node.items():
            if key == "relation" and isinstance(value, list):
                relations.extend(_relations(value))
            elif _is_node_list(value) and all(_is_flat(v) for v in value):
                lists.append(Section(f"{key} ({len(value)})", rows=value, columns=columns(value)))
            elif _is_node_list(value):  # nodes too rich for a row each (the catalog's datasets)
                lists.extend(Section(f"{key}: {title_of(v)}", node=v) for v in value)
            else:
                own[key] = value
            if key in ("view", "isPartOf", "shape") and isinstance(value, str):
                links.append((key, value))
        sections.append(Section(title_of(node), node=own))
        sections.extend(lists)
    if "/windows/" in page_iri:  # a leaf page: up to its day node, which links every window of that day
        head, _, start = page_iri.rpartition("/windows/")
        links.append(("day", f"{head}/days/{start[:10]}"))
    links.extend(extra_links)
    names = [f for f in formats if f != "html"]
    return PageView(
        title=title_of(main), iri=page_iri, sections=sections, relations=relations,
        formats=[(FORMAT_LABELS[f], f, f"?format={f}") for f in names], links=list(dict.fromkeys(links)),
    )


@dataclass
class TermCell:
    text: str  # the term as N-Triples writes it
    href: str  # the fragment of every triple with this term in this position


@dataclass
class TpfView:
    """A Triple Pattern Fragment for people: the triples, the count, paging and the search form."""

    title: str
    iri: str
    triples: list[tuple[TermCell, TermCell, TermCell]]
    total: int
    pattern: dict[str, str]  # subject / predicate / object as given in the query
    action: str  # the interface's URL, where the search form goes
    pages: list[tuple[str, str]]  # (rel, link): first, previous, next
    formats: list[tuple[str, str, str]]
    links: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

