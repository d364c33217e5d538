"""What the fragments layer hands to the HTTP layer: a document and how long it stays true."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Fragment:
    doc: dict[str, Any]  # a JSON-LD document (without @context: the serialiser adds it)
    immutable: bool  # never changes again: cache forever
    modified: float  # wall-clock seconds of the last change (Last-Modified)
