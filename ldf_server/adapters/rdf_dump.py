"""A dump (N-Quads or TriG, as ``ldf-server export`` writes it) back into records.

The inverse of the pages' JSON-LD: every triple's predicate becomes the context term
whose ``@id`` it is, literals become the JSON values that produce them again (an
``xsd:integer`` an int, an ``xsd:double`` a float, a language map for ``@language``
terms), blank nodes nested objects. A subject with the pilot's timestamp and site
predicates under ``{base}/{ds}/members/`` is a member; a subject typed as the pilot's
site type is a site. Keys come from our IRIs (``/sites/{key}``, ``/members/{key}[/{series}]/{time}``);
a site's city is the first segment of its key.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import Any, Iterable

from rdflib.term import BNode, Literal, Node, URIRef

from ldf_server.fragments.urls import Urls
from ldf_server.pilots import Pilot
from ldf_server.records import Batch, Member, Site
from ldf_server.timeutil import InstantError, parse_instant
from ldf_server.vocabularies import RDF_TYPE, XSD, context, expand_term

_INTEGERS = {XSD + t for t in ("integer", "int", "long", "short", "nonNegativeInteger", "positiveInteger")}
_FLOATS = {XSD + t for t in ("double", "float", "decimal")}
_SITE_FIELDS = ("label", "description", "totalSpaces", "lat", "long")


@cache
def _terms() -> tuple[dict[str, tuple[str, dict[str, Any]]], dict[str, str]]:
    """(predicate IRI → (term, definition), class or concept IRI → term) from the shared context."""
    predicates: dict[str, tuple[str, dict[str, Any]]] = {}
    names: dict[str, str] = {}
    for term, definition in context().items():
        if term.startswith("@"):
            continue
        if isinstance(definition, dict):
            if "@id" in definition and "@reverse" not in definition:
                predicates.setdefault(expand_term(term), (term, definition))
        elif isinstance(definition, str) and not definition.endswith(("#", "/")):
            iri = expand_term(term)
            names.setdefault(iri, term)
            predicates.setdefault(iri, (term, {}))
    return predicates, names


def _literal(o: Literal, definition: dict[str, Any]) -> Any:
    lex = str(o)
    datatype = str(o.datatype) if o.datatype is not None else None
    if o.language:
        return {"@value": lex, "@language": o.language}
    if datatype in _INTEGERS:
        return int(lex)
    if datatype in _FLOATS:
        return float(lex)
    if datatype == XSD + "boolean":
        return lex in ("true", "1")
    coerced = definition.get("@type")
    if datatype is None or datatype == XSD + "string" or (coerced and _expand(coerced) == datatype):
        return lex
    return {"@value": lex, "@type": datatype}


def _expand(value: str) -> str:
    """A compact IRI (``xsd:dateTime``) in full, with the context's prefixes."""
    prefix, sep, local = value.partition(":")
    ctx = context()
    if sep and isinstance(ctx.get(prefix), str) and not local.startswith("//"):
        return ctx[prefix] + local
    return value


class _Compactor:
    """Subjects of a graph as compact JSON-LD nodes (blank nodes nested where they hang)."""

    def __init__(self, triples: Iterable[tuple[Node, Node, Node]]) -> None:
        self.by_subject: dict[Node, list[tuple[Node, Node]]] = defaultdict(list)
        for s, p, o in triples:
            self.by_subject[s].append((p, o))

    def node(self, subject: Node, depth: int = 0) -> dict[str, Any]:
        predicates, names = _terms()
        node: dict[str, Any] = {} if isinstance(subject, BNode) else {"@id": str(subject)}
        for p, o in sorted(self.by_subject.get(subject, ()), key=lambda po: (str(po[0]), str(po[1]))):
            if str(p) == RDF_TYPE:
                _add(node, "@type", names.get(str(o), str(o)), as_set=False)
                continue
            term, definition = predicates.get(str(p), (str(p), {}))
            if definition.get("@container") == "@language" and isinstance(o, Literal) and o.language:
                node.setdefault(term, {})[o.language] = str(o)
                continue
            if isinstance(o, BNode):
                value: Any = self.node(o, depth + 1) if depth < 16 else {}
            elif isinstance(o, URIRef):
                kind = definition.get("@type")
                value = names.get(str(o), str(o)) if kind == "@vocab" else str(o) if kind == "@id" else {"@id": str(o)}
            else:
                value = _literal(o, definition)  # type: ignore[arg-type]
            _add(node, term, value, as_set=definition.get("@container") == "@set")
        return node


def _add(node: dict[str, Any], key: str, value: Any, *, as_set: bool) -> None:
    if key not in node:
        node[key] = [value] if as_set else value
    elif isinstance(node[key], list):
        node[key].append(value)
    else:
        node[key] = [node[key], value]


def parse_dump(triples: Iterable[tuple[Node, Node, Node]], urls: Urls, ds: str, pilot: Pilot) -> Batch:
    """The sites and members in the triples of a dump (all its graphs together), for dataset ``ds``."""
    compactor = _Compactor(triples)
    predicates = {term: iri for iri, (term, _) in _terms()[0].items()}
    site_type = URIRef(expand_term(pilot.site_type))
    member_prefix = urls.member(ds, "", "", 0).rsplit("/", 2)[0] + "/"  # {base}/{ds}/members/
    site_prefix = urls.site(ds, "")
    stamp, link = URIRef(predicates[pilot.timestamp_term]), URIRef(predicates[pilot.site_term])
    batch = Batch()
    keys: dict[str, str] = {}  # site IRI → key, learnt from member IRIs
    for subject, pos in compactor.by_subject.items():
        if not (isinstance(subject, URIRef) and str(subject).startswith(member_prefix)):
            continue
        if not any(p == stamp for p, _ in pos) or not any(p == link for p, _ in pos):
            continue
        node = compactor.node(subject)
        try:
            time = parse_instant(str(node.pop(pilot.timestamp_term)))
        except InstantError as exc:
            batch.problems.append(f"{subject}: {exc}")
            continue
        site_iri = str(node.pop(pilot.site_term))
        node.pop("@id")
        middle = str(subject)[len(member_prefix):].rsplit("/", 1)[0]
        if site_iri.startswith(site_prefix):
            key = site_iri[len(site_prefix):]
        elif pilot.versions:
            key = middle
        else:
            key = middle.rsplit("/", 1)[0]
        series = middle[len(key) + 1:] if middle != key else ""
        keys.setdefault(site_iri, key)
        batch.members.append(Member(site=key, time=time, values=node, series=series))
    for subject, pos in compactor.by_subject.items():
        if isinstance(subject, URIRef) and any(p == URIRef(RDF_TYPE) and o == site_type for p, o in pos):
            batch.sites.append(_site(compactor.node(subject), pilot, site_prefix, keys))
    batch.members.sort(key=lambda m: m.key)
    return batch


def _site(node: dict[str, Any], pilot: Pilot, site_prefix: str, keys: dict[str, str]) -> Site:
    iri = node.pop("@id")
    minted = iri.startswith(site_prefix)
    key = iri[len(site_prefix):] if minted else keys.get(iri) or iri.split("://", 1)[-1].split("/", 1)[-1]
    types = node.pop("@type", pilot.site_type)
    if isinstance(types, list):
        rest = [t for t in types if t != pilot.site_type]
        if rest:
            node["@type"] = rest if len(rest) > 1 else rest[0]
    elif types != pilot.site_type:
        node["@type"] = types
    description = node.pop("description", None)
    lat, lon = node.pop("lat", None), node.pop("long", None)
    capacity = node.pop("totalSpaces", None)
    label = node.pop("label", key)
    return Site(
        key=key, label=str(label), city=key.split("/")[0], iri=None if minted else iri,
        description=description.get("nl") if isinstance(description, dict) else None,
        capacity=capacity, lat=lat, lon=lon, properties=node,
    )
