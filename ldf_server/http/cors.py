"""CORS headers: every answer may be read by scripts of any origin (the data is open).

Kept apart from the middleware that adds them so that the representation cache can build
them into its prepared header sets without importing the middleware.
"""

from __future__ import annotations

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Location, Link, Content-Encoding, X-Request-Id",
}
PREFLIGHT_HEADERS = {
    # POST, Authorization, Content-Type and X-API-Key are for push from a browser-based sensor console.
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Accept, Accept-Encoding, If-None-Match, If-Modified-Since, Cache-Control, "
    "Authorization, Content-Type, X-API-Key",
    "Access-Control-Max-Age": "86400",
}
