"""The thin HTTP layer: routing, negotiation, caching headers and problem responses."""
