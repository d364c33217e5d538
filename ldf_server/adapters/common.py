"""Small helpers the parking adapters share: counts, safe XML, Ghent's site IRIs, HTTP GET.

* Counts: a JSON count must be a whole number (not a string, not a boolean); an XML count
  is the text of an element or attribute. Both raise ``ValueError`` naming the field, which
  the adapters turn into a skipped record with a problem noted.
* XML: DATEX II and Kortrijk's counters are XML from servers we do not control, so a
  document with a DOCTYPE or ENTITY declaration (the "billion laughs" entity expansion) is
  refused *before* parsing. The bytes are decoded here, not by the XML parser, so the text
  that is checked is exactly the text that is parsed (no encoding trick can hide a DOCTYPE).
* Ghent's garages are named ``"P07 Sint-Michiels"``; the city minted
  ``https://stad.gent/id/parking/P7`` for it, so the IRI follows from the ``Pxx`` prefix.
"""

from __future__ import annotations

import codecs
import math
import re
import xml.etree.ElementTree as ET
from typing import Annotated, Any

from pydantic import Field

from ldf_server.adapters.base import PayloadError
from ldf_server.vocabularies import GHENT_PARKING

# A city as the first segment of a site key ("gent/p07-sint-michiels").
City = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
# The name of an environment variable (never the secret it holds).
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def whole_number(value: Any, field: str, *, minimum: int | None = None) -> int:
    """A count from JSON: an int (or a float without fraction), at least ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and (not math.isfinite(value) or value != int(value)))
    ):
        raise ValueError(f"{field} is not a whole number: {value!r}")
    return _at_least(int(value), field, minimum)


def text_number(text: str | None, field: str, *, minimum: int | None = None) -> int:
    """A count from XML text or an attribute: optional sign and digits, nothing else."""
    if text is None:
        raise ValueError(f"{field} is missing")
    if not re.fullmatch(r"[+-]?\d{1,12}", text.strip()):
        raise ValueError(f"{field} is not a whole number: {text[:40]!r}")
    return _at_least(int(text), field, minimum)


def _at_least(number: int, field: str, minimum: int | None) -> int:
    if minimum is not None and number < minimum:
        raise ValueError(f"{field} is below {minimum}: {number}")
    return number


def coordinate(value: Any, field: str, limit: float) -> float:
    """A latitude (limit 90) or longitude (limit 180) in decimal degrees."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{field} is not a number: {value!r}")
    number = float(value)
    if not -limit <= number <= limit:
        raise ValueError(f"{field} is out of range: {number}")
    return number


def poll_time(fetched_at: int) -> int:
    """The observation time of a feed without timestamps: the poll, to the second."""
    return fetched_at - fetched_at % 1000


_XML_DECL = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']""")
_XML_ENCODINGS = {"utf-8", "ascii", "iso8859-1", "iso8859-15", "cp1252"}
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_xml(payload: bytes) -> ET.Element:
    """The root element of an XML document; :class:`PayloadError` if it is not safe, well-formed XML."""
    if payload.startswith(codecs.BOM_UTF8):
        payload = payload[len(codecs.BOM_UTF8) :]
    declared = _XML_DECL.match(payload.lstrip())
    name = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        encoding = codecs.lookup(name).name
    except LookupError:
        raise PayloadError(f"unknown XML encoding {name!r}") from None
    if encoding not in _XML_ENCODINGS:
        raise PayloadError(f"XML encoding {name!r} is not accepted (UTF-8, ASCII or Latin-1 only)")
    try:
        text = payload.decode(encoding)
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not {name} text: {exc.reason} at byte {exc.start}") from None
    if _DTD.search(text):
        raise PayloadError("XML with a DOCTYPE or ENTITY declaration refused (entity expansion)")
    try:
        # Parsing a str makes expat ignore the declared encoding: it reads exactly `text`.
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise PayloadError(f"not well-formed XML: {exc}") from None


GHENT_PARKING_IRI = GHENT_PARKING + "P{}"
_GHENT_NUMBER = re.compile(r"^\s*(P\s*0*(\d{1,3}))(?![0-9A-Za-z])", re.IGNORECASE)


def ghent_site_iri(name: str, site_iris: dict[str, str]) -> str | None:
    """The IRI of a Ghent garage from ``site_iris`` (by name, ``P07`` or ``P7``) or its ``Pxx`` prefix."""
    if name in site_iris:
        return site_iris[name]
    match = _GHENT_NUMBER.match(name)
    if match is None:
        return None
    number = int(match.group(2))
    for key in (match.group(1).replace(" ", "").upper(), f"P{number}"):
        if key in site_iris:
            return site_iris[key]
    return GHENT_PARKING_IRI.format(number)
