"""A small in-memory triple index for Triple Pattern Fragments.

Triples are kept as N-Triples term strings (``<iri>``, ``"lex"^^<dt>``, ``"lex"@nl``),
sorted once, with one posting list per subject, predicate and object, so a pattern is
answered by scanning its most selective list and the count is exact at no extra cost.
Blank nodes are skolemised (``/.well-known/genid/…``) so that patterns can select them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from pyld import jsonld

from ldf_server.vocabularies import XSD, context

Term = str
Triple = tuple[Term, Term, Term]


def _term(node: dict[str, Any]) -> Term:
    if node["type"] == "IRI":
        return f"<{node['value']}>"
    if node["type"] == "blank node":
        return node["value"]
    value = node["value"].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    if node.get("language"):
        return f'"{value}"@{node["language"]}'
    datatype = node.get("datatype") or XSD + "string"
    if datatype == XSD + "string":
        return f'"{value}"'
    return f'"{value}"^^<{datatype}>'


def doc_triples(doc: dict[str, Any], genid_base: str) -> list[Triple]:
    """Triples of a JSON-LD document (without @context), blank nodes skolemised under ``genid_base``."""
    dataset = jsonld.to_rdf({"@context": context(), **doc}, {})
    raw = [(_term(t["subject"]), _term(t["predicate"]), _term(t["object"])) for t in dataset.get("@default", [])]
    parents = {o: (s, p) for s, p, o in raw if o.startswith("_:")}
    names: dict[str, str] = {}

    def name(bnode: str, depth: int = 0) -> str:
        if bnode not in names:
            # Named by where it hangs (parent, predicate) and by its own literal/IRI values, so two
            # blank nodes under one parent and predicate still get different names.
            own = " ".join(sorted(f"{p} {o}" for s, p, o in raw if s == bnode and not o.startswith("_:")))
            if bnode in parents and depth < 16:
                s, p = parents[bnode]
                anchor = name(s, depth + 1) if s.startswith("_:") else s
                seed = f"{anchor} {p} {own}"
            else:  # a root blank node: its own triples are all there is
                seed = own
            names[bnode] = f"<{genid_base}{hashlib.blake2b(seed.encode(), digest_size=9).hexdigest()}>"
        return names[bnode]

    return [
        (name(s) if s.startswith("_:") else s, p, name(o) if o.startswith("_:") else o) for s, p, o in raw
    ]


@dataclass
class TripleIndex:
    triples: list[Triple]
    by_s: dict[Term, list[int]] = field(default_factory=dict)
    by_p: dict[Term, list[int]] = field(default_factory=dict)
    by_o: dict[Term, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, triples: Iterable[Triple]) -> "TripleIndex":
        index = cls(sorted(set(triples)))
        for i, (s, p, o) in enumerate(index.triples):
            index.by_s.setdefault(s, []).append(i)
            index.by_p.setdefault(p, []).append(i)
            index.by_o.setdefault(o, []).append(i)
        return index

    def match(self, s: Term | None, p: Term | None, o: Term | None) -> list[int]:
        """Positions (in sorted order, so paging is stable) of the triples matching a pattern."""
        lists = [lst for term, lst in ((s, self.by_s), (p, self.by_p), (o, self.by_o)) if term is not None for lst in [lst.get(term, [])]]
        if not lists:
            return list(range(len(self.triples)))
        shortest = min(lists, key=len)
        return [
            i for i in shortest
            if (s is None or self.triples[i][0] == s) and (p is None or self.triples[i][1] == p) and (o is None or self.triples[i][2] == o)
        ]


_LITERAL = re.compile(r'^"(?P<lex>.*)"(?:@(?P<lang>[A-Za-z]+(?:-[A-Za-z0-9]+)*)|\^\^<?(?P<dt>[^<>]+)>?)?$', re.S)


class PatternError(ValueError):
    """A subject, predicate or object parameter that is not a valid RDF term."""


def parse_term(value: str | None, *, position: str) -> Term | None:
    """A TPF query parameter (explicit representation) as an N-Triples term; empty or ?var = any."""
    if value is None or value == "" or value.startswith("?"):
        return None
    if value.startswith('"'):
        if position != "object":
            raise PatternError(f"a literal cannot be the {position}")
        m = _LITERAL.match(value)
        if m is None:
            raise PatternError(f"{value[:80]!r} is not a literal such as \"5\"^^{XSD}integer or \"Gent\"@nl")
        lex = m.group("lex").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        if m.group("lang"):
            return f'"{lex}"@{m.group("lang").lower()}'
        dt = m.group("dt")
        return f'"{lex}"' if dt in (None, XSD + "string") else f'"{lex}"^^<{dt}>'
    if value.startswith("_:"):
        raise PatternError("blank nodes cannot be queried; use their /.well-known/genid/ IRIs")
    iri = value[1:-1] if value.startswith("<") and value.endswith(">") else value
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]*$", iri):
        raise PatternError(f"{value[:80]!r} is not an IRI")
    if position == "predicate" and iri.startswith("_:"):
        raise PatternError("a predicate must be an IRI")
    return f"<{iri}>"
