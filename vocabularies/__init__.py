"""Vocabulary terms, the shared JSON-LD context and SHACL shapes.

This folder is installed as the ``ldf_server.vocabularies`` package so that the
data files travel with the code. Every IRI the server writes is spelt here once.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from .namespaces import *  # noqa: F401,F403  (re-export the namespace constants)


def read_text(name: str) -> str:
    """Return the text of a data file in this folder (e.g. ``context.jsonld``)."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@cache
def context() -> dict[str, Any]:
    """The shared JSON-LD context (the value of ``@context``), parsed once."""
    return json.loads(read_text("context.jsonld"))["@context"]


def expand_term(term: str) -> str:
    """The full IRI of a term of the shared context (``"isVersionOf"`` → ``dct:isVersionOf`` expanded)."""
    ctx = context()
    definition = ctx[term]
    iri = definition["@id"] if isinstance(definition, dict) else definition
    prefix, sep, local = iri.partition(":")
    if sep and prefix in ctx and not local.startswith("//"):
        return ctx[prefix] + local
    return iri
