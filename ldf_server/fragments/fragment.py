"""What the fragments layer hands to the HTTP layer: a document and how long it stays true."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The longest a mutable fragment may be cached (``max-age``). The fragments layer needs it too:
# a day stops being linked from the view this long before retention removes it, so no cached
# view still points at a page that answers 410.
MAX_MUTABLE_AGE = 3600


@dataclass(frozen=True, slots=True)
class Fragment:
    doc: dict[str, Any]  # a JSON-LD document (without @context: the serialiser adds it)
    immutable: bool  # never changes again: cache forever
    modified: float  # wall-clock seconds of the last change (Last-Modified)
    # Navigation for people, shown by the HTML view only: (rel, IRI), e.g. the neighbouring
    # windows, which the RDF leaves to the day node's relations.
    links: tuple[tuple[str, str], ...] = ()
