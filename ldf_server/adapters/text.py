"""Small helpers adapters share for turning upstream names into URL-safe keys."""

from __future__ import annotations

import re
import unicodedata


def slug(text: str) -> str:
    """``"P+R Wondelgem"`` → ``"p-r-wondelgem"``: stable, ASCII, safe in a URL path segment."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "site"
